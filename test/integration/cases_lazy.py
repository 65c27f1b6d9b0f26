# Cases for when TLS contexts are built (issue 9, process start): the
# policy is parsed and checked at start, an endpoint's context is built at
# its first need (a listen endpoint when the program listens on its
# address, a connect endpoint at its first matching connect), once per
# process image and shared by threads and fork children; a context that
# cannot be built fails that call, closed, with one log line naming file,
# line and option; a reload builds the contexts in use before it is
# published. Exec'd by test/integration/run in its namespace (helpers,
# @case, check; recording_peer and recorded from cases_failclosed.py).
# docs/testing.md lists the cases.

import errno

# A plain TCP client (no TLS code) for running under the shim:
#   lazy_client.py HOST PORT seq N PAUSE LINE   N attempts one after the
#       other (every second one with a non-blocking connect), PAUSE
#       seconds apart, stopping at the first that gets LINE echoed;
#   lazy_client.py HOST PORT threads N 0 LINE   N threads that connect at
#       the same moment (a barrier), each sending LINE.
# One stdout line per attempt: "attempt I: ok" or "attempt I: connect
# errno E NAME" (or "... io errno ..."); the seq mode also says which of
# libsecshim-tls.so, libssl.so and libcrypto.so are mapped before the
# first attempt and after the last ("mapped before: libsecshim-tls.so=no
# ..."), and ends with "done".
# It changes to / (or to the directory given as an 7th argument) before
# it connects. Every socket operation is bounded
# (settimeout), and alarm(40) bounds the whole run.
LAZY_CLIENT = r'''
import errno, os, select, signal, socket, sys, threading, time
signal.alarm(40)
host, port, mode, n, pause, line = sys.argv[1:7]
port, n, pause = int(port), int(n), float(pause)
data = (line + "\n").encode()

def connect(nonblocking):
    addr = socket.getaddrinfo(host, port, socket.AF_INET,
                              socket.SOCK_STREAM)[0][4]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if not nonblocking:
        s.settimeout(10)
        s.connect(addr)
        return s
    s.setblocking(False)
    e = s.connect_ex(addr)
    if e == errno.EINPROGRESS:
        select.select([], [s], [], 10)
        e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if e != 0:
        s.close()
        raise OSError(e, os.strerror(e))
    s.setblocking(True)
    s.settimeout(10)
    return s

def attempt(i, nonblocking=False):
    try:
        s = connect(nonblocking)
    except OSError as e:
        return "attempt %d: connect errno %d %s" % (
            i, e.errno, errno.errorcode.get(e.errno, "?"))
    try:
        s.sendall(data)
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        s.close()
        ok = got.strip() in (line.encode(), line[::-1].encode())
        return "attempt %d: %s" % (i, "ok" if ok else "reply %r" % got)
    except OSError as e:
        s.close()
        return "attempt %d: io errno %d %s" % (
            i, e.errno, errno.errorcode.get(e.errno, "?"))

def mapped():
    with open("/proc/self/maps") as f:
        maps = f.read()
    return " ".join("%s=%s" % (lib, "yes" if lib in maps else "no")
                    for lib in ("libsecshim-tls.so", "libssl.so",
                                "libcrypto.so"))

# The shim must not depend on the working directory.
os.chdir(sys.argv[7] if len(sys.argv) > 7 else "/")
if mode == "seq":
    print("mapped before: " + mapped(), flush=True)
    for i in range(1, n + 1):
        r = attempt(i, nonblocking=i % 2 == 0)
        print(r, flush=True)
        if r.endswith(": ok"):
            break
        time.sleep(pause)
    print("mapped after: " + mapped(), flush=True)
    print("done", flush=True)
else:
    barrier = threading.Barrier(n)
    out = [None] * n
    def run(i):
        barrier.wait()
        out[i] = attempt(i + 1)
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for r in out:
        print(r, flush=True)
'''

# A plain TCP program (no TLS code) that binds and listens once per SPEC
# "FAMILY,ADDR,PORT,V6ONLY" (FAMILY 4 or 6), closing each socket before
# the next, and prints "SPEC: listen ok" or "SPEC: listen errno E NAME".
LAZY_LISTENER = r'''
import errno, signal, socket, sys
signal.alarm(20)
for spec in sys.argv[1:]:
    fam, addr, port, v6only = spec.split(",")
    s = socket.socket(socket.AF_INET6 if fam == "6" else socket.AF_INET,
                      socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == "6":
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
    s.bind((addr, int(port)))
    try:
        s.listen(8)
        print("%s: listen ok" % spec, flush=True)
    except OSError as e:
        print("%s: listen errno %d %s" % (
            spec, e.errno, errno.errorcode.get(e.errno, "?")), flush=True)
    s.close()
'''

# A plain TCP program (no TLS code) that forks while one of its threads
# is in its first listen() (building a listen endpoint's context, and
# before that loading the TLS half): lazy_forker.py LPORT CPORT N. The
# thread listens on 127.0.0.1:LPORT; the main thread forks N children one
# after the other, each connecting to localhost:CPORT (a connect
# endpoint: the child builds that context itself), sending a line and
# waiting for a reply, bounded by alarm(5): a child that inherited a lock
# held would hang there and be killed. Prints "listen ok" (or "listen
# errno E") and "children ok K of N".
LAZY_FORKER = r'''
import errno, os, signal, socket, sys, threading
signal.alarm(60)
lport, cport, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", lport))
    try:
        s.listen(8)
        print("listen ok", flush=True)
    except OSError as e:
        print("listen errno %d" % e.errno, flush=True)

t = threading.Thread(target=listener)
t.start()
ok = 0
for i in range(n):
    pid = os.fork()
    if pid == 0:
        signal.alarm(5)
        try:
            c = socket.create_connection(("localhost", cport), timeout=4)
            c.sendall(b"forked\n")
            os._exit(0 if c.recv(100) else 1)
        except OSError:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    ok += os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
t.join()
print("children ok %d of %d" % (ok, n), flush=True)
'''

BUILT = re.compile(r"secshim\[(\d+)\]: info: endpoint '([^']+)': TLS context "
                   r"built at its first use")


def lazy_script(c, name, text):
    return c.write(name, text)


def lazy_client(c, port, mode, n, line, policy, pause=0.2, name="client",
                wait=True):
    """Runs (or starts) lazy_client.py under the shim with policy."""
    argv = [sys.executable, lazy_script(c, "lazy_client.py", LAZY_CLIENT),
            "localhost", str(port), mode, str(n), str(pause), line]
    if wait:
        return c.run(name, argv, c.env(policy))
    return c.start(name, argv, c.env(policy))


def attempts(proc):
    return re.findall(r"^attempt \d+: (.*)$", proc.out(), re.M)


def built_lines(proc, endpoint=None):
    """(pid, endpoint) of every "TLS context built" line in proc's log."""
    return [(int(m.group(1)), m.group(2)) for m in BUILT.finditer(proc.err())
            if endpoint is None or m.group(2) == endpoint]


def line_of(path, rx):
    """The number of the first line of path matching rx."""
    with open(path) as f:
        return next(i for i, l in enumerate(f, 1) if re.search(rx, l))


def broken_key(c, kind, cert="server"):
    """A certificate-key for cert.pem that passes the start-up checks (it
    exists and is readable) but does not build: "mismatch" (the key of the
    other kind of leaf: the test PKI's server leaves share one key, its
    client leaves another) or "garbage" (not PEM at all)."""
    path = c.path("broken-%s.key" % kind)
    if kind == "mismatch":
        other = "client" if cert == "server" else "server"
        shutil.copy(c.suite.pki(other + ".key"), path)
    else:
        c.write("broken-%s.key" % kind, "this is not a PEM key\n")
    return path


def broken_listen_policy(c, port, kind="mismatch"):
    s = c.suite
    return c.policy(ep("srv", listen="127.0.0.1:%d" % port,
                       certificate=s.pki("server.pem"),
                       certificate_key=broken_key(c, kind)))


def check_one_build_error(proc, pol, option, reason):
    """Exactly one error line, "POLICY:LINE: endpoint ...: option 'OPT':
    REASON...", LINE the option's own line in pol."""
    lineno = line_of(pol, r"^\s*%s = " % re.escape(option))
    errors = shim_errors(proc)
    want = re.compile(r"error: %s:%d: endpoint '[^']+': option '%s': .*%s"
                      % (re.escape(pol), lineno, re.escape(option), reason))
    hits = [l for l in errors if want.search(l)]
    check(len(hits) == 1, "want one error line naming %s:%d and option "
          "'%s' (/%s/), got %d of %d error lines" % (
              pol, lineno, option, reason, len(hits), len(errors)))
    check(len(errors) == 1, "want that line alone, got %d error lines"
          % len(errors))


@case
def lazy_unused_broken_listen_key_does_not_stop(c):
    """A listen endpoint whose certificate-key does not build (a key of
    another certificate; a file that is not PEM) no longer stops a process
    that never uses it: /bin/true and a plain client to an unrelated port
    run, and nothing is built or logged as an error."""
    plain, plain_port = echo_server(c, preload=False, port=0, name="plain")
    for kind in ("mismatch", "garbage"):
        pol = broken_listen_policy(c, free_port(), kind)
        true = c.run("true-" + kind, ["/bin/true"], c.env(pol))
        check(true.p.returncode == 0, "/bin/true under a policy with an "
              "unused %s key exited %s" % (kind, true.p.returncode))
        client = echo_client(c, plain_port, "--line", "unrelated " + kind,
                             host="127.0.0.1", policy=pol,
                             name="client-" + kind)
        check(client.p.returncode == 0 and "unrelated " + kind in
              client.out(), "a plain client to an unrelated port failed")
        for proc in (true, client):
            check(not shim_errors(proc) and not built_lines(proc),
                  "%s logged an error or built a context" % proc.name)


@case
def lazy_broken_listen_key_fails_listen(c):
    """A program that listens on the broken endpoint's address: listen()
    -1 EACCES for 127.0.0.1:PORT, 0.0.0.0:PORT and a dual-stack [::]:PORT
    (each would accept on it), one error line for all three naming file,
    line and option; [::]:PORT with IPV6_V6ONLY and another port listen
    fine; nothing listens on the port afterwards. echo_server reports its
    listen failure and exits."""
    port, other = free_port(), free_port()
    pol = broken_listen_policy(c, port)
    specs = ["4,127.0.0.1,%d,0" % port, "4,0.0.0.0,%d,0" % port,
             "6,::,%d,0" % port, "6,::,%d,1" % port, "4,127.0.0.1,%d,0"
             % other]
    proc = c.run("listener", [sys.executable, lazy_script(
        c, "lazy_listener.py", LAZY_LISTENER)] + specs, c.env(pol))
    out = proc.out()
    for spec in specs[:3]:
        check("%s: listen errno %d EACCES" % (spec, errno.EACCES) in out,
              "listen on %s did not fail with EACCES" % spec)
    for spec in specs[3:]:
        check("%s: listen ok" % spec in out, "listen on %s failed" % spec)
    check_one_build_error(proc, pol, "certificate-key",
                          "does not match certificate")
    with socket.socket() as sock:
        sock.settimeout(5)
        check(sock.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED,
              "something listens on the endpoint's port")
    port_file = c.path("server.port")
    server = c.run("server", [c.suite.app("echo_server"), "-4", str(port),
                              "--port-file", port_file], c.env(pol))
    check(server.p.returncode != 0 and not os.path.exists(port_file),
          "echo_server ran on a listen endpoint whose context cannot be "
          "built")
    check("listen on port %d: Permission denied" % port in server.err(),
          "echo_server did not report its listen failing with EACCES")
    check_one_build_error(server, pol, "certificate-key",
                          "does not match certificate")


@case
def lazy_broken_connect_fails_closed(c):
    """A connect endpoint whose client key does not build: every connect
    (blocking and non-blocking) fails with EPROTO, one error line for all
    of them names file, line and option, and the peer receives nothing at
    all (recording peer: no byte, no secret)."""
    s = c.suite
    peer, port, prefix = recording_peer(c)
    pol = c.policy(client_ep(s, port, certificate=s.pki("client.pem"),
                             certificate_key=broken_key(c, "mismatch",
                                                        cert="client"),
                             tls_mutual=True))
    secret = "SECSHIM-SECRET-%s" % os.urandom(8).hex()
    proc = lazy_client(c, port, "seq", 4, secret, pol, pause=0.05)
    got = attempts(proc)
    check(len(got) == 4 and all(a == "connect errno %d EPROTO" % errno.EPROTO
                                for a in got),
          "want 4 connects failing with EPROTO, got %r" % got)
    check_one_build_error(proc, pol, "certificate-key",
                          "does not match certificate")
    # The blocking connects reach the peer as TCP connections that end
    # with no byte; a non-blocking one may be taken back before the
    # kernel's handshake is done (the shutdown of a connecting socket).
    raw, plain = recorded(c, peer, prefix, conns=2)
    check(secret.encode() not in raw, "the secret is on the wire in clear")
    check(raw == b"" and plain == b"", "bytes reached the peer: %r" % raw[:64])


@case
def lazy_contexts_built_once_shared_by_threads(c):
    """The listen endpoint's context is built when the server listens,
    before any client; 8 client threads connecting at the same moment
    build the connect endpoint's context once and all use it."""
    server, port, cpol = shim_pair(c)
    check(built_lines(server) == [(server.pid, "srv")],
          "the server did not build its context (once) when it listened: "
          "%r" % built_lines(server))
    proc = lazy_client(c, port, "threads", 8, "shared context", cpol)
    got = attempts(proc)
    check(len(got) == 8 and all(a == "ok" for a in got),
          "not every thread was served: %r" % got)
    check(built_lines(proc) == [(proc.pid, "cli")],
          "want one 'cli' build for 8 threads, got %r" % built_lines(proc))
    check(len(ESTABLISHED.findall(proc.err())) == 8,
          "want 8 established TLS connections")
    check(len(built_lines(server)) == 1, "the server built again")


@case
def lazy_prefork_workers_use_parents_context(c):
    """A pre-fork server: the parent builds the context when it listens,
    its 4 workers accept and serve with that copy and build nothing."""
    s = c.suite
    port = free_port()
    pol = c.policy(server_ep(s, port))
    server, _ = ev_server(c, "ev_prefork_server", pol, port=port,
                          max_conns=4)
    cpol = c.policy(client_ep(s, port), name="client.cfg")
    for i in range(4):
        proc = echo_client(c, port, "--line", "worker %d" % i, policy=cpol,
                           name="client-%d" % i)
        check(proc.p.returncode == 0, "client %d was not served" % i)
    check(server.wait(T_RUN) == 0, "the pre-fork server failed")
    check(built_lines(server) == [(server.pid, "srv")],
          "want one build, by the parent (pid %d): %r"
          % (server.pid, built_lines(server)))
    check(count_established(server, "srv") == 4,
          "the workers did not serve 4 TLS connections")


def live_files(c, name, cert="server"):
    for ext in ("pem", "key"):
        shutil.copy(c.suite.pki(cert + "." + ext),
                    c.path("%s.%s" % (name, ext)))
    return c.path(name + ".pem"), c.path(name + ".key")


def replace_file(path, src=None, text=None):
    """Replaces path atomically (a rename: the shim sees a new inode)."""
    tmp = path + ".new"
    if src is not None:
        shutil.copy(src, tmp)
    else:
        with open(tmp, "w") as f:
            f.write(text)
    os.replace(tmp, path)


def reload_pair(c):
    """A shimmed echo_server whose endpoint srv uses live.pem/live.key and
    whose policy also has an endpoint it never listens on, spare (its own
    spare.pem/spare.key); returns (server, port, policy text, policy path,
    client policy)."""
    port, spare_port = free_port(), free_port()
    cert, key = live_files(c, "live")
    scert, skey = live_files(c, "spare")
    text = [ep("srv", listen="127.0.0.1:%d" % port, certificate=cert,
               certificate_key=key),
            ep("spare", listen="127.0.0.1:%d" % spare_port,
               certificate=scert, certificate_key=skey)]
    pol = c.policy(*text)
    server, _ = echo_server(c, pol, port=port)
    cpol = c.policy(client_ep(c.suite, port), name="client.cfg")
    return server, port, pol, cpol


def numbered_client(c, port, cpol, line):
    n = len([p for p in c.procs if p.name.startswith("client-")])
    return echo_client(c, port, "--line", line, policy=cpol,
                       name="client-%d" % n)


@case
def lazy_reload_keeps_snapshot_when_used_context_breaks(c):
    """A reload whose files no longer build the context of an endpoint in
    use (the server listens on it) is refused whole: the old snapshot
    stays, new clients are served with the old context."""
    server, port, pol, cpol = reload_pair(c)
    check(numbered_client(c, port, cpol, "before").p.returncode == 0,
          "the first client was not served")
    replace_file(c.path("live.key"), text="no longer a key\n")
    kept = retry_until(c, lambda: numbered_client(
        c, port, cpol, "old context").p.returncode == 0 and re.search(
        r"changed but does not load, keeping the previous one: .*"
        r"endpoint 'srv': option 'certificate-key'", server.err()))
    check(kept, "the reload was not refused for the endpoint in use")
    proc = numbered_client(c, port, cpol, "old context")
    check(proc.p.returncode == 0 and established(proc, "cli"),
          "a client after the refused reload was not served")


@case
def lazy_reload_unused_endpoint_stays_lazy(c):
    """A reload that breaks the key of an endpoint the server never used
    (spare) and changes the one in use (srv gets wronghost.pem) is taken:
    spare stays to be built at its first need, and new connections get
    the new certificate."""
    server, port, pol, cpol = reload_pair(c)
    check(numbered_client(c, port, cpol, "before").p.returncode == 0,
          "the first client was not served")
    replace_file(c.path("spare.key"), text="no longer a key\n")
    # Every server leaf of the test PKI has the same key: the certificate
    # alone changes, so no reload ever sees a half-made change.
    replace_file(c.path("live.pem"), src=c.suite.pki("wronghost.pem"))

    def new_certificate():
        proc = numbered_client(c, port, cpol, "after")
        return proc.p.returncode == 3 and re.search(
            r"does not match host name 'localhost'", proc.err())
    check(retry_until(c, new_certificate), "new connections never got the "
          "new certificate (the reload was refused for an unused endpoint?)")
    check(re.search(r"policy .* reloaded", server.err()),
          "the server's shim did not log the reload")
    check("does not load" not in server.err(), "a reload was refused")


@case
def lazy_failed_context_tried_again_after_reload(c):
    """A connect endpoint whose key does not build: the connects of one
    process fail (EPROTO) with one error line, not one per connect; once
    the key file is fixed, the reload gives the endpoint another try and
    the next connect is TLS."""
    s = c.suite
    peer, port = s_server(c, mutual=True)
    cert, key = live_files(c, "live", cert="client")
    replace_file(key, src=s.pki("server.key"))  # a key of another cert
    pol = c.policy(client_ep(s, port, certificate=cert, certificate_key=key,
                             tls_mutual=True))
    proc = lazy_client(c, port, "seq", 100, "retried", pol, wait=False)
    deadline = time.monotonic() + T_RUN
    while len(attempts(proc)) < 3 and time.monotonic() < deadline and \
            proc.alive():
        time.sleep(0.05)
    got = attempts(proc)
    check(len(got) >= 3 and all(a == "connect errno %d EPROTO" % errno.EPROTO
                                for a in got),
          "want the first connects to fail with EPROTO, got %r" % got)
    replace_file(key, src=s.pki("client.key"))
    check(proc.wait_output(r"(?m)^attempt \d+: ok$", T_RUN) is not None,
          "no connect succeeded after the key was fixed: %r"
          % attempts(proc)[-3:])
    proc.wait(T_RUN)
    failed = [a for a in attempts(proc) if a != "ok"]
    check(len(failed) >= 3, "the failures were not kept")
    check_one_build_error(proc, pol, "certificate-key",
                          "does not match certificate")
    check(built_lines(proc, "cli") and established(proc, "cli"),
          "the retried context was not built or not used")


@case
def lazy_missing_file_still_stops_process(c):
    """What is checked at start stays checked at start: a certificate-key
    that does not exist stops the program before main with file:line and
    the option (the context itself would only be built later)."""
    s = c.suite
    pol = c.policy(ep("srv", listen="127.0.0.1:%d" % free_port(),
                      certificate=s.pki("server.pem"),
                      certificate_key=c.path("nope.key")))
    expect_policy_error(c, pol, r"certificate-key = ", "certificate-key")


@case
def lazy_cli_builds_every_context(c):
    """`secshim check` and `secshim run` still build every context up
    front: an unused endpoint whose key does not build is refused by both
    (exit 1, file:line and the option), before any program runs."""
    pol = broken_listen_policy(c, free_port())
    lineno = line_of(pol, r"^\s*certificate-key = ")
    where = re.escape("%s:%d: endpoint 'srv': option 'certificate-key'"
                      % (pol, lineno))
    check_proc = secshim_cmd(c, "check", "check", "-c", pol)
    check(check_proc.p.returncode == 1 and re.search(where,
                                                     check_proc.err()),
          "secshim check accepted a context that does not build")
    marker = c.path("ran")
    run = secshim_cmd(c, "run", "run", "-c", pol, "--", "/usr/bin/touch",
                      marker)
    check(run.p.returncode == 1 and re.search(where, run.err()),
          "secshim run did not refuse the policy with its message")
    check(not os.path.exists(marker), "secshim run ran the program")


def maps_libs(proc):
    """The libraries of interest named in a `cat /proc/self/maps` output."""
    return set(re.findall(r"lib(?:secshim(?:-tls)?|ssl|crypto)\.so",
                          proc.out()))


@case
def lazy_openssl_not_loaded_until_first_use(c):
    """libsecshim.so links no OpenSSL: a process under a policy with a
    listen and a connect endpoint that uses neither maps libsecshim.so but
    not libsecshim-tls.so, libssl or libcrypto; a client maps them only
    once it connects to its endpoint, and the connection is TLS."""
    s = c.suite
    peer, port = s_server(c)
    pol = c.policy(server_ep(s, free_port()), client_ep(s, port))
    cat = c.run("cat", ["/bin/cat", "/proc/self/maps"], c.env(pol))
    check(cat.p.returncode == 0 and maps_libs(cat) == {"libsecshim.so"},
          "want libsecshim.so alone mapped, got %s" % sorted(maps_libs(cat)))
    proc = lazy_client(c, port, "seq", 1, "mapped", pol)
    out = proc.out()
    check("mapped before: libsecshim-tls.so=no libssl.so=no "
          "libcrypto.so=no" in out, "the TLS half was mapped before the "
          "first connect")
    check(attempts(proc) == ["ok"] and established(proc, "cli"),
          "the connect was not TLS: %r" % attempts(proc))
    check("mapped after: libsecshim-tls.so=yes libssl.so=yes "
          "libcrypto.so=yes" in out, "the TLS half was not loaded by the "
          "connect")


@case
def lazy_missing_tls_library_fails_closed(c):
    """libsecshim.so without libsecshim-tls.so beside it: a process that
    uses no endpoint runs; connects to an endpoint fail with EPROTO and
    nothing reaches the peer; one line says the library cannot be
    loaded."""
    s = c.suite
    alone = c.path("alone")
    os.makedirs(alone)
    lib = os.path.join(alone, "libsecshim.so")
    shutil.copy(s.shim, lib)
    peer, port, prefix = recording_peer(c)
    pol = c.policy(client_ep(s, port))
    env = c.env(pol)
    env["LD_PRELOAD"] = ":".join(s.runtime + [lib] + s.after)
    true = c.run("true", ["/bin/true"], env)
    check(true.p.returncode == 0 and not shim_errors(true),
          "/bin/true did not run cleanly")
    secret = "SECSHIM-SECRET-%s" % os.urandom(8).hex()
    argv = [sys.executable, lazy_script(c, "lazy_client.py", LAZY_CLIENT),
            "localhost", str(port), "seq", "3", "0.05", secret]
    proc = c.run("client", argv, env)
    got = attempts(proc)
    check(len(got) == 3 and all(a == "connect errno %d EPROTO" % errno.EPROTO
                                for a in got),
          "want 3 connects failing with EPROTO, got %r" % got)
    errors = shim_errors(proc)
    check(len(errors) == 1 and "cannot load libsecshim-tls.so" in errors[0],
          "want one line saying libsecshim-tls.so cannot be loaded: %r"
          % errors)
    raw, plain = recorded(c, peer, prefix, conns=2)
    check(secret.encode() not in raw and raw == b"",
          "bytes reached the peer: %r" % raw[:64])


@case
def lazy_relative_preload_path_finds_tls_library(c):
    """LD_PRELOAD names libsecshim.so by a relative path and the program
    changes directory before its first connect: libsecshim-tls.so is still
    found beside libsecshim.so (located at start), and the connection is
    TLS."""
    s = c.suite
    peer, port = s_server(c)
    env = c.env(c.policy(client_ep(s, port)))
    env["LD_PRELOAD"] = ":".join(s.runtime +
                                 [os.path.relpath(s.shim, c.dir)] + s.after)
    # Deeper than the relative path climbs: from here it names nothing.
    elsewhere = c.path("/".join("d%d" % i for i in range(12)))
    os.makedirs(elsewhere)
    argv = [sys.executable, lazy_script(c, "lazy_client.py", LAZY_CLIENT),
            "localhost", str(port), "seq", "1", "0", "relative", elsewhere]
    proc = c.run("client", argv, env)
    check(attempts(proc) == ["ok"] and established(proc, "cli"),
          "the connect after chdir was not TLS: %r %r" % (attempts(proc),
                                                          shim_errors(proc)))


@case
def lazy_fork_while_building(c):
    """A program forks eight times while another of its threads is in its
    first listen() (loading the TLS half, building the listen endpoint's
    RSA context): fork waits for the load and the build, so no child
    inherits a lock held, and every child builds its own connect context
    and gets its line answered over TLS; the parent builds srv once."""
    s = c.suite
    peer, cport = s_server(c)
    lport = free_port()
    pol = c.policy(server_ep(s, lport), client_ep(s, cport))
    argv = [sys.executable, lazy_script(c, "lazy_forker.py", LAZY_FORKER),
            str(lport), str(cport), "8"]
    proc = c.run("forker", argv, c.env(pol), timeout=T_RUN * 3)
    check("listen ok" in proc.out(), "the listen failed")
    check("children ok 8 of 8" in proc.out(), "not every child was served "
          "(one hung on a lock inherited held?): %s" % proc.out().strip())
    builds = built_lines(proc)
    check(builds.count((proc.pid, "srv")) == 1 and
          len([b for b in builds if b[1] == "cli"]) == 8,
          "want srv built once by the parent and cli by each child: %r"
          % builds)


@case
def lazy_cli_run_refuses_without_tls_half(c):
    """`secshim run --library LIB` where LIB has no libsecshim-tls.so
    beside it: exit 2 with a line naming both, and the program is not
    run (its endpoints would all fail)."""
    s = c.suite
    alone = c.path("alone")
    os.makedirs(alone)
    lib = os.path.join(alone, "libsecshim.so")
    shutil.copy(s.shim, lib)
    pol = c.policy(client_ep(s, free_port()))
    marker = c.path("ran")
    run = secshim_cmd(c, "run", "run", "--library", lib, "-c", pol, "--",
                      "/usr/bin/touch", marker)
    check(run.p.returncode == 2 and "cannot find libsecshim-tls.so beside "
          "%s" % lib in run.err(), "secshim run did not refuse a library "
          "without its TLS half")
    check(not os.path.exists(marker), "secshim run ran the program")

