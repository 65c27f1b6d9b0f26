# Cases for "No record waits behind Nagle's algorithm" (docs/design.md;
# src/shim/nagle.c). Run by test/integration/run, in its namespace.
#
# A TLS 1.3 client's Finished is a segment plain TCP never sends; a server
# that answers it with nothing (no session tickets: `openssl s_server
# -num_tickets 0`, or secshim with session-resumption = false) leaves it
# unacknowledged until its delayed ACK, 40 ms later, and Nagle's algorithm
# holds the program's first write behind it. The reference is plain TCP:
# the same program, build/apps/first_write, connects, writes one line and
# times the reply, over plain TCP and under the shim; what it reads of
# TCP_NODELAY must be what plain TCP gives.

NAGLE_ROUNDS = 5
# Coarse buckets for the write-to-reply time: a loopback write and its echo
# take well under a millisecond in plain TCP and a few under the shim
# (sanitizer builds included); the delayed ACK a held write waits for is
# 40 ms. The handshake, which a blocking connect completes, is outside
# this time: under ThreadSanitizer on a loaded machine it alone can take
# 40 ms, which is not what these cases judge.
PLAIN_BUCKET_MS = 20
SHIM_BUCKET_MS = 30
ROUND_LINE = re.compile(r"^round (\d+) ms ([\d.]+) write ([\d.]+) (.*)$",
                        re.M)


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def first_write(c, port, env, *flags, name="first_write"):
    """Runs first_write for NAGLE_ROUNDS rounds; returns (median
    write-to-reply ms, [what each round read of TCP_NODELAY]), noting the
    median connect-to-reply time too."""
    argv = [need_app(c, "first_write"), "localhost", str(port),
            "--rounds", str(NAGLE_ROUNDS)] + list(flags)
    proc = c.run(name, argv, env)
    check(proc.p.returncode == 0, "%s exited %s" % (name, proc.p.returncode))
    rounds = ROUND_LINE.findall(proc.out())
    check(len(rounds) == NAGLE_ROUNDS, "%s printed %d rounds, expected %d"
          % (name, len(rounds), NAGLE_ROUNDS))
    c.note("%s: connect-to-reply median %.2f ms" % (
        name, median(float(ms) for _, ms, _, _ in rounds)))
    return (median(float(w) for _, _, w, _ in rounds),
            [rest for _, _, _, rest in rounds])


def plain_reference(c, *flags):
    """first_write against a plain echo_server, no shim."""
    _, port = echo_server(c, preload=False, name="plain-server")
    return first_write(c, port, c.env(preload=False), *flags,
                       name="plain-client")


def check_not_held(c, shim_ms, shim_reads, plain_ms, plain_reads):
    c.note("first write to its reply, median of %d: plain %.2f ms, shim "
           "%.2f ms" % (NAGLE_ROUNDS, plain_ms, shim_ms))
    check(plain_ms < PLAIN_BUCKET_MS, "plain TCP itself took %.1f ms (bucket "
          "%d ms): the machine is too loaded to judge" % (plain_ms,
                                                          PLAIN_BUCKET_MS))
    check(shim_ms < SHIM_BUCKET_MS, "under the shim the first write's reply "
          "took %.1f ms (median), plain TCP %.1f ms: the first write waited "
          "behind Nagle's algorithm for the peer's delayed ACK"
          % (shim_ms, plain_ms))
    check(shim_reads == plain_reads, "TCP_NODELAY as the program read it "
          "differs: shim %s, plain %s" % (shim_reads, plain_reads))


@case
def nagle_first_write_after_full_handshake_not_held(c):
    """A shimmed client's first write after a full TLS 1.3 handshake with
    `openssl s_server -num_tickets 0` is answered as fast as plain TCP's
    (not 40 ms later), and getsockopt/setsockopt(TCP_NODELAY) before the
    write and after the reply read what plain TCP gives."""
    s = c.suite
    peer, port = s_server(c, version="TLSv13", extra=["-num_tickets", "0"])
    pol = c.policy(client_ep(s, port, session_resumption=False), level="error")
    flags = ("--set-before", "--set-nodelay")
    shim_ms, shim_reads = first_write(c, port, c.env(pol), *flags)
    plain_ms, plain_reads = plain_reference(c, *flags)
    check_not_held(c, shim_ms, shim_reads, plain_ms, plain_reads)


@case
def nagle_first_write_shim_pair_full_handshakes(c):
    """The same with both ends shimmed and resumption off on both (the
    `make bench` full-handshake scenario)."""
    s = c.suite
    port = free_port()
    pol = c.policy(server_ep(s, port, session_resumption=False),
                   client_ep(s, port, session_resumption=False),
                   level="error")
    echo_server(c, pol, port=port)
    shim_ms, shim_reads = first_write(c, port, c.env(pol))
    plain_ms, plain_reads = plain_reference(c)
    check_not_held(c, shim_ms, shim_reads, plain_ms, plain_reads)


STRACE_NODELAY = re.compile(r"setsockopt\((\d+), SOL_TCP, TCP_NODELAY, "
                            r"\[(\d+)\], 4\) = 0")


@case
def nagle_window_gives_the_program_its_nodelay_back(c):
    """The shim's TCP_NODELAY is temporary: traced with strace, the private
    descriptor gets TCP_NODELAY 1 at the swap and the program's 0 back after
    its first write, so later writes are held exactly as plain TCP's."""
    check(shutil.which("strace") is not None, "strace is missing (make deps)")
    s = c.suite
    peer, port = s_server(c, version="TLSv13", extra=["-num_tickets", "0"])
    pol = c.policy(client_ep(s, port, session_resumption=False), level="error")
    trace = c.path("first_write.strace")
    argv = ["strace", "-f", "-o", trace, "-e", "trace=setsockopt",
            need_app(c, "first_write"), "localhost", str(port)]
    proc = c.run("traced-client", argv, c.env(pol))
    check(proc.p.returncode == 0, "first_write exited %s"
          % proc.p.returncode)
    with open(trace) as f:
        sets = STRACE_NODELAY.findall(f.read())
    c.note("TCP_NODELAY set by the shim: %s" % sets)
    values = [v for _, v in sets]
    check(values == ["1", "0"], "expected TCP_NODELAY set to 1 then back to "
          "0 on the private descriptor, strace saw %s" % sets)
    check(len({fd for fd, _ in sets}) == 1 and int(sets[0][0]) >= 1024,
          "expected both on one private descriptor (>= 1024): %s" % sets)


# ---- system calls per record (docs/design.md, "Memory and copies") ---------

STRACE_RECV = re.compile(r"^recvfrom\(\d+, .*?, (\d+), (MSG_\w+(?:\|MSG_\w+)*)"
                         r", NULL, NULL\) = (-?\d+)", re.M)
ROUND_TRIPS = 50


@case
def reads_take_a_record_in_one_recv(c):
    """A shimmed client's blocking read of a 64-byte echo: one recv takes
    the record's header and body (read-ahead), and a read that finds the
    engine and the kernel drained waits for the peer at once, so no recv
    returns EAGAIN and none asks for a 5-byte header alone: at most 2
    recvfrom calls (the waiting peek, the record) per round trip, where
    the engine without read-ahead made up to 4."""
    check(shutil.which("strace") is not None, "strace is missing (make deps)")
    s = c.suite
    port = free_port()
    pol = c.policy(server_ep(s, port), client_ep(s, port), level="error")
    echo_server(c, pol, port=port)
    trace = c.path("client.strace")
    argv = ["strace", "-o", trace, "-e", "trace=recvfrom",
            need_app(c, "bench_client"), "localhost", str(port), "pingpong",
            str(ROUND_TRIPS), "64"]
    proc = c.run("traced-client", argv, c.env(pol))
    check(proc.p.returncode == 0, "bench_client exited %s" % proc.p.returncode)
    with open(trace) as f:
        calls = STRACE_RECV.findall(f.read())
    data = [(int(size), flags, int(rc)) for size, flags, rc in calls
            if "MSG_PEEK" not in flags]
    peeks = len(calls) - len(data)
    header_only = sum(1 for size, _, _ in data if size == 5)
    again = sum(1 for _, _, rc in data if rc < 0)
    c.note("recvfrom over %d round trips: %d data, %d peeks, %d asked for "
           "5 bytes, %d EAGAIN" % (ROUND_TRIPS, len(data), peeks, header_only,
                                   again))
    check(header_only == 0, "%d recvs asked for a 5-byte header alone (no "
          "read-ahead)" % header_only)
    # The handshake's own reads (a few, before the first echo) may find
    # nothing; the round trips must not.
    check(again <= 3, "%d recvs returned EAGAIN over %d round trips"
          % (again, ROUND_TRIPS))
    check(len(calls) <= 2 * ROUND_TRIPS + 8, "%d recvfrom calls for %d "
          "round trips" % (len(calls), ROUND_TRIPS))
