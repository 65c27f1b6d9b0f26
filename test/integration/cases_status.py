# `secshim status` and the status files shimmed processes publish (issue
# 10, "See what is happening"; docs/operations.md, "Status and metrics";
# docs/design.md, "Status publishing"). Loaded by test/integration/run
# into its own namespace: every helper of that file is available here.
#
# Every shimmed process of a case publishes into the case's directory
# (Case.env sets XDG_RUNTIME_DIR to it); `secshim status` is run with the
# same variable and the cases look only at their own processes' pids
# (root's status also lists other users' and other runs' processes).

import calendar
import ssl

# A plain program under the shim (Python's sockets are libc's): with
# "serve PORT" it listens on 127.0.0.1:PORT, echoes one connection, says
# "served" and waits for a line on stdin, then execs itself with "wait"
# (same pid, a new image under the shim) or, with "leave", python3 without
# LD_PRELOAD (a new image not under the shim); "wait" says "exec'd" and
# exits normally at the end of stdin. With "forkhold PORT" it echoes one
# line of one connection, forks, and the child echoes the next line on the
# inherited connection, closes it and says "child PID done"; both wait for
# the end of stdin, the parent holding its copy. With "forkidle" it forks
# a child that says "child PID" and uses no TLS; both exit normally at the
# end of stdin. With "connect PORT LINE N" it makes N
# connections one after the other to 127.0.0.1:PORT, sends LINE on each
# and reads one line back, says "connected" and holds the last one until
# the end of stdin. alarm(60) bounds every mode.
STATUS_PROG = r'''
import os, signal, socket, sys
signal.alarm(60)
mode = sys.argv[1]

def read_line(sock):
    got = b""
    while not got.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got

if mode in ("serve", "leave"):
    port = int(sys.argv[2])
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4)
    print("listening", flush=True)
    conn, _ = lsock.accept()
    conn.sendall(read_line(conn))
    conn.close()
    lsock.close()
    print("served", flush=True)
    sys.stdin.readline()
    if mode == "serve":
        os.execv(sys.executable, [sys.executable, sys.argv[0], "wait"])
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    os.execve(sys.executable, [sys.executable, sys.argv[0], "wait"], env)
elif mode == "forkhold":
    port = int(sys.argv[2])
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4)
    print("listening", flush=True)
    conn, _ = lsock.accept()
    conn.sendall(read_line(conn))
    child = os.fork()
    if child == 0:
        conn.sendall(read_line(conn))
        conn.close()
        print("child %d done" % os.getpid(), flush=True)
        sys.stdin.read()
        sys.exit(0)
    sys.stdin.read()
    conn.close()
    os.waitpid(child, 0)
elif mode == "forkidle":
    child = os.fork()
    if child == 0:
        print("child %d" % os.getpid(), flush=True)
        sys.stdin.read()
        sys.exit(0)
    sys.stdin.read()
    os.waitpid(child, 0)
elif mode == "wait":
    print("exec'd", flush=True)
    sys.stdin.read()
elif mode == "connect":
    port, line, n = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    for i in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        sock.sendall(line.encode() + b"\n")
        reply = read_line(sock)
        if i < n - 1:
            sock.close()
    print("connected %r" % reply.decode(errors="replace"), flush=True)
    sys.stdin.read()
'''


def status_env(c, xdg=True):
    """The environment of `secshim status` (no preload) for the case."""
    env = c.env(preload=False)
    if not xdg:
        env.pop("XDG_RUNTIME_DIR", None)
    return env


def status_run(c, *args, xdg=True):
    """Runs `secshim status ARGS`; returns (exit status, stdout, stderr).
    Not kept in c.procs: the cases poll it; the last output goes into a
    note when a case fails."""
    out = subprocess.run([os.path.join(c.suite.build, "secshim"), "status"]
                         + list(args), env=status_env(c, xdg),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=T_RUN)
    return (out.returncode, out.stdout.decode(errors="replace"),
            out.stderr.decode(errors="replace"))


def status_json(c, xdg=True):
    rc, out, err = status_run(c, "--json", xdg=xdg)
    c.last_status = out + err
    check(rc == 0, "secshim status --json exited %d: %s" % (rc, err))
    try:
        return json.loads(out)
    except ValueError as e:
        raise Failure("secshim status --json printed no JSON (%s): %r"
                      % (e, out[:500]))


def process_of(doc, pid):
    """The entry of pid in a status document, or None."""
    found = [p for p in doc["processes"] if p["pid"] == pid]
    check(len(found) <= 1, "pid %d listed %d times" % (pid, len(found)))
    return found[0] if found else None


def endpoint_of(proc, name):
    found = [e for e in proc["endpoints"] if e["name"] == name]
    check(len(found) == 1, "endpoint %s listed %d times for pid %d"
          % (name, len(found), proc["pid"]))
    return found[0]


def wait_status(c, what, pred, timeout=T_RUN, xdg=True):
    """Polls `secshim status --json` until pred(doc) holds; returns the
    document. Fails saying what did not hold, with the last output."""
    deadline = time.monotonic() + timeout
    while True:
        doc = status_json(c, xdg=xdg)
        if pred(doc):
            return doc
        if time.monotonic() > deadline:
            c.note("last secshim status --json:\n" + c.last_status)
            raise Failure("%s: not seen within %ss" % (what, timeout))
        time.sleep(0.1)


def ep_counts(doc, pid, name="srv"):
    """(open, ok, resumed, failed, bytes in, bytes out) of an endpoint, or
    None when pid is not listed."""
    proc = process_of(doc, pid)
    if proc is None:
        return None
    e = endpoint_of(proc, name)
    return (e["connections_open"], e["handshakes"]["ok"],
            e["handshakes"]["resumed"], e["handshakes"]["failed"],
            e["bytes"]["in"], e["bytes"]["out"])


def status_files(c, pid=None):
    """The status files in the case's directory (of pid only, if given)."""
    d = c.path("secshim")
    names = sorted(os.listdir(d)) if os.path.isdir(d) else []
    return [n for n in names if pid is None or n.startswith("%d-" % pid)]


def cert_not_after(path):
    """A certificate's notAfter as seconds since the epoch (openssl)."""
    out = subprocess.run(["openssl", "x509", "-enddate", "-noout", "-in",
                          path], stdout=subprocess.PIPE, timeout=T_RUN)
    text = out.stdout.decode().strip().split("=", 1)[1]
    return calendar.timegm(time.strptime(text, "%b %d %H:%M:%S %Y GMT"))


def tls_connect(c, port):
    """A verifying TLS client (Python's ssl, no shim), connected."""
    ctx = ssl.create_default_context(cafile=c.suite.pki("ca.pem"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=T_RUN)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def tls_close(sock):
    """Ends a TLS connection as a well-behaved client does: close_notify
    (and the server's in return), then the socket."""
    try:
        sock.unwrap().close()
    except (OSError, ValueError):
        tls_close(sock)


def echo_round(sock, data):
    """Sends data and reads its echo back whole."""
    sock.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    check(got == data, "the echo came back %d bytes of %d"
          % (len(got), len(data)))


SIZES = (100, 2000, 70000)


def server_with_clients(c):
    """A shimmed echo_server holding len(SIZES) TLS connections from an
    independent client, each having echoed SIZES[i] bytes. Returns
    (server, port, policy, sockets)."""
    s = c.suite
    port = free_port()
    policy = c.policy(server_ep(s, port))
    server, _ = echo_server(c, policy, port=port)
    socks = []
    for n in SIZES:
        sock = tls_connect(c, port)
        socks.append(sock)
        echo_round(sock, prng_bytes(n))
    return server, port, policy, socks


def close_all(socks):
    for sock in socks:
        tls_close(sock)


@case
def status_json_shows_connections_and_bytes(c):
    """A shimmed server holding three TLS connections from Python's ssl:
    `secshim status --json` lists it with its policy, compatibility mode,
    the endpoint (role, address), 3 open, 3 handshakes, the bytes echoed
    in and out, and the certificate's notAfter; after the clients close,
    0 open and the totals stay."""
    server, port, policy, socks = server_with_clients(c)
    total = sum(SIZES)
    try:
        doc = wait_status(c, "3 open connections", lambda d:
                          ep_counts(d, server.pid) ==
                          (3, 3, 0, 0, total, total))
        proc = process_of(doc, server.pid)
        check(proc["command"] == "echo_server", "command %r"
              % proc["command"])
        check(proc["policy"] == policy, "policy %r, started with %r"
              % (proc["policy"], policy))
        check(proc["compat"] is False, "compat %r" % proc["compat"])
        with open("/proc/%d/stat" % server.pid) as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        check(proc["start_time"] == start, "start_time %r, /proc says %d"
              % (proc["start_time"], start))
        e = endpoint_of(proc, "srv")
        check(e["role"] == "listen" and e["address"] == "127.0.0.1:%d" % port,
              "endpoint %r" % e)
        want = cert_not_after(c.suite.pki("server.pem"))
        check(e["certificate_not_after"] == want,
              "certificate_not_after %r, the certificate says %d"
              % (e["certificate_not_after"], want))
        days = (want - int(time.time())) // 86400
        check(e["certificate_days_left"] in (days, days - 1),
              "certificate_days_left %r, about %d"
              % (e["certificate_days_left"], days))
        check(e["last_failure"] is None, "a failure: %r" % e["last_failure"])
        check(status_files(c, server.pid) == ["%d-%d" % (server.pid, start)],
              "status files %r" % status_files(c))
    finally:
        close_all(socks)
    wait_status(c, "0 open after the clients closed", lambda d:
                ep_counts(d, server.pid) == (0, 3, 0, 0, total, total))


def status_table_rows(text, pid):
    """The table's endpoint rows of pid: {name: [fields]}."""
    rows, mine = {}, False
    for line in text.splitlines():
        if line.startswith("pid "):
            mine = line.split()[1] == str(pid)
            continue
        if mine and line.startswith("  ") and not line.startswith(
                "  ENDPOINT"):
            fields = line.split()
            rows[fields[0]] = fields
    return rows


@case
def status_table_names_the_same_figures(c):
    """The human table shows the process (pid, command, policy, compat)
    and per endpoint: role, address, open connections, handshakes
    ok/failed/resumed, bytes in/out and days left, the figures --json
    gives."""
    server, port, policy, socks = server_with_clients(c)
    try:
        doc = wait_status(c, "3 open connections", lambda d:
                          ep_counts(d, server.pid) is not None and
                          ep_counts(d, server.pid)[0] == 3)
        e = endpoint_of(process_of(doc, server.pid), "srv")
        rc, out, err = status_run(c)
        check(rc == 0, "secshim status exited %d: %s" % (rc, err))
        c.note("secshim status:\n" + out)
        head = "pid %d  echo_server  policy %s  compat off" % (server.pid,
                                                               policy)
        check(head in out.splitlines(), "no line %r" % head)
        row = status_table_rows(out, server.pid).get("srv")
        check(row is not None, "no row for endpoint srv")
        want = ["srv", "listen", "127.0.0.1:%d" % port,
                str(e["connections_open"]), str(e["handshakes"]["ok"]),
                str(e["handshakes"]["failed"]),
                str(e["handshakes"]["resumed"]), str(e["bytes"]["in"]),
                str(e["bytes"]["out"]), str(e["certificate_days_left"]), "-"]
        check(row == want, "row %r, --json says %r" % (row, want))
    finally:
        close_all(socks)


# The Prometheus text exposition format, strictly: each sample's metric
# has a HELP and a TYPE line before it, names and labels are well-formed,
# label values are quoted with their escapes, values are numbers.
PROM_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
PROM_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
PROM_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
                        r'(,|$)')


def parse_prometheus(text):
    """Returns {metric: {"type": T, "samples": [(labels dict, value)]}};
    a Failure names the first line that breaks the format."""
    check(text.endswith("\n"), "the exposition does not end with a newline")
    metrics = {}
    for n, line in enumerate(text.splitlines(), 1):
        where = "line %d %r" % (n, line)
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            check(PROM_NAME.match(name) and help_text, "bad HELP: " + where)
            check(name not in metrics, "a second HELP: " + where)
            metrics[name] = {"type": None, "samples": []}
            continue
        if line.startswith("# TYPE "):
            parts = line[7:].split(" ")
            check(len(parts) == 2 and parts[0] in metrics and
                  metrics[parts[0]]["type"] is None and
                  not metrics[parts[0]]["samples"] and
                  parts[1] in ("counter", "gauge"),
                  "bad TYPE (or not after its HELP, or late): " + where)
            metrics[parts[0]]["type"] = parts[1]
            continue
        check(not line.startswith("#") and line.strip() != "",
              "neither a sample nor HELP/TYPE: " + where)
        m = PROM_SAMPLE.match(line)
        check(m, "not a sample: " + where)
        name, label_text, value = m.groups()
        check(name in metrics and metrics[name]["type"] is not None,
              "a sample without HELP and TYPE: " + where)
        check(metrics[name]["type"] != "counter" or name.endswith("_total"),
              "a counter not named _total: " + where)
        labels, rest = {}, label_text or ""
        while rest:
            lm = PROM_LABEL.match(rest)
            check(lm and lm.group(1) not in labels, "bad labels: " + where)
            labels[lm.group(1)] = re.sub(
                r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1),
                lm.group(2))
            rest = rest[lm.end():]
            check(lm.group(3) == "," or not rest, "bad labels: " + where)
        try:
            number = float(value)
        except ValueError:
            raise Failure("value is not a number: " + where)
        for other, _ in metrics[name]["samples"]:
            check(other != labels, "a repeated sample: " + where)
        metrics[name]["samples"].append((labels, number))
    return metrics


def prom_value(metrics, name, **labels):
    found = [v for lab, v in metrics.get(name, {}).get("samples", [])
             if all(lab.get(k) == str(v) for k, v in labels.items())]
    check(len(found) == 1, "%d samples of %s%r" % (len(found), name, labels))
    return found[0]


@case
def status_prometheus_parses_strictly(c):
    """`secshim status --prometheus` is the text exposition format (a strict
    parser here: HELP and TYPE before samples, well-formed labels, numbers)
    with the figures --json gives: process info with policy and compat,
    open connections, handshakes by result, bytes by direction, the
    certificate's expiry, labelled by pid and endpoint."""
    server, port, policy, socks = server_with_clients(c)
    total = sum(SIZES)
    try:
        doc = wait_status(c, "3 open connections", lambda d:
                          ep_counts(d, server.pid) ==
                          (3, 3, 0, 0, total, total))
        rc, out, err = status_run(c, "--prometheus")
        check(rc == 0, "secshim status --prometheus exited %d: %s"
              % (rc, err))
        c.note("secshim status --prometheus:\n" + out)
        m = parse_prometheus(out)
        pid = str(server.pid)
        check(prom_value(m, "secshim_process_info", pid=pid, policy=policy,
                         compat="off", command="echo_server") == 1,
              "process info is not 1")
        key = dict(pid=pid, endpoint="srv", role="listen")
        got = (prom_value(m, "secshim_connections_open", **key),
               prom_value(m, "secshim_handshakes_total", result="ok", **key),
               prom_value(m, "secshim_handshakes_total", result="resumed",
                          **key),
               prom_value(m, "secshim_handshakes_total", result="failed",
                          **key),
               prom_value(m, "secshim_bytes_total", direction="in", **key),
               prom_value(m, "secshim_bytes_total", direction="out", **key),
               prom_value(m, "secshim_certificate_expiry_timestamp_seconds",
                          **key))
        e = endpoint_of(process_of(doc, server.pid), "srv")
        want = (3, 3, 0, 0, total, total, e["certificate_not_after"])
        check(got == want, "prometheus %r, --json %r" % (got, want))
        check(m["secshim_handshakes_total"]["type"] == "counter" and
              m["secshim_connections_open"]["type"] == "gauge",
              "wrong metric types")
    finally:
        close_all(socks)


@case
def status_failed_handshakes_count_with_reason(c):
    """Handshakes a shimmed server refuses count as failed, with the last
    reason: openssl s_client that does not trust the server's CA (it
    aborts with an alert), then a plaintext client; a good client after
    them counts as ok and leaves the last failure as it was."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port)), port=port)
    client = c.run("wrong-ca", ["openssl", "s_client", "-connect",
                                "127.0.0.1:%d" % port, "-CAfile",
                                s.pki("other-root.pem"),
                                "-verify_return_error", "-brief"])
    check(client.p.returncode != 0, "s_client trusting another root "
          "connected")
    doc = wait_status(c, "one failed handshake", lambda d:
                      ep_counts(d, server.pid) is not None and
                      ep_counts(d, server.pid)[3] == 1)
    e = endpoint_of(process_of(doc, server.pid), "srv")
    reason = (e["last_failure"] or {}).get("reason", "")
    check(re.search(r"TLS handshake with 127\.0\.0\.1:\d+ failed: .*"
                    r"(?i:unknown ca)", reason),
          "reason %r does not name the client's alert" % reason)
    check(abs(e["last_failure"]["time"] - time.time()) < 600,
          "failure time %r" % e["last_failure"]["time"])
    raw_echo(port, b"GET / HTTP/1.0\r\n\r\n")
    doc = wait_status(c, "two failed handshakes", lambda d:
                      ep_counts(d, server.pid)[3] == 2)
    e = endpoint_of(process_of(doc, server.pid), "srv")
    check("not speaking TLS" in e["last_failure"]["reason"],
          "reason %r does not say the client is not speaking TLS"
          % e["last_failure"]["reason"])
    sock = tls_connect(c, port)
    try:
        echo_round(sock, b"after the failures\n")
        doc = wait_status(c, "one ok handshake", lambda d:
                          ep_counts(d, server.pid)[:4] == (1, 1, 0, 2))
        e2 = endpoint_of(process_of(doc, server.pid), "srv")
        check(e2["last_failure"] == e["last_failure"],
              "the last failure changed: %r" % e2["last_failure"])
    finally:
        tls_close(sock)


@case
def status_connect_endpoint_counts_resumed(c):
    """A shimmed client of a connect endpoint against openssl s_server
    -rev: two connections, the second resumed, the last held: status shows
    role connect, 1 open, 1 ok, 1 resumed, the bytes it wrote and read,
    and no certificate expiry (the endpoint has no certificate)."""
    s = c.suite
    peer, port = s_server(c)
    prog = c.write("status_prog.py", STATUS_PROG)
    line = "status line"
    client = c.start("client", [sys.executable, prog, "connect", str(port), line,
                                "2"],
                     env=c.env(c.policy(client_ep(s, port))),
                     stdin=True)
    check(client.wait_output(r"connected", T_RUN), "the client did not "
          "connect")
    check(line[::-1] in client.out(), "no reversed line came back")
    n = 2 * (len(line) + 1)
    doc = wait_status(c, "the held connection", lambda d:
                      ep_counts(d, client.pid, "cli") == (1, 1, 1, 0, n, n))
    e = endpoint_of(process_of(doc, client.pid), "cli")
    check(e["role"] == "connect" and e["address"] == "localhost:%d" % port,
          "endpoint %r" % e)
    check(e["certificate_not_after"] is None and
          e["certificate_days_left"] is None,
          "an expiry for an endpoint without a certificate: %r" % e)
    client.close_stdin()
    check(client.wait(T_RUN) == 0, "the client failed")
    check(status_files(c, client.pid) == [], "the client's file is left: %r"
          % status_files(c))


@case
def status_normal_exit_removes_file(c):
    """A shimmed server that exits normally (echo_server --once after its
    one connection) removes its status file: listed while it runs, gone
    and not listed after."""
    s = c.suite
    port = free_port()
    policy = c.policy(server_ep(s, port))
    port_file = c.path("server.port")
    server = c.start("server", [s.app("echo_server"), "-4", str(port),
                                "--once", "--port-file", port_file],
                     env=c.env(policy))
    wait_port_file(server, port_file)
    sock = tls_connect(c, port)
    try:
        echo_round(sock, b"once\n")
        doc = wait_status(c, "the server listed", lambda d:
                          process_of(d, server.pid) is not None)
        check(len(status_files(c, server.pid)) == 1, "no status file")
    finally:
        tls_close(sock)
    check(server.wait(T_RUN) == 0, "echo_server --once failed")
    check(status_files(c, server.pid) == [], "the file is left after a "
          "normal exit: %r" % status_files(c))
    doc = status_json(c)
    check(process_of(doc, server.pid) is None, "listed after its exit")
    check(not [x for x in doc["stale"] if x["pid"] == server.pid],
          "reported stale after a normal exit")


@case
def status_kill9_is_stale_and_removed(c):
    """A shimmed server killed with SIGKILL leaves its file: `secshim
    status` does not list it, reports it stale (process gone) and removes
    it; the next run reports nothing of it."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port)), port=port)
    wait_status(c, "the server listed", lambda d:
                process_of(d, server.pid) is not None)
    files = status_files(c, server.pid)
    check(len(files) == 1, "status files %r" % files)
    os.kill(server.pid, signal.SIGKILL)
    server.wait(T_STOP)
    check(status_files(c, server.pid) == files, "SIGKILL removed the file?")
    doc = status_json(c)
    check(process_of(doc, server.pid) is None, "a killed process is listed")
    stale = [x for x in doc["stale"] if x["pid"] == server.pid]
    check(len(stale) == 1 and stale[0]["process"] == "gone" and
          stale[0]["removed"] is True, "stale entries %r" % doc["stale"])
    check(status_files(c, server.pid) == [], "the stale file is left")
    doc = status_json(c)
    check(not [x for x in doc["stale"] if x["pid"] == server.pid],
          "reported stale twice")
    rc, out, _ = status_run(c)
    # Its pid, not its program's name: root's table also lists the
    # shimmed processes of other runs and users.
    check(rc == 0 and ("pid %d " % server.pid) not in out,
          "the table lists it: %r" % out)


@case
def status_reused_pid_is_stale(c):
    """A status file whose pid now belongs to a process with another start
    time (the pid was reused) is stale: not listed, reported as reused,
    removed; the live process's own file is still listed."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port)), port=port)
    wait_status(c, "the server listed", lambda d:
                process_of(d, server.pid) is not None)
    real = status_files(c, server.pid)[0]
    start = int(real.split("-")[1])
    fake = "%d-%d" % (server.pid, start + 12345)
    shutil.copyfile(c.path("secshim/" + real), c.path("secshim/" + fake))
    doc = status_json(c)
    proc = process_of(doc, server.pid)
    check(proc is not None and proc["start_time"] == start,
          "the live process is not listed as itself: %r" % proc)
    stale = [x for x in doc["stale"] if x["pid"] == server.pid]
    check(len(stale) == 1 and stale[0]["process"] == "reused" and
          stale[0]["start_time"] == start + 12345 and stale[0]["removed"],
          "stale entries %r" % doc["stale"])
    check(status_files(c, server.pid) == [real], "files %r"
          % status_files(c))


def ppid_of(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@case
def status_fork_child_publishes_its_own(c):
    """A fork-per-connection server (ev_forkconn_server: the parent
    accepts, the child does the handshake and the echo): the child is
    listed as its own process, with the connection, handshake and bytes in
    its own file; the parent's counts stay 0 (nothing of the child's
    reaches its mapping). When the child exits its file goes."""
    s = c.suite
    need_app(c, "ev_forkconn_server")
    port = free_port()
    server, _ = ev_server(c, "ev_forkconn_server",
                          c.policy(server_ep(s, port)), port)
    sock = tls_connect(c, port)
    data = prng_bytes(5000)
    try:
        echo_round(sock, data)

        def child_ready(d):
            kids = [p for p in d["processes"] if p["pid"] != server.pid and
                    os.path.exists("/proc/%d" % p["pid"]) and
                    ppid_of(p["pid"]) == server.pid]
            return len(kids) == 1 and ep_counts(d, kids[0]["pid"]) == (
                1, 1, 0, 0, len(data), len(data))
        doc = wait_status(c, "the child with the connection", child_ready)
        kid = [p for p in doc["processes"] if p["pid"] != server.pid and
               ppid_of(p["pid"]) == server.pid][0]
        check(ep_counts(doc, server.pid) == (0, 0, 0, 0, 0, 0),
              "the parent counts %r" % (ep_counts(doc, server.pid),))
        check(kid["start_time"] != process_of(doc, server.pid)["start_time"],
              "the child has its parent's start time")
        check(len(status_files(c, kid["pid"])) == 1, "no file for the child")
        e = endpoint_of(kid, "srv")
        check(e["certificate_not_after"] ==
              cert_not_after(s.pki("server.pem")),
              "the child lost its parent's certificate expiry: %r" % e)
    finally:
        tls_close(sock)
    deadline = time.monotonic() + T_RUN
    while status_files(c, kid["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    check(status_files(c, kid["pid"]) == [], "the child's file is left "
          "after it exited")
    check(process_of(status_json(c), server.pid) is not None,
          "the parent is no longer listed")


@case
def status_fork_inherited_connection_counts_where_established(c):
    """A connection established before a fork counts as open in the
    process where its handshake ended, never in the child that inherits
    it: the child's file shows 0 open and 0 handshakes (its close of the
    copy takes nothing off), but the bytes the child's program moves on it
    are the child's."""
    port = free_port()
    prog = status_prog(c, "forkhold", port)
    sock = tls_connect(c, port)
    try:
        first, second = b"parent line\n", b"the child's longer line\n"
        echo_round(sock, first)
        echo_round(sock, second)
        m = prog.wait_output(r"child (\d+) done", T_RUN)
        check(m, "the child did not say it was done")
        kid = int(m.group(1))
        n1, n2 = len(first), len(second)
        doc = wait_status(c, "parent and child counts", lambda d:
                          ep_counts(d, prog.pid) == (1, 1, 0, 0, n1, n1) and
                          ep_counts(d, kid) == (0, 0, 0, 0, n2, n2))
        check(process_of(doc, kid)["start_time"] !=
              process_of(doc, prog.pid)["start_time"], "one start time")
    finally:
        tls_close(sock)
        prog.close_stdin()
    check(prog.wait(T_RUN) == 0, "the program failed")


@case
def status_fork_child_without_tls_makes_no_file(c):
    """A fork child that uses no TLS (a shell's, sshd's sandboxed
    privilege-separated child) makes no status file and is not listed,
    while its parent is; it leaves nothing stale at its exit. (A file made
    at the fork would be removed at the child's exit with an unlink that
    sshd's seccomp sandbox kills: exec_sshd_reexec_is_tls.)"""
    s = c.suite
    prog = c.write("status_prog.py", STATUS_PROG)
    proc = c.start("prog", [sys.executable, prog, "forkidle"],
                   env=c.env(c.policy(server_ep(s, free_port()))),
                   stdin=True)
    m = proc.wait_output(r"child (\d+)", T_RUN)
    check(m, "the program did not fork")
    kid = int(m.group(1))
    doc = wait_status(c, "the parent listed", lambda d:
                      process_of(d, proc.pid) is not None)
    check(process_of(doc, kid) is None, "the child is listed")
    check(status_files(c, kid) == [], "the child made a file: %r"
          % status_files(c))
    proc.close_stdin()
    check(proc.wait(T_RUN) == 0, "the program failed")
    check(status_files(c) == [], "files left: %r" % status_files(c))
    check(status_json(c)["stale"] == [], "stale files reported")


def status_prog(c, mode, port):
    prog = c.write("status_prog.py", STATUS_PROG)
    policy = c.policy(server_ep(c.suite, port))
    proc = c.start("prog", [sys.executable, prog, mode, str(port)],
                   env=c.env(policy), stdin=True)
    check(proc.wait_output(r"listening", T_START), "the program did not "
          "listen")
    return proc


@case
def status_exec_rewrites_the_file(c):
    """exec keeps pid and start time: the new image (under the shim) takes
    the same file and writes it afresh (counts 0), one entry for the pid;
    its normal exit removes the file."""
    port = free_port()
    prog = status_prog(c, "serve", port)
    sock = tls_connect(c, port)
    try:
        echo_round(sock, b"before exec\n")
    finally:
        tls_close(sock)
    check(prog.wait_output(r"served", T_RUN), "the program did not serve")
    doc = wait_status(c, "the handshake before exec", lambda d:
                      ep_counts(d, prog.pid) is not None and
                      ep_counts(d, prog.pid)[1:] == (1, 0, 0, 12, 12))
    before = process_of(doc, prog.pid)
    files = status_files(c, prog.pid)
    prog.send(b"go\n")
    check(prog.wait_output(r"exec'd", T_RUN), "the program did not exec")
    doc = wait_status(c, "the new image's fresh counts", lambda d:
                      ep_counts(d, prog.pid) == (0, 0, 0, 0, 0, 0))
    after = process_of(doc, prog.pid)
    check(after["start_time"] == before["start_time"],
          "start time changed across exec")
    check(after["started_at"] >= before["started_at"], "started_at went back")
    check(status_files(c, prog.pid) == files, "files %r, before %r"
          % (status_files(c, prog.pid), files))
    prog.close_stdin()
    check(prog.wait(T_RUN) == 0, "the exec'd program failed")
    check(status_files(c, prog.pid) == [], "the file is left after the new "
          "image's normal exit")


@case
def status_exec_out_of_the_shim_not_listed(c):
    """An exec into a program without the shim (LD_PRELOAD dropped): the
    old image marked its file, so the process is not listed while it
    runs; once it is gone its file is stale and removed."""
    port = free_port()
    prog = status_prog(c, "leave", port)
    sock = tls_connect(c, port)
    try:
        echo_round(sock, b"before exec\n")
    finally:
        tls_close(sock)
    check(prog.wait_output(r"served", T_RUN), "the program did not serve")
    wait_status(c, "the program listed", lambda d:
                process_of(d, prog.pid) is not None)
    prog.send(b"go\n")
    check(prog.wait_output(r"exec'd", T_RUN), "the program did not exec")
    doc = status_json(c)
    check(process_of(doc, prog.pid) is None, "listed after leaving the shim")
    check(len(status_files(c, prog.pid)) == 1, "its file went at exec")
    check(not [x for x in doc["stale"] if x["pid"] == prog.pid],
          "reported stale while it runs")
    prog.close_stdin()
    check(prog.wait(T_RUN) == 0, "the exec'd program failed")
    doc = status_json(c)
    check([x["process"] for x in doc["stale"] if x["pid"] == prog.pid] ==
          ["gone"], "stale entries %r" % doc["stale"])
    check(status_files(c, prog.pid) == [], "the stale file is left")


@case
def status_without_xdg_runtime_dir_uses_dev_shm(c):
    """Without a usable XDG_RUNTIME_DIR (unset, or not a directory) a
    process publishes in /dev/shm/secshim-UID (mode 0700, file 0600), where
    `secshim status` finds it."""
    s = c.suite
    shm = "/dev/shm/secshim-%d" % os.geteuid()
    for xdg in (None, c.path("no-such-dir")):
        port = free_port()
        env = c.env(c.policy(server_ep(s, port)))
        env.pop("XDG_RUNTIME_DIR")
        if xdg:
            env["XDG_RUNTIME_DIR"] = xdg
        port_file = c.path("server-%d.port" % port)
        server = c.start("server-%d" % port, [s.app("echo_server"), "-4",
                                              str(port), "--once",
                                              "--port-file", port_file],
                         env=env)
        wait_port_file(server, port_file)
        doc = wait_status(c, "the server listed from /dev/shm", lambda d:
                          process_of(d, server.pid) is not None, xdg=False)
        check(process_of(doc, server.pid)["command"] == "echo_server",
              "listed as %r" % process_of(doc, server.pid))
        mine = [n for n in os.listdir(shm) if n.startswith("%d-" % server.pid)]
        check(len(mine) == 1, "files in %s: %r" % (shm, mine))
        check(os.stat(shm).st_mode & 0o777 == 0o700, "%s is not 0700" % shm)
        check(os.stat(os.path.join(shm, mine[0])).st_mode & 0o777 == 0o600,
              "the file is not 0600")
        check(not os.path.isdir(c.path("secshim")), "published in the case "
              "directory too")
        sock = tls_connect(c, port)
        try:
            echo_round(sock, b"once\n")
        finally:
            tls_close(sock)
        check(server.wait(T_RUN) == 0, "echo_server --once failed")
        check(not [n for n in os.listdir(shm)
                   if n.startswith("%d-" % server.pid)],
              "the file is left in %s" % shm)


@case
def status_usage_and_exit_codes(c):
    """Exit codes: 2 for an unknown option, both formats at once or an
    argument; 1, with a message naming the file, when a file named as a
    live process's is not a status file of this layout (the others are
    still listed); 0 otherwise, also when nothing runs under the shim."""
    for args in (["--bogus"], ["--json", "--prometheus"], ["extra"]):
        rc, out, err = status_run(c, *args)
        check(rc == 2 and "usage: secshim status" in err,
              "%r: exit %d, stderr %r" % (args, rc, err))
    rc, out, err = status_run(c, "--json")
    check(rc == 0, "an empty directory: exit %d (%s)" % (rc, err))
    os.makedirs(c.path("secshim"), mode=0o700, exist_ok=True)
    with open("/proc/self/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    bogus = c.path("secshim/%d-%d" % (os.getpid(), start))
    with open(bogus, "wb") as f:
        f.write(b"\x7fnot a status file" + b"\x01" * 40000)
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port)), port=port)
    rc, out, err = status_run(c, "--json")
    check(rc == 1, "a foreign file: exit %d" % rc)
    check(bogus in err and "not a status file" in err,
          "stderr does not name the file: %r" % err)
    doc = json.loads(out)
    check(process_of(doc, server.pid) is not None, "the server is not listed")
    check(process_of(doc, os.getpid()) is None, "the foreign file is listed")
    check(os.path.exists(bogus), "the file of a live process was removed")


@case
def status_exec_relay_leaves_no_file(c):
    """TLS across exec (test_inetd under the shim: fork, dup2 onto 0 and 1,
    exec): the relay and the short-lived process of its double fork each
    publish as fork children do, and remove their files when they end, so
    once the connection is over only test_inetd's own file is left and
    nothing is stale."""
    s = c.suite
    port = free_port()
    proc, _ = inetd(c, policy=c.policy(server_ep(s, port)), port=port)
    sock = tls_connect(c, port)
    try:
        sock.sendall(b"names please\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        check(reply == b"esaelp seman\n", "the service replied %r" % reply)
        m = re.search(r"through relay process (\d+)", proc.err())
        check(m, "no relay was logged")
        relay = int(m.group(1))
        doc = wait_status(c, "the relay listed with the bytes it carried",
                          lambda d: ep_counts(d, relay) is not None and
                          ep_counts(d, relay)[4:] == (13, 13))
    finally:
        tls_close(sock)
    deadline = time.monotonic() + T_RUN
    while (set(status_files(c)) != set(status_files(c, proc.pid)) and
           time.monotonic() < deadline):
        time.sleep(0.05)
    check(set(status_files(c)) == set(status_files(c, proc.pid)) and
          len(status_files(c, proc.pid)) == 1,
          "files left: %r (test_inetd is %d, the relay %d)"
          % (status_files(c), proc.pid, relay))
    doc = status_json(c)
    check(doc["stale"] == [] or not [x for x in doc["stale"]
                                     if x["pid"] != proc.pid],
          "stale files: %r" % doc["stale"])


@case
def status_documented_textfile_line_works(c):
    """The cron line of docs/operations.md ("Prometheus with
    node_exporter's textfile collector"), run as written with its
    directory moved into the case's: it leaves secshim.prom, complete (it
    parses strictly, with the running server's samples) and no temporary
    file."""
    with open(os.path.join(ROOT, "docs", "operations.md")) as f:
        lines = [l for l in f.read().splitlines()
                 if l.startswith("* * * * * root ")]
    check(len(lines) == 1, "docs/operations.md has %d cron lines"
          % len(lines))
    textfile = "/var/lib/node_exporter/textfile"
    command = lines[0][len("* * * * * root "):]
    check(textfile in command and command.startswith("secshim status "),
          "the cron line changed shape: %r" % command)
    out_dir = c.path("textfile")
    os.makedirs(out_dir)
    command = command.replace(textfile, out_dir).replace(
        "secshim status", os.path.join(c.suite.build, "secshim") + " status",
        1)
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port)), port=port)
    wait_status(c, "the server listed", lambda d:
                process_of(d, server.pid) is not None)
    run = c.run("cron", ["/bin/sh", "-c", command], env=status_env(c))
    check(run.p.returncode == 0, "the cron line failed")
    check(os.listdir(out_dir) == ["secshim.prom"], "files %r"
          % os.listdir(out_dir))
    with open(os.path.join(out_dir, "secshim.prom")) as f:
        m = parse_prometheus(f.read())
    check(prom_value(m, "secshim_connections_open", pid=str(server.pid),
                     endpoint="srv", role="listen") == 0,
          "no sample of the server")
