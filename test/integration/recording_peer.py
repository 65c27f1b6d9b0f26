#!/usr/bin/python3
"""A TLS echo server that records the raw bytes it receives off TCP.

Usage: recording_peer.py PORT_FILE CERT KEY OUT_PREFIX BOUND

For the fail-closed cases (cases_failclosed.py). It listens on 127.0.0.1
(port 0, written to PORT_FILE) and serves connections one after the other.
For connection N it writes every byte read from the TCP socket, before any
TLS processing, to OUT_PREFIX.N.raw, and the application data it decrypted
to OUT_PREFIX.N.plain; the decrypted data is echoed back. TLS runs through
ssl.MemoryBIO, so the recording is exactly what came off the wire, also
when it is not TLS at all: then the TLS error is reported, our write side
is shut (so the client stops waiting for an echo) and recording goes on
until the client's EOF. Each connection ends with one stdout line:
"conn N: raw R bytes, plain P bytes, tls ok|error: WHY".
Every read is bounded (IDLE seconds of silence end a connection); the
whole server ends on SIGTERM or after BOUND seconds. Stdlib only.
"""

import os
import signal
import socket
import ssl
import sys

IDLE = 5


def flush_out(sock, out_bio):
    data = out_bio.read()
    if data:
        try:
            sock.sendall(data)
        except OSError:
            pass


def serve(ctx, sock, prefix, n):
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_side=True)
    sock.settimeout(IDLE)
    raw_total = plain_total = 0
    error = None
    handshaken = False
    with open("%s.%d.raw" % (prefix, n), "wb") as raw, \
            open("%s.%d.plain" % (prefix, n), "wb") as plain:
        while True:
            try:
                data = sock.recv(65536)
            except (socket.timeout, OSError):
                break
            if not data:
                break
            raw.write(data)
            raw.flush()
            raw_total += len(data)
            if error is not None:
                continue  # keep recording what still comes in clear
            inc.write(data)
            try:
                if not handshaken:
                    tls.do_handshake()
                    handshaken = True
                while True:
                    chunk = tls.read(65536)
                    if not chunk:
                        break
                    plain.write(chunk)
                    plain.flush()
                    plain_total += len(chunk)
                    tls.write(chunk)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                try:
                    tls.unwrap()
                except ssl.SSLError:
                    pass
            except ssl.SSLError as e:
                error = str(e)
                flush_out(sock, out)
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            flush_out(sock, out)
    sock.close()
    print("conn %d: raw %d bytes, plain %d bytes, tls %s" % (
        n, raw_total, plain_total,
        "ok" if error is None else "error: %s" % error), flush=True)


def main(argv):
    port_file, cert, key, prefix, bound = argv[1:6]
    signal.signal(signal.SIGALRM, lambda *_: os._exit(2))
    signal.alarm(int(bound))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % lsock.getsockname()[1])
    os.rename(port_file + ".tmp", port_file)
    n = 0
    while True:
        sock, _ = lsock.accept()
        n += 1
        serve(ctx, sock, prefix, n)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
