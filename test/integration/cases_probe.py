# Cases for `secshim probe` (docs/probe.md): one connection made as the
# shim would make it, against openssl s_server and peers of the harness's
# own, each failure class with its reason and exit 1, compatibility mode,
# the probe's verdict checked against a shimmed client's, and --serve
# against openssl s_client. Exec'd by test/integration/run in its
# namespace (helpers, @case, check). docs/testing.md lists them.

PROBE_RESULT = re.compile(r"^result: (accepted|refused): (.*)$", re.M)


def secshim_bin(c):
    return os.path.join(c.suite.build, "secshim")


def probe(c, policy, *args, compat=False, name="probe", timeout=T_RUN):
    """Runs `secshim probe -c POLICY ARGS` to its end (bounded)."""
    argv = [secshim_bin(c), "probe", "-c", policy] + list(args)
    return c.run(name, argv, env=c.env(preload=False, compat=compat),
                 timeout=timeout)


def probe_result(proc):
    """("accepted" | "refused", the rest of the line), or None."""
    m = PROBE_RESULT.search(proc.out())
    return (m.group(1), m.group(2)) if m else None


def check_probe_refused(proc, reason, endpoint="cli"):
    """Exit 1 and a result line naming the endpoint and the reason."""
    got = probe_result(proc)
    check(proc.p.returncode == 1, "probe should exit 1, exited %s"
          % proc.p.returncode)
    check(got is not None and got[0] == "refused",
          "probe printed no 'result: refused' line")
    check(got[1].startswith("endpoint '%s': " % endpoint),
          "the result line does not name endpoint '%s'" % endpoint)
    check(re.search(reason, failure_reason(got[1])),
          "the result line does not give the reason /%s/" % reason)


def check_probe_accepted(proc):
    got = probe_result(proc)
    check(proc.p.returncode == 0, "probe should exit 0, exited %s"
          % proc.p.returncode)
    check(got is not None and got[0] == "accepted",
          "probe printed no 'result: accepted' line")


class BannerServer:
    """A plaintext server of the harness's own on 127.0.0.1: each client
    gets BANNER at once (an SMTP-style greeting), then the server reads
    what comes and closes. In a thread; use with `with`."""

    BANNER = b"220 plain.example ESMTP ready\r\n"

    def __init__(self):
        import threading
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(T_RUN)
                try:
                    conn.sendall(self.BANNER)
                    conn.recv(4096)
                except OSError:
                    pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join(timeout=T_STOP)
        self.sock.close()


# ---- probe HOST:PORT --------------------------------------------------------

@case
def probe_success_against_openssl(c):
    """probe localhost:PORT against openssl s_server with the test PKI:
    exit 0, the version and cipher, both certificates of the chain with
    their subjects, issuers, dates and SANs, and "verified"."""
    s = c.suite
    peer, port = s_server(c)
    proc = probe(c, c.policy(client_ep(s, port)), "localhost:%d" % port)
    check_probe_accepted(proc)
    out = proc.out()
    check(re.search(r"^protocol: TLSv1\.3$", out, re.M),
          "no 'protocol: TLSv1.3' line")
    check(re.search(r"^cipher: TLS_\w+$", out, re.M), "no cipher line")
    check(re.search(r"^endpoint: cli \(connect localhost:%d" % port, out,
                    re.M), "the endpoint is not named")
    check(re.search(r"^server name: localhost ", out, re.M),
          "the server name sent and checked is not localhost")
    for subject, issuer in [("secshim-server", "secshim Test Intermediate CA"),
                            ("secshim Test Intermediate CA",
                             "secshim Test Root CA")]:
        check(re.search(r"subject: CN = %s\n\s+issuer: CN = %s\n\s+not "
                        r"before: .*\n\s+not after: .*\n" % (subject, issuer),
                        out), "the chain does not show %s issued by %s with "
              "its dates" % (subject, issuer))
    check("subject alt names: DNS:localhost, IP:127.0.0.1, IP:::1" in out,
          "the leaf's SANs are not shown")
    check(re.search(r"^verification: verified \(chain and name 'localhost'\)",
                    out, re.M), "the verification is not 'verified'")
    check(re.search(r"^policy: .* \(compatibility mode off\)", out, re.M),
          "compatibility mode is not reported off")


@case
def probe_ipv6_address_checked_as_ip(c):
    """probe [::1]:PORT with an address endpoint: no name was resolved, so
    the address is sent and checked as an IP address (the leaf's IP:::1
    SAN), and the peer is named [::1]:PORT as the shim names it."""
    s = c.suite
    port = free_port(socket.AF_INET6)
    argv = ["openssl", "s_server", "-accept", "[::1]:%d" % port,
            "-cert", s.pki("server.pem"), "-key", s.pki("server.key"),
            "-rev"] + s.chain_args("server.pem")
    peer = c.start("peer6", argv)
    check(peer.wait_output(r"ACCEPT", T_START) is not None,
          "openssl s_server did not start listening on ::1")
    proc = probe(c, c.policy(client_ep(s, port, host="[::1]")),
                 "[::1]:%d" % port)
    check_probe_accepted(proc)
    out = proc.out()
    check(re.search(r"^address: ::1 port %d$" % port, out, re.M),
          "the address is not ::1")
    check(re.search(r"^server name: ::1 \(the address", out, re.M),
          "the address was not the name checked")
    check("verification: verified (chain and name '::1')" in out,
          "the IP address was not verified")
    check("a shimmed connection to [::1]:%d would succeed" % port in out,
          "the peer is not named [::1]:PORT")


def probe_refused_case(cert, reason, version=None, verification=True,
                       **opts):
    """probe against s_server presenting cert (pinned to version): exit 1
    with the reason, and with verification the verification line says
    failed with the same reason."""
    def run(c):
        s = c.suite
        peer, port = s_server(c, cert=cert, version=version)
        if "tls_crl" in opts:
            opts["tls_crl"] = s.pki(opts["tls_crl"])
        proc = probe(c, c.policy(client_ep(s, port, **opts)),
                     "localhost:%d" % port)
        check_probe_refused(proc, reason)
        if verification:
            check(re.search(r"^verification: failed: certificate verify "
                            r"failed: .*%s" % reason, proc.out(),
                            re.M | re.I),
                  "the verification line does not say failed and why")
        check(not re.search(r"^protocol: ", proc.out(), re.M),
              "a refused probe reports a negotiated protocol")
    run.__doc__ = "probe against s_server presenting %s.pem: exit 1, %s." % (
        cert, reason)
    return run


case(probe_refused_case("unknown-ca", r"unable to get local issuer"),
     name="probe_refused_untrusted_ca")
case(probe_refused_case("expired", r"certificate has expired"),
     name="probe_refused_expired_certificate")
case(probe_refused_case("wronghost",
                        r"does not match host name 'localhost'"),
     name="probe_refused_wrong_host_name")
case(probe_refused_case("revoked", r"certificate revoked",
                        tls_crl="crl.pem"),
     name="probe_refused_revoked_by_crl")
case(probe_refused_case("server", r"no protocol version in common.*we "
                        r"allow TLSv1\.2 only \(strict\)", version="TLSv13",
                        verification=False, sec_protocol="TLSv12"),
     name="probe_refused_strict_protocol_mismatch")


@case
def probe_refused_connection_refused(c):
    """Nothing listens on the port: exit 1, the TCP connect's reason."""
    port = free_port()
    proc = probe(c, c.policy(client_ep(c.suite, port)), "localhost:%d" % port)
    check_probe_refused(proc, r"Connection refused")
    check("TCP connect to localhost:%d failed" % port in proc.out(),
          "the result does not say the TCP connect failed")


@case
def probe_refused_silent_peer_times_out(c):
    """A peer that accepts TCP and never answers: exit 1 once the
    endpoint's handshake-timeout (1 s) runs out, with the shim's timeout
    sentence; the probe ends within the case's bound."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # the kernel completes TCP; nobody speaks
        port = silent.getsockname()[1]
        pol = c.policy(client_ep(c.suite, port, handshake_timeout=1))
        proc = probe(c, pol, "localhost:%d" % port, timeout=T_RUN // 2)
    finally:
        silent.close()
    check_probe_refused(proc, r"^no complete handshake within 1\.000 s "
                        r"\(handshake-timeout\)$")


@case
def probe_refused_plaintext_server(c):
    """A server that speaks plaintext (a greeting banner): exit 1, the
    peer is not speaking TLS, quoting what it sent."""
    with BannerServer() as banner:
        proc = probe(c, c.policy(client_ep(c.suite, banner.port)),
                     "localhost:%d" % banner.port)
    check_probe_refused(proc, r"the peer is not speaking TLS \(it sent "
                        r"\"220 plain\.exampl")


@case
def probe_compat_key_usage_relaxed_and_reported(c):
    """A server leaf whose keyUsage fits no authentication (ku-noauth):
    without GCTI_SECPACK_COMPAT_MODE exit 1 (purpose); with it =1 exit 0,
    the relaxation named with the certificate's subject, and compatibility
    mode reported on."""
    s = c.suite
    peer, port = s_server(c, cert="ku-noauth")
    pol = c.policy(client_ep(s, port))
    off = probe(c, pol, "localhost:%d" % port, name="probe-off")
    check_probe_refused(off, r"unsuitable certificate purpose")
    check(not re.search(r"^relaxation", off.out(), re.M),
          "a relaxation was reported without compatibility mode")
    on = probe(c, pol, "localhost:%d" % port, compat=True, name="probe-on")
    check_probe_accepted(on)
    check(re.search(r"^relaxation \(compatibility mode\): key usage "
                    r"mismatch: CN = \S+", on.out(), re.M),
          "the key-usage relaxation is not reported with its subject")
    check(re.search(r"^policy: .* \(compatibility mode on\)", on.out(), re.M),
          "compatibility mode is not reported on")


@case
def probe_endpoint_from_matcher_and_e(c):
    """Without -e the endpoint is the matcher's (the first in file order
    that matches, here by address, so the name sent is the one given);
    -e names another; a disabled or missing endpoint, a listen endpoint,
    a bad HOST:PORT and a broken policy exit 2."""
    s = c.suite
    peer, port = s_server(c)
    pol = c.policy(ep("off", connect="127.0.0.2:%d" % port, enabled=False),
                   client_ep(s, port, name="by-addr", host="127.0.0.1"),
                   client_ep(s, port, name="by-name"),
                   server_ep(s, free_port()))
    proc = probe(c, pol, "localhost:%d" % port, name="matched")
    check_probe_accepted(proc)
    check(re.search(r"^endpoint: by-addr ", proc.out(), re.M),
          "the matcher's endpoint (by-addr, first in the file) was not used")
    check(re.search(r"^server name: localhost \(the name resolved",
                    proc.out(), re.M),
          "the name given was not the name sent and checked")
    proc = probe(c, pol, "-e", "by-name", "localhost:%d" % port, name="e")
    check_probe_accepted(proc)
    check(re.search(r"^endpoint: by-name ", proc.out(), re.M),
          "-e did not choose the endpoint")
    for name, args, what in [
            ("disabled", ["127.0.0.2:%d" % port], "leaves that connection "
             "plaintext"),
            ("e-disabled", ["-e", "off", "localhost:%d" % port], "disabled"),
            ("e-missing", ["-e", "nope", "localhost:%d" % port],
             "no endpoint named 'nope'"),
            ("e-listen", ["-e", "srv", "localhost:%d" % port],
             "is a listen endpoint"),
            ("bad-target", ["localhost"], "HOST:PORT expected"),
            ("bad-port", ["localhost:99999"], "HOST:PORT expected")]:
        proc = probe(c, pol, *args, name=name)
        check(proc.p.returncode == 2 and what in proc.err(),
              "%s: expected exit 2 with '%s' on stderr" % (name, what))
    broken = c.write("broken.cfg", "version = 1;\nendpoints = ( { name = "
                     "\"x\"; connect = \"localhost:1\"; bogus = 1; } );\n")
    proc = probe(c, broken, "localhost:1", name="broken")
    check(proc.p.returncode == 2 and
          re.search(r"broken\.cfg:2: endpoint 'x': option 'bogus'",
                    proc.err()),
          "a broken policy should exit 2 naming file, line and option")


# ---- the probe agrees with the shim -----------------------------------------

def probe_vs_shim(c, cert, compat=False, mutual=False, **opts):
    """probe and a shimmed echo_client against the same s_server: both
    succeed, or both fail with the same sentence (the probe's result line
    is the shim's error line)."""
    s = c.suite
    peer, port = s_server(c, cert=cert, mutual=mutual)
    pol = c.policy(client_ep(s, port, **opts))
    proc = probe(c, pol, "localhost:%d" % port, compat=compat)
    client = echo_client(c, port, "--line", "agree", policy=pol,
                         compat=compat)
    shim_ok = client.p.returncode == 4 and "eerga" in client.out()
    check((proc.p.returncode == 0) == shim_ok,
          "probe exited %d but the shimmed client %s" % (
              proc.p.returncode, "succeeded" if shim_ok else "failed"))
    if shim_ok:
        check(established(client, "cli"), "the shimmed client was not TLS")
        return
    got = probe_result(proc)
    lines = [l for l in shim_errors(client) if "'cli'" in l]
    check(got and lines, "no reason from the probe or the shim")
    shim_line = re.sub(r"^secshim\[\d+\]: error: ", "",
                       log_sentence(lines[0]))
    check(got[1] == shim_line, "the probe's reason %r is not the shim's %r"
          % (got[1], shim_line))


@case
def probe_agrees_with_shim_accepted(c):
    """The chain the probe accepts, a shimmed client is served over."""
    probe_vs_shim(c, "server")


@case
def probe_applies_allow_peer(c):
    """allow-peer (docs/policy.md): the probe refuses a server whose
    verified certificate matches none of the endpoint's identities, with
    the shim's own sentence (a shimmed client is refused alike), and
    accepts it when one matches."""
    s = c.suite
    peer, port = s_server(c)
    pol = c.policy(client_ep(s, port, allow_peer=["CN=someone-else"]))
    check_probe_refused(probe(c, pol, "localhost:%d" % port),
                        r"matches allow-peer")
    probe_vs_shim(c, "server", allow_peer=["CN=someone-else"])
    peer, port = s_server(c, name="peer-match")
    pol = c.policy(client_ep(s, port, allow_peer=["CN=secshim-server"]),
                   name="match.cfg")
    check_probe_accepted(probe(c, pol, "localhost:%d" % port,
                               name="probe-match"))


@case
def probe_agrees_with_shim_wrong_host(c):
    """A wrong host name: both refuse, with the same sentence."""
    probe_vs_shim(c, "wronghost")


@case
def probe_agrees_with_shim_key_usage_without_compat(c):
    """ku-noauth without compatibility mode: both refuse, same sentence."""
    probe_vs_shim(c, "ku-noauth")


@case
def probe_agrees_with_shim_key_usage_with_compat(c):
    """ku-noauth with GCTI_SECPACK_COMPAT_MODE=1: both accept."""
    probe_vs_shim(c, "ku-noauth", compat=True)


@case
def probe_agrees_with_shim_client_cert_refused_after_tls13_handshake(c):
    """s_server requires a client certificate and refuses ours (its
    extendedKeyUsage is serverAuth only) after our TLS 1.3 handshake has
    ended: the shimmed client fails at its first read, and the probe,
    which looks for the server's verdict, is refused with the shim's
    "TLS connection ... failed" sentence (accepted without the look)."""
    probe_vs_shim(c, "server", mutual=True, certificate=c.suite.pki(
        "client-no-clientauth.pem"), certificate_key=c.suite.pki(
        "client-no-clientauth.key"), tls_mutual=True)


@case
def probe_agrees_with_shim_client_cert_accepted(c):
    """The same server accepts the test client certificate: both succeed."""
    probe_vs_shim(c, "server", mutual=True, certificate=c.suite.pki(
        "client.pem"), certificate_key=c.suite.pki("client.key"),
        tls_mutual=True)


# ---- probe --serve ----------------------------------------------------------

def serve_probe(c, policy, *args, name="probe-serve"):
    """Starts `secshim probe --serve -c POLICY ARGS` and waits for its
    "listening:" line. Returns (proc, port)."""
    argv = [secshim_bin(c), "probe", "--serve", "-c", policy] + list(args)
    proc = c.start(name, argv, env=c.env(preload=False))
    m = proc.wait_output(r"(?m)^listening: \S+:(\d+)$", T_START)
    check(m is not None, "probe --serve did not report that it listens")
    return proc, int(m.group(1))


def serve_client(c, port, *flags, cert=None, name="s_client"):
    """openssl s_client to the probe's port with flags; ends when the
    probe closes (or is stopped by the case)."""
    s = c.suite
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
            "-CAfile", s.pki("ca.pem"), "-brief"] + list(flags)
    if cert:
        argv += ["-cert", s.pki(cert + ".pem"), "-key", s.pki(cert + ".key")]
        argv += s.chain_args(cert + ".pem")
    return c.start(name, argv, stdin=True)


@case
def probe_serve_reports_tls12_offer(c):
    """--serve against s_client -tls1_2 -cipher ... -servername ... -alpn
    ...: the report names the suite offered, the SNI and the ALPN list,
    the negotiated version and cipher; exit 0."""
    s = c.suite
    pol = c.policy(server_ep(s, free_port()))
    proc, port = serve_probe(c, pol, "-e", "srv", "127.0.0.1:0")
    serve_client(c, port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256",
                 "-servername", "probe.example", "-alpn", "proto-a,proto-b")
    proc.wait(T_RUN)
    check_probe_accepted(proc)
    out = proc.out()
    check(re.search(r"^  cipher suites: ECDHE-RSA-AES128-GCM-SHA256"
                    r"(, TLS_EMPTY_RENEGOTIATION_INFO_SCSV)?$", out, re.M),
          "the offered cipher suites are not exactly the one asked for")
    check(re.search(r"^  server name \(SNI\): probe\.example$", out, re.M),
          "the SNI is not reported")
    check(re.search(r"^  ALPN: proto-a, proto-b$", out, re.M),
          "the ALPN list is not reported")
    check(re.search(r"^  legacy version: TLSv1\.2$", out, re.M),
          "the legacy version is not reported")
    check(re.search(r"^  signature algorithms: .*rsa_pss_rsae_sha256", out,
                    re.M), "the signature algorithms are not reported")
    check(re.search(r"^  groups: .*x25519", out, re.M),
          "the groups are not reported")
    check(re.search(r"negotiated:\n  protocol: TLSv1\.2\n  cipher: "
                    r"ECDHE-RSA-AES128-GCM-SHA256\n", out),
          "the negotiated version and cipher are not reported")
    check(re.search(r"^verification: not requested", out, re.M),
          "without tls-mutual no client certificate is requested")


@case
def probe_serve_reports_tls13_offer(c):
    """--serve against s_client -ciphersuites TLS_CHACHA20_POLY1305_SHA256:
    supported_versions lists TLS 1.3, the one suite is offered and
    negotiated; the listen endpoint is the matcher's (no -e)."""
    s = c.suite
    port = free_port()
    pol = c.policy(server_ep(s, port))
    proc, got = serve_probe(c, pol, "127.0.0.1:%d" % port)
    check(got == port, "probe --serve did not listen on the port asked")
    serve_client(c, port, "-tls1_3", "-ciphersuites",
                 "TLS_CHACHA20_POLY1305_SHA256")
    proc.wait(T_RUN)
    check_probe_accepted(proc)
    out = proc.out()
    check(re.search(r"^endpoint: srv \(listen 127\.0\.0\.1:%d" % port, out,
                    re.M), "the matched listen endpoint is not named")
    check(re.search(r"^  supported versions: TLSv1\.3$", out, re.M),
          "supported_versions is not reported")
    check(re.search(r"^  cipher suites: TLS_CHACHA20_POLY1305_SHA256(, |$)",
                    out, re.M), "the offered TLS 1.3 suite is not reported")
    check(re.search(r"negotiated:\n  protocol: TLSv1\.3\n  cipher: "
                    r"TLS_CHACHA20_POLY1305_SHA256\n", out),
          "the negotiated TLS 1.3 suite is not reported")


@case
def probe_serve_mutual_requires_client_certificate(c):
    """tls-mutual: a client without a certificate is reported refused
    (exit 1, the shim's reason); one with the test client certificate is
    verified, its certificate reported (exit 0)."""
    s = c.suite
    pol = c.policy(server_ep(s, free_port(), mutual=True))
    proc, port = serve_probe(c, pol, "-e", "srv", "127.0.0.1:0",
                             name="probe-nocert")
    serve_client(c, port, name="s_client-nocert")
    proc.wait(T_RUN)
    check_probe_refused(proc, r"sent no client certificate and tls-mutual "
                        r"requires one", endpoint="srv")
    check(re.search(r"^client certificate: none$", proc.out(), re.M),
          "the missing client certificate is not reported")
    proc, port = serve_probe(c, pol, "-e", "srv", "127.0.0.1:0",
                             name="probe-cert")
    serve_client(c, port, cert="client", name="s_client-cert")
    proc.wait(T_RUN)
    check_probe_accepted(proc)
    check(re.search(r"^client certificate 0:\n    subject: CN = "
                    r"secshim-client\n", proc.out(), re.M),
          "the client's certificate is not reported")
    check(re.search(r"^verification: verified", proc.out(), re.M),
          "the client certificate is not reported verified")


@case
def probe_serve_waits_bounded(c):
    """No client: --wait 1 ends the probe with exit 1 and says so."""
    pol = c.policy(server_ep(c.suite, free_port()))
    proc, port = serve_probe(c, pol, "-e", "srv", "--wait", "1",
                             "127.0.0.1:0")
    proc.wait(T_RUN // 2)
    check(proc.p.returncode == 1 and
          "no client connected within 1 s (--wait)" in proc.out(),
          "probe --serve --wait 1 should end with exit 1 and say why")


@case
def probe_serve_usage_errors(c):
    """--serve on an address no enabled listen endpoint serves, -e naming
    a connect endpoint, a bad address, --wait without --serve or out of
    range: exit 2 with the reason, and nothing listens."""
    s = c.suite
    port = free_port()
    pol = c.policy(server_ep(s, port), client_ep(s, free_port()))
    other = free_port()
    for name, args, what in [
            ("unserved", ["--serve", "127.0.0.1:%d" % other],
             "no enabled listen endpoint"),
            ("e-connect", ["--serve", "-e", "cli", "127.0.0.1:0"],
             "is a connect endpoint"),
            ("bad-address", ["--serve", "no.such.address:%d" % port],
             "listens on an address"),
            ("wait-alone", ["--wait", "5", "localhost:%d" % port],
             "--wait is for --serve"),
            ("wait-range", ["--serve", "--wait", "0", "127.0.0.1:%d" % port],
             "--wait takes 1 to 86400 seconds")]:
        proc = probe(c, pol, *args, name=name)
        check(proc.p.returncode == 2 and what in proc.err(),
              "%s: expected exit 2 with '%s' on stderr" % (name, what))
        check("listening:" not in proc.out(), "%s: it listened" % name)
