# Cases for the RFC 5280 profile (docs/verification.md, "The RFC 5280
# profile (x509-strict)"; issue 11). Run by test/integration/run, in its
# namespace: Case, check, client_ep, echo_client, expect_refused, ... and,
# from cases_failclosed.py, recorded, fc_writer, fc_outcome.
#
# The legacy chain: an intermediate CA signed by the test root that has
# no subjectKeyIdentifier (RFC 5280 4.2.1.2 requires one in every CA
# certificate), and a server leaf it issued, otherwise correct (its
# authorityKeyIdentifier carries the SHA-1 of the intermediate's key, as a
# CA that computes key identifiers writes it). OpenSSL's lax mode accepts
# the chain; the profile, on by default, refuses it.

LEGACY_CA_CN = "secshim Legacy Intermediate CA"
# The sentence after the shim's "certificate verify failed: ".
LEGACY_RX = (r"intermediate CA 'CN = secshim Legacy Intermediate CA' has no "
             r"subjectKeyIdentifier \(RFC 5280 4\.2\.1\.2\); set x509-strict "
             r"= false to accept a legacy chain")


def spki_key_id(c, key_path):
    """The SHA-1 of the public key's bits (RFC 5280 4.2.1.2, method 1) of
    a P-256 key: its SubjectPublicKeyInfo ends with the 65-byte point."""
    der = c.path("spki.der")
    proc = c.run("pkey-pub", ["openssl", "pkey", "-in", key_path, "-pubout",
                              "-outform", "DER", "-out", der], timeout=T_RUN)
    check(proc.p.returncode == 0, "openssl pkey -pubout failed")
    data = read_file(der)
    check(len(data) == 91 and data[-65] == 4, "not an uncompressed P-256 "
          "key (%d bytes)" % len(data))
    return hashlib.sha1(data[-65:]).hexdigest()


def legacy_chain(c):
    """Makes the legacy intermediate and its server leaf in the case's
    directory; returns (chain file: leaf then intermediate, leaf key,
    intermediate file)."""
    s = c.suite

    def openssl(name, *args):
        proc = c.run(name, ["openssl"] + list(args), timeout=T_RUN)
        check(proc.p.returncode == 0, "openssl %s failed" % args[0])

    ca, leaf = c.path("legacy-ca"), c.path("legacy-leaf")
    for base in (ca, leaf):
        openssl("genpkey-" + os.path.basename(base), "genpkey", "-algorithm",
                "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", base + ".key")
    with open(ca + ".ext", "w") as f:
        f.write("basicConstraints = critical, CA:TRUE\n"
                "keyUsage = critical, keyCertSign, cRLSign\n"
                "authorityKeyIdentifier = keyid:always\n"
                # openssl x509 -req adds one unless told not to
                "subjectKeyIdentifier = none\n")
    openssl("req-ca", "req", "-new", "-key", ca + ".key", "-subj",
            "/CN=" + LEGACY_CA_CN, "-out", ca + ".csr")
    openssl("x509-ca", "x509", "-req", "-in", ca + ".csr",
            "-CA", s.pki("root-ca.pem"), "-CAkey", s.pki("root-ca.key"),
            "-set_serial", "0x5" + os.urandom(8).hex(), "-days", "30",
            "-extfile", ca + ".ext", "-out", ca + ".pem")
    proc = c.run("ca-skid", ["openssl", "x509", "-in", ca + ".pem", "-noout",
                             "-ext", "subjectKeyIdentifier"], timeout=T_RUN)
    check("Subject Key Identifier" not in proc.out(), "the legacy CA has a "
          "subjectKeyIdentifier after all: the case would prove nothing")
    # AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier (20 bytes) }
    akid = "3016" + "8014" + spki_key_id(c, ca + ".key")
    with open(leaf + ".ext", "w") as f:
        f.write("basicConstraints = critical, CA:FALSE\n"
                "keyUsage = critical, digitalSignature\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectKeyIdentifier = hash\n"
                "authorityKeyIdentifier = DER:%s\n"
                "subjectAltName = DNS:localhost, IP:127.0.0.1\n" % akid)
    openssl("req-leaf", "req", "-new", "-key", leaf + ".key", "-subj",
            "/CN=secshim-legacy-server", "-out", leaf + ".csr")
    openssl("x509-leaf", "x509", "-req", "-in", leaf + ".csr",
            "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-set_serial", "0x5" + os.urandom(8).hex(), "-days", "30",
            "-extfile", leaf + ".ext", "-out", leaf + ".crt")
    chain = leaf + ".pem"
    with open(chain, "w") as f:
        f.write(read_file(leaf + ".crt").decode() +
                read_file(ca + ".pem").decode())
    return chain, leaf + ".key", ca + ".pem"


def legacy_recording_peer(c, chain, key, name="recorder"):
    """recording_peer.py (cases_failclosed.py) presenting the legacy
    chain; returns (proc, port, recording prefix)."""
    port_file, prefix = c.path(name + ".port"), c.path(name)
    argv = [sys.executable, os.path.join(ROOT, "test", "integration",
                                         "recording_peer.py"),
            port_file, chain, key, prefix, str(FC_BOUND)]
    proc = c.start(name, argv)
    return proc, wait_port_file(proc, port_file), prefix


@case
def strict_connect_refuses_legacy_chain_nothing_sent(c):
    """A server whose intermediate CA has no subjectKeyIdentifier: the
    shimmed client (x509-strict by default) fails connect() with EPROTO,
    one error line gives the reason a PKI owner can act on (the CA, the
    rule, the RFC section, the option), a Fast Open send that hands the
    shim data with the connect fails, and the recording peer received a
    handshake but no program data, in clear or decrypted. `secshim verify
    -e` says the same sentence for the same endpoint."""
    s = c.suite
    chain, key, _ = legacy_chain(c)
    peer, port, prefix = legacy_recording_peer(c, chain, key)
    pol = c.policy(client_ep(s, port))
    secret = "SECSHIM-SECRET-%s" % os.urandom(8).hex()
    proc = echo_client(c, port, "--line", secret, policy=pol)
    expect_refused(c, proc, "cli", LEGACY_RX)
    lines = [l for l in shim_errors(proc) if re.search(LEGACY_RX, l)]
    check(len(lines) == 1, "expected one line with the reason, got %d"
          % len(lines))
    fc = fc_writer(c, port, "fastopen", secret, pol)
    check(fc_outcome(fc, "fastopen") == "failed", "the Fast Open send did "
          "not fail")
    raw, plain = recorded(c, peer, prefix, conns=2)
    check(raw, "nothing reached the peer (no handshake at all)")
    check(secret.encode() not in raw, "program data is on the wire in "
          "clear")
    check(plain == b"", "the peer decrypted program data: %r" % plain[:64])
    verify = secshim_cmd(c, "verify", "verify", "-c", pol, "-e", "cli",
                         chain)
    check(verify.p.returncode == 1 and
          re.search(r"^FAIL: " + LEGACY_RX, verify.out(), re.M),
          "secshim verify -e cli does not refuse the chain with the same "
          "reason")
    lax = secshim_cmd(c, "verify-lax", "verify", "-c", pol, "-e", "cli",
                      "--no-x509-strict", chain)
    check(lax.p.returncode == 0 and "OK" in lax.out(), "secshim verify "
          "--no-x509-strict does not accept the legacy chain")


@case
def strict_off_accepts_legacy_chain_with_warning(c):
    """The same server with x509-strict = false on the endpoint: the
    client's line reaches the peer (decrypted there) and comes back, and
    the shim logs one warning naming the policy file, the option's line
    and the option; compatibility mode alone (x509-strict left on) does
    not accept the chain."""
    s = c.suite
    chain, key, _ = legacy_chain(c)
    peer, port, prefix = legacy_recording_peer(c, chain, key)
    pol = c.policy(client_ep(s, port, x509_strict=False), name="lax.cfg")
    proc = echo_client(c, port, "--line", "legacy ok", policy=pol)
    check(proc.p.returncode == 0 and "legacy ok" in proc.out(),
          "echo_client did not get its line back through the lax endpoint")
    check(established(proc, "cli"), "the shim logged no TLS connection")
    line_no = next(n for n, text in enumerate(read_file(pol).decode()
                                              .splitlines(), 1)
                   if "x509-strict" in text)
    warn = [l for l in proc.err().splitlines()
            if re.match(r"secshim\[\d+\]: (?i:warning):", l) and
            "x509-strict" in l]
    check(len(warn) == 1, "expected one x509-strict warning, got %d" %
          len(warn))
    check("%s:%d: endpoint 'cli': option 'x509-strict': the RFC 5280 "
          "profile is off" % (pol, line_no) in warn[0],
          "the warning does not name file:line and option: %s" % warn[0])
    check_cmd = secshim_cmd(c, "check", "check", "-c", pol)
    check(check_cmd.p.returncode == 0 and
          re.search(r"^cli: .* x509-strict=no security-level=2 fips140=no$",
                    check_cmd.out(), re.M) and
          "option 'x509-strict': the RFC 5280 profile is off" in
          check_cmd.err(), "secshim check does not show x509-strict=no "
          "with its warning")
    strict = c.policy(client_ep(s, port), name="strict.cfg")
    proc = echo_client(c, port, "--line", "compat", policy=strict,
                       compat=True, name="client-compat")
    expect_refused(c, proc, "cli", LEGACY_RX)
    raw, plain = recorded(c, peer, prefix, conns=2)
    check(plain == b"legacy ok\n" or plain == b"legacy ok",
          "the peer decrypted %r, expected only the lax client's line"
          % plain[:64])


RSA1024_RX = (r"the key of the server certificate 'CN = secshim-rsa1024' is "
              r"RSA 1024 bits, below security level 2 \(at least 2048 "
              r"bits\)")


@case
def strict_level_same_in_handshake_and_verify(c):
    """A server leaf of the test intermediate with an RSA 1024 key (served
    by openssl s_server at level 0): a default connect endpoint (level 2)
    refuses it with the sentence naming the key and the level, and one
    whose cipher-list says @SECLEVEL=1 accepts it; `secshim verify -e`
    decides the same for each endpoint, its level taken from the
    endpoint's context as the handshake's is."""
    s = c.suite
    base = c.path("rsa1024")

    def openssl(name, *args):
        proc = c.run(name, ["openssl"] + list(args), timeout=T_RUN)
        check(proc.p.returncode == 0, "openssl %s failed" % args[0])
    openssl("genpkey", "genpkey", "-algorithm", "RSA", "-pkeyopt",
            "rsa_keygen_bits:1024", "-out", base + ".key")
    with open(base + ".ext", "w") as f:
        f.write("basicConstraints = critical, CA:FALSE\n"
                "keyUsage = critical, digitalSignature, keyEncipherment\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectKeyIdentifier = hash\n"
                "authorityKeyIdentifier = keyid:always\n"
                "subjectAltName = DNS:localhost, IP:127.0.0.1\n")
    openssl("req", "req", "-new", "-key", base + ".key", "-subj",
            "/CN=secshim-rsa1024", "-out", base + ".csr")
    openssl("x509", "x509", "-req", "-in", base + ".csr",
            "-CA", s.pki("inter-ca.pem"), "-CAkey", s.pki("inter-ca.key"),
            "-set_serial", "0x5" + os.urandom(8).hex(), "-days", "30",
            "-extfile", base + ".ext", "-out", base + ".crt")
    with open(base + ".pem", "w") as f:
        f.write(read_file(base + ".crt").decode() +
                read_file(s.pki("inter-ca.pem")).decode())
    port = free_port()
    peer = c.start("peer", ["openssl", "s_server", "-accept",
                            "127.0.0.1:%d" % port, "-cipher",
                            "DEFAULT:@SECLEVEL=0", "-cert", base + ".crt",
                            "-key", base + ".key", "-cert_chain",
                            s.pki("inter-ca.pem"), "-rev"])
    check(peer.wait_output(r"ACCEPT", T_START) is not None,
          "openssl s_server did not start listening")
    strict = c.policy(client_ep(s, port), name="level2.cfg")
    proc = echo_client(c, port, "--line", "level two", policy=strict)
    expect_refused(c, proc, "cli", RSA1024_RX)
    lax = c.policy(client_ep(s, port, cipher_list="DEFAULT:@SECLEVEL=1"),
                   name="level1.cfg")
    proc = echo_client(c, port, "--line", "level one", policy=lax,
                       name="client-level1")
    check_reversed(proc, "level one")
    for pol, ok in ((strict, False), (lax, True)):
        verify = secshim_cmd(c, "verify-" + os.path.basename(pol), "verify",
                             "-c", pol, "-e", "cli", base + ".pem")
        if ok:
            check(verify.p.returncode == 0 and "OK" in verify.out(),
                  "secshim verify refuses what the level-1 endpoint's "
                  "handshake accepts")
        else:
            check(verify.p.returncode == 1 and
                  re.search(r"^FAIL: " + RSA1024_RX, verify.out(), re.M),
                  "secshim verify does not refuse what the default "
                  "endpoint's handshake refuses, with the same reason")
    # Without an endpoint: a new context's level, or --security-level.
    base_args = ["verify", "--trusted", s.pki("ca.pem"), "--host",
                 "localhost"]
    plain = secshim_cmd(c, "verify-default", *(base_args + [base + ".pem"]))
    check(plain.p.returncode == 1 and re.search(RSA1024_RX, plain.out()),
          "secshim verify without -e does not hold the key to level 2")
    one = secshim_cmd(c, "verify-level1", *(base_args + [
        "--security-level", "1", base + ".pem"]))
    check(one.p.returncode == 0, "--security-level 1 does not accept it")
    bad = secshim_cmd(c, "verify-level9", *(base_args + [
        "--security-level", "9", base + ".pem"]))
    check(bad.p.returncode == 2 and "--security-level is 0, 1, 2, 3, 4 or "
          "5" in bad.err(), "--security-level 9 is not a usage error")
