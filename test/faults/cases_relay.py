# The network misbehaving (issue 12): test/faults/fault_relay.py between
# fault_probe (the client) and an echo server, with a schedule per
# direction. Each case runs the same program pair twice through the same
# schedule, over plain TCP (the reference) and with both ends under the
# shim, and compares what the client saw (docs/testing.md, "Fault suite",
# defines "the same point"). Exec'd by test/faults/run in the integration
# harness's namespace (cases_common.py is loaded before this file).

# The errors a reset may give a TLS program (a reset cuts a record; the
# shim reports a cut stream as ECONNRESET, docs/shim.md, "errno choices").
RESET_ERRNOS = ("ECONNRESET", "EPIPE")


def fault_relay(c, target_port, schedule, tag):
    """Starts fault_relay.py to 127.0.0.1:target_port with the schedule;
    returns (proc, port, recording prefix)."""
    prefix = c.path(tag + ".wire")
    port_file = c.path(tag + "-relay.port")
    argv = [sys.executable, os.path.join(FAULTS_DIR, "fault_relay.py"),
            str(target_port), port_file, prefix] + list(schedule)
    proc = c.start(tag + "-relay", argv)
    return proc, wait_port_file(proc, port_file), prefix


def relay_server(c, app, tls, tag):
    """The echo server of a relay case, plain or under a listen endpoint;
    returns (proc, port, the client policy for a given port or None)."""
    s = c.suite
    port = free_port()
    policy = c.policy(server_ep(s, port), name=tag + "-server.cfg") \
        if tls else None
    if app == "echo_server":
        proc, port = echo_server(c, policy, port=port, name=tag + "-server",
                                 preload=tls)
    else:
        args = ["--et"] if app == "ev_epoll_server" else []
        proc, port = ev_server(c, app, policy, port, args=args,
                               name=tag + "-server", preload=tls)
    return proc, port


def relay_run(c, schedule, nbytes, app, tls):
    """One run through the relay; returns (client report, relay line,
    recording prefix)."""
    tag = "tls" if tls else "plain"
    server, port = relay_server(c, app, tls, tag)
    relay_proc, rport, prefix = fault_relay(c, port, schedule, tag)
    policy = c.policy(client_ep(c.suite, rport), name=tag + "-client.cfg") \
        if tls else None
    probe, rep = run_probe(c, tag + "-client",
                           probe_argv(c, "connect", "localhost", rport,
                                      "--send", nbytes),
                           policy=policy, preload=tls)
    check(relay_proc.wait_output(r"(?m)^conn 1: .*$", T_RUN) is not None,
          "%s: the relay did not finish the connection" % tag)
    line = re.search(r"(?m)^conn 1: .*$", relay_proc.out()).group(0)
    c.note("%s: client %s; relay %s" % (tag, rep, line))
    # The server outlived the fault and serves the next client directly.
    check(server.alive(), "%s: the server died" % tag)
    after = echo_client(c, port, "--line", "after the fault",
                        policy=c.policy(client_ep(c.suite, port),
                                        name=tag + "-after.cfg")
                        if tls else None, preload=tls, host="localhost"
                        if tls else "127.0.0.1", name=tag + "-after")
    check(after.p.returncode == 0 and "after the fault" in after.out(),
          "%s: the server does not serve the next client" % tag)
    if not tls:
        # The control: the recording shows plaintext when there is some,
        # so the checks of the TLS run below can fail.
        data = read_file("%s.c2s" % prefix)
        check(any(w in data for w in payload_windows(min(nbytes, len(data)))),
              "plain c2s: the payload is not in the recording")
    if tls:
        check(not any("handshake-timeout" in l for l in shim_errors(probe)),
              "the fault was only noticed by the handshake-timeout")
        check(not FATAL.search(server.err() + probe.err()),
              "a shim log has a fatal-looking line")
        for d in ("c2s", "s2c"):
            data = read_file("%s.%s" % (prefix, d))
            check_no_plaintext(data, "tls %s" % d, nbytes)
            check_tls_start(data, "tls %s" % d)
    return rep, line


def check_same_point(plain, tls, nbytes):
    """The TLS run ended where the plain one did, in the terms of
    docs/testing.md ("the same point")."""
    if "connect" not in tls or tls["connect"] != "ok":
        # A fault inside the TLS handshake: connect() reports it.
        check(plain.get("connect") != "ok" or plain["read"][0] == "error",
              "connect failed under TLS (%s) but plain TCP completed the "
              "exchange" % tls.get("connect"))
        check(tls.get("connect") in RESET_ERRNOS,
              "connect under TLS failed with %s, expected ECONNRESET"
              % tls.get("connect"))
        return
    check(plain.get("read") and tls.get("read"), "a run printed no read "
          "result (plain %s, tls %s)" % (plain, tls))
    p_how, p_err, p_got, p_ok = plain["read"]
    t_how, t_err, t_got, t_ok = tls["read"]
    check(p_ok and t_ok, "a byte arrived changed (plain intact %s, tls "
          "intact %s)" % (p_ok, t_ok))
    if p_how == "eof":
        check(p_got == nbytes, "the plain reference lost bytes: %d of %d"
              % (p_got, nbytes))
        check((t_how, t_got) == ("eof", nbytes), "plain TCP got all %d bytes "
              "and EOF; TLS got read %s %s after %d" % (nbytes, t_how, t_err,
                                                        t_got))
        check(tls.get("write") == ("done", None, nbytes),
              "TLS write result %s, expected done %d" % (tls.get("write"),
                                                         nbytes))
        return
    check(t_how == "error" and t_err in RESET_ERRNOS + (p_err,),
          "plain TCP: read failed with %s after %d; TLS: read %s %s after %d"
          % (p_err, p_got, t_how, t_err, t_got))
    for name, rep in (("plain", plain), ("tls", tls)):
        w = rep.get("write")
        check(w is None or w[0] == "done" or w[1] in RESET_ERRNOS,
              "%s: the write failed with %s" % (name, w))


def relay_byte_limit(line, direction):
    return int(re.search(r"%s (\d+)" % direction, line).group(1))


def relay_case(schedule, nbytes, app="echo_server", doc=""):
    in_handshake = "in_handshake" in doc or "inside the" in doc

    def run(c):
        plain, p_line = relay_run(c, schedule, nbytes, app, tls=False)
        tls, t_line = relay_run(c, schedule, nbytes, app, tls=True)
        # Where the fault falls decides which call reports it under TLS.
        check((tls.get("connect") == "ok") != in_handshake, "under TLS "
              "connect gave %s; this fault falls %s the handshake"
              % (tls.get("connect"), "inside" if in_handshake else "after"))
        check_same_point(plain, tls, nbytes)
        if "--rst" in schedule:
            # No more bytes came back than crossed the wire before the
            # reset; under TLS records and the handshake take part of them.
            for rep, line in ((plain, p_line), (tls, t_line)):
                got = rep.get("read", (None, None, 0))[2]
                check(got <= relay_byte_limit(line, "s2c"), "more bytes read "
                      "(%d) than the relay forwarded: %s" % (got, line))
    run.__doc__ = doc
    return run


RELAY_CASES = [
    ("relay_one_byte_segments", ["--seg1", "c2s", "--seg1", "s2c"], 24 << 10,
     "echo_server",
     "every segment in both directions is 1 byte (TCP_NODELAY): the whole "
     "stream arrives intact under TLS as over plain TCP"),
    ("relay_one_byte_segments_epoll", ["--seg1", "c2s", "--seg1", "s2c"],
     16 << 10, "ev_epoll_server",
     "the same against the edge-triggered epoll server: partial records "
     "on every read"),
    ("relay_delayed_segments", ["--delay-ms", "c2s", "3", "--delay-ms", "s2c",
                                "3"], 256 << 10, "echo_server",
     "every segment delayed 3 ms both ways: intact, as over plain TCP"),
    ("relay_stall_mid_stream", ["--stall", "c2s", "20000", "1000"], 128 << 10,
     "ev_poll_server",
     "client to server stalls 1 s after 20000 bytes (poll server): the "
     "transfer resumes and completes intact"),
    ("relay_hold_one_direction", ["--stall", "s2c", "9000", "1500"], 1 << 20,
     "echo_server",
     "server to client held 1.5 s after 9000 bytes while client to server "
     "flows until flow control stops it: completes intact"),
    ("relay_reset_c2s_mid_transfer", ["--rst", "c2s", "60000"], 1 << 20,
     "echo_server",
     "reset after 60000 bytes client to server: the client's read fails "
     "with ECONNRESET after an intact prefix, as over plain TCP"),
    ("relay_reset_s2c_mid_transfer", ["--rst", "s2c", "60000"], 1 << 20,
     "ev_epoll_server",
     "reset after 60000 bytes server to client (epoll server): ECONNRESET "
     "after an intact prefix no longer than what crossed the wire"),
    ("relay_reset_s2c_in_handshake", ["--rst", "s2c", "300"], 64 << 10,
     "echo_server",
     "reset after 300 bytes server to client, inside the TLS handshake: "
     "connect() fails with ECONNRESET, where plain TCP's read did"),
    ("relay_reset_c2s_in_handshake", ["--rst", "c2s", "100"], 64 << 10,
     "echo_server",
     "reset after 100 bytes client to server, inside the ClientHello: "
     "connect() fails with ECONNRESET"),
]

for _name, _sched, _n, _app, _doc in RELAY_CASES:
    case(relay_case(_sched, _n, _app, _doc), name=_name)
