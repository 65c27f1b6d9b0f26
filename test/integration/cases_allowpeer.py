# Cases for allow-peer (docs/policy.md, "allow-peer"; issue 10, peer
# authorization). Run by test/integration/run, in its namespace: Case,
# check, ep, client_ep, server_ep, echo_server, echo_client, s_server,
# tls_client, ... and, from cases_failclosed.py / cases_resume.py,
# recording_peer, recorded, fc_writer, fc_outcome, www_peer,
# reconnect_argv, peer_verdicts, shim_lines, reload_before.
#
# Every peer here has a chain the endpoint verifies; only its identity
# differs. Besides the PKI's client.pem (CN secshim-client, DNS:localhost,
# IP:127.0.0.1, IP:::1) and server.pem (CN secshim-server, the same SAN),
# the cases sign a leaf of their own with the test intermediate ("alice":
# O, OU, CN, a SPIFFE URI and a DNS name), so an accepted and a refused
# peer are both trusted and differ in nothing but who they are.

ALICE_SUBJECT = "/O=secshim test/OU=payments/CN=alice"
ALICE_SAN = "URI:spiffe://example.org/ns/payments/alice, " \
            "DNS:alice.payments.example.com"
ALICE_URI = "URI:spiffe://example.org/ns/payments/alice"

# The sentence of a refusal, after the shim's "certificate verify failed: ".
REFUSED_RX = r"none of the identities the peer's certificate presents " \
             r"\((?P<presented>.*)\) matches allow-peer"
CLIENT_PRESENTS = "CN=secshim-client, DNS:localhost, IP:127.0.0.1, IP:::1"
SERVER_PRESENTS = "CN=secshim-server, DNS:localhost, IP:127.0.0.1, IP:::1"


def openssl(c, name, *args):
    proc = c.run(name, ["openssl"] + list(args), timeout=T_RUN)
    check(proc.p.returncode == 0, "openssl %s failed" % args[0])


def make_leaf(c, name, subject, san):
    """A leaf of the test intermediate with subject and SAN (an EC key,
    serverAuth and clientAuth): NAME.pem (leaf, then the intermediate: the
    chain a peer sends), NAME.key, and NAME.leaf (the leaf alone) in the
    case's directory. Returns the path without extension."""
    s = c.suite
    base = c.path(name)
    with open(base + ".ext", "w") as f:
        f.write("basicConstraints = critical, CA:FALSE\n"
                "keyUsage = critical, digitalSignature\n"
                "extendedKeyUsage = serverAuth, clientAuth\n"
                "subjectAltName = %s\n" % san)
    openssl(c, "genpkey-" + name, "genpkey", "-algorithm", "EC",
            "-pkeyopt", "ec_paramgen_curve:P-256", "-out", base + ".key")
    openssl(c, "req-" + name, "req", "-new", "-key", base + ".key",
            "-subj", subject, "-out", base + ".csr")
    openssl(c, "x509-" + name, "x509", "-req", "-in", base + ".csr",
            "-CA", s.pki("inter-ca.pem"), "-CAkey", s.pki("inter-ca.key"),
            "-set_serial", "0x" + os.urandom(8).hex(), "-days", "30",
            "-extfile", base + ".ext", "-out", base + ".leaf")
    with open(base + ".pem", "w") as f:
        f.write(read_file(base + ".leaf").decode() +
                read_file(s.pki("inter-ca.pem")).decode())
    return base


def mutual_server_ep(c, port, allow, name="srv"):
    s = c.suite
    return server_ep(s, port, name=name, mutual=True, allow_peer=allow)


def s_client_with(c, port, line, cert_base, name, extra=()):
    """`openssl s_client -brief` presenting cert_base.pem/.key (its chain
    given with -cert_chain) and verifying the shimmed server."""
    s = c.suite
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
            "-CAfile", s.pki("ca.pem"), "-verify_return_error",
            "-verify_hostname", "localhost", "-brief",
            "-cert", cert_base + ".pem", "-key", cert_base + ".key",
            "-cert_chain", s.pki("inter-ca.pem")] + list(extra)
    return tls_client(c, argv, line, line, name)


def refusal_lines(proc, endpoint):
    """The shim's error lines in proc's log that refuse a peer for
    allow-peer on endpoint."""
    return [l for l in shim_errors(proc)
            if "'%s'" % endpoint in l and re.search(REFUSED_RX, l)]


def wait_refusal(proc, endpoint):
    deadline = time.monotonic() + T_RUN // 2
    while not refusal_lines(proc, endpoint) and time.monotonic() < deadline:
        time.sleep(0.02)
    return refusal_lines(proc, endpoint)


def check_one_refusal(proc, endpoint, presented):
    """Exactly one error line for the refused handshake, naming the
    endpoint, the identities presented and allow-peer."""
    lines = wait_refusal(proc, endpoint)
    check(len(lines) == 1, "expected one allow-peer refusal line for '%s', "
          "got %d" % (endpoint, len(lines)))
    m = re.search(REFUSED_RX, log_sentence(lines[0]))
    check(m.group("presented") == presented, "the refusal names %r, "
          "expected %r" % (m.group("presented"), presented))
    others = [l for l in shim_errors(proc) if l != lines[0]]
    check(not others, "more error lines than the refusal: %s" % others)


# ---- listen endpoints: the client certificate --------------------------------

@case
def allowpeer_listen_accepts_matching_client(c):
    """A mutual listen endpoint with allow-peer naming alice's SPIFFE URI
    serves an openssl s_client presenting alice's certificate."""
    alice = make_leaf(c, "alice", ALICE_SUBJECT, ALICE_SAN)
    port = free_port()
    server, _ = echo_server(c, c.policy(mutual_server_ep(
        c, port, ["CN=nobody", ALICE_URI])), port=port)
    _, ok = s_client_with(c, port, "alice here", alice, "s_client-alice")
    check(ok, "s_client with alice's certificate did not get its line back")
    check(wait_established(server, "srv"), "the shim logged no TLS "
          "connection")
    check(not shim_errors(server), "the server logged an error")


@case
def allowpeer_listen_refuses_other_client(c):
    """The same endpoint refuses client.pem, whose chain verifies but
    which is not alice: s_client gets a bad_certificate alert and never its
    line, the shim logs one line naming the endpoint and what the
    certificate presented, and the next (matching) client is served."""
    s = c.suite
    alice = make_leaf(c, "alice", ALICE_SUBJECT, ALICE_SAN)
    port = free_port()
    server, _ = echo_server(c, c.policy(mutual_server_ep(
        c, port, [ALICE_URI, "DNS:*.example.com"])), port=port)
    proc, ok = s_client(c, port, "not alice", "not alice", cert="client")
    check(not ok, "s_client with client.pem got its line back")
    check(re.search(r"(?i)alert bad certificate", proc.err()),
          "s_client did not receive the bad_certificate alert")
    check_one_refusal(server, "srv", CLIENT_PRESENTS)
    check(not established(server, "srv"), "the refused connection was "
          "logged as established")
    _, ok = s_client_with(c, port, "alice after", alice, "s_client-alice")
    check(ok, "the server no longer serves a matching client")


@case
def allowpeer_listen_refuses_other_client_tls12(c):
    """The same refusal in TLS 1.2, where the server verifies the client's
    certificate before its own Finished: s_client's handshake itself
    fails with the alert."""
    port = free_port()
    server, _ = echo_server(c, c.policy(mutual_server_ep(
        c, port, [ALICE_URI])), port=port)
    proc, ok = s_client(c, port, "not alice", "not alice", cert="client",
                        version="TLSv12")
    check(not ok, "s_client with client.pem got its line back")
    check(re.search(r"(?i)alert bad certificate", proc.err()),
          "s_client did not receive the bad_certificate alert")
    check_one_refusal(server, "srv", CLIENT_PRESENTS)


def gnutls_client(c, port, line, cert_base, name):
    """gnutls-cli (an independent TLS stack) presenting cert_base.pem (the
    leaf and its intermediate) and .key, verifying the server."""
    s = c.suite
    argv = ["gnutls-cli", "--x509cafile", s.pki("ca.pem"), "-p", str(port),
            "--x509certfile", cert_base + ".pem",
            "--x509keyfile", cert_base + ".key", "localhost"]
    return tls_client(c, argv, line, line, name)


@case
def allowpeer_listen_gnutls_client(c):
    """gnutls-cli with alice's certificate is served by a listen endpoint
    that allows alice's URI; with client.pem (its chain as trusted) it is
    refused with the bad_certificate alert and the one refusal line."""
    s = c.suite
    alice = make_leaf(c, "alice", ALICE_SUBJECT, ALICE_SAN)
    port = free_port()
    server, _ = echo_server(c, c.policy(mutual_server_ep(
        c, port, [ALICE_URI])), port=port)
    _, ok = gnutls_client(c, port, "gnutls alice", alice, "gnutls-alice")
    check(ok, "gnutls-cli with alice's certificate did not get its line "
          "back")
    proc, ok = gnutls_client(c, port, "gnutls other",
                             s.pki("client.pem")[:-len(".pem")],
                             "gnutls-other")
    check(not ok, "gnutls-cli with client.pem got its line back")
    check(re.search(r"(?i)certificate is bad|bad certificate",
                    proc.out() + proc.err()),
          "gnutls-cli did not report the bad_certificate alert")
    check_one_refusal(server, "srv", CLIENT_PRESENTS)


@case
def allowpeer_listen_subject_forms(c):
    """CN=, OU= and O= match the subject's attributes exactly: alice is
    served for each, and refused for a value that differs only in case
    (attributes compare exactly; only DNS names ignore case)."""
    alice = make_leaf(c, "alice", ALICE_SUBJECT, ALICE_SAN)
    for n, (allow, served) in enumerate([
            ("CN=alice", True), ("OU=payments", True),
            ("O=secshim test", True),
            ("DNS:ALICE.Payments.example.COM", True),
            ("DNS:*.payments.example.com", True),
            ("DNS:*.example.com", False), ("OU=Payments", False)]):
        port = free_port()
        server, _ = echo_server(c, c.policy(mutual_server_ep(c, port,
                                                             [allow]),
                                            name="p%d.cfg" % n),
                                port=port, name="server-%d" % n)
        _, ok = s_client_with(c, port, "line %d" % n, alice,
                              "s_client-%d" % n)
        check(ok == served, "allow-peer %s: alice %s" % (
            allow, "refused" if served else "served"))
        if not served:
            check(wait_refusal(server, "srv"), "allow-peer %s: no refusal "
                  "line" % allow)
        server.stop()


@case
def allowpeer_listen_needs_mutual(c):
    """allow-peer on a listen endpoint without tls-mutual stops the process
    before main, naming file, line and option and saying what to set."""
    s = c.suite
    pol = c.policy(server_ep(s, free_port(), allow_peer=["CN=alice"]))
    expect_policy_error(c, pol, r"allow-peer", "allow-peer")
    check("set tls-mutual = true" in c.procs[-1].err(),
          "the message does not say which option to set")


@case
def allowpeer_malformed_entry_is_policy_error(c):
    """A malformed allow-peer entry stops the process before main, with
    file:line, the option and the entry (one case per kind of mistake)."""
    s = c.suite
    for n, (entry, words) in enumerate([
            ("SAN=alice", "unknown form"),
            ("CN=", "empty"),
            ("IP:300.1.1.1", "not an IPv4 or IPv6 address"),
            ("DNS:a.*.example.com", "left-most label")]):
        pol = c.policy(client_ep(s, free_port(), allow_peer=[entry]),
                       name="bad%d.cfg" % n)
        expect_policy_error(c, pol, r"allow-peer", "allow-peer")
        err = c.procs[-1].err()
        check("element 1: '%s'" % entry in err and words in err,
              "%s: the message does not say %r" % (entry, words))
    pol = c.policy(client_ep(s, free_port(), allow_peer=[]),
                   name="empty.cfg")
    expect_policy_error(c, pol, r"allow-peer", "allow-peer")
    check("at least one identity" in c.procs[-1].err(), "an empty list is "
          "not refused as such")


# ---- connect endpoints: the server certificate -------------------------------

@case
def allowpeer_connect_accepts_matching_server(c):
    """A shimmed client whose connect endpoint allows CN=secshim-server
    (among entries that do not match) reaches openssl s_server."""
    s = c.suite
    peer, port = s_server(c)
    pol = c.policy(client_ep(s, port, allow_peer=[
        "DNS:*.example.com", "CN=secshim-server", "IP:10.0.0.1"]))
    proc = echo_client(c, port, "--line", "allowed", policy=pol)
    check_reversed(proc, "allowed")
    check(established(proc, "cli"), "the shim logged no TLS connection")


@case
def allowpeer_connect_ip_forms(c):
    """IP: entries compare addresses: 127.0.0.1, ::1 and its long form
    0:0:0:0:0:0:0:1 match server.pem's IP SANs; 127.0.0.2 does not."""
    s = c.suite
    peer, port = s_server(c)
    for n, (allow, served) in enumerate([
            ("IP:127.0.0.1", True), ("IP:0:0:0:0:0:0:0:1", True),
            ("IP:127.0.0.2", False)]):
        pol = c.policy(client_ep(s, port, allow_peer=[allow]),
                       name="ip%d.cfg" % n)
        proc = echo_client(c, port, "--line", "ip%d" % n, policy=pol,
                           name="client-%d" % n)
        if served:
            check_reversed(proc, "ip%d" % n)
        else:
            expect_refused(c, proc, "cli", REFUSED_RX)


@case
def allowpeer_connect_refuses_server_nothing_sent(c):
    """A connect endpoint whose allow-peer the server's certificate does
    not match: blocking connect() fails with EPROTO (as for any refused
    certificate), a Fast Open send that hands the shim data with the
    connect fails, the recording peer decrypts nothing and its raw
    recording holds no secret; one log line names what the server
    presented."""
    s = c.suite
    peer, port, prefix = recording_peer(c)
    pol = c.policy(client_ep(s, port, allow_peer=["CN=other-server"]))
    proc = echo_client(c, port, "--line", "never", policy=pol)
    expect_refused(c, proc, "cli", REFUSED_RX)
    check_one_refusal(proc, "cli", SERVER_PRESENTS)
    secret = "SECSHIM-SECRET-%s" % os.urandom(8).hex()
    fc = fc_writer(c, port, "fastopen", secret, pol)
    check(fc_outcome(fc, "fastopen") == "failed", "the Fast Open send did "
          "not fail")
    raw, plain = recorded(c, peer, prefix, conns=2)
    check(raw, "nothing reached the peer (no handshake at all)")
    check(secret.encode() not in raw and b"never" not in raw,
          "program data is on the wire in clear")
    check(plain == b"", "the peer decrypted program data: %r" % plain[:64])


@case
def allowpeer_compat_mode_does_not_relax(c):
    """GCTI_SECPACK_COMPAT_MODE=1 relaxes the ku-noauth leaf's key usage
    but not allow-peer: refused when the entry does not match, accepted
    (with the relaxation) when it does, so the refusal is allow-peer's."""
    s = c.suite
    peer, port = s_server(c, cert="ku-noauth")
    pol = c.policy(client_ep(s, port, allow_peer=["CN=secshim-server"]),
                   name="other.cfg")
    proc = echo_client(c, port, "--line", "compat", policy=pol, compat=True)
    expect_refused(c, proc, "cli", REFUSED_RX)
    check("compatibility mode on" in proc.err() or
          re.search(r"(?i)warning:.*compat", proc.err()),
          "compatibility mode was not on")
    pol = c.policy(client_ep(s, port, allow_peer=["CN=secshim-ku-noauth"]),
                   name="match.cfg")
    proc = echo_client(c, port, "--line", "compat", policy=pol, compat=True,
                       name="client-match")
    check_reversed(proc, "compat")
    check(re.search(r"established: .*compatibility mode relaxed",
                    proc.err()), "the accepted connection did not use the "
          "relaxation")


@case
def allowpeer_shim_pair_refused_by_server(c):
    """Both ends shimmed: the server's allow-peer refuses the shimmed
    client's certificate; the client's first I/O fails and the server's
    log has the one refusal line."""
    s = c.suite
    port = free_port()
    server, _ = echo_server(c, c.policy(mutual_server_ep(
        c, port, ["CN=someone-else"]), name="server.cfg"), port=port)
    pol = c.policy(client_ep(s, port, cert="client"), name="client.cfg")
    proc = echo_client(c, port, "--line", "refused", policy=pol)
    check(proc.p.returncode != 0 and "refused" not in proc.out(),
          "the refused client got its line back")
    check_one_refusal(server, "srv", CLIENT_PRESENTS)


# ---- secshim verify ------------------------------------------------------------

@case
def allowpeer_cli_verify(c):
    """`secshim verify --allow-peer`: 0 and OK when an entry matches, 1 and
    the refusal when none does (after the chain verified), 2 for a
    malformed entry; -e applies the endpoint's allow-peer and --allow-peer
    replaces it."""
    s = c.suite
    base = ["verify", "--trusted", s.pki("ca.pem"), "--purpose", "client"]
    ok = secshim_cmd(c, "ok", *base, "--allow-peer", "CN=nobody",
                     "--allow-peer", "DNS:localhost", s.pki("client.pem"))
    check(ok.p.returncode == 0 and re.search(r"^OK$", ok.out(), re.M),
          "a matching --allow-peer was refused")
    no = secshim_cmd(c, "no", *base, "--allow-peer", "CN=nobody",
                     s.pki("client.pem"))
    check(no.p.returncode == 1 and re.search(r"^FAIL: " + REFUSED_RX,
                                             no.out(), re.M),
          "a non-matching --allow-peer was not refused with the reason")
    check(CLIENT_PRESENTS in no.out(), "the refusal does not list what the "
          "certificate presents")
    chain = secshim_cmd(c, "chain", *base, "--allow-peer", "CN=secshim-server",
                        s.pki("expired.pem"))
    check(chain.p.returncode == 1 and "expired" in chain.out(),
          "the chain's failure is not reported first")
    bad = secshim_cmd(c, "bad", *base, "--allow-peer", "IP:999.1.1.1",
                      s.pki("client.pem"))
    check(bad.p.returncode == 2 and "--allow-peer 'IP:999.1.1.1'" in
          bad.err() and bad.out() == "", "a malformed --allow-peer is not a "
          "usage error (exit 2, stderr only)")
    pol = c.policy(client_ep(s, 7443, allow_peer=["CN=other-server"]))
    ep_no = secshim_cmd(c, "endpoint", "verify", "-c", pol, "-e", "cli",
                        s.pki("server.pem"))
    check(ep_no.p.returncode == 1 and re.search(REFUSED_RX, ep_no.out()),
          "-e did not apply the endpoint's allow-peer")
    ep_ok = secshim_cmd(c, "override", "verify", "-c", pol, "-e", "cli",
                        "--allow-peer", "CN=secshim-server",
                        s.pki("server.pem"))
    check(ep_ok.p.returncode == 0, "--allow-peer did not replace the "
          "endpoint's allow-peer")


@case
def allowpeer_cli_verify_compat_does_not_relax(c):
    """`secshim verify --compat`: the ku-noauth leaf's key usage is
    relaxed, allow-peer is not."""
    s = c.suite
    args = ["verify", "--trusted", s.pki("ca.pem"), "--host", "localhost",
            "--allow-peer", "CN=secshim-server", s.pki("ku-noauth.pem")]
    proc = secshim_cmd(c, "compat", *args, "--compat")
    check(proc.p.returncode == 1 and "key usage mismatch" in proc.out() and
          re.search(REFUSED_RX, proc.out()), "compat mode relaxed "
          "allow-peer, or did not relax the key usage")


# ---- resumption across a reload -------------------------------------------------

@case
def allowpeer_reload_narrowed_refuses_resumed_server(c):
    """A shimmed client resumes its session with s_server (allow-peer
    matches); a reload narrows allow-peer to exclude the server: the next
    connection is a full handshake, and refused, instead of resuming the
    session accepted under the old list."""
    s = c.suite
    peer, port = www_peer(c)
    wide = ["CN=secshim-server", "DNS:other.example"]
    pol = c.policy(client_ep(s, port, allow_peer=wide))
    proc = c.start("client", reconnect_argv(c, port, "--count", "3",
                                            "--step"), c.env(pol),
                   stdin=True)
    for n, change in enumerate([lambda: None, lambda: c.policy(
            client_ep(s, port, allow_peer=["DNS:other.example"]))], 1):
        check(proc.wait_output(r"=== ready %d\n" % (n + 1), T_RUN),
              "reconnect_client did not finish connection %d" % n)
        change()
        # Not a timing assertion: the reload check looks at most once a
        # second (as in cases_resume.py's stepped_client).
        time.sleep(1.2)
        proc.send(b"go\n")
    proc.close_stdin()
    check(proc.wait(T_RUN) == 1, "reconnect_client did not report the "
          "third connection failed")
    check(reload_before(proc, 3), "the shim did not reload before the "
          "third connection")
    got = peer_verdicts(proc)
    check(got.get(1) == "New" and got.get(2) == "Reused",
          "the first two connections were not New, then Reused: %s" % got)
    check(got.get(3) is None and re.search(r"=== end 3: failed: ",
                                           proc.out()),
          "the third connection was not refused: %s" % got)
    check_one_refusal(proc, "cli", SERVER_PRESENTS)


@case
def allowpeer_reload_narrowed_refuses_resumed_client(c):
    """The listen side: s_client resumes with the shimmed server's ticket
    while allow-peer admits client.pem; a reload narrows allow-peer to
    alice alone, and the same ticket no longer resumes: the full handshake
    refuses client.pem."""
    s = c.suite
    port = free_port()
    pol = c.policy(mutual_server_ep(c, port, ["CN=secshim-client",
                                              ALICE_URI]))
    server, _ = echo_server(c, pol, port=port)
    sess = c.path("session.pem")

    def client(n, out):
        argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                "-CAfile", s.pki("ca.pem"), "-verify_return_error",
                "-verify_hostname", "localhost",
                "-cert", s.pki("client.pem"), "-key", s.pki("client.key"),
                "-sess_out" if out else "-sess_in", sess] + \
            s.chain_args("client.pem")
        proc, ok = tls_client(c, argv, "line %d" % n, "line %d" % n,
                              "s_client-%d" % n)
        m = re.search(r"^(New|Reused), TLSv", proc.out(), re.M)
        return ok, m.group(1) if m else None
    check(client(1, True) == (True, "New"), "the first connection failed")
    check(client(2, False) == (True, "Reused"), "the second connection did "
          "not resume (the case needs resumption to mean anything)")
    c.policy(mutual_server_ep(c, port, [ALICE_URI]))
    time.sleep(1.2)  # the reload check looks at most once a second
    ok, verdict = client(3, False)
    check(not ok and verdict != "Reused", "the narrowed allow-peer let the "
          "resumed client in (%s)" % verdict)
    check(re.search(r"policy \S+ reloaded", server.err()), "the server did "
          "not reload")
    check_one_refusal(server, "srv", CLIENT_PRESENTS)
