# Cases for the log an operator reads (docs/operations.md, "Logs"): each
# line's key=value fields parsed from real runs, the environment's level
# and file over the policy's, the rate limit under a flood, certificate
# expiry warnings. Exec'd by test/integration/run in its namespace
# (helpers, @case, check). docs/testing.md lists them.

# One field: key=value, the value bare or double-quoted with \" and \\.
LOG_FIELD = re.compile(r' ([a-z_]+)=("(?:[^"\\]|\\.)*"|[^ "]*)')
LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def log_fields(line):
    """The key=value fields of a shim log line as a dict (values unquoted
    and unescaped); they start at the first " time="."""
    at = line.find(" time=")
    check(at >= 0, "a shim log line without fields: %r" % line)
    out = {}
    for key, value in LOG_FIELD.findall(line[at:]):
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out[key] = value
    return out


def event_lines(text, event):
    """The shim log lines of text whose event field is event."""
    return [l for l in text.splitlines()
            if l.startswith("secshim[") and " event=%s" % event in l
            and log_fields(l).get("event") == event]


def wait_event(proc, event, timeout=T_RUN // 2, stream="err"):
    """Waits (bounded) for a line of event in proc's stderr."""
    deadline = time.monotonic() + timeout
    while True:
        text = proc.err() if stream == "err" else stream()
        lines = event_lines(text, event)
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def check_common(fields, proc, event):
    check(LOG_TIME.match(fields.get("time", "")),
          "time is not RFC 3339 UTC with milliseconds: %r" % fields)
    check(fields.get("pid") == str(proc.pid), "pid %r is not the process's "
          "%d" % (fields.get("pid"), proc.pid))
    check(fields.get("event") == event, "event %r" % fields.get("event"))


def subject_rfc2253(s, name):
    out = subprocess.run(["openssl", "x509", "-in", s.pki(name + ".pem"),
                          "-noout", "-subject", "-nameopt", "RFC2253"],
                         stdout=subprocess.PIPE, timeout=30)
    return out.stdout.decode().strip().split("=", 1)[1]


@case
def logs_established_fields_server(c):
    """A shimmed server and `openssl s_client` with a client certificate:
    the established line's fields say what the handshake was."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port, mutual=True)),
                            port=port)
    _, ok = s_client(c, port, "hello", "hello", cert="client")
    check(ok, "s_client got no echo")
    lines = wait_event(server, "established")
    check(len(lines) == 1, "want one established line, got %d" % len(lines))
    f = log_fields(lines[0])
    check_common(f, server, "established")
    check(f.get("endpoint") == "srv" and f.get("direction") == "accept",
          "endpoint/direction: %r" % f)
    check(re.match(r"^127\.0\.0\.1:\d+$", f.get("peer", "")), "peer %r" % f)
    proto, cipher = established(server, "srv")
    check(f.get("version") == proto == "TLSv1.3", "version %r" % f)
    check(f.get("cipher") == cipher and cipher.startswith("TLS_"),
          "cipher %r" % f)
    check(f.get("resumed") == "no", "resumed %r" % f)
    want = subject_rfc2253(s, "client")
    check(f.get("peer_subject") == want, "peer_subject %r, want %r"
          % (f.get("peer_subject"), want))


@case
def logs_refused_untrusted_client_fields(c):
    """A client certificate of an unknown CA: the refusal names the reason
    (the sentence's words, quoted) and OpenSSL's verify error by name."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port, mutual=True)),
                            port=port)
    _, ok = s_client(c, port, "hello", "hello", cert="unknown-ca")
    check(not ok, "the untrusted client got an echo")
    lines = wait_event(server, "handshake_failed")
    check(len(lines) == 1, "want one refusal, got %d" % len(lines))
    f = log_fields(lines[0])
    check_common(f, server, "handshake_failed")
    check(f.get("endpoint") == "srv" and f.get("direction") == "accept" and
          re.match(r"^127\.0\.0\.1:\d+$", f.get("peer", "")), "%r" % f)
    check(f.get("reason") == failure_reason(lines[0]),
          "reason %r is not the sentence's %r"
          % (f.get("reason"), failure_reason(lines[0])))
    check(f.get("verify_error") in ("X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_"
                                    "LOCALLY",
                                    "X509_V_ERR_UNABLE_TO_VERIFY_LEAF_"
                                    "SIGNATURE"),
          "verify_error %r" % f.get("verify_error"))
    check(re.search(r'reason="[^"]*" ', lines[0]),
          "the reason (with spaces) is not quoted: %s" % lines[0])


@case
def logs_refused_wrong_name_client_fields(c):
    """A shimmed client against a server whose certificate names another
    host: direction connect, verify_error X509_V_ERR_HOSTNAME_MISMATCH."""
    s = c.suite
    _, port = s_server(c, cert="wronghost")
    proc = echo_client(c, port, "--line", "x",
                       policy=c.policy(client_ep(s, port)))
    expect_refused(c, proc, "cli", r"(?i)host ?name|does not match")
    lines = event_lines(proc.err(), "handshake_failed")
    check(len(lines) == 1, "want one refusal, got %d" % len(lines))
    f = log_fields(lines[0])
    check_common(f, proc, "handshake_failed")
    check(f.get("endpoint") == "cli" and f.get("direction") == "connect" and
          f.get("peer") == "localhost:%d" % port, "%r" % f)
    check(f.get("verify_error") == "X509_V_ERR_HOSTNAME_MISMATCH",
          "verify_error %r" % f.get("verify_error"))
    check(f.get("reason") == failure_reason(lines[0]), "reason %r" % f)


def env_with(c, policy, **extra):
    env = c.env(policy)
    env.update(extra)
    return env


@case
def logs_env_level_overrides_policy(c):
    """SECSHIM_LOG_LEVEL wins over the policy's level, both ways; a value
    that is not a level is said once (warning) and ignored."""
    s = c.suite
    _, port = s_server(c)
    pol = c.policy(client_ep(s, port), level="warning")
    argv = [s.app("echo_client"), "localhost", str(port), "--line", "abc"]
    debug = c.run("debug", argv, env_with(c, pol, SECSHIM_LOG_LEVEL="debug"))
    check_reversed(debug, "abc")
    check(re.search(r"secshim\[\d+\]: debug: ", debug.err()),
          "no debug line with SECSHIM_LOG_LEVEL=debug over level warning")
    check(event_lines(debug.err(), "established"), "no established line")
    pol = c.policy(client_ep(s, port), level="info", name="info.cfg")
    quiet = c.run("quiet", argv, env_with(c, pol, SECSHIM_LOG_LEVEL="error"))
    check_reversed(quiet, "abc")
    check("secshim[" not in quiet.err(), "SECSHIM_LOG_LEVEL=error over "
          "level info still logged: %r" % quiet.err())
    bad = c.run("bad", argv, env_with(c, pol, SECSHIM_LOG_LEVEL="loud"))
    check_reversed(bad, "abc")
    lines = event_lines(bad.err(), "env_ignored")
    check(len(lines) == 1 and "warning: SECSHIM_LOG_LEVEL=\"loud\" is not"
          in lines[0], "want one warning for SECSHIM_LOG_LEVEL=loud: %r"
          % lines)
    check(event_lines(bad.err(), "established"),
          "the policy's level (info) did not apply")


@case
def logs_env_file_overrides_policy(c):
    """SECSHIM_LOG_FILE=PATH: the lines go there, not to the policy's
    stderr."""
    s = c.suite
    _, port = s_server(c)
    pol = c.policy(client_ep(s, port))
    path = c.path("env.log")
    argv = [s.app("echo_client"), "localhost", str(port), "--line", "abc"]
    proc = c.run("client", argv, env_with(c, pol, SECSHIM_LOG_FILE=path))
    check_reversed(proc, "abc")
    check("secshim[" not in proc.err(), "lines on stderr: %r" % proc.err())
    with open(path) as f:
        text = f.read()
    check(event_lines(text, "policy_loaded") and
          event_lines(text, "established"), "the file lacks the lines: %r"
          % text)


FLOOD = 200


@case
def logs_flood_is_rate_limited(c):
    """200 refused connections in a few seconds: one line and a count, not
    200; a different reason is still logged at once. The window is
    shortened (SECSHIM_TEST_LOG_WINDOW) so the count shows without a
    minute's wait; the count is checked exactly, whatever the timing."""
    s = c.suite
    window = 8
    port = free_port()
    pol = c.policy(server_ep(s, port), level="warning")
    server = c.start("server", [s.app("echo_server"), "-4", str(port),
                                "--port-file", c.path("server.port")],
                     env_with(c, pol, SECSHIM_TEST_LOG_WINDOW=str(window)))
    wait_port_file(server, c.path("server.port"))
    started = time.monotonic()
    for _ in range(FLOOD):
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=T_RUN) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                sock.recv(100)
            except OSError:
                pass
    flood_s = time.monotonic() - started
    lines = wait_event(server, "handshake_failed")
    check(lines, "no refusal line")
    reason = log_fields(lines[0]).get("reason")
    # A different reason: a ClientHello cut short.
    with socket.create_connection(("127.0.0.1", port), timeout=T_RUN) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    deadline = time.monotonic() + T_RUN // 2
    other = []
    while not other and time.monotonic() < deadline:
        other = [l for l in event_lines(server.err(), "handshake_failed")
                 if log_fields(l).get("reason") != reason]
        time.sleep(0.05)
    check(len(other) == 1, "the other reason was not logged at once")
    # After the window, the next event brings the flood's count.
    time.sleep(window + 1)
    with socket.create_connection(("127.0.0.1", port), timeout=T_RUN) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    wait_event(server, "suppressed")
    text = server.err()
    same = [l for l in event_lines(text, "handshake_failed")
            if log_fields(l).get("reason") == reason]
    summaries = [l for l in event_lines(text, "suppressed")
                 if log_fields(l).get("reason") == reason]
    counted = sum(int(log_fields(l).get("suppressed", "0"))
                  for l in same + summaries)
    c.note("flood: %.1f s, %d lines, %d summaries, %d suppressed"
           % (flood_s, len(same), len(summaries), counted))
    check(len(same) + counted == FLOOD, "%d lines and %d suppressed do not "
          "make the %d refusals" % (len(same), counted, FLOOD))
    check(len(same) <= 1 + int(flood_s // window), "%d lines in %.1f s with "
          "a %d s window" % (len(same), flood_s, window))
    check(summaries and re.search(r"\d+ similar lines? suppressed in the last "
                                  r"\d+ s: ", summaries[-1]),
          "no summary line with the count")


def make_cert(c, name, days):
    """A self-signed certificate and key valid for days, made here."""
    key, pem = c.path(name + ".key"), c.path(name + ".pem")
    out = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", str(days), "-subj",
         "/CN=secshim-" + name, "-addext", "subjectAltName=DNS:localhost",
         "-keyout", key, "-out", pem],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    check(out.returncode == 0, "openssl req failed: %s" % out.stdout)
    return pem, key


@case
def logs_cert_expiring_warned_at_start(c):
    """A listen endpoint whose certificate ends in 10 days: a warning when
    its context is built (at listen), with the days left and the file."""
    s = c.suite
    pem, key = make_cert(c, "expiring", 10)
    port = free_port()
    pol = c.policy(ep("srv", listen="127.0.0.1:%d" % port, certificate=pem,
                      certificate_key=key), level="warning")
    server, _ = echo_server(c, pol, port=port)
    lines = wait_event(server, "cert_expiring")
    check(len(lines) == 1, "want one expiry warning, got %d" % len(lines))
    f = log_fields(lines[0])
    check_common(f, server, "cert_expiring")
    check(" warning: endpoint 'srv': certificate %s expires in " % pem
          in lines[0], "unexpected line: %s" % lines[0])
    check(f.get("days_left") in ("9", "10") and f.get("file") == pem and
          f.get("endpoint") == "srv" and LOG_TIME.match(f.get("not_after")),
          "fields %r" % f)


@case
def logs_cert_expired_is_error(c):
    """A listen endpoint whose certificate has expired: an error line."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(server_ep(s, port, cert="expired"),
                                        level="warning"), port=port)
    lines = wait_event(server, "cert_expired")
    check(len(lines) == 1 and " error: endpoint 'srv': certificate " in
          lines[0] and int(log_fields(lines[0])["days_left"]) < 0,
          "want one error for the expired certificate: %r" % lines)
    check(not event_lines(server.err(), "cert_expiring"), "also a warning")
