# Cases for the private descriptor and the stand-in (docs/design.md, "The
# program's descriptor never reaches the wire"). Run by test/integration/run,
# in its namespace: Case, check, echo_server, client_ep, server_ep ...

import ssl

def descriptor_pair(c):
    """A shimmed echo server; returns (port, client policy path)."""
    s = c.suite
    port = free_port()
    echo_server(c, c.policy(server_ep(s, port)), port=port)
    return port, c.policy(client_ep(s, port), name="client.cfg")


@case
def fd_reuse_while_blocked_on_duplicate(c):
    """Thread A blocks in read on a dup of a managed socket; thread B closes
    that duplicate and a new plain socket takes its number at once. As with
    plain TCP, A's read returns the echo and the new socket stays untouched
    (before the private descriptor the engine read the new socket and shut
    it down). The plain-TCP control runs the program without the shim."""
    app = c.suite.app("ev_fd_reuse")
    _, plain_port = echo_server(c, preload=False, name="plain-server")
    plain = c.run("plain-client", [app, "localhost", str(plain_port)],
                  c.env(preload=False))
    check(plain.p.returncode == 0, "the program fails over plain TCP")
    port, policy = descriptor_pair(c)
    proc = c.run("client", [app, "localhost", str(port)], c.env(policy))
    check(proc.p.returncode == 0 and "ok" in proc.out(),
          "the reader lost its connection or the new socket was touched")
    check(established(proc, "cli"), "the client's shim logged no TLS "
          "connection")


@case
def epoll_registered_before_connect(c):
    """nginx's upstream pattern: the socket joins an epoll set (edge-
    triggered, IN|OUT) before connect(), is never modified, and a short
    read counts as "drained". The registration moves to the TLS connection
    at the swap, so the echo arrives on edges alone (before, the raw kernel
    registration had fired for records the engine had not read yet, and
    the wait slept). Plain TCP is the control."""
    app = c.suite.app("ev_epoll_preconnect")
    args = ["--bytes", "300000", "--read-chunk", "1000", "--timeout", "30"]
    _, plain_port = echo_server(c, preload=False, name="plain-server")
    plain = c.run("plain-client", [app, "localhost", str(plain_port)] + args,
                  c.env(preload=False))
    check(plain.p.returncode == 0, "the program fails over plain TCP")
    port, policy = descriptor_pair(c)
    proc = c.run("client", [app, "localhost", str(port)] + args,
                 c.env(policy))
    check(proc.p.returncode == 0, "the echo did not come back through the "
          "registration made before connect (exit %s)" % proc.p.returncode)
    check(proc.out().split()[:2] == plain.out().split()[:2] and
          proc.out().split()[3:] == plain.out().split()[3:],
          "the shimmed run read other bytes than the plain one")
    check(established(proc, "cli"), "the client's shim logged no TLS "
          "connection")


@case
def daemon_closes_descriptors_and_reuses_them(c):
    """A daemon closes every descriptor above 2 (closefrom and a close loop),
    opens its own file on number 3, dup2()s it onto every other open
    number (the shim's: its log and the connection's private descriptor,
    which must move out of the way) while a TLS connection is open, makes
    TLS connections across a policy reload, then writes its file. The
    shim's log file and connections survive, no log line lands in the
    daemon's file, and the reload does not close the daemon's descriptor
    (before, the log's FILE sat on number 3: its lines went into the
    daemon's file and the reload closed it)."""
    s = c.suite
    port = free_port()
    echo_server(c, c.policy(server_ep(s, port)), port=port)
    log_path = c.path("shim.log")
    data_path = c.path("daemon.data")
    text = ("version = 1;\n"
            "log = { level = \"info\"; file = \"%s\"; };\n"
            "endpoints = (\n%s\n);\n" % (log_path, client_ep(s, port)))
    policy = c.write("client.cfg", text)
    proc = c.start("daemon", [s.app("ev_daemon"), "localhost", str(port),
                              data_path], c.env(policy), stdin=True)
    check(proc.wait_output(r"phase1", T_RUN) is not None,
          "the first exchange did not finish")
    # The reload check runs at most once a second: let that second pass,
    # then change the policy (a comment changes its size and mtime).
    time.sleep(1.2)
    c.write("client.cfg", text + "# changed\n")
    proc.send(b"go\n")
    proc.close_stdin()
    check(proc.wait(T_RUN) == 0 and "ok" in proc.out(),
          "the daemon failed after the reload")
    data = read_file(data_path)
    check(data == b"daemon-data\n", "the daemon's file holds %r" % data[:200])
    log = read_file(log_path).decode(errors="replace")
    c.note("--- shim.log:\n" + log)
    check(re.search(r"took [1-9]\d* numbers", proc.out()), "the daemon "
          "found no number of the shim's to take")
    check(log.count(" established: ") == 2, "the shim's log file lost lines")
    check("reloaded" in log, "the policy was not reloaded")


# What the shim cannot have at EMFILE, by the spare descriptors left
# beside the one the program's socket takes: 0, the private descriptor;
# 1, the stand-in (its private descriptor took the spare), which the shim's
# log names.
EMFILE_STEPS = {0: "private descriptor", 1: "stand-in"}


def check_emfile_step(c, proc, spare):
    if spare == 1:
        check("cannot put a stand-in on descriptor" in proc.err(),
              "the shim did not log the stand-in it could not have")


def connect_at_emfile(c, spare):
    """A TLS connect when the process has 1 + spare descriptors left (its
    socket took one): connect fails with EMFILE and sends nothing, never
    leaving the connection unmanaged; once descriptors are free again a
    connection works (one works before, too, so the endpoint's name is
    resolved while descriptors are plenty). Plain TCP, which needs no
    second descriptor, connects (the control)."""
    app = c.suite.app("ev_emfile")
    args = ["--spare", str(spare)]
    _, plain_port = echo_server(c, preload=False, name="plain-server")
    plain = c.run("plain-client", [app, "localhost", str(plain_port)] + args,
                  c.env(preload=False))
    check(plain.p.returncode == 0 and "connect: 0" in plain.out(),
          "the program fails over plain TCP")
    port, policy = descriptor_pair(c)
    proc = c.run("client", [app, "localhost", str(port)] + args,
                 c.env(policy))
    check("connect: -1 EMFILE" in proc.out(), "connect did not fail with "
          "EMFILE without a %s" % EMFILE_STEPS[spare])
    check_emfile_step(c, proc, spare)
    check(proc.p.returncode == 0 and "ok" in proc.out(), "the process could "
          "not connect again once descriptors were free")
    check(count_established(proc, "cli") == 2, "expected exactly two TLS "
          "connections (before and after)")


@case
def connect_without_a_private_descriptor_fails_emfile(c):
    """connect_at_emfile with no spare: the private descriptor fails."""
    connect_at_emfile(c, 0)


@case
def connect_without_a_stand_in_fails_emfile(c):
    """connect_at_emfile with one spare: the private descriptor takes it,
    and the stand-in the program's number is re-pointed at fails."""
    connect_at_emfile(c, 1)


def emfile_server_clients(c, port, tls):
    """Three clients, one after the other, of ev_emfile_server: each sends
    a line and reads until the echo or EOF. Returns what each got back
    (b"" for a connection closed, None for one refused at its handshake)."""
    ctx = ssl.create_default_context(cafile=c.suite.pki("ca.pem"))
    got = []
    for i in range(3):
        line = b"line %d\n" % i
        raw = socket.create_connection(("127.0.0.1", port), timeout=T_RUN)
        try:
            sock = ctx.wrap_socket(raw, server_hostname="localhost") \
                if tls else raw
            sock.sendall(line)
            data = recv_line(sock)
            got.append(data)
            if tls and data:
                sock.unwrap()  # close_notify both ways: the echo's EOF
        except (ssl.SSLError, OSError):
            got.append(None)
        finally:
            raw.close()
    return got


def accept_at_emfile(c, spare):
    """accept() when the process has 1 + spare descriptors left (the
    accepted socket takes one): under the shim the connection's private
    descriptor or stand-in cannot be had, so accept fails with EMFILE and
    the connection is closed, unserved and never left unmanaged
    (docs/shim.md); once descriptors are free again the next client is
    served. Plain TCP, which needs no second descriptor, accepts and
    echoes (the control)."""
    s = c.suite
    app = s.app("ev_emfile_server")

    def server(name, env, port):
        port_file = c.path(name + ".port")
        proc = c.start(name, [app, "-4", str(port), "--port-file", port_file,
                              "--timeout", str(T_RUN),
                              "--spare", str(spare)], env)
        wait_port_file(proc, port_file)
        return proc

    plain = server("plain-server", c.env(preload=False), 0)
    plain_port = int(open(c.path("plain-server.port")).read())
    got = emfile_server_clients(c, plain_port, tls=False)
    plain.wait(T_RUN)
    check(plain.p.returncode == 0 and re.search(r"accept: \d+\n", plain.out())
          and got == [b"line 0\n", b"line 1\n", b"line 2\n"],
          "the program fails over plain TCP: %r" % got)
    port = free_port()
    shim = server("server", c.env(c.policy(server_ep(s, port))), port)
    got = emfile_server_clients(c, port, tls=True)
    shim.wait(T_RUN)
    check("accept: -1 EMFILE" in shim.out(), "accept did not fail with "
          "EMFILE without a %s" % EMFILE_STEPS[spare])
    check_emfile_step(c, shim, spare)
    check(got[0] == b"line 0\n" and got[1] in (None, b"") and
          got[2] == b"line 2\n", "clients got %r: the second must be "
          "closed unserved, the others echoed" % got)
    check(shim.p.returncode == 0 and "ok" in shim.out(), "the server could "
          "not accept again once descriptors were free")


@case
def accept_without_a_private_descriptor_fails_emfile(c):
    """accept_at_emfile with no spare: the private descriptor fails."""
    accept_at_emfile(c, 0)


@case
def accept_without_a_stand_in_fails_emfile(c):
    """accept_at_emfile with one spare: the private descriptor takes it,
    and the stand-in fails."""
    accept_at_emfile(c, 1)


# A TLS line peer that answers one line, then writes bytes that are no
# TLS record on the raw socket and closes it.
GARBAGE_PEER_PY = r'''
import os, signal, socket, ssl, sys
signal.alarm(20)
port_file, cert, key = sys.argv[1:4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
lsock = socket.socket()
lsock.bind(("127.0.0.1", 0))
lsock.listen(1)
with open(port_file + ".tmp", "w") as f:
    f.write("%d\n" % lsock.getsockname()[1])
os.rename(port_file + ".tmp", port_file)
raw, _ = lsock.accept()
tls = ctx.wrap_socket(raw, server_side=True)
line = b""
while not line.endswith(b"\n"):
    line += tls.recv(100)
tls.sendall(line)
os.write(tls.fileno(), b"this is no TLS record at all\n" * 4)
raw = socket.socket(fileno=os.dup(tls.fileno()))
raw.settimeout(5)
try:
    raw.shutdown(socket.SHUT_WR)
    while raw.recv(4096):
        pass
except OSError:
    pass  # the client may have reset the connection already
'''


@case
def stderr_socket_gets_no_log_text(c):
    """A program dup2()s its TLS socket onto stderr, then the peer breaks
    the TLS stream. The shim logs the failure to its own copy of the
    original stderr: the program's read fails at once (no hang, no lock
    taken twice), the wire from the program carries TLS records only (no
    log text), and the log line is on the process's original stderr
    (before, the line went through stderr's stream into the socket)."""
    s = c.suite
    port_file = c.path("peer.port")
    peer = c.start("peer", [sys.executable, c.write("peer.py",
                                                    GARBAGE_PEER_PY),
                            port_file, s.pki("server.pem"),
                            s.pki("server.key")])
    port = wait_port_file(peer, port_file)
    proxy, rport, c2s, s2c = relay(c, port)
    proc = c.run("client", [s.app("ev_stderr_sock"), "localhost",
                            str(rport)],
                 c.env(c.policy(client_ep(s, rport), name="client.cfg")))
    check(proc.p.returncode == 0 and re.search(r"^read: -1 ", proc.out(),
                                               re.M),
          "the read after the broken stream did not fail (exit %s)"
          % proc.p.returncode)
    check(re.search(r"endpoint 'cli': TLS connection with .* failed",
                    proc.err()), "the failure was not logged on the "
          "original stderr")
    peer.wait(T_RUN)
    proxy.stop()
    wire = read_file(c2s)
    check(b"secshim" not in wire, "log text went onto the TLS connection")
    types, err = tls_records(wire)
    check(err is None, "the program's side of the wire is not TLS "
          "records: %s" % err)
