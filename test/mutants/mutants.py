"""The mutants of test/mutants/run (issue 12, "Tests that catch what they
claim"): each a named, minimal change to one source file that breaks one
rule the product promises, and the tests that must notice. A mutant that
survives its tests is a rule nobody checks.

Each entry: name; file; old, the exact text (it must occur once); new, what
it becomes; tests, commands run from the copy's root ("unit NAME" is
build/test/NAME, "integration FILTER..." is test/integration/run build
FILTER...); curated, whether make test runs it (the rest run with
make mutants); why, the rule it breaks.
"""

MUTANTS = [
    dict(
        name="compat_mode_for_any_value",
        why="GCTI_SECPACK_COMPAT_MODE switches compatibility mode on only "
            "for the value 1, not for 0 or anything else",
        file="src/engine/compat.c",
        old='compat_on = value != NULL && strcmp(value, "1") == 0;',
        new='compat_on = value != NULL;',
        tests=["integration compat_mode_only_for_the_value_1"],
        curated=True),
    dict(
        name="sni_never_sent",
        why="a connect endpoint sends its server name as SNI",
        file="src/engine/conn.c",
        old="SSL_set_tlsext_host_name(c->ssl, host) != 1)",
        new="(0 && SSL_set_tlsext_host_name(c->ssl, host) != 1))",
        tests=["integration sni_ alias_number_to_name_endpoint_is_tls"],
        curated=True),
    dict(
        name="name_check_off_turns_verification_off",
        why='tls-target-name-check = "no" turns off the name check only, '
            "never chain verification",
        file="src/engine/conn.c",
        old="        if (!c->ep->target_name_check)\n            host = NULL;",
        new="        if (!c->ep->target_name_check) {\n            host = NULL;\n"
            "            SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);\n"
            "        }",
        tests=["integration name_check_off"],
        curated=True),
    dict(
        name="close_sends_no_close_notify",
        why="a last close by the owner sends close_notify",
        file="src/engine/conn.c",
        old="    int r = SSL_shutdown(c->ssl);\n    if (r < 0 || c->bio_nomem) {",
        new="    int r = 1;\n    if (r < 0 || c->bio_nomem) {",
        tests=["unit test_conn", "integration close_"],
        curated=True),
    dict(
        name="epollet_as_level_triggered",
        why="EPOLLET reports a ready socket once per edge, not at every wait",
        file="src/shim/epoll.c",
        old="    if (report && reg_et(g))",
        new="    if (report && 0 && reg_et(g))",
        tests=["integration epoll_et ev_epoll_et"],
        curated=True),
    dict(
        name="strict_tlsv11_accepts_tls10",
        why='sec-protocol = "TLSv11" connects at TLS 1.1 only',
        file="src/engine/protocol.c",
        old='{SS_V_TLS11, TLS1_1_VERSION, "TLSv1.1"',
        new='{SS_V_TLS11, TLS1_VERSION, "TLSv1.1"',
        tests=["unit test_protocol"],
        curated=False),
    dict(
        name="revoked_ca_relaxation_on_a_leaf",
        why="compatibility mode accepts a revoked chain entry only when it "
            "is a CA (depth > 0) listed in trusted-ca, never a leaf",
        file="src/engine/verify.c",
        old="        if (depth > 0 &&\n            is_trusted_listed(v, X509_STORE_CTX_get_current_cert(ctx)))",
        new="        if (depth >= 0 &&\n            is_trusted_listed(v, X509_STORE_CTX_get_current_cert(ctx)))",
        tests=["unit test_verify"],
        curated=False),
    dict(
        name="relaxations_without_compat_mode",
        why="the two relaxations apply only in compatibility mode",
        file="src/engine/verify.c",
        old="    if (!v->compat)\n        return 0;\n    switch (error) {",
        new="    switch (error) {",
        tests=["unit test_verify"],
        curated=False),
    dict(
        name="crl_checks_only_the_leaf",
        why="with tls-crl every entry of the chain is checked for revocation",
        file="src/engine/verify.c",
        old="                                           X509_V_FLAG_CRL_CHECK |\n"
            "                                           X509_V_FLAG_CRL_CHECK_ALL),",
        new="                                           X509_V_FLAG_CRL_CHECK),",
        tests=["unit test_verify"],
        curated=False),
    dict(
        name="mutual_tls_without_a_client_certificate",
        why="a tls-mutual listen endpoint refuses a client without a "
            "certificate",
        file="src/engine/tlsctx.c",
        old="? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT",
        new="? SSL_VERIFY_PEER",
        tests=["unit test_conn", "integration mutual"],
        curated=False),
    dict(
        name="msg_peek_consumes",
        why="recv(MSG_PEEK) leaves the bytes for the next read",
        file="src/engine/conn.c",
        old="    int r = peek ? SSL_peek_ex(c->ssl, buf, len, nread)",
        new="    int r = 0 ? SSL_peek_ex(c->ssl, buf, len, nread)",
        tests=["integration peek"],
        curated=False),
    dict(
        name="revoked_ca_relaxation_unlisted",
        why="compatibility mode accepts a revoked CA only when trusted-ca "
            "lists it explicitly",
        file="src/engine/verify.c",
        old="        if (depth > 0 &&\n            is_trusted_listed(v, X509_STORE_CTX_get_current_cert(ctx)))",
        new="        if (depth > 0 &&\n            (1 || is_trusted_listed(v, X509_STORE_CTX_get_current_cert(ctx))))",
        tests=["unit test_verify"],
        curated=False),
    dict(
        name="compat_relaxes_any_error",
        why="compatibility mode relaxes exactly its two checks and nothing "
            "else (an expired or untrusted chain stays refused)",
        file="src/engine/verify.c",
        old="        return depth == 0 ? SS_RELAX_KEY_USAGE : 0;\n"
            "    default:\n        return 0;",
        new="        return depth == 0 ? SS_RELAX_KEY_USAGE : 0;\n"
            "    default:\n        return SS_RELAX_KEY_USAGE;",
        tests=["unit test_verify"],
        curated=False),
    dict(
        name="stand_in_failure_left_unmanaged",
        why="fail closed: a connection whose stand-in cannot be had is "
            "refused (EMFILE, the socket shut down), never left as the "
            "program's plaintext socket",
        file="src/shim/sockets.c",
        old="    if (shim_standin_install(fd, family, &status) != 0) {",
        new="    if (shim_standin_install(fd, family, &status) != 0 && 0) {",
        tests=["integration stand_in"],
        curated=True),
    dict(
        name="epoll_edge_given_twice",
        why="an edge-triggered registration gets one edge per arrival, also "
            "when another look took the bytes into the engine",
        file="src/shim/epoll.c",
        old="                  !edge_already_given(g, kernel, rx));",
        new="                  (1 || !edge_already_given(g, kernel, rx)));",
        tests=["integration epoll_edge_taken_in"],
        curated=False),
    dict(
        name="nagle_window_never_opened",
        why="no record waits behind Nagle's algorithm: the first write "
            "after a handshake leaves at once",
        file="src/shim/nagle.c",
        old="        on == 0 && set_nodelay(s->priv_fd, 1) == 0)",
        new="        on == 0 && 0)",
        tests=["integration nagle_first_write"],
        curated=False),
    dict(
        name="epoll_out_edge_taken_as_given",
        why="a registration that asks for EPOLLOUT gets every write-room "
            "edge, also one a look spent flushing the engine's ciphertext",
        file="src/shim/epoll.c",
        old="    if ((reg_want(g) & EV_OUT) != 0 ||\n"
            "        (kernel & (POLLERR | POLLHUP | POLLRDHUP)) != 0 ||",
        new="    if ((kernel & (POLLERR | POLLHUP | POLLRDHUP)) != 0 ||",
        tests=["integration epoll_et_out_edge_queued"],
        curated=False),
]
