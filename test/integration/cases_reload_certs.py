# A bad certificate appearing at a reload (issue 12, "Fault suite": an
# expired, revoked or wrong-name certificate): a shimmed server's
# certificate file is replaced while it runs and a connection opened
# before stays open. New connections are refused (by the client's
# verification, or by the reload itself, which keeps the previous
# context), the change is logged, and the old connection is untouched.
# Loaded by test/integration/run into its own namespace.

import ssl


def held_tls_connection(c, port):
    """A TLS client outside the shim (Python's ssl, trusting the test
    root) that connects now and echoes one line: the connection opened
    before the change."""
    ctx = ssl.create_default_context(cafile=c.suite.pki("ca.pem"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=T_RUN)
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    echo_line(tls, b"before the reload\n")
    return tls


def echo_line(tls, line):
    tls.sendall(line)
    got = recv_line(tls)
    check(got == line, "the held connection echoed %r, not %r" % (got, line))


def reload_bad_certificate_case(cert, refused, logged):
    """cert replaces the server's certificate at a reload; refused: the
    reason a new shimmed client's connect fails with (None: the reload is
    itself refused and new clients keep getting the old certificate);
    logged: what the server's shim says about the reload."""
    def run(c):
        s = c.suite
        cfile, kfile = live_files(c, "live")
        port = free_port()
        pol = c.policy(ep("srv", listen="127.0.0.1:%d" % port,
                          certificate=cfile, certificate_key=kfile))
        server, _ = echo_server(c, pol, port=port)
        cpol = c.policy(client_ep(s, port, tls_crl=s.pki("crl.pem")),
                        name="client.cfg")
        check(numbered_client(c, port, cpol, "first").p.returncode == 0,
              "the first client was not served")
        held = held_tls_connection(c, port)
        try:
            for ext in ("pem", "key"):
                shutil.copy(s.pki("%s.%s" % (cert, ext)),
                            c.path("live.%s.new" % ext))
                os.replace(c.path("live.%s.new" % ext),
                           c.path("live." + ext))
            chain = s.pki(cert + ".pem.chain")
            if os.path.exists(chain):  # the leaf and its intermediate
                with open(c.path("live.pem"), "a") as f, open(chain) as g:
                    f.write(g.read())

            def after():
                proc = numbered_client(c, port, cpol, "after")
                if not re.search(logged, server.err()):
                    return None
                if refused is None:
                    return proc.p.returncode == 0 and proc
                return (proc.p.returncode == 3 and
                        re.search(refused, proc.err()) and proc)
            proc = retry_until(c, after)
            check(proc, "after the reload: the server's log never said /%s/ "
                  "with new clients %s" % (logged, "served by the old "
                  "certificate" if refused is None else
                  "refused for /%s/" % refused))
            echo_line(held, b"after the reload\n")
        finally:
            held.close()
        check(server.alive(), "the server died")
    run.__doc__ = ("The server's certificate becomes %s.pem at a reload: "
                   "new connections %s, the reload is logged, a connection "
                   "opened before still echoes." % (cert, "refused" if refused
                   else "keep the old certificate (the reload is refused)"))
    return run


# The log's event= fields, not its sentences: a case's directory (in the
# policy's path on every line) holds the case's name.
case(reload_bad_certificate_case(
        "wronghost", r"does not match host name 'localhost'",
        r"event=policy_reloaded"),
     name="reload_wrong_name_certificate_refused_old_untouched")
case(reload_bad_certificate_case(
        "revoked", r"(?i)revoked", r"event=policy_reloaded"),
     name="reload_revoked_certificate_refused_old_untouched")
case(reload_bad_certificate_case(
        "expired", r"(?i)expired", r"event=cert_expired"),
     name="reload_expired_certificate_refused_old_untouched")
