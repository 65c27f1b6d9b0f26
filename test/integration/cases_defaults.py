# Cases for "Defaults that pass an external scan" (docs/protocols.md,
# "Defaults and the external scan"): what a shimmed server with the
# default policy (a listen endpoint with its certificate and key, no
# protocol or cipher option) accepts, checked directly with openssl
# s_client and hand-made ClientHellos, fast. test/scan/run is the slow
# check of the same points with testssl.sh. Run by test/integration/run,
# in its namespace.

import struct

# TLS 1.2 suites (IANA numbers) a hand-made ClientHello offers.
SUITE_ECDHE_RSA_AES128_GCM = 0xC02F
SUITE_ECDHE_RSA_AES256_GCM = 0xC030
SUITE_ECDHE_RSA_CHACHA20 = 0xCCA8
COMPRESSION_NULL = 0
COMPRESSION_DEFLATE = 1


def default_server(c):
    """A shimmed echo_server whose endpoint sets nothing but its address,
    certificate and key. Returns (proc, port)."""
    s = c.suite
    port = free_port()
    endpoint = ep("srv", listen="127.0.0.1:%d" % port,
                  certificate=s.pki("server.pem"),
                  certificate_key=s.pki("server.key"))
    return echo_server(c, c.policy(endpoint), port=port)


def s_client_line(c, port, line, *flags, name="s_client"):
    """s_client with extra flags sends line; returns (proc, echoed)."""
    s = c.suite
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
            "-CAfile", s.pki("ca.pem"), "-verify_return_error",
            "-brief"] + list(flags)
    return tls_client(c, argv, line, line, name)


def s_client_suite(proc):
    """The suite s_client -brief reports, or None."""
    m = re.search(r"Ciphersuite: (\S+)", proc.err())
    return m.group(1) if m else None


@case
def defaults_refuse_tls10_and_tls11(c):
    """The default policy's server refuses s_client -tls1 and -tls1_1
    (each at security level 0 on the client, so only the server can
    refuse), logging a protocol reason, and serves TLS 1.2 and 1.3."""
    server, port = default_server(c)
    for flag in ("-tls1", "-tls1_1"):
        proc, ok = s_client_line(c, port, "legacy " + flag, flag, "-cipher",
                                 "DEFAULT@SECLEVEL=0", name="s_client" + flag)
        check(not ok, "s_client %s was served" % flag)
        check(re.search(r"(?i)protocol version|unsupported protocol",
                        proc.err()),
              "s_client %s was not refused for its version" % flag)
    # One line: the shim folds repeats of a reason into a later
    # "similar lines suppressed" line (docs/operations.md, "Logs").
    check(wait_shim_error(server, PROTO_REASON),
          "the shim logged no version refusal")
    for flag, want in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        proc, ok = s_client_line(c, port, "modern " + flag, flag,
                                 name="s_client" + flag)
        check(ok and "Protocol version: %s" % want in proc.err(),
              "s_client %s was not served with %s" % (flag, want))


# TLS 1.2 suites the default refuses: no forward secrecy (RSA key
# transport), CBC with each MAC, or both.
REFUSED_TLS12 = [
    ("AES128-GCM-SHA256", "RSA key transport"),
    ("AES256-GCM-SHA384", "RSA key transport"),
    ("ECDHE-RSA-AES128-SHA256", "CBC"),
    ("ECDHE-RSA-AES256-SHA", "CBC with SHA-1"),
    ("AES128-SHA", "RSA key transport and CBC"),
]


@case
def defaults_refuse_rsa_key_transport_and_cbc(c):
    """TLS 1.2 with a suite OpenSSL's own default offers but the
    endpoint's default does not (RSA key transport, CBC) is refused with
    'no shared cipher'; an ECDHE AEAD suite is served (before the change:
    every one of them was served)."""
    server, port = default_server(c)
    for suite, why in REFUSED_TLS12:
        proc, ok = s_client_line(c, port, "try " + suite, "-tls1_2",
                                 "-cipher", suite, name="s_client-" + suite)
        check(not ok, "TLS 1.2 with %s (%s) was served" % (suite, why))
        check("handshake failure" in proc.err(),
              "s_client with %s got no handshake failure" % suite)
    check(wait_shim_error(server, r"no shared cipher"),
          "the shim did not log 'no shared cipher'")
    proc, ok = s_client_line(c, port, "aead", "-tls1_2", "-cipher",
                             "ECDHE-RSA-AES256-GCM-SHA384")
    check(ok and s_client_suite(proc) == "ECDHE-RSA-AES256-GCM-SHA384",
          "TLS 1.2 with ECDHE-RSA-AES256-GCM-SHA384 was not served")


def server_pick(c, port, version_flag, option, order, name):
    """The suite the server chose for a client offering order."""
    proc, ok = s_client_line(c, port, "order", version_flag, option,
                             ":".join(order), name=name)
    check(ok, "s_client offering %s was not served" % ":".join(order))
    return s_client_suite(proc)


@case
def defaults_server_order_decides(c):
    """A client offering two suites, then the same two in the reverse
    order, gets the server's first both times, in TLS 1.2 and TLS 1.3:
    AES-128-GCM on a CPU with AES instructions, ChaCha20-Poly1305 on one
    without (docs/protocols.md)."""
    server, port = default_server(c)
    aes = cpu_has_aes()
    for flag, option, pair, want in (
            ("-tls1_2", "-cipher",
             ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305"],
             "ECDHE-RSA-AES128-GCM-SHA256" if aes
             else "ECDHE-RSA-CHACHA20-POLY1305"),
            ("-tls1_3", "-ciphersuites",
             ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"],
             "TLS_AES_128_GCM_SHA256" if aes
             else "TLS_CHACHA20_POLY1305_SHA256")):
        got = [server_pick(c, port, flag, option, order,
                           "s_client%s-%d" % (flag, i))
               for i, order in enumerate((pair, pair[::-1]))]
        check(got == [want, want], "%s: the server chose %s for the two "
              "orders, expected %s both times" % (flag, got, want))


@case
def defaults_refuse_client_renegotiation(c):
    """s_client's 'R' command (a client-initiated TLS 1.2
    renegotiation) after a served line: the server answers
    no_renegotiation, the connection ends without echoing the next
    line, the shim logs the failure, and the server still serves."""
    server, port = default_server(c)
    s = c.suite
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
            "-CAfile", s.pki("ca.pem"), "-verify_return_error", "-brief",
            "-tls1_2"]
    proc = c.start("s_client-R", argv, stdin=True)
    try:
        proc.send(b"before\n")
        check(proc.wait_output(r"before", T_RUN // 2),
              "s_client's first line did not come back")
        proc.send(b"R\n")
        check(proc.wait_output(r"RENEGOTIATING", T_RUN // 2, "err"),
              "s_client did not start a renegotiation")
        check(proc.wait_output(r"no renegotiation", T_RUN // 2, "err"),
              "s_client did not receive the server's no_renegotiation")
        try:
            proc.send(b"after\n")
        except BrokenPipeError:
            pass  # it already ended, as it should
    finally:
        proc.close_stdin()
    proc.wait(T_STOP)
    check("after" not in proc.out(), "a line was echoed after the "
          "renegotiation attempt")
    check(wait_shim_error(server, r"handshake failure|renegotiat"),
          "the shim did not log the refused renegotiation")
    _, ok = s_client_line(c, port, "still serving", "-tls1_2",
                          name="s_client-after")
    check(ok, "the server no longer serves after a renegotiation attempt")


def client_hello_tls12(suites, compressions):
    """A TLS 1.2 ClientHello record offering suites (IANA numbers) and
    compression methods, with the extensions an ECDHE-RSA handshake
    needs (groups x25519 and P-256, uncompressed points, RSA-PSS and
    PKCS#1 SHA-256 signatures)."""
    def ext(kind, body):
        return struct.pack("!HH", kind, len(body)) + body
    groups = struct.pack("!HHH", 4, 0x001D, 0x0017)
    sigalgs = struct.pack("!HHH", 4, 0x0804, 0x0401)
    extensions = (ext(0x000A, groups) + ext(0x000B, b"\x01\x00") +
                  ext(0x000D, sigalgs))
    body = (b"\x03\x03" + os.urandom(32) + b"\x00" +
            struct.pack("!H", 2 * len(suites)) +
            b"".join(struct.pack("!H", x) for x in suites) +
            bytes([len(compressions)]) + bytes(compressions) +
            struct.pack("!H", len(extensions)) + extensions)
    handshake = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise Failure("the server closed after %d of %d bytes"
                          % (len(data), n))
        data += chunk
    return data


def server_reply(port, hello):
    """Sends hello to the server, returns ("hello", compression method)
    from its ServerHello or ("alert", (level, description))."""
    with socket.create_connection(("127.0.0.1", port), timeout=T_RUN) as s:
        s.sendall(hello)
        kind, _, length = struct.unpack("!BHH", read_exact(s, 5))
        record = read_exact(s, length)
    if kind == 0x15:
        return "alert", (record[0], record[1])
    check(kind == 0x16 and record[0] == 0x02,
          "the server's first record is neither a ServerHello nor an alert")
    sid_len = record[4 + 2 + 32]
    at = 4 + 2 + 32 + 1 + sid_len + 2
    return "hello", record[at]


@case
def defaults_refuse_compression(c):
    """A hand-made TLS 1.2 ClientHello offering DEFLATE before null gets
    a ServerHello with null compression; one offering DEFLATE alone gets a
    fatal alert (openssl s_client cannot offer compression: Debian's
    OpenSSL has none)."""
    server, port = default_server(c)
    suites = [SUITE_ECDHE_RSA_AES128_GCM, SUITE_ECDHE_RSA_AES256_GCM,
              SUITE_ECDHE_RSA_CHACHA20]
    kind, got = server_reply(port, client_hello_tls12(
        suites, [COMPRESSION_DEFLATE, COMPRESSION_NULL]))
    check(kind == "hello" and got == COMPRESSION_NULL,
          "DEFLATE then null: the server answered %s %r, not a ServerHello "
          "with null compression" % (kind, got))
    kind, got = server_reply(port, client_hello_tls12(
        suites, [COMPRESSION_DEFLATE]))
    check(kind == "alert" and got[0] == 2, "DEFLATE alone: the server "
          "answered %s %r, not a fatal alert" % (kind, got))
    check(server.alive(), "the server died")
