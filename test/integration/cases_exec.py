# TLS crosses exec, and inherited sockets are protected (issue 7, part 4;
# docs/design.md, "Process life"). Loaded by test/integration/run into its
# own namespace: every helper of that file is available here.

import ssl


def wait_listening(proc, port, timeout=T_START):
    """Waits until 127.0.0.1:port is in LISTEN state (/proc/net/tcp), so
    no probe connection is made to the server. Raises Failure."""
    want = "0100007F:%04X" % port
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return
        if not proc.alive():
            raise Failure("%s exited before it listened" % proc.name)
        time.sleep(0.02)
    raise Failure("%s did not listen on %d within %ss" % (proc.name, port,
                                                          timeout))


def tls_line(c, port, line, timeout=T_RUN // 2):
    """A verifying TLS client (Python's ssl, no shim): sends line, reads
    until a newline or EOF. Returns (client's local port, reply bytes)."""
    ctx = ssl.create_default_context(cafile=c.suite.pki("ca.pem"))
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
            local_port = sock.getsockname()[1]
            sock.sendall(line.encode() + b"\n")
            got = b""
            while not got.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                got += chunk
            return local_port, got


def plaintext_gets_nothing(port, line):
    """A plaintext client sends line: what it gets back must hold neither
    the line nor its reversal (the server is TLS, fail closed)."""
    got = raw_echo(port, line.encode() + b"\n")
    check(line.encode() not in got and line[::-1].encode() not in got,
          "a plaintext client got its line back in clear: %r" % got[:200])


def inetd(c, service_env=None, policy=None, port=0, name="inetd"):
    """Starts build/apps/test_inetd serving build/apps/exec_service. With
    policy, test_inetd itself is under the shim (the relay path); with
    service_env only the service's environment gets those variables.
    Returns (proc, port)."""
    s = c.suite
    port_file = c.path(name + ".port")
    argv = [s.app("test_inetd"), "--port-file", port_file, "--port",
            str(port), "--timeout", str(T_RUN * 2)]
    for k, v in (service_env or {}).items():
        argv += ["--env", "%s=%s" % (k, v)]
    argv += ["--", s.app("exec_service")]
    env = c.env(policy) if policy else c.env(preload=False)
    proc = c.start(name, argv, env)
    return proc, wait_port_file(proc, port_file)


def relay_descriptors(proc):
    """What the relay process named in proc's log holds open (the targets
    of /proc/PID/fd), or None when no relay was logged."""
    m = re.search(r"through relay process (\d+)", proc.err())
    if m is None:
        return None
    fd_dir = "/proc/%s/fd" % m.group(1)
    try:
        return sorted(os.readlink(os.path.join(fd_dir, n))
                      for n in os.listdir(fd_dir))
    except OSError as e:
        return ["cannot read %s: %s" % (fd_dir, e)]


NAMES = re.compile(r"^names peer (\S+):(\d+) local (\S+):(\d+) family (\S+)$",
                   re.M)


def wait_names(proc, count=1, timeout=T_RUN // 2):
    """exec_service's "names ..." lines in proc's stderr (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        got = NAMES.findall(proc.err())
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


@case
def exec_inetd_started_service_is_tls(c):
    """A service started by an inetd that is not under the shim (the
    suite's test_inetd: accept, fork, the socket dup2'ed onto 0 and 1,
    exec), with only the service under the shim and a listen endpoint on
    the port: the inherited socket is managed at start, so `openssl
    s_client` with verification gets the service's reply over TLS (through
    the service's stdio), and a plaintext client gets nothing readable."""
    s = c.suite
    port = free_port()
    pol = c.policy(server_ep(s, port))
    env = c.env(pol)
    proc, got = inetd(c, service_env={k: env[k] for k in (
        "LD_PRELOAD", "SECSHIM_CONFIG", "ASAN_OPTIONS")}, port=port)
    check(got == port, "test_inetd listens on %d, asked %d" % (got, port))
    client, ok = s_client(c, port, "hello inetd", "dteni olleh")
    check(ok, "s_client did not get the reversed line from the service")
    check("Verification: OK" in client.err(), "s_client did not verify")
    check(wait_established(proc, "srv"), "the service's shim logged no TLS "
          "connection")
    check("relay process" not in proc.err(), "a relay was started, but "
          "test_inetd is not under the shim")
    plaintext_gets_nothing(port, "plain to inetd")


@case
def exec_socat_exec_nofork_is_tls(c):
    """An inetd-style server under the shim, `socat TCP-LISTEN:P,fork
    EXEC:cat,nofork`: socat's child execs cat with the accepted socket on
    0 and 1 before any I/O, so the relay does the handshake and carries
    cat's echo; `openssl s_client` with verification gets its line back,
    a plaintext client gets no plaintext."""
    s = c.suite
    port = free_port()
    pol = c.policy(server_ep(s, port))
    proc = c.start("socat", [
        "socat", "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr" % port,
        "EXEC:cat,nofork"], c.env(pol))
    wait_listening(proc, port)
    client, ok = s_client(c, port, "hello socat", "hello socat")
    check(ok, "s_client did not get its line back through socat and cat")
    check("Verification: OK" in client.err(), "s_client did not verify")
    check(re.search(r"continues across exec through relay process \d+ "
                    r"\(descriptors 0, 1\)", proc.err()),
          "the shim logged no relay for descriptors 0 and 1")
    check(wait_established(proc, "srv"), "no TLS connection was logged")
    plaintext_gets_nothing(port, "plain to socat")


@case
def exec_sshd_reexec_is_tls(c):
    """sshd under the shim with a listen endpoint: sshd re-execs itself
    (`sshd -R`) for each connection with the accepted socket on 0 and 1.
    A shimmed `ssh` client (connect endpoint) logs in with a key and gets
    `hello` back over TLS; sshd's log names the client's real address
    (getpeername through the relay); a plaintext `ssh` cannot log in."""
    s = c.suite
    sshd = "/usr/sbin/sshd"
    if not os.path.exists(sshd) or shutil.which("ssh") is None:
        raise Failure("sshd or ssh is missing (make deps installs "
                      "openssh-server and openssh-client)")
    if os.geteuid() != 0:
        raise Skip("sshd needs root here (privilege separation)")
    # Privilege separation chroots into /run/sshd, which the service unit
    # makes at boot; it is missing when sshd never ran here.
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    for key in ("host", "user"):
        out = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                              "-f", c.path(key)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=T_RUN)
        check(out.returncode == 0, "ssh-keygen failed: %r" % out.stdout)
    shutil.copy(c.path("user.pub"), c.path("authorized_keys"))
    port = free_port()
    c.write("sshd_config", "\n".join([
        "Port %d" % port, "ListenAddress 127.0.0.1",
        "HostKey %s" % c.path("host"), "PidFile %s" % c.path("sshd.pid"),
        "UsePAM no", "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "AuthorizedKeysFile %s" % c.path("authorized_keys"),
        "StrictModes no", "LogLevel INFO", ""]))
    pol = c.policy(server_ep(s, port), client_ep(s, port))
    server = c.start("sshd", [sshd, "-D", "-e", "-f", c.path("sshd_config")],
                     c.env(pol))
    check(server.wait_output(r"Server listening on 127\.0\.0\.1 port %d"
                             % port, T_START, stream="err") is not None,
          "sshd did not start listening")
    ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
           "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
           "-i", c.path("user"), "-p", str(port), "root@127.0.0.1",
           "echo", "hello"]
    client = c.run("ssh", ssh, c.env(pol))
    check(client.p.returncode == 0 and client.out().strip() == "hello",
          "the shimmed ssh did not get hello (exit %s)"
          % client.p.returncode)
    check(established(client, "cli"), "the ssh client's shim logged no TLS "
          "connection")
    m = server.wait_output(r"Accepted publickey for root from 127\.0\.0\.1 "
                           r"port (\d+)", T_RUN // 2, stream="err")
    check(m is not None, "sshd logged no accepted login with the client's "
          "address")
    check(re.search(r"TLS from 127\.0\.0\.1:%s established" % m.group(1),
                    server.err()),
          "the address sshd logged is not the TLS connection's")
    # The plaintext ssh is the fail-closed probe: its own bytes are clear
    # on purpose (the sshd shim's direction is still judged).
    c.wire_plaintext("the unshimmed ssh client tries the TLS port",
                     side="client", port=port, from_now=True)
    plain = c.run("ssh-plain", ssh)
    check(plain.p.returncode != 0 and "hello" not in plain.out(),
          "a plaintext ssh logged in through the TLS port")


@case
def exec_dup2_stdout_helper_output_is_tls(c):
    """A shimmed client connects, dup2()s the socket onto 1 and execs
    /bin/echo SECRET: the helper's output reaches the TLS peer as
    application data (the peer's own account of what it received), and
    the wire between them holds TLS records, never the secret."""
    s = c.suite
    secret = "secshim-exec-secret-%s" % os.urandom(6).hex()
    peer, port = tls_echo_peer(c)
    proxy, rport, c2s, s2c = relay(c, port)
    pol = c.policy(client_ep(s, rport))
    proc = c.run("exec_client", [s.app("exec_client"), "localhost",
                                 str(rport), "/bin/echo", secret],
                 c.env(pol))
    check(proc.p.returncode == 0, "exec_client exited %s"
          % proc.p.returncode)
    want = sha256((secret + "\n").encode())
    rx = re.compile(r"^conn \d+: received (\d+) bytes sha256=(\w+)$", re.M)
    deadline = time.monotonic() + T_RUN // 2
    while not rx.search(peer.out()) and time.monotonic() < deadline:
        time.sleep(0.02)
    got = rx.findall(peer.out())
    check(got == [(str(len(secret) + 1), want)],
          "the TLS peer reports %s, expected the helper's %d bytes (sha256 "
          "%s)" % (got, len(secret) + 1, want[:16]))
    proxy.stop()
    data = read_file(c2s)
    check(secret.encode() not in data, "the secret is on the wire in clear")
    types, err = tls_records(data)
    check(err is None and 23 in types, "client->server is not TLS "
          "application data: %s" % (err or types))


@case
def exec_system_from_server_starts_no_relay(c):
    """A shimmed server holding 4 TLS connections on descriptors above 2
    runs system("true") and a fork + exec of /bin/true: no relay is
    started (it is a child subreaper and counts its children: 0), and
    every connection still echoes afterwards."""
    s = c.suite
    port = free_port()
    pol = c.policy(server_ep(s, port))
    n = 4
    port_file = c.path("server.port")
    server = c.start("system_server", [s.app("system_server"), "--port-file",
                                       port_file, "--port", str(port),
                                       "--conns", str(n)], c.env(pol))
    server_port = wait_port_file(server, port_file)
    ctx = ssl.create_default_context(cafile=s.pki("ca.pem"))
    raws = [socket.create_connection(("127.0.0.1", server_port),
                                     timeout=T_RUN // 2) for _ in range(n)]
    socks = []
    try:
        for i, raw in enumerate(raws):
            sock = ctx.wrap_socket(raw, server_hostname="localhost")
            socks.append(sock)
            line = ("round1-%d\n" % i).encode()
            sock.sendall(line)
            check(sock.recv(100) == line, "round 1: connection %d" % i)
        check(server.wait_output(r"children \d+", T_RUN // 2) is not None,
              "the server did not report its children")
        for i, sock in enumerate(socks):
            line = ("round2-%d\n" % i).encode()
            sock.sendall(line)
            check(sock.recv(100) == line, "round 2: connection %d did not "
                  "echo after system()" % i)
    finally:
        for sock in socks or raws:
            sock.close()
    check(server.wait(T_RUN) == 0, "system_server exited %s"
          % server.p.returncode)
    out = server.out()
    check(re.search(r"^children 0$", out, re.M), "children after the "
          "helpers ran: %s" % re.findall(r"children \d+", out))
    check("relay process" not in server.err(), "a relay was started")
    check("served %d" % n in out, "not every connection was served")


@case
def exec_relayed_descriptors_name_the_tcp_connection(c):
    """test_inetd under the shim (listen endpoint): its child execs
    exec_service with the accepted socket on 0 and 1, which a relay
    carries. In the exec'd program (under the shim too) getpeername,
    getsockname and SO_DOMAIN of descriptor 0 name the original TCP
    connection: the client's own port and the server's, AF_INET; the
    service's reversed line comes back over verified TLS."""
    s = c.suite
    port = free_port()
    proc, got = inetd(c, policy=c.policy(server_ep(s, port)), port=port)
    ctx = ssl.create_default_context(cafile=s.pki("ca.pem"))
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=T_RUN // 2) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as sock:
            local_port = sock.getsockname()[1]
            sock.sendall(b"names please\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
            check(reply == b"esaelp seman\n", "the service replied %r"
                  % reply)
            relay_fds = relay_descriptors(proc)
    check(relay_fds is not None and len(relay_fds) == 4 and
          not any(t.startswith("pipe:") for t in relay_fds),
          "the relay should hold exactly its socketpair end, the private "
          "descriptor, its own stand-in and the log; it holds %s" % relay_fds)
    names = wait_names(proc)
    check(names == [("127.0.0.1", str(local_port), "127.0.0.1", str(port),
                     "inet")],
          "the exec'd service saw %s, expected peer 127.0.0.1:%d local "
          "127.0.0.1:%d inet" % (names, local_port, port))
    check(re.search(r"continues across exec through relay process",
                    proc.err()), "no relay was logged")


@case
def exec_failed_keeps_the_connection(c):
    """A shimmed client with its TLS connection on descriptor 1 execs a
    program that does not exist: the exec fails, the relay it had made
    leaves without a word, and the program writes on through its own
    connection: the TLS peer receives that line, and no relay took over."""
    s = c.suite
    line = "after-failed-exec-%s" % os.urandom(4).hex()
    peer, port = tls_echo_peer(c)
    proc = c.run("exec_client", [s.app("exec_client"), "--fallback", line,
                                 "localhost", str(port),
                                 c.path("no-such-program")],
                 c.env(c.policy(client_ep(s, port))))
    check(proc.p.returncode == 0, "exec_client exited %s (the write after "
          "the failed exec failed?)" % proc.p.returncode)
    want = sha256((line + "\n").encode())
    rx = re.compile(r"^conn \d+: received (\d+) bytes sha256=(\w+)$", re.M)
    deadline = time.monotonic() + T_RUN // 2
    while not rx.search(peer.out()) and time.monotonic() < deadline:
        time.sleep(0.02)
    got = rx.findall(peer.out())
    check(got == [(str(len(line) + 1), want)], "the TLS peer reports %s, "
          "expected the line written after the failed exec" % got)
    check("relay process" not in proc.err(), "a relay took the connection "
          "although the exec failed")
