#!/usr/bin/python3
"""A plain TCP client of the soak test (test/soak/run), run under the shim.

Usage: soak_client.py HOST PORT MODE SECONDS [--conns N] [--canary TEXT]
                      [--seed S]

It has no TLS code: under LD_PRELOAD the shim makes its connections TLS.
Every exchange sends bytes of a seeded generator and reads the echo back,
comparing every byte. Modes (each runs until SECONDS have passed):

  pingpong  N connections held for the whole run; round trips of 1 to
            16384 bytes on each in turn; every 50th round trip one of
            them is closed and replaced (long-lived, yet renewed).
  seq       one connection after the other, each with 1 to 4 round trips
            and a clean close (the wire-checked path: with --canary the
            text starts every payload, so a recording can look for it).
  idle      N connections, one round trip each, then silence until the
            end, then one more round trip on each (held connections
            survive the reloads and the load around them).
  reset     connect, send up to 64 KiB, read part of the echo, then an
            abrupt close (SO_LINGER {1, 0}: the kernel sends RST). Every
            third one resets right after connect, before any byte.

The last line on stdout is one JSON object: mode, connections, exchanges,
bytes (echoed and compared), errors, and the first few error texts. Exit
0 when errors is 0, 1 otherwise, 2 on usage. Every socket wait is bounded
(IO_TIMEOUT), and alarm() bounds the whole run. Stdlib only.
"""

import json
import random
import signal
import socket
import struct
import sys
import time

IO_TIMEOUT = 20


class Counts:
    def __init__(self, mode):
        self.mode = mode
        self.connections = self.exchanges = self.bytes = self.errors = 0
        self.first_errors = []

    def error(self, text):
        self.errors += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(text)

    def line(self):
        return json.dumps({"mode": self.mode, "connections": self.connections,
                           "exchanges": self.exchanges, "bytes": self.bytes,
                           "errors": self.errors,
                           "first_errors": self.first_errors})


def connect(host, port, counts):
    sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
    counts.connections += 1
    return sock


def recv_exactly(sock, n):
    got = bytearray()
    while len(got) < n:
        chunk = sock.recv(min(65536, n - len(got)))
        if not chunk:
            raise ConnectionError("EOF after %d of %d echoed bytes"
                                  % (len(got), n))
        got += chunk
    return bytes(got)


def round_trip(sock, rng, counts, size, canary=b""):
    """One payload out, its echo back and compared."""
    payload = canary + rng.randbytes(max(0, size - len(canary)))
    sock.sendall(payload)
    echo = recv_exactly(sock, len(payload))
    if echo != payload:
        at = next(i for i in range(len(payload)) if echo[i] != payload[i])
        raise ValueError("echo differs at byte %d of %d" % (at, len(payload)))
    counts.exchanges += 1
    counts.bytes += len(payload)


def close_clean(sock):
    """Half-close, read the server's EOF, close: every byte accounted."""
    sock.shutdown(socket.SHUT_WR)
    rest = sock.recv(1)
    if rest:
        raise ValueError("data after the last echo")
    sock.close()


def run_pingpong(a, rng, counts):
    socks = [connect(a.host, a.port, counts) for _ in range(a.conns)]
    i = 0
    while time.monotonic() < a.deadline:
        k = i % len(socks)
        round_trip(socks[k], rng, counts, rng.randint(1, 16384))
        i += 1
        if i % 50 == 0:
            close_clean(socks[k])
            socks[k] = connect(a.host, a.port, counts)
    for sock in socks:
        close_clean(sock)


def run_seq(a, rng, counts):
    while time.monotonic() < a.deadline:
        sock = connect(a.host, a.port, counts)
        for _ in range(rng.randint(1, 4)):
            round_trip(sock, rng, counts, rng.randint(64, 8192), a.canary)
        close_clean(sock)


def run_idle(a, rng, counts):
    socks = [connect(a.host, a.port, counts) for _ in range(a.conns)]
    for sock in socks:
        round_trip(sock, rng, counts, 16)
    while time.monotonic() < a.deadline:
        time.sleep(min(1.0, max(0.0, a.deadline - time.monotonic())))
    for sock in socks:
        round_trip(sock, rng, counts, 16)
        close_clean(sock)


def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


def run_reset(a, rng, counts):
    n = 0
    while time.monotonic() < a.deadline:
        sock = connect(a.host, a.port, counts)
        n += 1
        if n % 3 == 0:
            reset(sock)
            continue
        payload = rng.randbytes(rng.randint(1, 65536))
        sock.sendall(payload)
        part = min(len(payload), rng.randint(1, 4096))
        echo = recv_exactly(sock, part)
        if echo != payload[:part]:
            raise ValueError("echo before the reset differs")
        counts.exchanges += 1
        counts.bytes += part
        reset(sock)


MODES = {"pingpong": run_pingpong, "seq": run_seq, "idle": run_idle,
         "reset": run_reset}


class Args:
    def __init__(self, argv):
        if len(argv) < 5 or argv[3] not in MODES:
            raise SystemExit(__doc__)
        self.host, self.port, self.mode = argv[1], int(argv[2]), argv[3]
        self.seconds = float(argv[4])
        self.conns, self.canary, self.seed = 4, b"", 1
        rest = argv[5:]
        while rest:
            opt, value, rest = rest[0], rest[1], rest[2:]
            if opt == "--conns":
                self.conns = int(value)
            elif opt == "--canary":
                self.canary = value.encode()
            elif opt == "--seed":
                self.seed = int(value)
            else:
                raise SystemExit(__doc__)
        self.deadline = time.monotonic() + self.seconds


def main(argv):
    try:
        a = Args(argv)
    except (ValueError, IndexError):
        sys.stderr.write(__doc__)
        return 2
    signal.signal(signal.SIGALRM,
                  lambda *_: sys.exit("soak_client: timed out"))
    signal.alarm(int(a.seconds) + 4 * IO_TIMEOUT)
    counts = Counts(a.mode)
    rng = random.Random(a.seed)
    try:
        MODES[a.mode](a, rng, counts)
    except (OSError, ValueError) as e:
        counts.error("%s: %s" % (type(e).__name__, e))
    print(counts.line(), flush=True)
    return 0 if counts.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
