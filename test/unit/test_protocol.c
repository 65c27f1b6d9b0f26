/*
 * test_protocol.c - sec-protocol / tls-version / protocol-list parsing, and
 * real in-process handshakes between two SSL_CTXs configured only by
 * ss_protocol_apply, to prove each mode connects exactly when it should.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "secshim/compat.h"
#include "secshim/protocol.h"
#include "testutil.h"

/* ------------------------------------------------------------------ */
/* Parsing                                                              */

struct parse_case {
    const char *sec_protocol;
    const char *tls_version;
    const char *list[3]; /* NULL-terminated */
    enum ss_proto_mode mode;
    unsigned versions;
    int min, max;
    int level;
    bool legacy;
    const char *describe;
};

static size_t list_len(const char *const *list)
{
    size_t n = 0;
    while (n < 3 && list[n] != NULL)
        n++;
    return n;
}

static const struct parse_case parse_cases[] = {
    {NULL, NULL, {NULL}, SS_PROTO_DEFAULT, SS_V_TLS12 | SS_V_TLS13,
     TLS1_2_VERSION, TLS1_3_VERSION, -1, false,
     "TLSv1.2-TLSv1.3 (default)"},
    {"", "", {NULL}, SS_PROTO_DEFAULT, SS_V_TLS12 | SS_V_TLS13,
     TLS1_2_VERSION, TLS1_3_VERSION, -1, false,
     "TLSv1.2-TLSv1.3 (default)"},
    {"SSLv23", NULL, {NULL}, SS_PROTO_FLEXIBLE,
     SS_V_TLS1 | SS_V_TLS11 | SS_V_TLS12 | SS_V_TLS13, TLS1_VERSION,
     TLS1_3_VERSION, 0, true, "TLSv1-TLSv1.3 (flexible)"},
    {"TLSv1", NULL, {NULL}, SS_PROTO_STRICT, SS_V_TLS1, TLS1_VERSION,
     TLS1_VERSION, 0, true, "TLSv1 only (strict)"},
    {"TLSv11", NULL, {NULL}, SS_PROTO_STRICT, SS_V_TLS11, TLS1_1_VERSION,
     TLS1_1_VERSION, 0, true, "TLSv1.1 only (strict)"},
    {"TLSv12", NULL, {NULL}, SS_PROTO_STRICT, SS_V_TLS12, TLS1_2_VERSION,
     TLS1_2_VERSION, -1, false, "TLSv1.2 only (strict)"},
    {"TLSv13", NULL, {NULL}, SS_PROTO_STRICT, SS_V_TLS13, TLS1_3_VERSION,
     TLS1_3_VERSION, -1, false, "TLSv1.3 only (strict)"},
    {NULL, "TLSv1", {NULL}, SS_PROTO_STRICT, SS_V_TLS1, TLS1_VERSION,
     TLS1_VERSION, 0, true, "TLSv1 only (strict)"},
    {NULL, "TLSv1.1", {NULL}, SS_PROTO_STRICT, SS_V_TLS11, TLS1_1_VERSION,
     TLS1_1_VERSION, 0, true, "TLSv1.1 only (strict)"},
    {NULL, "TLSv1.2", {NULL}, SS_PROTO_STRICT, SS_V_TLS12, TLS1_2_VERSION,
     TLS1_2_VERSION, -1, false, "TLSv1.2 only (strict)"},
    {NULL, "TLSv1.3", {NULL}, SS_PROTO_STRICT, SS_V_TLS13, TLS1_3_VERSION,
     TLS1_3_VERSION, -1, false, "TLSv1.3 only (strict)"},
    {NULL, NULL, {"TLSv1.2", NULL}, SS_PROTO_LIST, SS_V_TLS12,
     TLS1_2_VERSION, TLS1_2_VERSION, -1, false, "TLSv1.2 (list)"},
    {NULL, NULL, {"TLSv1.3", "TLSv1.2", NULL}, SS_PROTO_LIST,
     SS_V_TLS12 | SS_V_TLS13, TLS1_2_VERSION, TLS1_3_VERSION, -1, false,
     "TLSv1.2,TLSv1.3 (list)"},
    {NULL, NULL, {"TLSv1.1", "TLSv1.3", NULL}, SS_PROTO_LIST,
     SS_V_TLS11 | SS_V_TLS13, TLS1_1_VERSION, TLS1_3_VERSION, 0, true,
     "TLSv1.1,TLSv1.3 (list)"},
    {NULL, NULL, {"TLSv1", "TLSv1", "TLSv1.1"}, SS_PROTO_LIST,
     SS_V_TLS1 | SS_V_TLS11, TLS1_VERSION, TLS1_1_VERSION, 0, true,
     "TLSv1,TLSv1.1 (list)"},
};

static void test_parse_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]);
         i++) {
        const struct parse_case *pc = &parse_cases[i];
        struct ss_proto p;
        struct ss_errbuf err = {{0}};
        int rc = ss_protocol_parse(pc->sec_protocol, pc->tls_version,
                                   pc->list, list_len(pc->list), &p, &err);
        if (rc != SS_OK)
            fail_msg("case %zu: %s: %s", i, ss_strerror(rc), err.msg);
        assert_int_equal(p.mode, pc->mode);
        assert_int_equal(p.versions, pc->versions);
        assert_int_equal(p.min_version, pc->min);
        assert_int_equal(p.max_version, pc->max);
        assert_int_equal(p.security_level, pc->level);
        assert_int_equal(p.legacy, pc->legacy);
        char desc[128];
        assert_string_equal(ss_protocol_describe(&p, desc, sizeof(desc)),
                            pc->describe);
    }
}

static void expect_parse_error(const char *sec, const char *tls,
                               const char *const *list, size_t n, int code,
                               const char *msg)
{
    struct ss_proto p;
    struct ss_errbuf err = {{0}};
    assert_int_equal(ss_protocol_parse(sec, tls, list, n, &p, &err), code);
    assert_string_equal(err.msg, msg);
}

static const char *const conflict_msg =
    "sec-protocol, tls-version and protocol-list are mutually exclusive";

static void test_parse_conflicts(void **state)
{
    (void)state;
    const char *list[] = {"TLSv1.2"};
    expect_parse_error("TLSv12", "TLSv1.2", NULL, 0, SS_ERR_CONFIG,
                       conflict_msg);
    expect_parse_error("TLSv12", NULL, list, 1, SS_ERR_CONFIG,
                       conflict_msg);
    expect_parse_error(NULL, "TLSv1.2", list, 1, SS_ERR_CONFIG,
                       conflict_msg);
    expect_parse_error("SSLv23", "TLSv1.3", list, 1, SS_ERR_CONFIG,
                       conflict_msg);
}

static void test_parse_unknown(void **state)
{
    (void)state;
    /* The Genesys names are case-sensitive, and the Java names are not
     * sec-protocol values (nor the other way round). */
    expect_parse_error("tlsv12", NULL, NULL, 0, SS_ERR_CONFIG,
                       "unknown sec-protocol 'tlsv12': valid values are "
                       "SSLv23, SSLv3, TLSv1, TLSv11, TLSv12, TLSv13 "
                       "(case-sensitive)");
    expect_parse_error("TLSv1.2", NULL, NULL, 0, SS_ERR_CONFIG,
                       "unknown sec-protocol 'TLSv1.2': valid values are "
                       "SSLv23, SSLv3, TLSv1, TLSv11, TLSv12, TLSv13 "
                       "(case-sensitive)");
    expect_parse_error(NULL, "TLSv12", NULL, 0, SS_ERR_CONFIG,
                       "unknown tls-version 'TLSv12': valid values are "
                       "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 (case-sensitive)");
    expect_parse_error(NULL, "SSLv3", NULL, 0, SS_ERR_CONFIG,
                       "unknown tls-version 'SSLv3': valid values are "
                       "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 (case-sensitive)");
    const char *list[] = {"TLSv1.2", "TLSv1.4"};
    expect_parse_error(NULL, NULL, list, 2, SS_ERR_CONFIG,
                       "unknown protocol-list entry 'TLSv1.4': valid values "
                       "are SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 "
                       "(case-sensitive)");
}

static void test_parse_sslv3_unsupported(void **state)
{
    (void)state;
    if (SS_HAVE_SSL3)
        skip();
    expect_parse_error("SSLv3", NULL, NULL, 0, SS_ERR_UNSUPPORTED,
                       "SSLv3 is not supported by the linked OpenSSL");
    const char *list[] = {"SSLv3", "TLSv1.2"};
    expect_parse_error(NULL, NULL, list, 2, SS_ERR_UNSUPPORTED,
                       "SSLv3 is not supported by the linked OpenSSL");
}

static void test_client_versions(void **state)
{
    (void)state;
    struct ss_proto p = {.versions = SS_V_TLS11 | SS_V_TLS13};
    assert_int_equal(ss_protocol_client_versions(&p), SS_V_TLS13);
    p.versions = SS_V_TLS1 | SS_V_TLS11 | SS_V_TLS13;
    assert_int_equal(ss_protocol_client_versions(&p), SS_V_TLS13);
    p.versions = SS_V_TLS1 | SS_V_TLS12 | SS_V_TLS13;
    assert_int_equal(ss_protocol_client_versions(&p),
                     SS_V_TLS12 | SS_V_TLS13);
    p.versions = SS_V_TLS1 | SS_V_TLS11;
    assert_int_equal(ss_protocol_client_versions(&p),
                     SS_V_TLS1 | SS_V_TLS11);
}

static void test_version_names(void **state)
{
    (void)state;
    assert_string_equal(ss_protocol_version_name(TLS1_VERSION), "TLSv1");
    assert_string_equal(ss_protocol_version_name(TLS1_1_VERSION),
                        "TLSv1.1");
    assert_string_equal(ss_protocol_version_name(TLS1_3_VERSION),
                        "TLSv1.3");
    assert_string_equal(ss_protocol_version_name(0x1234), "unknown");
}

static void test_apply_sets_context(void **state)
{
    (void)state;
    const char *list[] = {"TLSv1.1", "TLSv1.3"};
    struct ss_proto p;
    assert_int_equal(ss_protocol_parse(NULL, NULL, list, 2, &p, NULL),
                     SS_OK);
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    assert_non_null(ctx);
    assert_int_equal(ss_protocol_apply(ctx, &p, NULL), SS_OK);
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_1_VERSION);
    assert_int_equal(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
    assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_TLSv1_2);
    assert_false(SSL_CTX_get_options(ctx) & SSL_OP_NO_TLSv1_1);
    assert_int_equal(SSL_CTX_get_security_level(ctx), 0);
    SSL_CTX_free(ctx);

    /* The default keeps OpenSSL's security level. */
    assert_int_equal(ss_protocol_parse(NULL, NULL, NULL, 0, &p, NULL),
                     SS_OK);
    ctx = SSL_CTX_new(TLS_method());
    assert_non_null(ctx);
    int level = SSL_CTX_get_security_level(ctx);
    assert_int_equal(ss_protocol_apply(ctx, &p, NULL), SS_OK);
    assert_int_equal(SSL_CTX_get_security_level(ctx), level);
    SSL_CTX_free(ctx);

    struct ss_errbuf err = {{0}};
    struct ss_proto empty = {0};
    assert_int_equal(ss_protocol_apply(NULL, &empty, &err), SS_ERR_INVAL);
    assert_string_equal(err.msg, "no protocol versions to apply");
}

/* ------------------------------------------------------------------ */
/* Handshakes                                                           */

/* A context whose versions come from ss_protocol_apply alone. The client
 * does not verify: this test is about versions, test_verify about trust. */
static SSL_CTX *make_ctx(bool server, const char *sec,
                         const char *const *list, size_t n)
{
    struct ss_proto p;
    struct ss_errbuf err = {{0}};
    int rc = ss_protocol_parse(sec, NULL, list, n, &p, &err);
    if (rc != SS_OK)
        fail_msg("parse %s: %s", sec ? sec : "(list)", err.msg);
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method()
                                      : TLS_client_method());
    assert_non_null(ctx);
    rc = ss_protocol_apply(ctx, &p, &err);
    if (rc != SS_OK)
        fail_msg("apply: %s", err.msg);
    if (server) {
        assert_int_equal(SSL_CTX_use_certificate_chain_file(
                             ctx, tu_pki_file("server.pem")), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(
                             ctx, tu_pki_file("server.key"),
                             SSL_FILETYPE_PEM), 1);
    }
    return ctx;
}

static bool step_done(SSL *ssl, bool *done, bool *failed)
{
    if (*done || *failed)
        return true;
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
        *done = true;
        return true;
    }
    int e = SSL_get_error(ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        *failed = true;
    return *failed;
}

/* Runs a handshake over a non-blocking socketpair; returns the version
 * both sides agreed on, or 0 when it failed, and the suite's name in
 * cipher (when not NULL; "" on failure). Bounded: no waiting. */
static int handshake(SSL_CTX *client_ctx, SSL_CTX *server_ctx, char *cipher,
                     size_t cipher_len)
{
    int sv[2];
    tu_socketpair_nonblock(sv);
    SSL *c = SSL_new(client_ctx);
    SSL *s = SSL_new(server_ctx);
    assert_non_null(c);
    assert_non_null(s);
    SSL_set_fd(c, sv[0]);
    SSL_set_fd(s, sv[1]);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    bool c_done = false, s_done = false, c_failed = false, s_failed = false;
    for (int round = 0; round < 100; round++) {
        step_done(c, &c_done, &c_failed);
        step_done(s, &s_done, &s_failed);
        if ((c_done && s_done) || c_failed || s_failed)
            break;
    }
    int version = 0;
    if (cipher != NULL)
        cipher[0] = '\0';
    if (c_done && s_done && !c_failed && !s_failed) {
        assert_int_equal(SSL_version(c), SSL_version(s));
        version = SSL_version(c);
        if (cipher != NULL)
            snprintf(cipher, cipher_len, "%s", SSL_get_cipher_name(c));
    }
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    close(sv[0]);
    close(sv[1]);
    return version;
}

static int handshake_version(SSL_CTX *client_ctx, SSL_CTX *server_ctx)
{
    return handshake(client_ctx, server_ctx, NULL, 0);
}

static int connect_modes(const char *client, const char *server)
{
    SSL_CTX *cc = make_ctx(false, client, NULL, 0);
    SSL_CTX *sc = make_ctx(true, server, NULL, 0);
    int v = handshake_version(cc, sc);
    SSL_CTX_free(cc);
    SSL_CTX_free(sc);
    return v;
}

static const struct {
    const char *name;
    int version;
} strict_modes[] = {
    {"TLSv1", TLS1_VERSION},
    {"TLSv11", TLS1_1_VERSION},
    {"TLSv12", TLS1_2_VERSION},
    {"TLSv13", TLS1_3_VERSION},
};
#define N_STRICT (sizeof(strict_modes) / sizeof(strict_modes[0]))

static void test_strict_same_version(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_STRICT; i++) {
        int v = connect_modes(strict_modes[i].name, strict_modes[i].name);
        if (v != strict_modes[i].version)
            fail_msg("%s vs %s: got version %#x", strict_modes[i].name,
                     strict_modes[i].name, (unsigned)v);
    }
}

static void test_strict_different_versions_fail(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_STRICT; i++)
        for (size_t j = 0; j < N_STRICT; j++) {
            if (i == j)
                continue;
            int v = connect_modes(strict_modes[i].name,
                                  strict_modes[j].name);
            if (v != 0)
                fail_msg("%s client vs %s server connected with %#x",
                         strict_modes[i].name, strict_modes[j].name,
                         (unsigned)v);
        }
}

static void test_flexible_meets_each_strict(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_STRICT; i++) {
        assert_int_equal(connect_modes("SSLv23", strict_modes[i].name),
                         strict_modes[i].version);
        assert_int_equal(connect_modes(strict_modes[i].name, "SSLv23"),
                         strict_modes[i].version);
    }
    assert_int_equal(connect_modes("SSLv23", "SSLv23"), TLS1_3_VERSION);
}

static void test_default_mode(void **state)
{
    (void)state;
    assert_int_equal(connect_modes(NULL, NULL), TLS1_3_VERSION);
    assert_int_equal(connect_modes(NULL, "TLSv13"), TLS1_3_VERSION);
    assert_int_equal(connect_modes("TLSv12", NULL), TLS1_2_VERSION);
    assert_int_equal(connect_modes(NULL, "TLSv11"), 0);
    assert_int_equal(connect_modes("TLSv1", NULL), 0);
    assert_int_equal(connect_modes(NULL, "SSLv23"), TLS1_3_VERSION);
}

static void test_list_with_hole(void **state)
{
    (void)state;
    const char *list[] = {"TLSv1.1", "TLSv1.3"};
    SSL_CTX *lc = make_ctx(false, NULL, list, 2);
    SSL_CTX *ls = make_ctx(true, NULL, list, 2);
    SSL_CTX *s12 = make_ctx(true, "TLSv12", NULL, 0);
    SSL_CTX *c12 = make_ctx(false, "TLSv12", NULL, 0);
    SSL_CTX *s11 = make_ctx(true, "TLSv11", NULL, 0);
    assert_int_equal(handshake_version(lc, s12), 0);
    assert_int_equal(handshake_version(c12, ls), 0);
    SSL_CTX *c13 = make_ctx(false, "TLSv13", NULL, 0);
    SSL_CTX *c11 = make_ctx(false, "TLSv11", NULL, 0);
    SSL_CTX *s13 = make_ctx(true, "TLSv13", NULL, 0);
    SSL_CTX *cflex = make_ctx(false, "SSLv23", NULL, 0);
    /* A server honours the gap exactly. */
    assert_int_equal(handshake_version(c13, ls), TLS1_3_VERSION);
    assert_int_equal(handshake_version(c11, ls), TLS1_1_VERSION);
    assert_int_equal(handshake_version(cflex, ls), TLS1_3_VERSION);
    /* A client offers the highest contiguous run only: TLSv1.3. */
    assert_int_equal(handshake_version(lc, s13), TLS1_3_VERSION);
    assert_int_equal(handshake_version(lc, s11), 0);
    assert_int_equal(handshake_version(lc, ls), TLS1_3_VERSION);
    SSL_CTX_free(c13);
    SSL_CTX_free(c11);
    SSL_CTX_free(s13);
    SSL_CTX_free(cflex);
    SSL_CTX_free(lc);
    SSL_CTX_free(ls);
    SSL_CTX_free(s12);
    SSL_CTX_free(c12);
    SSL_CTX_free(s11);
}

/* ------------------------------------------------------------------ */
/* The default TLS 1.2 cipher list                                      */

static struct ss_proto parsed(const char *sec, const char *const *list,
                              size_t n)
{
    struct ss_proto p;
    struct ss_errbuf err = {{0}};
    if (ss_protocol_parse(sec, NULL, list, n, &p, &err) != SS_OK)
        fail_msg("parse %s: %s", sec ? sec : "(list)", err.msg);
    return p;
}

static void test_default_cipher_list_by_mode(void **state)
{
    (void)state;
    static const char *const modern[] = {NULL, "TLSv12", "TLSv13"};
    for (size_t i = 0; i < 3; i++) {
        struct ss_proto p = parsed(modern[i], NULL, 0);
        const char *aes = ss_protocol_default_cipher_list(&p, true);
        const char *chacha = ss_protocol_default_cipher_list(&p, false);
        assert_non_null(aes);
        assert_non_null(chacha);
        /* The per-CPU order of the TLS 1.3 suites, in TLS 1.2 too. */
        assert_true(strncmp(aes, "ECDHE-ECDSA-AES128-GCM-SHA256:", 30) == 0);
        assert_true(strncmp(chacha, "ECDHE-ECDSA-CHACHA20-POLY1305:", 30) ==
                    0);
    }
    const char *list[] = {"TLSv1.2", "TLSv1.3"};
    struct ss_proto p = parsed(NULL, list, 2);
    assert_non_null(ss_protocol_default_cipher_list(&p, true));
    /* Legacy versions keep OpenSSL's default: they have no AEAD suite. */
    static const char *const legacy[] = {"SSLv23", "TLSv1", "TLSv11"};
    for (size_t i = 0; i < 3; i++) {
        p = parsed(legacy[i], NULL, 0);
        assert_null(ss_protocol_default_cipher_list(&p, true));
    }
    const char *with_legacy[] = {"TLSv1.1", "TLSv1.3"};
    p = parsed(NULL, with_legacy, 2);
    assert_null(ss_protocol_default_cipher_list(&p, false));
    assert_null(ss_protocol_default_cipher_list(NULL, true));
}

/* Every suite of ctx below TLS 1.3 is ECDHE with an AEAD cipher;
 * returns how many there are. */
static int count_fs_aead_tls12(SSL_CTX *ctx)
{
    STACK_OF(SSL_CIPHER) *suites = SSL_CTX_get_ciphers(ctx);
    int n = 0;
    for (int i = 0; i < sk_SSL_CIPHER_num(suites); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(suites, i);
        if (strcmp(SSL_CIPHER_get_version(c), "TLSv1.3") == 0)
            continue;
        if (SSL_CIPHER_get_kx_nid(c) != NID_kx_ecdhe ||
            !SSL_CIPHER_is_aead(c))
            fail_msg("%s is not ECDHE with AEAD", SSL_CIPHER_get_name(c));
        n++;
    }
    return n;
}

static SSL_CTX *default_list_ctx(bool server, const char *sec,
                                 bool aes_first)
{
    struct ss_proto p = parsed(sec, NULL, 0);
    SSL_CTX *ctx = make_ctx(server, sec, NULL, 0);
    assert_int_equal(SSL_CTX_set_cipher_list(
                         ctx, ss_protocol_default_cipher_list(&p, aes_first)),
                     1);
    if (server)
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    return ctx;
}

static void test_default_cipher_list_is_ecdhe_aead(void **state)
{
    (void)state;
    for (int aes = 0; aes < 2; aes++) {
        SSL_CTX *ctx = default_list_ctx(true, NULL, aes);
        /* AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305, for ECDSA and
         * for RSA certificates. */
        assert_int_equal(count_fs_aead_tls12(ctx), 6);
        SSL_CTX_free(ctx);
    }
}

/* A TLS 1.2 client offering exactly suites against a server with the
 * default list: the suite negotiated, "" when refused. */
static void tls12_pick(SSL_CTX *server, const char *suites, char *got,
                       size_t len)
{
    SSL_CTX *client = make_ctx(false, "TLSv12", NULL, 0);
    assert_int_equal(SSL_CTX_set_cipher_list(client, suites), 1);
    handshake(client, server, got, len);
    SSL_CTX_free(client);
}

static void test_default_cipher_list_handshakes(void **state)
{
    (void)state;
    SSL_CTX *server = default_list_ctx(true, NULL, true);
    char got[64];
    /* OpenSSL's own default serves each of these; ours refuses them. */
    static const char *const refused[] = {
        "AES128-GCM-SHA256",       /* RSA key transport */
        "AES256-SHA256",           /* RSA key transport, CBC */
        "ECDHE-RSA-AES128-SHA256", /* CBC */
        "ECDHE-RSA-AES256-SHA",    /* CBC with SHA-1 */
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        tls12_pick(server, refused[i], got, sizeof(got));
        if (got[0] != '\0')
            fail_msg("%s was served", refused[i]);
    }
    /* The server's order decides, whatever the client's. */
    tls12_pick(server, "ECDHE-RSA-CHACHA20-POLY1305:"
               "ECDHE-RSA-AES128-GCM-SHA256", got, sizeof(got));
    assert_string_equal(got, "ECDHE-RSA-AES128-GCM-SHA256");
    tls12_pick(server, "ECDHE-RSA-AES256-GCM-SHA384:"
               "ECDHE-RSA-CHACHA20-POLY1305", got, sizeof(got));
    assert_string_equal(got, "ECDHE-RSA-AES256-GCM-SHA384");
    SSL_CTX_free(server);

    server = default_list_ctx(true, NULL, false);
    tls12_pick(server, "ECDHE-RSA-AES128-GCM-SHA256:"
               "ECDHE-RSA-CHACHA20-POLY1305", got, sizeof(got));
    assert_string_equal(got, "ECDHE-RSA-CHACHA20-POLY1305");
    SSL_CTX_free(server);

    /* Two endpoints with the defaults meet at TLS 1.2. */
    SSL_CTX *client = default_list_ctx(false, "TLSv12", true);
    server = default_list_ctx(true, NULL, true);
    assert_int_equal(handshake(client, server, got, sizeof(got)),
                     TLS1_2_VERSION);
    assert_string_equal(got, "ECDHE-RSA-AES128-GCM-SHA256");
    SSL_CTX_free(client);
    SSL_CTX_free(server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_parse_conflicts),
        cmocka_unit_test(test_parse_unknown),
        cmocka_unit_test(test_parse_sslv3_unsupported),
        cmocka_unit_test(test_client_versions),
        cmocka_unit_test(test_version_names),
        cmocka_unit_test(test_apply_sets_context),
        cmocka_unit_test(test_strict_same_version),
        cmocka_unit_test(test_strict_different_versions_fail),
        cmocka_unit_test(test_flexible_meets_each_strict),
        cmocka_unit_test(test_default_mode),
        cmocka_unit_test(test_list_with_hole),
        cmocka_unit_test(test_default_cipher_list_by_mode),
        cmocka_unit_test(test_default_cipher_list_is_ecdhe_aead),
        cmocka_unit_test(test_default_cipher_list_handshakes),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
