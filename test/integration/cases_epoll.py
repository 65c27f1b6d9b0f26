# Readiness corner cases of epoll and select (docs/shim.md, "epoll"), each
# run over plain TCP (the reference) and under the shim against an
# independent TLS peer that sends at chosen times (sched_peer.py), and
# nginx under the shim. Run by test/integration/run, in its namespace.

SCHED_PEER = os.path.join(ROOT, "test", "integration", "sched_peer.py")


def sched_peer(c, name, tls, *args):
    """Starts sched_peer.py (plain TCP or TLS with server.pem); returns
    (proc, port)."""
    s = c.suite
    port_file = c.path(name + ".port")
    argv = [sys.executable, SCHED_PEER, port_file, "25"]
    argv += ["--tls", s.pki("server.pem"), s.pki("server.key")] if tls \
        else ["--plain"]
    proc = c.start(name, argv + list(args))
    return proc, wait_port_file(proc, port_file)


SPLIT_PEER = os.path.join(ROOT, "test", "integration", "split_peer.py")


def split_peer(c, name, tls, *args):
    """Starts split_peer.py (a record delivered in two parts); returns
    (proc, port)."""
    s = c.suite
    port_file = c.path(name + ".port")
    argv = [sys.executable, SPLIT_PEER, port_file, "25"]
    argv += ["--tls", s.pki("server.pem"), s.pki("server.key")] if tls \
        else ["--plain"]
    proc = c.start(name, argv + list(args))
    return proc, wait_port_file(proc, port_file)


def exact_both(c, mode, *peer_args, peer=sched_peer, reference_runs=1):
    """Runs ev_epoll_exact MODE over plain TCP and under the shim (against
    the TLS peer) with the same schedule; checks that both saw the same
    lines. Returns them. reference_runs=2: when they differ, the plain
    reference is run once more and the shim must match that run; for the
    modes with two registrations of one socket in a set, where the kernel
    itself now and then loses one registration's report over plain TCP
    (seen: "third added: ... data2 edges 0" in plain TCP's own run)."""
    app = need_app(c, "ev_epoll_exact")
    _, pport = peer(c, "plain-peer", False, *peer_args)
    plain = c.run("plain", [app, mode, "localhost", str(pport)],
                  c.env(preload=False))
    check(plain.p.returncode == 0, "the program fails over plain TCP")
    _, tport = peer(c, "tls-peer", True, *peer_args)
    policy = c.policy(client_ep(c.suite, tport))
    shim = c.run("shim", [app, mode, "localhost", str(tport)], c.env(policy))
    check(shim.p.returncode == 0, "the program fails under the shim")
    check(established(shim, "cli"), "the shim logged no TLS connection")
    if shim.out() != plain.out() and reference_runs > 1:
        c.note("plain TCP's run differed from the shim's:\n%s\nrunning the "
               "plain reference again" % plain.out())
        _, pport = peer(c, "plain-peer-again", False, *peer_args)
        plain = c.run("plain-again", [app, mode, "localhost", str(pport)],
                      c.env(preload=False))
        check(plain.p.returncode == 0, "the program fails over plain TCP")
    check(shim.out() == plain.out(), "under the shim the program saw\n%s"
          "where over plain TCP it saw\n%s" % (shim.out(), plain.out()))
    return plain.out()


@case
def epoll_et_new_data_with_unread_plaintext(c):
    """EPOLLET, 10 of 100 bytes read, then the peer sends again: the new
    data wakes the waiter "later", as over plain TCP (before, the shim
    waited only for bits missing at its previous look: a time-out)."""
    out = exact_both(c, "et-unread", "--send", "0.2:100,1.2:100")
    check("new data wakes later" in out, "plain TCP itself differs: %s" % out)


@case
def epoll_et_read_after_an_edge_takes_what_came(c):
    """EPOLLET, 10 of 1000 bytes read; the peer's next 1000 bytes come and
    their edge is taken; then one read with room for both returns all
    1990, as over plain TCP, and nothing is left. Before, the read
    returned only the rest of the first record: the recv that had found
    the kernel's queue empty was the first read's, older than the edge,
    and the short read told the program the socket was drained (nginx
    as a reverse proxy waited so for an edge that had been spent, and
    stalled for its 60 s)."""
    out = exact_both(c, "et-read-rest", "--send", "0.2:1000,1.0:1000")
    check("one read after it 1990" in out and "left 0" in out,
          "plain TCP itself differs: %s" % out)


@case
def epoll_oneshot_rearmed_by_another_thread(c):
    """EPOLLONESHOT reported, data left unread; another thread re-arms it
    with EPOLL_CTL_MOD while this one sleeps in epoll_wait: it wakes at
    once, as over plain TCP (before: only at the peer's next send)."""
    out = exact_both(c, "oneshot-mod", "--send", "0.2:100,3.0:100")
    check("re-armed wakes at-once data 9" in out, "plain TCP: %s" % out)


@case
def epoll_et_out_edge_after_eagain(c):
    """EPOLLET|EPOLLOUT: 5 rounds of writing until EAGAIN against a slow
    reader, then waiting: every round gets its EPOLLOUT edge, as over
    plain TCP (before, the edge of the first round was lost)."""
    out = exact_both(c, "et-out", "--slow-read")
    check("rounds woken 5 of 5" in out, "plain TCP: %s" % out)


@case
def epoll_et_out_edge_queued_before_the_wait(c):
    """EPOLLET|EPOLLIN|EPOLLOUT (nginx's registration): each round writes
    until EAGAIN, sleeps a second while the slow reader makes room, then
    waits: the EPOLLOUT edge, queued before the wait, wakes it in every
    round, as over plain TCP. Fails when the wait's own look flushes the
    engine's ciphertext into that room and the kernel's edge is then taken
    for one already given (nginx's transfers stalled so)."""
    out = exact_both(c, "et-out-late", "--slow-read")
    check("rounds woken 5 of 5" in out, "plain TCP: %s" % out)


@case
def epoll_registration_survives_close_of_a_dup(c):
    """The registered descriptor is closed while a dup stays open: the
    registration belongs to the open socket and its events keep coming (3
    of 3), as over plain TCP (before, the shim dropped it at the close)."""
    out = exact_both(c, "dup-close", "--send", "0.3:100,1.0:100,1.0:100")
    check("events after close of the registered dup 3, bytes 300" in out,
          "plain TCP: %s" % out)


@case
def epoll_two_dups_in_one_set(c):
    """A socket and its dup both join one epoll set and both are reported,
    as over plain TCP (before, the second EPOLL_CTL_ADD failed with EEXIST:
    both mapped to one private descriptor)."""
    out = exact_both(c, "two-dups", "--send", "0.3:100", reference_runs=2)
    check("reported data1 yes data2 yes" in out, "plain TCP: %s" % out)


@case
def epoll_exclusive_wakes_one_set(c):
    """Two epoll sets, each with a thread in epoll_wait, hold the socket
    with EPOLLEXCLUSIVE; the peer sends once: as over plain TCP one set is
    woken, and EPOLL_CTL_MOD of an exclusive registration is EINVAL
    (before, EPOLLEXCLUSIVE had no effect on a managed socket: both
    woke)."""
    out = exact_both(c, "exclusive", "--send", "0.3:100")
    check("woken 1 of 2" in out, "plain TCP: %s" % out)


@case
def select_nfds_above_fd_setsize(c):
    """select() with nfds 1501 over a large fd_set array, the managed
    socket dup2()ed to 1500: it sleeps until the peer sends, reports the
    one descriptor and leaves the words past nfds alone, as over plain TCP
    (before, such a call went to the kernel untranslated and saw the
    stand-in's hang-up at once)."""
    try:
        import resource
        if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 2048:
            raise Skip("the hard RLIMIT_NOFILE is below 2048")
    except ImportError:
        pass
    out = exact_both(c, "select-high", "--send", "1.2:100")
    check("select 1 ready fd 1500, wakes later" in out, "plain TCP: %s" % out)


@case
def readiness_counts_records_read_ahead(c):
    """Three chunks arrive at once; after a read of the first, poll()
    reports the rest at once, FIONREAD covers it, and after a read of the
    second a level-triggered epoll_wait reports the third, as over plain
    TCP. A guard for read-ahead: an engine whose recv brought all three
    records into OpenSSL leaves the socket itself unreadable, and
    readiness must still report them (measured with read-ahead on: time-
    outs until every readiness answer counted them)."""
    out = exact_both(c, "read-ahead", "--send", "0.2:100,0:100,0:100")
    check("poll after the first chunk at-once" in out and
          "fionread covers the unread 200 bytes yes" in out and
          "epoll after the second chunk at-once" in out,
          "plain TCP: %s" % out)


@case
def readiness_waits_for_the_rest_of_a_record(c):
    """A chunk and half of the next record arrive, the rest 3 s later:
    after reading the chunk, poll() sleeps until the rest (a time-out of
    1 s first, without spinning), then wakes "later", as over plain TCP,
    where the second chunk comes whole 3 s later."""
    out = exact_both(c, "split-record", "0.2", "3.0", peer=split_peer)
    check("poll with half a record timeout" in out and
          "cpu while waiting quiet" in out and
          "rest of the record wakes later" in out and
          "second chunk b" in out, "plain TCP: %s" % out)


# ---- nginx (Debian's nginx package, `make deps`) ---------------------------

NGINX_CONF = """user root;
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/nginx-error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %(dir)s/tmp-body;
    proxy_temp_path %(dir)s/tmp-proxy;
    fastcgi_temp_path %(dir)s/tmp-fastcgi;
    uwsgi_temp_path %(dir)s/tmp-uwsgi;
    scgi_temp_path %(dir)s/tmp-scgi;
    sendfile %(sendfile)s;
    server {
        listen 127.0.0.1:%(port)d;
        root %(dir)s/www;
        %(proxy)s
    }
}
"""

# A TLS upstream for nginx: Python's http.server behind ssl (OpenSSL
# without the shim), serving the case's www directory.
UPSTREAM = """
import http.server, os, ssl, sys
port_file, cert, key, root = sys.argv[1:5]
os.chdir(root)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                      http.server.SimpleHTTPRequestHandler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write("%d\\n" % srv.server_address[1])
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
"""


def need_nginx(c):
    path = shutil.which("nginx") or "/usr/sbin/nginx"
    check(os.path.exists(path), "nginx is not installed (make deps "
          "installs it)")
    return path


def www_file(c, name, nbytes):
    """A file of nbytes pseudo-random bytes in the case's www directory;
    returns its sha256."""
    os.makedirs(c.path("www"), exist_ok=True)
    digest = hashlib.sha256()
    block = prng_bytes(1 << 20)
    with open(os.path.join(c.path("www"), name), "wb") as f:
        for i in range(nbytes >> 20):
            chunk = block[i % 7:] + block[:i % 7]  # no two blocks alike
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


def start_nginx(c, sendfile="on"):
    """nginx's configuration and policy (a listen endpoint on its port);
    returns (nginx, conf, policy, port)."""
    nginx = need_nginx(c)
    port = free_port()
    conf = c.write("nginx.conf", NGINX_CONF % dict(
        dir=c.dir, port=port, sendfile=sendfile, proxy=""))
    policy = c.policy(server_ep(c.suite, port), name="nginx.cfg")
    return nginx, conf, policy, port


def run_nginx(c, nginx, conf, policy, port):
    """Starts nginx in the foreground (master and one worker) under the
    shim and waits until it accepts; returns the proc."""
    proc = c.start("nginx", [nginx, "-p", c.dir, "-c", conf, "-e",
                             c.path("nginx-error.log"), "-g",
                             "daemon off; master_process on;"],
                   c.env(policy))
    deadline = time.monotonic() + T_START
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            check(proc.alive(), "nginx exited at start")
            time.sleep(0.05)
    raise Failure("nginx did not listen within %ss" % T_START)


def curl_get(c, port, paths, name="curl"):
    """curl over TLS (the test CA, the name localhost) for each path, each
    to its own file; returns the sha256 of each."""
    argv = ["curl", "-sS", "--fail", "--max-time", "60", "--cacert",
            c.suite.pki("ca.pem"), "--resolve", "localhost:%d:127.0.0.1" % port]
    outs = []
    for i, path in enumerate(paths):
        out = c.path("%s-%d.body" % (name, i))
        argv += ["-o", out, "https://localhost:%d%s" % (port, path)]
        outs.append(out)
    proc = c.run(name, argv, c.env(preload=False), timeout=T_RUN * 3)
    check(proc.p.returncode == 0, "curl failed (exit %s)" % proc.p.returncode)
    sums = []
    for out in outs:
        with open(out, "rb") as f:
            sums.append(hashlib.sha256(f.read()).hexdigest())
    return sums


def nginx_static(c, sendfile):
    nbytes = 32 << 20
    want = www_file(c, "big.bin", nbytes)
    nginx, conf, policy, port = start_nginx(c, sendfile=sendfile)
    proc = run_nginx(c, nginx, conf, policy, port)
    got = curl_get(c, port, ["/big.bin", "/big.bin"])
    check(got == [want, want], "the bodies differ from the file (sha256 %s, "
          "want %s)" % (got, want[:16]))
    check(wait_established(proc, "srv"), "nginx's shim logged no TLS "
          "connection")


@case
def nginx_static_sendfile_on(c):
    """nginx under the shim (a listen endpoint) serves a 32 MiB file twice
    to curl over TLS with sendfile on: every byte checksummed (before,
    downloads stalled: "client timed out while sending response")."""
    nginx_static(c, "on")


@case
def nginx_static_sendfile_off(c):
    """The same with sendfile off (nginx's own writes, EAGAIN and
    EPOLLOUT edges)."""
    nginx_static(c, "off")


@case
def nginx_reverse_proxy_to_tls_upstream(c):
    """nginx as a reverse proxy to a TLS upstream through a connect
    endpoint (proxy_pass http://127.0.0.1:UP, the shim makes it TLS; the
    upstream is Python's ssl HTTP server): 6 requests of 2 MiB and 64 KiB,
    bodies checksummed (before, every request hung: nginx reads exactly
    what FIONREAD announced and then waits for an edge, and FIONREAD
    counted only the current record while a read went on into the next)."""
    s = c.suite
    want_big = www_file(c, "up.bin", 2 << 20)
    with open(os.path.join(c.path("www"), "small.txt"), "wb") as f:
        small = prng_bytes(65536)
        f.write(small)
    want_small = hashlib.sha256(small).hexdigest()
    up_file = c.path("upstream.port")
    upstream = c.start("upstream", [sys.executable, "-c", UPSTREAM, up_file,
                                    s.pki("server.pem"), s.pki("server.key"),
                                    c.path("www")])
    up = wait_port_file(upstream, up_file)
    nginx = need_nginx(c)
    port = free_port()
    proxy = "location /up/ { proxy_pass http://127.0.0.1:%d/; }" % up
    conf = c.write("nginx.conf", NGINX_CONF % dict(
        dir=c.dir, port=port, sendfile="on", proxy=proxy))
    policy = c.policy(server_ep(s, port),
                      client_ep(s, up, host="127.0.0.1",
                                tls_target_name="localhost"),
                      name="nginx.cfg")
    proc = run_nginx(c, nginx, conf, policy, port)
    paths = ["/up/up.bin", "/up/small.txt"] * 3
    got = curl_get(c, port, paths)
    check(got == [want_big, want_small] * 3, "the proxied bodies differ: %s"
          % got)
    check(wait_established(proc, "cli"), "nginx's shim logged no TLS "
          "connection to the upstream")


# ---- descriptors per connection (issue 9) -----------------------------------

def fd_kinds(pid):
    """What /proc/PID/fd holds: {kind: count}, kind being the link target
    without its inode ("socket", "anon_inode:[eventpoll]", a path)."""
    kinds = {}
    fd_dir = "/proc/%d/fd" % pid
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue  # closed meanwhile
        kind = re.sub(r":\[\d+\]$", "", target)
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def held_fds(c, server, client, total):
    """Asks the hold-grow client for total connections and returns the
    server's descriptor count once it holds them, with their kinds."""
    client.send(b"%d\n" % total)
    check(client.wait_output(r"held %d\b" % total, T_RUN) is not None,
          "the client did not hold %d connections" % total)
    kinds = fd_kinds(server.pid)
    return sum(kinds.values()), kinds


def descriptors_per_connection(c, preload, first=10, total=60):
    """bench_epoll_server (level-triggered epoll, one registration per
    connection) holding first, then total idle connections of
    bench_client hold-grow, both under the shim (listen and connect
    endpoints) or both plain. Returns (descriptors per connection, the
    kinds at first, at total)."""
    s = c.suite
    port = free_port()
    spol = c.policy(server_ep(s, port), name="server.cfg") if preload \
        else None
    tag = "shim" if preload else "plain"
    server, _ = ev_server(c, "bench_epoll_server", spol, port,
                          name=tag + "-server", preload=preload)
    cpol = c.policy(client_ep(s, port), name="client.cfg") if preload \
        else None
    client = c.start(tag + "-client", [need_app(c, "bench_client"), "localhost",
                                str(port), "hold-grow", str(first), "4"],
                     c.env(cpol, preload), stdin=True)
    check(client.wait_output(r"held %d\b" % first, T_RUN) is not None,
          "the client did not hold %d connections" % first)
    n_first, k_first = sum(fd_kinds(server.pid).values()), \
        fd_kinds(server.pid)
    n_total, k_total = held_fds(c, server, client, total)
    c.note("%s server descriptors: %d at %d connections %s, %d at %d %s"
           % (tag, n_first, first, k_first, n_total, total, k_total))
    client.close_stdin()
    client.wait(T_RUN)
    if preload:
        check(count_established(server, "srv") == total, "the server's "
              "shim logged %d TLS connections, expected %d"
              % (count_established(server, "srv"), total))
    return (n_total - n_first) / (total - first), k_first, k_total


@case
def epoll_server_holds_two_descriptors_per_connection(c):
    """An epoll server under the shim holding 60 TLS connections has 2
    descriptors open per connection (the program's number, the private
    descriptor, which its epoll registration watches itself), counted in
    /proc/PID/fd between 10 and 60 connections; plain TCP, the control,
    holds 1 (before, 3: every registration watched a private duplicate of
    its own, which capped an epoll server at a third of its descriptor
    limit)."""
    plain, _, _ = descriptors_per_connection(c, preload=False)
    check(plain == 1, "plain TCP: %s descriptors per connection, expected 1 "
          "(the count itself is wrong)" % plain)
    shim, k_first, k_total = descriptors_per_connection(c, preload=True)
    check(shim == 2, "under the shim the epoll server holds %s descriptors "
          "per connection, expected 2 (server's descriptors at 10 "
          "connections: %s; at 60: %s)" % (shim, k_first, k_total))


# ---- what the kernel watches (issue 9: the private descriptor itself) -------

WAKE_DATA = 0x5ec5000000000000


def kernel_keys(proc):
    """The registrations ev_epoll_exact dumped to stderr, without the
    shim's wake-up eventfd: {label: ([(tfd, data)], numbers the program
    had taken over with dup2 by then ("took N: ..."))}."""
    keys, taken = {}, set()
    for line in proc.err().splitlines():
        m = re.match(r"took \d+:([\d ]*)$", line)
        if m:
            taken |= {int(x) for x in m.group(1).split()}
        m = re.match(r"epoll (\S+) (?:tfd (\d+) data ([0-9a-f]+)|end \d+)$",
                     line)
        if not m:
            continue
        entries = keys.setdefault(m.group(1), ([], set(taken)))[0]
        if m.group(2) and int(m.group(3), 16) != WAKE_DATA:
            entries.append((int(m.group(2)), int(m.group(3), 16)))
    return keys, taken


def check_keys(proc, want, shim):
    """Each dumped set holds want[label] registrations (the same count
    over plain TCP and under the shim), keyed by distinct numbers, none of
    them a number the program took over (a registration left keyed by a
    moved private descriptor would stay in the set, beyond MOD and DEL);
    under the shim each carries a token, never the program's data."""
    keys, taken = kernel_keys(proc)
    for label, count in want.items():
        check(label in keys, "%s: no dump of set %s" % (proc.name, label))
        got, taken_then = keys[label]
        check(len(got) == count, "%s: set %s holds %d kernel registrations "
              "of the connection, expected %d: %s"
              % (proc.name, label, len(got), count, got))
        tfds = [t for t, _ in got]
        check(len(set(tfds)) == len(tfds), "%s: set %s has two "
              "registrations on one number: %s" % (proc.name, label, got))
        check(not set(tfds) & taken_then, "%s: set %s keeps a registration "
              "keyed by a number the program took over (%s): %s"
              % (proc.name, label, sorted(taken_then), got))
        if shim:
            check(all(d >> 48 == 0x5ec5 for _, d in got), "%s: set %s: a "
                  "kernel registration without the shim's token: %s"
                  % (proc.name, label, got))
    return taken


def exact_keys(c, mode, want, *peer_args, reference_runs=1):
    """exact_both for a mode that dumps its sets: the same lines over
    plain TCP and under the shim, the same kernel registrations (counted),
    and under the shim private descriptors that were taken over. Returns
    the program's lines."""
    out = exact_both(c, mode, *peer_args, reference_runs=reference_runs)
    procs = {p.name: p for p in c.procs}
    check_keys(procs["plain"], want, False)
    taken = check_keys(procs["shim"], want, True)
    check(taken, "the shimmed program took over no private descriptor: "
          "nothing was moved")
    return out


@case
def epoll_private_descriptor_moved_keeps_registrations(c):
    """The program dup2()s over the private descriptor while a
    level-triggered registration in one set and an edge-triggered one in
    another watch it (the kernel watches the private descriptor itself):
    both keep reporting, as over plain TCP, each chunk waking the level
    one later and giving the edge one exactly one edge; the kernel holds
    one registration per set, never keyed by the number taken over; DEL
    then leaves none. Fails when the registration stays keyed by the old
    number (a duplicate edge, a key beyond DEL) or is lost (the second
    chunk times out)."""
    out = exact_keys(c, "move-private", {"lt": 1, "et": 1, "lt-deleted": 0,
                                         "et-deleted": 0},
                     "--send", "1.0:100,1.5:100")
    check("chunk 1: lt wakes later data 21, unread at-once, et edge at-once "
          "data 22, et again timeout, drained 100" in out and
          "chunk 2: lt wakes later data 21, unread at-once, et edge at-once "
          "data 22, et again timeout, drained 100" in out and
          "del ok ok" in out, "plain TCP: %s" % out)


@case
def epoll_edge_taken_in_by_another_look_reported_once(c):
    """A level-triggered registration in one set and an edge-triggered
    one in another: each chunk is waited for in the level set first, whose
    look takes the record into the engine, then three times in the edge
    set with room for one event (the second chunk after a 10-byte read).
    The edge set's first look reports the new plaintext and fills the
    call while the kernel's event for the same bytes is still queued:
    plain TCP gives one edge per chunk, and so must the shim (it gave two:
    the queued event came in the next call, docs/shim.md "epoll")."""
    out = exact_both(c, "edge-once", "--send", "1.0:100,2.5:100")
    for line in ("chunk 1: lt reported, et edges 1, drained 100, then quiet",
                 "chunk 2: lt reported, read 10, et edges 1, drained 90, "
                 "then quiet"):
        check(line in out, "plain TCP: %s" % out)


@case
def epoll_two_registrations_of_one_connection_in_a_set(c):
    """A socket (level-triggered) and its dup (edge-triggered) in one set:
    the first registration watches the private descriptor, the second a
    duplicate; both private descriptors are moved; the first is deleted
    and a third dup joins (watching the private descriptor again). Each
    chunk reaches exactly the registrations there are, as over plain TCP
    (the level one still reported at the third wait, one edge each), and
    the kernel holds as many registrations as the program made. Fails
    when one is lost or doubled."""
    out = exact_keys(c, "two-regs", {"two": 2, "moved": 2, "one": 1,
                                     "again": 2},
                     "--send", "1.0:100,2.0:100,2.0:100,2.0:100",
                     reference_runs=2)
    for line in ("both: data1 level yes data2 edges 1, drained 100, then "
                 "quiet",
                 "moved: data1 level yes data2 edges 1, drained 100, then "
                 "quiet",
                 "first deleted: data2 edges 1, drained 100, then quiet",
                 "third added: data3 level yes data2 edges 1, drained 100, "
                 "then quiet"):
        check(line in out, "plain TCP: %s" % out)


@case
def epoll_registration_moved_at_the_swap_watches_the_private_descriptor(c):
    """A registration made before connect() (nginx's upstreams) moves to
    the TLS connection at the swap, where the kernel watches the private
    descriptor itself (one registration, with the shim's token), and
    follows it when the program takes its number: each of two chunks is
    reported as over plain TCP."""
    out = exact_keys(c, "preconnect", {"swapped": 1, "moved": 1},
                     "--send", "1.0:100,2.0:100")
    for line in ("swapped: data51 level yes, drained 100, then quiet",
                 "moved: data51 level yes, drained 100, then quiet"):
        check(line in out, "plain TCP: %s" % out)
    procs = {p.name: p for p in c.procs}
    keys, taken = kernel_keys(procs["shim"])
    check(len(taken) == 1, "under the shim the program took %s: expected "
          "the private descriptor alone (a registration's own duplicate "
          "would be a second socket)" % sorted(taken))


@case
def epoll_sets_shared_with_forked_children(c):
    """A level-triggered and an edge-triggered registration (two sets) of
    a TLS connection; a child execs `true` (the private descriptor is
    close-on-exec), another closes its copies of the sets and exits: the
    parent's registrations report the next chunk as over plain TCP. Then
    a child waits on the sets it inherited and gets the chunk after."""
    out = exact_both(c, "fork", "--send", "1.5:100,2.0:100")
    for line in ("child exec exit 0", "child closing the sets exit 0",
                 "parent lt: data41 level yes, drained 100, then quiet",
                 "parent et edge later data 42",
                 "child lt: data41 level yes, drained 100, then quiet",
                 "child et edge later data 42"):
        check(line in out, "plain TCP: %s" % out)
