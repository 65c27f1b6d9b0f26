# Signals interrupting blocked calls (issue 12; docs/shim.md, "Signals
# and blocked calls"). build/apps/sig_probe blocks one call at a time, has
# another thread send it SIGUSR1 with a handler without SA_RESTART and
# then with it, and prints what the call gave. It runs over plain TCP
# (the reference) and under the shim against an independent TLS peer
# (test/integration/sig_peer.py, Python's ssl), and both must print the
# same lines. The plain run is also held to the kernel's rules
# (signal(7)), so a reference that changed is noticed. Run by
# test/integration/run, in its namespace.

SIG_PEER = os.path.join(ROOT, "test", "integration", "sig_peer.py")


def sig_peer(c, name, tls):
    """Starts sig_peer.py; returns its (MAIN, STALL, SLOW) ports."""
    s = c.suite
    port_file = c.path(name + ".ports")
    argv = [sys.executable, SIG_PEER, port_file, "50"]
    argv += ["--tls", s.pki("server.pem"), s.pki("server.key")] if tls \
        else ["--plain"]
    proc = c.start(name, argv)
    deadline = time.monotonic() + T_START
    while time.monotonic() < deadline:
        try:
            with open(port_file) as f:
                ports = [int(p) for p in f.read().split()]
            if len(ports) == 3:
                return ports
        except (FileNotFoundError, ValueError):
            pass
        check(proc.alive(), "%s exited before it was ready" % name)
        time.sleep(0.02)
    raise Failure("%s did not report its ports within %ss" % (name, T_START))


def sig_both(c, *calls, listen=False):
    """Runs sig_probe CALLS over plain TCP and under the shim (every port
    of the TLS peer a connect endpoint, the probe's own listening port a
    listen endpoint); checks both printed the same lines, and that the
    shim took the connections (TLS established) or, with listen, the
    listening socket (its endpoint's context built). Returns the lines."""
    app = need_app(c, "sig_probe")
    runs = {}
    for label, tls in (("plain", False), ("shim", True)):
        ports = sig_peer(c, label + "-peer", tls)
        lport = free_port()
        argv = [app, "127.0.0.1"] + [str(p) for p in ports + [lport]]
        env = c.env(preload=False)
        if tls:
            eps = [client_ep(c.suite, p, name="peer%d" % i, host="127.0.0.1")
                   for i, p in enumerate(ports)]
            eps.append(server_ep(c.suite, lport))
            env = c.env(c.policy(*eps))
        runs[label] = c.run(label, argv + list(calls), env, timeout=T_RUN * 2)
        check(runs[label].p.returncode == 0,
              "sig_probe fails over %s" % ("TLS" if tls else "plain TCP"))
    plain, shim = runs["plain"].out(), runs["shim"].out()
    if listen:
        check("event=context_built endpoint=srv" in runs["shim"].err(),
              "the shim did not take the listening socket")
    else:
        check(established(runs["shim"]), "the shim logged no TLS connection")
    check(shim == plain, "under the shim the program saw\n%swhere over "
          "plain TCP it saw\n%s" % (shim, plain))
    return plain


def expect_lines(out, *lines):
    for line in lines:
        check(line in out.splitlines(), "plain TCP itself no longer gives "
              "'%s' (the reference changed):\n%s" % (line, out))


@case
def signals_blocked_write(c):
    """A write/send/sendmsg blocked on a full socket buffer: EINTR without
    SA_RESTART; with it the call goes on and completes once the peer
    reads, every byte delivered (before, the shim gave EINTR). With
    SO_SNDTIMEO set, EINTR even with SA_RESTART (signal(7)). A write that
    had taken bytes when the signal came returns their count at once, in
    both modes (before, the shim then waited to flush its buffer until
    the peer read again)."""
    out = sig_both(c, "write", "send", "sendmsg", "write-sndtimeo",
                   "write-partial")
    expect_lines(out,
                 "write eintr: -1 EINTR at-signal peer got all yes",
                 "write restart: 65536 after-release peer got all yes",
                 "sendmsg restart: 65536 after-release peer got all yes",
                 "write-sndtimeo restart: -1 EINTR at-signal peer got all yes",
                 "write-partial restart: partial at-signal peer got all yes")


@case
def signals_blocked_connect(c):
    """A blocking connect that waits: over plain TCP for a listener whose
    backlog is full, under the shim for a TLS peer that leaves the
    ClientHello unanswered. Without SA_RESTART, EINTR, and the connection
    goes on: a connect again (a program retrying on EINTR) returns 0 once
    it is done, then EISCONN; with SA_RESTART, Linux restarts the connect,
    which returns 0 once the peer answers (before, the shim ignored the
    signal and went on waiting in both modes)."""
    out = sig_both(c, "connect")
    expect_lines(out, "connect eintr: -1 EINTR at-signal, again 0, again -1 "
                 "EISCONN then read 'hello'",
                 "connect restart: 0 after-release then read 'hello'")


@case
def signals_blocked_waits(c):
    """poll, ppoll, select, pselect, epoll_wait, epoll_pwait waiting on a
    quiet managed socket: EINTR in both modes, as signal(7) says."""
    calls = ("poll", "ppoll", "select", "pselect", "epoll_wait",
             "epoll_pwait")
    out = sig_both(c, *calls)
    expect_lines(out, *["%s %s: -1 EINTR at-signal" % (call, m)
                        for call in calls for m in ("eintr", "restart")])


@case
def signals_blocked_accept(c):
    """accept/accept4 on a listen endpoint with no client: EINTR, or with
    SA_RESTART restarted until a client comes."""
    out = sig_both(c, "accept", "accept4", listen=True)
    expect_lines(out, "accept eintr: -1 EINTR at-signal",
                 "accept4 restart: 0 after-release (a descriptor)")


@case
def signals_recv_with_rcvtimeo(c):
    """recv with SO_RCVTIMEO: EINTR even with SA_RESTART (signal(7))."""
    out = sig_both(c, "recv-rcvtimeo")
    expect_lines(out, "recv-rcvtimeo restart: -1 EINTR at-signal")


@case
def signals_read_in_handshake(c):
    """A blocking read after a non-blocking connect, on a connection whose
    peer says nothing: over plain TCP a read that waits for data, under
    the shim one that waits in the TLS handshake. The shim's rule: as a
    read, EINTR without SA_RESTART, and with it the handshake goes on and
    the read returns the data (before, the signal was ignored)."""
    out = sig_both(c, "read-handshake")
    expect_lines(out, "read-handshake eintr: -1 EINTR at-signal",
                 "read-handshake restart: 6 after-release read 'hello'")


@case
def signals_write_in_handshake(c):
    """A blocking write after a non-blocking connect, before the handshake
    is done: over plain TCP it returns at once (the reference has no
    blocked state); under the shim it waits for the handshake. The
    shim's rule: as a write waiting for buffer space, EINTR without
    SA_RESTART, nothing taken; with it the wait goes on and the write
    returns its count once the peer answers."""
    app = need_app(c, "sig_probe")
    ports = sig_peer(c, "plain-peer", False)
    plain = c.run("plain", [app, "127.0.0.1"] + [str(p) for p in ports] +
                  [str(free_port()), "write-handshake"], c.env(preload=False))
    check(plain.p.returncode == 0, "sig_probe fails over plain TCP")
    expect_lines(plain.out(), "write-handshake eintr: 3 at-signal",
                 "write-handshake restart: 3 at-signal then read 'hello'")
    ports = sig_peer(c, "tls-peer", True)
    policy = c.policy(*[client_ep(c.suite, p, name="peer%d" % i,
                                  host="127.0.0.1")
                        for i, p in enumerate(ports)])
    shim = c.run("shim", [app, "127.0.0.1"] + [str(p) for p in ports] +
                 [str(free_port()), "write-handshake"], c.env(policy))
    check(shim.p.returncode == 0, "sig_probe fails under the shim")
    check(established(shim), "the shim logged no TLS connection")
    out = shim.out().splitlines()
    for line in ("write-handshake eintr: -1 EINTR at-signal",
                 "write-handshake restart: 3 after-release then read 'hello'"):
        check(line in out, "under the shim: no '%s' in\n%s" % (line,
                                                             shim.out()))
