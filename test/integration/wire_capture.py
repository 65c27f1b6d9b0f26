"""The integration harness's independent wire check (docs/testing.md,
"The wire check").

A case's shims log "established" for every TLS connection; this module
checks the bytes themselves. While a case runs, an AF_PACKET socket on
the loopback interface receives every TCP segment to or from a port that
one of the case's policies names (a kernel filter drops everything else,
so other suites' traffic on the same interface costs nothing here). Each
TCP stream is reassembled per direction by sequence number, and each
direction the shim writes - to a connect endpoint's port, from a listen
endpoint's port - must be a run of TLS records from its first byte and
must not hold a plaintext the case registered (a canary). A capture that
lost a packet, or a stream with a gap, is never passed: the harness runs
the case once more and fails it if the capture is incomplete again.

Stdlib only (ctypes for the filter's address, which setsockopt needs).
Needs CAP_NET_RAW, which the suite has: it runs as root.
"""

import ctypes
import ipaddress
import os
import re
import select
import socket
import struct
import threading
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_HOST = 0            # sockaddr_ll.sll_pkttype of a received copy
SO_RCVBUFFORCE = 33
SO_ATTACH_FILTER = 26
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", SO_ATTACH_FILTER)
# Room for the backlog of a fast transfer while the reader is off the CPU;
# only the filtered segments are charged to it.
RCVBUF = 256 << 20
SETTLE_MAX = 1.0          # seconds, see Capture.stop
SNAP = 65536 + 256         # a whole loopback segment (MTU 65536) + headers

# TLS record limits checked on the wire (RFC 8446 5.2: a record's
# ciphertext is at most 2^14 + 256 bytes; the versions a record header of
# TLS 1.0 to 1.3 carries).
TLS_TYPES = (20, 21, 22, 23)
TLS_MAX_RECORD = (1 << 14) + 256

# A classic BPF jump reaches 255 instructions; four per port fit 40 ports
# (no case names more than a handful).
MAX_PORTS = 40

ENDPOINT_RE = re.compile(r'\b(listen|connect)\s*=\s*"([^"]*):(\d+)"\s*;')
ENABLED_FALSE_RE = re.compile(r'\benabled\s*=\s*false\s*;')


def policy_endpoints(text):
    """The endpoints of a libconfig policy text, in file order (the first
    that matches decides, docs/policy.md "Matching"): a list of (kind
    "listen" or "connect", host pattern, port, enabled). Group by group:
    an endpoint group holds no braces of its own."""
    endpoints = []
    defaults = re.search(r'\bdefaults\s*=\s*\{([^}]*)\}', text)
    off_by_default = bool(defaults and ENABLED_FALSE_RE.search(
        defaults.group(1)))
    for group in re.findall(r'\{([^{}]*)\}', text):
        if defaults and group == defaults.group(1):
            continue
        enabled = re.search(r'\benabled\s*=\s*(true|false)\s*;', group)
        on = enabled.group(1) == "true" if enabled else not off_by_default
        for kind, host, port in ENDPOINT_RE.findall(group):
            endpoints.append((kind, host, int(port), on))
    return endpoints


def policy_ports(text):
    """(listen ports, connect ports) of the enabled endpoints of a policy
    text: the TLS ports. A disabled endpoint leaves its connections
    plaintext (docs/policy.md), so its port alone is not one."""
    listen, connect = set(), set()
    for kind, _host, port, on in policy_endpoints(text):
        if on:
            (listen if kind == "listen" else connect).add(port)
    return listen, connect


def plain_address(text):
    """An address as ipaddress, IPv4-mapped IPv6 as the IPv4 address."""
    addr = ipaddress.ip_address(text)
    if addr.version == 6 and addr.ipv4_mapped:
        return addr.ipv4_mapped
    return addr


def host_matcher(kind, host):
    """A function telling whether an address (text) is one the endpoint's
    host pattern matches (docs/policy.md, "Matching"): * and the
    wildcard listen addresses match every address of their scope, a
    prefix its network, an address itself, a name the addresses the
    harness resolves it to. A name the harness cannot resolve (a case's
    own hosts file) matches every address: the check then judges more,
    never less."""
    pattern = host[1:-1] if host.startswith("[") and "]" in host and \
        host.endswith("]") else host.replace("[", "").replace("]", "")
    if pattern == "*":
        return lambda addr: True
    if kind == "listen" and pattern == "0.0.0.0":
        return lambda addr: plain_address(addr).version == 4
    if kind == "listen" and pattern == "::":
        return lambda addr: True
    try:
        if "/" in pattern:
            net = ipaddress.ip_network(pattern, strict=False)
            if net.version == 6 and ipaddress.ip_network(
                    "::ffff:0:0/96").subnet_of(net):
                return lambda addr: True
            if net.version == 6 and net.subnet_of(
                    ipaddress.ip_network("::ffff:0:0/96")):
                net = ipaddress.ip_network("%s/%d" % (
                    net.network_address.ipv4_mapped, net.prefixlen - 96))
            return lambda addr: plain_address(addr) in net
        want = plain_address(pattern)
        return lambda addr: plain_address(addr) == want
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(pattern, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return lambda addr: True
    addrs = {plain_address(i[4][0].split("%")[0]) for i in infos}
    return lambda addr: plain_address(addr) in addrs


class Policy:
    """One policy text's endpoints with their matchers."""

    def __init__(self, text):
        self.endpoints = [(kind, port, on, host_matcher(kind, host), host)
                          for kind, host, port, on in policy_endpoints(text)]

    def wraps(self, kind, addr, port):
        """Whether a connection with this address and port (for listen the
        local one, for connect the destination) is TLS under this policy:
        its first matching endpoint of the kind is enabled."""
        for k, p, on, matches, _host in self.endpoints:
            if k == kind and p == port and matches(addr):
                return on
        return False


# ---- the kernel filter ----------------------------------------------------

def bpf(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


def port_filter(ports):
    """A classic BPF program for an ETH_P_ALL socket on lo: keep the
    received copy (each loopback packet is seen leaving and arriving) of
    an unfragmented TCP segment over IPv4 or IPv6 whose source or
    destination port is in ports; drop everything else. Returns the
    instructions as bytes."""
    ld_h, ld_b, ld_w = 0x28, 0x30, 0x20
    ldx_msh, ld_ind_h = 0xb1, 0x48
    jeq, jset, ret = 0x15, 0x45, 0x06
    ports = sorted(ports)
    if len(ports) > MAX_PORTS:
        raise ValueError("%d ports: the filter's jumps reach %d at most"
                         % (len(ports), MAX_PORTS))
    prog = []
    prog.append(bpf(ld_w, 0, 0, 0xfffff000 + 4))     # skb->pkt_type
    prog.append(("jne_drop", PACKET_HOST))
    prog.append(bpf(ld_h, 0, 0, 12))                 # ethertype
    prog.append(("jeq_to", 0x86dd, "v6"))
    prog.append(("jne_drop", 0x0800))
    prog.append(bpf(ld_b, 0, 0, 23))                 # IPv4 protocol
    prog.append(("jne_drop", 6))
    prog.append(bpf(ld_h, 0, 0, 20))                 # flags, fragment
    prog.append(("jset_drop", 0x1fff))
    prog.append(bpf(ldx_msh, 0, 0, 14))              # X = IPv4 header
    prog.append(bpf(ld_ind_h, 0, 0, 14))             # source port
    prog += [("jeq_to", p, "keep") for p in ports]
    prog.append(bpf(ld_ind_h, 0, 0, 16))             # destination port
    prog += [("jeq_to", p, "keep") for p in ports]
    prog.append(("ja_drop",))
    prog.append("v6")
    prog.append(bpf(ld_b, 0, 0, 20))                 # IPv6 next header
    prog.append(("jne_drop", 6))
    prog.append(bpf(ld_h, 0, 0, 54))                 # source port
    prog += [("jeq_to", p, "keep") for p in ports]
    prog.append(bpf(ld_h, 0, 0, 56))                 # destination port
    prog += [("jeq_to", p, "keep") for p in ports]
    prog.append("drop")
    prog.append(bpf(ret, 0, 0, 0))
    prog.append("keep")
    prog.append(bpf(ret, 0, 0, SNAP))
    # Resolve the labels into jump offsets (counted from the next one).
    labels, pc = {}, 0
    for item in prog:
        if isinstance(item, str):
            labels[item] = pc
        else:
            pc += 1
    out, pc = [], 0
    for item in prog:
        if isinstance(item, str):
            continue
        if isinstance(item, tuple):
            kind = item[0]
            if kind == "jne_drop":
                item = bpf(jeq, 0, labels["drop"] - pc - 1, item[1])
            elif kind == "jset_drop":
                item = bpf(jset, labels["drop"] - pc - 1, 0, item[1])
            elif kind == "jeq_to":
                item = bpf(jeq, labels[item[2]] - pc - 1, 0, item[1])
            else:  # ja_drop
                item = bpf(0x05, 0, 0, labels["drop"] - pc - 1)
        out.append(item)
        pc += 1
    return b"".join(out), len(out)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def attach_filter(sock, ports):
    code, count = port_filter(ports)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = SockFprog(count, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER,
                    bytes(memoryview(prog)))


# ---- one direction of one TCP connection ------------------------------------

class Stream:
    """One direction of a TCP connection: reassembled by sequence number
    and parsed as TLS records as the bytes arrive (nothing is kept but the
    parser's state and a canary window, so a gigabyte costs no memory)."""

    def __init__(self, key):
        self.key = key              # (src addr, src port, dst addr, dst port)
        self.isn = None             # None: the SYN was not seen
        self.syn_index = None       # the capture's count at the SYN
        self.accepted = False       # its SYN had ACK: the server's side
        self.next = 0               # bytes delivered in order so far
        self.pending = {}           # offset -> bytes, past a gap
        self.fin_at = None
        self.rst = False
        self.acked = 0              # the highest offset the peer acked
        self.unanchored = 0         # segments seen before any SYN
        self.head = b""             # the first bytes, for messages
        # The TLS parser: a partial header, or the body bytes to skip.
        self.hdr = b""
        self.body_left = 0
        self.records = {}
        self.error = None
        self.canaries = ()
        self.tail = b""
        self.canary_found = None

    def segment(self, seq, ack, flags, payload):
        if flags & 0x02:                        # SYN
            if self.isn is None:
                self.isn = seq
                self.accepted = bool(flags & 0x10)
            # TCP Fast Open: a SYN may carry the first bytes (after the
            # SYN's own sequence number).
            if not payload:
                return
            seq = (seq + 1) & 0xffffffff
        if self.isn is None:
            self.unanchored += 1
            return
        off = (seq - self.isn - 1) & 0xffffffff
        if off >= 1 << 31:                      # before the ISN: stale
            return
        if payload:
            self.add(off, payload)
        if flags & 0x01:                        # FIN
            self.fin_at = off + len(payload)
        if flags & 0x04:                        # RST
            self.rst = True

    def peer_ack(self, ack):
        """The other direction acked up to ack (absolute)."""
        if self.isn is None:
            return
        off = (ack - self.isn - 1) & 0xffffffff
        if off < 1 << 31 and off > self.acked:
            self.acked = off

    def add(self, off, payload):
        end = off + len(payload)
        if end <= self.next:
            return                              # a retransmit, all seen
        if off > self.next:
            if len(self.pending.get(off, b"")) < len(payload):
                self.pending[off] = bytes(payload)
            return
        self.feed(payload[self.next - off:])
        while self.pending:
            ready = [o for o in self.pending if o <= self.next]
            if not ready:
                break
            for o in ready:
                data = self.pending.pop(o)
                if o + len(data) > self.next:
                    self.feed(data[self.next - o:])

    def feed(self, data):
        data = memoryview(data)
        if len(self.head) < 16:
            self.head += bytes(data[:16 - len(self.head)])
        if self.canaries and self.canary_found is None:
            self.scan_canaries(bytes(data))
        start = self.next
        self.next += len(data)
        if self.error:
            return
        pos = 0
        while pos < len(data):
            if self.body_left:
                step = min(self.body_left, len(data) - pos)
                self.body_left -= step
                pos += step
                continue
            need = 5 - len(self.hdr)
            self.hdr += bytes(data[pos:pos + need])
            pos += need
            if len(self.hdr) < 5:
                break
            self.check_header(start + pos - 5)
            if self.error:
                return
            self.hdr = b""

    def check_header(self, at):
        ctype, major, minor = self.hdr[0], self.hdr[1], self.hdr[2]
        length = int.from_bytes(self.hdr[3:5], "big")
        if ctype not in TLS_TYPES:
            self.error = "content type %d at byte %d" % (ctype, at)
        elif major != 3 or not 1 <= minor <= 4:
            self.error = "record version 0x%02x%02x at byte %d" % (
                major, minor, at)
        elif length > TLS_MAX_RECORD:
            self.error = "record length %d at byte %d" % (length, at)
        else:
            self.records[ctype] = self.records.get(ctype, 0) + 1
            self.body_left = length

    def scan_canaries(self, data):
        window = self.tail + data
        for canary in self.canaries:
            if canary in window:
                self.canary_found = canary
                return
        keep = max(len(x) for x in self.canaries) - 1
        self.tail = window[-keep:] if keep else b""

    def final_error(self):
        """Why the bytes seen are not a prefix of a run of TLS records, or
        None. A header cut off by the end is checked as far as it goes."""
        if self.error:
            return self.error
        h = self.hdr
        if h and (h[0] not in TLS_TYPES or (len(h) > 1 and h[1] != 3)):
            return "a cut-off record header %s at the end" % h.hex()
        return None

    def missing(self):
        """Why the capture is incomplete for this stream, or None: a gap
        before buffered bytes, bytes the peer acked that were never seen,
        or a FIN past the bytes seen."""
        if self.pending:
            return "a gap at byte %d (%d segments past it)" % (
                self.next, len(self.pending))
        end = self.next + (1 if self.fin_at == self.next else 0)
        if self.acked > end:
            return "the peer acked %d bytes, %d were seen" % (self.acked,
                                                              self.next)
        if self.fin_at is not None and self.fin_at > self.next:
            return "the FIN is at byte %d, %d were seen" % (self.fin_at,
                                                           self.next)
        return None

    def label(self):
        src, sport, dst, dport = self.key
        return "%s:%d -> %s:%d" % (src, sport, dst, dport)


# ---- the capture ------------------------------------------------------------

class Capture:
    """The segments of a set of ports on lo, reassembled while they come.
    One per run: begin() before a case, add_ports() when a policy names
    ports (before any process uses it), end() after the case's processes
    are gone; close() at the end of the run. Opening and closing a packet
    socket each waits for the kernel's RCU grace period (10-20 ms), so
    the socket and its reader outlive the cases. A capture of its own
    (the check's own cases) is Capture() ... stop()."""

    def __init__(self, rcvbuf=RCVBUF, reader=True):
        """rcvbuf and reader=False are for the check's own cases: a small
        queue nobody reads must overflow, and the loss must show."""
        # Protocol 0 receives nothing until bind() names one, so no packet
        # is queued before the filter is in place.
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.ports = set()
        attach_filter(self.sock, self.ports)     # nothing passes yet
        self.sock.bind(("lo", ETH_P_ALL))     # CPython applies htons
        self.sock.setblocking(False)
        self.wake_r, self.wake_w = os.pipe()
        self.marker_seen = threading.Event()
        self.lock = threading.Lock()    # guards what begin() resets
        self.tid = None
        self.begin()
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        if reader:
            self.thread.start()

    def begin(self):
        """Starts a case: no ports, no streams, the loss counter reset."""
        with self.lock:
            self.ports = set()
            attach_filter(self.sock, self.ports)
            self.streams = {}
            self.packets = 0
            self.markers = {}       # marker port -> count at its SYN
            self.canaries_now = ()
            self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)

    def end(self):
        """Ends a case after taking what is queued: returns the streams
        and the number of filtered segments the kernel dropped (its queue
        was full). Reading the statistics resets them."""
        # The segments of the last closes (FIN, RST) pass the loopback's
        # receive queue in a softirq after close() returned: a marker's SYN
        # sent now is queued behind them; once the reader has it, what
        # came before is read. No fixed sleep (it would cost every case).
        if self.thread.is_alive():
            port = self.mark()
            deadline = time.monotonic() + SETTLE_MAX
            while self.markers[port] is None and \
                    time.monotonic() < deadline:
                self.marker_seen.wait(0.05)
                self.marker_seen.clear()
        else:
            self.drain_queue()
        with self.lock:
            stats = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            _received, drops = struct.unpack("II", stats)
            self.ports = set()
            attach_filter(self.sock, self.ports)
            return list(self.streams.values()), drops

    def stop(self):
        """end() and close(), for a capture of its own."""
        got = self.end()
        self.close()
        return got

    def close(self):
        self.running = False
        os.write(self.wake_w, b"x")
        if self.thread.is_alive():
            self.thread.join(5)
        self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)

    def cpu(self):
        """The reader thread's CPU seconds so far (/proc, user + system)."""
        if self.tid is None:
            return 0.0
        try:
            with open("/proc/self/task/%d/stat" % self.tid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def add_ports(self, ports):
        with self.lock:
            if set(ports) <= self.ports:
                return
            self.ports |= set(ports)
            attach_filter(self.sock, self.ports)

    def drain_queue(self):
        """Reads what is queued, for a capture without a reader."""
        buf = bytearray(SNAP)
        while True:
            try:
                n, addr = self.sock.recvfrom_into(buf)
            except BlockingIOError:
                return
            self.packet(memoryview(buf)[:n], addr)

    def loop(self):
        buf = bytearray(SNAP)
        view = memoryview(buf)
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        self.tid = threading.get_native_id()
        while self.running:
            poller.poll()           # close() wakes it through the pipe
            while True:
                try:
                    n, addr = self.sock.recvfrom_into(buf)
                except BlockingIOError:
                    break
                except OSError:
                    return
                self.packet(view[:n], addr)

    def packet(self, pkt, addr):
        if addr[2] != PACKET_HOST or len(pkt) < 14:
            return
        ethertype = int.from_bytes(pkt[12:14], "big")
        if ethertype == 0x0800:
            ihl = (pkt[14] & 0x0f) * 4
            if pkt[23] != 6:
                return
            total = int.from_bytes(pkt[16:18], "big")
            src = socket.inet_ntop(socket.AF_INET, bytes(pkt[26:30]))
            dst = socket.inet_ntop(socket.AF_INET, bytes(pkt[30:34]))
            tcp = 14 + ihl
            end = 14 + total
        elif ethertype == 0x86dd:
            if pkt[20] != 6:
                return
            src = socket.inet_ntop(socket.AF_INET6, bytes(pkt[22:38]))
            dst = socket.inet_ntop(socket.AF_INET6, bytes(pkt[38:54]))
            tcp = 54
            end = 54 + int.from_bytes(pkt[18:20], "big")
        else:
            return
        sport = int.from_bytes(pkt[tcp:tcp + 2], "big")
        dport = int.from_bytes(pkt[tcp + 2:tcp + 4], "big")
        seq = int.from_bytes(pkt[tcp + 4:tcp + 8], "big")
        ack = int.from_bytes(pkt[tcp + 8:tcp + 12], "big")
        doff = (pkt[tcp + 12] >> 4) * 4
        flags = pkt[tcp + 13]
        payload = pkt[tcp + doff:end]
        with self.lock:
            self.packets += 1
            key = (src, sport, dst, dport)
            stream = self.streams.get(key)
            if stream is None or (flags & 0x02 and
                                  stream.isn not in (None, seq)):
                # A new SYN on a 4-tuple seen before: a new connection.
                if stream is not None:
                    self.streams[key + (len(self.streams),)] = stream
                stream = self.streams[key] = Stream(key)
                stream.canaries = self.canaries_now
            if flags & 0x02 and stream.isn is None:
                stream.syn_index = self.packets
                if dport in self.markers and self.markers[dport] is None:
                    self.markers[dport] = self.packets
                    self.marker_seen.set()
            stream.segment(seq, ack, flags, payload)
            if flags & 0x10:
                back = self.streams.get((dst, dport, src, sport))
                if back is not None:
                    back.peer_ack(ack)

    def mark(self):
        """A point in the order of the segments: a connect attempt to a
        port nobody listens on, whose SYN passes lo like any other, so the
        streams whose SYN the kernel queued after it are after it. Returns
        the marker's port (its count is in markers once seen)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with self.lock:
            self.markers[port] = None
        self.add_ports({port})
        with socket.socket() as sock:
            sock.settimeout(2)
            try:
                sock.connect(("127.0.0.1", port))
            except OSError:
                pass                # refused: the SYN went out all the same
        return port

    def add_canary(self, data):
        with self.lock:
            if data and data not in self.canaries_now:
                self.canaries_now = self.canaries_now + (bytes(data),)
                for stream in self.streams.values():
                    stream.canaries = self.canaries_now


# ---- the verdict ------------------------------------------------------------

class Verdict:
    """What the wire showed for one case: failures (a shimmed direction
    that is not TLS or carries a canary), incomplete (the capture cannot
    vouch for a stream), and counts for the summary."""

    def __init__(self):
        self.failures = []
        self.incomplete = []
        self.checked = 0            # shimmed directions with payload, TLS
        self.empty = 0              # shimmed directions with no payload
        self.exempted = 0
        self.unanchored = 0         # began before a policy named the port


def exempted(stream, entry, markers):
    """Whether an exemption entry (reason, marker port or None) covers
    the stream: always without a marker, else when its SYN came after
    the marker's (never when either was not seen)."""
    if entry is None:
        return False
    _reason, marker = entry
    if marker is None:
        return True
    at = markers.get(marker)
    return at is not None and stream.syn_index is not None and \
        stream.syn_index > at


def judge(streams, policies, exempt, drops, markers=None):
    """Checks each direction a shim wrote: from a local address and port a
    listen endpoint wraps (the server's shim), to a destination a connect
    endpoint wraps (the client's shim), under any of the case's policies.
    exempt maps (side, port or None) to (the case's reason for plaintext
    there, a marker port or None): with a marker, only the streams that
    began after it (markers maps it to its place) are exempt; one whose
    marker was never seen exempts nothing."""
    v = Verdict()
    markers = markers or {}
    if drops:
        v.incomplete.append("the capture dropped %d segments of this "
                            "case's ports" % drops)
    for st in streams:
        src, sport, dst, dport = st.key
        # Which end wrote the stream is told by its SYN (a SYN-ACK: the
        # server's), not by the port alone: a client's ephemeral port may
        # be a number a policy names for a listen endpoint nobody binds.
        sides = []
        if (st.isn is None or st.accepted) and \
                any(p.wraps("listen", src, sport) for p in policies):
            sides.append(("server", sport))
        if (st.isn is None or not st.accepted) and \
                any(p.wraps("connect", dst, dport) for p in policies):
            sides.append(("client", dport))
        judged = [s for s in sides
                  if not exempted(st, exempt.get(s), markers) and
                  not exempted(st, exempt.get((s[0], None)), markers)]
        v.exempted += 1 if sides and not judged else 0
        sides = judged
        if not sides:
            continue
        if st.isn is None:
            v.unanchored += 1
            continue
        who = " and ".join("%s shim of port %d" % s for s in sides)
        gap = st.missing()
        if gap:
            v.incomplete.append("%s (%s): %s" % (st.label(), who, gap))
        err = st.final_error()
        if err:
            v.failures.append("%s (written by the %s): not TLS records: %s; "
                              "it begins %s" % (st.label(), who, err,
                                                st.head.hex()))
        elif st.canary_found is not None:
            v.failures.append("%s (written by the %s): the plaintext %r is "
                              "on the wire" % (st.label(), who,
                                               st.canary_found[:40]))
        elif st.next:
            v.checked += 1
        else:
            v.empty += 1
    return v
