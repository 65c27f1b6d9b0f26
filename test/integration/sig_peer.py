#!/usr/bin/python3
"""The peer of test/apps/sig_probe.c, for test/integration/cases_signals.py.

Usage: sig_peer.py PORT_FILE BOUND (--plain | --tls CERT KEY)

Listens on three ports of 127.0.0.1 (port 0 each) and writes
"MAIN STALL SLOW" to PORT_FILE. TLS through Python's ssl (OpenSSL without
the shim), or plain TCP for the reference run.

MAIN: every connection sends one command line first:
  sink ID [N]  the first N bytes are read at once (default 0), then
             nothing until "drain ID"; from there to its EOF, each byte
             k must be k % 251 (sig_probe's stream)
  drain ID   answers "draining" at once, then "received N ok|bad" once the
             sink has reached its EOF
  idle ID    nothing is read or sent on it until "poke ID"
  poke ID    sends "poke" on idle ID; answers "poked"
  free       lets every connection held on STALL and SLOW go on; answers
             "freed"
STALL: a connect must block. Plain TCP: a listener whose backlog is full
  (its own connections fill it), so SYNs are dropped until a "free", which
  lets one connection in (then the backlog is full again);
  TLS: connections are accepted and their ClientHello left unanswered
  until a "free". Once freed, each says "hello" (after the handshake).
SLOW: connections are accepted; each says "hello" (TLS: first the
  handshake) once a "free" came after it was accepted.
Ends after BOUND seconds at most.
"""

import os
import select
import signal
import socket
import ssl
import sys
import threading

lock = threading.Lock()
sinks = {}     # ID -> threading.Event that starts its drain
results = {}   # ID -> (count, ok), once the sink saw its EOF
done = {}      # ID -> threading.Event set with results[ID]
idles = {}     # ID -> the connection
held = []      # Events of STALL/SLOW connections waiting for a "free"
conns = []     # every connection, kept open until the process ends
bound = 30


def event_of(table, key):
    with lock:
        return table.setdefault(key, threading.Event())


def read_command(conn):
    line = b""
    while not line.endswith(b"\n") and len(line) < 128:
        byte = conn.recv(1)
        if not byte:
            break
        line += byte
    return line.decode("ascii", "replace").split()


def drain(sid, conn, count=0, ok=True, limit=None):
    """Reads and checks the pattern from stream offset count, to EOF or
    (limit) until count reaches limit. Returns (count, ok); at EOF also
    publishes it as the sink's result."""
    while limit is None or count < limit:
        try:
            data = conn.recv(65536)
        except (OSError, ssl.SSLError):
            ok = False
            break
        if not data:
            break
        for i, b in enumerate(data):
            if b != (count + i) % 251:
                ok = False
                break
        count += len(data)
    if limit is not None and count >= limit:
        return count, ok
    with lock:
        results[sid] = (count, ok)
    event_of(done, sid).set()
    return count, ok


def serve_main(conn):
    words = read_command(conn)
    if not words:
        return
    cmd, arg = words[0], (words[1] if len(words) > 1 else "")
    if cmd == "sink":
        count, ok = 0, True
        if len(words) > 2:  # sink ID N: the first N bytes are read at once
            count, ok = drain(arg, conn, limit=int(words[2]))
        if event_of(sinks, arg).wait(bound):
            drain(arg, conn, count, ok)
    elif cmd == "drain":
        event_of(sinks, arg).set()
        conn.sendall(b"draining\n")
        if event_of(done, arg).wait(bound):
            count, ok = results[arg]
            conn.sendall(b"received %d %s\n" % (count, b"ok" if ok else b"bad"))
    elif cmd == "idle":
        with lock:
            idles[arg] = conn
    elif cmd == "poke":
        with lock:
            idle = idles.get(arg)
        if idle is not None:
            idle.sendall(b"poke\n")
        conn.sendall(b"poked\n")
    elif cmd == "free":
        with lock:
            for ev in held:
                ev.set()
            del held[:]
        conn.sendall(b"freed\n")


def serve_held(sock, ctx):
    """A STALL (TLS) or SLOW connection: waits for a "free", then the
    handshake, then "hello"; kept open."""
    ev = threading.Event()
    with lock:
        held.append(ev)
    if not ev.wait(bound):
        return
    conn = ctx.wrap_socket(sock, server_side=True) if ctx else sock
    with lock:
        conns.append(conn)
    conn.sendall(b"hello\n")


def thread(target, *args):
    def run():
        try:
            target(*args)
        except (OSError, ssl.SSLError):
            pass  # the probe closed its side first: nothing to report
    threading.Thread(target=run, daemon=True).start()


def accept_loop(lsock, handle):
    while True:
        sock, _ = lsock.accept()
        with lock:
            conns.append(sock)
        thread(handle, sock)


def listener(backlog):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(backlog)
    return lsock


fillers = set()  # local addresses of the peer's own STALL connections


def fill_backlog(lsock):
    """Connects to lsock until a connect no longer completes: its backlog
    is full, and the kernel drops the next SYNs."""
    for _ in range(8):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        conns.append(s)
        s.connect_ex(lsock.getsockname())
        fillers.add(s.getsockname())
        _, w, _ = select.select([], [s], [], 0.3)
        if not w or s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
            return
    sys.exit("sig_peer: the backlog of the stall port never filled")


def plain_stall(lsock):
    """Plain TCP's STALL: at a "free" the backlog grows, the queued
    connections are accepted and greeted until the first that is not the
    peer's own (the probe's, whose SYN the kernel dropped until then);
    the backlog is full again before that one is greeted, for the
    probe's next connect."""
    while True:
        ev = threading.Event()
        with lock:
            held.append(ev)
        if not ev.wait(bound):
            return
        lsock.listen(64)
        while True:
            sock, addr = lsock.accept()
            conns.append(sock)
            if addr not in fillers:
                break
            sock.sendall(b"hello\n")
        # Full again before the probe's "hello": it connects next only
        # after reading it.
        lsock.listen(0)
        fill_backlog(lsock)
        sock.sendall(b"hello\n")


def main(argv):
    global bound
    port_file, bound = argv[0], int(argv[1])
    signal.signal(signal.SIGALRM, lambda *_: os._exit(2))
    signal.alarm(bound)
    ctx = None
    if argv[2] == "--tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(argv[3], argv[4])
    main_sock, slow = listener(64), listener(64)
    if ctx:
        stall = listener(64)
        thread(accept_loop, stall, lambda s: serve_held(s, ctx))
    else:
        stall = listener(0)
        fill_backlog(stall)
        thread(plain_stall, stall)
    thread(accept_loop, slow, lambda s: serve_held(s, ctx))

    def handle_main(sock):
        conn = ctx.wrap_socket(sock, server_side=True) if ctx else sock
        with lock:
            conns.append(conn)
        serve_main(conn)
    ports = [s.getsockname()[1] for s in (main_sock, stall, slow)]
    with open(port_file + ".tmp", "w") as f:
        f.write("%d %d %d\n" % tuple(ports))
    os.rename(port_file + ".tmp", port_file)
    accept_loop(main_sock, handle_main)


if __name__ == "__main__":
    main(sys.argv[1:])
