# Install, the Debian package and secshim run's last refusals (issue 10,
# "Install and service integration"; README.md "Install" and "Rolling it
# out"). Loaded by test/integration/run into its own namespace: every
# helper of that file is available here.
#
# The installed files are made by the Makefile from the suite's own build
# directory (make -C ROOT BUILD=...), so under make test-asan they are the
# AddressSanitizer build and the sanitizer runtime is preloaded ahead of
# the installed library, as run_env() does for secshim run.

T_MAKE = 180       # make install / make deb from an up-to-date build

# What make install puts under DESTDIR with PREFIX=/usr, nothing more.
INSTALLED = sorted([
    "usr/bin/secshim",
    "usr/lib/secshim/libsecshim-tls.so",
    "usr/lib/secshim/libsecshim.so",
    "usr/share/man/man1/secshim.1",
    "usr/share/man/man5/secshim.cfg.5",
    "usr/share/man/man7/libsecshim.7",
    "usr/share/secshim/default.cfg",
    "usr/share/secshim/demo.cfg",
    "usr/share/secshim/secshim.cfg",
    "usr/share/secshim/secshim.env",
    "usr/share/secshim/systemd/secshim.conf",
])

# The package adds its two conffiles.
PACKAGED = sorted(INSTALLED + ["etc/secshim/secshim.cfg",
                               "etc/secshim/secshim.env"])


def make_env(c):
    """The environment for a nested make: the caller's, without the outer
    make's jobserver (its descriptors are not passed on) and without the
    shim's variables."""
    env = c.env(preload=False)
    for name in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):
        env.pop(name, None)
    return env


def run_make(c, name, *targets):
    """make -C ROOT BUILD=<the suite's build> TARGETS...; a Failure unless
    it exits 0."""
    argv = ["make", "-C", ROOT, "--no-print-directory",
            "BUILD=" + c.suite.build] + list(targets)
    proc = c.run(name, argv, env=make_env(c), timeout=T_MAKE)
    check(proc.p.returncode == 0, "%s failed" % " ".join(argv[4:]))
    return proc


def files_under(root):
    """Every file and symbolic link below root, relative, sorted."""
    found = []
    for top, _dirs, files in os.walk(root):
        found += [os.path.relpath(os.path.join(top, f), root) for f in files]
    return sorted(found)


def secshim_dirs_under(root):
    """Directories named secshim below root (ours, to be removed)."""
    return sorted(os.path.relpath(os.path.join(top, d), root)
                  for top, dirs, _files in os.walk(root)
                  for d in dirs if d == "secshim")


@case
def install_and_uninstall_file_lists(c):
    """make install DESTDIR=D PREFIX=/usr puts exactly the library, the
    command, three man pages and the config/ examples under D/usr;
    make uninstall with the same removes every one of them and secshim's
    own directories."""
    dest = c.path("root")
    run_make(c, "make-install", "install", "DESTDIR=" + dest, "PREFIX=/usr")
    got = files_under(dest)
    check(got == INSTALLED, "make install put %s, expected %s"
          % (got, INSTALLED))
    check(os.access(os.path.join(dest, "usr/bin/secshim"), os.X_OK),
          "the installed command is not executable")
    run_make(c, "make-uninstall", "uninstall", "DESTDIR=" + dest,
             "PREFIX=/usr")
    check(files_under(dest) == [], "make uninstall left %s"
          % files_under(dest))
    check(secshim_dirs_under(dest) == [], "make uninstall left directories "
          "%s" % secshim_dirs_under(dest))


def built_deb(c):
    """build/secshim_VERSION_ARCH.deb, made by make deb once per run."""
    s = c.suite
    if getattr(s, "deb", None) is None:
        run_make(c, "make-deb", "deb")
        debs = sorted(f for f in os.listdir(s.build)
                      if f.startswith("secshim_") and f.endswith(".deb"))
        check(len(debs) == 1, "make deb made %s in %s" % (debs, s.build))
        s.deb = os.path.join(s.build, debs[0])
    return s.deb


def unpacked_deb(c):
    """The package unpacked into the case's scratch root (dpkg -x, no
    maintainer scripts, no database); returns the root."""
    root = c.path("root")
    proc = c.run("dpkg-x", ["dpkg", "-x", built_deb(c), root])
    check(proc.p.returncode == 0, "dpkg -x failed")
    return root


def installed_env(c, root, policy=None):
    """The environment of a program under the INSTALLED library of root
    (after the sanitizer runtime in a sanitizer build). LD_LIBRARY_PATH
    is left out: the installed files link the system's libssl and
    libconfig, as they would on a real host."""
    env = c.env(preload=False)
    env.pop("LD_LIBRARY_PATH", None)
    env["LD_PRELOAD"] = ":".join(c.suite.runtime + [
        os.path.join(root, "usr/lib/secshim/libsecshim.so")] + c.suite.after)
    env["ASAN_OPTIONS"] = "detect_leaks=0"
    if policy:
        env["SECSHIM_CONFIG"] = policy
    return env


@case
def deb_control_and_conffiles(c):
    """make deb builds a package whose control file names secshim, its
    version and architecture and the runtime libraries it links, whose
    conffiles are /etc/secshim/secshim.cfg and secshim.env, and which holds
    exactly the installed files plus those two."""
    deb = built_deb(c)
    info = c.run("dpkg-deb-info", ["dpkg-deb", "--info", deb])
    check(info.p.returncode == 0, "dpkg-deb --info failed")
    text = info.out()
    arch = subprocess.run(["dpkg", "--print-architecture"],
                          stdout=subprocess.PIPE, timeout=30).stdout.decode()
    check(re.search(r"^ Package: secshim$", text, re.M) and
          re.search(r"^ Architecture: %s$" % re.escape(arch.strip()), text,
                    re.M), "no Package: secshim for this architecture")
    with open(os.path.join(ROOT, "VERSION")) as f:
        version = f.read().strip()
    check(re.search(r"^ Version: %s$" % re.escape(version), text, re.M),
          "the version is not VERSION's %s" % version)
    depends = re.search(r"^ Depends: (.*)$", text, re.M)
    check(depends and all(lib in depends.group(1) for lib in
                          ("libc6", "libssl3", "libconfig9")),
          "Depends does not name libc6, libssl3 and libconfig9")
    conffiles = c.run("dpkg-deb-conffiles", ["dpkg-deb", "--info", deb,
                                              "conffiles"])
    check(sorted(conffiles.out().split()) == ["/etc/secshim/secshim.cfg",
                                              "/etc/secshim/secshim.env"],
          "conffiles is %r" % conffiles.out())
    contents = c.run("dpkg-deb-contents", ["dpkg-deb", "--contents", deb])
    listed = sorted(line.split()[-1][2:] for line in
                    contents.out().splitlines() if not line.startswith("d"))
    check(listed == PACKAGED, "the package holds %s, expected %s"
          % (listed, PACKAGED))


@case
def deb_installed_check_and_default_policy(c):
    """From the unpacked package: the installed secshim check accepts the
    installed /etc/secshim/secshim.cfg (one endpoint, disabled), and a
    program under the installed library with that policy keeps its
    connections plaintext: installing the package changes nothing."""
    root = unpacked_deb(c)
    cfg = os.path.join(root, "etc/secshim/secshim.cfg")
    env = installed_env(c, root)
    del env["LD_PRELOAD"]
    proc = c.run("installed-check", [os.path.join(root, "usr/bin/secshim"),
                                     "check", "-c", cfg], env=env)
    check(proc.p.returncode == 0, "the installed check refused %s" % cfg)
    check(re.search(r"valid, 1 endpoint, compatibility mode off", proc.out())
          and re.search(r"^example-database: disabled connect", proc.out(),
                        re.M), "check did not show the disabled example")
    server, port = echo_server(c, preload=False)
    client = c.run("client", [c.suite.app("echo_client"), "localhost",
                              str(port), "--line", "nothing changed"],
                   env=installed_env(c, root, cfg))
    check(client.p.returncode == 0 and "nothing changed" in client.out(),
          "a plaintext exchange failed under the installed default policy")
    check(not established(client), "the default policy made a TLS "
          "connection")


@case
def deb_installed_library_shims_echo(c):
    """echo_server and echo_client under the INSTALLED libsecshim.so (from
    the unpacked package), with policies of the case's own, talk TLS: both
    shims log the connection as established."""
    s = c.suite
    root = unpacked_deb(c)
    port = free_port()
    spol = c.policy(server_ep(s, port), name="server.cfg")
    cpol = c.policy(client_ep(s, port), name="client.cfg")
    port_file = c.path("server.port")
    server = c.start("server", [s.app("echo_server"), "-4", str(port),
                                "--port-file", port_file],
                     env=installed_env(c, root, spol))
    wait_port_file(server, port_file)
    client = c.run("client", [s.app("echo_client"), "localhost", str(port),
                              "--line", "through the installed library"],
                   env=installed_env(c, root, cpol))
    check(client.p.returncode == 0 and
          "through the installed library" in client.out(),
          "the line did not come back")
    check(established(client, "cli"), "the client's installed shim logged "
          "no TLS connection")
    check(wait_established(server, "srv"), "the server's installed shim "
          "logged no TLS connection")


@case
def deb_installed_run_finds_installed_library(c):
    """The installed secshim run, without --library, preloads the installed
    library (ROOT/usr/lib/secshim/libsecshim.so, found from the command's
    own place), not one from the build tree."""
    s = c.suite
    root = unpacked_deb(c)
    server, port, cpol = shim_pair(c, mutual=False)
    secshim = os.path.join(root, "usr/bin/secshim")
    lib = os.path.realpath(os.path.join(root,
                                        "usr/lib/secshim/libsecshim.so"))
    env = installed_env(c, root)
    env.pop("LD_PRELOAD")
    preload = run_env(c, shim=lib).get("LD_PRELOAD")
    if preload:
        env["LD_PRELOAD"] = preload
    proc = c.run("installed-run", [
        secshim, "run", "-c", cpol, "--", s.app("echo_client"), "localhost",
        str(port), "--line", "started by the installed run"], env=env)
    check(proc.p.returncode == 0 and
          "started by the installed run" in proc.out(),
          "the installed secshim run did not run the client")
    check(established(proc, "cli"), "no TLS connection under secshim run")
    check_run_preloads(c, secshim, cpol, env, lib)
    maps = c.run("maps", [secshim, "run", "-c", cpol, "--", "/bin/cat",
                          "/proc/self/maps"], env=env)
    check(lib in maps.out(), "the installed library %s is not mapped in the "
          "program secshim run started" % lib)


def refused_privileged(c, label, mode, words):
    """secshim run on a copy of a small program with mode bits added: exit
    126, the reason, and the program did not run."""
    pol = c.policy(client_ep(c.suite, 7443))
    program = hello_program(c, "hello-" + label)
    os.chmod(program, os.stat(program).st_mode | mode)
    proc = c.run("run-" + label, [os.path.join(c.suite.build, "secshim"),
                                  "run", "-c", pol, program], env=run_env(c))
    check(proc.p.returncode == 126, "%s: exit %s, expected 126"
          % (label, proc.p.returncode))
    check(words in proc.err() and "secure-execution" in proc.err(),
          "%s: not refused with %r and the reason" % (label, words))
    check("hello" not in proc.out(), "%s: the program ran" % label)


@case
def cli_run_refuses_setuid_program(c):
    """secshim run refuses a set-user-ID program (the loader ignores
    LD_PRELOAD for it in secure-execution mode): exit 126 and why."""
    refused_privileged(c, "setuid", 0o4000, "is set-user-ID")


@case
def cli_run_refuses_setgid_program(c):
    """secshim run refuses a set-group-ID program likewise."""
    refused_privileged(c, "setgid", 0o2000, "is set-group-ID")


@case
def cli_run_compat_sets_compat_mode(c):
    """secshim run --compat gives the program GCTI_SECPACK_COMPAT_MODE=1
    (the shim logs "compatibility mode on"); without it, the program gets
    no such variable."""
    pol = c.policy(client_ep(c.suite, 7443))
    secshim = os.path.join(c.suite.build, "secshim")
    on = c.run("run-compat", [secshim, "run", "--compat", "-c", pol, "--",
                              "/usr/bin/env"], env=run_env(c))
    check(on.p.returncode == 0, "env did not run")
    check(re.search(r"^GCTI_SECPACK_COMPAT_MODE=1$", on.out(), re.M),
          "the program's environment has no GCTI_SECPACK_COMPAT_MODE=1")
    check("(compatibility mode on)" in on.err(),
          "the shim did not log compatibility mode on")
    off = c.run("run-plain", [secshim, "run", "-c", pol, "--",
                              "/usr/bin/env"], env=run_env(c))
    check(off.p.returncode == 0 and "GCTI_SECPACK_COMPAT_MODE" not in
          off.out() and "(compatibility mode off)" in off.err(),
          "without --compat the program was in compatibility mode")


def man_text(page):
    """A man page of docs/man/, formatted, with its hyphenation undone."""
    out = subprocess.run(["man", "-E", "UTF-8", "-l",
                          os.path.join(ROOT, "docs", "man", page)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, MANWIDTH="1000",
                                  MAN_KEEP_FORMATTING=""), timeout=30)
    check(out.returncode == 0, "man could not format %s" % page)
    return re.sub(r"\x08.", "", out.stdout.decode()).replace("\u2010", "-")


@case
def man_pages_say_what_the_docs_say(c):
    """The man pages name every policy option of docs/policy.md, every
    option and command of secshim's usage, its exit codes, the shim's
    environment variables and the errno values of the README."""
    with open(os.path.join(ROOT, "docs", "policy.md")) as f:
        policy_md = f.read()
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    cfg5, cmd1, lib7 = (man_text(p) for p in ("secshim.cfg.5", "secshim.1",
                                              "libsecshim.7"))
    options = re.findall(r"^\| `([a-z0-9.-]+)` \|", policy_md, re.M)
    check(len(options) > 20, "found only %d options in docs/policy.md"
          % len(options))
    missing = [o for o in options if o not in cfg5]
    check(not missing, "secshim.cfg(5) lacks %s" % missing)
    usage = subprocess.run([os.path.join(c.suite.build, "secshim"), "--help"],
                           stdout=subprocess.PIPE, timeout=30,
                           env=c.env(preload=False)).stdout.decode()
    words = set(re.findall(r"--?[a-z]+|\b(?:run|check|verify|probe)\b", usage))
    missing = sorted(w for w in words if w not in cmd1)
    check(not missing, "secshim(1) lacks %s" % missing)
    missing = [code for code in ("126", "127") if code not in cmd1]
    check(not missing, "secshim(1) lacks exit codes %s" % missing)
    env_vars = re.findall(r"^\| `([A-Z_]+)[`=]", readme, re.M)
    missing = [v for v in env_vars + ["LD_PRELOAD"] if v not in lib7]
    check(env_vars and not missing, "libsecshim(7) lacks %s" % missing)
    errnos = set(re.findall(r"`(E[A-Z]+)`", readme.split("errno choices")[1]
                            .split("Each refused handshake")[0]))
    missing = sorted(e for e in errnos if e not in lib7)
    check(errnos and not missing, "libsecshim(7) lacks %s" % missing)
