# Fail-closed cases (issue 7, part 3): every way a program can put bytes on
# a TLS endpoint's connection either carries them as TLS or fails; none puts
# them on the wire in clear. Exec'd by test/integration/run in its own
# namespace (its helpers and @case are in scope); docs/testing.md lists the
# cases.
#
# Each path case runs build/apps/fc_writer under the shim against
# test/integration/recording_peer.py, a TLS echo server that records the raw
# bytes it reads off TCP before any TLS processing, and checks:
#   - the secret never appears in clear in the recording;
#   - either the peer decrypted the secret (it arrived as TLS application
#     data, and the shim logged the connection as established), or the
#     call failed in the program.
# The controls prove the recording can show the secret: with no shim, and
# with the endpoint disabled, it is there in clear.
#
# Some paths (raw syscalls, AIO, io_uring, an exec'd image, another process)
# never pass through the shim: they fail because the program's descriptor is
# an inert stand-in (docs/design.md, "The program's descriptor never reaches
# the wire").

FC_BOUND = 90        # the recording peer's own lifetime bound (seconds)

# The paths fc_writer knows (its header comment says what each does).
FC_PATHS = ["write", "dprintf", "vdprintf", "dprintf_chk", "pwritev2",
            "pwritev", "fastopen", "fastopen_nb", "sendmsg_fastopen",
            "sendmmsg_fastopen",
            "syscall", "aio_write", "io_uring", "dup2_exec", "scm_rights"]


def recording_peer(c, name="recorder"):
    """Starts recording_peer.py presenting server.pem; returns (proc, port,
    recording prefix)."""
    s = c.suite
    port_file, prefix = c.path(name + ".port"), c.path(name)
    argv = [sys.executable, os.path.join(ROOT, "test", "integration",
                                         "recording_peer.py"),
            port_file, s.pki("server.pem"), s.pki("server.key"), prefix,
            str(FC_BOUND)]
    proc = c.start(name, argv)
    return proc, wait_port_file(proc, port_file), prefix


def recorded(c, peer, prefix, conns=1):
    """Waits (bounded) until the peer finished conns connections; returns
    (raw bytes, decrypted bytes) of all of them, and notes its lines."""
    rx = re.compile(r"^conn (\d+): .*$", re.M)
    deadline = time.monotonic() + T_RUN
    while len(rx.findall(peer.out())) < conns and \
            time.monotonic() < deadline and peer.alive():
        time.sleep(0.05)
    lines = [m.group(0) for m in rx.finditer(peer.out())]
    check(len(lines) >= conns, "the recording peer finished %d of %d "
          "connections" % (len(lines), conns))
    raw = plain = b""
    for n in range(1, len(lines) + 1):
        raw += read_file("%s.%d.raw" % (prefix, n))
        plain += read_file("%s.%d.plain" % (prefix, n))
    c.note("recording peer: " + "; ".join(lines))
    return raw, plain


def fc_writer(c, port, path, secret, policy, preload=True, guard=True):
    argv = [need_app(c, "fc_writer"), "localhost", str(port), path, secret]
    env = c.env(policy, preload)
    if not guard:
        env["SECSHIM_SYSCALL_GUARD"] = "off"
    return c.run("fc_writer-" + path, argv, env)


def fc_outcome(proc, path):
    """"sent", "failed" or None from fc_writer's result line; dup2_exec has
    none (the process is /bin/echo): its exit status says."""
    if path == "dup2_exec":
        return "sent" if proc.p.returncode == 0 else "failed"
    m = re.search(r"^result \S+: (sent|failed)\b", proc.out(), re.M)
    return m.group(1) if m else None


def failclosed_case(path, guard=True):
    def run(c):
        peer, port, prefix = recording_peer(c)
        secret = "SECSHIM-SECRET-%s" % os.urandom(8).hex()
        proc = fc_writer(c, port, path, secret,
                         c.policy(client_ep(c.suite, port)), guard=guard)
        if path == "io_uring" and guard:
            # The syscall guard refuses io_uring itself (cases_guard.py).
            check(proc.p.returncode == 5 and "Operation not permitted" in
                  proc.out(), "io_uring_setup was not refused by the "
                  "syscall guard")
            raw, _ = recorded(c, peer, prefix)
            check(secret.encode() not in raw, "the secret is on the wire "
                  "in clear (path io_uring)")
            return
        check(proc.p.returncode != 5, "io_uring_setup was refused by this "
              "kernel: the io_uring path is untested here (reported as a "
              "failure, never as a skip)")
        outcome = fc_outcome(proc, path)
        check(outcome is not None, "fc_writer printed no result line")
        raw, plain = recorded(c, peer, prefix)
        check(raw, "nothing reached the peer")
        check(secret.encode() not in raw, "the secret is on the wire in "
              "clear (path %s)" % path)
        delivered = secret.encode() in plain
        check(delivered or outcome == "failed", "the call reported success "
              "but the peer did not decrypt the secret")
        if delivered:
            check(established(proc, "cli"), "the secret arrived but the "
                  "shim logged no established TLS connection")
        if path == "fastopen_nb":
            check("fastopen: -1 EINPROGRESS, nothing sent" in proc.out(),
                  "a non-blocking Fast Open send to a TLS endpoint must "
                  "answer -1 EINPROGRESS with nothing sent")
        if path in ("fastopen", "sendmsg_fastopen", "sendmmsg_fastopen",
                    "fastopen_nb"):
            check(delivered, "the Fast Open send did not arrive as TLS")
    run.__doc__ = ("fc_writer %s: the secret arrives as TLS or the call "
                   "fails; never in clear on the wire" % path)
    return run


for _path in FC_PATHS:
    case(failclosed_case(_path), name="failclosed_" + _path)
# io_uring without the guard (SECSHIM_SYSCALL_GUARD=off): the write on the
# managed descriptor reaches the stand-in and fails.
case(failclosed_case("io_uring", guard=False),
     name="failclosed_io_uring_unguarded")


@case
def failclosed_control_plaintext_is_recorded(c):
    """The control: fc_writer without the shim (write) and under the shim
    with the endpoint disabled (dprintf): the recording peer sees the
    secret in clear, so the checks of the cases above can fail."""
    peer, port, prefix = recording_peer(c)
    secret = "SECSHIM-SECRET-%s" % os.urandom(8).hex()
    proc = fc_writer(c, port, "write", secret, None, preload=False)
    check(fc_outcome(proc, "write") == "sent", "the plain write failed")
    proc = fc_writer(c, port, "dprintf", secret,
                     c.policy(client_ep(c.suite, port, enabled=False)))
    check(fc_outcome(proc, "dprintf") == "sent", "the plain dprintf failed")
    check(not established(proc), "the shim logged a TLS connection for a "
          "disabled endpoint")
    raw, plain = recorded(c, peer, prefix, conns=2)
    check(raw.count(secret.encode()) == 2, "the plaintext secret is not in "
          "the recording twice (the recorder cannot see plaintext?)")
    check(secret.encode() not in plain, "plaintext was taken for TLS")
    check(peer.out().count("tls error") == 2, "the peer did not report the "
          "plaintext connections as non-TLS")


@case
def failclosed_fastopen_unmanaged_passes_through(c):
    """MSG_FASTOPEN to a destination no endpoint names is the kernel's
    call, untouched: the data arrives in clear, sendto returns its count."""
    peer, port, prefix = recording_peer(c)
    secret = "SECSHIM-SECRET-%s" % os.urandom(8).hex()
    other = client_ep(c.suite, free_port())
    proc = fc_writer(c, port, "fastopen", secret, c.policy(other))
    check(re.search(r"^result fastopen: sent %d$" % len(secret), proc.out(),
                    re.M), "sendto(MSG_FASTOPEN) did not send the secret")
    raw, _ = recorded(c, peer, prefix)
    check(secret.encode() in raw, "the plain Fast Open data is not on the "
          "wire")
    check(not established(proc), "the shim took an unmanaged destination")


@case
def failclosed_scm_rights_warns(c):
    """A managed descriptor sent over SCM_RIGHTS: one warning naming the
    descriptor and its endpoint (the wire side is failclosed_scm_rights)."""
    peer, port, _ = recording_peer(c)
    secret = "SECSHIM-SECRET-%s" % os.urandom(8).hex()
    proc = fc_writer(c, port, "scm_rights", secret,
                     c.policy(client_ep(c.suite, port)))
    hits = re.findall(r"warning: sendmsg: descriptor (\d+), the TLS "
                      r"connection of endpoint 'cli' with [^ ]+, is passed "
                      r"to another process over SCM_RIGHTS", proc.err())
    check(len(hits) == 1, "expected one SCM_RIGHTS warning, saw %d" %
          len(hits))
    check(established(proc, "cli"), "the connection was not TLS")


# ---- the audit: every exported descriptor I/O function is accounted for ---

# Which of libc's exported functions move data through a descriptor. A
# name is selected when it matches one of these rules (anchored, after
# the symbol version is cut off). Each rule says why it is in.
AUDIT_RULES = [
    # read(2)/write(2) and their vector, positioned and v2 forms, their
    # 64-bit-offset names and the fortified __*_chk names; also glibc's
    # public __read/__write aliases.
    (r"(__)?(read|write|readv|writev)(_chk)?", "read/write family"),
    (r"(__)?(pread|pwrite|preadv|pwritev)(64)?(v2)?(_chk)?",
     "positioned read/write family"),
    # Socket data calls, with their fortified forms and aliases.
    (r"(__)?(recv|recvfrom|recvmsg|recvmmsg|send|sendto|sendmsg|sendmmsg)"
     r"(_chk)?", "socket data calls"),
    # The printf family that writes to a descriptor (not to a FILE).
    (r"(__)?v?dprintf(_chk)?", "printf to a descriptor"),
    # Kernel-side copies into or out of a descriptor.
    (r"sendfile(64)?|splice|tee|vmsplice|copy_file_range",
     "in-kernel copies"),
    # POSIX AIO submissions (aio_error/return/suspend/cancel/fsync move
    # no data: aio_fsync only syncs, the others report).
    (r"aio_(read|write)(64)?|lio_listio(64)?", "POSIX AIO submission"),
    # Anything at all through the raw syscall entry (SYS_write, io_uring).
    (r"syscall", "raw system calls"),
    (r"io_uring\w*", "io_uring (glibc exports none today)"),
    # A descriptor argument written to directly by libc, not via stdio.
    (r"backtrace_symbols_fd", "writes backtrace lines to a descriptor"),
]

# Left out on purpose (they match no rule above, listed so nobody adds
# them by mistake):
#  - fwrite, fprintf, fputs, ... : FILE streams; glibc's stdio writes with
#    internal calls, and stdio on a managed socket is the shim's own
#    stream (src/shim/streams.c: fdopen, dup2 onto 0/1/2);
#  - readlink*, readdir*, readahead: paths, directory streams and the page
#    cache, never a socket's data;
#  - process_vm_readv/writev: another process's memory, not a descriptor;
#  - symbols of version GLIBC_PRIVATE (__recv, __sendmmsg, __*_nocancel,
#    __libc_pread...): glibc's own libraries only, no program can link
#    them.

# And every public alias __NAME of a name the shim interposes must be
# interposed too, or a program linked against the alias (glibc exports
# __connect, __close, __read, __write, __send, __poll...) bypasses the shim.


def libc_of(c):
    """The libc the loader gives the test programs (ldd of echo_client)."""
    out = subprocess.run(["ldd", c.suite.app("echo_client")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=30).stdout.decode()
    m = re.search(r"libc\.so\.\S+ => (\S+)", out)
    check(m, "ldd does not name a libc: %s" % out)
    return m.group(1)


def dynamic_functions(path, public_only=True):
    """The exported function names of a shared object (nm -D
    --defined-only: types T, W, i), without symbol versions; with
    public_only, names whose every version is GLIBC_PRIVATE are dropped."""
    out = subprocess.run(["nm", "-D", "--defined-only", path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=60)
    check(out.returncode == 0, "nm failed on %s: %s" % (path, out.stderr))
    names = {}
    for line in out.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) != 3 or parts[1] not in ("T", "W", "i"):
            continue
        name, _, version = parts[2].partition("@")
        private = version.lstrip("@") == "GLIBC_PRIVATE"
        names[name] = names.get(name, True) and private
    return {n for n, private in names.items()
            if not (public_only and private)}


def documented_fail_closed():
    """The names docs/shim.md lists as "- fail-closed: NAME ..."."""
    with open(os.path.join(ROOT, "docs", "shim.md")) as f:
        return set(re.findall(r"^- fail-closed: `?([A-Za-z0-9_]+)`?", f.read(),
                              re.M))


def io_audit(libc, shim, fail_closed):
    """The selected libc names that are neither interposed nor documented
    as failing closed, each with the rule that selected it."""
    interposed = dynamic_functions(shim, public_only=False)
    missing = []
    for name in sorted(libc):
        why = next((w for rx, w in AUDIT_RULES if re.fullmatch(rx, name)),
                   None)
        base = name[2:] if name.startswith("__") else None
        if why is None and base in interposed:
            why = "public alias of the interposed %s" % base
        if why and name not in interposed and name not in fail_closed:
            missing.append("%s (%s)" % (name, why))
    return missing


@case
def audit_io_exports(c):
    """Every function the installed libc exports that reads or writes a
    descriptor is interposed by the shim or documented in docs/shim.md as
    failing closed (the rules are in cases_failclosed.py)."""
    libc = libc_of(c)
    names = dynamic_functions(libc)
    check(len(names) > 1000 and "write" in names, "%s: only %d functions "
          "read from its symbol table" % (libc, len(names)))
    fail_closed = documented_fail_closed()
    check(len(fail_closed) >= 5, "docs/shim.md lists only %d fail-closed "
          "names" % len(fail_closed))
    missing = io_audit(names, c.suite.shim, fail_closed)
    c.note("%s: %d functions; %d documented as failing closed"
           % (libc, len(names), len(fail_closed)))
    check(not missing, "not interposed and not documented as failing "
          "closed: %s" % ", ".join(missing))


def legacy_call_case(call):
    def run(c):
        with PlainEchoOn("127.0.0.1") as server:
            secret = "SECSHIM-SECRET-%s" % os.urandom(8).hex()
            argv = [need_app(c, "legacy_rcmd"), call, "127.0.0.1",
                    str(server.port), secret]
            plain = c.run("plain-" + call, argv, c.env(preload=False))
            check(secret.encode() in server.received, "the control: %s "
                  "without the shim did not reach the listener (%s)"
                  % (call, plain.out().strip()))
            server.received = b""
            pol = c.policy(client_ep(c.suite, server.port, host="127.0.0.1"))
            proc = c.run(call, argv, c.env(pol))
            check("call: -1 Connection refused" in proc.out(), "%s to a TLS "
                  "endpoint was not refused: %s" % (call, proc.out().strip()))
            check(secret.encode() not in server.received, "the secret "
                  "reached the TLS endpoint in clear")
            check(re.search(r"endpoint 'cli': %s to 127\.0\.0\.1 port \d+ "
                            r"refused" % call, proc.err()),
                  "the shim did not say why")
    run.__doc__ = ("%s to a TLS endpoint (glibc connects it internally, "
                   "where the shim cannot make it TLS) is refused; without "
                   "the shim the secret reaches the listener (the control)"
                   % call)
    return run


for _call in ("rcmd", "rexec"):
    case(legacy_call_case(_call), name="failclosed_legacy_" + _call)
