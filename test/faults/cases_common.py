# Helpers of the fault suite (issue 12), shared by its cases_*.py files.
# Exec'd by test/faults/run in the integration harness's namespace (its
# helpers, Failure, check and @case are in scope); docs/testing.md,
# "Fault suite", lists the cases and what each proves.

import select
import threading

T_FAULT = 30          # a fault_probe run (its own alarm is below this)
PROBE_ALARM = 25


def probe_argv(c, role, *args):
    return [need_app(c, "fault_probe"), role] + [str(a) for a in args] + [
        "--timeout", str(PROBE_ALARM)]


def probe_report(proc, conn=1):
    """fault_probe's report of connection conn (the accept role serves
    --conns in turn) as a dict: connect/accept -> "ok" or the errno name;
    write -> (how, errno or None, bytes) with how in done, error, EAGAIN;
    read -> (how, errno or None, bytes, intact); start and progress."""
    out, rep = proc.out(), {}
    if "accept: " in out:
        blocks = re.split(r"(?m)^(?=accept: )", out)[1:]
        out = blocks[conn - 1] if len(blocks) >= conn else ""
    for role in ("connect", "accept"):
        m = re.search(r"^%s: (ok|error (\S+))$" % role, out, re.M)
        if m:
            rep[role] = "ok" if m.group(1) == "ok" else m.group(2)
    m = re.search(r"^write: (done (\d+)|error (\S+) after (\d+)|EAGAIN after "
                  r"(\d+))$", out, re.M)
    if m:
        if m.group(2):
            rep["write"] = ("done", None, int(m.group(2)))
        elif m.group(3):
            rep["write"] = ("error", m.group(3), int(m.group(4)))
        else:
            rep["write"] = ("EAGAIN", None, int(m.group(5)))
    m = re.search(r"^read: (eof|error (\S+)) after (\d+) (intact|corrupt)$",
                  out, re.M)
    if m:
        rep["read"] = ("eof" if m.group(1) == "eof" else "error",
                       m.group(2), int(m.group(3)), m.group(4) == "intact")
    m = re.search(r"^start: rss_kib (-?\d+)$", out, re.M)
    if m:
        rep["start"] = int(m.group(1))
    m = re.search(r"^progress: written (\d+) rss_kib (-?\d+)$", out, re.M)
    if m:
        rep["progress"] = (int(m.group(1)), int(m.group(2)))
    return rep


def run_probe(c, name, argv, policy=None, preload=True):
    """Runs fault_probe to its end (bounded); returns (proc, report)."""
    proc = c.run(name, argv, c.env(policy, preload), timeout=T_FAULT)
    check(proc.p.returncode == 0, "%s exited %s (2: its alarm or a setup "
          "failure)" % (name, proc.p.returncode))
    return proc, probe_report(proc)


def start_probe_server(c, name, port, policy=None, preload=True, args=()):
    """fault_probe accept on port (the one policy names); returns (proc,
    port)."""
    port_file = c.path(name + ".port")
    proc = c.start(name, probe_argv(c, "accept", port, port_file, *args),
                   c.env(policy, preload))
    return proc, wait_port_file(proc, port_file)


def wait_probe_conn(proc, conn=1, timeout=T_FAULT):
    """Waits (bounded) until fault_probe closed its connection number conn
    (both its reader and its writer are done); returns its report."""
    rx = r"(?m)(^closed\n(.|\n)*){%d}" % conn
    check(proc.wait_output(rx, timeout) is not None,
          "%s did not finish connection %d within %ss" % (proc.name, conn,
                                                          timeout))
    return probe_report(proc, conn)


def wait_probe_line(proc, what, timeout=T_FAULT):
    """Waits (bounded) for fault_probe's report line of what (progress,
    ...); returns the report."""
    check(proc.wait_output(r"(?m)^%s: " % what, timeout) is not None,
          "%s printed no '%s:' line within %ss" % (proc.name, what, timeout))
    return probe_report(proc)


# ---- plaintext on the wire ------------------------------------------------

def payload_windows(nbytes, size=48, step=1024):
    """Windows of fault_probe's (echo_client's) stream to look for in a
    recording: one every step bytes of the first nbytes."""
    data = prng_bytes(max(nbytes, size))
    return [data[i:i + size] for i in range(0, max(nbytes - size, 1), step)]


def check_no_plaintext(data, label, nbytes, extra=()):
    """No window of the payload (nor any of extra) is in data."""
    for w in payload_windows(nbytes):
        check(w not in data, "%s: plaintext payload on the wire" % label)
    for text in extra:
        check(text not in data, "%s: %r on the wire in clear" % (label, text))


def check_tls_start(data, label):
    """A recording of a TLS endpoint starts with a TLS record (handshake
    22 or alert 21), whatever came after a fault cut it."""
    check(not data or data[0] in (21, 22) and data[1] == 3,
          "%s: does not start with a TLS record: %r" % (label, data[:16]))


# ---- raw peers of the harness's own (in a thread) --------------------------

def rst_close(sock):
    """close() with SO_LINGER {1, 0}: the kernel sends RST."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def recv_some(sock, timeout=T_RUN // 2, want=1):
    """Reads (bounded) until at least want bytes came or the peer ended."""
    sock.settimeout(timeout)
    got = b""
    try:
        while len(got) < want:
            data = sock.recv(65536)
            if not data:
                break
            got += data
    except OSError:
        pass
    return got


def recv_all(sock, timeout=5):
    """Everything the peer sends until it ends or goes quiet for timeout."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            got += data
    except OSError:
        pass
    return got


class RawServer:
    """A plain TCP listener of the harness's own on 127.0.0.1 that runs
    script(conn) for one connection in a thread and keeps what it read in
    received (the script returns it); use with `with`."""

    def __init__(self, script):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(T_FAULT)
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.received = b""
        self.error = None
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError as e:
            self.error = "accept: %s" % e
            return
        try:
            self.received = self.script(conn) or b""
        except OSError as e:
            self.error = str(e)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join(timeout=T_FAULT)
        self.sock.close()


def client_hello():
    """A valid TLS ClientHello, as Python's ssl (OpenSSL without the shim)
    writes it: the first flight of a memory-BIO handshake."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()



class BioTls:
    """TLS over a plain socket through memory BIOs (Python's ssl, i.e.
    OpenSSL without the shim), so a case decides exactly what reaches TCP:
    it can stop in the middle of a stream and close or reset the socket
    itself, with no close_notify. Client side verifies against the test
    root; server side presents server.pem."""

    def __init__(self, sock, suite, server_side=False):
        import ssl
        self.ssl = ssl
        if server_side:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(suite.pki("server.pem"),
                                suite.pki("server.key"))
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(suite.pki("ca.pem"))
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_side=server_side,
                                server_hostname=None if server_side
                                else "localhost")
        self.sock = sock
        sock.settimeout(T_RUN)

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _feed(self):
        data = self.sock.recv(65536)
        if not data:
            raise OSError("the peer closed the connection")
        self.inc.write(data)

    def handshake(self):
        while True:
            try:
                self.tls.do_handshake()
                self._flush()
                return
            except self.ssl.SSLWantReadError:
                self._flush()
                self._feed()

    def send(self, data):
        self.tls.write(data)
        self._flush()

    def recv(self, want):
        """At least want bytes of application data (fewer at its end)."""
        got = b""
        while len(got) < want:
            try:
                got += self.tls.read(65536)
            except self.ssl.SSLWantReadError:
                self._flush()
                try:
                    self._feed()
                except OSError:
                    break
            except self.ssl.SSLError:
                break
        return got
