"""The scenarios of one round. Each adds its figures to a Results; run
round after round, they interleave every setup so that the drift of a
shared machine hits each alike. Nothing here asserts a time."""
import json
import math
import os
import re
import resource
import select
import subprocess
import threading
import time

from .procs import (Procs, children_cpu_seconds, core_pair, cpu_seconds, descendants, fd_count, free_port,
                    log_tail, mem_kib, run)
from .setups import Setup

CLIENTS = 16  # concurrent clients of the new-connection scenario
OPENERS = 64  # threads of the holder that opens the idle connections


class Results:
    """values[metric][column] = one figure per round; notes and the
    figures measured once (bounds, counts, ciphers) beside them."""

    def __init__(self):
        self.values = {}
        self.once = {}
        self.notes = []

    def add(self, metric, column, value):
        self.values.setdefault(metric, {}).setdefault(column, []).append(value)

    def note(self, text):
        if text not in self.notes:
            self.notes.append(text)


def rotated(items, r):
    """The setups in another order each round, so that none always runs
    first (right after the previous scenario) or last."""
    k = r % len(items)
    return items[k:] + items[:k]


def bench_client(setup, *args, timeout=600):
    return run([f"{setup.ctx.build}/apps/bench_client", "localhost", str(setup.port), *map(str, args)],
               env=setup.client_env, timeout=timeout, cpus=setup.client_cpus).split()


# ---- 1. new connections -------------------------------------------------

def new_connections(ctx, kinds, P, R, r):
    """16 concurrent clients, each connect / 1-byte round trip / close in
    a loop: full handshakes (resumption off on every side) and with
    resumption on (every side's default), with each certificate."""
    runs = [("plain", "ec", True)]
    for cert in ("ec", "rsa"):
        for resume in (False, True):
            runs += [(k, cert, resume) for k in kinds if k != "plain" and not (k == "socat" and resume)]
    for kind, cert, resume in rotated(runs, r):
        with Setup(ctx, kind, "echo", cert, resume) as s:
            used = setup_cpu(s)
            client0 = children_cpu_seconds()
            out = bench_client(s, "connect-for", P.newconn_seconds, CLIENTS)
            server_user, server_sys = used()
            client1 = children_cpu_seconds()
        rate, conns = float(out[1]), int(out[3])
        user = server_user + client1[0] - client0[0]
        system = server_sys + client1[1] - client0[1]
        per = (lambda x: x * 1e6 / conns) if conns else (lambda x: None)
        rows = ([(c, m) for c in ("ec", "rsa") for m in ("full", "resumed")] if kind == "plain"
                else [(cert, "resumed" if resume else "full")])
        for c, mode in rows:
            R.add(f"newconn.{c}.{mode}", kind, rate)
            R.add(f"cpu.{c}.{mode}", kind, per(user + system))
            R.add(f"cpusys.{c}.{mode}", kind, per(system))


def setup_cpu(s):
    """A function returning the CPU time (user, system) the processes of
    setup s (server, proxies, what they forked) have used since this call,
    in seconds."""
    pids = lambda: [d for p in s.server_side + s.client_side for d in descendants(p.pid)]
    start = cpu_seconds(pids())
    def since():
        now = cpu_seconds(pids())
        return now[0] - start[0], now[1] - start[1]
    return since


# ---- 2. bulk --------------------------------------------------------------

EXIT_GRACE = 0.5  # seconds an iperf3 client may take to exit after its results


def iperf3(setup, seconds, streams):
    """One iperf3 client run: (bits/s received, seconds it took to exit
    after printing its results, or None when it was still running after
    EXIT_GRACE and was killed). Under the shim a client's exit can linger
    for seconds, delivering to a server that no longer reads, and spin a
    core while it does: it must not overlap the next run, and the figure
    is already printed, so such a client is killed by PID."""
    argv = ["iperf3", "-c", "127.0.0.1", "-p", str(setup.port), "-t", str(seconds),
            "-P", str(streams), "-J"]
    for attempt in range(3):  # the server may still be closing the last test
        p = setup.procs.start(argv, env=setup.client_env, stdout=subprocess.PIPE)
        watchdog = threading.Timer(seconds + 60, p.kill)  # bounds the reads below
        watchdog.start()
        lines = []
        try:
            for line in p.stdout:  # the JSON document ends with a "}" line
                lines.append(line)
                if line.startswith("}"):
                    break
        finally:
            watchdog.cancel()
        printed = time.monotonic()
        try:
            p.wait(timeout=EXIT_GRACE)
            exit_s = time.monotonic() - printed
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            exit_s = None
        try:
            doc = json.loads("".join(lines))
        except ValueError:
            doc = {"error": log_tail(p)}
        if "error" not in doc and (exit_s is None or p.returncode == 0):
            return doc["end"]["sum_received"]["bits_per_second"], exit_s
        time.sleep(0.5)
    raise RuntimeError(f"iperf3 in {setup.kind}: {doc.get('error') or p.returncode}")


def bulk(ctx, kinds, P, R, r):
    """iperf3, one stream and 4 (-P 4), both ends under the shim or
    through the proxies. The shim logs at info here, for the cipher."""
    for kind in rotated(kinds, r):
        shim = kind in ("secshim", "baseline")
        with Setup(ctx, kind, "iperf3", "ec", level="info" if shim else "error") as s:
            for streams in (1, 4):
                bps, exit_s = iperf3(s, P.bulk_seconds, streams)
                R.add(f"bulk.p{streams}", kind, bps / 1e9)
                R.add(f"bulk.p{streams}.client_exit_s", kind, exit_s and round(exit_s, 2))
            if shim:
                R.once[f"cipher.{kind}"] = s.cipher()


# ---- 3. latency ----------------------------------------------------------

def latency(ctx, kinds, P, R, r):
    """P.pingpong 64-byte round trips (bench_client pingpong against
    echo_server) in each setup, and with TLS written into the programs
    ("native": the bound of any in-process TLS), P-256. The server side
    runs on one core and the client side on another: left to the
    scheduler, the two sides share a core in some runs and not in others,
    and that alone moves the round trip fourfold (docs/benchmarks.md,
    "Scenarios")."""
    cores = core_pair()
    for kind in rotated(kinds + ["native"], r):
        if kind == "native":
            out = native_pingpong(ctx, P, cores)
        else:
            with Setup(ctx, kind, "echo", "ec", cores=cores) as s:
                out = bench_client(s, "pingpong", P.pingpong, 64)
        R.add("latency.p50", kind, float(out[1]))
        R.add("latency.p99", kind, float(out[3]))


def native_pingpong(ctx, P, cores):
    """tlsloop pingpong against tlsloop's server: the latency scenario's
    round trips with OpenSSL in both programs and no shim, each side on
    its core of cores (or anywhere, None). Returns the output, split, as
    bench_client's."""
    pem, key = ctx.pki["ec"]
    tls = [pem, key, ctx.pki["ca"]]
    server_cpus, client_cpus = cores or (None, None)
    procs, port = Procs(ctx.tmp, ctx.name("native")), free_port()
    try:
        procs.start([f"{ctx.build}/bench/tlsloop", "server", str(port), "full", *tls], port=port,
                    cpus=server_cpus)
        return run([f"{ctx.build}/bench/tlsloop", "pingpong", "localhost", str(port),
                    str(P.pingpong), "64", *tls], cpus=client_cpus).split()
    finally:
        procs.stop()


# ---- 4. memory per idle connection -----------------------------------------

def read_line(proc, timeout):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"no answer from {proc.args[0]} within {timeout}s")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            return proc.stdout.readline()


def largest_count(kind, per_conn, base_fds, P):
    """The most connections the descriptor limit lets every process of the
    setup hold: (soft limit - what it holds idle - a margin of 64) over its
    descriptors per connection, in hundreds, at most P.mem_cap. stunnel
    admits no more than soft limit * 125 / 256 clients ("Connection
    rejected: too many clients"), whatever each holds."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    n = (soft - base_fds - 64) // max(per_conn, 1)
    if kind == "stunnel":
        n = min(n, soft * 125 // 256)
    return min(P.mem_cap, n // 100 * 100)


def memory(ctx, kinds, P, R, r):
    """Server RSS per idle TLS connection, (RSS with N held - RSS with 0
    held) / N, at P.mem_first and at the largest count (socat: at
    P.mem_first only). The server is bench_epoll_server; the holder is
    bench_client hold-grow (OPENERS threads opening). One connection comes
    and goes before the 0-held figure, so that what a first connection
    builds once (a TLS context) is not counted per connection."""
    for kind in rotated(kinds, r):
        t0 = time.monotonic()
        with Setup(ctx, kind, "epoll", "ec") as s:
            hold(ctx, s, P, R)
            t1 = time.monotonic()
        R.once.setdefault("mem.seconds", {}).setdefault(kind, []).append(
            [round(t1 - t0, 1), round(time.monotonic() - t0, 1)])


FORK_FEW = 10  # connections the holder opens first, for the fork figure
FORK_KINDS = ("plain", "secshim", "baseline")  # setups whose holder runs the shim (or nothing)


def time_forks(holder, s, P, R, metric):
    """The holder's fork() with what it holds open (bench_client hold-grow
    "fork M"): the median time fork() takes to return in the holder, and
    to waitpid's return. Only where the holder itself is under the shim
    (or plain): a proxy's holder is a plain process."""
    if s.kind not in FORK_KINDS:
        return
    holder.stdin.write(f"fork {P.forks}\n")
    holder.stdin.flush()
    f = read_line(holder, 300).split()
    if len(f) != 6 or f[0] != "fork_us":
        raise RuntimeError(f"{s.kind}: the holder's forks failed: {log_tail(holder)}")
    R.add(metric, s.kind, float(f[1]))
    R.add(metric + ".cycle", s.kind, float(f[3]))
    R.once.setdefault(metric + ".held", {})[s.kind] = int(f[5])
    # What fork copies the page tables of: the holder's resident memory.
    R.once.setdefault(metric + ".rss_mib", {})[s.kind] = round(mem_kib([holder.pid])[0] / 1024, 1)


def hold(ctx, s, P, R):
    kind = s.kind
    bench_client(s, "connect", 1)
    time.sleep(0.2)
    server = lambda: [p for root in s.server_side for p in descendants(root.pid)]
    watched = lambda: server() + [p for root in s.client_side for p in descendants(root.pid)]
    rss0, pss0 = mem_kib(server())
    fds0 = {p: fd_count(p) for p in watched()}
    holder = s.procs.start([f"{ctx.build}/apps/bench_client", "localhost", str(s.port),
                            "hold-grow", str(FORK_FEW), str(OPENERS)],
                           env=s.client_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        if not read_line(holder, 300).startswith("held"):
            raise RuntimeError(f"{kind}: the holder failed: {log_tail(holder)}")
        time_forks(holder, s, P, R, "fork.few")
        holder.stdin.write(f"{P.mem_first}\n")
        holder.stdin.flush()
        if not read_line(holder, 300).startswith(f"held {P.mem_first}"):
            raise RuntimeError(f"{kind}: the holder failed: {log_tail(holder)}")
        time.sleep(0.3)
        rss1, pss1 = mem_kib(server())
        # socat forks: RSS would count the children's shared pages in each.
        R.add("mem.first", kind, ((pss1 - pss0) if kind == "socat" else (rss1 - rss0)) / P.mem_first)
        R.add("mem.first.rss", kind, (rss1 - rss0) / P.mem_first)
        R.add("mem.first.pss", kind, (pss1 - pss0) / P.mem_first)
        if kind == "socat":
            return
        # Descriptors per connection in the process that needs most (the
        # holder included: under the shim it holds two each).
        per_conn, base = 1, 0
        for p in watched() + [holder.pid]:
            grown = math.ceil((fd_count(p) - fds0.get(p, 0)) / P.mem_first - 0.05)
            if grown > per_conn:
                per_conn, base = grown, fds0.get(p, 0)
        n = largest_count(kind, per_conn, base, P) if P.mem_max is None else P.mem_max
        R.once.setdefault("mem.count", {})[kind] = n
        R.once.setdefault("mem.fds_per_conn", {})[kind] = per_conn
        holder.stdin.write(f"{n}\n")
        holder.stdin.flush()
        if not read_line(holder, 600).startswith(f"held {n}"):
            raise RuntimeError(f"{kind}: the holder failed at {n}: {log_tail(holder)}")
        time.sleep(0.3)
        rss2, pss2 = mem_kib(server())
        R.add("mem.max", kind, (rss2 - rss0) / n)
        R.add("mem.max.pss", kind, (pss2 - pss0) / n)
        time_forks(holder, s, P, R, "fork.max")
    finally:
        holder.stdin.close()
        holder.wait(timeout=120)


# ---- 5. untouched descriptors ---------------------------------------------

def unused_policy(ctx):
    """One listen and one connect endpoint on ports below 1024 that nothing
    here binds or connects to (fdloop's own ports are ephemeral)."""
    path = os.path.join(ctx.tmp, "unused.cfg")
    if not os.path.exists(path):
        pem, key = ctx.pki["rsa"]
        with open(path, "w") as f:
            f.write(f"""version = 1;
log = {{ level = "error"; file = "stderr"; }};
endpoints = (
  {{ name = "unused-server"; listen = "127.0.0.1:9";
     certificate = "{pem}"; certificate-key = "{key}"; }},
  {{ name = "unused-client"; connect = "127.0.0.1:7"; trusted-ca = "{ctx.pki['ca']}"; }}
);
""")
    return path


def preload_env(ctx, kind, policy):
    lib = ctx.baseline if kind == "baseline" else ctx.build
    return {"LD_PRELOAD": f"{lib}/libsecshim.so", "SECSHIM_CONFIG": policy}


# The syscall guard off (docs/design.md, "The syscall guard"): the same
# preload without its seccomp filter, which puts every system call of the
# process on the kernel's slower entry path. The column says what of a
# figure is the shim's code and what the filter's.
NOGUARD = {"SECSHIM_SYSCALL_GUARD": "off"}


def fd_calls(ctx, kinds, P, R, r):
    """P.fd_calls 1-byte read/write calls on a pipe and on a loopback TCP
    connection no endpoint matches, without the preload, with it, with it
    but the syscall guard off ("noguard"), and without the shim but with
    a seccomp filter of one instruction that allows everything ("seccomp":
    what the kernel charges for any filter, the floor under the guard)."""
    with_secshim = ("noguard", "seccomp")
    columns = ["none"] + [k for k in ("secshim", "noguard", "seccomp", "baseline")
                          if k in kinds or (k in with_secshim and "secshim" in kinds)]
    for mode in ("pipe", "tcp"):
        for col in rotated(columns, r):
            if col == "none":
                env = {}
            elif col == "noguard":
                env = {**preload_env(ctx, "secshim", unused_policy(ctx)), **NOGUARD}
            elif col == "seccomp":
                env = {"LD_PRELOAD": f"{ctx.build}/bench/preload/seccomp_allow.so"}
            else:
                env = preload_env(ctx, col, unused_policy(ctx))
            out = run([f"{ctx.build}/bench/fdloop", mode, str(P.fd_calls)], env=env).split()
            R.add(f"fd.{mode}", col, float(out[5]))  # the median batch's ns per call


# ---- 6. process start -------------------------------------------------------

def start_policies(ctx):
    empty = os.path.join(ctx.tmp, "empty.cfg")
    disabled = os.path.join(ctx.tmp, "disabled.cfg")
    with open(empty, "w") as f:
        f.write('version = 1;\nlog = { level = "error"; file = "stderr"; };\nendpoints = ( );\n')
    with open(disabled, "w") as f:
        f.write(f"""version = 1;
log = {{ level = "error"; file = "stderr"; }};
endpoints = (
  {{ name = "off"; connect = "127.0.0.1:7"; trusted-ca = "{ctx.pki['ca']}"; enabled = false; }}
);
""")
    return {"empty": empty, "disabled": disabled, "unused": unused_policy(ctx)}


def process_start(ctx, kinds, P, R, r):
    """P.start_runs runs of /bin/true one after the other (posix_spawn +
    waitpid in build/bench/startloop), in an environment of nothing but
    the preload variables."""
    policies = start_policies(ctx)
    configs = [("none", None, None, {})] + [(name, "secshim", path, {})
                                           for name, path in policies.items()]
    configs.append(("unused-noguard", "secshim", policies["unused"], NOGUARD))
    if "baseline" in kinds:
        configs.append(("baseline-unused", "baseline", policies["unused"], {}))
    for col, kind, policy, extra in rotated(configs, r):
        env = [] if kind is None else [a for k, v in {**preload_env(ctx, kind, policy), **extra}.items()
                                       for a in ("-e", f"{k}={v}")]
        out = run([f"{ctx.build}/bench/startloop", str(P.start_runs), *env, "--", "/bin/true"]).split()
        R.add("start", col, float(out[1]))


# ---- bounds -------------------------------------------------------------

def handshake_bounds(ctx, kinds, P, R, r):
    """The library's own handshake rate (build/bench/hsloop): client and
    server SSL objects over a BIO pair, one process per core ("library",
    the bound of the targets); and the same loop in one process of CLIENTS
    threads sharing its two contexts ("threads"), as the new-connection
    scenario's threaded client and server share theirs. Each also as CPU
    time per handshake. Then the kernel's floor: shaped_connections."""
    procs = os.cpu_count() or 1
    loops = [(c, m, t) for c in ("ec", "rsa") for m in ("full", "resumed") for t in ("library", "threads")]
    for cert, mode, col in rotated(loops, r):
        pem, key = ctx.pki[cert]
        shape = [str(procs)] if col == "library" else ["1"]
        extra = [] if col == "library" else [str(CLIENTS)]
        cpu0 = children_cpu_seconds()
        out = run([f"{ctx.build}/bench/hsloop", mode, str(P.hs_seconds), *shape, pem, key,
                   ctx.pki["ca"], "localhost", *extra]).split()
        cpu1 = children_cpu_seconds()
        R.add(f"lib.{cert}.{mode}", col, float(out[1]))
        R.add(f"cpu.{cert}.{mode}", col, (sum(cpu1) - sum(cpu0)) * 1e6 / int(out[5]))
        R.add(f"cpusys.{cert}.{mode}", col, (cpu1[1] - cpu0[1]) * 1e6 / int(out[5]))
        firsts = int(shape[0]) * (int(extra[0]) if extra else 1)  # each loop's first is full
        if mode == "resumed" and int(out[7]) < int(out[5]) - firsts:
            R.note(f"hsloop {cert} resumed ({col}): only {out[7]} of {out[5]} handshakes resumed")
    shaped_connections(ctx, P, R, r)
    native_connections(ctx, P, R, r)


# The segments of one secshim connection of the new-connection scenario,
# as the sizes of each side's send() calls (TLS 1.3; strace -e sendto of
# bench_client connect against echo_server, both under the shim, commit
# bd060ca): ClientHello; the server's flight; the client's Finished, then
# its byte's record; with resumption the session ticket, then the reply's
# record; the two close_notify. build/bench/shapeloop carries them over
# plain TCP.
SHAPES = {
    ("ec", "full"): "c239 s1843 c64+23 s23 c24 s24",
    ("rsa", "full"): "c239 s2220 c64+23 s23 c24 s24",
    ("ec", "resumed"): "c530 s225 c64+23 s287+23 c24 s24",
    ("rsa", "resumed"): "c530 s225 c64+23 s287+23 c24 s24",
}


def shaped_connections(ctx, P, R, r):
    """The kernel's own cost of secshim's connections: plain TCP carrying
    the same segments (SHAPES) with the new-connection scenario's 16
    clients (build/bench/shapeloop), as a rate and as CPU time per
    connection (server and client)."""
    for cert, mode in rotated(sorted(SHAPES), r):
        script = SHAPES[(cert, mode)]
        procs, port = Procs(ctx.tmp, ctx.name("shaped")), free_port()
        try:
            server = procs.start([f"{ctx.build}/bench/shapeloop", "server", str(port), script], port=port)
            server0 = cpu_seconds([server.pid])
            client0 = children_cpu_seconds()
            out = run([f"{ctx.build}/bench/shapeloop", "client", "localhost", str(port),
                       str(P.newconn_seconds), str(CLIENTS), script]).split()
            client1 = children_cpu_seconds()
            server1 = cpu_seconds([server.pid])
        finally:
            procs.stop()
        rate, conns = float(out[1]), int(out[3])
        used = [server1[i] - server0[i] + client1[i] - client0[i] for i in (0, 1)]
        R.add(f"shape.{cert}.{mode}", "shaped", rate)
        R.add(f"cpu.{cert}.{mode}", "shaped", sum(used) * 1e6 / conns if conns else None)
        R.add(f"cpusys.{cert}.{mode}", "shaped", used[1] * 1e6 / conns if conns else None)


def native_connections(ctx, P, R, r):
    """TLS written into the program, no shim: OpenSSL over TCP in the
    new-connection scenario's shape and with secshim's settings
    (build/bench/tlsloop), as a rate ("native") and as CPU time per
    connection (server and client). secshim's figure over this one is
    the shim's own share of a connection."""
    for cert, mode in rotated(sorted(SHAPES), r):
        pem, key = ctx.pki[cert]
        tls = [pem, key, ctx.pki["ca"]]
        procs, port = Procs(ctx.tmp, ctx.name("native")), free_port()
        try:
            server = procs.start([f"{ctx.build}/bench/tlsloop", "server", str(port), mode, *tls], port=port)
            server0 = cpu_seconds([server.pid])
            client0 = children_cpu_seconds()
            out = run([f"{ctx.build}/bench/tlsloop", "client", "localhost", str(port), mode,
                       str(P.newconn_seconds), str(CLIENTS), *tls]).split()
            client1 = children_cpu_seconds()
            server1 = cpu_seconds([server.pid])
        finally:
            procs.stop()
        rate, conns, reused = float(out[1]), int(out[3]), int(out[5])
        if mode == "resumed" and reused < conns - CLIENTS:  # each thread's first is full
            R.note(f"tlsloop {cert} resumed: only {reused} of {conns} handshakes resumed")
        used = [server1[i] - server0[i] + client1[i] - client0[i] for i in (0, 1)]
        R.add(f"native.{cert}.{mode}", "native", rate)
        R.add(f"cpu.{cert}.{mode}", "native", sum(used) * 1e6 / conns if conns else None)
        R.add(f"cpusys.{cert}.{mode}", "native", used[1] * 1e6 / conns if conns else None)


MALLOC_HEADER = 16  # glibc: an 8-byte size field, chunks in 16-byte steps


def idle_floor(ctx, count):
    """OpenSSL's own memory per idle server connection (build/bench/hsloop
    idle): {cert: (bytes, blocks, KiB with about MALLOC_HEADER per block)}."""
    out = {}
    for cert in ("ec", "rsa"):
        pem, key = ctx.pki[cert]
        f = run([f"{ctx.build}/bench/hsloop", "idle", str(count), pem, key, ctx.pki["ca"],
                 "localhost"]).split()
        nbytes, blocks = float(f[1]), float(f[3])
        out[cert] = (nbytes, blocks, (nbytes + blocks * MALLOC_HEADER) / 1024)
    return out


def record_round_trip(ctx, count):
    """The library's own cost of one 64-byte round trip in memory, ns
    (build/bench/hsloop records, AES-128-GCM, the P-256 certificate)."""
    pem, key = ctx.pki["ec"]
    f = run([f"{ctx.build}/bench/hsloop", "records", str(count), pem, key, ctx.pki["ca"],
             "localhost"]).split()
    return float(f[1])


SPEED_CIPHERS = {"AES-128-GCM": "aes-128-gcm", "AES-256-GCM": "aes-256-gcm",
                 "ChaCha20-Poly1305": "chacha20-poly1305"}
SUITE_CIPHER = {"TLS_AES_128_GCM_SHA256": "AES-128-GCM", "TLS_AES_256_GCM_SHA384": "AES-256-GCM",
                "TLS_CHACHA20_POLY1305_SHA256": "ChaCha20-Poly1305"}


def openssl_speed(seconds):
    """openssl speed on one core: the AEADs at 16 KiB (bytes/s), P-256 and
    RSA-2048 sign and verify, X25519 (operations/s)."""
    out = {}
    for name, evp in SPEED_CIPHERS.items():
        text = run(["openssl", "speed", "-mr", "-evp", evp, "-bytes", "16384", "-seconds", str(seconds)])
        m = re.search(r"^\+F:\d+:[^:]+:([0-9.]+)", text, re.M)
        out[name] = float(m.group(1))
    for alg, tag, keys in (("ecdsap256", "F4", ("ecdsap256 sign", "ecdsap256 verify")),
                           ("rsa2048", "F2", ("rsa2048 sign", "rsa2048 verify")),
                           ("ecdhx25519", "F5", ("ecdhx25519",))):
        text = run(["openssl", "speed", "-mr", "-seconds", str(seconds), alg])
        m = re.search(rf"^\+{tag}:\d+:\d+:([0-9.]+):([0-9.]+)", text, re.M)
        out[keys[0]] = float(m.group(1))
        if len(keys) > 1:
            out[keys[1]] = float(m.group(2))
    return out
