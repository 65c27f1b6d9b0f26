"""The report: tables on stdout, build/bench.json (every round's figure,
the medians, the ratios) and build/bench.svg (the ratios against their
targets, drawn with gnuplot). Targets are printed as PASS/MISS beside the
figure; nothing is asserted."""
import json
import os
import shutil
import statistics
import subprocess

from . import scenarios
from .setups import CERTS

SETUP_METRICS = [
    # id, title, unit, better
    ("newconn.ec.full", "new connections, P-256, full handshakes", "conn/s", "higher"),
    ("newconn.ec.resumed", "new connections, P-256, resumption on", "conn/s", "higher"),
    ("newconn.rsa.full", "new connections, RSA-2048, full handshakes", "conn/s", "higher"),
    ("newconn.rsa.resumed", "new connections, RSA-2048, resumption on", "conn/s", "higher"),
    ("bulk.p1", "bulk, iperf3, 1 stream", "Gbit/s", "higher"),
    ("bulk.p4", "bulk, iperf3, 4 streams", "Gbit/s", "higher"),
    ("latency.p50", "latency, 64-byte ping-pong, p50", "us", "lower"),
    ("latency.p99", "latency, 64-byte ping-pong, p99", "us", "lower"),
    ("mem.first", "server memory per idle conn, at {first}", "KiB", "lower"),
    ("mem.max", "server memory per idle conn, at the largest count", "KiB", "lower"),
]
OTHER_METRICS = {
    "fd.pipe": ("1-byte read/write on a pipe", "ns/call", "lower"),
    "fd.tcp": ("1-byte read/write on an unmatched TCP socket", "ns/call", "lower"),
    "start": ("process start, /bin/true", "ms/run", "lower"),
    "lib.ec.full": ("library full handshakes, P-256", "hs/s", "higher"),
    "lib.ec.resumed": ("library resumed handshakes, P-256", "hs/s", "higher"),
    "lib.rsa.full": ("library full handshakes, RSA-2048", "hs/s", "higher"),
    "lib.rsa.resumed": ("library resumed handshakes, RSA-2048", "hs/s", "higher"),
    "native.ec.full": ("TLS written into the program, full handshakes, P-256", "conn/s", "higher"),
    "native.ec.resumed": ("TLS written into the program, resumed handshakes, P-256", "conn/s", "higher"),
    "native.rsa.full": ("TLS written into the program, full handshakes, RSA-2048", "conn/s", "higher"),
    "native.rsa.resumed": ("TLS written into the program, resumed handshakes, RSA-2048", "conn/s", "higher"),
    "cpu.ec.full": ("CPU per connection, P-256, full handshakes", "us", "lower"),
    "cpu.ec.resumed": ("CPU per connection, P-256, resumption on", "us", "lower"),
    "cpu.rsa.full": ("CPU per connection, RSA-2048, full handshakes", "us", "lower"),
    "cpu.rsa.resumed": ("CPU per connection, RSA-2048, resumption on", "us", "lower"),
}
CPU_COLUMNS = ["plain", "shaped", "native", "secshim", "stunnel", "socat", "baseline", "library", "threads"]
START_COLUMNS = [
    ("none", "no preload"),
    ("empty", "preload, empty policy (no endpoint)"),
    ("disabled", "preload, one disabled endpoint"),
    ("unused", "preload, a listen and a connect endpoint, unused"),
    ("unused-noguard", "the same, SECSHIM_SYSCALL_GUARD=off"),
    ("baseline-unused", "baseline preload, the same policy"),
]


def medians(R):
    """The median of each metric's rounds (None, a figure that could not be
    taken, is left out)."""
    out = {}
    for m, cols in R.values.items():
        for c, v in cols.items():
            v = [x for x in v if x is not None]
            if v:
                out.setdefault(m, {})[c] = statistics.median(v)
    return out


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(x, width=10, digits=1):
    return f"{'n/a':>{width}}" if x is None else f"{x:{width}.{digits}f}"


def setup_table(R, M, kinds, P):
    others = [k for k in ("plain", "stunnel", "socat", "baseline") if k in kinds]
    lines = []
    head = f"{'metric':52} {'unit':7}" + "".join(f"{k:>10}" for k in kinds)
    head += "".join(f"{'secshim/' + k:>18}" for k in others)
    lines.append(head)
    for mid, title, unit, better in SETUP_METRICS:
        if mid not in M:
            continue
        med = M[mid]
        row = f"{title.format(first=P.mem_first):52} {unit:7}"
        row += "".join(fmt(med.get(k)) for k in kinds)
        row += "".join(fmt(ratio(med.get("secshim"), med.get(k)), 18, 2) for k in others)
        lines.append(row + f"   ({better} is better)")
    return lines


def targets(R, M, bounds):
    """[(label, value, op, target, unit)]: each target of issue 9 from this
    run's medians (value None when a figure is missing)."""
    g = lambda m, c: M.get(m, {}).get(c)
    out = []
    for cert in ("ec", "rsa"):
        out.append((f"new connections secshim/stunnel, defaults, {CERTS[cert]}",
                    ratio(g(f"newconn.{cert}.resumed", "secshim"), g(f"newconn.{cert}.resumed", "stunnel")),
                    ">=", 2.0, "x"))
    for mode, what in (("full", "full handshakes"), ("resumed", "resumed handshakes")):
        for cert in ("ec", "rsa"):
            out.append((f"{what} secshim/library, {CERTS[cert]}",
                        ratio(g(f"newconn.{cert}.{mode}", "secshim"), g(f"lib.{cert}.{mode}", "library")),
                        ">=", 0.8, "x"))
    for p in ("p1", "p4"):
        out.append((f"bulk secshim/stunnel, {p[1]} stream{'s' if p != 'p1' else ''}",
                    ratio(g(f"bulk.{p}", "secshim"), g(f"bulk.{p}", "stunnel")), ">=", 3.5, "x"))
    cipher = bounds.get("negotiated")
    speed = bounds.get("speed", {}).get(cipher) if cipher else None
    bulk = g("bulk.p1", "secshim")
    out.append((f"bulk secshim/{cipher or 'cipher'} 1-core speed, 1 stream",
                ratio(bulk * 1e9 / 8 if bulk else None, speed), ">=", 0.75, "x"))
    out.append(("latency p50 secshim/plain", ratio(g("latency.p50", "secshim"), g("latency.p50", "plain")),
                "<=", 1.3, "x"))
    for mode in ("pipe", "tcp"):
        out.append((f"untouched descriptors, {mode}, preload/none",
                    ratio(g(f"fd.{mode}", "secshim"), g(f"fd.{mode}", "none")), "<=", 1.02, "x"))
    n = R.once.get("mem.count", {}).get("secshim")
    out.append((f"memory per idle TLS connection at {n} (>= 8000)", g("mem.max", "secshim"), "<=", 10.0, "KiB"))
    for col, what in (("unused", "unused endpoints"), ("empty", "empty policy")):
        a, b = g("start", col), g("start", "none")
        out.append((f"process start over no preload, {what}", a - b if a is not None and b is not None else None,
                    "<=", 1.0, "ms"))
    return out


def model_bounds(M, bounds):
    """Bounds derived from this run's figures rather than measured, each
    labelled as a model: what plain TCP's own cost leaves for TLS."""
    g = lambda m, c: M.get(m, {}).get(c)
    out = []
    plain = g("bulk.p1", "plain")
    cipher = bounds.get("negotiated")
    speed = bounds.get("speed", {}).get(cipher) if cipher else None
    if plain and speed:
        target = 0.75 * speed * 8 / 1e9
        both = 1 / (1 / plain + 1 / (speed * 8 / 1e9))  # Gbit/s, both
        out.append(("bulk", f"plain TCP itself carries {plain:.1f} Gbit/s here, the 75 % target asks "
                            f"{target:.1f}; plain TCP's per-byte cost plus one {cipher} pass per side allows "
                            f"about {both:.1f} Gbit/s ({both / (g('bulk.p1', 'stunnel') or float('nan')):.2f}x "
                            f"stunnel)"))
    p50, rec = g("latency.p50", "plain"), bounds.get("record_rtt_ns")
    if p50 and rec:
        floor = p50 + rec / 1000
        out.append(("latency", f"plain TCP's p50 {p50:.1f} us plus the library's round trip {rec / 1000:.1f} us "
                               f"= {floor:.1f} us ({floor / p50:.2f}x plain; the target asks 1.3x)"))
    for cert in ("ec", "rsa"):
        for mode in ("full", "resumed"):
            lib, conn = g(f"lib.{cert}.{mode}", "library"), g(f"newconn.{cert}.{mode}", "plain")
            if lib and conn:
                both = 1 / (1 / lib + 1 / conn)
                out.append((f"{mode} handshakes, {CERTS[cert]}",
                            f"the library's {lib:.0f}/s plus plain TCP's cost of a connection "
                            f"({conn:.0f}/s) allow about {both:.0f}/s ({both / lib:.2f} of the library's)"))
            shaped, shim = g(f"shape.{cert}.{mode}", "shaped"), g(f"newconn.{cert}.{mode}", "secshim")
            if lib and shaped:
                both = 1 / (1 / lib + 1 / shaped)
                out.append((f"{mode} handshakes, {CERTS[cert]}, with TLS's segments",
                            f"the library's {lib:.0f}/s plus plain TCP carrying secshim's segments "
                            f"({shaped:.0f}/s) allow about {both:.0f}/s ({both / lib:.2f} of the library's)" +
                            (f"; secshim {shim:.0f}/s is {shim / both:.2f} of that" if shim else "")))
    return out


def native_bounds(M):
    """TLS written into the program (tlsloop) against the library's rate
    and secshim's, and its ping-pong against plain TCP's and secshim's:
    what any in-process TLS reaches on this machine, and the shim's own
    share. Measured, not modelled."""
    out = []
    for cert in ("ec", "rsa"):
        for mode in ("full", "resumed"):
            lib = M.get(f"lib.{cert}.{mode}", {}).get("library")
            native = M.get(f"native.{cert}.{mode}", {}).get("native")
            shim = M.get(f"newconn.{cert}.{mode}", {}).get("secshim")
            if lib and native:
                out.append((f"{mode} handshakes, {CERTS[cert]}",
                            f"TLS written into the program {native:.0f}/s is {native / lib:.2f} of the "
                            f"library's {lib:.0f}/s" +
                            (f"; secshim {shim:.0f}/s is {shim / native:.2f} of it" if shim else "")))
    plain, native, shim = (M.get("latency.p50", {}).get(k) for k in ("plain", "native", "secshim"))
    if plain and native:
        out.append(("latency p50", f"TLS written into the program {native:.1f} us is {native / plain:.2f}x "
                    f"plain TCP's {plain:.1f} us" +
                    (f"; secshim {shim:.1f} us is {shim / native:.2f}x it" if shim else "")))
    return out


def cpu_table(M):
    """The CPU each setup spends per new connection beside the library's
    per handshake, and what is left of secshim's once plain TCP's and the
    threaded library's are taken off: the part neither explains."""
    rows = [m for m in ("cpu.ec.full", "cpu.ec.resumed", "cpu.rsa.full", "cpu.rsa.resumed") if m in M]
    if not rows:
        return []
    cols = [c for c in CPU_COLUMNS if any(c in M[m] for m in rows)]
    rests = ("plain", "shaped")
    lines = [f"{'':52}" + "".join(f"{c:>10}" for c in cols) +
             "".join(f"{'secshim-' + b + '-threads':>25}" for b in rests) + f"{'secshim-native':>25}"]
    for m in rows:
        for sub, what in (("", "all"), ("sys", "of it the kernel's")):
            med = M.get(m.replace("cpu.", f"cpu{sub}."), {})
            title = f"{OTHER_METRICS[m][0][len('CPU per connection, '):]}, {what}"
            line = f"{title:52}" + "".join(fmt(med.get(c), 10, 0) for c in cols)
            for base in rests:
                parts = [med.get(c) for c in ("secshim", base, "threads")]
                rest = parts[0] - parts[1] - parts[2] if None not in parts else None
                share = f" ({rest / parts[0] * 100:+.0f} %)" if rest and parts[0] else ""
                line += f"{fmt(rest, 15, 0)}{share:>10}"
            line += own_share(med.get("secshim"), med.get("native"))
            lines.append(line)
    return lines


def own_share(shim, native):
    """The CPU table's last column: secshim less TLS written into the
    program (tlsloop), what the shim itself costs a connection."""
    if shim is None or native is None:
        return f"{fmt(None, 15, 0)}{'':>10}"
    rest = shim - native
    return f"{fmt(rest, 15, 0)}{f' ({rest / shim * 100:+.0f} %)':>10}"


def status(label, value, op, target, R):
    if value is None:
        return "n/a"
    ok = value >= target if op == ">=" else value <= target
    if label.startswith("memory") and (R.once.get("mem.count", {}).get("secshim") or 0) < 8000:
        ok = False  # the target is at 8,000 connections or more
    return "PASS" if ok else "MISS"


def print_report(R, kinds, P, bounds, info):
    M = medians(R)
    say = print
    say(f"\nsecshim benchmark, {info['mode']}: medians of {P.rounds} interleaved rounds; "
        f"TLS 1.3, loopback, {info['machine']['cores']} cores")
    say(f"commit {info['commit']}, {info['date']}, {info['machine']['cpu']}")
    if P.quick:
        say("QUICK RUN (make bench-quick): fewer rounds and shorter, smaller runs than make bench; "
            "the figures are rougher")
    say("")
    say(f"== Setups side by side (new connections: {16} concurrent clients, connect / 1-byte round trip / close, "
        f"{P.newconn_seconds:g} s a run; bulk: iperf3 -t {P.bulk_seconds:g}; latency: {P.pingpong} round trips; "
        "bulk, latency and memory with the P-256 certificate)")
    for line in setup_table(R, M, kinds, P):
        say(line)
    counts = R.once.get("mem.count", {})
    fds = R.once.get("mem.fds_per_conn", {})
    if counts:
        say("   largest count: " + ", ".join(
            f"{k} {counts[k]} ({fds[k]} descriptor{'s' if fds[k] > 1 else ''} per connection in its "
            "busiest process)" for k in kinds if k in counts) +
            f"; soft RLIMIT_NOFILE {P.nofile}" +
            (f", stunnel admits at most {P.nofile * 125 // 256} clients" if "stunnel" in counts else "") +
            ("" if P.mem_max is None else
                                                 f" (quick: {P.mem_max}, not the largest)"))
    if "socat" in kinds:
        say("   socat: memory is PSS (it forks a process per connection, whose shared pages RSS would count "
            "in each) and at the first count only: at the largest it would be that many processes per side; "
            "socat cannot resume (a fresh process and context per connection): its resumed rows are n/a")
    for k in ("secshim", "baseline"):
        waits = [w for p in ("p1", "p4") for w in R.values.get(f"bulk.{p}.client_exit_s", {}).get(k, [])]
        killed = sum(w is None for w in waits)
        if killed:
            say(f"   {k}: {killed} of {len(waits)} iperf3 clients were still exiting {scenarios.EXIT_GRACE:g} s after "
                "printing their results (the shim's exit linger, which spins a core) and were killed by PID; "
                "their figures stand")
    if not R.once.get("resumption.secshim"):
        say("   secshim resumption option not supported by this build: its full-handshake rows run with its "
            "defaults (the connect endpoints of this build never resume)")

    say("")
    say(f"== Untouched descriptors: {P.fd_calls} 1-byte calls (build/bench/fdloop), ns per call")
    cols = [c for c in ("none", "secshim", "noguard", "seccomp", "baseline") if c in R.values.get("fd.pipe", {})]
    say(f"{'':52}" + "".join(f"{c:>12}" for c in cols) +
        f"{'secshim/none':>14}{'noguard/none':>14}{'seccomp/none':>14}")
    for mid in ("fd.pipe", "fd.tcp"):
        if mid in M:
            say(f"{OTHER_METRICS[mid][0]:52}" + "".join(fmt(M[mid].get(c), 12) for c in cols) +
                fmt(ratio(M[mid].get("secshim"), M[mid].get("none")), 14, 3) +
                fmt(ratio(M[mid].get("noguard"), M[mid].get("none")), 14, 3) +
                fmt(ratio(M[mid].get("seccomp"), M[mid].get("none")), 14, 3))
    say("   noguard: the preload with SECSHIM_SYSCALL_GUARD=off; seccomp: no shim, a one-instruction "
        "filter that allows every call (test/bench/preload/seccomp_allow.c). secshim against seccomp "
        "is the guard's own filter over the kernel's price of any filter")

    if "fork.few" in M:
        say("")
        say("== fork() in the memory scenario's holder (bench_client hold-grow, the connecting side), "
            f"median of {P.forks} forks, microseconds: fork's return in the parent / fork to waitpid")
        cols = [c for c in scenarios.FORK_KINDS if c in M["fork.few"]]
        say(f"{'':52}" + "".join(f"{c:>20}" for c in cols))
        for mid in ("fork.few", "fork.max"):
            if mid not in M:
                continue
            held = R.once.get(mid + ".held", {})
            say(f"{'connections open: ' + ', '.join(f'{c} {held.get(c)}' for c in cols):52}" +
                "".join(f"{fmt(M[mid].get(c), 9)} /{fmt(M.get(mid + '.cycle', {}).get(c), 9)}" for c in cols))
            rss = R.once.get(mid + ".rss_mib", {})
            say(f"{'   the holder resident, MiB':52}" + "".join(f"{fmt(rss.get(c), 20)}" for c in cols))

    if "start" in M:
        say("")
        say(f"== Process start: {P.start_runs} runs of /bin/true a round (build/bench/startloop), ms per run")
        none = M["start"].get("none")
        for col, what in START_COLUMNS:
            if col in M["start"]:
                v = M["start"][col]
                extra = "" if col == "none" else f"   {v - none:+.3f} ms over no preload"
                say(f"   {what:56}{v:9.3f}{extra}")

    say("")
    say("== Bounds, measured in this run")
    speed = bounds.get("speed", {})
    if speed:
        say("   openssl speed, one core, 16 KiB blocks: " + ", ".join(
            f"{c} {speed[c] / 1e9:.2f} GB/s" for c in ("AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305")))
        say(f"   openssl speed: P-256 sign {speed['ecdsap256 sign']:.0f}/s verify {speed['ecdsap256 verify']:.0f}/s, "
            f"RSA-2048 sign {speed['rsa2048 sign']:.0f}/s verify {speed['rsa2048 verify']:.0f}/s, "
            f"X25519 {speed['ecdhx25519']:.0f}/s")
    lib = [(m, M[m]["library"]) for m in ("lib.ec.full", "lib.ec.resumed", "lib.rsa.full", "lib.rsa.resumed")
           if "library" in M.get(m, {})]
    if lib:
        say(f"   library handshakes (build/bench/hsloop, {os.cpu_count()} processes, BIO pair, "
            f"{P.hs_seconds:g} s a run): " + ", ".join(f"{OTHER_METRICS[m][0][8:]} {v:.0f}/s" for m, v in lib))
    lib = [(m, M[m]["threads"]) for m in ("lib.ec.full", "lib.ec.resumed", "lib.rsa.full", "lib.rsa.resumed")
           if "threads" in M.get(m, {})]
    if lib:
        say(f"   library handshakes with threads (build/bench/hsloop, 1 process of {scenarios.CLIENTS} threads "
            "sharing its contexts): " + ", ".join(f"{OTHER_METRICS[m][0][8:]} {v:.0f}/s" for m, v in lib))
    for k in ("secshim", "baseline"):
        suite = R.once.get(f"cipher.{k}")
        if suite:
            say(f"   negotiated by {k} (its log, bulk run): {suite}")
    for cert, (nbytes, blocks, kib) in bounds.get("idle_floor", {}).items():
        say(f"   OpenSSL's own memory per idle server connection, {CERTS[cert]} (build/bench/hsloop idle): "
            f"{nbytes:.0f} bytes in {blocks:.1f} blocks, about {kib:.1f} KiB with malloc's headers")
    if bounds.get("record_rtt_ns"):
        say(f"   library records (build/bench/hsloop records, in memory, AES-128-GCM): a 64-byte round trip "
            f"(two records sealed, two opened) {bounds['record_rtt_ns'] / 1000:.2f} us")
    shaped = [(m, M[m]["shaped"]) for m in ("shape.ec.full", "shape.ec.resumed", "shape.rsa.full",
                                            "shape.rsa.resumed") if "shaped" in M.get(m, {})]
    if shaped:
        say(f"   plain TCP carrying secshim's segments (build/bench/shapeloop, {scenarios.CLIENTS} clients, "
            "the sizes of scenarios.SHAPES): " + ", ".join(
                f"{CERTS[m.split('.')[1]]} {m.split('.')[2]} {v:.0f} conn/s" for m, v in shaped))
    native = [(m, M[m]["native"]) for m in ("native.ec.full", "native.ec.resumed", "native.rsa.full",
                                            "native.rsa.resumed") if "native" in M.get(m, {})]
    if native:
        say(f"   TLS written into the program (build/bench/tlsloop: OpenSSL over TCP in echo_server's and "
            f"bench_client's shape, {scenarios.CLIENTS} clients, no shim): " + ", ".join(
                f"{CERTS[m.split('.')[1]]} {m.split('.')[2]} {v:.0f} conn/s" for m, v in native))
    for label, value in model_bounds(M, bounds):
        say(f"   model: {label}: {value}")
    for label, value in native_bounds(M):
        say(f"   measured: {label}: {value}")
    cpu = cpu_table(M)
    if cpu:
        say("")
        say("== CPU per new connection, microseconds: every process of a setup (server, proxies, client); "
            "shaped: plain TCP carrying secshim's segments (shapeloop); native: TLS written into the "
            "program (tlsloop); library: hsloop's client and server, "
            f"one process per core; threads: hsloop in one process of {scenarios.CLIENTS} threads")
        for line in cpu:
            say(line)

    say("")
    say("== secshim against its targets (issue 9; a report, nothing is asserted)")
    T = targets(R, M, bounds)
    for label, value, op, target, unit in T:
        say(f"   {label:62} {fmt(value, 9, 3)} {unit:4} target {op} {target:<5g} "
            f"{status(label, value, op, target, R)}")
    for n in R.notes:
        say(f"   note: {n}")
    return M, T


def write_json(path, R, M, T, kinds, P, bounds, info):
    doc = dict(info)
    doc.update({
        "setups": kinds,
        "parameters": {k: v for k, v in vars(P).items()},
        "metrics": {m: {"title": (dict((a, (b, c, d)) for a, b, c, d in SETUP_METRICS).get(m)
                                  or OTHER_METRICS.get(m, (m, "", ""))),
                        "rounds": cols, "median": M.get(m, {})}
                    for m, cols in R.values.items()},
        "ratios": {m: {f"secshim/{k}": ratio(M[m].get("secshim"), M[m].get(k))
                       for k in kinds if k != "secshim" and k in M[m]}
                   for m, _, _, _ in SETUP_METRICS if m in M},
        "measured_once": R.once,
        "bounds": bounds,
        "targets": [{"label": l, "value": v, "op": o, "target": t, "unit": u,
                     "status": status(l, v, o, t, R)} for l, v, o, t, u in T],
        "notes": R.notes,
    })
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)


GNUPLOT = r"""set terminal svg size 1200,640 dynamic enhanced font "sans,11" background "white"
set output "{svg}"
set datafile separator "\t"
set style fill solid 0.85 border -1
set boxwidth 0.7
set grid ytics
set xtics rotate by 40 right nomirror noenhanced font ",10"
set key off
set bmargin 11
set lmargin 12
set multiplot title "secshim against the targets of issue 9 ({title}): bars this run (green PASS, orange MISS), red line the target" noenhanced
bar(f) = f > 0 ? 0x2e8b57 : 0xe07020
set size 0.66,0.95
set origin 0,0
set title "ratios (x); the last four: lower is better"
set yrange [0:{ratios_max}]
plot "{ratios}" using 0:2:(bar($4)):xtic(1) with boxes lc rgb variable, \
     "" using ($0-0.4):3:(0.8):(0) with vectors nohead lw 3 lc rgb "red", \
     "" using 0:2:(sprintf("%.2f", $2)) with labels offset 0,0.6 font ",9"
set size 0.17,0.95
set origin 0.66,0
set lmargin 8
set title "KiB per idle TLS conn"
set yrange [0:{memory_max}]
plot "{memory}" using 0:2:(bar($4)):xtic(1) with boxes lc rgb variable, \
     "" using ($0-0.4):3:(0.8):(0) with vectors nohead lw 3 lc rgb "red", \
     "" using 0:2:(sprintf("%.1f", $2)) with labels offset 0,0.6 font ",9"
set size 0.17,0.95
set origin 0.83,0
set title "ms over no preload"
set yrange [0:{start_max}]
plot "{start}" using 0:2:(bar($4)):xtic(1) with boxes lc rgb variable, \
     "" using ($0-0.4):3:(0.8):(0) with vectors nohead lw 3 lc rgb "red", \
     "" using 0:2:(sprintf("%.2f", $2)) with labels offset 0,0.6 font ",9"
unset multiplot
"""

SHORT = [  # label prefix -> bar name in the chart
    ("new connections secshim/stunnel, defaults, ECDSA", "conn/s vs stunnel P-256"),
    ("new connections secshim/stunnel, defaults, RSA", "conn/s vs stunnel RSA"),
    ("full handshakes secshim/library, ECDSA", "full hs vs library P-256"),
    ("full handshakes secshim/library, RSA", "full hs vs library RSA"),
    ("resumed handshakes secshim/library, ECDSA", "resumed vs library P-256"),
    ("resumed handshakes secshim/library, RSA", "resumed vs library RSA"),
    ("bulk secshim/stunnel, 1", "bulk vs stunnel 1 stream"),
    ("bulk secshim/stunnel, 4", "bulk vs stunnel 4 streams"),
    ("bulk secshim/", "bulk vs cipher speed"),
    ("latency", "p50 vs plain"),
    ("untouched descriptors, pipe", "pipe calls vs none"),
    ("untouched descriptors, tcp", "tcp calls vs none"),
    ("memory", "at the largest count"),
    ("process start over no preload, unused", "unused endpoints"),
    ("process start over no preload, empty", "empty policy"),
]


def write_svg(path, tmp, R, T, info):
    """The chart; returns None, or why there is none."""
    if not shutil.which("gnuplot"):
        return "gnuplot is not installed (make deps installs gnuplot-nox): no chart"
    panels = {"ratios": [], "memory": [], "start": []}
    for label, value, op, target, unit in T:
        name = next((s for p, s in SHORT if label.startswith(p)), label)
        ok = status(label, value, op, target, R) == "PASS"
        panel = {"KiB": "memory", "ms": "start"}.get(unit, "ratios")
        panels[panel].append((name, value if value is not None else 0, target, 1 if ok else 0))
    files, tops = {}, {}
    for panel, rows in panels.items():
        files[panel] = os.path.join(tmp, f"chart-{panel}.tsv")
        with open(files[panel], "w") as f:
            for row in rows:
                f.write("\t".join(map(str, row)) + "\n")
        tops[f"{panel}_max"] = 1.15 * max([1.0] + [max(r[1], r[2]) for r in rows])
    script = os.path.join(tmp, "chart.gp")
    with open(script, "w") as f:
        f.write(GNUPLOT.format(svg=path, title=f"{info['commit'][:10]}, {info['date'][:10]}, {info['mode']}",
                               **files, **tops))
    out = subprocess.run(["gnuplot", script], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return f"gnuplot failed: {out.stderr.strip()[-500:]}"
    return None
