#!/usr/bin/python3
"""A slow reader for test/integration/cases_close.py (stdlib only).

  slow_peer.py serve PORT_FILE (--tls CERT KEY | --plain) [--rcvbuf B]
               [--chunk K] [--delay MS] [--progress FILE] [--bound S]
               [--answer-ms A]
    Listens on 127.0.0.1 (port written to PORT_FILE), accepts one
    connection and reads it slowly (K bytes per read, MS ms between
    reads), writing the count read so far to FILE after each read. Prints
    one line: "received N sha256=H end=E" where E is how the stream ended:
    close_notify+eof (TLS: close_notify, then TCP EOF), close_notify+reset,
    eof (TCP EOF; under --tls: without close_notify), reset, or error:...
    With --answer-ms, A ms after the end it answers it, as a peer slow to
    close does: with its own close_notify (TLS), then its FIN.
  slow_peer.py hello PORT [--bound S]
    Sends a TLS ClientHello to 127.0.0.1:PORT and prints what came back:
    "reply: none" (EOF or reset, no byte) or "reply: handshake" (a TLS
    handshake record, i.e. a ServerHello) or "reply: other".

The TLS side runs OpenSSL through Python's ssl with memory BIOs, so every
TCP event (EOF, reset) is seen as it is, not folded into ssl's own EOF.
"""

import hashlib
import os
import signal
import socket
import ssl
import sys
import time


def opt(args, name, default=None):
    return args[args.index(name) + 1] if name in args else default


def write_progress(path, n):
    if path:
        with open(path + ".tmp", "w") as f:
            f.write("%d\n" % n)
        os.rename(path + ".tmp", path)


def serve(args):
    port_file = args[0]
    tls = "--tls" in args
    rcvbuf = int(opt(args, "--rcvbuf", "0"))
    chunk = int(opt(args, "--chunk", "16384"))
    delay = int(opt(args, "--delay", "5")) / 1000.0
    progress = opt(args, "--progress")
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    write_progress(progress, 0)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % lsock.getsockname()[1])
    os.rename(port_file + ".tmp", port_file)
    sock, _ = lsock.accept()
    print("rcvbuf %d" % sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
          flush=True)
    digest, total = hashlib.sha256(), 0
    obj = inc = out = None
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(opt(args, "--tls"), args[args.index("--tls") + 2])
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_side=True)
    notified = hs_done = False
    end = None

    def flush():
        data = out.read()
        try:
            if data:
                sock.sendall(data)
        except OSError:
            pass  # the writer is gone; its end is read below

    while end is None:
        try:
            raw = sock.recv(chunk)
        except ConnectionResetError:
            end = "reset"
            break
        if not raw:
            end = "eof"
            break
        if not tls:
            digest.update(raw)
            total += len(raw)
        else:
            inc.write(raw)
            if not hs_done:
                try:
                    obj.do_handshake()
                    hs_done = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as e:
                    end = "error:%s" % e
                flush()
            while hs_done and not notified and end is None:
                try:
                    data = obj.read(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    notified = True
                    break
                except ssl.SSLError as e:
                    end = "error:%s" % e
                    break
                if not data:  # Python's SSLObject: close_notify read
                    notified = True
                    break
                digest.update(data)
                total += len(data)
            flush()
        write_progress(progress, total)
        time.sleep(delay)
    if notified:
        end = "close_notify+" + end
    answer = int(opt(args, "--answer-ms", "-1"))
    if answer >= 0:
        time.sleep(answer / 1000.0)
        if notified:
            try:
                obj.unwrap()
            except ssl.SSLError:
                pass  # sent; the writer's own close_notify is already in
            flush()
    print("received %d sha256=%s end=%s" % (total, digest.hexdigest(), end),
          flush=True)
    sock.close()


def hello(args):
    port = int(args[0])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(out.read())
    try:
        reply = sock.recv(5)
    except (ConnectionResetError, socket.timeout):
        reply = b""
    if not reply:
        print("reply: none", flush=True)
    elif reply[0] == 22:
        print("reply: handshake", flush=True)
    else:
        print("reply: other", flush=True)
    sock.close()


def main(argv):
    bound = int(opt(argv, "--bound", "30"))
    signal.signal(signal.SIGALRM, lambda *_: os._exit(2))
    signal.alarm(bound)
    if argv[1] == "serve":
        serve(argv[2:])
    elif argv[1] == "hello":
        hello(argv[2:])
    else:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
