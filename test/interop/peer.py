#!/usr/bin/python3
"""The Python `ssl` peer of the interop matrix (docs/interop.md).

Usage: peer.py server JOBS   |   peer.py client JOBS

JOBS is a file of jobs, one a line, "key=value" words (the format the
Java and Node.js peers read too; test/interop/run writes it):

  server: tag= cert= key= ca= min= max= mutual=0|1 legacy=0|1
  client: tag= port= host= sni= ca= min= max= legacy=0|1 count=N
          [cert= key=]

min/max are TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 or "-" (the library's
default). legacy=1 lowers OpenSSL's security level to 0, which TLS 1.0
and 1.1 need under OpenSSL 3.

The server binds one listener per job on 127.0.0.1 (port 0), prints
"listen tag=T port=P" for each, then "ready", and echoes every
connection until EOF. The client makes count connections per job, the
later ones offering the session of the one before, each sending one line
and reading it back. Both print one line per connection (the server once
the handshake ended either way, the client after the echo):

  result tag=T n=N status=ok|error version=V cipher=C resumed=yes|no
         sni=NAME echo=yes|no reason=TEXT TO THE END OF THE LINE

Stdlib only; every socket operation is bounded by a timeout.
"""

import os
import socket
import ssl
import sys
import threading
import warnings

# TLS 1.0 and 1.1 are deprecated names in the ssl module; the matrix uses
# them on purpose.
warnings.filterwarnings("ignore", category=DeprecationWarning)

TIMEOUT = 10
VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
            "TLSv1.2": ssl.TLSVersion.TLSv1_2,
            "TLSv1.3": ssl.TLSVersion.TLSv1_3}
OUT_LOCK = threading.Lock()


def read_jobs(path):
    jobs = []
    with open(path) as f:
        for line in f:
            words = line.split()
            if words:
                jobs.append(dict(w.split("=", 1) for w in words))
    return jobs


def report(tag, n, status, version="-", cipher="-", resumed=False, sni="-",
           echo=False, reason="-"):
    with OUT_LOCK:
        sys.stdout.write("result tag=%s n=%d status=%s version=%s cipher=%s "
                         "resumed=%s sni=%s echo=%s reason=%s\n" % (
                             tag, n, status, version or "-", cipher or "-",
                             "yes" if resumed else "no", sni or "-",
                             "yes" if echo else "no",
                             " ".join(str(reason).split()) or "-"))
        sys.stdout.flush()


def context(job, side):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if side == "server"
                         else ssl.PROTOCOL_TLS_CLIENT)
    if job.get("legacy") == "1":
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if job.get("min", "-") != "-":
        ctx.minimum_version = VERSIONS[job["min"]]
    if job.get("max", "-") != "-":
        ctx.maximum_version = VERSIONS[job["max"]]
    if job.get("cert"):
        ctx.load_cert_chain(job["cert"], job["key"])
    if job.get("ca"):
        ctx.load_verify_locations(job["ca"])
    if side == "server":
        ctx.verify_mode = (ssl.CERT_REQUIRED if job.get("mutual") == "1"
                           else ssl.CERT_NONE)
    return ctx


# ---- server ---------------------------------------------------------------

def serve_one(job, ctx, conn, n, sni_seen):
    tag = job["tag"]
    conn.settimeout(TIMEOUT)
    tls = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
    try:
        tls.do_handshake()
    except (OSError, ssl.SSLError) as e:
        report(tag, n, "error", sni=sni_seen.pop(id(tls), None), reason=e)
        tls.close()
        return
    report(tag, n, "ok", tls.version(), tls.cipher()[0], tls.session_reused,
           sni_seen.pop(id(tls), None), True)
    try:
        while True:
            data = tls.recv(65536)
            if not data:
                break
            tls.sendall(data)
        tls.unwrap()
    except (OSError, ssl.SSLError):
        pass  # the client's way of closing is not this peer's concern
    finally:
        tls.close()


def listener(job, sock):
    ctx = context(job, "server")
    # The name each connection sent, by its SSLSocket (the object the
    # callback is given), taken when the handshake ends.
    sni_seen = {}

    def on_sni(ssl_obj, name, _ctx):
        sni_seen[id(ssl_obj)] = name
    ctx.sni_callback = on_sni
    n = 0
    while True:
        conn, _ = sock.accept()
        n += 1
        threading.Thread(target=serve_one, daemon=True,
                         args=(job, ctx, conn, n, sni_seen)).start()


def server(jobs):
    socks = []
    for job in jobs:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        socks.append(sock)
        print("listen tag=%s port=%d" % (job["tag"], sock.getsockname()[1]))
    for job, sock in zip(jobs, socks):
        threading.Thread(target=listener, args=(job, sock),
                         daemon=True).start()
    print("ready", flush=True)
    # The runner stops this process by its PID; stdin's end stops it too.
    sys.stdin.read()


# ---- client ---------------------------------------------------------------

def connect_once(job, ctx, n, session):
    tag = job["tag"]
    try:
        sock = socket.create_connection((job.get("host", "127.0.0.1"),
                                         int(job["port"])), timeout=TIMEOUT)
    except OSError as e:
        report(tag, n, "error", sni=job["sni"], reason="connect: %s" % e)
        return None
    try:
        tls = ctx.wrap_socket(sock, server_hostname=job["sni"],
                              session=session)
    except (OSError, ssl.SSLError) as e:
        sock.close()
        report(tag, n, "error", sni=job["sni"], reason=e)
        return None
    line = ("interop %s %d\n" % (tag, n)).encode()
    try:
        tls.sendall(line)
        got = b""
        while not got.endswith(b"\n"):
            data = tls.recv(4096)
            if not data:
                break
            got += data
    except (OSError, ssl.SSLError) as e:
        report(tag, n, "error", tls.version(), tls.cipher()[0],
               tls.session_reused, job["sni"], False,
               "after the handshake: %s" % e)
        tls.close()
        return None
    report(tag, n, "ok" if got == line else "error", tls.version(),
           tls.cipher()[0], tls.session_reused, job["sni"], got == line,
           "-" if got == line else "echo %r" % got)
    session = tls.session
    try:
        tls.unwrap()
    except (OSError, ssl.SSLError):
        pass
    tls.close()
    return session


def client(jobs):
    for job in jobs:
        ctx = context(job, "client")
        session = None
        for n in range(1, int(job.get("count", "1")) + 1):
            session = connect_once(job, ctx, n, session)


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("server", "client"):
        sys.stderr.write("usage: peer.py server|client JOBS\n")
        return 2
    jobs = read_jobs(sys.argv[2])
    (server if sys.argv[1] == "server" else client)(jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
