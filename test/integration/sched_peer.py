#!/usr/bin/python3
"""A peer that sends on a schedule, for test/integration/cases_epoll.py.

Usage: sched_peer.py PORT_FILE BOUND (--plain | --tls CERT KEY)
                     [--send DELAY:BYTES,...] [--slow-read]

Listens on 127.0.0.1 (port 0, written to PORT_FILE), accepts one
connection (TLS through Python's ssl, i.e. OpenSSL without the shim, or
plain TCP for the reference run), then sends BYTES bytes after each DELAY
seconds (counted from the previous step) while another thread reads until
EOF, slowly with --slow-read (16 KiB every 5 ms, a 64 KiB receive
buffer). Prints "received N" at the client's EOF. Ends after BOUND
seconds at most.
"""

import os
import signal
import socket
import ssl
import sys
import threading
import time


def main(argv):
    port_file, bound = argv[0], int(argv[1])
    args = argv[2:]
    signal.signal(signal.SIGALRM, lambda *_: os._exit(2))
    signal.alarm(bound)
    ctx = None
    if args[0] == "--tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args[1], args[2])
        args = args[3:]
    else:
        args = args[1:]
    steps, slow = [], False
    while args:
        if args[0] == "--send":
            for step in args[1].split(","):
                delay, nbytes = step.split(":")
                steps.append((float(delay), int(nbytes)))
            args = args[2:]
        elif args[0] == "--slow-read":
            slow, args = True, args[1:]
        else:
            sys.exit("sched_peer: unknown argument %s" % args[0])
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if slow:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % lsock.getsockname()[1])
    os.rename(port_file + ".tmp", port_file)
    sock, _ = lsock.accept()
    conn = ctx.wrap_socket(sock, server_side=True) if ctx else sock
    # ssl objects are not safe for a concurrent recv and send: one lock.
    lock = threading.Lock()
    done = threading.Event()

    def reader():
        total = 0
        conn.settimeout(0.005)
        while True:
            try:
                with lock:
                    data = conn.recv(16384)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except OSError:
                break
            if not data:
                break
            total += len(data)
            if slow:
                time.sleep(0.005)
        print("received %d" % total, flush=True)
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    for delay, nbytes in steps:
        time.sleep(delay)
        payload, sent = b"s" * nbytes, 0
        while sent < nbytes:
            with lock:
                try:
                    sent += conn.send(payload[sent:])
                except (socket.timeout, ssl.SSLWantWriteError,
                        ssl.SSLWantReadError):
                    pass
    done.wait(bound)


if __name__ == "__main__":
    main(sys.argv[1:])
