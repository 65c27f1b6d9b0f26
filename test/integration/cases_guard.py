# The syscall guard (src/shim/guard.c; docs/design.md, "The syscall
# guard"): a connect, accept or Fast Open send a program makes with its
# own system call is carried out by the shim, as TLS, not left to the
# kernel in clear. Loaded by test/integration/run into its own namespace:
# every helper of that file is available here.
#
# Each case runs build/apps/raw_calls, which never calls libc's connect,
# accept or sendto, first over plain TCP (the reference: what the program
# sees without the shim) and then under the shim against a shimmed peer,
# whose port the wire check judges: every byte there must be TLS.

GUARD_BYTES = 256 * 1024


def raw_calls(c, name, args, policy=None, preload=True, env=None):
    """Runs raw_calls ARGS to its end (under the shim with policy unless
    preload=False); returns the proc."""
    wire_canaries(c, args)
    run_env = env if env is not None else c.env(policy, preload)
    return c.run(name, [c.suite.app("raw_calls")] + [str(a) for a in args],
                 run_env)


def raw_reference(c, mode_args):
    """raw_calls over plain TCP against a plain echo_server: its "ok" line,
    which must be the plaintext reference (the program works without the
    shim). Returns the proc."""
    label = "-".join(str(a) for a in mode_args[:1] + mode_args[-1:])
    server, port = echo_server(c, preload=False, name="plain-server-" + label)
    proc = raw_calls(c, "plain-" + label,
                     mode_args[:1] + ["127.0.0.1", port] + mode_args[1:],
                     preload=False)
    server.stop()
    check(proc.p.returncode == 0 and
          parse_ok(proc) == (GUARD_BYTES, reference_sha(c, GUARD_BYTES)),
          "raw_calls %s over plain TCP did not echo the stream: the "
          "reference run failed" % " ".join(map(str, mode_args)))
    return proc


def check_guarded_client(c, proc, what):
    check(proc.p.returncode == 0, "%s exited %s under the shim"
          % (what, proc.p.returncode))
    check(parse_ok(proc) == (GUARD_BYTES, reference_sha(c, GUARD_BYTES)),
          "%s under the shim did not print the reference 'ok' line" % what)
    check(established(proc, "cli"), "%s: the shim logged no TLS connection: "
          "the raw call went past it" % what)
    check("syscall guard on" in proc.err(), "%s: no 'syscall guard on' "
          "line in the shim's log" % what)


@case
def guard_raw_connect_is_tls(c):
    """connect(2) through syscall(3) and through the program's own syscall
    instruction, from the main thread and from a thread started later: the
    program's stream comes back as over plain TCP, the shim logs the TLS
    connection, and the wire carries only TLS."""
    args = ["--bytes", GUARD_BYTES]
    raw_reference(c, ["connect"] + args)
    server, port, cpol = shim_pair(c, mutual=False)
    for via in ("syscall", "asm"):
        for thread in ([], ["--thread"]):
            label = "connect-%s%s" % (via, "-thread" if thread else "")
            proc = raw_calls(c, label, ["connect", "127.0.0.1", port, "--via",
                                        via] + thread + args, cpol)
            check_guarded_client(c, proc, "raw_calls " + label)


STRICT = {"SECSHIM_SYSCALL_GUARD": "strict"}


@case
def guard_raw_connect_from_a_library_loaded_later(c):
    """connect(2) with the own syscall instruction of a library that the
    program loads with dlopen after the guard started (code its first
    walk never saw). With SECSHIM_SYSCALL_GUARD=strict, from the main
    thread and from a new one, the loader's mapping of it is trapped and
    gets a filter of its own before it runs, so the connect is the shim's
    TLS connection, as over plain TCP it is a connection. By default that
    library is outside the guard (its filter would cost every send the
    process makes, docs/design.md): its connect stays plain TCP, the
    documented limit, shown so that the docs stay true."""
    args = ["--bytes", GUARD_BYTES, "--via", "plugin"]
    raw_reference(c, ["connect"] + args)
    server, port, cpol = shim_pair(c, mutual=False)
    for thread in ([], ["--thread"]):
        label = "plugin" + ("-thread" if thread else "")
        env = {**c.env(cpol), **STRICT}
        proc = raw_calls(c, label, ["connect", "127.0.0.1", port] + args +
                         thread, env=env)
        check_guarded_client(c, proc, "raw_calls " + label)
        check("code loaded later is guarded as it is mapped" in proc.err(),
              "the strict guard line does not say code loaded later is "
              "guarded")
    got, proc = first_bytes_at_tls_listener(
        c, "plugin-default",
        lambda port: [c.suite.app("raw_calls"), "connect", "127.0.0.1",
                      str(port), "--via", "plugin", "--bytes", "64"],
        plaintext_reason="by default a library loaded after start is "
        "outside the syscall guard (docs/shim.md, 'Known limits')")
    check(got[:1] != b"\x16" and len(got) > 0, "by default the library's "
          "raw connect reached the listener as %r: if that is TLS now, "
          "docs/shim.md 'Known limits' is stale" % got[:16])
    check("code loaded later is not guarded (SECSHIM_SYSCALL_GUARD=strict "
          "guards it)" in proc.err(), "the default guard line does not say "
          "code loaded later is not guarded")


@case
def guard_refuses_a_load_it_cannot_guard(c):
    """Under the strict guard each library loaded after start takes a
    filter, and the kernel holds a bounded number: the load past the last
    one fails (dlopen's error) with one line that says why, and the
    program goes on. The reference, without the shim: every copy loads."""
    count = 1100  # past the kernel's limit (about 490 here) and the guard's
    many = os.path.join(c.dir, "many")
    os.makedirs(many, exist_ok=True)
    plugin = os.path.join(c.suite.apps, "plugins", "raw_connect.so")
    for i in range(count):
        shutil.copy(plugin, os.path.join(many, "lib-%d.so" % i))
    ref = raw_calls(c, "plain", ["load-many", many, count], preload=False)
    check("loaded %d of %d" % (count, count) in ref.out(), "without the "
          "shim not every copy loaded: %r" % ref.out()[-200:])
    pol = c.policy(client_ep(c.suite, free_port()))
    proc = raw_calls(c, "guarded", ["load-many", many, count],
                     env={**c.env(pol), **STRICT})
    m = re.search(r"^loaded (\d+) of %d$" % count, proc.out(), re.M)
    check(proc.p.returncode == 0 and m is not None and
          100 < int(m.group(1)) < count,
          "under the shim the loads did not stop where the filters ran "
          "out (exit %s, %r)" % (proc.p.returncode, proc.out()[-200:]))
    check("failed to map segment" in proc.out(), "the refused load's "
          "dlopen error does not say its mapping failed: %r"
          % proc.out()[-200:])
    refused = re.findall(r"error: syscall guard: code mapped at \S+ cannot "
                         r"be guarded \(no room for another filter in this "
                         r"process\): its mapping is refused, so the load "
                         r"fails", proc.err())
    check(len(refused) == 1, "%d refusal lines for one refused load"
          % len(refused))


@case
def guard_without_address_randomization(c):
    """Without address randomization (setarch -R, as under a debugger)
    every exec'd image's loader lands where the guarded one's does, and a
    trap of its first mapping would come before the child has a handler:
    the strict guard then does not trap the loader's mappings, its line
    says code loaded later is not guarded, and children exec'd with and
    without the shim run (with the trap they were killed by SIGSYS)."""
    pol = c.policy(client_ep(c.suite, free_port()))
    app = c.suite.app("raw_calls")
    script = ("%s io_uring && env -u LD_PRELOAD %s io_uring" % (app, app))
    proc = c.run("norandom", ["setarch", "x86_64", "-R", "/bin/sh", "-c",
                              script], {**c.env(pol), **STRICT})
    out = proc.out().splitlines()
    check(proc.p.returncode == 0 and
          out == ["io_uring_setup: Operation not permitted"] * 2,
          "children exec'd without address randomization did not run "
          "(exit %s, %r)" % (proc.p.returncode, out))
    check("code loaded later is not guarded: address randomization is off"
          in proc.err(), "the guard line does not say code loaded later is "
          "not guarded without address randomization")


@case
def guard_keeps_its_handler_over_signal(c):
    """A program that sets its own SIGSYS disposition with signal(), which
    glibc makes with its internal sigaction, past the interposed one: the
    guard's handler stays in place, so the raw connect is still TLS, and
    the program's disposition still applies to every other SIGSYS: its
    handler catches a raise(SIGSYS), SIG_IGN ignores it, as over plain
    TCP. (Before, signal() put the program's handler in the guard's
    place: the trapped connect returned its own call number and the
    stream failed; and an ignored SIGSYS raised under the guard killed
    the process.)"""
    server, port, cpol = shim_pair(c, mutual=False)
    for mode, want in (("catch", "own SIGSYS: caught 1"),
                       ("ignore", "own SIGSYS: ignored")):
        args = ["--bytes", GUARD_BYTES, "--own-sigsys", mode]
        ref = raw_reference(c, ["connect"] + args)
        check(want in ref.out(), "over plain TCP raw_calls --own-sigsys %s "
              "did not print %r: the reference is wrong" % (mode, want))
        proc = raw_calls(c, "own-" + mode, ["connect", "127.0.0.1", port] +
                         args, cpol)
        check_guarded_client(c, proc, "raw_calls --own-sigsys " + mode)
        check(want in proc.out(), "under the shim raw_calls --own-sigsys %s "
              "did not print %r (exit %s)" % (mode, want, proc.p.returncode))


@case
def guard_refuses_32bit_connect(c):
    """connect(2) through the 32-bit ABI (int 0x80: i386's connect and
    socketcall(SYS_CONNECT)), which a 64-bit process can reach and the
    shim cannot answer: over plain TCP it
    connects (the reference); under the shim it fails with EPERM and
    nothing reaches the TLS peer."""
    server, port, cpol = shim_pair(c, mutual=False)
    for via in ("int80", "socketcall"):
        args = ["--bytes", GUARD_BYTES, "--via", via]
        raw_reference(c, ["connect"] + args)
        proc = raw_calls(c, via, ["connect", "127.0.0.1", port] + args, cpol)
        check(proc.p.returncode == 3 and
              "connect: Operation not permitted" in proc.err(),
              "the int 0x80 connect (%s) was not refused (exit %s)"
              % (via, proc.p.returncode))
    check(not established(server, "srv"), "a TLS connection reached the "
          "server from a refused connect")


@case
def guard_raw_fastopen_is_tls(c):
    """sendto(2) with MSG_FASTOPEN through syscall(3) on a fresh socket
    (connect and first bytes in one call) becomes the shim's TLS
    connection; its first bytes come back first, then the stream."""
    args = ["--bytes", GUARD_BYTES]
    raw_reference(c, ["fastopen"] + args)
    server, port, cpol = shim_pair(c, mutual=False)
    proc = raw_calls(c, "fastopen", ["fastopen", "127.0.0.1", port] + args,
                     cpol)
    check("fastopen 13 bytes echoed" in proc.out(), "the bytes sent with the "
          "Fast Open connect did not come back first")
    check_guarded_client(c, proc, "raw_calls fastopen")


def raw_serve(c, port, policy, shimmed):
    """raw_calls serve on port; an echo_client of GUARD_BYTES against it
    (both under the shim with policy when shimmed). Returns the server's
    proc after checking the echo."""
    s = c.suite
    label = "shim" if shimmed else "plain"
    port_file = c.path("serve-%s.port" % label)
    server = c.start("serve-" + label,
                     [s.app("raw_calls"), "serve", str(port), port_file],
                     c.env(policy, preload=shimmed))
    wait_port_file(server, port_file)
    cpol = c.policy(client_ep(s, port), name="client.cfg") if shimmed \
        else None
    client = echo_client(c, port, "--bytes", str(GUARD_BYTES), policy=cpol,
                         preload=shimmed,
                         host="localhost" if shimmed else "127.0.0.1",
                         name="client-" + label)
    rc = server.wait(T_RUN)
    check(rc == 0 and client.p.returncode == 0 and
          parse_ok(client) == (GUARD_BYTES, reference_sha(c, GUARD_BYTES)),
          "the echo through raw_calls serve failed (%s)"
          % ("under the shim" if shimmed else "plain TCP, the reference"))
    return server


@case
def guard_raw_accept_is_tls(c):
    """accept4(2) through syscall(3) on a listen endpoint's socket: the
    accepted connection is the shim's TLS server connection (a shimmed
    echo_client's stream comes back as over plain TCP)."""
    raw_serve(c, free_port(), None, shimmed=False)
    port = free_port()
    server = raw_serve(c, port, c.policy(server_ep(c.suite, port)),
                       shimmed=True)
    check(established(server, "srv"), "raw_calls serve: the shim logged no "
          "TLS connection for the raw accept4")


@case
def guard_answers_with_every_signal_blocked(c):
    """A thread that blocks every signal and then connects raw: the kernel
    would end the process for a trap with SIGSYS blocked, so the shim
    keeps SIGSYS out of the program's masks; the connect is the shim's
    TLS connection, as over plain TCP it would be a connection."""
    plain, plain_port = echo_server(c, preload=False, name="plain-server")
    ref = raw_calls(c, "plain", ["blocked-connect", "127.0.0.1", plain_port],
                    preload=False)
    check(ref.p.returncode == 0 and "connected" in ref.out(),
          "the reference run over plain TCP did not connect")
    server, port, cpol = shim_pair(c, mutual=False)
    proc = raw_calls(c, "blocked", ["blocked-connect", "127.0.0.1", port],
                     cpol)
    check(proc.p.returncode == 0 and "connected" in proc.out(),
          "raw_calls blocked-connect exited %s under the shim (-31: killed "
          "by SIGSYS)" % proc.p.returncode)
    check(established(proc, "cli"), "no TLS connection for the raw connect")


@case
def guard_refuses_io_uring(c):
    """io_uring's connect and accept are made by the kernel, where the
    guard cannot see them: io_uring_setup answers EPERM under the shim
    (the reference without it: io_uring works here)."""
    ref = raw_calls(c, "plain", ["io_uring"], preload=False)
    check("io_uring_setup: ok" in ref.out(), "io_uring does not work here "
          "without the shim: the refusal is untested (reported as a "
          "failure, never as a skip)")
    pol = c.policy(client_ep(c.suite, free_port()))
    proc = raw_calls(c, "guarded", ["io_uring"], pol)
    check("io_uring_setup: Operation not permitted" in proc.out(),
          "io_uring_setup was not refused under the shim: %r"
          % proc.out().strip())


@case
def guard_off_says_so(c):
    """SECSHIM_SYSCALL_GUARD=off: no filter (io_uring works again) and one
    warning line that says what is then not seen."""
    pol = c.policy(client_ep(c.suite, free_port()))
    env = c.env(pol)
    env["SECSHIM_SYSCALL_GUARD"] = "off"
    proc = raw_calls(c, "off", ["io_uring"], env=env)
    check("io_uring_setup: ok" in proc.out(), "io_uring is refused with "
          "the guard off")
    check(re.search(r"warning: syscall guard off \(SECSHIM_SYSCALL_GUARD="
                    r"off\): a connect or accept system call made without "
                    r"libc is not seen", proc.err()),
          "no warning that the guard is off")


@case
def guard_unknown_setting_says_so(c):
    """SECSHIM_SYSCALL_GUARD with a value that is not off, on or strict (a
    typo): the guard is on as by default (io_uring refused, the default
    line), and one warning names the value."""
    pol = c.policy(client_ep(c.suite, free_port()))
    env = c.env(pol)
    env["SECSHIM_SYSCALL_GUARD"] = "Off"
    proc = raw_calls(c, "typo", ["io_uring"], env=env)
    check("io_uring_setup: Operation not permitted" in proc.out(),
          "with an unknown setting the guard is not on: %r"
          % proc.out().strip())
    check(re.search(r"warning: syscall guard: SECSHIM_SYSCALL_GUARD=Off is "
                    r"not off, on or strict: the guard is on, as by "
                    r"default", proc.err()),
          "no warning naming the unknown setting")
    check("code loaded later is not guarded (SECSHIM_SYSCALL_GUARD=strict "
          "guards it)" in proc.err(), "the guard line is not the default's")


@case
def guard_no_endpoint_no_filter(c):
    """A policy without endpoints has nothing to guard: no filter, no log
    line, io_uring works (the process pays nothing at start)."""
    pol = c.policy()
    proc = raw_calls(c, "empty", ["io_uring"], pol)
    check("io_uring_setup: ok" in proc.out(), "io_uring refused under a "
          "policy without endpoints")
    check("syscall guard" not in proc.err(), "a guard line under a policy "
          "without endpoints")


@case
def guard_children_without_the_shim_connect(c):
    """The filter is inherited by every child, but it traps only the
    guarded image's own code: a child exec'd without the shim (LD_PRELOAD
    removed) connects with libc and with a raw system call to a plain
    port as it would without any shim."""
    s = c.suite
    server, port = echo_server(c, preload=False, name="plain-server")
    pol = c.policy(client_ep(s, free_port()))
    script = ("env -u LD_PRELOAD %s 127.0.0.1 %d --bytes %d && "
              "env -u LD_PRELOAD %s connect 127.0.0.1 %d --bytes %d"
              % (s.app("echo_client"), port, GUARD_BYTES, s.app("raw_calls"),
                 port, GUARD_BYTES))
    proc = c.run("sh", ["/bin/sh", "-c", script], c.env(pol))
    ref = reference_sha(c, GUARD_BYTES)
    oks = re.findall(r"^ok (\d+) bytes sha=([0-9a-f]+)\s*$", proc.out(), re.M)
    check(proc.p.returncode == 0 and
          oks == [(str(GUARD_BYTES), ref)] * 2,
          "a child without the shim did not connect (exit %s, %r)"
          % (proc.p.returncode, oks))
    check("syscall guard on" in proc.err(), "the shimmed shell installed "
          "no guard")


@case
def guard_unprivileged_sets_no_new_privs(c):
    """A process without CAP_SYS_ADMIN may install the filter only with
    no_new_privs: as nobody, the guard is on, its line says no_new_privs
    is set, the raw connect is TLS, and a set-user-ID copy of id(1) that
    the process starts runs as nobody (without the guard it runs as
    root): the cost docs/design.md states, shown."""
    if os.geteuid() != 0:
        raise Skip("needs root to start a process as nobody and to make a "
                   "set-user-ID root program")
    s = c.suite
    shared = tempfile.mkdtemp(prefix="secshim-guard-")
    try:
        os.chmod(shared, 0o755)
        shutil.copy(s.pki("ca.pem"), os.path.join(shared, "ca.pem"))
        setuid_id = os.path.join(shared, "id")
        shutil.copy("/usr/bin/id", setuid_id)
        os.chmod(setuid_id, 0o4755)
        server, port, _ = shim_pair(c, mutual=False)
        text = ("version = 1;\nlog = { level = \"info\"; file = \"stderr\"; };"
                "\nendpoints = (\n%s\n);\n"
                % client_ep(s, port, trusted_ca=os.path.join(shared,
                                                             "ca.pem")))
        c.wire_policy(text)
        pol = os.path.join(shared, "client.cfg")
        with open(pol, "w") as f:
            f.write(text)
        os.chmod(pol, 0o644)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534",
                     "--clear-groups"]
        script = ("%s connect 127.0.0.1 %d --bytes %d; %s -u"
                  % (s.app("raw_calls"), port, GUARD_BYTES, setuid_id))
        results = {}
        for guard in (True, False):
            env = c.env(pol)
            env["XDG_RUNTIME_DIR"] = shared  # status files: nobody's own
            if not guard:
                env["SECSHIM_SYSCALL_GUARD"] = "off"
                c.wire_plaintext("the guard off: the raw connect is not "
                                 "seen (this case's second run)",
                                 side="client", port=port, from_now=True)
            results[guard] = c.run("nobody-%s" % ("on" if guard else "off"),
                                   as_nobody + ["/bin/sh", "-c", script], env)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    on = results[True]
    check(parse_ok(on) == (GUARD_BYTES, reference_sha(c, GUARD_BYTES)),
          "as nobody under the guard the raw connect did not carry the "
          "stream")
    check(established(on, "cli"), "as nobody: no TLS connection")
    check("no_new_privs set" in on.err(), "as nobody the guard line does "
          "not say no_new_privs is set")
    check(on.out().strip().splitlines()[-1] == "65534", "under the guard "
          "the set-user-ID id ran as %r, not as nobody (no_new_privs)"
          % on.out().strip().splitlines()[-1])
    off = results[False]
    check(off.out().strip().splitlines()[-1:] == ["0"], "with the guard "
          "off the set-user-ID id did not run as root: the comparison "
          "shows nothing (%r)" % off.out()[-40:])
