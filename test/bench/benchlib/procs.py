"""Processes for the benchmark: ports, start and stop by PID, memory and
descriptor counts read from /proc. Every wait is bounded; every process
started through Procs is stopped by its PID (never by name)."""
import os
import resource
import signal
import socket
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited early ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def descendants(pid):
    """pid and every process below it (socat forks one per connection)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def mem_kib(pids):
    """(RSS, PSS) in KiB summed over pids. PSS counts a page shared by
    forked children once in all; RSS counts it in each."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def pss_kib(pids):
    return mem_kib(pids)[1]


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """CPU time the processes have used, with that of the children they
    have reaped (socat's per-connection processes), in seconds, as (user,
    system); a process gone meanwhile counts nothing."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        user += utime + cutime
        system += stime + cstime
    return user / CLK_TCK, system / CLK_TCK


def children_cpu_seconds():
    """CPU time of this process's reaped children (and what they reaped),
    as (user, system) seconds."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime, ru.ru_stime


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Procs:
    """The processes of one setup or one measurement: started with their
    stderr in a log file of their own, stopped together by PID."""

    def __init__(self, tmp, name):
        self.tmp, self.name = tmp, name
        self.procs = []

    def log_path(self, i):
        return os.path.join(self.tmp, f"{self.name}-{i}.log")

    def start(self, argv, env=None, port=None, stdin=subprocess.DEVNULL,
              stdout=subprocess.DEVNULL, cpus=None):
        """cpus: the set of CPUs the process (and what it starts) may run
        on; None, any."""
        with open(self.log_path(len(self.procs)), "w") as log:
            p = subprocess.Popen(argv, env=env, stdin=stdin, stdout=stdout,
                                 stderr=log, text=True, preexec_fn=pinned_to(cpus))
        p.log = self.log_path(len(self.procs))
        self.procs.append(p)
        if port is not None:
            wait_listening(port, p)
        return p

    def stop(self):
        """SIGTERM to each process and what it forked (socat's children),
        by PID; SIGKILL to what is still there after 10 s."""
        for p in reversed(self.procs):
            if p.poll() is None:
                for pid in reversed(descendants(p.pid)):
                    try:
                        os.kill(pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
            for stream in (p.stdin, p.stdout):
                if stream is not None:
                    stream.close()
        self.procs = []


def log_tail(proc, chars=500):
    """The end of what a process started by Procs wrote to its log."""
    try:
        with open(proc.log) as f:
            return f.read().strip()[-chars:]
    except OSError:
        return ""


def pinned_to(cpus):
    """A preexec_fn that binds the child to cpus, or None for no binding."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def core_pair():
    """Two CPUs of this process's set, ({server}, {client}), for a
    scenario whose figure depends on where the two sides run; None on a
    machine with one."""
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[0]}, {cpus[1]}) if len(cpus) >= 2 else None


def run(argv, env=None, timeout=600, cpus=None):
    """Runs argv to completion (on cpus, if given); returns its stdout,
    raises with its stderr when it fails."""
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                         preexec_fn=pinned_to(cpus))
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {out.returncode}: "
                           f"{out.stderr.strip()[-2000:]}")
    return out.stdout
