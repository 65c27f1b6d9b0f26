# Cases for what a failure looks like to the program and in the log:
# truncation (tls-unexpected-eof), peers that do not speak TLS, one
# "policy ... loaded" line per process image. Exec'd by test/integration/run
# in its namespace (helpers, @case, check). docs/testing.md lists them.

# A TLS peer (Python's ssl, no shim) that sends DATA and then closes TCP
# without close_notify: os._exit right after the send, so the kernel sends
# FIN and nothing else. As a client it pins TLS 1.2, so no session ticket
# sits unread in its socket (an unread byte would make the close a reset).
CUTTING_PEER = r'''
import os, socket, ssl, sys
mode, data = sys.argv[1], sys.argv[-1].encode()
signal_bound = __import__("signal")
signal_bound.alarm(20)
if mode == "server":
    port_file, cert, key = sys.argv[2:5]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(1)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % l.getsockname()[1])
    os.rename(port_file + ".tmp", port_file)
    conn, _ = l.accept()
    tls = ctx.wrap_socket(conn, server_side=True)
else:
    port, ca = sys.argv[2:4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))),
                          server_hostname="localhost")
tls.sendall(data)
print("sent", len(data), flush=True)
os._exit(0)
'''

TRUNC_DATA = "sent-before-the-cut"

TRUNC_WARNING = re.compile(
    r"warning: endpoint '(?P<ep>[^']+)': (?P<peer>\S+) closed the connection "
    r"without close_notify \(the stream may be truncated\): the program's "
    r"next read fails with ECONNRESET")


def cutting_peer(c, mode, *args):
    path = c.write("cutting_peer.py", CUTTING_PEER)
    return c.start("peer-" + mode, [sys.executable, path, mode] + list(args)
                   + [TRUNC_DATA])


def reader_result(proc):
    """eof_reader's ("data", "end") lines."""
    data = re.search(r"^data: (.*)$", proc.out(), re.M)
    end = re.search(r"^end: (.*)$", proc.out(), re.M)
    return (data.group(1) if data else None, end.group(1) if end else None)


def check_truncation(c, reader, peer, option, endpoint):
    """The reader got every byte the peer sent, then EOF ("eof") or
    ECONNRESET (default) with one warning naming endpoint and peer."""
    peer.wait(T_RUN)
    data, end = reader_result(reader)
    check(data == TRUNC_DATA, "the reader got %r, the peer sent %r"
          % (data, TRUNC_DATA))
    warnings = [m for m in TRUNC_WARNING.finditer(reader.err())]
    if option == "eof":
        check(end == "eof", "with tls-unexpected-eof = \"eof\" the read "
              "after the data should be EOF, got %r" % end)
        check(not warnings, "a truncation warning with the option set")
        check("closed the connection without close_notify" in reader.err(),
              "no info line says the stream may be truncated")
    else:
        check(end == "error ECONNRESET", "by default the read after the "
              "data should fail with ECONNRESET, got %r" % end)
        check(len(warnings) == 1 and warnings[0].group("ep") == endpoint and
              warnings[0].group("peer").startswith(("localhost:",
                                                    "127.0.0.1:")),
              "want one warning naming endpoint '%s' and the peer, got %d"
              % (endpoint, len(warnings)))
    check(not shim_errors(reader), "a truncation is a warning, not an error")


def truncation_peer_is_server(c, option):
    s = c.suite
    peer = cutting_peer(c, "server", c.path("peer.port"), s.pki("server.pem"),
                        s.pki("server.key"))
    port = wait_port_file(peer, c.path("peer.port"))
    opts = {"tls_unexpected_eof": option} if option else {}
    pol = c.policy(client_ep(s, port, **opts))
    reader = c.run("reader", [s.app("eof_reader"), "connect", "localhost",
                              str(port)], c.env(pol))
    check_truncation(c, reader, peer, option, "cli")


def truncation_peer_is_client(c, option):
    s = c.suite
    port = free_port()
    opts = {"tls_unexpected_eof": option} if option else {}
    pol = c.policy(server_ep(s, port, **opts))
    reader = c.start("reader", [s.app("eof_reader"), "listen", str(port),
                                c.path("reader.port")], c.env(pol))
    wait_port_file(reader, c.path("reader.port"))
    peer = cutting_peer(c, "client", str(port), s.pki("ca.pem"))
    reader.wait(T_RUN)
    check_truncation(c, reader, peer, option, "srv")


@case
def truncation_server_cuts_default_is_econnreset(c):
    """A TLS server sends data and closes TCP without close_notify: the
    shimmed client reads every byte, then ECONNRESET, with one warning
    naming the endpoint and the peer (tls-unexpected-eof default)."""
    truncation_peer_is_server(c, None)


@case
def truncation_server_cuts_option_eof(c):
    """The same with tls-unexpected-eof = "eof": the data, then EOF."""
    truncation_peer_is_server(c, "eof")


@case
def truncation_client_cuts_default_is_econnreset(c):
    """A TLS client sends data and closes TCP without close_notify: the
    shimmed server reads every byte, then ECONNRESET, with one warning."""
    truncation_peer_is_client(c, None)


@case
def truncation_client_cuts_option_eof(c):
    """The same with tls-unexpected-eof = "eof" on the listen endpoint."""
    truncation_peer_is_client(c, "eof")


# ---- peers that do not speak TLS -------------------------------------------

NOT_TLS = re.compile(r"the peer is not speaking TLS \(it sent \"(?P<text>[^\"]*)")


def check_one_not_tls_line(proc, endpoint, sent_prefix):
    """One error line naming endpoint, saying the peer is not speaking TLS
    and quoting what it sent; never OpenSSL's record-layer wording, and the
    "TLS handshake with" prefix only once."""
    lines = [l for l in shim_errors(proc) if "'%s'" % endpoint in l]
    check(len(lines) == 1, "want one error line for '%s', got %d"
          % (endpoint, len(lines)))
    m = NOT_TLS.search(lines[0])
    check(m and m.group("text").startswith(sent_prefix),
          "the error line does not say the peer is not speaking TLS "
          "(quoting %r): %s" % (sent_prefix, lines[0]))
    check(not re.search(r"(?i)wrong version number|version in common|"
                        r"http request", lines[0]),
          "the error line still gives OpenSSL's reason: %s" % lines[0])
    check(lines[0].count("TLS handshake with") == 1,
          "the line repeats its own prefix: %s" % lines[0])


@case
def plaintext_server_named_not_tls(c):
    """A connect endpoint whose server answers the ClientHello in plaintext
    (an HTTP error page): the client fails with EPROTO and the log says the
    peer is not speaking TLS, quoting it, both prefixes once."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(T_RUN)
    port = lsock.getsockname()[1]
    pol = c.policy(client_ep(c.suite, port))
    argv = [c.suite.app("echo_client"), "localhost", str(port), "--line",
            "hello"]
    client = c.start("client", argv, c.env(pol))
    try:
        conn, _ = lsock.accept()
        conn.settimeout(T_RUN)
        conn.recv(4096)  # the ClientHello (or its start)
        conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the client may have given up (and reset) already
        client.wait(T_RUN)
        conn.close()
    finally:
        lsock.close()
    check(client.p.returncode == 3 and "Protocol error" in client.out() +
          client.err(), "echo_client should fail at connect with EPROTO")
    check_one_not_tls_line(client, "cli", "HTTP/1.0 400 Bad")


@case
def http_request_to_listen_endpoint_named_not_tls(c):
    """An HTTP request to a TLS listen endpoint: the server logs that the
    peer is not speaking TLS, with the request line, and keeps serving."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port)), port=port)
    with socket.create_connection(("127.0.0.1", port), timeout=T_RUN) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        try:
            while sock.recv(4096):
                pass  # the alert, then EOF or a reset
        except OSError:
            pass
    check(wait_shim_error(server, r"not speaking TLS"),
          "the server logged no 'not speaking TLS' line")
    check_one_not_tls_line(server, "srv", r"GET / HTTP/1.1\r\n")
    _, ok = s_client(c, port, "after http", "after http")
    check(ok, "the server does not serve a TLS client after the request")


@case
def plaintext_client_named_not_tls(c):
    """A client that greets in plaintext (a protocol banner) to a TLS
    listen endpoint: logged as not speaking TLS, with the banner."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port)), port=port)
    with socket.create_connection(("127.0.0.1", port), timeout=T_RUN) as sock:
        sock.sendall(b"EHLO client.example\r\n")
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
    check(wait_shim_error(server, r"not speaking TLS"),
          "the server logged no 'not speaking TLS' line")
    check_one_not_tls_line(server, "srv", r"EHLO client.exa")


# ---- one start per process image --------------------------------------------

@case
def policy_loaded_once_per_image(c):
    """Two copies of the library in LD_PRELOAD (an installed one and a
    build, say): one "policy ... loaded" line, and the connection is TLS;
    a program that execs logs it once per image."""
    s = c.suite
    server, port, cpol = shim_pair(c)
    copy = c.path("libsecshim-copy.so")
    shutil.copyfile(s.shim, copy)
    # Each copy comes with the TLS half it loads from its own directory
    # (whichever copy claims the image uses its own).
    shutil.copyfile(os.path.join(s.build, "libsecshim-tls.so"),
                    c.path("libsecshim-tls.so"))
    env = c.env(cpol)
    env["LD_PRELOAD"] += ":" + copy
    argv = [s.app("echo_client"), "localhost", str(port), "--line", "once"]
    proc = c.run("client", argv, env)
    check(proc.p.returncode == 0 and "once" in proc.out(),
          "the line did not come back")
    check(established(proc, "cli"), "the connection was not TLS")
    loaded = re.findall(r"info: policy \S+ loaded", proc.err())
    check(len(loaded) == 1, "want one 'policy ... loaded' line, got %d"
          % len(loaded))
    # An exec is a new image: one line each, two in all.
    proc = c.run("exec", ["/bin/sh", "-c", "exec /bin/true"], env)
    loaded = re.findall(r"info: policy \S+ loaded", proc.err())
    check(len(loaded) == 2, "want one line per image (2), got %d"
          % len(loaded))


@case
def handshake_error_prefix_said_once(c):
    """A client that sends half a ClientHello and closes: one error line,
    "TLS handshake with PEER failed: the peer closed the connection during
    the handshake", the prefix said once (the engine's sentence is the
    reason alone)."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port)), port=port)
    with socket.create_connection(("127.0.0.1", port), timeout=T_RUN) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    hits = wait_shim_error(server, r"closed the connection")
    check(len(hits) == 1, "want one error line, got %d" % len(hits))
    check(re.search(r"endpoint 'srv': TLS handshake with 127\.0\.0\.1:\d+ "
                    r"failed: the peer closed the connection during the "
                    r"handshake$", log_sentence(hits[0])),
          "unexpected line: %s" % hits[0])


# A TLS server (Python's ssl, no shim) that completes the handshake and
# then resets the connection (SO_LINGER {1, 0}, close): what a server that
# refuses a client after the TLS 1.3 handshake may look like from the
# client, whose write then cannot be sent. Prints "reset" once it closed:
# over loopback the reset has then reached the client's socket.
RESET_PEER = r'''
import os, signal, socket, ssl, struct, sys
signal.alarm(20)
port_file, cert, key = sys.argv[1:4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(1)
with open(port_file + ".tmp", "w") as f:
    f.write("%d\n" % l.getsockname()[1])
os.rename(port_file + ".tmp", port_file)
conn, _ = l.accept()
tls = ctx.wrap_socket(conn, server_side=True)
tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
tls.close()  # no close_notify (that is unwrap's): the reset alone
print("reset", flush=True)
sys.stdin.read()
'''


@case
def read_after_reset_with_unsent_ciphertext_ends(c):
    """The peer resets right after the handshake; the program then writes
    (its record cannot be sent: it stays in the conn's outbound buffer
    with the write side dead) and reads. The read must end, with an error
    or EOF. Before: the shim counted the dead buffer as wanting the socket
    writable, polled for POLLOUT|POLLIN (at once ready on a reset socket)
    and went round again without reading: a busy loop until the program's
    alarm (found by the interop matrix, docs/interop.md)."""
    s = c.suite
    need_app(c, "reset_writer")
    peer = c.start("peer", [sys.executable, c.write("reset_peer.py",
                                                     RESET_PEER),
                            c.path("peer.port"), s.pki("server.pem"),
                            s.pki("server.key")], stdin=True)
    port = wait_port_file(peer, c.path("peer.port"))
    client = c.start("client", [s.app("reset_writer"), "localhost",
                                str(port)],
                     c.env(c.policy(client_ep(s, port))), stdin=True)
    check(client.wait_output(r"^connected$", T_RUN // 2) is not None,
          "reset_writer did not connect")
    check(peer.wait_output(r"^reset$", T_RUN // 2) is not None,
          "the peer did not reset the connection")
    client.send(b"go\n")
    client.wait(T_RUN)
    check("timed out" not in client.out(), "the read after the reset never "
          "returned (reset_writer's alarm ended it)")
    check(re.search(r"^read: (eof|error \S+)$", client.out(), re.M),
          "the read after the reset should fail or say EOF")
    check(established(client, "cli"), "the shim logged no TLS connection")


# A server (Python, no TLS code) that accepts only when told on stdin, so
# that its client can reset first: then it reads and prints what it got.
LATE_ACCEPTOR = r'''
import socket, sys
port = int(sys.argv[1])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port))
l.listen(4)
print("listening", flush=True)
sys.stdin.readline()
conn, addr = l.accept()
try:
    print("read %r" % conn.recv(16), flush=True)
except OSError as e:
    print("read errno %d" % e.errno, flush=True)
print("accepted %s" % addr[0], flush=True)
'''


def late_accept_after_reset(c, env, port):
    """Runs LATE_ACCEPTOR on port; a client connects and resets (SO_LINGER
    0) before the accept. Returns (the server proc, the client's port)."""
    import struct
    proc = c.start("acceptor", [sys.executable, "-c", LATE_ACCEPTOR,
                                str(port)], env, stdin=True)
    check(proc.wait_output(r"listening", T_RUN), "the acceptor did not listen")
    raw = socket.create_connection(("127.0.0.1", port), timeout=T_RUN)
    client_port = raw.getsockname()[1]
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                   struct.pack("ii", 1, 0))
    raw.close()
    time.sleep(0.2)  # the reset reaches the queued connection first
    proc.send(b"go\n")
    proc.close_stdin()
    check(proc.wait(T_RUN) == 0, "the acceptor failed")
    return proc, client_port


@case
def reset_before_accept_names_the_peer(c):
    """A client resets while its connection waits in the listen queue: the
    program's accept and read see what plain TCP gives (the read fails
    ECONNRESET), and the shim's line for the failed handshake names the
    peer's address and port from accept(), not "?" (getpeername fails on
    a reset socket)."""
    plain, _ = late_accept_after_reset(c, c.env(preload=False), free_port())
    port = free_port()
    shim, client_port = late_accept_after_reset(
        c, c.env(c.policy(server_ep(c.suite, port))), port)
    check(shim.out() == plain.out(), "under the shim the program saw %r, "
          "over plain TCP %r" % (shim.out(), plain.out()))
    check("with ? failed" not in shim.err() and
          "127.0.0.1:%d" % client_port in shim.err(),
          "the shim's line does not name the peer 127.0.0.1:%d"
          % client_port)
