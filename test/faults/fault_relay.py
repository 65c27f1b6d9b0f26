#!/usr/bin/python3
"""A loopback TCP relay that misbehaves on a schedule, for the fault suite.

Usage: fault_relay.py TARGET_PORT PORT_FILE RECORD_PREFIX [schedule...]

Listens on 127.0.0.1 (port 0, written to PORT_FILE), and for each client
opens a connection to 127.0.0.1:TARGET_PORT and pumps both directions, one
thread each: c2s (client to target) and s2c. Every byte forwarded is
appended to RECORD_PREFIX.c2s / RECORD_PREFIX.s2c, so a case can look for
plaintext on the wire. This kernel has no netem; the schedule stands in:

  --seg1 DIR          forward DIR one byte per send(), TCP_NODELAY on
  --delay-ms DIR MS   sleep MS before forwarding each segment of DIR
  --stall DIR OFF MS  once OFF bytes of DIR went through, stop reading DIR
                      for MS ms (the other direction keeps flowing: with
                      a large MS this holds one direction while the other
                      flows; TCP's flow control pushes back on the sender)
  --rst DIR OFF       once exactly OFF bytes of DIR went through, reset
                      both connections (SO_LINGER {1, 0}, close)

DIR is c2s or s2c. A half-close is passed on with shutdown(SHUT_WR). Each
relayed connection ends with one stdout line:
"conn N: c2s B s2c B reset|closed". Every wait is bounded: the relay ends
on SIGTERM or after BOUND seconds (60). Stdlib only, never preloaded.
"""

import os
import signal
import socket
import struct
import sys
import threading
import time

BOUND = 60
LINGER_ZERO = struct.pack("ii", 1, 0)


class Schedule:
    def __init__(self):
        self.seg1 = set()
        self.delay = {}
        self.stall = {}
        self.rst = {}

    @staticmethod
    def parse(args):
        s, i = Schedule(), 0
        while i < len(args):
            opt = args[i]
            need = {"--seg1": 1, "--delay-ms": 2, "--stall": 3, "--rst": 2}
            if opt not in need:
                raise SystemExit("fault_relay: unknown option %r" % opt)
            vals = args[i + 1:i + 1 + need[opt]]
            if len(vals) != need[opt] or vals[0] not in ("c2s", "s2c"):
                raise SystemExit("fault_relay: %s needs DIR (c2s|s2c) and "
                                 "%d number(s)" % (opt, need[opt] - 1))
            d, nums = vals[0], [int(v) for v in vals[1:]]
            if opt == "--seg1":
                s.seg1.add(d)
            elif opt == "--delay-ms":
                s.delay[d] = nums[0] / 1000.0
            elif opt == "--stall":
                s.stall[d] = (nums[0], nums[1] / 1000.0)
            else:
                s.rst[d] = nums[0]
            i += 1 + need[opt]
        return s


class Conn:
    """One relayed connection: the two sockets and what went through."""

    def __init__(self, client, target):
        self.socks = {"c2s": (client, target), "s2c": (target, client)}
        self.count = {"c2s": 0, "s2c": 0}
        self.lock = threading.Lock()
        self.reset = False

    def do_reset(self):
        with self.lock:
            if self.reset:
                return
            self.reset = True
            # The other pump may be blocked in recv() on one of these
            # sockets; the kernel would put off the close (and its RST)
            # until that recv returned. shutdown(SHUT_RD) wakes it without
            # sending anything; the pump sees self.reset and stops.
            for sock in self.socks["c2s"]:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    LINGER_ZERO)
                    sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
                sock.close()


def segments(data, d, sched):
    if d in sched.seg1:
        return [data[i:i + 1] for i in range(len(data))]
    return [data]


def pump(conn, d, sched, record):
    src, dst = conn.socks[d]
    stall = sched.stall.get(d)
    rst_at = sched.rst.get(d)
    try:
        while not conn.reset:
            want = 65536
            if stall and conn.count[d] < stall[0]:
                want = min(want, stall[0] - conn.count[d])
            if rst_at is not None:
                want = min(want, max(rst_at - conn.count[d], 1))
            data = src.recv(want)
            if conn.reset:
                return
            if not data:
                dst.shutdown(socket.SHUT_WR)
                return
            for seg in segments(data, d, sched):
                if d in sched.delay:
                    time.sleep(sched.delay[d])
                dst.sendall(seg)
                record.write(seg)
                record.flush()
                conn.count[d] += len(seg)
                if rst_at is not None and conn.count[d] >= rst_at:
                    conn.do_reset()
                    return
            if stall and conn.count[d] == stall[0]:
                time.sleep(stall[1])
                stall = None
    except OSError:
        conn.do_reset()  # one side failed: pass it on as a reset


def relay(n, client, target_port, sched, prefix):
    target = socket.create_connection(("127.0.0.1", target_port), timeout=10)
    target.settimeout(None)
    client.settimeout(None)
    for sock in (client, target):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = Conn(client, target)
    threads = []
    records = [open("%s.%s" % (prefix, d), "ab") for d in ("c2s", "s2c")]
    for d, rec in zip(("c2s", "s2c"), records):
        t = threading.Thread(target=pump, args=(conn, d, sched, rec),
                             daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(BOUND)
    for rec in records:
        rec.close()
    if not conn.reset:
        for sock in (client, target):
            sock.close()
    print("conn %d: c2s %d s2c %d %s" % (n, conn.count["c2s"],
                                         conn.count["s2c"],
                                         "reset" if conn.reset else "closed"),
          flush=True)


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    target_port, port_file, prefix = int(argv[1]), argv[2], argv[3]
    sched = Schedule.parse(argv[4:])
    signal.signal(signal.SIGALRM, lambda *_: os._exit(1))
    signal.alarm(BOUND)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % lsock.getsockname()[1])
    os.rename(tmp, port_file)
    n = 0
    while True:
        client, _ = lsock.accept()
        n += 1
        threading.Thread(target=relay, args=(n, client, target_port, sched,
                                             prefix), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
