# Matching never depends on remembering a name (issue 7, section 2).
#
# Loaded by test/integration/run into its own namespace (load_case_files),
# so the harness's helpers and @case are in scope. The cases run real
# programs under the shim: Python clients (/usr/bin/python3, whose socket
# calls are libc's), a JVM, the test apps, against TLS peers that are not
# under the shim and report what they received (the SNI name above all).
#
# Some cases need the program to resolve a second name for 127.0.0.1.
# /etc/hosts cannot be edited by a test, so those run the program in a
# private mount namespace (unshare) where a hosts file of the case's own
# is bind-mounted over /etc/hosts; the machine's file is never touched.

PY = "/usr/bin/python3"

# A line client for running under the shim: resolves the names it is
# given with getaddrinfo (through the shim, as a program would), then
# connects a socket of the family asked to ADDR PORT, sends LINE and prints
# the line that comes back. Exit 0 ok, 3 connect failed, 1 other errors.
CLIENT_PY = r'''
import signal, socket, sys
signal.alarm(30)
args, names, family, line = sys.argv[1:], [], socket.AF_INET, "hello"
while args and args[0].startswith("--"):
    opt, val = args[0], args[1]
    args = args[2:]
    if opt == "--resolve":
        names.append(val)
    elif opt == "--family":
        family = socket.AF_INET6 if val == "6" else socket.AF_INET
    elif opt == "--line":
        line = val
host, port = args[0], int(args[1])
for name in names:
    got = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
    print("resolved %s: %s" % (name, sorted({a[4][0] for a in got})),
          flush=True)
sock = socket.socket(family, socket.SOCK_STREAM)
try:
    sock.connect((host, port))
except OSError as e:
    print("connect: %s" % e.strerror, flush=True)
    sys.exit(3)
sock.sendall((line + "\n").encode())
reply = b""
while not reply.endswith(b"\n"):
    chunk = sock.recv(4096)
    if not chunk:
        break
    reply += chunk
print("reply: %s" % reply.decode(errors="replace").strip(), flush=True)
sys.exit(0 if reply.strip() == line.encode() else 1)
'''

# A TLS line echo that is not under the shim (Python's ssl module): one
# connection at a time, and for each one line on stdout with the SNI name
# the client sent ("-" for none) and the line it received.
SNI_SERVER_PY = r'''
import os, signal, socket, ssl, sys
port_file, cert, key, family = sys.argv[1:5]
signal.alarm(int(sys.argv[5]))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
seen = {}
def on_sni(sslobj, name, context):
    seen["sni"] = name or "-"
ctx.sni_callback = on_sni
if family == "dual":
    lsock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    lsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    lsock.bind(("::", 0))
else:
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
lsock.listen(16)
with open(port_file + ".tmp", "w") as f:
    f.write("%d\n" % lsock.getsockname()[1])
os.rename(port_file + ".tmp", port_file)
n = 0
while True:
    sock, _ = lsock.accept()
    n += 1
    seen.clear()
    sock.settimeout(20)
    try:
        tls = ctx.wrap_socket(sock, server_side=True)
        line = b""
        while not line.endswith(b"\n"):
            chunk = tls.recv(4096)
            if not chunk:
                break
            line += chunk
        tls.sendall(line)
        tls.close()
        print("conn %d: sni=%s line=%s" % (n, seen.get("sni", "?"),
              line.decode(errors="replace").strip()), flush=True)
    except (OSError, ValueError) as e:
        print("conn %d: sni=%s error=%s" % (n, seen.get("sni", "?"), e),
              flush=True)
        sock.close()
'''

# A plain line echo server for running under the shim on a dual-stack
# socket ([::], IPV6_V6ONLY off): IPv4 clients arrive with v4-mapped
# addresses. Prints the local address of each accepted connection.
DUAL_ECHO_PY = r'''
import os, signal, socket, sys
port, port_file = int(sys.argv[1]), sys.argv[2]
signal.alarm(60)
lsock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
lsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("::", port))
lsock.listen(16)
with open(port_file + ".tmp", "w") as f:
    f.write("%d\n" % lsock.getsockname()[1])
os.rename(port_file + ".tmp", port_file)
while True:
    sock, _ = lsock.accept()
    print("accepted on %s" % (sock.getsockname()[0],), flush=True)
    sock.settimeout(20)
    try:
        line = b""
        while not line.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            line += chunk
        sock.sendall(line)
    except OSError as e:
        print("error: %s" % e, flush=True)
    sock.close()
'''

# java.net.Socket to HOST PORT, one line out and one back. A JVM resolves
# localhost to 127.0.0.1 and connects an AF_INET6 socket to
# ::ffff:127.0.0.1 (dual stack), the case the shim once sent in clear.
JAVA_CLIENT = r'''
import java.io.*;
import java.net.*;
import java.nio.charset.StandardCharsets;

public class LineClient {
    public static void main(String[] args) throws Exception {
        try (Socket s = new Socket(args[0], Integer.parseInt(args[1]))) {
            s.setSoTimeout(20000);
            System.out.println("connected to " + s.getRemoteSocketAddress());
            OutputStream out = s.getOutputStream();
            out.write((args[2] + "\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(
                s.getInputStream(), StandardCharsets.UTF_8));
            System.out.println("reply: " + in.readLine());
        }
    }
}
'''

# The hosts file of the cases that need several names for 127.0.0.1.
ALIAS_HOSTS = "127.0.0.1 localhost alias-one alias-two\n::1 localhost\n"


def script(c, name, text):
    return c.write(name, text)


def sni_server(c, family="v4", name="sni-peer"):
    """Starts the SNI-recording TLS echo (not under the shim), presenting
    server.pem (DNS:localhost, IP:127.0.0.1, IP:::1). Returns (proc,
    port)."""
    s = c.suite
    port_file = c.path(name + ".port")
    argv = [PY, script(c, "sni_server.py", SNI_SERVER_PY), port_file,
            s.pki("server.pem"), s.pki("server.key"), family, str(T_RUN * 3)]
    proc = c.start(name, argv)
    return proc, wait_port_file(proc, port_file)


def peer_conns(proc, want, timeout=T_RUN // 2):
    """The (sni, rest) of each connection line the SNI peer printed, once
    it printed want of them (bounded wait)."""
    rx = re.compile(r"^conn \d+: sni=(\S+) (.*)$", re.M)
    deadline = time.monotonic() + timeout
    while True:
        got = rx.findall(proc.out())
        if len(got) >= want or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def shimmed_env_args(c, policy, extra_asan=""):
    """`env VAR=... ` arguments that put a program under the shim from
    inside another command (unshare ... sh -c), which itself is not."""
    env = c.env(policy)
    args = ["env", "LD_PRELOAD=" + env["LD_PRELOAD"],
            "SECSHIM_CONFIG=" + env["SECSHIM_CONFIG"],
            "ASAN_OPTIONS=" + env["ASAN_OPTIONS"] + extra_asan]
    return args


def with_hosts(c, hosts_text, argv):
    """argv run with hosts_text as its /etc/hosts: a private mount
    namespace (as root, or as an unprivileged user through a user
    namespace) with the case's file bind-mounted over /etc/hosts. The
    machine's /etc/hosts is not changed."""
    path = c.write("hosts", hosts_text)
    ns = ["unshare", "--mount"] if os.geteuid() == 0 else \
        ["unshare", "--map-root-user", "--mount"]
    return ns + ["sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
                 path] + argv


def run_client(c, policy, args, hosts=None, name="client"):
    """client.py under the shim with args; in a hosts namespace when
    hosts is given. Returns the finished proc."""
    argv = [PY, script(c, "client.py", CLIENT_PY)] + list(args)
    if hosts is None:
        return c.run(name, argv, c.env(policy))
    argv = with_hosts(c, hosts, shimmed_env_args(c, policy) + argv)
    return c.run(name, argv, c.env(preload=False))


def check_wire_tls(c2s, s2c, canary):
    """Both recordings are TLS records only (handshake and application
    data), and the line never shows in clear."""
    for label, path in (("client->server", c2s), ("server->client", s2c)):
        data = read_file(path)
        check(canary.encode() not in data, "%s: the line is on the wire in "
              "clear" % label)
        types, err = tls_records(data)
        check(err is None, "%s: not TLS records: %s" % (label, err))
        check(22 in types and 23 in types, "%s: no handshake or no "
              "application data records (%d bytes)" % (label, len(data)))


def through_relay(c, connect_host, args, hosts=None, family="v4",
                  **ep_opts):
    """client.py under the shim -> wire_relay -> the SNI peer, with one
    connect endpoint connect_host:RELAY_PORT. Returns (client proc, the
    peer's (sni, rest) lines, c2s, s2c, canary); the relay is stopped, so
    the recordings are complete."""
    canary = "secshim-canary-%s" % os.urandom(6).hex()
    peer, port = sni_server(c, family)
    proxy, rport, c2s, s2c = relay(c, port)
    pol = c.policy(client_ep(c.suite, rport, host=connect_host, **ep_opts),
                   level="debug")
    args = [a.replace("RELAY_PORT", str(rport)) for a in args]
    proc = run_client(c, pol, ["--line", canary] + args, hosts=hosts)
    conns = peer_conns(peer, 1)
    proxy.stop()
    return proc, conns, c2s, s2c, canary


def check_tls_reply(proc, conns, canary, sni):
    check(proc.p.returncode == 0 and ("reply: " + canary) in proc.out(),
          "the client did not get its line back (exit %s)"
          % proc.p.returncode)
    check(established(proc, "cli"), "the client's shim logged no TLS "
          "connection for endpoint 'cli'")
    check(len(conns) == 1 and conns[0][1] == "line=" + canary,
          "the TLS peer did not get the line over TLS: %s" % conns)
    check(conns[0][0] == sni, "the TLS peer received SNI %r, expected %r"
          % (conns[0][0], sni))


# ---- a) the name the program used does not decide --------------------------

@case
def alias_number_to_name_endpoint_is_tls(c):
    """Endpoint localhost:P; the program resolves nothing and connects to
    the number 127.0.0.1: the endpoint's address set (localhost ->
    127.0.0.1, resolved by the shim) makes it TLS, and the name sent and
    checked is the endpoint's own, localhost."""
    proc, conns, c2s, s2c, canary = through_relay(
        c, "localhost", ["127.0.0.1", "RELAY_PORT"])
    check_tls_reply(proc, conns, canary, "localhost")
    check_wire_tls(c2s, s2c, canary)


@case
def alias_resolved_after_endpoint_name_is_tls(c):
    """Endpoint localhost:P; the program resolves localhost, then another
    name of the same address (alias-one, an /etc/hosts alias), then
    connects to 127.0.0.1. The shim once matched by the last name the
    program resolved, and this connection went out in clear; now it is
    TLS, and the name sent and checked is localhost, never the alias."""
    proc, conns, c2s, s2c, canary = through_relay(
        c, "localhost", ["--resolve", "localhost", "--resolve", "alias-one",
                         "127.0.0.1", "RELAY_PORT"], hosts=ALIAS_HOSTS)
    check("resolved alias-one: ['127.0.0.1']" in proc.out(),
          "the program did not resolve the alias in its namespace")
    check_tls_reply(proc, conns, canary, "localhost")
    check_wire_tls(c2s, s2c, canary)


@case
def alias_connect_by_alias_name_is_tls(c):
    """The same, connecting by the alias itself (the program resolves
    alias-one and connects to what it got): a virtual host of a TLS
    endpoint is TLS, checked as the endpoint's name."""
    proc, conns, c2s, s2c, canary = through_relay(
        c, "localhost", ["--resolve", "alias-one", "alias-one",
                         "RELAY_PORT"], hosts=ALIAS_HOSTS)
    check_tls_reply(proc, conns, canary, "localhost")
    check_wire_tls(c2s, s2c, canary)


@case
def alias_number_resolved_as_name_is_tls(c):
    """No namespace needed: the program resolves localhost, then
    "2130706433" (127.0.0.1 written as one number, which getaddrinfo
    accepts), then connects. The shim once remembered that number as the
    newest name of 127.0.0.1 and sent the connection in clear."""
    proc, conns, c2s, s2c, canary = through_relay(
        c, "localhost", ["--resolve", "localhost", "--resolve", "2130706433",
                         "127.0.0.1", "RELAY_PORT"])
    check_tls_reply(proc, conns, canary, "localhost")
    check_wire_tls(c2s, s2c, canary)


# ---- b) dual stack ----------------------------------------------------------

@case
def dual_stack_v4_mapped_connect_is_tls(c):
    """An AF_INET6 socket connecting to ::ffff:127.0.0.1:P (what a JVM
    does for localhost) through the name endpoint localhost:P: the mapped
    destination is 127.0.0.1, in the endpoint's set; TLS, SNI localhost.
    The shim once looked for the mapped address among IPv4 answers and
    sent this in clear."""
    proc, conns, c2s, s2c, canary = through_relay(
        c, "localhost", ["--resolve", "localhost", "--family", "6",
                         "::ffff:127.0.0.1", "RELAY_PORT"])
    check_tls_reply(proc, conns, canary, "localhost")
    check_wire_tls(c2s, s2c, canary)


@case
def dual_stack_v4_mapped_to_address_endpoint_is_tls(c):
    """The same socket against an address endpoint 127.0.0.1:P: the
    mapped destination matches, and the name checked is the IPv4 address
    (IP SAN 127.0.0.1, no SNI), not the mapped text."""
    proc, conns, c2s, s2c, canary = through_relay(
        c, "127.0.0.1", ["--family", "6", "::ffff:127.0.0.1", "RELAY_PORT"])
    check_tls_reply(proc, conns, canary, "-")
    check_wire_tls(c2s, s2c, canary)


def dual_listener_case(c, listen_host):
    s = c.suite
    port = free_port()
    pol = c.policy(server_ep(s, port, host=listen_host))
    port_file = c.path("server.port")
    server = c.start("server", [PY, script(c, "dual_echo.py", DUAL_ECHO_PY),
                                str(port), port_file], c.env(pol))
    wait_port_file(server, port_file)
    line = "dual-stack-%s" % os.urandom(4).hex()
    proc, ok = s_client(c, port, line, line, host="127.0.0.1")
    check(ok, "openssl s_client over IPv4 did not get its line back from "
          "the dual-stack listener")
    check(server.wait_output(r"accepted on ::ffff:127\.0\.0\.1", T_START),
          "the server did not see a v4-mapped local address")
    check(wait_established(server, "srv"), "the server's shim logged no "
          "TLS connection")
    got = raw_echo(port, b"in clear\n")
    check(b"in clear" not in got, "the listen endpoint echoed plaintext")


@case
def dual_stack_listener_any_serves_tls_to_ipv4(c):
    """A server under the shim on [::] (dual stack) with listen endpoint
    [::]:P; an IPv4 client (local address ::ffff:127.0.0.1) is served
    TLS, and a plaintext client gets nothing back."""
    dual_listener_case(c, "[::]")


@case
def dual_stack_listener_v4_address_endpoint(c):
    """The same with listen endpoint 127.0.0.1:P: the accepted socket's
    v4-mapped local address matches the IPv4 endpoint."""
    dual_listener_case(c, "127.0.0.1")


# ---- c) a JVM ---------------------------------------------------------------

@case
def jvm_socket_to_name_endpoint_is_tls(c):
    """A real JVM (java.net.Socket to localhost:P, compiled here with
    javac) under the shim reaches a TLS server through the name endpoint
    localhost:P: TLS on the wire, SNI localhost."""
    for tool in ("java", "javac"):
        check(shutil.which(tool), "%s is missing (make deps installs "
              "openjdk-17-jdk-headless)" % tool)
    src = c.write("LineClient.java", JAVA_CLIENT)
    javac = c.run("javac", ["javac", "-d", c.dir, src], timeout=T_LARGE)
    check(javac.p.returncode == 0, "javac failed")
    canary = "secshim-canary-%s" % os.urandom(6).hex()
    peer, port = sni_server(c)
    proxy, rport, c2s, s2c = relay(c, port)
    pol = c.policy(client_ep(c.suite, rport), level="debug")
    env = c.env(pol)
    # The JVM handles SIGSEGV itself (implicit null checks): an
    # AddressSanitizer runtime preloaded ahead of the shim must leave it.
    env["ASAN_OPTIONS"] += ":handle_segv=0:handle_sigbus=0:" \
        "allow_user_segv_handler=1"
    proc = c.run("java", ["java", "-Xshare:auto", "-cp", c.dir, "LineClient",
                          "localhost", str(rport), canary], env,
                 timeout=T_LARGE)
    conns = peer_conns(peer, 1)
    proxy.stop()
    check_tls_reply(proc, conns, canary, "localhost")
    check_wire_tls(c2s, s2c, canary)


# ---- d) SECSHIM_CONFIG -------------------------------------------------------

@case
def explicit_missing_config_stops_program(c):
    """SECSHIM_CONFIG names a file that does not exist: the operator asked
    for TLS, so the program stops before main with one line, exit 1,
    instead of running in clear."""
    missing = c.path("no-such-policy.cfg")
    proc = c.run("client", [c.suite.app("echo_client"), "127.0.0.1", "9",
                            "--line", "never sent"], c.env(missing))
    check(proc.p.returncode == 1, "exit %s, expected 1" % proc.p.returncode)
    lines = [l for l in proc.err().splitlines() if l.strip()]
    want = "secshim: SECSHIM_CONFIG=%s: cannot read the policy: No such " \
        "file or directory; not starting without it" % missing
    check(lines == [want], "stderr is not the one line %r" % want)
    check(proc.out() == "", "the program ran (it printed something)")


@case
def default_missing_config_stays_inert(c):
    """SECSHIM_CONFIG unset (or empty) and /etc/secshim/secshim.cfg
    missing: nobody asked for TLS; the program runs in clear, unchanged."""
    check(not os.path.exists("/etc/secshim/secshim.cfg"),
          "/etc/secshim/secshim.cfg exists on this machine: cannot test")
    server, port = echo_server(c, None, port=0)
    for name, env in (("unset", c.env()), ("empty", dict(c.env(),
                                                         SECSHIM_CONFIG=""))):
        proc = c.run("client-" + name, [c.suite.app("echo_client"),
                                        "127.0.0.1", str(port), "--line",
                                        "inert " + name], env)
        check(proc.p.returncode == 0 and ("inert " + name) in proc.out(),
              "SECSHIM_CONFIG %s: the plaintext echo failed" % name)
        check(not shim_errors(proc), "the shim logged errors")


# ---- e) the SNI name of address endpoints ----------------------------------

@case
def sni_ambiguous_address_endpoint_sends_neither(c):
    """Address endpoint 127.0.0.1:P; the program resolved two names to
    127.0.0.1 (alias-one, alias-two). Which one it meant is unknown, so
    neither is sent: no SNI, and the certificate is checked against the
    address 127.0.0.1 (its IP SAN), so the connection succeeds. The shim
    once sent the newest name, and the check against it failed."""
    proc, conns, c2s, s2c, canary = through_relay(
        c, "127.0.0.1", ["--resolve", "alias-one", "--resolve", "alias-two",
                         "127.0.0.1", "RELAY_PORT"], hosts=ALIAS_HOSTS)
    check_tls_reply(proc, conns, canary, "-")
    check(re.search(r"TLS name '127\.0\.0\.1' \(the program resolved "
                    r"several names", proc.err()),
          "the shim's debug log does not say the names were ambiguous")
    check_wire_tls(c2s, s2c, canary)


@case
def sni_ambiguous_address_endpoint_uses_target_name(c):
    """The same with tls-target-name = "localhost": that name is sent and
    checked."""
    proc, conns, c2s, s2c, canary = through_relay(
        c, "127.0.0.1", ["--resolve", "alias-one", "--resolve", "alias-two",
                         "127.0.0.1", "RELAY_PORT"], hosts=ALIAS_HOSTS,
        tls_target_name="localhost")
    check_tls_reply(proc, conns, canary, "localhost")


@case
def sni_unambiguous_address_endpoint_uses_resolved_name(c):
    """Address endpoint 127.0.0.1:P, the program resolved one name for it
    (localhost): that name is sent and checked."""
    proc, conns, c2s, s2c, canary = through_relay(
        c, "127.0.0.1", ["--resolve", "localhost", "127.0.0.1",
                         "RELAY_PORT"])
    check_tls_reply(proc, conns, canary, "localhost")


# ---- a name the shim cannot resolve ----------------------------------------

def with_files_only_resolver(c, argv):
    """argv run where names come from the case's hosts file alone (no DNS
    query leaves the machine): /etc/hosts and /etc/nsswitch.conf
    bind-mounted in a private mount namespace."""
    hosts = c.write("hosts", "127.0.0.1 localhost\n::1 localhost\n")
    nss = c.write("nsswitch.conf", "hosts: files\n")
    ns = ["unshare", "--mount"] if os.geteuid() == 0 else \
        ["unshare", "--map-root-user", "--mount"]
    return ns + ["sh", "-c", 'mount --bind "$1" /etc/hosts && '
                 'mount --bind "$2" /etc/nsswitch.conf && shift 2 && '
                 'exec "$@"', "sh", hosts, nss] + argv


@case
def unresolvable_name_endpoint_fails_closed(c):
    """Endpoint unresolvable-name:P, a name the shim cannot resolve; the
    program connects to 127.0.0.1:P, where a plain echo server listens.
    The shim cannot tell whether that is the endpoint, so the connection
    is TLS (and fails against the plain server) instead of carrying the
    line in clear (before, "no destination matches it" let it through)."""
    with PlainEchoOn("127.0.0.1") as server:
        canary = "secshim-canary-%s" % os.urandom(6).hex()
        pol = c.policy(client_ep(c.suite, server.port,
                                 host="unresolvable-name"))
        argv = [PY, script(c, "client.py", CLIENT_PY), "--line", canary,
                "127.0.0.1", str(server.port)]
        argv = with_files_only_resolver(c, shimmed_env_args(c, pol) + argv)
        proc = c.run("client", argv, c.env(preload=False))
        check(canary.encode() not in server.received, "the line reached "
              "the plain server in clear")
        check(proc.p.returncode != 0, "the client reported success")
        check("cannot resolve 'unresolvable-name'" in proc.err(),
              "the shim did not say why")
        check(server.received[:1] == b"\x16", "no TLS ClientHello reached "
              "the server (got %r)" % server.received[:16])
