# Peers that misbehave (issue 12), in both roles. A shimmed fault_probe
# (accept: a TLS server; connect: a TLS client) faces a peer of the
# harness's own that closes, resets, sends garbage, HTTP, a huge record
# header, an alert or plaintext, or says nothing, or never reads. Each
# case checks the program's visible result (the call, its errno: the one
# docs/shim.md, "errno choices", documents), that every wait is bounded,
# that the server then serves a good client, and that what the peer
# received (its recording) holds no plaintext. Exec'd by test/faults/run
# in the integration harness's namespace, after cases_common.py.

PROBE_SEND = 4096   # the probe's payload: what must never show in clear
PEER_SENT = 3000    # application bytes a TLS peer sends before its fault


def good_tls_client(c, port):
    """A well-behaved TLS client of the harness's own after the fault:
    sends PROBE_SEND bytes of the stream, reads as many back (the probe
    sends the same stream), ends with close_notify. Returns what it read."""
    with socket.create_connection(("127.0.0.1", port), timeout=T_RUN) as s:
        tls = BioTls(s, c.suite)
        tls.handshake()
        tls.send(prng_bytes(PROBE_SEND))
        got = tls.recv(PROBE_SEND)
        try:
            tls.tls.unwrap()
        except (tls.ssl.SSLWantReadError, tls.ssl.SSLError):
            pass
        tls._flush()
        return got


def server_fault_case(attack, mid=False, doc="", reason=None):
    """A shimmed fault_probe accept (two connections in turn) whose first
    client runs attack(c, sock) -> what it received; the second is a good
    TLS client. mid: the fault comes after the handshake and PEER_SENT
    bytes, which the probe must have read intact before its ECONNRESET."""
    def run(c):
        s = c.suite
        port = free_port()
        pol = c.policy(server_ep(s, port, handshake_timeout=20))
        probe, port = start_probe_server(c, "probe", port, pol, args=(
            "--send", PROBE_SEND, "--conns", 2))
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=T_RUN) as sock:
            received = attack(c, sock)
            rep = wait_probe_conn(probe, 1)
        c.note("first connection: %s; the peer received %d bytes"
               % (rep, len(received)))
        check(rep.get("accept") == "ok", "accept() failed: %s" % rep)
        read = rep.get("read")
        check(read and read[0] == "error" and read[1] == "ECONNRESET",
              "read should fail with ECONNRESET, got %s" % (read,))
        check(read[3], "the bytes read were not the peer's stream")
        if mid:
            check(read[2] <= PEER_SENT, "read more than the peer sent")
            check(established(probe, "srv"), "no TLS connection logged")
        else:
            check(read[2] == 0, "bytes were read from a failed handshake")
        write = rep.get("write")
        check(write is None or write[1] in ("ECONNRESET", "EPIPE") or
              mid and write[0] == "done", "write should fail with "
              "ECONNRESET or EPIPE, got %s" % (write,))
        if mid:
            check(received == prng_bytes(PROBE_SEND)[:len(received)],
                  "the TLS peer did not get the probe's stream")
        else:
            check_no_plaintext(received, "what the faulty client received",
                               PROBE_SEND)
            check_tls_start(received, "what the faulty client received")
            check(shim_errors(probe), "the shim logged no error")
        check(not any("handshake-timeout" in l for l in shim_errors(probe)),
              "the fault was only noticed by the handshake-timeout")
        if reason:
            check(wait_shim_error(probe, reason), "the shim's error line does "
                  "not give the reason /%s/" % reason)
        got = good_tls_client(c, port)
        check(got == prng_bytes(PROBE_SEND), "the good client after the "
              "fault was not served (%d bytes)" % len(got))
        second = wait_probe_conn(probe, 2)
        check(second.get("read") == ("eof", None, PROBE_SEND, True),
              "the probe's second connection: %s" % second)
        check(not FATAL.search(probe.err()), "a fatal-looking shim line")
    run.__doc__ = doc
    return run


def half_hello_then(end):
    def attack(c, sock):
        sock.sendall(client_hello()[:40])
        if end == "rst":
            rst_close(sock)
            return b""
        sock.shutdown(socket.SHUT_WR)
        return recv_all(sock)
    return attack


def send_then_listen(data):
    def attack(c, sock):
        sock.sendall(data)
        return recv_all(sock)
    return attack


def huge_record(c, sock):
    """A handshake record header announcing 65535 bytes (over the 16 KiB +
    2048 a record may hold), then a little of it; the socket stays open, so
    only the header can end the handshake before the 20 s timeout."""
    sock.sendall(b"\x16\x03\x01\xff\xff" + b"\x01" * 64)
    return recv_all(sock)


def tls_then(end):
    """A real TLS client that sends PEER_SENT bytes of the stream, reads
    at least as many, then closes TCP without close_notify, or resets."""
    def attack(c, sock):
        tls = BioTls(sock, c.suite)
        tls.handshake()
        tls.send(prng_bytes(PEER_SENT))
        # At least as much back as it sent: an echo server sends no more.
        got = tls.recv(PEER_SENT)
        if end == "rst":
            rst_close(sock)
        else:
            sock.shutdown(socket.SHUT_WR)
        return got
    return attack


def tls_then_raw(raw):
    """A real TLS client that sends PEER_SENT bytes, then raw bytes on the
    socket itself (a forged record), and waits for the server to end."""
    def attack(c, sock):
        tls = BioTls(sock, c.suite)
        tls.handshake()
        tls.send(prng_bytes(PEER_SENT))
        sock.sendall(raw)
        recv_all(sock, timeout=T_RUN // 2)
        return b""
    return attack


ALERT = b"\x15\x03\x03\x00\x02\x02\x28"   # fatal handshake_failure
HTTP_GET = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

SERVER_FAULTS = [
    ("server_peer_closes_in_handshake", half_hello_then("fin"), False,
     "a client sends 40 bytes of a ClientHello and closes: read() and "
     "write() fail with ECONNRESET, the next client is served"),
    ("server_peer_resets_in_handshake", half_hello_then("rst"), False,
     "the same with a reset (SO_LINGER 0)"),
    ("server_random_bytes", send_then_listen(bytes(
        (i * 131 + 7) & 0xff for i in range(4096))), False,
     "4 KiB of noise instead of a ClientHello: ECONNRESET, only TLS goes "
     "back"),
    ("server_hello_then_garbage", send_then_listen(
        client_hello() + bytes((i * 37 + 1) & 0xff for i in range(2048))),
     False, "a valid ClientHello followed by 2 KiB of garbage: "
     "ECONNRESET"),
    ("server_http_request", send_then_listen(HTTP_GET), False,
     "an HTTP request on the TLS port: ECONNRESET, no HTTP answer, no "
     "plaintext"),
    ("server_plaintext_client", send_then_listen(b"hello in clear\n"),
     False, "a plaintext client on the TLS port: ECONNRESET, nothing "
     "comes back in clear"),
    ("server_huge_record_length", huge_record, False,
     "a record header announcing 65535 bytes: refused at once (not by the "
     "handshake-timeout), ECONNRESET"),
    ("server_alert", send_then_listen(ALERT), False,
     "a fatal alert instead of a ClientHello: ECONNRESET"),
    ("server_peer_closes_mid_transfer", tls_then("fin"), True,
     "a TLS client closes TCP after 3000 bytes, no close_notify: the probe "
     "reads them intact, then ECONNRESET (docs/shim.md, truncation)"),
    ("server_huge_record_after_handshake", tls_then_raw(
        b"\x17\x03\x03\xff\xff" + b"\x03" * 64), True,
     "after the handshake and 3000 bytes, an application data record "
     "header announcing 65535 bytes: the probe reads the 3000 bytes, then "
     "ECONNRESET from the header alone (not a cut stream)"),
    ("server_garbage_after_handshake", tls_then_raw(
        bytes((i * 59 + 3) & 0xff for i in range(1024))), True,
     "after the handshake and 3000 bytes, 1 KiB of garbage: ECONNRESET"),
    ("server_alert_after_handshake", tls_then_raw(ALERT), True,
     "after the handshake and 3000 bytes, a fatal alert in clear: "
     "ECONNRESET"),
    ("server_peer_resets_mid_transfer", tls_then("rst"), True,
     "a TLS client resets after 3000 bytes: an intact prefix, then "
     "ECONNRESET"),
]

# The reason the shim must log, where it tells this fault from a cut
# stream.
SERVER_REASONS = {
    "server_huge_record_after_handshake": r"packet length too long",
    "server_huge_record_length": r"packet length too long|record",
}

for _name, _attack, _mid, _doc in SERVER_FAULTS:
    case(server_fault_case(_attack, _mid, _doc, SERVER_REASONS.get(_name)),
         name=_name)


# ---- the other role: a shimmed client facing a misbehaving server ---------

def client_fault_case(script, want, mid=False, doc=""):
    """A shimmed fault_probe connect (sending PROBE_SEND bytes) to a
    RawServer running script(c, conn) -> what it received. want: the errno
    connect() must fail with, or None when the fault comes after the
    handshake (mid): then PEER_SENT bytes are read intact before
    ECONNRESET. handshake-timeout is 20 s: the fault must end the
    handshake by itself."""
    def run(c):
        with RawServer(lambda conn: script(c, conn)) as server:
            pol = c.policy(client_ep(c.suite, server.port,
                                     handshake_timeout=20))
            probe, rep = run_probe(c, "probe", probe_argv(
                c, "connect", "localhost", server.port, "--send",
                PROBE_SEND), policy=pol)
        c.note("probe: %s; the server received %d bytes (%s)"
               % (rep, len(server.received), server.error))
        received = server.received
        if mid:
            check(rep.get("connect") == "ok", "connect failed: %s" % rep)
            read = rep.get("read")
            check(read and read[0] == "error" and read[1] == "ECONNRESET" and
                  read[2] <= PEER_SENT and read[3], "expected an intact "
                  "prefix of at most %d bytes, then ECONNRESET; got %s"
                  % (PEER_SENT, read))
            check(received == prng_bytes(PROBE_SEND)[:len(received)],
                  "the TLS server did not get the probe's stream")
            check(established(probe, "cli"), "no TLS connection logged")
        else:
            check(rep.get("connect") == want, "connect should fail with %s, "
                  "got %s" % (want, rep))
            check("read" not in rep and "write" not in rep,
                  "I/O ran after a failed connect: %s" % rep)
            check_no_plaintext(received, "what the faulty server received",
                               PROBE_SEND)
            check_tls_start(received, "what the faulty server received")
            check(shim_errors(probe), "the shim logged no error")
        check(not any("handshake-timeout" in l for l in shim_errors(probe)),
              "the fault was only noticed by the handshake-timeout")
        check(not FATAL.search(probe.err()), "a fatal-looking shim line")
    run.__doc__ = doc
    return run


def hello_then(end, reply=b""):
    """Reads the ClientHello, then answers reply and closes, resets, or
    (end "listen") keeps listening until the client ends."""
    def script(c, conn):
        got = recv_some(conn, want=5)
        if reply:
            conn.sendall(reply)
        if end == "rst":
            rst_close(conn)
            return got
        if end == "fin":
            conn.shutdown(socket.SHUT_WR)
        return got + recv_all(conn)
    return script


def banner_first(c, conn):
    """A plaintext server that greets first, as SMTP and FTP do."""
    conn.sendall(b"220 plaintext service ready\r\n")
    return recv_all(conn)


def tls_server_then(end):
    """A real TLS server: reads what the probe sends, sends PEER_SENT bytes
    of the stream, then closes TCP without close_notify, or resets."""
    def script(c, conn):
        tls = BioTls(conn, c.suite, server_side=True)
        tls.handshake()
        got = tls.recv(PROBE_SEND)
        tls.send(prng_bytes(PEER_SENT))
        if end == "rst":
            rst_close(conn)
        else:
            conn.shutdown(socket.SHUT_WR)
            recv_all(conn, timeout=2)
        return got
    return script


HTTP_400 = (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n")

CLIENT_FAULTS = [
    ("client_peer_closes_in_handshake", hello_then("fin"), "ECONNRESET",
     False, "the server reads the ClientHello and closes: connect() fails "
     "with ECONNRESET"),
    ("client_peer_resets_in_handshake", hello_then("rst"), "ECONNRESET",
     False, "the same with a reset"),
    ("client_random_bytes", hello_then("listen", bytes(
        (i * 131 + 7) & 0xff for i in range(4096))), "EPROTO", False,
     "4 KiB of noise instead of a ServerHello: connect() fails with EPROTO"),
    ("client_http_answer", hello_then("fin", HTTP_400), "EPROTO", False,
     "an HTTP server's 400 answer: EPROTO"),
    ("client_plaintext_server", banner_first, "EPROTO", False,
     "a plaintext server that greets first: EPROTO, and it receives only "
     "a ClientHello"),
    ("client_huge_record_length", hello_then("listen", b"\x16\x03\x03\xff\xff"
                                             + b"\x02" * 64), "EPROTO",
     False, "a record header announcing 65535 bytes, the socket kept open: "
     "EPROTO at once, not by the handshake-timeout"),
    ("client_alert", hello_then("listen", ALERT), "EPROTO", False,
     "a fatal handshake_failure alert: EPROTO"),
    ("client_peer_closes_mid_transfer", tls_server_then("fin"), None, True,
     "a TLS server sends 3000 bytes and closes TCP without close_notify: "
     "they are read intact, then ECONNRESET"),
    ("client_peer_resets_mid_transfer", tls_server_then("rst"), None, True,
     "a TLS server sends 3000 bytes and resets: an intact prefix, then "
     "ECONNRESET"),
]

for _name, _script, _want, _mid, _doc in CLIENT_FAULTS:
    case(client_fault_case(_script, _want, _mid, _doc), name=_name)


# ---- the same clients against the event-loop servers ---------------------

def event_loop_fault_case(attack, app, mid):
    """The single-threaded servers handle every connection's handshake in
    one loop: a faulty client must cost them that connection only. The
    attack runs against the shimmed app, then a good client is served."""
    def run(c):
        server, port, cpol = shim_ev_server(c, app, None)
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=T_RUN) as sock:
            received = attack(c, sock)
        if not mid:  # a mid-transfer attack returns what it decrypted
            check_no_plaintext(received, "what the faulty client received",
                               PROBE_SEND, extra=(b"hello in clear",
                                                  b"GET /"))
        proc = echo_client(c, port, "--line", "after the fault", policy=cpol)
        check(proc.p.returncode == 0 and "after the fault" in proc.out(),
              "the server does not serve the next client")
        check(server.alive(), "the server died")
        check(not FATAL.search(server.err()), "a fatal-looking shim line")
    run.__doc__ = "%s survives the fault and serves the next client" % app
    return run


for _name, _attack, _mid, _doc in SERVER_FAULTS:
    for _app in ("ev_epoll_server", "ev_poll_server"):
        case(event_loop_fault_case(_attack, _app, _mid),
             name="%s_%s" % (_name, _app[3:]))
