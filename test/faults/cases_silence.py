# Peers that say nothing or read nothing (issue 12). A silent client must
# not hold up a shimmed server, threaded or event loop: the
# handshake-timeout drops it while others are served. A peer that never
# reads makes the shimmed writer block or get EAGAIN where plain TCP does,
# with the writer's memory bounded. Exec'd by test/faults/run in the
# integration harness's namespace, after cases_common.py.

FLOOD = 64 << 20      # what a writer tries to push at a peer that never reads
RSS_BOUND_KIB = 8 << 10    # what that attempt may add to the writer's RSS


def silent_peer_case(app):
    def run(c):
        s = c.suite
        port = free_port()
        pol = c.policy(server_ep(s, port, handshake_timeout=2),
                       name="server.cfg")
        if app == "echo_server":
            server, port = echo_server(c, pol, port=port)
        else:
            server, port = ev_server(c, app, pol, port)
        cpol = c.policy(client_ep(s, port), name="client.cfg")
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=T_RUN) as mute:
            proc = echo_client(c, port, "--line", "served meanwhile",
                               policy=cpol, name="meanwhile")
            check(proc.p.returncode == 0 and "served meanwhile" in
                  proc.out(), "a client was not served while a silent one "
                  "was connected")
            ready, _, _ = select.select([mute], [], [], 0)
            c.note("the silent client was %s when the other was served"
                   % ("dropped already" if ready else "still connected"))
            check(wait_shim_error(server, r"no complete handshake within "
                                  r"2\.000 s \(handshake-timeout\)",
                                  timeout=T_RUN),
                  "the handshake-timeout did not fire")
            got = recv_all(mute, timeout=T_RUN // 2)
            check(got == b"", "the silent client was sent %r" % got[:32])
        proc = echo_client(c, port, "--line", "served after", policy=cpol,
                           name="after")
        check(proc.p.returncode == 0 and "served after" in proc.out(),
              "the server does not serve a client after the timeout")
        check(server.alive(), "the server died")
        check(not FATAL.search(server.err()), "a fatal-looking shim line")
    run.__doc__ = ("%s: a client that connects and sends nothing is "
                   "dropped by the handshake-timeout (2 s), sent nothing; "
                   "another client is served meanwhile and afterwards" % app)
    return run


for _app in ("echo_server", "ev_epoll_server", "ev_poll_server"):
    case(silent_peer_case(_app), name="silent_client_" + _app)


def check_flood(label, rep, blocking):
    """A writer of FLOOD bytes at a peer that never reads: blocked (no
    write result) or EAGAIN, having written less than FLOOD, its RSS grown
    by less than RSS_BOUND_KIB. Returns the bytes written."""
    check("progress" in rep and "start" in rep, "%s: no progress report: "
          "%s" % (label, rep))
    written, rss = rep["progress"]
    if blocking:
        check("write" not in rep, "%s: a blocking write to a peer that "
              "never reads returned: %s" % (label, rep.get("write")))
    else:
        check(rep.get("write", ("",))[0] == "EAGAIN", "%s: expected EAGAIN, "
              "got %s" % (label, rep.get("write")))
    check(written < FLOOD, "%s: all %d bytes were taken" % (label, written))
    check(rss - rep["start"] < RSS_BOUND_KIB, "%s: RSS grew by %d KiB "
          "(from %d) while writing to a peer that never reads"
          % (label, rss - rep["start"], rep["start"]))
    return written


def idle_tls_peer(c, conn, server_side):
    """Completes the TLS handshake, then reads nothing for 2 s (bounded;
    the writer reports within its --hold-ms, 1 s)."""
    tls = BioTls(conn, c.suite, server_side=server_side)
    tls.handshake()
    time.sleep(2)
    return b""


def idle_plain_peer(c, conn, server_side):
    time.sleep(2)
    return b""


@case
def server_writes_to_client_that_never_reads(c):
    """A shimmed server (fault_probe accept, blocking writes) pushes 64 MiB
    at a TLS client that never reads: its write blocks as over plain TCP
    (the reference run), it has taken less than 64 MiB, and its RSS grew by
    less than 8 MiB."""
    s = c.suite
    results = {}
    for tls in (False, True):
        tag = "tls" if tls else "plain"
        port = free_port()
        pol = c.policy(server_ep(s, port), name=tag + ".cfg") if tls else None
        probe, port = start_probe_server(
            c, tag + "-probe", port, pol, preload=tls,
            args=("--send", FLOOD, "--no-read", "--hold-ms", 1000))
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=T_RUN) as sock:
            (idle_tls_peer if tls else idle_plain_peer)(c, sock, False)
            rep = wait_probe_line(probe, "progress")
        results[tag] = check_flood(tag, rep, blocking=True)
    c.note("taken before blocking: %s" % results)


@case
def client_writes_to_server_that_never_reads(c):
    """A shimmed client (fault_probe connect, non-blocking writes) pushes
    64 MiB at a TLS server that never reads: write fails with EAGAIN as
    over plain TCP, after less than 64 MiB, RSS growth under 8 MiB."""
    results = {}
    for tls in (False, True):
        tag = "tls" if tls else "plain"
        peer = idle_tls_peer if tls else idle_plain_peer
        with RawServer(lambda conn: peer(c, conn, True)) as server:
            pol = c.policy(client_ep(c.suite, server.port),
                           name=tag + ".cfg") if tls else None
            _, rep = run_probe(c, tag + "-probe", probe_argv(
                c, "connect", "localhost", server.port, "--send", FLOOD,
                "--nonblock", "--no-read", "--hold-ms", 1000),
                policy=pol, preload=tls)
        results[tag] = check_flood(tag, rep, blocking=False)
    c.note("taken before EAGAIN: %s" % results)


def proc_rss_kib(proc):
    with open("/proc/%d/status" % proc.pid) as f:
        m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) if m else -1


def flood_without_reading(sock, send):
    """Sends FLOOD bytes in 64 KiB pieces, never reading, until a send has
    blocked for 1 s (flow control) or all went; returns the bytes sent."""
    sock.settimeout(1)
    piece, sent = b"\x5a" * 65536, 0
    try:
        while sent < FLOOD:
            send(piece)
            sent += len(piece)
    except (socket.timeout, OSError):
        pass
    return sent


def echo_loop_flood_case(app):
    def run(c):
        s = c.suite
        taken = {}
        for tls in (False, True):
            tag = "tls" if tls else "plain"
            port = free_port()
            pol = c.policy(server_ep(s, port), name=tag + ".cfg") \
                if tls else None
            server, port = ev_server(c, app, pol, port, name=tag + "-server",
                                     preload=tls)
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=T_RUN) as sock:
                if tls:
                    peer = BioTls(sock, s)
                    peer.handshake()
                    send = peer.send
                else:
                    send = sock.sendall
                before = proc_rss_kib(server)
                taken[tag] = flood_without_reading(sock, send)
                grown = proc_rss_kib(server) - before
            c.note("%s: %d bytes taken, server RSS %+d KiB from %d"
                   % (tag, taken[tag], grown, before))
            check(taken[tag] < FLOOD, "%s: the server took all %d bytes of "
                  "a client that never reads its echo" % (tag, FLOOD))
            check(grown < RSS_BOUND_KIB, "%s: the server's RSS grew by %d "
                  "KiB" % (tag, grown))
            proc = echo_client(c, port, "--line", "next client",
                               policy=c.policy(client_ep(s, port),
                                               name=tag + "-next.cfg")
                               if tls else None, preload=tls,
                               host="localhost" if tls else "127.0.0.1",
                               name=tag + "-next")
            check(proc.p.returncode == 0 and "next client" in proc.out(),
                  "%s: the server does not serve the next client" % tag)
    run.__doc__ = ("%s: a client floods 64 MiB and never reads the echo: "
                   "the server stops taking bytes as over plain TCP, its "
                   "RSS grows by less than 8 MiB, it serves the next "
                   "client" % app)
    return run


for _app in ("ev_epoll_server", "ev_poll_server"):
    case(echo_loop_flood_case(_app), name="flood_unread_echo_" + _app)
