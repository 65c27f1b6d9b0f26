# Cases for session resumption (docs/protocols.md, "Sessions"; issue 9).
# Run by test/integration/run, in its namespace: Case, check, client_ep,
# server_ep, echo_server, tls_client, ESTABLISHED ...
#
# The shim's client cache lives in process memory, so the client side is
# build/apps/reconnect_client: several connections of one process, its
# threads and a forked child. The independent peer that says whether a
# session was resumed is `openssl s_server -www`: its page reads "New,
# TLSv1.3, Cipher is ..." or "Reused, ...". On the listen side the
# independent clients are `openssl s_client -sess_out/-sess_in` ("New," /
# "Reused,") and `gnutls-cli --resume` ("This is a resumed session").
# Every case also reads the shim's own "established" lines, which say
# "(resumed session)" at their end.

RESUMED_LINE = re.compile(r"established: (?P<proto>\S+) (?P<cipher>\S+) "
                          r"\(resumed session\)")
CONN_BLOCK = re.compile(r"^=== conn (\d+) pid (\d+)\n(.*?)\n=== end \1: "
                        r"([^\n]*)$", re.S | re.M)


def www_peer(c, extra=(), name="peer"):
    """`openssl s_server -www` with server.pem; returns (proc, port)."""
    s = c.suite
    port = free_port()
    argv = ["openssl", "s_server", "-accept", "127.0.0.1:%d" % port,
            "-cert", s.pki("server.pem"), "-key", s.pki("server.key"),
            "-www"] + s.chain_args("server.pem") + list(extra)
    proc = c.start(name, argv)
    check(proc.wait_output(r"ACCEPT", T_START) is not None,
          "openssl s_server did not start listening")
    return proc, port


def reconnect_argv(c, port, *args):
    need_app(c, "reconnect_client")
    return [c.suite.app("reconnect_client"), "localhost", str(port)] + \
        list(args)


def peer_verdicts(proc):
    """{connection number: "New" | "Reused" | None} from reconnect_client's
    blocks (None: the connection failed or the page said neither)."""
    got = {}
    for m in CONN_BLOCK.finditer(proc.out()):
        body, end = m.group(3), m.group(4)
        verdict = re.search(r"^(New|Reused), TLSv", body, re.M)
        got[int(m.group(1))] = verdict.group(1) if verdict and \
            end == "ok" else None
    return got


def conn_pids(proc):
    return {int(m.group(1)): int(m.group(2))
            for m in CONN_BLOCK.finditer(proc.out())}


def shim_lines(proc, endpoint):
    """The shim's established lines for endpoint, in log order, as
    (pid, resumed)."""
    out = []
    for line in proc.err().splitlines():
        m = ESTABLISHED.search(line)
        if not m or m.group("ep") != endpoint:
            continue
        pid = re.match(r"secshim\[(\d+)\]", line)
        out.append((int(pid.group(1)) if pid else 0,
                    RESUMED_LINE.search(line) is not None))
    return out


def expect_peer(proc, want):
    """want: {conn: "New" | "Reused"} as the s_server page said."""
    got = peer_verdicts(proc)
    for n, verdict in want.items():
        check(got.get(n) == verdict, "connection %d: s_server said %s, "
              "expected %s" % (n, got.get(n), verdict))


def expect_shim(proc, endpoint, resumed):
    """The shim logged one established line per connection, saying
    resumed or not as listed (in log order)."""
    got = [r for _, r in shim_lines(proc, endpoint)]
    check(got == resumed, "the shim's established lines for '%s' say "
          "resumed %s, expected %s" % (endpoint, got, resumed))


def run_reconnect(c, port, policy, *args):
    proc = c.run("client", reconnect_argv(c, port, *args), c.env(policy),
                 timeout=T_RUN + 10)
    check(proc.p.returncode == 0, "reconnect_client exited %s"
          % proc.p.returncode)
    return proc


@case
def resume_client_second_connection_resumed(c):
    """A shimmed client's second and third connections in one process
    resume the first's TLS 1.3 session: s_server says Reused, and the
    shim's line says so after the cipher, which the harness's ESTABLISHED
    pattern still reads as one word."""
    peer, port = www_peer(c)
    proc = run_reconnect(c, port, c.policy(client_ep(c.suite, port)),
                         "--count", "3")
    expect_peer(proc, {1: "New", 2: "Reused", 3: "Reused"})
    expect_shim(proc, "cli", [False, True, True])
    m = RESUMED_LINE.search(proc.err())
    check(m.group("proto") == "TLSv1.3" and established(proc, "cli")[1] ==
          m.group("cipher") and m.group("cipher").startswith("TLS_"),
          "the resumed line does not read 'TLSv1.3 CIPHER (resumed "
          "session)'")


@case
def resume_client_tls12(c):
    """The same with TLS 1.2 (a session ticket of s_server's)."""
    peer, port = www_peer(c, extra=["-tls1_2"])
    proc = run_reconnect(c, port, c.policy(client_ep(c.suite, port)),
                         "--count", "3")
    expect_peer(proc, {1: "New", 2: "Reused", 3: "Reused"})
    expect_shim(proc, "cli", [False, True, True])
    check(RESUMED_LINE.search(proc.err()).group("proto") == "TLSv1.2",
          "the resumed connection is not TLS 1.2")


@case
def resume_client_off_never_resumes(c):
    """session-resumption = false on the connect endpoint: every handshake
    is full."""
    peer, port = www_peer(c)
    pol = c.policy(client_ep(c.suite, port, session_resumption=False))
    proc = run_reconnect(c, port, pol, "--count", "3")
    expect_peer(proc, {1: "New", 2: "New", 3: "New"})
    expect_shim(proc, "cli", [False, False, False])


@case
def resume_client_threads_share(c):
    """Threads of one process share the cache: after one connection, four
    threads connecting at once all resume its session."""
    peer, port = www_peer(c)
    proc = run_reconnect(c, port, c.policy(client_ep(c.suite, port)),
                         "--count", "1", "--threads", "4")
    expect_peer(proc, {1: "New", 2: "Reused", 3: "Reused", 4: "Reused",
                       5: "Reused"})
    expect_shim(proc, "cli", [False, True, True, True, True])


@case
def resume_client_forked_child(c):
    """A forked child resumes its parent's session (the cache is kept
    across fork and its lock re-made in the child)."""
    peer, port = www_peer(c)
    proc = run_reconnect(c, port, c.policy(client_ep(c.suite, port)),
                         "--count", "1", "--fork")
    expect_peer(proc, {1: "New", 2: "Reused"})
    pids = conn_pids(proc)
    check(pids[1] != pids[2], "the second connection was not the child's")
    lines = shim_lines(proc, "cli")
    check((pids[2], True) in lines, "the child's shim line does not say "
          "resumed: %s" % lines)


def stepped_client(c, port, policy, steps):
    """reconnect_client --step: the first connection, then for each
    function of steps: call it (it changes files), let the shim's reload
    check (at most once a second) see the change, and make the next
    connection. Returns the finished process."""
    proc = c.start("client", reconnect_argv(c, port, "--count",
                                            str(len(steps) + 1), "--step"),
                   c.env(policy), stdin=True)
    for n, change in enumerate(steps, start=1):
        check(proc.wait_output(r"=== ready %d\n" % (n + 1), T_RUN),
              "reconnect_client did not finish connection %d" % n)
        change()
        # Not a timing assertion: the reload check looks at the files at
        # most once per second, and the next connect must be in a later
        # second than the last look for the change to be seen.
        time.sleep(1.2)
        proc.send(b"go\n")
    proc.close_stdin()
    check(proc.wait(T_RUN) == 0, "reconnect_client failed")
    return proc


def reload_before(proc, conn):
    """The shim's first reload came between the established lines of
    connections conn - 1 and conn (1-based)."""
    lines = proc.err().splitlines()
    seen = 0
    for line in lines:
        if "policy" in line and "reloaded" in line:
            return seen == conn - 1
        if ESTABLISHED.search(line):
            seen += 1
    return False


@case
def resume_reload_trusted_ca_changed_is_full(c):
    """A reload that points trusted-ca at a bundle with other content drops
    the endpoint's sessions: the next connection is a full handshake (its
    session then resumes under the new trust)."""
    s = c.suite
    peer, port = www_peer(c)
    shutil.copy(s.pki("ca.pem"), c.path("bundle1.pem"))
    with open(c.path("bundle2.pem"), "w") as f:
        f.write(read_file(s.pki("ca.pem")).decode() +
                read_file(s.pki("other-root.pem")).decode())
    pol = c.policy(client_ep(s, port, trusted_ca=c.path("bundle1.pem")))
    proc = stepped_client(c, port, pol, [
        lambda: c.policy(client_ep(s, port, trusted_ca=c.path(
            "bundle2.pem"))),
        lambda: None])
    check(reload_before(proc, 2), "the shim did not reload before the "
          "second connection")
    expect_peer(proc, {1: "New", 2: "New", 3: "Reused"})
    expect_shim(proc, "cli", [False, False, True])


@case
def resume_reload_trusted_ca_rewritten_is_full(c):
    """The same when the bundle file itself is rewritten with other content
    under the same name (the policy file unchanged)."""
    s = c.suite
    peer, port = www_peer(c)
    bundle = c.path("bundle.pem")
    shutil.copy(s.pki("ca.pem"), bundle)

    def rewrite():
        with open(bundle + ".new", "w") as f:
            f.write(read_file(s.pki("ca.pem")).decode() +
                    read_file(s.pki("other-root.pem")).decode())
        os.replace(bundle + ".new", bundle)
    pol = c.policy(client_ep(s, port, trusted_ca=bundle))
    # The second connection (no change yet) resumes; the third follows the
    # rewrite.
    proc = stepped_client(c, port, pol, [lambda: None, rewrite])
    check(reload_before(proc, 3), "the shim did not reload before the "
          "third connection")
    expect_peer(proc, {1: "New", 2: "Reused", 3: "New"})
    expect_shim(proc, "cli", [False, True, False])


@case
def resume_reload_log_level_only_resumes(c):
    """A reload that changes only the log level builds new contexts with
    the same trust: the next connection still resumes."""
    s = c.suite
    peer, port = www_peer(c)
    pol = c.policy(client_ep(s, port))
    proc = stepped_client(c, port, pol, [
        lambda: c.policy(client_ep(s, port), level="debug")])
    check(reload_before(proc, 2), "the shim did not reload before the "
          "second connection")
    expect_peer(proc, {1: "New", 2: "Reused"})
    expect_shim(proc, "cli", [False, True])


@case
def resume_shim_pair(c):
    """Both ends shimmed: the server's tickets are the shim's own (keys in
    memory), and the client's second connection resumes on both logs."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port),
                                        name="server.cfg"), port=port)
    proc = run_reconnect(c, port, c.policy(client_ep(s, port),
                                           name="client.cfg"),
                         "--count", "2", "--half-close")
    expect_shim(proc, "cli", [False, True])
    check(retry_until(c, lambda: len(shim_lines(server, "srv")) == 2),
          "the server logged no second connection")
    expect_shim(server, "srv", [False, True])


def s_client_session(c, port, sess, out, name, extra=()):
    """`openssl s_client` (not -brief: it prints "New," or "Reused,")
    that keeps its session in sess (-sess_out) or offers it (-sess_in)."""
    s = c.suite
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
            "-CAfile", s.pki("ca.pem"), "-verify_return_error",
            "-verify_hostname", "localhost",
            "-sess_out" if out else "-sess_in", sess] + list(extra)
    proc, ok = tls_client(c, argv, "resume me", "resume me", name)
    check(ok, "%s did not get its line back" % name)
    m = re.search(r"^(New|Reused), TLSv", proc.out(), re.M)
    return m.group(1) if m else None


def listen_resume(c, extra_client=(), **server_opts):
    """A shimmed echo_server and two s_client runs, the second offering
    the session of the first. Returns (server, first, second) where the
    verdicts are s_client's ("New" / "Reused") and second is None when no
    session was kept at all."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port, **server_opts)),
                            port=port)
    sess = c.path("session.pem")
    first = s_client_session(c, port, sess, True, "s_client-1", extra_client)
    if not os.path.exists(sess):
        return server, first, None
    second = s_client_session(c, port, sess, False, "s_client-2",
                              extra_client)
    check(retry_until(c, lambda: len(shim_lines(server, "srv")) == 2),
          "the server logged %d connections, expected 2"
          % len(shim_lines(server, "srv")))
    return server, first, second


@case
def resume_server_openssl_sess_in(c):
    """A shimmed server's ticket lets `openssl s_client -sess_in` resume
    (TLS 1.3)."""
    server, first, second = listen_resume(c)
    check(first == "New" and second == "Reused", "s_client said %s, then "
          "%s; expected New, then Reused" % (first, second))
    expect_shim(server, "srv", [False, True])


@case
def resume_server_openssl_sess_in_tls12(c):
    """The same with TLS 1.2 (a TLS 1.2 ticket)."""
    server, first, second = listen_resume(c, extra_client=["-tls1_2"])
    check(first == "New" and second == "Reused", "s_client said %s, then "
          "%s; expected New, then Reused" % (first, second))
    expect_shim(server, "srv", [False, True])
    check(RESUMED_LINE.search(server.err()).group("proto") == "TLSv1.2",
          "the resumed connection is not TLS 1.2")


@case
def resume_server_off_never_resumes(c):
    """session-resumption = false on the listen endpoint: no ticket is
    issued (s_client keeps no session) or, if one were, it is not
    accepted."""
    server, first, second = listen_resume(c, session_resumption=False)
    check(first == "New" and second in (None, "New"), "s_client said %s, "
          "then %s; expected no resumption" % (first, second))
    check(not RESUMED_LINE.search(server.err()), "the shim logged a resumed "
          "session")


def gnutls_resume(c, wait=True, **server_opts):
    """gnutls-cli --resume against a shimmed echo_server. wait: with
    --waitresumption, so that it waits for the server's TLS 1.3 ticket
    before its first connection ends (without it, a server slower than
    the client, as under AddressSanitizer, lost the race now and then:
    the ticket came after gnutls-cli had left). A server that issues no
    ticket would keep it waiting, so the off case runs without."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port, **server_opts)),
                            port=port)
    argv = ["gnutls-cli", "--x509cafile", s.pki("ca.pem"), "-p", str(port),
            "--resume"] + (["--waitresumption"] if wait else []) + [
            "localhost"]
    proc, ok = tls_client(c, argv, "hello again", "hello again",
                          name="gnutls-cli")
    check(ok, "gnutls-cli did not get its line back")
    check(retry_until(c, lambda: len(shim_lines(server, "srv")) == 2),
          "the server logged %d connections, expected 2"
          % len(shim_lines(server, "srv")))
    return server, proc


@case
def resume_server_gnutls_resume(c):
    """`gnutls-cli --resume` (an independent TLS stack) resumes on its
    second connection to a shimmed server."""
    server, proc = gnutls_resume(c)
    check("This is a resumed session" in proc.out(), "gnutls-cli did not "
          "resume")
    expect_shim(server, "srv", [False, True])


@case
def resume_server_gnutls_resume_off(c):
    """... and does not when the listen endpoint has session-resumption =
    false."""
    server, proc = gnutls_resume(c, wait=False, session_resumption=False)
    check("This is a resumed session" not in proc.out(), "gnutls-cli "
          "resumed")
    expect_shim(server, "srv", [False, False])
