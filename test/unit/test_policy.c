/*
 * test_policy.c - the policy file: every option, defaults inheritance,
 * every error with its exact code and message, endpoint matching, and the
 * snapshot's reference count.
 *
 * Parsing tests use `enabled = false` endpoints, which are fully validated
 * but get no TLS context, so they do not depend on tlsctx. The matching
 * tests load such a policy and then switch the endpoints on in the test's
 * private copy of the snapshot: matching is independent of TLS. The tests
 * at the end load enabled endpoints and need the real tlsctx module: when
 * contexts are built (ss_policy_load builds them all; ss_policy_parse
 * none, ss_policy_tls one at its first need, ss_policy_build_all and
 * ss_policy_build_used the rest), what a failed build leaves, and that
 * threads build a context once.
 *
 * Every config is written to p.cfg in the PKI directory, so relative file
 * names such as "server.pem" resolve to the test PKI.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "secshim/compat.h"
#include "secshim/log.h"
#include "secshim/policy.h"
#include "secshim/tlsctx.h"
#include "testutil.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

static char cfg_path[512];
static char pki_dir[512];
static struct ss_errbuf err;

/* A config's text, printf-style (static buffer). */
static const char *cfg(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static const char *cfg(const char *fmt, ...)
{
    static char text[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return text;
}

/* Writes text to p.cfg and loads it. */
static int load_text(const char *text, struct ss_policy **out)
{
    snprintf(cfg_path, sizeof(cfg_path), "%s", tu_write_file("p.cfg", "%s",
                                                             text));
    memset(&err, 0, sizeof(err));
    *out = (struct ss_policy *)&err; /* must be reset to NULL on failure */
    return ss_policy_load(cfg_path, false, out, &err);
}

static struct ss_policy *load_ok(const char *text)
{
    struct ss_policy *p = NULL;
    int rc = load_text(text, &p);
    if (rc != SS_OK)
        print_error("load failed: %s: %s\n", ss_strerror(rc), err.msg);
    assert_int_equal(rc, SS_OK);
    assert_non_null(p);
    return p;
}

/*
 * Loading text fails with code, and the message is cfg_path followed by
 * exactly `rest` (a prefix of the rest when the message ends with system
 * text).
 */
static void expect_fail(int code, const char *text, const char *rest)
{
    struct ss_policy *p = NULL;
    int rc = load_text(text, &p);
    size_t plen = strlen(cfg_path);
    bool ok = rc == code && strncmp(err.msg, cfg_path, plen) == 0 &&
              strncmp(err.msg + plen, rest, strlen(rest)) == 0;
    if (!ok)
        print_error("want %s \"<cfg>%s\"\ngot  %s \"%s\"\n",
                    ss_strerror(code), rest, ss_strerror(rc), err.msg);
    assert_null(p);
    assert_int_equal(rc, code);
    assert_true(ok);
}

/* "<pki>/a,<pki>/b" for the names given. */
static const char *in_pki(const char *a, const char *b)
{
    static char buf[1200];
    if (b == NULL)
        snprintf(buf, sizeof(buf), "%s/%s", pki_dir, a);
    else
        snprintf(buf, sizeof(buf), "%s/%s,%s/%s", pki_dir, a, pki_dir, b);
    return buf;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(pki_dir, sizeof(pki_dir), "%s", tu_pki());
    return 0;
}

/* A disabled connect endpoint; the common start of many configs (3 lines
 * after the version line). */
#define HEAD "version = 1;\n"

/* ------------------------------------------------------------------ */
/* Options                                                              */

static void test_opt_names(void **state)
{
    (void)state;
    assert_string_equal(ss_opt_name(SS_OPT_CERTIFICATE_KEY),
                        "certificate-key");
    assert_string_equal(ss_opt_name(SS_OPT_TARGET_NAME_CHECK),
                        "tls-target-name-check");
    assert_string_equal(ss_opt_name(SS_OPT_FIPS140_ENABLED),
                        "fips140-enabled");
    assert_string_equal(ss_opt_name(SS_OPT_COUNT), "unknown");
    for (int i = 0; i < SS_OPT_COUNT; i++)
        assert_non_null(ss_opt_name((enum ss_opt)i));
}

static void test_every_option(void **state)
{
    (void)state;
    struct ss_policy *p = load_ok(
        HEAD                                              /* 1 */
        "log = {\n"                                       /* 2 */
        "  level = \"debug\";\n"                          /* 3 */
        "  file = \"secshim.log\";\n"                     /* 4 */
        "};\n"                                            /* 5 */
        "endpoints = (\n"                                 /* 6 */
        "  {\n"                                           /* 7 */
        "    name = \"db\";\n"                            /* 8 */
        "    enabled = false;\n"                          /* 9 */
        "    connect = \"DB.Example.com:5432\";\n"        /* 10 */
        "    certificate = \"client.pem, inter-ca.pem\";\n" /* 11 */
        "    certificate-key = \"client.key\";\n"         /* 12 */
        "    trusted-ca = \"ca.pem\";\n"                  /* 13 */
        "    tls-crl = \"crl.pem\";\n"                    /* 14 */
        "    tls-mutual = true;\n"                        /* 15 */
        "    tls-target-name-check = \"no\";\n"           /* 16 */
        "    tls-target-name = \"db.internal\";\n"        /* 17 */
        "    sec-protocol = \"TLSv12\";\n"                /* 18 */
        "    cipher-list = \"HIGH:!aNULL\";\n"            /* 19 */
        "    cipher-suites = \"TLS_AES_128_GCM_SHA256\";\n" /* 20 */
        "    handshake-timeout = 30;\n"                   /* 21 */
        "    fips140-enabled = true;\n"                   /* 22 */
        "  }\n"                                           /* 23 */
        ");\n");
    assert_int_equal(atomic_load(&p->refs), 1);
    assert_string_equal(p->path, cfg_path);
    assert_false(p->compat);
    assert_int_equal(p->log_level, SS_LOG_DEBUG);
    assert_string_equal(p->log_file, in_pki("secshim.log", NULL));
    assert_int_equal(p->n_endpoints, 1);
    const struct ss_endpoint *ep = &p->endpoints[0];
    assert_string_equal(ep->name, "db");
    assert_false(ep->enabled);
    assert_null(ep->tls);
    assert_int_equal(ep->direction, SS_DIR_CONNECT);
    assert_string_equal(ep->address, "DB.Example.com:5432");
    assert_int_equal(ep->match.kind, SS_HOST_NAME);
    assert_string_equal(ep->match.name, "db.example.com");
    assert_int_equal(ep->match.port, 5432);
    assert_string_equal(ep->certificate, in_pki("client.pem", "inter-ca.pem"));
    assert_string_equal(ep->certificate_key, in_pki("client.key", NULL));
    assert_string_equal(ep->trusted_ca, in_pki("ca.pem", NULL));
    assert_string_equal(ep->tls_crl, in_pki("crl.pem", NULL));
    assert_true(ep->tls_mutual);
    assert_false(ep->target_name_check);
    assert_string_equal(ep->target_name, "db.internal");
    assert_int_equal(ep->proto.mode, SS_PROTO_STRICT);
    assert_int_equal(ep->proto.versions, SS_V_TLS12);
    assert_string_equal(ep->cipher_list, "HIGH:!aNULL");
    assert_string_equal(ep->cipher_suites, "TLS_AES_128_GCM_SHA256");
    assert_int_equal(ep->handshake_timeout_ms, 30000);
    assert_true(ep->fips140_enabled);
    assert_int_equal(ep->line, 7);
    static const int want[SS_OPT_COUNT] = {
        [SS_OPT_NAME] = 8,            [SS_OPT_ENABLED] = 9,
        [SS_OPT_CONNECT] = 10,        [SS_OPT_LISTEN] = 0,
        [SS_OPT_CERTIFICATE] = 11,    [SS_OPT_CERTIFICATE_KEY] = 12,
        [SS_OPT_TRUSTED_CA] = 13,     [SS_OPT_TLS_CRL] = 14,
        [SS_OPT_TLS_MUTUAL] = 15,     [SS_OPT_TARGET_NAME_CHECK] = 16,
        [SS_OPT_TARGET_NAME] = 17,    [SS_OPT_SEC_PROTOCOL] = 18,
        [SS_OPT_TLS_VERSION] = 0,     [SS_OPT_PROTOCOL_LIST] = 0,
        [SS_OPT_CIPHER_LIST] = 19,    [SS_OPT_CIPHER_SUITES] = 20,
        [SS_OPT_HANDSHAKE_TIMEOUT] = 21, [SS_OPT_FIPS140_ENABLED] = 22,
    };
    for (int i = 0; i < SS_OPT_COUNT; i++)
        assert_int_equal(ep->opt_line[i], want[i]);
    ss_policy_unref(p);
}

static void test_builtin_defaults(void **state)
{
    (void)state;
    struct ss_policy *p = load_ok(HEAD
                                  "endpoints = ( { name = \"a\"; "
                                  "enabled = false; connect = \"*:1\"; } );\n");
    assert_int_equal(p->log_level, SS_LOG_WARNING);
    assert_string_equal(p->log_file, "stderr");
    const struct ss_endpoint *ep = &p->endpoints[0];
    assert_int_equal(ep->match.kind, SS_HOST_ANY);
    assert_int_equal(ep->match.port, 1);
    assert_null(ep->certificate);
    assert_null(ep->certificate_key);
    assert_null(ep->trusted_ca);
    assert_null(ep->tls_crl);
    assert_null(ep->target_name);
    assert_null(ep->cipher_list);
    assert_null(ep->cipher_suites);
    assert_false(ep->tls_mutual);
    assert_true(ep->target_name_check);
    assert_false(ep->fips140_enabled);
    assert_int_equal(ep->handshake_timeout_ms,
                     SS_DEFAULT_HANDSHAKE_TIMEOUT_S * 1000);
    assert_int_equal(ep->proto.mode, SS_PROTO_DEFAULT);
    assert_int_equal(ep->proto.versions, SS_V_TLS12 | SS_V_TLS13);
    assert_int_equal(ep->opt_line[SS_OPT_CERTIFICATE], 0);
    assert_int_equal(ep->opt_line[SS_OPT_NAME], 2);
    ss_policy_unref(p);
}

static void test_empty_endpoints_and_log_targets(void **state)
{
    (void)state;
    struct ss_policy *p = load_ok(HEAD "log = { file = \"syslog\"; };\n"
                                       "endpoints = ( );\n");
    assert_int_equal(p->n_endpoints, 0);
    assert_string_equal(p->log_file, "syslog");
    assert_int_equal(p->log_level, SS_LOG_WARNING);
    ss_policy_unref(p);
    p = load_ok(HEAD "log = { level = \"error\"; file = \"/var/log/x.log\"; "
                     "};\nendpoints = ( );\n");
    assert_string_equal(p->log_file, "/var/log/x.log");
    assert_int_equal(p->log_level, SS_LOG_ERROR);
    ss_policy_unref(p);
}

static void test_protocol_options(void **state)
{
    (void)state;
    struct ss_policy *p = load_ok(
        HEAD "endpoints = (\n"
        "{ name = \"flex\"; enabled = false; connect = \"*:1\"; "
        "sec-protocol = \"SSLv23\"; },\n"
        "{ name = \"java\"; enabled = false; connect = \"*:2\"; "
        "tls-version = \"TLSv1.3\"; },\n"
        "{ name = \"list\"; enabled = false; connect = \"*:3\"; "
        "protocol-list = [ \"TLSv1.2\", \"TLSv1.3\" ]; },\n"
        "{ name = \"list2\"; enabled = false; connect = \"*:4\"; "
        "protocol-list = ( \"TLSv1.3\" ); }\n"
        ");\n");
    assert_int_equal(tu_endpoint(p, "flex")->proto.mode, SS_PROTO_FLEXIBLE);
    assert_int_equal(tu_endpoint(p, "java")->proto.mode, SS_PROTO_STRICT);
    assert_int_equal(tu_endpoint(p, "java")->proto.versions, SS_V_TLS13);
    assert_int_equal(tu_endpoint(p, "list")->proto.mode, SS_PROTO_LIST);
    assert_int_equal(tu_endpoint(p, "list")->proto.versions, SS_V_TLS12 | SS_V_TLS13);
    assert_int_equal(tu_endpoint(p, "list")->opt_line[SS_OPT_PROTOCOL_LIST], 5);
    assert_int_equal(tu_endpoint(p, "list2")->proto.versions, SS_V_TLS13);
    ss_policy_unref(p);
}

static void test_defaults_inheritance(void **state)
{
    (void)state;
    struct ss_policy *p = load_ok(
        HEAD                                        /* 1 */
        "defaults = {\n"                            /* 2 */
        "  enabled = false;\n"                      /* 3 */
        "  trusted-ca = \"ca.pem\";\n"              /* 4 */
        "  handshake-timeout = 5;\n"                /* 5 */
        "  sec-protocol = \"TLSv13\";\n"            /* 6 */
        "  cipher-list = \"HIGH\";\n"               /* 7 */
        "  tls-target-name-check = \"no\";\n"       /* 8 */
        "};\n"                                      /* 9 */
        "endpoints = (\n"                           /* 10 */
        "  { name = \"inherits\"; connect = \"*:1\"; },\n" /* 11 */
        "  {\n"                                     /* 12 */
        "    name = \"overrides\";\n"               /* 13 */
        "    connect = \"*:2\";\n"                  /* 14 */
        "    handshake-timeout = 7;\n"              /* 15 */
        "    tls-version = \"TLSv1.2\";\n"          /* 16 */
        "    trusted-ca = \"root-ca.pem\";\n"       /* 17 */
        "    tls-target-name-check = \"host\";\n"   /* 18 */
        "  }\n"                                     /* 19 */
        ");\n");
    const struct ss_endpoint *a = tu_endpoint(p, "inherits");
    assert_false(a->enabled);
    assert_int_equal(a->opt_line[SS_OPT_ENABLED], 3);
    assert_string_equal(a->trusted_ca, in_pki("ca.pem", NULL));
    assert_int_equal(a->opt_line[SS_OPT_TRUSTED_CA], 4);
    assert_int_equal(a->handshake_timeout_ms, 5000);
    assert_int_equal(a->opt_line[SS_OPT_HANDSHAKE_TIMEOUT], 5);
    assert_int_equal(a->proto.versions, SS_V_TLS13);
    assert_int_equal(a->opt_line[SS_OPT_SEC_PROTOCOL], 6);
    assert_string_equal(a->cipher_list, "HIGH");
    assert_int_equal(a->opt_line[SS_OPT_CIPHER_LIST], 7);
    assert_false(a->target_name_check);
    assert_int_equal(a->opt_line[SS_OPT_NAME], 11);
    assert_int_equal(a->line, 11);

    const struct ss_endpoint *b = tu_endpoint(p, "overrides");
    assert_false(b->enabled);
    assert_int_equal(b->handshake_timeout_ms, 7000);
    assert_int_equal(b->opt_line[SS_OPT_HANDSHAKE_TIMEOUT], 15);
    /* tls-version replaces the inherited sec-protocol as a whole. */
    assert_int_equal(b->proto.mode, SS_PROTO_STRICT);
    assert_int_equal(b->proto.versions, SS_V_TLS12);
    assert_int_equal(b->opt_line[SS_OPT_TLS_VERSION], 16);
    assert_int_equal(b->opt_line[SS_OPT_SEC_PROTOCOL], 0);
    assert_string_equal(b->trusted_ca, in_pki("root-ca.pem", NULL));
    assert_int_equal(b->opt_line[SS_OPT_TRUSTED_CA], 17);
    assert_true(b->target_name_check);
    assert_string_equal(b->cipher_list, "HIGH");
    assert_int_equal(b->line, 12);
    ss_policy_unref(p);
}

static void test_defaults_complete_cross_rules(void **state)
{
    (void)state;
    /* A certificate from defaults and a key in the endpoint make a pair. */
    struct ss_policy *p = load_ok(
        HEAD "defaults = { certificate = \"server.pem\"; enabled = false; "
        "};\n"
        "endpoints = ( { name = \"s\"; listen = \"*:443\"; "
        "certificate-key = \"server.key\"; } );\n");
    assert_int_equal(p->endpoints[0].opt_line[SS_OPT_CERTIFICATE], 2);
    assert_int_equal(p->endpoints[0].opt_line[SS_OPT_CERTIFICATE_KEY], 3);
    assert_int_equal(p->endpoints[0].direction, SS_DIR_LISTEN);
    ss_policy_unref(p);
}

static const char *one(const char *extra);

static void test_relative_policy_path(void **state)
{
    (void)state;
    /* A relative policy path is made absolute at load, so the file names
     * inside stay valid after the program changes directory. */
    tu_write_file("rel.cfg", "%s", one("connect = \"*:1\"; "
                                       "trusted-ca = \"ca.pem\";"));
    char *old = getcwd(NULL, 0);
    assert_non_null(old);
    assert_int_equal(chdir(pki_dir), 0);
    struct ss_policy *p = NULL;
    int rc = ss_policy_load("rel.cfg", false, &p, &err);
    assert_int_equal(chdir(old), 0);
    free(old);
    assert_int_equal(rc, SS_OK);
    char want[700];
    snprintf(want, sizeof(want), "%s/rel.cfg", pki_dir);
    assert_string_equal(p->path, want);
    assert_string_equal(p->endpoints[0].trusted_ca, in_pki("ca.pem", NULL));
    ss_policy_unref(p);
}

/* ------------------------------------------------------------------ */
/* File-level errors                                                    */

static void test_missing_file(void **state)
{
    (void)state;
    struct ss_policy *p = (struct ss_policy *)&err;
    char path[600];
    snprintf(path, sizeof(path), "%s/no-such.cfg", pki_dir);
    int rc = ss_policy_load(path, false, &p, &err);
    assert_int_equal(rc, SS_ERR_IO);
    assert_null(p);
    char want[700];
    snprintf(want, sizeof(want), "%s: cannot read: No such file or directory",
             path);
    assert_string_equal(err.msg, want);

    rc = ss_policy_load(pki_dir, false, &p, &err);
    assert_int_equal(rc, SS_ERR_IO);
    snprintf(want, sizeof(want), "%s: cannot read: Is a directory", pki_dir);
    assert_string_equal(err.msg, want);

    assert_int_equal(ss_policy_load(NULL, false, &p, &err), SS_ERR_INVAL);
}

static void test_syntax_error(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG,
                HEAD "endpoints = (\n  { name = ; connect = \"*:1\"; }\n"
                     ");\n",
                ":3: syntax error");
}

static void test_version(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG, "endpoints = ( );\n",
                ": setting 'version' is missing (write version = 1; at the "
                "top)");
    expect_fail(SS_ERR_CONFIG, "\nversion = 2;\nendpoints = ( );\n",
                ":2: setting 'version': version 2 is not supported (this "
                "secshim reads version 1)");
    expect_fail(SS_ERR_CONFIG, "version = \"1\";\nendpoints = ( );\n",
                ":1: setting 'version': expected an integer");
}

static void test_top_level_errors(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG, HEAD "endpoint = ( );\n",
                ":2: unknown setting 'endpoint' (expected version, log, "
                "defaults, endpoints)");
    expect_fail(SS_ERR_CONFIG, HEAD "log = { level = \"debug\"; };\n",
                ": setting 'endpoints' is missing (write endpoints = ( ... "
                "); even when empty)");
    expect_fail(SS_ERR_CONFIG, HEAD "endpoints = { };\n",
                ":2: setting 'endpoints': expected a list ( { ... }, ... )");
    expect_fail(SS_ERR_CONFIG, HEAD "endpoints = ( 5 );\n",
                ":2: endpoint #1: expected a group { ... }");
    expect_fail(SS_ERR_CONFIG, HEAD "defaults = 5;\nendpoints = ( );\n",
                ":2: defaults: expected a group { ... }");
}

static void test_log_errors(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG,
                HEAD "log = { level = \"loud\"; };\nendpoints = ( );\n",
                ":2: log: option 'level': 'loud' is not one of error, "
                "warning, info, debug");
    expect_fail(SS_ERR_CONFIG,
                HEAD "log = {\n  colour = true; };\nendpoints = ( );\n",
                ":3: log: option 'colour': unknown option (expected level "
                "or file)");
    expect_fail(SS_ERR_CONFIG,
                HEAD "log = { file = 2; };\nendpoints = ( );\n",
                ":2: log: option 'file': expected a non-empty string");
    expect_fail(SS_ERR_CONFIG, HEAD "log = \"debug\";\nendpoints = ( );\n",
                ":2: log: expected a group { level = ...; file = ...; }");
}

/* ------------------------------------------------------------------ */
/* Option errors                                                        */

/* One disabled endpoint "e" at line 3 with extra settings on line 4. */
static const char *one(const char *extra)
{
    return cfg(HEAD "endpoints = (\n"
                    "  { name = \"e\"; enabled = false;\n"
                    "    %s\n"
                    "  }\n);\n",
               extra);
}

static void test_unknown_option(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG, one("connect = \"*:1\"; tls-mutal = true;"),
                ":4: endpoint 'e': option 'tls-mutal': unknown option");
    expect_fail(SS_ERR_CONFIG,
                HEAD "defaults = {\n  verify-depth = 3;\n};\n"
                     "endpoints = ( );\n",
                ":3: defaults: option 'verify-depth': unknown option");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG, one("connect = \"*:1\"; certificate = 5;"),
                ":4: endpoint 'e': option 'certificate': expected a string");
    expect_fail(SS_ERR_CONFIG, one("connect = \"*:1\"; tls-mutual = \"yes\";"),
                ":4: endpoint 'e': option 'tls-mutual': expected a boolean "
                "(true or false)");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; handshake-timeout = \"10\";"),
                ":4: endpoint 'e': option 'handshake-timeout': expected an "
                "integer (seconds)");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; handshake-timeout = 2.5;"),
                ":4: endpoint 'e': option 'handshake-timeout': expected an "
                "integer (seconds)");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; protocol-list = \"TLSv1.2\";"),
                ":4: endpoint 'e': option 'protocol-list': expected a list "
                "of strings");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; protocol-list = ( \"TLSv1.2\", 3 );"),
                ":4: endpoint 'e': option 'protocol-list': element 2: "
                "expected a non-empty string");
    expect_fail(SS_ERR_CONFIG, one("connect = \"*:1\"; protocol-list = [ ];"),
                ":4: endpoint 'e': option 'protocol-list': must name at "
                "least one version");
    expect_fail(SS_ERR_CONFIG, one("connect = \"*:1\"; cipher-list = \"\";"),
                ":4: endpoint 'e': option 'cipher-list': must not be empty");
    expect_fail(SS_ERR_CONFIG,
                HEAD "defaults = {\n  enabled = 1;\n};\nendpoints = ( );\n",
                ":3: defaults: option 'enabled': expected a boolean (true "
                "or false)");
}

/* ------------------------------------------------------------------ */
/* allow-peer                                                           */

static void test_allow_peer_parsed(void **state)
{
    (void)state;
    struct ss_policy *p = load_ok(cfg(
        HEAD "endpoints = (\n"
             "  { name = \"c\"; enabled = false; connect = \"*:1\";\n"
             "    allow-peer = ( \"CN=app\", \"DNS:*.example.com\",\n"
             "                   \"IP:::1\", \"URI:spiffe://x/y\" ); },\n"
             "  { name = \"a\"; enabled = false; connect = \"*:2\";\n"
             "    allow-peer = [ \"OU=ops\", \"O=Example\" ]; },\n"
             "  { name = \"none\"; enabled = false; connect = \"*:3\"; }\n"
             ");\n"));
    const struct ss_endpoint *c = tu_endpoint(p, "c");
    assert_int_equal(c->allow_peer.n, 4);
    assert_int_equal(c->opt_line[SS_OPT_ALLOW_PEER], 4);
    assert_string_equal(c->allow_peer.ids[0].text, "CN=app");
    assert_int_equal(c->allow_peer.ids[0].kind, SS_PEER_ID_CN);
    assert_true(c->allow_peer.ids[1].wildcard);
    assert_int_equal(c->allow_peer.ids[2].addr_len, 16);
    assert_int_equal(c->allow_peer.ids[3].kind, SS_PEER_ID_URI);
    const struct ss_endpoint *a = tu_endpoint(p, "a");
    assert_int_equal(a->allow_peer.n, 2);
    assert_int_equal(a->allow_peer.ids[1].kind, SS_PEER_ID_O);
    assert_int_equal(tu_endpoint(p, "none")->allow_peer.n, 0);
    ss_policy_unref(p);
}

static void test_allow_peer_inherited(void **state)
{
    (void)state;
    struct ss_policy *p = load_ok(cfg(
        HEAD "defaults = {\n"
             "  allow-peer = ( \"CN=default\" );\n"
             "};\n"
             "endpoints = (\n"
             "  { name = \"inherits\"; enabled = false; connect = \"*:1\"; },\n"
             "  { name = \"own\"; enabled = false; connect = \"*:2\";\n"
             "    allow-peer = ( \"CN=own\", \"CN=other\" ); }\n"
             ");\n"));
    const struct ss_endpoint *in = tu_endpoint(p, "inherits");
    assert_int_equal(in->allow_peer.n, 1);
    assert_string_equal(in->allow_peer.ids[0].text, "CN=default");
    assert_int_equal(in->opt_line[SS_OPT_ALLOW_PEER], 3);
    const struct ss_endpoint *own = tu_endpoint(p, "own");
    assert_int_equal(own->allow_peer.n, 2);
    assert_string_equal(own->allow_peer.ids[0].text, "CN=own");
    ss_policy_unref(p);
}

static void test_allow_peer_errors(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; allow-peer = \"CN=app\";"),
                ":4: endpoint 'e': option 'allow-peer': expected a list of "
                "identities ( \"CN=...\", \"DNS:...\", ... )");
    expect_fail(SS_ERR_CONFIG, one("connect = \"*:1\"; allow-peer = ( );"),
                ":4: endpoint 'e': option 'allow-peer': must name at least "
                "one identity");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; allow-peer = ( \"CN=a\", 7 );"),
                ":4: endpoint 'e': option 'allow-peer': element 2: expected "
                "a non-empty string");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; allow-peer = ( \"CN=a\", \"\" );"),
                ":4: endpoint 'e': option 'allow-peer': element 2: expected "
                "a non-empty string");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; allow-peer = ( \"SAN:a\" );"),
                ":4: endpoint 'e': option 'allow-peer': element 1: 'SAN:a': "
                "unknown form: use CN=, OU=, O=, DNS:, URI: or IP: followed "
                "by the value");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; allow-peer = ( \"CN=a\", \"OU=\" );"),
                ":4: endpoint 'e': option 'allow-peer': element 2: 'OU=': "
                "the value after the prefix is empty");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; allow-peer = ( \"IP:1.2.3.256\" );"),
                ":4: endpoint 'e': option 'allow-peer': element 1: "
                "'IP:1.2.3.256': is not an IPv4 or IPv6 address (no "
                "brackets, no prefix length, no zone)");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; allow-peer = ( \"DNS:a.*.b\" );"),
                ":4: endpoint 'e': option 'allow-peer': element 1: "
                "'DNS:a.*.b': a wildcard must be the whole left-most label "
                "of a DNS name (\"DNS:*.example.com\")");
    expect_fail(SS_ERR_CONFIG,
                HEAD "defaults = {\n  allow-peer = ( \"URI:nowhere\" );\n};\n"
                     "endpoints = ( );\n",
                ":3: defaults: option 'allow-peer': element 1: "
                "'URI:nowhere': is not a URI with a scheme "
                "(\"URI:spiffe://...\")");
}

static void test_allow_peer_listen_needs_mutual(void **state)
{
    (void)state;
    char extra[2048];
    snprintf(extra, sizeof(extra),
             "listen = \"127.0.0.1:1\"; certificate = \"%s/server.pem\"; "
             "certificate-key = \"%s/server.key\";\n"
             "    allow-peer = ( \"CN=app\" );", pki_dir, pki_dir);
    expect_fail(SS_ERR_CONFIG, one(extra),
                ":5: endpoint 'e': option 'allow-peer': needs a verified "
                "client certificate, and a listen endpoint verifies one only "
                "with tls-mutual: set tls-mutual = true");
    /* Inherited: the message points at the defaults line. */
    expect_fail(SS_ERR_CONFIG,
                cfg(HEAD "defaults = {\n  allow-peer = ( \"CN=app\" );\n};\n"
                         "endpoints = (\n"
                         "  { name = \"l\"; enabled = false;\n"
                         "    listen = \"127.0.0.1:1\";\n"
                         "    certificate = \"%s/server.pem\";\n"
                         "    certificate-key = \"%s/server.key\"; }\n);\n",
                    pki_dir, pki_dir),
                ":3: endpoint 'l': option 'allow-peer': needs a verified "
                "client certificate");
    /* With tls-mutual (and trusted-ca) it loads; a connect endpoint needs
     * neither: it always verifies the server. */
    struct ss_policy *p = load_ok(cfg(
        HEAD "endpoints = (\n"
             "  { name = \"l\"; enabled = false; listen = \"127.0.0.1:1\";\n"
             "    certificate = \"%s/server.pem\";\n"
             "    certificate-key = \"%s/server.key\";\n"
             "    trusted-ca = \"%s/ca.pem\"; tls-mutual = true;\n"
             "    allow-peer = ( \"CN=app\" ); },\n"
             "  { name = \"c\"; enabled = false; connect = \"*:1\";\n"
             "    allow-peer = ( \"CN=app\" ); }\n"
             ");\n", pki_dir, pki_dir, pki_dir));
    assert_int_equal(tu_endpoint(p, "l")->allow_peer.n, 1);
    ss_policy_unref(p);
}

static void test_handshake_timeout_range(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG, one("connect = \"*:1\"; handshake-timeout = 0;"),
                ":4: endpoint 'e': option 'handshake-timeout': 0 is out of "
                "range: use 1 to 86400 seconds");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; handshake-timeout = 86401;"),
                ":4: endpoint 'e': option 'handshake-timeout': 86401 is out "
                "of range: use 1 to 86400 seconds");
}

static void test_missing_files(void **state)
{
    (void)state;
    char rest[1200];
    snprintf(rest, sizeof(rest),
             ":4: endpoint 'e': option 'trusted-ca': cannot read '%s/"
             "nope.pem': No such file or directory",
             pki_dir);
    expect_fail(SS_ERR_IO, one("connect = \"*:1\"; trusted-ca = \"nope.pem\";"),
                rest);
    /* The second file of a list. */
    snprintf(rest, sizeof(rest),
             ":4: endpoint 'e': option 'tls-crl': cannot read '%s/gone.pem': "
             "No such file or directory",
             pki_dir);
    expect_fail(SS_ERR_IO,
                one("connect = \"*:1\"; tls-crl = \"crl.pem,gone.pem\";"),
                rest);
    /* Absolute paths are kept as they are. */
    expect_fail(SS_ERR_IO,
                one("connect = \"*:1\"; certificate-key = \"/nonexistent/k\";"),
                ":4: endpoint 'e': option 'certificate-key': cannot read "
                "'/nonexistent/k': No such file or directory");
    /* A directory is not a file. */
    snprintf(rest, sizeof(rest),
             ":4: endpoint 'e': option 'certificate': cannot read '%s': Is a "
             "directory",
             pki_dir);
    char extra[800];
    snprintf(extra, sizeof(extra), "connect = \"*:1\"; certificate = \"%s\";",
             pki_dir);
    expect_fail(SS_ERR_IO, one(extra), rest);
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\"; trusted-ca = \"ca.pem,,crl.pem\";"),
                ":4: endpoint 'e': option 'trusted-ca': empty file name in "
                "the list");
    /* Checked in defaults even when no endpoint uses it. */
    snprintf(rest, sizeof(rest),
             ":3: defaults: option 'certificate': cannot read '%s/x.pem': "
             "No such file or directory",
             pki_dir);
    expect_fail(SS_ERR_IO,
                HEAD "defaults = {\n  certificate = \"x.pem\";\n};\n"
                     "endpoints = ( );\n",
                rest);
}

static void test_name_errors(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG,
                HEAD "endpoints = (\n  { connect = \"*:1\"; }\n);\n",
                ":3: endpoint #1: option 'name': is required");
    expect_fail(SS_ERR_CONFIG,
                HEAD "endpoints = (\n"
                     "  { name = \"\"; connect = \"*:1\"; }\n);\n",
                ":3: endpoint #1: option 'name': must not be empty");
    expect_fail(SS_ERR_CONFIG,
                HEAD "endpoints = (\n  { name = 7; connect = \"*:1\"; }\n);\n",
                ":3: endpoint #1: option 'name': expected a string");
    expect_fail(SS_ERR_CONFIG,
                HEAD "endpoints = (\n"
                     "  { name = \"a\"; enabled = false;\n"
                     "    connect = \"*:1\"; },\n"
                     "  { name = \"a\"; enabled = false; connect = \"*:2\"; }\n"
                     ");\n",
                ":5: endpoint 'a': option 'name': duplicate name (first used "
                "at line 3)");
}

static void test_per_endpoint_options_in_defaults(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG,
                HEAD "defaults = {\n  name = \"x\";\n};\nendpoints = ( );\n",
                ":3: defaults: option 'name': is per endpoint and cannot "
                "stand in defaults");
    expect_fail(SS_ERR_CONFIG,
                HEAD "defaults = {\n  connect = \"*:1\";\n};\n"
                     "endpoints = ( );\n",
                ":3: defaults: option 'connect': is per endpoint and cannot "
                "stand in defaults");
    expect_fail(SS_ERR_CONFIG,
                HEAD "defaults = {\n  listen = \"*:1\";\n};\n"
                     "endpoints = ( );\n",
                ":3: defaults: option 'listen': is per endpoint and cannot "
                "stand in defaults");
}

static void test_direction_errors(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:1\";\n listen = \"*:2\";\n"
                    "certificate = \"server.pem\"; "
                    "certificate-key = \"server.key\";"),
                ":5: endpoint 'e': option 'listen': connect and listen are "
                "mutually exclusive (one endpoint per direction)");
    expect_fail(SS_ERR_CONFIG, one("tls-mutual = false;"),
                ":3: endpoint 'e': option 'connect': one of connect or "
                "listen is required");
}

static void test_address_errors(void **state)
{
    (void)state;
    static const struct {
        const char *setting;
        const char *rest;
    } cases[] = {
        {"connect = \"db.example\";",
         ":4: endpoint 'e': option 'connect': 'db.example' is not HOST:PORT"},
        {"connect = \"db.example:0\";",
         ":4: endpoint 'e': option 'connect': port '0' is not a number from "
         "1 to 65535"},
        {"connect = \"db.example:65536\";",
         ":4: endpoint 'e': option 'connect': port '65536' is not a number "
         "from 1 to 65535"},
        {"connect = \"db.example:http\";",
         ":4: endpoint 'e': option 'connect': port 'http' is not a number "
         "from 1 to 65535"},
        {"connect = \"db.example:\";",
         ":4: endpoint 'e': option 'connect': port '' is not a number from 1 "
         "to 65535"},
        {"connect = \":443\";",
         ":4: endpoint 'e': option 'connect': ':443' is not HOST:PORT (use * "
         "for any host)"},
        {"connect = \"10.1.0.0/8:443\";",
         ":4: endpoint 'e': option 'connect': 10.1.0.0/8 has bits set beyond "
         "the prefix"},
        {"connect = \"10.0.0.0/33:443\";",
         ":4: endpoint 'e': option 'connect': prefix length '33' is not a "
         "number from 0 to 32"},
        {"connect = \"10.0.0.0/:443\";",
         ":4: endpoint 'e': option 'connect': prefix length '' is not a "
         "number from 0 to 32"},
        {"connect = \"[fd00::]/129:443\";",
         ":4: endpoint 'e': option 'connect': prefix length '129' is not a "
         "number from 0 to 128"},
        {"connect = \"[fd00::1]/8:443\";",
         ":4: endpoint 'e': option 'connect': fd00::1/8 has bits set beyond "
         "the prefix"},
        {"connect = \"999.1.1.1:443\";",
         ":4: endpoint 'e': option 'connect': '999.1.1.1' is not an IPv4 "
         "address"},
        {"connect = \"10.0.0.256/8:443\";",
         ":4: endpoint 'e': option 'connect': '10.0.0.256' is not an IPv4 "
         "address"},
        {"connect = \"[fd00::g]:443\";",
         ":4: endpoint 'e': option 'connect': 'fd00::g' is not an IPv6 "
         "address"},
        {"connect = \"fd00::1:443\";",
         ":4: endpoint 'e': option 'connect': 'fd00::1:443': write an IPv6 "
         "address in brackets, [ADDR]:PORT"},
        {"connect = \"[::1:443\";",
         ":4: endpoint 'e': option 'connect': '[::1': write an IPv6 address "
         "as [ADDR] or [ADDR]/PREFIX"},
        {"connect = \"[::1]\";",
         ":4: endpoint 'e': option 'connect': '[::1]' is not HOST:PORT"},
        {"connect = \"[::1]x:443\";",
         ":4: endpoint 'e': option 'connect': '[::1]x': write an IPv6 "
         "address as [ADDR] or [ADDR]/PREFIX"},
        {"connect = \"bad_host!:443\";",
         ":4: endpoint 'e': option 'connect': 'bad_host!' is not a valid "
         "host name, address or prefix"},
        {"connect = \"a..b:443\";",
         ":4: endpoint 'e': option 'connect': 'a..b' is not a valid host "
         "name, address or prefix"},
        {"listen = \"db.example:443\"; certificate = \"server.pem\"; "
         "certificate-key = \"server.key\";",
         ":4: endpoint 'e': option 'listen': a listen address must be *, an "
         "IPv4 address or an [IPv6] address (names are not resolved)"},
        {"listen = \"10.0.0.0/8:443\"; certificate = \"server.pem\"; "
         "certificate-key = \"server.key\";",
         ":4: endpoint 'e': option 'listen': a listen address must be *, an "
         "IPv4 address or an [IPv6] address (not a prefix)"},
        {"listen = \"127.0.0.1\"; certificate = \"server.pem\"; "
         "certificate-key = \"server.key\";",
         ":4: endpoint 'e': option 'listen': '127.0.0.1' is not ADDR:PORT"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_fail(SS_ERR_CONFIG, one(cases[i].setting), cases[i].rest);
}

static void test_cross_option_errors(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG,
                one("listen = \"*:443\";"),
                ":3: endpoint 'e': option 'certificate': a listen endpoint "
                "needs certificate and certificate-key");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:443\"; certificate = \"client.pem\";"),
                ":4: endpoint 'e': option 'certificate': is set but "
                "certificate-key is not");
    expect_fail(SS_ERR_CONFIG,
                one("listen = \"*:443\"; certificate-key = \"server.key\";"),
                ":4: endpoint 'e': option 'certificate-key': is set but "
                "certificate is not");
    expect_fail(SS_ERR_CONFIG,
                one("listen = \"*:443\"; certificate = \"server.pem\"; "
                    "certificate-key = \"server.key\"; tls-mutual = true;"),
                ":4: endpoint 'e': option 'tls-mutual': a mutual listen "
                "endpoint needs trusted-ca to verify client certificates");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:443\"; tls-mutual = true;"),
                ":4: endpoint 'e': option 'tls-mutual': a mutual connect "
                "endpoint needs certificate and certificate-key to present");
    /* An inherited value is blamed on the defaults line it came from. */
    expect_fail(SS_ERR_CONFIG,
                HEAD "defaults = {\n  tls-mutual = true;\n};\n"
                     "endpoints = (\n"
                     "  { name = \"e\"; enabled = false; connect = \"*:1\"; }\n"
                     ");\n",
                ":3: endpoint 'e': option 'tls-mutual': a mutual connect "
                "endpoint needs certificate and certificate-key to present");
}

/* tls-unexpected-eof: "error" (the default, OpenSSL's own) or "eof", per
 * endpoint or from defaults; anything else is a file:line:option error. */
static void test_unexpected_eof_option(void **state)
{
    (void)state;
    struct ss_policy *p = load_ok(one("connect = \"*:443\";"));
    assert_false(p->endpoints[0].unexpected_eof_is_eof);
    assert_int_equal(p->endpoints[0].opt_line[SS_OPT_TLS_UNEXPECTED_EOF], 0);
    ss_policy_unref(p);
    p = load_ok(one("connect = \"*:443\"; tls-unexpected-eof = \"eof\";"));
    assert_true(p->endpoints[0].unexpected_eof_is_eof);
    assert_int_equal(p->endpoints[0].opt_line[SS_OPT_TLS_UNEXPECTED_EOF], 4);
    ss_policy_unref(p);
    p = load_ok(one("connect = \"*:443\"; tls-unexpected-eof = \"error\";"));
    assert_false(p->endpoints[0].unexpected_eof_is_eof);
    ss_policy_unref(p);
    /* From defaults, and an endpoint's own value wins. */
    p = load_ok(HEAD "defaults = {\n  tls-unexpected-eof = \"eof\";\n};\n"
                     "endpoints = (\n"
                     "  { name = \"a\"; enabled = false; connect = \"*:1\"; },\n"
                     "  { name = \"b\"; enabled = false; connect = \"*:2\";\n"
                     "    tls-unexpected-eof = \"error\"; }\n"
                     ");\n");
    assert_true(p->endpoints[0].unexpected_eof_is_eof);
    assert_int_equal(p->endpoints[0].opt_line[SS_OPT_TLS_UNEXPECTED_EOF], 3);
    assert_false(p->endpoints[1].unexpected_eof_is_eof);
    assert_int_equal(p->endpoints[1].opt_line[SS_OPT_TLS_UNEXPECTED_EOF], 8);
    ss_policy_unref(p);
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:443\"; tls-unexpected-eof = \"ignore\";"),
                ":4: endpoint 'e': option 'tls-unexpected-eof': 'ignore' is "
                "not valid: use \"error\" or \"eof\"");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:443\"; tls-unexpected-eof = \"\";"),
                ":4: endpoint 'e': option 'tls-unexpected-eof': must not be "
                "empty");
    expect_fail(SS_ERR_CONFIG,
                HEAD "defaults = {\n  tls-unexpected-eof = \"EOF\";\n};\n"
                     "endpoints = ( { name = \"a\"; enabled = false; "
                     "connect = \"*:1\"; } );\n",
                ":3: defaults: option 'tls-unexpected-eof': 'EOF' is not "
                "valid: use \"error\" or \"eof\"");
}

/* session-resumption: a boolean, true by default, per endpoint or from
 * defaults; any other type is a file:line:option error. */
static void test_session_resumption_option(void **state)
{
    (void)state;
    assert_string_equal(ss_opt_name(SS_OPT_SESSION_RESUMPTION),
                        "session-resumption");
    struct ss_policy *p = load_ok(one("connect = \"*:443\";"));
    assert_true(p->endpoints[0].session_resumption);
    assert_int_equal(p->endpoints[0].opt_line[SS_OPT_SESSION_RESUMPTION], 0);
    ss_policy_unref(p);
    p = load_ok(one("connect = \"*:443\"; session-resumption = false;"));
    assert_false(p->endpoints[0].session_resumption);
    assert_int_equal(p->endpoints[0].opt_line[SS_OPT_SESSION_RESUMPTION], 4);
    ss_policy_unref(p);
    p = load_ok(HEAD "defaults = {\n  session-resumption = false;\n};\n"
                     "endpoints = (\n"
                     "  { name = \"a\"; enabled = false; connect = \"*:1\"; },\n"
                     "  { name = \"b\"; enabled = false; connect = \"*:2\";\n"
                     "    session-resumption = true; }\n"
                     ");\n");
    assert_false(p->endpoints[0].session_resumption);
    assert_int_equal(p->endpoints[0].opt_line[SS_OPT_SESSION_RESUMPTION], 3);
    assert_true(p->endpoints[1].session_resumption);
    ss_policy_unref(p);
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:443\"; session-resumption = \"no\";"),
                ":4: endpoint 'e': option 'session-resumption': expected a "
                "boolean (true or false)");
    expect_fail(SS_ERR_CONFIG,
                HEAD "defaults = {\n  session-resumption = 0;\n};\n"
                     "endpoints = ( );\n",
                ":3: defaults: option 'session-resumption': expected a "
                "boolean (true or false)");
}

/* x509-strict: a boolean, true by default, per endpoint or from
 * defaults; any other type is a file:line:option error. */
static void test_x509_strict_option(void **state)
{
    (void)state;
    assert_string_equal(ss_opt_name(SS_OPT_X509_STRICT), "x509-strict");
    struct ss_policy *p = load_ok(one("connect = \"*:443\";"));
    assert_true(p->endpoints[0].x509_strict);
    assert_int_equal(p->endpoints[0].opt_line[SS_OPT_X509_STRICT], 0);
    ss_policy_unref(p);
    p = load_ok(one("connect = \"*:443\"; x509-strict = false;"));
    assert_false(p->endpoints[0].x509_strict);
    assert_int_equal(p->endpoints[0].opt_line[SS_OPT_X509_STRICT], 4);
    ss_policy_unref(p);
    p = load_ok(HEAD "defaults = {\n  x509-strict = false;\n};\n"
                     "endpoints = (\n"
                     "  { name = \"a\"; enabled = false; connect = \"*:1\"; },\n"
                     "  { name = \"b\"; enabled = false; connect = \"*:2\";\n"
                     "    x509-strict = true; }\n"
                     ");\n");
    assert_false(p->endpoints[0].x509_strict);
    assert_int_equal(p->endpoints[0].opt_line[SS_OPT_X509_STRICT], 3);
    assert_true(p->endpoints[1].x509_strict);
    ss_policy_unref(p);
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:443\"; x509-strict = \"no\";"),
                ":4: endpoint 'e': option 'x509-strict': expected a "
                "boolean (true or false)");
    expect_fail(SS_ERR_CONFIG,
                HEAD "defaults = {\n  x509-strict = 0;\n};\n"
                     "endpoints = ( );\n",
                ":3: defaults: option 'x509-strict': expected a "
                "boolean (true or false)");
}

/* The log file's text (static buffer). */
static const char *log_text(const char *path)
{
    static char text[8192];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* x509-strict = false: the endpoint's context is built with the profile
 * off, and one warning names file, line and option; on (the default),
 * nothing is said. */
static void test_x509_strict_warning(void **state)
{
    (void)state;
    const char *log = tu_write_file("strict.log", "%s", "");
    struct ss_errbuf lerr = {{0}};
    assert_int_equal(ss_log_configure(SS_LOG_WARNING, log, &lerr), SS_OK);
    static const char fmt[] = HEAD "endpoints = (\n"
                                   "  { name = \"e\";\n"
                                   "    connect = \"localhost:443\";\n"
                                   "    trusted-ca = \"%s\";\n"
                                   "    %s\n"
                                   "  }\n);\n";
    struct ss_policy *p = load_ok(cfg(fmt, in_pki("ca.pem", NULL),
                                      "x509-strict = false;"));
    assert_false(tu_endpoint(p, "e")->tls->verifier.x509_strict);
    ss_policy_unref(p);
    char want[1200];
    snprintf(want, sizeof(want), "warning: %s:6: endpoint 'e': option "
             "'x509-strict': the RFC 5280 profile is off for this endpoint: "
             "peer chains that break it are accepted", cfg_path);
    p = load_ok(cfg(fmt, in_pki("ca.pem", NULL), ""));
    assert_true(tu_endpoint(p, "e")->tls->verifier.x509_strict);
    ss_policy_unref(p);
    assert_int_equal(ss_log_configure(SS_LOG_WARNING, "stderr", &lerr),
                     SS_OK);
    const char *text = log_text(log);
    const char *at = strstr(text, want);
    if (at == NULL)
        fail_msg("no \"%s\" in the log:\n%s", want, text);
    /* Once: the second policy, strict, says nothing. */
    assert_null(strstr(at + strlen(want), "x509-strict"));
}

static void test_target_name_errors(void **state)
{
    (void)state;
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:443\"; tls-target-name-check = \"yes\";"),
                ":4: endpoint 'e': option 'tls-target-name-check': 'yes' is "
                "not valid: use \"host\" or \"no\"");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:443\"; tls-target-name = \"a b\";"),
                ":4: endpoint 'e': option 'tls-target-name': 'a b' is "
                "neither a DNS name nor an IP address");
    /* Addresses are valid target names. */
    struct ss_policy *p = load_ok(
        one("connect = \"*:443\"; tls-target-name = \"::1\";"));
    assert_string_equal(p->endpoints[0].target_name, "::1");
    ss_policy_unref(p);
}

static void test_protocol_errors(void **state)
{
    (void)state;
    /* The protocol module's own sentence follows the prefix. */
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:443\"; sec-protocol = \"TLSv9\";"),
                ":4: endpoint 'e': option 'sec-protocol': ");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:443\";\n sec-protocol = \"TLSv12\";\n"
                    " tls-version = \"TLSv1.2\";"),
                ":6: endpoint 'e': option 'tls-version': sec-protocol, "
                "tls-version and protocol-list are mutually exclusive");
    expect_fail(SS_ERR_CONFIG,
                one("connect = \"*:443\"; protocol-list = ( \"TLSv2\" );"),
                ":4: endpoint 'e': option 'protocol-list': ");
    expect_fail(SS_ERR_CONFIG,
                HEAD "defaults = {\n  tls-version = \"TLSv7\";\n};\n"
                     "endpoints = ( );\n",
                ":3: defaults: option 'tls-version': ");
    if (!SS_HAVE_SSL3) {
        /* The code of the protocol module is kept. */
        expect_fail(SS_ERR_UNSUPPORTED,
                    one("connect = \"*:443\"; sec-protocol = \"SSLv3\";"),
                    ":4: endpoint 'e': option 'sec-protocol': ");
    }
}

static void test_include_refused(void **state)
{
    (void)state;
    const char *inc = tu_write_file("inc.cfg", "endpoints = ( );\n");
    char text[1200];
    snprintf(text, sizeof(text), HEAD "@include \"%s\"\n", inc);
    struct ss_policy *p = NULL;
    int rc = load_text(text, &p);
    assert_int_equal(rc, SS_ERR_CONFIG);
    assert_null(p);
    assert_non_null(strstr(err.msg, "inc.cfg:1: settings from @include "
                                    "files are not supported"));
}

/* ------------------------------------------------------------------ */
/* Matching                                                             */

static const char *const match_cfg =
    HEAD "defaults = { enabled = false; certificate = \"server.pem\"; "
    "certificate-key = \"server.key\"; };\n"
    "endpoints = (\n"
    "{ name = \"shadow\"; connect = \"10.1.2.3:443\"; },\n"
    "{ name = \"name\"; connect = \"DB.Example.com.:5432\"; },\n"
    "{ name = \"v4\"; connect = \"192.0.2.10:443\"; },\n"
    "{ name = \"v6\"; connect = \"[2001:db8::1]:443\"; },\n"
    "{ name = \"cidr4\"; connect = \"10.0.0.0/8:443\"; },\n"
    "{ name = \"cidr6\"; connect = \"[fd00::]/8:443\"; },\n"
    "{ name = \"web\"; connect = \"www.example:443\"; },\n"
    "{ name = \"dark\"; connect = \"dark.example:443\"; },\n"
    "{ name = \"mapped\"; connect = \"[::ffff:198.51.100.7]:443\"; },\n"
    "{ name = \"v6all\"; connect = \"[::]/0:444\"; },\n"
    "{ name = \"localhost\"; connect = \"localhost:8080\"; },\n"
    "{ name = \"any\"; connect = \"*:443\"; },\n"
    "{ name = \"l-v4\"; listen = \"127.0.0.1:9443\"; },\n"
    "{ name = \"l-v6\"; listen = \"[::1]:9443\"; },\n"
    "{ name = \"l-any\"; listen = \"*:8443\"; },\n"
    "{ name = \"l-all4\"; listen = \"0.0.0.0:7443\"; },\n"
    "{ name = \"l-all6\"; listen = \"[::]:6443\"; }\n"
    ");\n";

static struct ss_policy *match_policy;

static int match_setup(void **state)
{
    (void)state;
    match_policy = load_ok(match_cfg);
    /* The test's own snapshot: switch everything but "shadow" and "dark"
     * on. Matching does not look at the TLS context, which stays NULL. */
    for (size_t i = 0; i < match_policy->n_endpoints; i++) {
        const char *name = match_policy->endpoints[i].name;
        match_policy->endpoints[i].enabled =
            strcmp(name, "shadow") != 0 && strcmp(name, "dark") != 0;
    }
    return 0;
}

static int match_teardown(void **state)
{
    (void)state;
    ss_policy_unref(match_policy);
    return 0;
}

static struct sockaddr_storage sa_buf;

/* text is an IPv4 or IPv6 literal. */
static const struct sockaddr *sa(const char *text, unsigned port,
                                 socklen_t *len)
{
    memset(&sa_buf, 0, sizeof(sa_buf));
    struct sockaddr_in *in = (struct sockaddr_in *)&sa_buf;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa_buf;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof(*in);
    } else {
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*in6);
    }
    return (const struct sockaddr *)&sa_buf;
}

/* The address sets the fake resolver of the tests knows, by the name of
 * a name endpoint: what the shim would have resolved. */
static const struct {
    const char *name;
    const char *addrs[3];
} fake_sets[] = {
    {"db.example.com", {"203.0.113.5", "2001:db8::5", NULL}},
    {"localhost", {"127.0.0.1", "::1", NULL}},
    {"www.example", {"198.51.100.80", "10.5.5.5", NULL}},
    {"dark.example", {"198.51.100.81", NULL, NULL}},
};

/* The names fake_in_set was asked about, in order, comma-separated. */
static char asked[256];

static bool fake_in_set(const struct ss_endpoint *ep,
                        const struct ss_net_addr *a, void *arg)
{
    assert_ptr_equal(arg, &asked);
    assert_int_equal(ep->match.kind, SS_HOST_NAME);
    size_t used = strlen(asked);
    snprintf(asked + used, sizeof(asked) - used, "%s%s", used ? "," : "",
             ep->name);
    for (size_t i = 0; i < sizeof(fake_sets) / sizeof(fake_sets[0]); i++) {
        if (strcmp(fake_sets[i].name, ep->match.name) != 0)
            continue;
        for (size_t j = 0; j < 3 && fake_sets[i].addrs[j] != NULL; j++) {
            socklen_t len;
            struct ss_net_addr one;
            const struct sockaddr *x = sa(fake_sets[i].addrs[j], 0, &len);
            assert_true(ss_net_addr_from_sockaddr(x, len, &one));
            if (ss_net_addr_equal(&one, a))
                return true;
        }
    }
    return false;
}

/* The name of the endpoint a connect matches, or "-" for none; asked
 * holds the name endpoints whose sets were consulted. */
static const char *mc(const char *addr, unsigned port)
{
    socklen_t len;
    struct sockaddr_storage copy;
    memcpy(&copy, sa(addr, port, &len), sizeof(copy));
    asked[0] = '\0';
    const struct ss_endpoint *ep = ss_policy_match_connect(
        match_policy, (struct sockaddr *)&copy, len, fake_in_set, &asked);
    return ep != NULL ? ep->name : "-";
}

static const char *ml(const char *addr, unsigned port)
{
    socklen_t len;
    const struct sockaddr *a = sa(addr, port, &len);
    const struct ss_endpoint *ep = ss_policy_match_listen(match_policy, a,
                                                          len);
    return ep != NULL ? ep->name : "-";
}

static void test_parsed_patterns(void **state)
{
    (void)state;
    const struct ss_endpoint *e = tu_endpoint(match_policy, "cidr6");
    assert_int_equal(e->match.kind, SS_HOST_CIDR);
    assert_int_equal(e->match.family, AF_INET6);
    assert_int_equal(e->match.prefix_len, 8);
    assert_int_equal(e->match.addr[0], 0xfd);
    e = tu_endpoint(match_policy, "v4");
    assert_int_equal(e->match.kind, SS_HOST_ADDR);
    assert_int_equal(e->match.family, AF_INET);
    assert_int_equal(e->match.prefix_len, 32);
    assert_memory_equal(e->match.addr, "\xc0\x00\x02\x0a", 4);
    /* A mapped IPv6 pattern is stored as the IPv4 address. */
    e = tu_endpoint(match_policy, "mapped");
    assert_int_equal(e->match.family, AF_INET);
    assert_int_equal(e->match.prefix_len, 32);
    e = tu_endpoint(match_policy, "name");
    assert_int_equal(e->match.kind, SS_HOST_NAME);
    assert_string_equal(e->match.name, "db.example.com");
    /* localhost is a name, not an address. */
    assert_int_equal(tu_endpoint(match_policy, "localhost")->match.kind,
                     SS_HOST_NAME);
    assert_int_equal(tu_endpoint(match_policy, "l-all6")->match.kind, SS_HOST_ANY);
    assert_int_equal(tu_endpoint(match_policy, "l-all4")->match.kind, SS_HOST_CIDR);
    assert_int_equal(tu_endpoint(match_policy, "l-all4")->match.prefix_len, 0);
}

static void test_match_by_name(void **state)
{
    (void)state;
    /* A name endpoint matches every address of its set, whatever name
     * (or none) the program used for it. */
    assert_string_equal(mc("203.0.113.5", 5432), "name");
    assert_string_equal(mc("2001:db8::5", 5432), "name");
    assert_string_equal(mc("203.0.113.6", 5432), "-");
    assert_string_equal(mc("203.0.113.5", 5433), "-");
    assert_string_equal(mc("127.0.0.1", 8080), "localhost");
    assert_string_equal(mc("::1", 8080), "localhost");
    assert_string_equal(mc("127.0.0.2", 8080), "-");
    /* Without a set, a name matches nothing. */
    socklen_t len;
    const struct sockaddr *a = sa("127.0.0.1", 8080, &len);
    assert_null(ss_policy_match_connect(match_policy, a, len, NULL, NULL));
}

static void test_match_name_mapped(void **state)
{
    (void)state;
    /* What a JVM does for localhost: an AF_INET6 socket to ::ffff:127.0.0.1.
     * The set holds 127.0.0.1; the mapped destination is that address. */
    assert_string_equal(mc("::ffff:127.0.0.1", 8080), "localhost");
    assert_string_equal(mc("::ffff:203.0.113.5", 5432), "name");
    assert_string_equal(mc("::ffff:127.0.0.2", 8080), "-");
}

static void test_match_name_sets_asked_lazily(void **state)
{
    (void)state;
    /* No enabled endpoint on the port: no set is asked for. */
    assert_string_equal(mc("127.0.0.1", 9999), "-");
    assert_string_equal(asked, "");
    /* Decided by an address endpoint before any name endpoint. */
    assert_string_equal(mc("192.0.2.10", 443), "v4");
    assert_string_equal(asked, "");
    /* 10.5.5.5 is in web's set, but cidr4 comes first in the file. */
    assert_string_equal(mc("10.5.5.5", 443), "cidr4");
    assert_string_equal(asked, "");
    /* Name endpoints are asked in file order, up to the decision. */
    assert_string_equal(mc("198.51.100.80", 443), "web");
    assert_string_equal(asked, "web");
    assert_string_equal(mc("192.0.2.11", 443), "any");
    assert_string_equal(asked, "web,dark");
    /* Only the port's name endpoints are asked. */
    assert_string_equal(mc("203.0.113.5", 5432), "name");
    assert_string_equal(asked, "name");
}

static void test_match_name_disabled_shadows(void **state)
{
    (void)state;
    /* "dark" (disabled) is a name endpoint before the wildcard: its
     * addresses stay plaintext, also in mapped form. */
    assert_string_equal(mc("198.51.100.81", 443), "-");
    assert_string_equal(mc("::ffff:198.51.100.81", 443), "-");
    assert_string_equal(asked, "web,dark");
}

/* The name a handshake sends and checks (ss_endpoint_tls_name): the
 * shim's connect and `secshim probe` both take it from here. */
static const char *tls_name(const char *ep_name, const char *resolved,
                            const char *addr, enum ss_tls_name_source *src)
{
    static char host[256];
    socklen_t len;
    struct ss_net_addr a;
    const struct sockaddr *x = sa(addr, 443, &len);
    assert_true(ss_net_addr_from_sockaddr(x, len, &a));
    *src = ss_endpoint_tls_name(tu_endpoint(match_policy, ep_name), resolved,
                                &a, host, sizeof(host));
    return host;
}

static void test_tls_name_choice(void **state)
{
    (void)state;
    enum ss_tls_name_source src;
    /* A name endpoint sends its own name, never the alias resolved. */
    assert_string_equal(tls_name("name", "alias.example", "203.0.113.5",
                                 &src), "db.example.com");
    assert_int_equal(src, SS_NAME_ENDPOINT);
    /* Address, prefix and `*` endpoints: the one name resolved... */
    assert_string_equal(tls_name("v4", "host.example", "192.0.2.10", &src),
                        "host.example");
    assert_int_equal(src, SS_NAME_RESOLVED);
    /* ... else the address, IPv4-mapped written as IPv4. */
    assert_string_equal(tls_name("v4", NULL, "192.0.2.10", &src),
                        "192.0.2.10");
    assert_int_equal(src, SS_NAME_ADDRESS);
    assert_string_equal(tls_name("cidr6", NULL, "fd00::5", &src), "fd00::5");
    assert_int_equal(src, SS_NAME_ADDRESS);
    assert_string_equal(tls_name("any", "", "::ffff:10.1.1.1", &src),
                        "10.1.1.1");
    assert_int_equal(src, SS_NAME_ADDRESS);
    /* tls-target-name wins over everything (the test's own snapshot;
     * put back before the teardown frees it). */
    struct ss_endpoint *any = (struct ss_endpoint *)tu_endpoint(match_policy,
                                                                "any");
    char forced[] = "forced.example";
    any->target_name = forced;
    assert_string_equal(tls_name("any", "host.example", "192.0.2.11", &src),
                        "forced.example");
    assert_int_equal(src, SS_NAME_TARGET);
    any->target_name = NULL;
}

static void test_unresolved_name_fails_closed(void **state)
{
    (void)state;
    /* An enabled name endpoint takes destinations while its name does
     * not resolve (TLS, verified); a disabled one takes none. */
    assert_true(ss_endpoint_unresolved_matches(tu_endpoint(match_policy,
                                                           "web")));
    assert_false(ss_endpoint_unresolved_matches(tu_endpoint(match_policy,
                                                            "dark")));
    assert_false(ss_endpoint_unresolved_matches(NULL));
}

static void test_match_by_address(void **state)
{
    (void)state;
    assert_string_equal(mc("192.0.2.10", 443), "v4");
    assert_string_equal(mc("192.0.2.10", 445), "-");
    assert_string_equal(mc("2001:db8::1", 443), "v6");
    assert_string_equal(mc("2001:db8::2", 443), "any");
    assert_string_equal(mc("10.200.0.1", 443), "cidr4");
    assert_string_equal(mc("fd12:3456::5", 443), "cidr6");
    assert_string_equal(mc("fe80::1", 443), "any");
    assert_string_equal(mc("192.0.2.11", 443), "any");
    /* "localhost" is a name: its endpoint never matches by the address
     * 127.0.0.1 written in its place, only by its set. */
    assert_string_equal(mc("127.0.0.1", 8080), "localhost");
    assert_string_equal(asked, "localhost");
}

static void test_match_mapped(void **state)
{
    (void)state;
    /* A dual-stack socket's ::ffff:a.b.c.d is the IPv4 address. */
    assert_string_equal(mc("::ffff:192.0.2.10", 443), "v4");
    assert_string_equal(mc("::ffff:10.9.8.7", 443), "cidr4");
    assert_string_equal(mc("198.51.100.7", 443), "mapped");
    assert_string_equal(mc("::ffff:198.51.100.7", 443), "mapped");
    /* An IPv6 prefix that covers the mapped range covers IPv4 too. */
    assert_string_equal(mc("192.0.2.99", 444), "v6all");
    assert_string_equal(mc("2001:db8::9", 444), "v6all");
}

static void test_match_first_wins_disabled_shadows(void **state)
{
    (void)state;
    /* "shadow" (disabled) comes before cidr4 and the wildcard: the
     * destination stays plaintext. */
    assert_string_equal(mc("10.1.2.3", 443), "-");
    assert_string_equal(mc("::ffff:10.1.2.3", 443), "-");
    assert_string_equal(mc("10.1.2.4", 443), "cidr4");
}

static void test_match_listen(void **state)
{
    (void)state;
    assert_string_equal(ml("127.0.0.1", 9443), "l-v4");
    assert_string_equal(ml("::ffff:127.0.0.1", 9443), "l-v4");
    assert_string_equal(ml("::1", 9443), "l-v6");
    assert_string_equal(ml("10.0.0.5", 9443), "-");
    assert_string_equal(ml("10.0.0.5", 8443), "l-any");
    assert_string_equal(ml("fe80::5", 8443), "l-any");
    assert_string_equal(ml("10.0.0.5", 7443), "l-all4");
    assert_string_equal(ml("::ffff:10.0.0.5", 7443), "l-all4");
    assert_string_equal(ml("::1", 7443), "-");
    assert_string_equal(ml("::1", 6443), "l-all6");
    assert_string_equal(ml("10.0.0.1", 6443), "l-all6");
    /* Directions never cross. */
    assert_string_equal(ml("192.0.2.10", 443), "-");
    assert_string_equal(mc("127.0.0.1", 9443), "-");
}

static void test_match_other_families(void **state)
{
    (void)state;
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    assert_null(ss_policy_match_connect(match_policy, (struct sockaddr *)&un,
                                        sizeof(un), fake_in_set, &asked));
    assert_null(ss_policy_match_listen(match_policy, (struct sockaddr *)&un,
                                       sizeof(un)));
    socklen_t len;
    const struct sockaddr *a = sa("192.0.2.10", 443, &len);
    assert_null(ss_policy_match_connect(match_policy, a, 2, fake_in_set,
                                        &asked));
    assert_null(ss_policy_match_connect(match_policy, NULL, 0, fake_in_set,
                                        &asked));
    assert_null(ss_policy_match_connect(NULL, a, len, fake_in_set, &asked));
}

/* ------------------------------------------------------------------ */
/* Address helpers                                                      */

static void test_net_addr_from_sockaddr(void **state)
{
    (void)state;
    socklen_t len;
    struct ss_net_addr a, b;
    const struct sockaddr *x = sa("192.0.2.1", 80, &len);
    assert_true(ss_net_addr_from_sockaddr(x, len, &a));
    assert_int_equal(a.family, AF_INET);
    assert_int_equal(a.port, 80);
    assert_memory_equal(a.bytes, "\xc0\x00\x02\x01", 4);
    /* The mapped form is the same IPv4 address, port kept. */
    x = sa("::ffff:192.0.2.1", 81, &len);
    assert_true(ss_net_addr_from_sockaddr(x, len, &b));
    assert_int_equal(b.family, AF_INET);
    assert_int_equal(b.port, 81);
    assert_true(ss_net_addr_equal(&a, &b));
    /* Other IPv6 addresses stay IPv6, also the IPv4-compatible ::a.b.c.d
     * and the NAT64 prefix, which are not mapped addresses. */
    x = sa("::1", 82, &len);
    assert_true(ss_net_addr_from_sockaddr(x, len, &b));
    assert_int_equal(b.family, AF_INET6);
    x = sa("::192.0.2.1", 82, &len);
    assert_true(ss_net_addr_from_sockaddr(x, len, &b));
    assert_int_equal(b.family, AF_INET6);
    assert_false(ss_net_addr_equal(&a, &b));
    x = sa("64:ff9b::192.0.2.1", 82, &len);
    assert_true(ss_net_addr_from_sockaddr(x, len, &b));
    assert_int_equal(b.family, AF_INET6);
    /* Short or foreign addresses are refused. */
    const struct sockaddr *v6 = sa("::1", 1, &len);
    assert_false(ss_net_addr_from_sockaddr(v6, len - 1, &b));
    assert_false(ss_net_addr_from_sockaddr(v6, 1, &b));
    assert_false(ss_net_addr_from_sockaddr(NULL, 16, &b));
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    assert_false(ss_net_addr_from_sockaddr((struct sockaddr *)&un,
                                           sizeof(un), &b));
}

static struct ss_net_addr na(const char *text)
{
    socklen_t len;
    struct ss_net_addr a;
    const struct sockaddr *x = sa(text, 1, &len);
    assert_true(ss_net_addr_from_sockaddr(x, len, &a));
    return a;
}

static void test_host_pattern_has_addr(void **state)
{
    (void)state;
    struct ss_net_addr v4 = na("10.1.2.3"), v6 = na("fd00::7");
    struct ss_net_addr mapped = na("::ffff:10.1.2.3");
    const struct ss_host_pattern *any = &tu_endpoint(match_policy,
                                                     "any")->match;
    assert_true(ss_host_pattern_has_addr(any, &v4));
    assert_true(ss_host_pattern_has_addr(any, &v6));
    const struct ss_host_pattern *cidr4 =
        &tu_endpoint(match_policy, "cidr4")->match;
    assert_true(ss_host_pattern_has_addr(cidr4, &v4));
    assert_true(ss_host_pattern_has_addr(cidr4, &mapped));
    assert_false(ss_host_pattern_has_addr(cidr4, &v6));
    const struct ss_host_pattern *cidr6 =
        &tu_endpoint(match_policy, "cidr6")->match;
    assert_true(ss_host_pattern_has_addr(cidr6, &v6));
    assert_false(ss_host_pattern_has_addr(cidr6, &v4));
    struct ss_net_addr exact = na("192.0.2.10"), near = na("192.0.2.11");
    const struct ss_host_pattern *v4ep = &tu_endpoint(match_policy,
                                                      "v4")->match;
    assert_true(ss_host_pattern_has_addr(v4ep, &exact));
    assert_false(ss_host_pattern_has_addr(v4ep, &near));
    /* [::]/0 covers the mapped range, so IPv4 too. */
    const struct ss_host_pattern *all6 =
        &tu_endpoint(match_policy, "v6all")->match;
    assert_true(ss_host_pattern_has_addr(all6, &v4));
    /* A name holds no address by itself. */
    struct ss_net_addr lo = na("127.0.0.1");
    assert_false(ss_host_pattern_has_addr(
        &tu_endpoint(match_policy, "localhost")->match, &lo));
}

static void test_host_name_equal(void **state)
{
    (void)state;
    assert_true(ss_host_name_equal("db.example.com", "DB.Example.COM"));
    assert_true(ss_host_name_equal("db.example.com.", "db.example.com"));
    assert_true(ss_host_name_equal("db.example.com", "db.example.com."));
    assert_false(ss_host_name_equal("db.example.com", "db.example.co"));
    assert_false(ss_host_name_equal("db.example.com", "db.example.com.."));
    assert_false(ss_host_name_equal("localhost", "127.0.0.1"));
    assert_false(ss_host_name_equal(NULL, "x"));
    assert_false(ss_host_name_equal("x", NULL));
}

/* ------------------------------------------------------------------ */
/* References                                                           */

static void test_ref_unref(void **state)
{
    (void)state;
    struct ss_policy *p = load_ok(one("connect = \"*:1\";"));
    assert_int_equal(atomic_load(&p->refs), 1);
    ss_policy_ref(p);
    assert_int_equal(atomic_load(&p->refs), 2);
    ss_policy_unref(p);
    assert_int_equal(atomic_load(&p->refs), 1);
    assert_string_equal(p->endpoints[0].name, "e");
    ss_policy_unref(p); /* freed: valgrind checks nothing leaks */
    ss_policy_unref(NULL);
}

static void test_endpoint_fail_format(void **state)
{
    (void)state;
    struct ss_endpoint ep;
    memset(&ep, 0, sizeof(ep));
    ep.name = "web";
    ep.line = 12;
    ep.opt_line[SS_OPT_CIPHER_LIST] = 4;
    struct ss_errbuf e;
    assert_int_equal(ss_endpoint_fail(&e, SS_ERR_TLS, "/p.cfg", &ep,
                                      SS_OPT_CIPHER_LIST, "no cipher %s",
                                      "matched"),
                     SS_ERR_TLS);
    assert_string_equal(e.msg, "/p.cfg:4: endpoint 'web': option "
                               "'cipher-list': no cipher matched");
    /* An option that is not set is blamed on the endpoint's group. */
    ss_endpoint_fail(&e, SS_ERR_CONFIG, "/p.cfg", &ep, SS_OPT_TRUSTED_CA,
                     "is required");
    assert_string_equal(e.msg, "/p.cfg:12: endpoint 'web': option "
                               "'trusted-ca': is required");
    assert_int_equal(ss_endpoint_fail(NULL, SS_ERR_IO, "/p.cfg", &ep,
                                      SS_OPT_NAME, "x"),
                     SS_ERR_IO);
}

/* ------------------------------------------------------------------ */
/* Enabled endpoints: need tlsctx                                       */

static void test_enabled_endpoints_get_contexts(void **state)
{
    (void)state;
    struct ss_policy *p = load_ok(
        HEAD "endpoints = (\n"
        "{ name = \"out\"; connect = \"localhost:443\"; trusted-ca = "
        "\"ca.pem\"; },\n"
        "{ name = \"in\"; listen = \"*:443\"; certificate = \"server.pem\"; "
        "certificate-key = \"server.key\"; trusted-ca = \"ca.pem\"; "
        "tls-mutual = true; },\n"
        "{ name = \"off\"; enabled = false; connect = \"*:1\"; }\n"
        ");\n");
    assert_true(tu_endpoint(p, "out")->enabled);
    assert_non_null(tu_endpoint(p, "out")->tls);
    assert_non_null(tu_endpoint(p, "in")->tls);
    assert_null(tu_endpoint(p, "off")->tls);
    ss_policy_unref(p);

    /* The compatibility flag is recorded. */
    struct ss_policy *q = NULL;
    memset(&err, 0, sizeof(err));
    assert_int_equal(ss_policy_load(cfg_path, true, &q, &err), SS_OK);
    assert_true(q->compat);
    ss_policy_unref(q);
}

static void test_tlsctx_error_passed_on(void **state)
{
    (void)state;
    /* The root CA's key does not belong to the server certificate. */
    struct ss_policy *p = NULL;
    int rc = load_text(HEAD "endpoints = (\n"
                            "{ name = \"bad\"; listen = \"*:443\";\n"
                            "  certificate = \"server.pem\";\n"
                            "  certificate-key = \"root-ca.key\"; }\n"
                            ");\n",
                       &p);
    /* tlsctx chooses the code; policy passes it and the message on. */
    assert_true(rc < 0);
    assert_null(p);
    char want[700];
    snprintf(want, sizeof(want),
             "%s:5: endpoint 'bad': option 'certificate-key': ", cfg_path);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        print_error("got %s: %s\n", ss_strerror(rc), err.msg);
    assert_memory_equal(err.msg, want, strlen(want));
}

/* ------------------------------------------------------------------ */
/* When contexts are built                                              */

/* Two enabled endpoints that build, one disabled. */
#define BUILDABLE                                                         \
    HEAD "endpoints = (\n"                                                \
         "{ name = \"out\"; connect = \"localhost:443\"; trusted-ca = "   \
         "\"ca.pem\"; },\n"                                               \
         "{ name = \"in\"; listen = \"*:443\"; certificate = "           \
         "\"server.pem\"; certificate-key = \"server.key\"; },\n"         \
         "{ name = \"off\"; enabled = false; connect = \"*:1\"; }\n"      \
         ");\n"

/* Parses text (ss_policy_parse); fails the test when it does not. */
static struct ss_policy *parse_ok(const char *text)
{
    snprintf(cfg_path, sizeof(cfg_path), "%s", tu_write_file("p.cfg", "%s",
                                                             text));
    struct ss_policy *p = NULL;
    memset(&err, 0, sizeof(err));
    int rc = ss_policy_parse(cfg_path, false, &p, &err);
    if (rc != SS_OK)
        print_error("parse failed: %s: %s\n", ss_strerror(rc), err.msg);
    assert_int_equal(rc, SS_OK);
    assert_non_null(p);
    return p;
}

/* err.msg starts with cfg_path followed by rest. */
static void expect_msg(const char *rest)
{
    size_t plen = strlen(cfg_path);
    bool ok = strncmp(err.msg, cfg_path, plen) == 0 &&
              strncmp(err.msg + plen, rest, strlen(rest)) == 0;
    if (!ok)
        print_error("want \"<cfg>%s\"\ngot  \"%s\"\n", rest, err.msg);
    assert_true(ok);
}

static void test_parse_builds_no_context(void **state)
{
    (void)state;
    struct ss_policy *p = parse_ok(BUILDABLE);
    for (size_t i = 0; i < p->n_endpoints; i++) {
        assert_null(ss_endpoint_tls(&p->endpoints[i]));
        assert_int_equal(atomic_load(&p->endpoints[i].tls_error), SS_OK);
    }
    /* The first need builds that endpoint alone, once. */
    const struct ss_endpoint *in = tu_endpoint(p, "in");
    bool built = false;
    assert_int_equal(ss_policy_tls(p, in, &built, &err), SS_OK);
    assert_true(built);
    struct ss_tlsctx *t = ss_endpoint_tls(in);
    assert_non_null(t);
    assert_ptr_equal(in->tls, t);
    assert_int_equal(t->role, SS_ROLE_SERVER);
    assert_null(ss_endpoint_tls(tu_endpoint(p, "out")));
    assert_int_equal(ss_policy_tls(p, in, &built, &err), SS_OK);
    assert_false(built);
    assert_ptr_equal(ss_endpoint_tls(in), t);
    ss_policy_unref(p);
}

static void test_parse_accepts_what_only_a_build_refuses(void **state)
{
    (void)state;
    /* Everything here passes the start-up checks (the files exist and are
     * readable) and is refused when the context is built. */
    static const struct {
        const char *setting;
        const char *rest; /* the build's message after cfg_path */
    } cases[] = {
        {"certificate = \"server.pem\";\n  certificate-key = "
         "\"client.key\";",
         ":5: endpoint 'e': option 'certificate-key': certificate-key does "
         "not match certificate"},
        {"certificate = \"server.pem\";\n  certificate-key = \"ca.pem\";",
         ":5: endpoint 'e': option 'certificate-key': cannot load the "
         "private key"},
        {"certificate = \"crl.pem\";\n  certificate-key = \"server.key\";",
         ":4: endpoint 'e': option 'certificate': "},
        {"certificate = \"server.pem\"; certificate-key = \"server.key\";\n"
         "  cipher-list = \"NOTACIPHER\";",
         ":5: endpoint 'e': option 'cipher-list': OpenSSL accepts no cipher"},
        {"certificate = \"server.pem\"; certificate-key = \"server.key\";\n"
         "  fips140-enabled = true;",
         ":5: endpoint 'e': option 'fips140-enabled': "},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *text = cfg(HEAD "endpoints = (\n"
                                    "{ name = \"e\"; listen = \"*:443\";\n"
                                    "  %s\n}\n);\n",
                               cases[i].setting);
        struct ss_policy *p = parse_ok(text);
        const struct ss_endpoint *e = tu_endpoint(p, "e");
        bool built = false;
        int rc = ss_policy_tls(p, e, &built, &err);
        assert_true(rc < 0);
        assert_true(built);
        expect_msg(cases[i].rest);
        assert_null(ss_endpoint_tls(e));
        /* Remembered: not built (nor reported) again. */
        memset(&err, 0, sizeof(err));
        assert_int_equal(ss_policy_tls(p, e, &built, &err), rc);
        assert_false(built);
        expect_msg(":3: endpoint 'e': its TLS context could not be built");
        ss_policy_unref(p);
        /* ss_policy_load refuses the same file with the same message. */
        assert_int_equal(load_text(text, &p), rc);
        assert_null(p);
        expect_msg(cases[i].rest);
    }
}

static void test_build_all(void **state)
{
    (void)state;
    struct ss_policy *p = parse_ok(BUILDABLE);
    bool built = false;
    assert_int_equal(ss_policy_tls(p, tu_endpoint(p, "in"), &built, &err),
                     SS_OK);
    struct ss_tlsctx *in = ss_endpoint_tls(tu_endpoint(p, "in"));
    assert_int_equal(ss_policy_build_all(p, &err), SS_OK);
    assert_non_null(ss_endpoint_tls(tu_endpoint(p, "out")));
    assert_ptr_equal(ss_endpoint_tls(tu_endpoint(p, "in")), in); /* kept */
    assert_null(ss_endpoint_tls(tu_endpoint(p, "off")));
    ss_policy_unref(p);

    /* The first failure stops it, with the endpoint's message. */
    p = parse_ok(HEAD "endpoints = (\n"
                      "{ name = \"good\"; connect = \"*:1\"; },\n"
                      "{ name = \"bad\"; listen = \"*:443\";\n"
                      "  certificate = \"server.pem\";\n"
                      "  certificate-key = \"root-ca.key\"; }\n"
                      ");\n");
    assert_true(ss_policy_build_all(p, &err) < 0);
    expect_msg(":6: endpoint 'bad': option 'certificate-key': ");
    assert_non_null(ss_endpoint_tls(tu_endpoint(p, "good")));
    assert_null(ss_endpoint_tls(tu_endpoint(p, "bad")));
    ss_policy_unref(p);
}

static void test_build_used(void **state)
{
    (void)state;
    struct ss_policy *old = parse_ok(BUILDABLE);
    bool built = false;
    assert_int_equal(ss_policy_tls(old, tu_endpoint(old, "in"), &built,
                                   &err), SS_OK);
    /* The fresh snapshot builds what old has built (by name), no more. */
    struct ss_policy *fresh = parse_ok(BUILDABLE);
    assert_int_equal(ss_policy_build_used(fresh, old, &err), SS_OK);
    assert_non_null(ss_endpoint_tls(tu_endpoint(fresh, "in")));
    assert_ptr_not_equal(ss_endpoint_tls(tu_endpoint(fresh, "in")),
                         ss_endpoint_tls(tu_endpoint(old, "in")));
    assert_null(ss_endpoint_tls(tu_endpoint(fresh, "out")));
    ss_policy_unref(fresh);

    /* A used endpoint that no longer builds fails the whole reload... */
    const char *broken_in =
        HEAD "endpoints = (\n"
             "{ name = \"out\"; connect = \"localhost:443\"; },\n"
             "{ name = \"in\"; listen = \"*:443\"; certificate = "
             "\"server.pem\";\n"
             "  certificate-key = \"client.key\"; }\n"
             ");\n";
    fresh = parse_ok(broken_in);
    assert_true(ss_policy_build_used(fresh, old, &err) < 0);
    expect_msg(":5: endpoint 'in': option 'certificate-key': ");
    ss_policy_unref(fresh);
    /* ...an unused one does not (it is built at its first need). */
    const char *broken_out =
        HEAD "endpoints = (\n"
             "{ name = \"out\"; connect = \"localhost:443\";\n"
             "  cipher-list = \"NOTACIPHER\"; },\n"
             "{ name = \"in\"; listen = \"*:443\"; certificate = "
             "\"server.pem\"; certificate-key = \"server.key\"; }\n"
             ");\n";
    fresh = parse_ok(broken_out);
    assert_int_equal(ss_policy_build_used(fresh, old, &err), SS_OK);
    assert_null(ss_endpoint_tls(tu_endpoint(fresh, "out")));
    ss_policy_unref(fresh);
    /* An endpoint gone or disabled in fresh is not built. */
    fresh = parse_ok(HEAD "endpoints = (\n"
                          "{ name = \"in\"; enabled = false; listen = "
                          "\"*:443\"; certificate = \"server.pem\"; "
                          "certificate-key = \"server.key\"; }\n);\n");
    assert_int_equal(ss_policy_build_used(fresh, old, &err), SS_OK);
    assert_null(ss_endpoint_tls(tu_endpoint(fresh, "in")));
    ss_policy_unref(fresh);
    ss_policy_unref(old);
}

static void test_policy_tls_refuses_others(void **state)
{
    (void)state;
    struct ss_policy *p = parse_ok(BUILDABLE);
    struct ss_policy *q = parse_ok(BUILDABLE);
    bool built = true;
    /* A disabled endpoint has no context to build; another snapshot's
     * endpoint is not this one's to fill. */
    assert_int_equal(ss_policy_tls(p, tu_endpoint(p, "off"), &built, &err),
                     SS_ERR_INVAL);
    assert_false(built);
    assert_int_equal(ss_policy_tls(p, tu_endpoint(q, "in"), &built, &err),
                     SS_ERR_INVAL);
    assert_int_equal(ss_policy_tls(p, NULL, &built, &err), SS_ERR_INVAL);
    assert_null(ss_endpoint_tls(tu_endpoint(q, "in")));
    ss_policy_unref(q);
    ss_policy_unref(p);
}

#define BUILD_THREADS 8

struct build_race {
    struct ss_policy *p;
    const struct ss_endpoint *ep;
    pthread_barrier_t *start;
    int rc;
    bool built;
    struct ss_tlsctx *seen;
};

static void *build_racer(void *arg)
{
    struct build_race *r = arg;
    struct ss_errbuf e;
    pthread_barrier_wait(r->start);
    r->rc = ss_policy_tls(r->p, r->ep, &r->built, &e);
    r->seen = ss_endpoint_tls(r->ep);
    return NULL;
}

static void test_policy_tls_threads_build_once(void **state)
{
    (void)state;
    struct ss_policy *p = parse_ok(BUILDABLE);
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, BUILD_THREADS), 0);
    pthread_t tid[BUILD_THREADS];
    struct build_race r[BUILD_THREADS];
    for (int i = 0; i < BUILD_THREADS; i++) {
        r[i] = (struct build_race){.p = p, .ep = tu_endpoint(p, "in"),
                                   .start = &start};
        assert_int_equal(pthread_create(&tid[i], NULL, build_racer, &r[i]),
                         0);
    }
    int builders = 0;
    for (int i = 0; i < BUILD_THREADS; i++) {
        assert_int_equal(pthread_join(tid[i], NULL), 0);
        assert_int_equal(r[i].rc, SS_OK);
        assert_ptr_equal(r[i].seen, ss_endpoint_tls(tu_endpoint(p, "in")));
        builders += r[i].built;
    }
    assert_int_equal(builders, 1);
    assert_non_null(r[0].seen);
    pthread_barrier_destroy(&start);
    ss_policy_unref(p);
}

static void test_listen_serves(void **state)
{
    (void)state;
    struct ss_policy *p = parse_ok(
        HEAD "endpoints = (\n"
             "{ name = \"v4\"; listen = \"127.0.0.1:7000\"; certificate = "
             "\"server.pem\"; certificate-key = \"server.key\"; },\n"
             "{ name = \"v6\"; listen = \"[::1]:7000\"; certificate = "
             "\"server.pem\"; certificate-key = \"server.key\"; },\n"
             "{ name = \"any\"; listen = \"*:7001\"; certificate = "
             "\"server.pem\"; certificate-key = \"server.key\"; },\n"
             "{ name = \"off\"; enabled = false; listen = \"*:7002\"; "
             "certificate = \"server.pem\"; certificate-key = "
             "\"server.key\"; },\n"
             "{ name = \"out\"; connect = \"*:7000\"; }\n"
             ");\n");
    const struct ss_endpoint *v4 = tu_endpoint(p, "v4");
    const struct ss_endpoint *v6 = tu_endpoint(p, "v6");
    const struct ss_endpoint *any = tu_endpoint(p, "any");
    socklen_t len;
    const struct sockaddr *a; /* a bound socket's local address */
    /* An address of its own: the endpoint that matches it. */
    a = sa("127.0.0.1", 7000, &len);
    assert_true(ss_policy_listen_serves(p, v4, a, len, false));
    assert_false(ss_policy_listen_serves(p, v6, a, len, false));
    a = sa("127.0.0.2", 7000, &len);
    assert_false(ss_policy_listen_serves(p, v4, a, len, false));
    a = sa("::ffff:127.0.0.1", 7000, &len);
    assert_true(ss_policy_listen_serves(p, v4, a, len, false));
    a = sa("::1", 7000, &len);
    assert_true(ss_policy_listen_serves(p, v6, a, len, false));
    assert_false(ss_policy_listen_serves(p, v4, a, len, false));
    /* 0.0.0.0 accepts on every IPv4 address. */
    a = sa("0.0.0.0", 7000, &len);
    assert_true(ss_policy_listen_serves(p, v4, a, len, false));
    assert_false(ss_policy_listen_serves(p, v6, a, len, false));
    assert_false(ss_policy_listen_serves(p, any, a, len, false)); /* port */
    /* [::] on every address, IPv4 too unless IPV6_V6ONLY. */
    a = sa("::", 7000, &len);
    assert_true(ss_policy_listen_serves(p, v4, a, len, false));
    assert_true(ss_policy_listen_serves(p, v6, a, len, false));
    assert_false(ss_policy_listen_serves(p, v4, a, len, true));
    assert_true(ss_policy_listen_serves(p, v6, a, len, true));
    a = sa("::", 7001, &len);
    assert_true(ss_policy_listen_serves(p, any, a, len, true));
    /* Disabled, connect endpoints and unbound sockets: never. */
    a = sa("0.0.0.0", 7002, &len);
    assert_false(ss_policy_listen_serves(p, tu_endpoint(p, "off"), a, len,
                                         false));
    a = sa("0.0.0.0", 7000, &len);
    assert_false(ss_policy_listen_serves(p, tu_endpoint(p, "out"), a, len,
                                         false));
    a = sa("0.0.0.0", 0, &len);
    assert_false(ss_policy_listen_serves(p, v4, a, len, false));
    ss_policy_unref(p);
}

static void test_example_config_loads(void **state)
{
    (void)state;
    /* config/secshim.cfg names its files relative to its directory, so a
     * copy beside the test PKI loads as it is. */
    FILE *f = fopen("config/secshim.cfg", "r");
    assert_non_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    struct ss_policy *p = load_ok(text);
    assert_true(p->n_endpoints >= 4);
    ss_policy_unref(p);
}

int main(void)
{
    const struct CMUnitTest parsing[] = {
        cmocka_unit_test(test_opt_names),
        cmocka_unit_test(test_every_option),
        cmocka_unit_test(test_builtin_defaults),
        cmocka_unit_test(test_empty_endpoints_and_log_targets),
        cmocka_unit_test(test_protocol_options),
        cmocka_unit_test(test_defaults_inheritance),
        cmocka_unit_test(test_defaults_complete_cross_rules),
        cmocka_unit_test(test_relative_policy_path),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_top_level_errors),
        cmocka_unit_test(test_log_errors),
        cmocka_unit_test(test_unknown_option),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_allow_peer_parsed),
        cmocka_unit_test(test_allow_peer_inherited),
        cmocka_unit_test(test_allow_peer_errors),
        cmocka_unit_test(test_allow_peer_listen_needs_mutual),
        cmocka_unit_test(test_handshake_timeout_range),
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_name_errors),
        cmocka_unit_test(test_per_endpoint_options_in_defaults),
        cmocka_unit_test(test_direction_errors),
        cmocka_unit_test(test_address_errors),
        cmocka_unit_test(test_cross_option_errors),
        cmocka_unit_test(test_target_name_errors),
        cmocka_unit_test(test_unexpected_eof_option),
        cmocka_unit_test(test_session_resumption_option),
        cmocka_unit_test(test_x509_strict_option),
        cmocka_unit_test(test_x509_strict_warning),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_include_refused),
        cmocka_unit_test(test_ref_unref),
        cmocka_unit_test(test_endpoint_fail_format),
        cmocka_unit_test_setup_teardown(test_parsed_patterns, match_setup,
                                        match_teardown),
        cmocka_unit_test_setup_teardown(test_match_by_name, match_setup,
                                        match_teardown),
        cmocka_unit_test_setup_teardown(test_match_name_mapped, match_setup,
                                        match_teardown),
        cmocka_unit_test_setup_teardown(test_match_name_sets_asked_lazily,
                                        match_setup, match_teardown),
        cmocka_unit_test_setup_teardown(test_match_name_disabled_shadows,
                                        match_setup, match_teardown),
        cmocka_unit_test_setup_teardown(test_tls_name_choice, match_setup,
                                        match_teardown),
        cmocka_unit_test_setup_teardown(test_unresolved_name_fails_closed,
                                        match_setup, match_teardown),
        cmocka_unit_test_setup_teardown(test_match_by_address, match_setup,
                                        match_teardown),
        cmocka_unit_test_setup_teardown(test_match_mapped, match_setup,
                                        match_teardown),
        cmocka_unit_test_setup_teardown(
            test_match_first_wins_disabled_shadows, match_setup,
            match_teardown),
        cmocka_unit_test_setup_teardown(test_match_listen, match_setup,
                                        match_teardown),
        cmocka_unit_test_setup_teardown(test_match_other_families,
                                        match_setup, match_teardown),
        cmocka_unit_test(test_net_addr_from_sockaddr),
        cmocka_unit_test_setup_teardown(test_host_pattern_has_addr,
                                        match_setup, match_teardown),
        cmocka_unit_test(test_host_name_equal),
        cmocka_unit_test(test_enabled_endpoints_get_contexts),
        cmocka_unit_test(test_tlsctx_error_passed_on),
        cmocka_unit_test(test_parse_builds_no_context),
        cmocka_unit_test(test_parse_accepts_what_only_a_build_refuses),
        cmocka_unit_test(test_build_all),
        cmocka_unit_test(test_build_used),
        cmocka_unit_test(test_policy_tls_refuses_others),
        cmocka_unit_test(test_policy_tls_threads_build_once),
        cmocka_unit_test(test_listen_serves),
        cmocka_unit_test(test_example_config_loads),
    };
    return cmocka_run_group_tests_name("policy", parsing, group_setup,
                                       tu_group_teardown);
}
