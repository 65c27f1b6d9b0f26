# Leaks under valgrind memcheck (issue 12, "Sanitizers, leaks, fuzzing"):
# a long run of a shimmed server, and of a shimmed client that resumes,
# each under valgrind with the shim preloaded; every loss record of kind
# "definitely lost" or "indirectly lost" whose stack passes through
# libsecshim.so or libsecshim-tls.so fails the case (OpenSSL's and libc's
# own records are listed in a note, not counted: they are not secshim's to
# fix). Loaded by test/integration/run into its own namespace.
#
# Only in the normal build: valgrind cannot run a program with a sanitizer
# runtime in it (the sanitizer builds SKIP these cases, saying so).

import ssl
import struct

T_VALGRIND = 240   # a whole run under valgrind (about 30x slower)

# A loss record's first line and its stack, as memcheck prints them
# ("==PID== 48 bytes in 1 blocks are definitely lost in loss record ...").
LOSS = re.compile(r"^==\d+== ([\d,]+ \(?[\d,]* ?[a-z ,]*\)? ?bytes in [\d,]+ "
                  r"blocks are (definitely|indirectly) lost in loss "
                  r"record [\d,]+ of [\d,]+)$")
FRAME = re.compile(r"^==\d+==    (?:at|by) 0x[0-9A-F]+: (.*)$")


def valgrind_argv(c, name):
    log = c.path(name + ".valgrind")
    return log, ["valgrind", "--leak-check=full",
                 "--show-leak-kinds=definite,indirect",
                 "--num-callers=40", "--child-silent-after-fork=yes",
                 # Whole source paths in the stacks: a frame of secshim's
                 # names src/shim/ or src/engine/ even where its library's
                 # name is not printed.
                 "--fullpath-after=",
                 "--log-file=" + log]


def need_valgrind(c):
    if c.suite.sanitized:
        raise Skip("valgrind cannot run a sanitizer build's library; the "
                   "normal build runs this case")
    if shutil.which("valgrind") is None:
        raise Failure("valgrind is missing (make deps)")


def loss_records(log):
    """[(headline, frames)] of every definite or indirect loss record."""
    with open(log) as f:
        lines = f.read().splitlines()
    out = []
    for i, line in enumerate(lines):
        m = LOSS.match(line)
        if not m:
            continue
        frames = []
        for nxt in lines[i + 1:]:
            f = FRAME.match(nxt)
            if not f:
                break
            frames.append(f.group(1))
        out.append((m.group(1), frames))
    return out


def check_no_secshim_leak(c, log):
    """Fails on a loss record through secshim's libraries; notes the rest
    and the summary lines, so a failing or passing run shows what it saw."""
    with open(log) as f:
        text = f.read()
    check("ERROR SUMMARY" in text, "valgrind wrote no summary: %s"
          % text[-500:])
    summary = [l.split("== ", 1)[-1] for l in text.splitlines()
               if re.search(r"(definitely|indirectly) lost:|ERROR SUMMARY", l)]
    c.note("valgrind: " + "; ".join(summary))
    ours, others = [], []
    for headline, frames in loss_records(log):
        mine = any("libsecshim" in f or "/src/engine/" in f or
                   "/src/shim/" in f for f in frames)
        (ours if mine else others).append(
            "%s\n      %s" % (headline, "\n      ".join(frames[:12])))
    if others:
        c.note("loss records outside secshim (not counted):\n    " +
               "\n    ".join(others))
    check(not ours, "%d loss record(s) through secshim:\n    %s"
          % (len(ours), "\n    ".join(ours)))


def valgrind_clients(c, port, count):
    """count TLS clients one after the other (Python's ssl, outside the
    shim): most send 4 KiB and read the echo; every tenth resets the TCP
    connection in the middle of its handshake (SO_LINGER 0), every tenth
    but one sends garbage instead of a ClientHello, so the failure paths
    run too. Returns how many echoes came back whole."""
    ctx = ssl.create_default_context(cafile=c.suite.pki("ca.pem"))
    good = 0
    for i in range(count):
        raw = socket.create_connection(("127.0.0.1", port), timeout=60)
        try:
            if i % 10 == 3:
                raw.sendall(b"\x16\x03\x01\x00\x05hello")  # a cut ClientHello
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                               struct.pack("ii", 1, 0))
                continue
            if i % 10 == 7:
                raw.sendall(os.urandom(64))
                raw.recv(64)
                continue
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                payload = os.urandom(4096)
                tls.sendall(payload)
                got = b""
                while len(got) < len(payload):
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                good += got == payload
                tls.unwrap()  # close_notify both ways, then a clean close
        except OSError:
            pass
        finally:
            raw.close()
    return good


@case
def valgrind_shimmed_server_long_run_leaks_nothing(c):
    """ev_epoll_server under valgrind memcheck with the shim preloaded
    serves 120 TLS clients one after the other (4 KiB echoed each; every
    tenth resets mid-handshake, another sends garbage), then exits by
    itself (--max-conns): the echoes are whole, and no definite or
    indirect loss record passes through secshim's libraries."""
    need_valgrind(c)
    s = c.suite
    port = free_port()
    log, vg = valgrind_argv(c, "server")
    port_file = c.path("server.port")
    server = c.start("server", vg + [s.app("ev_epoll_server"), "-4",
                                     str(port), "--port-file", port_file,
                                     "--max-conns", "120", "--timeout",
                                     str(T_VALGRIND)],
                     c.env(c.policy(server_ep(s, port))))
    wait_port_file(server, port_file, timeout=60)
    good = valgrind_clients(c, port, 120)
    server.wait(T_VALGRIND)
    check(good == 96, "%d of the 96 well-behaved clients got their echo"
          % good)
    # 1: it saw the resets and the garbage as read errors, as it would
    # over plain TCP; anything else (a signal, valgrind's own) is a failure.
    check(server.p.returncode in (0, 1), "the server exited %s"
          % server.p.returncode)
    check_no_secshim_leak(c, log)


@case
def valgrind_shimmed_client_resuming_leaks_nothing(c):
    """reconnect_client under valgrind with the shim preloaded makes 40
    connections to `openssl s_server -www`, resuming (the client session
    cache), then 4 threads at once and a forked child: every reply comes,
    and no definite or indirect loss record passes through secshim."""
    need_valgrind(c)
    s = c.suite
    peer, port = www_peer(c)
    log, vg = valgrind_argv(c, "client")
    client = c.start("client", vg + [s.app("reconnect_client"), "localhost",
                                     str(port), "--count", "40",
                                     "--threads", "4", "--fork",
                                     "--timeout", str(T_VALGRIND)],
                     c.env(c.policy(client_ep(s, port))))
    client.wait(T_VALGRIND)
    check(client.p.returncode == 0, "reconnect_client exited %s"
          % client.p.returncode)
    check(client.out().count(": ok") == 45, "%d of 45 connections ended ok"
          % client.out().count(": ok"))
    check("Reused" in client.out(), "no connection resumed")
    check_no_secshim_leak(c, log)
