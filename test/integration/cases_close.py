# Cases for "close and exit never lose accepted bytes" (docs/design.md,
# "Close without loss"; docs/shim.md, "close"). Run by test/integration/run,
# in its namespace: Case, check, client_ep, server_ep, prng_bytes ...
#
# build/apps/close_writer writes 1 MiB of echo_client's stream and ends the
# connection one way; test/integration/slow_peer.py reads it slowly (a small
# receive buffer, small reads with pauses), so the shim's engine still holds
# accepted ciphertext when the program closes. Each case runs the program
# over plain TCP against the plain reader first: that is the reference.

CLOSE_BYTES = 1 << 20
SLOW_PEER = os.path.join(ROOT, "test", "integration", "slow_peer.py")
PEER_LINE = r"received (\d+) sha256=(\w+) end=(\S+)"
# How a reset shows to a reader: ECONNRESET, or, when the reset came while
# bytes were still queued for it, Linux's plain EOF after them (tcp_done
# marks the socket done). Never a close_notify.
ABORTED = ("reset", "eof")


def slow_peer(c, tls, name="peer", rcvbuf=32768, chunk=16384, delay_ms=5,
              progress=None, answer_ms=None):
    """Starts slow_peer.py serve (TLS with server.pem, or plain); returns
    (proc, port)."""
    s = c.suite
    port_file = c.path(name + ".port")
    argv = [sys.executable, SLOW_PEER, "serve", port_file]
    argv += ["--tls", s.pki("server.pem"), s.pki("server.key")] if tls \
        else ["--plain"]
    argv += ["--rcvbuf", str(rcvbuf), "--chunk", str(chunk),
             "--delay", str(delay_ms), "--bound", str(T_RUN)]
    if progress:
        argv += ["--progress", progress]
    if answer_ms is not None:
        argv += ["--answer-ms", str(answer_ms)]
    proc = c.start(name, argv)
    return proc, wait_port_file(proc, port_file)


def peer_report(peer):
    """(bytes, sha256, how the stream ended) as the peer saw them."""
    m = peer.wait_output(PEER_LINE, T_RUN)
    check(m is not None, "the peer reported no end of the stream")
    return int(m.group(1)), m.group(2), m.group(3)


def close_run(c, tls, end, args=(), nbytes=CLOSE_BYTES, run="", **peer_opts):
    """close_writer --end END against a slow peer, plain or under the shim
    (run names the processes when a case makes several runs). Returns
    (writer proc, exit status, peer report)."""
    tag = ("tls" if tls else "plain") + run
    peer, port = slow_peer(c, tls, name=tag + "-peer", **peer_opts)
    argv = [c.suite.app("close_writer"), "localhost", str(port),
            "--bytes", str(nbytes), "--end", end] + list(args)
    env = c.env(c.policy(client_ep(c.suite, port), name=tag + ".cfg")) \
        if tls else c.env(preload=False)
    writer = c.start(tag + "-writer", argv, env, stdin=True)
    got = peer_report(peer)
    writer.threads_at_end = thread_names(writer.pid)  # still waiting on stdin
    writer.close_stdin()
    return writer, writer.wait(T_RUN), got


def whole_stream(c, nbytes=CLOSE_BYTES):
    return c.suite.ref_sha.setdefault(("prng-sha256", nbytes),
                                      sha256(prng_bytes(nbytes)))


def check_everything(c, got, how, end, nbytes=CLOSE_BYTES):
    n, sha, seen = got
    check(n == nbytes and sha == whole_stream(c, nbytes),
          "%s: the peer received %d of %d bytes (sha256 %s)"
          % (how, n, nbytes, "matches" if sha == whole_stream(c, nbytes)
             else "differs"))
    check(seen == end, "%s: the stream ended with %s, expected %s"
          % (how, seen, end))


@case
def close_nonblocking_write_then_close_delivers_all(c):
    """A non-blocking program writes 1 MiB to a slow reader and close()s at
    once: every byte arrives, then close_notify, then EOF; the program then
    _exit()s, so close() alone did it (before: up to 64 KiB the engine still
    held were dropped, and EOF came without close_notify). Plain TCP, the
    reference, delivers every byte too. What close() left unsent went
    through the shim's linger thread, which carries its own name,
    secshim-linger (the soak test leaves it out of its thread counts by
    that name; the program's thread keeps its own)."""
    w, rc, got = close_run(c, False, "close")
    check(rc == 0, "the program fails over plain TCP")
    check_everything(c, got, "plain TCP", "eof")
    w, rc, got = close_run(c, True, "close")
    check(rc == 0 and "closed" in w.out(), "the program failed under the "
          "shim (exit %s)" % rc)
    check_everything(c, got, "under the shim", "close_notify+eof")
    # A sanitizer runtime may add threads of its own: they keep the
    # program's name.
    names = w.threads_at_end
    check(names.count("secshim-linger") == 1 and
          set(names) == {"close_writer", "secshim-linger"},
          "the program's threads after its close were named %s: not one "
          "secshim-linger beside close_writer's" % sorted(names))


@case
def close_exit_after_write_delivers_all(c):
    """The same program calls exit(0) right after its last write, without
    close(): the shim's exit hook delivers what the engine held, then
    close_notify (before: the process died with it)."""
    w, rc, got = close_run(c, False, "exit")
    check(rc == 0, "the program fails over plain TCP")
    check_everything(c, got, "plain TCP", "eof")
    w, rc, got = close_run(c, True, "exit")
    check(rc == 0, "the program failed under the shim (exit %s)" % rc)
    check_everything(c, got, "under the shim", "close_notify+eof")


@case
def close_so_linger_zero_resets(c):
    """SO_LINGER {1, 0} then close(): the kernel's abortive close. The peer
    sees a reset (or the EOF Linux gives after queued bytes), neither the
    stream's tail nor a close_notify, as over
    plain TCP: with the slow reader (1 MiB), and with a fast one that read
    4 KiB before the close (before, close_notify went out ahead of the
    reset, and the stream looked complete)."""
    for tls in (False, True):
        how = "under the shim" if tls else "plain TCP"
        w, rc, (n, sha, end) = close_run(c, tls, "abort")
        check(rc == 0, "%s: the program failed" % how)
        check(end in ABORTED and n < CLOSE_BYTES,
              "%s: the slow peer saw %d bytes and %s, expected a reset "
              "before the end" % (how, n, end))
    for tls in (False, True):
        how = "under the shim" if tls else "plain TCP"
        w, rc, (n, sha, end) = close_run(
            c, tls, "abort", nbytes=4096, args=["--pause-ms", "500"],
            delay_ms=0, run="-fast")
        check(rc == 0, "%s: the program failed" % how)
        check(end in ABORTED and n == 4096,
              "%s: the fast peer saw %d bytes and %s, expected 4096 and a "
              "reset" % (how, n, end))


@case
def close_so_linger_waits_for_delivery(c):
    """SO_LINGER {1, 10} on a blocking socket: close() returns once the
    data went, as the kernel's does. Bucket, not a time: when close()
    returned, the slow peer had read all but at most what its own receive
    buffer holds (the engine's 64 KiB would be missing had close() returned
    at once). Every byte and close_notify arrive."""
    for tls in (False, True):
        how = "under the shim" if tls else "plain TCP"
        progress = c.path(("tls" if tls else "plain") + ".progress")
        w, rc, got = close_run(c, tls, "linger",
                               ["--blocking", "--linger-s", "10",
                                "--progress", progress],
                               progress=progress, chunk=8192, delay_ms=10)
        check(rc == 0, "%s: the program failed" % how)
        check_everything(c, got, how,
                         "close_notify+eof" if tls else "eof")
        m = re.search(r"peer-read-at-close (-?\d+)", w.out())
        r = re.search(r"rcvbuf (\d+)", c.procs[-2].out())
        check(m is not None and r is not None, "%s: no progress figures"
              % how)
        at_close, rcvbuf = int(m.group(1)), int(r.group(1))
        c.note("%s: the peer had read %d bytes when close() returned "
               "(receive buffer %d)" % (how, at_close, rcvbuf))
        check(at_close >= CLOSE_BYTES - rcvbuf,
              "%s: close() returned when the peer had read %d of %d bytes: "
              "before the data went" % (how, at_close, CLOSE_BYTES))


@case
def close_accepted_without_io_does_no_handshake(c):
    """close() of an accepted socket that never did I/O runs no handshake
    step: the client's ClientHello, sent before the close, gets no
    ServerHello back (no private-key signature in close())."""
    s = c.suite
    port = free_port()
    server = c.start("server", [s.app("close_writer"), "--accept-close",
                                str(port)],
                     c.env(c.policy(server_ep(s, port))), stdin=True)
    check(server.wait_output(r"listening", T_START) is not None,
          "the server did not start listening")
    hello = c.run("client", [sys.executable, SLOW_PEER, "hello", str(port),
                             "--bound", str(T_RUN)], c.env(preload=False))
    check(server.wait_output(r"closed", T_RUN) is not None,
          "the server did not close the connection")
    check("reply: none" in hello.out(), "the ClientHello was answered: %s "
          "(close() ran a handshake step)" % hello.out().strip())


def cpu_seconds(pid):
    """User + system CPU time a process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@case
def close_after_peer_reset_leaves_the_server_idle(c):
    """bench_client's 20 connections close right after their 1-byte round
    trip, before the server's close_notify reaches them, so their kernel
    resets the connection while the server's linger thread waits for that
    close_notify to be acknowledged. The thread lets such a connection go
    at once: the kernel has given up on it (TCP_CLOSE), and the queue it
    still counts will never drain (before: the thread polled the reset
    socket, which reports POLLHUP at once, until the 30 s bound, a core
    busy all along). Coarse bucket, not a time: in the 2 s after the
    clients finished, the idle server used under 0.4 s of CPU, as the
    plain server does."""
    for tls in (False, True):
        how = "under the shim" if tls else "plain TCP"
        if tls:
            server, port, cpol = shim_pair(c, mutual=False)
            env = c.env(cpol)
        else:
            server, port = echo_server(c, name="plain-server", preload=False)
            env = c.env(preload=False)
        client = c.run("client-" + ("tls" if tls else "plain"),
                       [c.suite.app("bench_client"), "localhost", str(port),
                        "connect", "20"], env)
        check(client.p.returncode == 0, "%s: bench_client failed" % how)
        if tls:
            check(wait_established(server, "srv"),
                  "the server's shim logged no TLS connection")
        before = cpu_seconds(server.pid)
        time.sleep(2)
        used = cpu_seconds(server.pid) - before
        c.note("%s: %.2f s CPU" % (how, used))
        check(used < 0.4, "%s: the idle server used %.2f s of CPU in 2 s "
              "after its clients closed" % (how, used))
        server.stop()


REPLY_BYTES = 256 * 1024


@case
def close_after_the_peers_close_needs_no_linger(c):
    """The client writes its request and shuts down its sending side (the
    shim sends close_notify); the server reads to EOF, writes 256 KiB into
    a 1 MiB send buffer and closes at once, while the client still reads
    4 KiB every 5 ms, so nearly all of it is in the server's kernel at
    close. The peer can send nothing more, so the kernel's close cannot
    turn into a reset: the shim closes at once as plain TCP does, with no
    hand-off to a linger thread (issue 9; before, a thread was started and
    woken for every such connection). The client must get every byte and
    the end (close_notify), as over plain TCP; the server's close must
    start no thread, as over plain TCP."""
    seen = {}
    for tls in (False, True):
        how = "under the shim" if tls else "plain TCP"
        tag = "tls" if tls else "plain"
        port_file = c.path(tag + ".port")
        app = c.suite.app("ev_reply_after_eof")
        port = free_port()
        if tls:
            senv = c.env(c.policy(server_ep(c.suite, port), name="srv.cfg"))
            cenv = c.env(c.policy(client_ep(c.suite, port), name="cli.cfg"))
        else:
            senv = cenv = c.env(preload=False)
        server = c.start(tag + "-server", [app, "serve", str(port), port_file,
                                           str(REPLY_BYTES)], senv, stdin=True)
        wait_port_file(server, port_file)
        client = c.run(tag + "-client", [app, "ask", "localhost", str(port),
                                         str(REPLY_BYTES), "5"], cenv)
        closed = server.wait_output(r"closed threads (\d+) (\d+)", T_RUN)
        check(client.p.returncode == 0 and closed is not None,
              "%s: the client exited %s, the server said %r"
              % (how, client.p.returncode, closed and closed.group(0)))
        seen[tls] = (client.out().strip(),
                     int(closed.group(2)) - int(closed.group(1)))
        server.close_stdin()
        check(server.wait(T_RUN) == 0, "%s: the server failed" % how)
    c.note("plain TCP: %s, %+d thread(s) at the close; under the shim: %s, "
           "%+d" % (seen[False] + seen[True]))
    check(seen[True][0] == seen[False][0] and
          seen[False][0].startswith("ok %d bytes" % REPLY_BYTES),
          "the client read %r under the shim, %r over plain TCP"
          % (seen[True][0], seen[False][0]))
    check(seen[True][1] == seen[False][1] == 0,
          "the server's close started %+d threads under the shim, %+d over "
          "plain TCP (a linger thread was started)"
          % (seen[True][1], seen[False][1]))


CLOSING_CONNECTIONS = 20
TCP_TIME_WAIT = 6  # the st column of /proc/net/tcp


def time_wait_ends(port):
    """(server side, client side): how many TIME_WAIT entries the kernel
    holds for connections to port, by the side that holds them."""
    server = client = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                cols = row.split()
                if int(cols[3], 16) != TCP_TIME_WAIT:
                    continue
                local, remote = (int(a.rsplit(":", 1)[1], 16) for a in cols[1:3])
                server += local == port
                client += remote == port
    return server, client


def quiet_port():
    """A free port no TIME_WAIT entry names yet (an earlier case's
    connections to a port keep theirs for 60 s), so that a case counts
    only its own."""
    for _ in range(50):
        port = free_port()
        if time_wait_ends(port) == (0, 0):
            return port
    raise AssertionError("no free port without TIME_WAIT entries in 50 tries")


@case
def close_leaves_time_wait_with_the_side_that_closed_first(c):
    """bench_client's connections each close first, after a 1-byte round
    trip. Over plain TCP the FIN leaves at close(), so the client's side
    ends in TIME_WAIT and the server, which closes on EOF, holds none.
    Under the shim the FIN must leave with close_notify at the same
    close, as one segment: before, it waited in the linger thread until
    the server's reply, the server's FIN came first, and every connection
    left its TIME_WAIT on the server (docs/design.md, "Close without
    loss"). TIME_WAIT lasts 60 s, so the counts are read once, after the
    run."""
    seen = {}
    for tls in (False, True):
        how = "under the shim" if tls else "plain TCP"
        port = quiet_port()
        if tls:
            spol = c.policy(server_ep(c.suite, port, mutual=False),
                            name="server.cfg")
            server, port = echo_server(c, spol, port=port)
            env = c.env(c.policy(client_ep(c.suite, port), name="client.cfg"))
        else:
            server, port = echo_server(c, name="plain-server", port=port,
                                       preload=False)
            env = c.env(preload=False)
        client = c.run("client-" + ("tls" if tls else "plain"),
                       [c.suite.app("bench_client"), "localhost", str(port),
                        "connect", str(CLOSING_CONNECTIONS)], env)
        check(client.p.returncode == 0, "%s: bench_client failed" % how)
        deadline = time.monotonic() + T_RUN  # the server's closes follow
        while (time_wait_ends(port)[1] < CLOSING_CONNECTIONS and
               time.monotonic() < deadline):
            time.sleep(0.05)
        seen[tls] = time_wait_ends(port)
        server.stop()
    c.note("TIME_WAIT (server side, client side): plain TCP %s, under the "
           "shim %s" % (seen[False], seen[True]))
    check(seen[False] == (0, CLOSING_CONNECTIONS),
          "the plain TCP reference left TIME_WAIT %s" % (seen[False],))
    check(seen[True] == seen[False],
          "under the shim TIME_WAIT is %s (server side, client side), over "
          "plain TCP %s" % (seen[True], seen[False]))


LATE_ANSWER_MS = 300


@case
def close_waits_for_a_late_answer_to_close_notify(c):
    """close_writer writes 4 KiB and closes; the peer reads to the end and
    answers 300 ms later (its close_notify, then its FIN), long after its
    kernel acknowledged our FIN. Over plain TCP the writer's side then
    ends in TIME_WAIT. The shim keeps the connection open for the answer
    (up to 1 s, docs/design.md, "Close without loss"): closed as soon as
    the FIN was acknowledged, the answer would meet a closed socket, which
    the kernel answers with a reset, and no TIME_WAIT would be left."""
    seen = {}
    for tls in (False, True):
        tag = "tls" if tls else "plain"
        for attempt in range(20):  # a port no TIME_WAIT names yet
            peer, port = slow_peer(c, tls, name="%s-peer%d" % (tag, attempt),
                                   answer_ms=LATE_ANSWER_MS)
            if time_wait_ends(port) == (0, 0):
                break
            peer.stop()
        check(time_wait_ends(port) == (0, 0),
              "%s: no peer port without TIME_WAIT entries" % tag)
        env = c.env(c.policy(client_ep(c.suite, port), name=tag + ".cfg")) \
            if tls else c.env(preload=False)
        writer = c.start(tag + "-writer",
                         [c.suite.app("close_writer"), "localhost", str(port),
                          "--bytes", "4096", "--end", "close"], env,
                         stdin=True)
        end = peer_report(peer)[2]
        deadline = time.monotonic() + T_STOP  # the peer's FIN follows
        while time_wait_ends(port)[1] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        seen[tls] = (end, time_wait_ends(port))
        writer.close_stdin()
        check(writer.wait(T_RUN) == 0, "%s: close_writer failed" % tag)
    c.note("(the peer saw, TIME_WAIT server side and client side): plain "
           "TCP %s, under the shim %s" % (seen[False], seen[True]))
    check(seen[False] == ("eof", (0, 1)),
          "the plain TCP reference: %s" % (seen[False],))
    check(seen[True] == ("close_notify+eof", (0, 1)),
          "under the shim the peer saw %s and TIME_WAIT is %s (server side, "
          "client side); over plain TCP %s and %s"
          % (seen[True] + seen[False]))
