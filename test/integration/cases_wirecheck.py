# The wire check's own cases (docs/testing.md, "The wire check"): the
# check every case runs under must fail on plaintext, pass real TLS, and
# never pass a capture that lost segments. Run by test/integration/run,
# which execs this file in its namespace (its helpers: case, check, ...).
# Each case uses a capture of its own, on ports no policy names, so the
# harness's capture of the case has nothing to judge.


def both_ends(port):
    """Policies under which both ends of 127.0.0.1:port are shimmed."""
    return [wire_capture.Policy(
        'endpoints = ( { listen = "127.0.0.1:%d"; },\n'
        '  { connect = "localhost:%d"; } );' % (port, port))]


def own_capture(port):
    cap = wire_capture.Capture()
    cap.add_ports({port})
    return cap


@case
def wire_check_fails_plaintext_both_ways(c):
    """Plain echo_server and two plain echo_clients on a port judged as if
    both ends were shimmed (listen and connect): each direction of each
    connection fails as not TLS; with the client's direction exempted only
    the server's fail; exempted from a mark between the two clients, the
    first client's direction fails and the second's does not."""
    port = free_port()
    cap = own_capture(port)
    try:
        server, _ = echo_server(c, preload=False, port=port)
        for n in (1, 2):
            proc = echo_client(c, port, "--line", "wire-check-plain-line",
                               host="127.0.0.1", preload=False,
                               name="client%d" % n)
            check(proc.p.returncode == 0, "the plaintext echo failed")
            if n == 1:
                marker = cap.mark()
        server.stop()
    finally:
        streams, drops = cap.stop()
    judged = []
    for exempt in ({}, {("client", port): ("test", None)},
                   {("client", port): ("test", marker)}):
        v = wire_capture.judge(streams, both_ends(port), exempt, drops,
                               cap.markers)
        c.note("exempt %r: failures %r, incomplete %r"
               % (exempt, v.failures, v.incomplete))
        check(not v.incomplete, "the capture of a short echo is incomplete")
        check(all("not TLS records" in f for f in v.failures),
              "a failure is not 'not TLS records'")
        judged.append((sum("client shim" in f for f in v.failures),
                       sum("server shim" in f for f in v.failures)))
    check(judged == [(2, 2), (0, 2), (1, 2)], "(client, server) failures "
          "without an exemption, exempted, exempted from the mark: want "
          "[(2, 2), (0, 2), (1, 2)], got %r" % judged)


@case
def wire_check_finds_a_canary_in_tls_framing(c):
    """A stream that parses as TLS records but carries a registered
    plaintext in a record body fails with the plaintext named; the same
    stream without that canary passes (the control)."""
    port = free_port()
    canary = b"wire-check-canary-%s" % os.urandom(4).hex().encode()
    for with_canary in (True, False):
        cap = own_capture(port if with_canary else free_port())
        if with_canary:
            cap.add_canary(canary)
        port_now = sorted(cap.ports)[0]
        srv = socket.socket()
        try:
            srv.settimeout(T_RUN)
            srv.bind(("127.0.0.1", port_now))
            srv.listen(1)
            cli = socket.create_connection(("127.0.0.1", port_now), T_RUN)
            conn, _ = srv.accept()
            body = b"x" * 3000 + canary + b"y" * 3000
            cli.sendall(b"\x17\x03\x03" + len(body).to_bytes(2, "big") + body)
            cli.close()
            got = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got += chunk
            conn.close()
        finally:
            srv.close()
            streams, drops = cap.stop()
        v = wire_capture.judge(streams, [wire_capture.Policy(
            'endpoints = ( { connect = "127.0.0.1:%d"; } );' % port_now)],
            {}, drops)
        c.note("canary %s: failures %r checked %d" % (with_canary,
                                                     v.failures, v.checked))
        if with_canary:
            check(len(v.failures) == 1 and "plaintext" in v.failures[0],
                  "the canary in a record body was not reported")
        else:
            check(not v.failures and v.checked == 1,
                  "a well-formed stream without the canary did not pass")


@case
def wire_check_passes_openssl_tls(c):
    """openssl s_server and s_client (no shim), TLS 1.3 and 1.2, judged as
    both shimmed: every direction parses as TLS records, none fails."""
    for version in ("TLSv13", "TLSv12"):
        server, port = s_server(c, version=version, name="peer-" + version)
        cap = own_capture(port)
        try:
            proc, matched = s_client(c, port, "wire check", "kcehc eriw",
                                     version=version,
                                     name="s_client-" + version)
            check(matched, "s_client did not get the reversed line")
            server.stop()
        finally:
            streams, drops = cap.stop()
        v = wire_capture.judge(streams, both_ends(port), {}, drops)
        c.note("%s: failures %r incomplete %r checked %d" % (
            version, v.failures, v.incomplete, v.checked))
        check(not v.failures and not v.incomplete, "%s: real TLS failed "
              "the wire check: %s" % (version, v.failures + v.incomplete))
        check(v.checked == 2, "%s: want both directions checked, got %d"
              % (version, v.checked))


@case
def wire_check_never_passes_a_lossy_capture(c):
    """A capture whose queue overflows (a tiny buffer nobody reads while
    1 MiB passes) reports the loss as incomplete, so the harness retries
    and then fails the case; it never passes it."""
    port = free_port()
    cap = wire_capture.Capture(rcvbuf=4096, reader=False)
    cap.add_ports({port})
    try:
        server, _ = echo_server(c, preload=False, port=port)
        proc = echo_client(c, port, "--bytes", str(1 << 20),
                           host="127.0.0.1", preload=False)
        check(proc.p.returncode == 0, "the plaintext echo failed")
        server.stop()
    finally:
        streams, drops = cap.stop()
    v = wire_capture.judge(streams, both_ends(port), {}, drops)
    c.note("drops %d, incomplete %r" % (drops, v.incomplete))
    check(drops > 0, "a 4 KiB queue nobody read lost nothing (?)")
    check(v.incomplete and "dropped" in v.incomplete[0],
          "the loss is not reported as an incomplete capture")


def synthetic_stream(segments, acked=0):
    """A Stream fed (offset, bytes) segments after a SYN with ISN 1000."""
    st = wire_capture.Stream(("127.0.0.1", 1, "127.0.0.1", 2))
    st.segment(1000, 0, 0x02, b"")
    for off, data in segments:
        st.segment(1001 + off, 0, 0x10, data)
    if acked:
        st.peer_ack(1001 + acked)
    return st


@case
def wire_check_reassembles_by_sequence(c):
    """The reassembly: out-of-order, duplicated and overlapping segments
    give the stream in order; a missing segment or bytes acked but never
    seen make it incomplete; a header cut by the end is checked as far as
    it goes; the bytes a Fast Open SYN carries are judged; a wrapped
    sequence number is handled."""
    rec = b"\x17\x03\x03\x00\x04abcd"           # one 9-byte record
    data = rec * 4                               # 36 bytes
    st = synthetic_stream([(9, data[9:20]), (0, data[:12]), (0, data[:9]),
                           (20, data[20:]), (18, data[18:30])])
    check(st.next == 36 and st.missing() is None and
          st.final_error() is None and st.records == {23: 4},
          "out-of-order input: next %d, missing %r, error %r, records %r"
          % (st.next, st.missing(), st.final_error(), st.records))
    st = synthetic_stream([(0, data[:9]), (18, data[18:])])
    check(st.missing() and "gap" in st.missing(), "a gap was not reported")
    st = synthetic_stream([(0, data[:9])], acked=36)
    check(st.missing() and "acked" in st.missing(),
          "bytes acked but not seen were not reported")
    st = synthetic_stream([(0, rec + b"\x17\x03")])
    check(st.final_error() is None, "a cut-off valid header failed")
    st = synthetic_stream([(0, rec + b"GE")])
    check(st.final_error() is not None, "a cut-off invalid header passed")
    st = synthetic_stream([(0, b"\x16\x03\x05\x00\x01x")])
    check(st.final_error() is not None, "record version 0x0305 passed")
    st = synthetic_stream([(0, b"\x17\x03\x03\x41\x01")])
    check(st.final_error() is not None, "a record of 2^14+257 bytes passed")
    fastopen = wire_capture.Stream(("127.0.0.1", 1, "127.0.0.1", 2))
    fastopen.segment(500, 0, 0x02, b"PLAIN")       # data in the SYN (TFO)
    fastopen.segment(506, 0, 0x10, rec)
    check(fastopen.next == 14 and fastopen.final_error() is not None,
          "the bytes of a Fast Open SYN were not judged: next %d, error %r"
          % (fastopen.next, fastopen.final_error()))
    wrap = wire_capture.Stream(("127.0.0.1", 1, "127.0.0.1", 2))
    wrap.segment(0xfffffff0, 0, 0x02, b"")
    wrap.segment(0xfffffff1, 0, 0x10, data[:20])
    wrap.segment((0xfffffff1 + 20) & 0xffffffff, 0, 0x11, data[20:])
    check(wrap.next == 36 and wrap.missing() is None and
          wrap.records == {23: 4}, "a sequence number wrap was mishandled")


@case
def wire_check_tells_the_ends_by_the_syn(c):
    """A stream is the server's when its SYN carried an ACK: plaintext from
    a client whose ephemeral port happens to be a listen endpoint's port
    number (free_port() hands out numbers the kernel may reuse) is not
    judged as the server's shim, and the server's own direction is."""
    port = 40000
    pol = [wire_capture.Policy('endpoints = ( { listen = "127.0.0.1:%d"; } '
                               ');' % port)]
    client = wire_capture.Stream(("127.0.0.1", port, "127.0.0.1", 5000))
    client.segment(7, 0, 0x02, b"")                    # SYN: a client
    client.segment(8, 0, 0x18, b"GET / HTTP/1.0\r\n")
    server = wire_capture.Stream(("127.0.0.1", port, "127.0.0.1", 5001))
    server.segment(9, 0, 0x12, b"")                    # SYN-ACK: a server
    server.segment(10, 0, 0x18, b"HTTP/1.0 200 OK\r\n")
    v = wire_capture.judge([client, server], pol, {}, 0)
    check(len(v.failures) == 1 and ":5001" in v.failures[0],
          "want the server's stream alone to fail: %r" % v.failures)


@case
def wire_check_reads_policy_ports(c):
    """The TLS ports of a policy: listen and connect endpoints, without
    the disabled ones (they stay plaintext) or those defaults disable."""
    text = ("version = 1;\nendpoints = (\n"
            "  { name = \"a\"; listen = \"127.0.0.1:1001\"; },\n"
            "  { name = \"b\"; connect = \"localhost:1002\"; },\n"
            "  { name = \"c\"; connect = \"[::1]:1003\"; enabled = false; },\n"
            "  { name = \"d\"; listen = \"*:1004\"; enabled = true; }\n);\n")
    got = wire_capture.policy_ports(text)
    check(got == ({1001, 1004}, {1002}), "ports %r" % (got,))
    text = ("version = 1;\ndefaults = { enabled = false; };\n"
            "endpoints = (\n"
            "  { name = \"a\"; listen = \"127.0.0.1:1001\"; },\n"
            "  { name = \"b\"; connect = \"h:1002\"; enabled = true; }\n);\n")
    got = wire_capture.policy_ports(text)
    check(got == (set(), {1002}), "with defaults disabled: %r" % (got,))


def localhost_has_ipv6():
    """Whether this machine's resolver gives ::1 for localhost (Debian's
    /etc/hosts does; a container's may not), as the shim's would."""
    return any(i[4][0] == "::1" for i in socket.getaddrinfo(
        "localhost", None, proto=socket.IPPROTO_TCP))


@case
def wire_check_matches_like_the_policy(c):
    """Which connections the check judges: those the policy's first
    matching endpoint wraps. localhost is 127.0.0.1 and ::1, not
    127.0.0.2 (unmatched_address_costs_one_lookup connects there in
    plain TCP); a disabled endpoint first keeps its address plaintext; a
    prefix, *, and 0.0.0.0 on listen match as the shim does."""
    pol = wire_capture.Policy(
        'endpoints = (\n'
        '  { connect = "127.0.0.3:7"; enabled = false; },\n'
        '  { connect = "127.0.0.0/8:7"; },\n'
        '  { connect = "localhost:8"; },\n'
        '  { listen = "0.0.0.0:9"; },\n'
        '  { listen = "*:10"; },\n'
        '  { connect = "[::ffff:127.0.0.5]:11"; }\n);\n')
    for kind, addr, port, want in (
            ("connect", "127.0.0.3", 7, False),
            ("connect", "127.0.0.4", 7, True),
            ("connect", "::1", 7, False),
            ("connect", "127.0.0.1", 8, True),
            ("connect", "::1", 8, localhost_has_ipv6()),
            ("connect", "127.0.0.2", 8, False),
            ("connect", "127.0.0.1", 9, False),
            ("listen", "127.0.0.9", 9, True),
            ("listen", "::1", 9, False),
            ("listen", "::1", 10, True),
            ("connect", "127.0.0.5", 11, True),
            ("connect", "::ffff:127.0.0.5", 11, True)):
        check(pol.wraps(kind, addr, port) == want, "%s %s:%d: want %s"
              % (kind, addr, port, want))
