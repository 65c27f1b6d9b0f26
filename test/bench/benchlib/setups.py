"""The setups every scenario runs in, and the certificates they share.

  plain     client -> server                          (no TLS: the ceiling)
  secshim   client+shim -> server+shim                (TLS in-process)
  baseline  the same with an older build's libsecshim.so (--baseline DIR)
  stunnel   client -> stunnel -> stunnel -> server    (two proxy processes,
            TCP_NODELAY on both sides of each)
  socat     client -> socat -> socat(fork) -> server  (two proxy processes,
            one child per connection in each)

The client and server programs are plaintext (build/apps, iperf3): TLS
comes from the shim or the proxies. Every TLS setup negotiates TLS 1.3
(socat 1.7.4 cannot pin it, but every side offers 1.3) and the client
verifies the server chain against the same CA and the name localhost.
"""
import os
import re

from .procs import ROOT, Procs, free_port, run

CERTS = {"ec": "ECDSA P-256", "rsa": "RSA-2048"}

# socat listens with a backlog of 5 by default: 16 concurrent clients would
# overflow it and wait for SYN retransmissions (1 s). 128, as the servers.
SOCAT_BACKLOG = 128

# The extensions of tools/secshim-pki's server leaf, for an ECDSA key
# (digitalSignature only: an EC key does no key encipherment).
EC_EXT = """[ ext ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
"""


def make_pki(tmp):
    """tools/secshim-pki's PKI (RSA-2048 leaves), plus an ECDSA P-256
    server leaf signed by the same intermediate CA. Returns the paths:
    {"ca": ..., "rsa": (pem, key), "ec": (pem, key)}."""
    pki = os.path.join(tmp, "pki")
    run([f"{ROOT}/tools/secshim-pki", pki])
    ext = os.path.join(pki, "ec-ext.cnf")
    with open(ext, "w") as f:
        f.write(EC_EXT)
    key, csr, crt = (os.path.join(pki, n) for n in ("server-ec.key", "server-ec.csr", "server-ec.crt"))
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key])
    run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=secshim-server-ec", "-out", csr])
    run(["openssl", "x509", "-req", "-in", csr, "-CA", f"{pki}/inter-ca.pem",
         "-CAkey", f"{pki}/inter-ca.key", "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
         "-days", "30", "-extfile", ext, "-extensions", "ext", "-out", crt])
    with open(os.path.join(pki, "server-ec.pem"), "w") as out:
        for part in (crt, f"{pki}/inter-ca.pem"):  # leaf + chain, as server.pem
            with open(part) as f:
                out.write(f.read())
    return {"ca": f"{pki}/ca.pem", "rsa": (f"{pki}/server.pem", f"{pki}/server.key"),
            "ec": (f"{pki}/server-ec.pem", key)}


def resumption_supported(lib_dir, pki, tmp):
    """Whether the secshim of lib_dir knows the per-endpoint option
    session-resumption: `secshim check` of a policy that sets it."""
    cli = os.path.join(lib_dir, "secshim")
    if not os.access(cli, os.X_OK):
        return False
    probe = os.path.join(tmp, "probe-resumption.cfg")
    with open(probe, "w") as f:
        f.write(f"""version = 1;
endpoints = (
  {{ name = "probe"; connect = "127.0.0.1:9"; trusted-ca = "{pki['ca']}"; session-resumption = false; }}
);
""")
    try:
        run([cli, "check", "-c", probe], timeout=30)
        return True
    except RuntimeError:
        return False


def shim_policy(path, port, pki, cert="ec", resume=True, level="error", resume_option=True):
    """The policy of a secshim setup: a listen endpoint on 127.0.0.1:port
    and a connect endpoint localhost:port. resume=False adds
    session-resumption = false to both, when the build knows it."""
    pem, key = pki[cert]
    opt = "" if resume or not resume_option else " session-resumption = false;"
    with open(path, "w") as f:
        f.write(f"""version = 1;
log = {{ level = "{level}"; file = "stderr"; }};
endpoints = (
  {{ name = "bench-server"; listen = "127.0.0.1:{port}";
     certificate = "{pem}"; certificate-key = "{key}"; sec-protocol = "TLSv13";{opt} }},
  {{ name = "bench-client"; connect = "localhost:{port}";
     trusted-ca = "{pki['ca']}"; sec-protocol = "TLSv13";{opt} }}
);
""")
    return path


class Context:
    """What every setup of a run shares."""

    def __init__(self, build, tmp, pki, baseline=None):
        self.build, self.tmp, self.pki, self.baseline = build, tmp, pki, baseline
        self.resumption = {"secshim": resumption_supported(build, pki, tmp)}
        if baseline:
            self.resumption["baseline"] = resumption_supported(baseline, pki, tmp)
        self.serial = 0

    def name(self, kind):
        self.serial += 1
        return f"{kind}-{self.serial}"


def server_argv(ctx, server, port):
    if server == "echo":
        return [f"{ctx.build}/apps/echo_server", str(port)]
    if server == "epoll":
        return [f"{ctx.build}/apps/bench_epoll_server", str(port)]
    if server == "iperf3":
        return ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)]
    raise ValueError(server)


class Setup:
    """Starts the server side of one setup (and the client-side proxy);
    the client connects to localhost:port with client_env (and runs on
    client_cpus). cores: (server CPUs, client CPUs), each side's
    processes bound to its own (procs.core_pair), or None for anywhere."""

    def __init__(self, ctx, kind, server="echo", cert="ec", resume=True, level="error", cores=None):
        self.ctx, self.kind, self.server, self.cert = ctx, kind, server, cert
        self.resume, self.level = resume, level
        self.server_cpus, self.client_cpus = cores or (None, None)
        self.name = ctx.name(kind)
        self.procs = Procs(ctx.tmp, self.name)
        self.client_env = dict(os.environ)
        self.server_side = []  # processes whose memory is the server's
        self.client_side = []  # the client-side proxy, if any
        self.port = None

    def __enter__(self):
        try:
            self.port = self.up()
        except BaseException:
            self.procs.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.procs.stop()

    def up(self):
        ctx, app_port = self.ctx, free_port()
        argv = server_argv(ctx, self.server, app_port)
        if self.kind == "plain":
            self.server_side.append(self.procs.start(argv, port=app_port, cpus=self.server_cpus))
            return app_port
        if self.kind in ("secshim", "baseline"):
            lib = ctx.baseline if self.kind == "baseline" else ctx.build
            policy = shim_policy(os.path.join(ctx.tmp, f"{self.name}.cfg"), app_port, ctx.pki,
                                 self.cert, self.resume, self.level, ctx.resumption[self.kind])
            env = dict(os.environ, SECSHIM_CONFIG=policy, LD_PRELOAD=f"{lib}/libsecshim.so")
            self.server_side.append(self.procs.start(argv, env=env, port=app_port, cpus=self.server_cpus))
            self.client_env = env
            return app_port
        self.server_side.append(self.procs.start(argv, port=app_port, cpus=self.server_cpus))
        tls_port, front_port = free_port(), free_port()
        if self.kind == "stunnel":
            return self.stunnel(app_port, tls_port, front_port)
        if self.kind == "socat":
            pem, key = ctx.pki[self.cert]
            self.server_side.append(self.procs.start(
                ["socat", f"OPENSSL-LISTEN:{tls_port},bind=127.0.0.1,reuseaddr,fork,backlog={SOCAT_BACKLOG},"
                 f"cert={pem},key={key},verify=0", f"TCP:127.0.0.1:{app_port}"], port=tls_port,
                cpus=self.server_cpus))
            self.client_side.append(self.procs.start(
                ["socat", f"TCP-LISTEN:{front_port},bind=127.0.0.1,reuseaddr,fork,backlog={SOCAT_BACKLOG}",
                 f"OPENSSL:localhost:{tls_port},cafile={ctx.pki['ca']}"], port=front_port,
                cpus=self.client_cpus))
            return front_port
        raise ValueError(self.kind)

    def stunnel(self, app_port, tls_port, front_port):
        """Both stunnels with TCP_NODELAY on each side. resume=False turns
        resumption off on both (sessionResume = no; the server also sends
        no tickets), else each keeps its default session cache (the
        client resumes from it)."""
        pem, key = self.ctx.pki[self.cert]
        common = "socket = l:TCP_NODELAY=1\nsocket = r:TCP_NODELAY=1\nsslVersion = TLSv1.3\n"
        if not self.resume:
            common += "sessionResume = no\n"
        server = (f"[s]\naccept = 127.0.0.1:{tls_port}\nconnect = 127.0.0.1:{app_port}\n"
                  f"cert = {pem}\nkey = {key}\n" + common +
                  ("" if self.resume else "options = NO_TICKET\n"))
        client = (f"[c]\nclient = yes\naccept = 127.0.0.1:{front_port}\n"
                  f"connect = 127.0.0.1:{tls_port}\nCAfile = {self.ctx.pki['ca']}\n"
                  "verifyChain = yes\ncheckHost = localhost\n" + common)
        self.server_side.append(self.procs.start(
            ["stunnel", self.stunnel_conf("server", server)], port=tls_port, cpus=self.server_cpus))
        self.client_side.append(self.procs.start(
            ["stunnel", self.stunnel_conf("client", client)], port=front_port, cpus=self.client_cpus))
        return front_port

    def stunnel_conf(self, side, service):
        path = os.path.join(self.ctx.tmp, f"{self.name}-stunnel-{side}.conf")
        with open(path, "w") as f:
            f.write(f"foreground = yes\npid =\ndebug = {self.stunnel_debug}\n" + service)
        return path

    stunnel_debug = 3  # stunnel's log level: errors only (7 to see each session)

    def server_log(self):
        with open(self.server_side[0].log) as f:
            return f.read()

    def cipher(self):
        """The TLS 1.3 suite of the first connection the server-side shim
        logged ("established: TLSv1.3 TLS_..."; needs level info)."""
        m = re.search(r"established: (TLSv[0-9.]+) (TLS_[A-Z0-9_]+)", self.server_log())
        return m.group(2) if m else None
