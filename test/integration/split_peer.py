#!/usr/bin/python3
"""A peer that delivers a TLS record in two parts, for cases_epoll.py.

Usage: split_peer.py PORT_FILE BOUND (--plain | --tls CERT KEY) FIRST REST

Listens on 127.0.0.1 (port 0, written to PORT_FILE) and accepts one
connection. FIRST seconds after the connection is up (after the handshake
under TLS) it sends chunk A (100 bytes "a") and, under TLS, the first half
of the record that carries chunk B (100 bytes "b"), in one send; REST
seconds later the rest of that record (plain TCP: A, then all of B). TLS
is Python's ssl over memory BIOs, i.e. OpenSSL without the shim, so that
the record's bytes can be cut where the test wants. Then it reads until
the client's EOF. Ends after BOUND seconds at most.
"""

import os
import signal
import socket
import ssl
import sys
import time


def handshake(sock, ctx):
    """Server handshake over memory BIOs; returns (SSLObject, outgoing)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=True)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pending = out.read()
            if pending:
                sock.sendall(pending)
            data = sock.recv(65536)
            if not data:
                sys.exit("split_peer: the client left during the handshake")
            inc.write(data)
    sock.sendall(out.read())  # the last flight and the session tickets
    return obj, out


def main(argv):
    port_file, bound = argv[0], int(argv[1])
    signal.signal(signal.SIGALRM, lambda *_: os._exit(2))
    signal.alarm(bound)
    ctx = None
    args = argv[2:]
    if args[0] == "--tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args[1], args[2])
        args = args[3:]
    else:
        args = args[1:]
    first, rest = float(args[0]), float(args[1])
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % lsock.getsockname()[1])
    os.rename(port_file + ".tmp", port_file)
    sock, _ = lsock.accept()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ctx is None:
        time.sleep(first)
        sock.sendall(b"a" * 100)
        time.sleep(rest)
        sock.sendall(b"b" * 100)
    else:
        obj, out = handshake(sock, ctx)
        time.sleep(first)
        obj.write(b"a" * 100)
        wire_a = out.read()
        obj.write(b"b" * 100)
        wire_b = out.read()
        half = len(wire_b) // 2
        sock.sendall(wire_a + wire_b[:half])
        time.sleep(rest)
        sock.sendall(wire_b[half:])
    while sock.recv(65536):
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
