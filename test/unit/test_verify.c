/*
 * test_verify.c - chain verification and the two compatibility relaxations.
 *
 * The matrix of issue 2 runs every certificate of tools/secshim-pki through
 * ss_verify_chain with compatibility mode off and on; a handshake test over
 * a socketpair proves the same callback decides inside libssl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <openssl/bn.h>
#include <openssl/conf.h>
#include <openssl/rsa.h>
#include <openssl/dsa.h>

#include "secshim/log.h"
#include "secshim/verify.h"
#include "testutil.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

struct chain {
    X509 *leaf;
    STACK_OF(X509) *rest;
};

static void chain_load(struct chain *c, const char *name)
{
    FILE *f = fopen(tu_pki_file(name), "r");
    assert_non_null(f);
    c->leaf = PEM_read_X509(f, NULL, NULL, NULL);
    assert_non_null(c->leaf);
    c->rest = sk_X509_new_null();
    assert_non_null(c->rest);
    X509 *x;
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
        assert_true(sk_X509_push(c->rest, x) > 0);
    ERR_clear_error(); /* the read that hit end of file */
    fclose(f);
}

static void chain_free(struct chain *c)
{
    X509_free(c->leaf);
    sk_X509_pop_free(c->rest, X509_free);
}

static void verifier_make(struct ss_verifier *v, const char *trusted,
                          const char *crl, enum ss_purpose purpose,
                          bool compat)
{
    struct ss_errbuf err = {{0}};
    int rc = ss_verifier_init(v, trusted, crl, purpose, compat, &err);
    if (rc != SS_OK)
        fail_msg("ss_verifier_init: %s: %s", ss_strerror(rc), err.msg);
}

/* Verifies file against the given verifier; returns the rc. */
static int check_file(const struct ss_verifier *v, const char *file,
                      const char *host, time_t at,
                      struct ss_verify_result *res)
{
    struct chain c;
    chain_load(&c, file);
    int rc = ss_verify_chain(v, c.leaf, c.rest, host, at, res);
    chain_free(&c);
    return rc;
}

static void assert_contains(const char *text, const char *words)
{
    if (strstr(text, words) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", text, words);
}

static void assert_accepted(int rc, const struct ss_verify_result *res,
                            unsigned relaxations)
{
    if (rc != SS_OK)
        fail_msg("rejected (%s): %s", ss_strerror(rc), res->reason);
    assert_true(res->ok);
    assert_int_equal(res->x509_error, X509_V_OK);
    assert_string_equal(res->reason, "");
    assert_int_equal(res->relaxations, relaxations);
}

static void assert_rejected(int rc, const struct ss_verify_result *res,
                            int x509_error, int depth, const char *words,
                            const char *subject)
{
    if (rc != SS_ERR_VERIFY)
        fail_msg("expected SS_ERR_VERIFY, got %s (%s)", ss_strerror(rc),
                 res->reason);
    assert_false(res->ok);
    if (res->x509_error != x509_error)
        fail_msg("x509 error %d (%s), expected %d", res->x509_error,
                 res->reason, x509_error);
    assert_int_equal(res->error_depth, depth);
    assert_contains(res->reason, words);
    assert_contains(res->reason, subject);
    assert_int_equal(res->relaxations, 0);
}

/* ------------------------------------------------------------------ */
/* The matrix                                                           */

/*
 * One row: what happens with compatibility mode off; with it on, the same
 * unless relax is set, in which case the chain is accepted with exactly
 * that relaxation applied to relaxed_subject.
 */
struct row {
    const char *file;
    const char *trusted;
    enum ss_purpose purpose;
    const char *host;
    int x509_error; /* X509_V_OK: accepted both ways */
    int depth;
    const char *words;
    const char *subject;
    unsigned relax;
    const char *relaxed_subject;
};

static void run_row_mode(const struct row *r, bool compat)
{
    struct ss_verifier v;
    verifier_make(&v, tu_pki_file(r->trusted), tu_pki_file("crl.pem"),
                  r->purpose, compat);
    struct ss_verify_result res;
    int rc = check_file(&v, r->file, r->host, 0, &res);
    if (r->x509_error == X509_V_OK) {
        assert_accepted(rc, &res, 0);
    } else if (compat && r->relax != 0) {
        assert_accepted(rc, &res, r->relax);
        int slot = r->relax == SS_RELAX_REVOKED_TRUSTED_CA ? 0 : 1;
        assert_string_equal(res.relaxed_subject[slot], r->relaxed_subject);
        assert_string_equal(res.relaxed_subject[1 - slot], "");
    } else {
        assert_rejected(rc, &res, r->x509_error, r->depth, r->words,
                        r->subject);
    }
    ss_verifier_free(&v);
}

static void run_row(const struct row *r)
{
    run_row_mode(r, false);
    run_row_mode(r, true);
}

static void test_valid_localhost(void **state)
{
    (void)state;
    const struct row r = {"server.pem", "ca.pem", SS_PURPOSE_SERVER,
                          "localhost", X509_V_OK, 0, NULL, NULL, 0, NULL};
    run_row(&r);
}

static void test_valid_ipv4(void **state)
{
    (void)state;
    const struct row r = {"server.pem", "ca.pem", SS_PURPOSE_SERVER,
                          "127.0.0.1", X509_V_OK, 0, NULL, NULL, 0, NULL};
    run_row(&r);
}

static void test_valid_ipv6(void **state)
{
    (void)state;
    const struct row r = {"server.pem", "ca.pem", SS_PURPOSE_SERVER, "::1",
                          X509_V_OK, 0, NULL, NULL, 0, NULL};
    run_row(&r);
}

static void test_valid_no_host(void **state)
{
    (void)state;
    const struct row r = {"server.pem", "ca.pem", SS_PURPOSE_SERVER, NULL,
                          X509_V_OK, 0, NULL, NULL, 0, NULL};
    run_row(&r);
}

static void test_expired(void **state)
{
    (void)state;
    const struct row r = {"expired.pem", "ca.pem", SS_PURPOSE_SERVER,
                          "localhost", X509_V_ERR_CERT_HAS_EXPIRED, 0,
                          "certificate has expired at depth 0",
                          "(subject CN = secshim-expired)", 0, NULL};
    run_row(&r);
}

static void test_not_yet_valid(void **state)
{
    (void)state;
    const struct row r = {"notyet.pem", "ca.pem", SS_PURPOSE_SERVER,
                          "localhost", X509_V_ERR_CERT_NOT_YET_VALID, 0,
                          "certificate is not yet valid at depth 0",
                          "(subject CN = secshim-notyet)", 0, NULL};
    run_row(&r);
}

static void test_wrong_host(void **state)
{
    (void)state;
    const struct row r = {"wronghost.pem", "ca.pem", SS_PURPOSE_SERVER,
                          "localhost", X509_V_ERR_HOSTNAME_MISMATCH, 0,
                          "certificate does not match host name 'localhost'",
                          "(subject CN = secshim-wronghost)", 0, NULL};
    run_row(&r);
}

static void test_wrong_ip(void **state)
{
    (void)state;
    const struct row r = {"wronghost.pem", "ca.pem", SS_PURPOSE_SERVER,
                          "127.0.0.1", X509_V_ERR_IP_ADDRESS_MISMATCH, 0,
                          "certificate does not match IP address '127.0.0.1'",
                          "(subject CN = secshim-wronghost)", 0, NULL};
    run_row(&r);
}

/* A name that merely looks like a host must not match a partial wildcard
 * or the CN; the server leaf names only localhost and two addresses. */
static void test_other_name(void **state)
{
    (void)state;
    const struct row r = {"server.pem", "ca.pem", SS_PURPOSE_SERVER,
                          "secshim-server", X509_V_ERR_HOSTNAME_MISMATCH, 0,
                          "does not match host name 'secshim-server'",
                          "(subject CN = secshim-server)", 0, NULL};
    run_row(&r);
}

static void test_unknown_ca(void **state)
{
    (void)state;
    const struct row r = {"unknown-ca.pem", "ca.pem", SS_PURPOSE_SERVER,
                          "localhost",
                          X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 0,
                          "unable to get local issuer certificate at depth 0",
                          "(subject CN = secshim-unknown-ca)", 0, NULL};
    run_row(&r);
}

static void test_revoked_leaf(void **state)
{
    (void)state;
    const struct row r = {"revoked.pem", "ca.pem", SS_PURPOSE_SERVER,
                          "localhost", X509_V_ERR_CERT_REVOKED, 0,
                          "certificate revoked at depth 0",
                          "(subject CN = secshim-revoked)", 0, NULL};
    run_row(&r);
}

/* A revoked leaf stays fatal even when it is itself listed as trusted:
 * the relaxation is for CA certificates (depth > 0) only. */
static void test_revoked_leaf_listed(void **state)
{
    (void)state;
    const char *both = tu_write_file("ca-and-revoked-leaf.pem", "%s", "");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cat %s %s >%s", tu_pki_file("ca.pem"),
             tu_pki_file("revoked.pem"), both);
    assert_int_equal(system(cmd), 0);
    const struct row r = {"revoked.pem", "ca-and-revoked-leaf.pem",
                          SS_PURPOSE_SERVER, "localhost",
                          X509_V_ERR_CERT_REVOKED, 0,
                          "certificate revoked at depth 0",
                          "(subject CN = secshim-revoked)", 0, NULL};
    run_row(&r);
}

static void test_revoked_inter_listed(void **state)
{
    (void)state;
    const struct row r = {
        "revoked-inter.pem", "ca-with-revoked-inter.pem", SS_PURPOSE_SERVER,
        "localhost", X509_V_ERR_CERT_REVOKED, 1,
        "certificate revoked at depth 1",
        "(subject CN = secshim Test Revoked Intermediate CA)",
        SS_RELAX_REVOKED_TRUSTED_CA,
        "CN = secshim Test Revoked Intermediate CA"};
    run_row(&r);
}

static void test_revoked_inter_not_listed(void **state)
{
    (void)state;
    const struct row r = {
        "revoked-inter.pem", "ca.pem", SS_PURPOSE_SERVER, "localhost",
        X509_V_ERR_CERT_REVOKED, 1, "certificate revoked at depth 1",
        "(subject CN = secshim Test Revoked Intermediate CA)", 0, NULL};
    run_row(&r);
}

static void test_ku_noauth(void **state)
{
    (void)state;
    const struct row r = {"ku-noauth.pem", "ca.pem", SS_PURPOSE_SERVER,
                          "localhost", X509_V_ERR_INVALID_PURPOSE, 0,
                          "unsuitable certificate purpose at depth 0",
                          "(subject CN = secshim-ku-noauth)",
                          SS_RELAX_KEY_USAGE, "CN = secshim-ku-noauth"};
    run_row(&r);
}

static void test_no_serverauth(void **state)
{
    (void)state;
    const struct row r = {"no-serverauth.pem", "ca.pem", SS_PURPOSE_SERVER,
                          "localhost", X509_V_ERR_INVALID_PURPOSE, 0,
                          "unsuitable certificate purpose at depth 0",
                          "(subject CN = secshim-no-serverauth)",
                          SS_RELAX_KEY_USAGE, "CN = secshim-no-serverauth"};
    run_row(&r);
}

static void test_client_no_clientauth(void **state)
{
    (void)state;
    const struct row r = {"client-no-clientauth.pem", "ca.pem",
                          SS_PURPOSE_CLIENT, NULL, X509_V_ERR_INVALID_PURPOSE,
                          0, "unsuitable certificate purpose at depth 0",
                          "(subject CN = secshim-client-no-clientauth)",
                          SS_RELAX_KEY_USAGE,
                          "CN = secshim-client-no-clientauth"};
    run_row(&r);
}

static void test_client_good(void **state)
{
    (void)state;
    const struct row r = {"client.pem", "ca.pem", SS_PURPOSE_CLIENT, NULL,
                          X509_V_OK, 0, NULL, NULL, 0, NULL};
    run_row(&r);
}

/* A server certificate is no client certificate (and vice versa). */
static void test_server_cert_as_client(void **state)
{
    (void)state;
    const struct row r = {"server.pem", "ca.pem", SS_PURPOSE_CLIENT, NULL,
                          X509_V_ERR_INVALID_PURPOSE, 0,
                          "unsuitable certificate purpose at depth 0",
                          "(subject CN = secshim-server)", SS_RELAX_KEY_USAGE,
                          "CN = secshim-server"};
    run_row(&r);
}

/* Compat mode does not relax two failures at once beyond its two kinds:
 * an expired certificate stays fatal even when a relaxation also applies. */
static void test_expired_wins_over_relaxation(void **state)
{
    (void)state;
    struct ss_verifier v;
    verifier_make(&v, tu_pki_file("ca-with-revoked-inter.pem"),
                  tu_pki_file("crl.pem"), SS_PURPOSE_SERVER, true);
    struct ss_verify_result res;
    /* 2100: every certificate and CRL has expired. */
    int rc = check_file(&v, "revoked-inter.pem", "localhost",
                        (time_t)4102444800, &res);
    assert_int_equal(rc, SS_ERR_VERIFY);
    assert_false(res.ok);
    assert_int_not_equal(res.x509_error, X509_V_OK);
    ss_verifier_free(&v);
}

/* ------------------------------------------------------------------ */
/* Time, CRL configuration and the logged warnings                     */

/* --at: a currently valid certificate checked after its expiry fails. */
static void test_at_after_expiry(void **state)
{
    (void)state;
    struct ss_verifier v;
    verifier_make(&v, tu_pki_file("ca.pem"), NULL, SS_PURPOSE_SERVER, false);
    /* A day after the leaf's notAfter, while its CAs are still valid. */
    struct chain c;
    chain_load(&c, "server.pem");
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(c.leaf), &tm), 1);
    chain_free(&c);
    time_t after = timegm(&tm) + 86400;
    struct ss_verify_result res;
    int rc = check_file(&v, "server.pem", "localhost", after, &res);
    assert_rejected(rc, &res, X509_V_ERR_CERT_HAS_EXPIRED, 0,
                    "certificate has expired at depth 0",
                    "(subject CN = secshim-server)");
    /* And "now" (at == 0) it is fine. */
    rc = check_file(&v, "server.pem", "localhost", 0, &res);
    assert_accepted(rc, &res, 0);
    ss_verifier_free(&v);
}

/* --at before the leaf's notBefore: not yet valid. */
static void test_at_before_validity(void **state)
{
    (void)state;
    struct ss_verifier v;
    verifier_make(&v, tu_pki_file("ca.pem"), NULL, SS_PURPOSE_SERVER, false);
    struct ss_verify_result res;
    /* 2001-01-01: before every certificate of the PKI. */
    int rc = check_file(&v, "server.pem", "localhost", (time_t)978307200,
                        &res);
    assert_int_equal(rc, SS_ERR_VERIFY);
    assert_int_equal(res.x509_error, X509_V_ERR_CERT_NOT_YET_VALID);
    assert_contains(res.reason, "certificate is not yet valid");
    ss_verifier_free(&v);
}

/* Without tls-crl revocation is not checked at all (documented). */
static void test_no_crl_revoked_accepted(void **state)
{
    (void)state;
    struct ss_verifier v;
    verifier_make(&v, tu_pki_file("ca.pem"), NULL, SS_PURPOSE_SERVER, false);
    assert_false(v.crl_check);
    struct ss_verify_result res;
    int rc = check_file(&v, "revoked.pem", "localhost", 0, &res);
    assert_accepted(rc, &res, 0);
    rc = check_file(&v, "revoked-inter.pem", "localhost", 0, &res);
    assert_accepted(rc, &res, 0);
    ss_verifier_free(&v);
}

/* Writes the first CRL of crl.pem (the root's) alone to a new file. */
static const char *root_crl_only(void)
{
    FILE *in = fopen(tu_pki_file("crl.pem"), "r");
    assert_non_null(in);
    X509_CRL *crl = PEM_read_X509_CRL(in, NULL, NULL, NULL);
    assert_non_null(crl);
    fclose(in);
    const char *path = tu_write_file("root-only.crl", "%s", "");
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_X509_CRL(out, crl), 1);
    fclose(out);
    X509_CRL_free(crl);
    return path;
}

/* CRL checking covers the whole chain and fails closed: a CA whose CRL is
 * missing makes every certificate it issued fail. */
static void test_crl_missing_for_intermediate(void **state)
{
    (void)state;
    struct ss_verifier v;
    verifier_make(&v, tu_pki_file("ca.pem"), root_crl_only(),
                  SS_PURPOSE_SERVER, false);
    struct ss_verify_result res;
    int rc = check_file(&v, "server.pem", "localhost", 0, &res);
    assert_rejected(rc, &res, X509_V_ERR_UNABLE_TO_GET_CRL, 0,
                    "unable to get certificate CRL at depth 0",
                    "(subject CN = secshim-server)");
    ss_verifier_free(&v);
}

/* trusted-ca and tls-crl take comma-separated lists, blanks allowed. */
static void test_file_lists(void **state)
{
    (void)state;
    char trusted[1200];
    snprintf(trusted, sizeof(trusted), "%s , %s", tu_pki_file("root-ca.pem"),
             tu_pki_file("revoked-inter-ca.pem"));
    char crls[1200];
    snprintf(crls, sizeof(crls), "%s,%s", root_crl_only(),
             tu_pki_file("crl.pem"));
    struct ss_verifier v;
    verifier_make(&v, trusted, crls, SS_PURPOSE_SERVER, true);
    assert_int_equal(sk_X509_num(v.trusted_listed), 2);
    struct ss_verify_result res;
    int rc = check_file(&v, "revoked-inter.pem", "localhost", 0, &res);
    assert_accepted(rc, &res, SS_RELAX_REVOKED_TRUSTED_CA);
    ss_verifier_free(&v);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const char *quiet_log(void);

/* Each relaxation is logged at warning level with the subject. */
static void test_relaxations_logged(void **state)
{
    (void)state;
    const char *log = tu_write_file("verify.log", "%s", "");
    struct ss_errbuf err = {{0}};
    assert_int_equal(ss_log_configure(SS_LOG_WARNING, log, &err), SS_OK);

    struct ss_verifier v;
    verifier_make(&v, tu_pki_file("ca-with-revoked-inter.pem"),
                  tu_pki_file("crl.pem"), SS_PURPOSE_SERVER, true);
    struct ss_verify_result res;
    assert_int_equal(check_file(&v, "revoked-inter.pem", "localhost", 0,
                                &res), SS_OK);
    ss_verifier_free(&v);
    verifier_make(&v, tu_pki_file("ca.pem"), tu_pki_file("crl.pem"),
                  SS_PURPOSE_SERVER, true);
    assert_int_equal(check_file(&v, "ku-noauth.pem", "localhost", 0, &res),
                     SS_OK);
    ss_verifier_free(&v);

    assert_int_equal(ss_log_configure(SS_LOG_WARNING, quiet_log(), &err),
                     SS_OK);
    const char *text = read_text(log);
    assert_contains(text,
                    "warning: compatibility mode: accepted revoked CA "
                    "certificate listed in trusted-ca: "
                    "CN = secshim Test Revoked Intermediate CA time=");
    assert_contains(text,
                    "warning: compatibility mode: accepted key usage / "
                    "extended key usage that does not fit the purpose "
                    "(unsuitable certificate purpose) at depth 0: "
                    "CN = secshim-ku-noauth time=");
}

/* ------------------------------------------------------------------ */
/* Error paths of ss_verifier_init and friends                          */

static void expect_init_error(const char *trusted, const char *crl, int code,
                              const char *message)
{
    struct ss_verifier v;
    memset(&v, 0x5a, sizeof(v));
    struct ss_errbuf err = {{0}};
    int rc = ss_verifier_init(&v, trusted, crl, SS_PURPOSE_SERVER, false,
                              &err);
    assert_int_equal(rc, code);
    assert_string_equal(err.msg, message);
    /* Nothing half-built is published. */
    assert_null(v.store);
    assert_null(v.trusted_listed);
    ss_verifier_free(&v);
}

static void test_missing_trusted_ca(void **state)
{
    (void)state;
    char path[600], msg[1024];
    snprintf(path, sizeof(path), "%s", tu_pki_file("no-such-ca.pem"));
    snprintf(msg, sizeof(msg),
             "trusted-ca: cannot open %s: No such file or directory", path);
    expect_init_error(path, NULL, SS_ERR_IO, msg);
}

static void test_missing_crl(void **state)
{
    (void)state;
    char path[600], msg[1024];
    snprintf(path, sizeof(path), "%s", tu_pki_file("no-such.crl"));
    snprintf(msg, sizeof(msg),
             "tls-crl: cannot open %s: No such file or directory", path);
    expect_init_error(tu_pki_file("ca.pem"), path, SS_ERR_IO, msg);
}

static void test_empty_trusted_ca(void **state)
{
    (void)state;
    char path[600], msg[1024];
    snprintf(path, sizeof(path), "%s", tu_write_file("empty.pem", "%s", ""));
    snprintf(msg, sizeof(msg), "trusted-ca: %s holds no certificate", path);
    expect_init_error(path, NULL, SS_ERR_IO, msg);
}

/* A CRL list entry holding only certificates is no CRL. */
static void test_crl_file_without_crl(void **state)
{
    (void)state;
    char path[600], msg[1024];
    snprintf(path, sizeof(path), "%s", tu_pki_file("ca.pem"));
    snprintf(msg, sizeof(msg), "tls-crl: %s holds no CRL", path);
    expect_init_error(path, path, SS_ERR_IO, msg);
}

static void test_empty_crl(void **state)
{
    (void)state;
    char path[600], msg[1024];
    snprintf(path, sizeof(path), "%s", tu_write_file("empty.crl", "%s", ""));
    snprintf(msg, sizeof(msg), "tls-crl: %s holds no CRL", path);
    expect_init_error(tu_pki_file("ca.pem"), path, SS_ERR_IO, msg);
}

static void test_corrupt_trusted_ca(void **state)
{
    (void)state;
    char path[600], msg[1024];
    snprintf(path, sizeof(path), "%s",
             tu_write_file("corrupt.pem",
                           "-----BEGIN CERTIFICATE-----\n"
                           "bm90IGEgY2VydGlmaWNhdGU=\n"
                           "-----END CERTIFICATE-----\n"));
    struct ss_verifier v;
    struct ss_errbuf err = {{0}};
    int rc = ss_verifier_init(&v, path, NULL, SS_PURPOSE_SERVER, false, &err);
    assert_int_equal(rc, SS_ERR_IO);
    snprintf(msg, sizeof(msg), "trusted-ca: cannot read %s: ", path);
    assert_memory_equal(err.msg, msg, strlen(msg));
    assert_null(v.store);
}

static void test_empty_list_item(void **state)
{
    (void)state;
    char list[700];
    snprintf(list, sizeof(list), "%s,", tu_pki_file("ca.pem"));
    expect_init_error(list, NULL, SS_ERR_IO,
                      "trusted-ca: empty file name in list");
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct ss_verifier v;
    struct ss_errbuf err = {{0}};
    assert_int_equal(ss_verifier_init(&v, NULL, NULL, (enum ss_purpose)7,
                                      false, &err), SS_ERR_INVAL);
    assert_string_equal(err.msg, "verify: unknown purpose 7");
    assert_int_equal(ss_verifier_init(NULL, NULL, NULL, SS_PURPOSE_SERVER,
                                      false, &err), SS_ERR_INVAL);

    struct ss_verify_result res;
    struct ss_verifier zero;
    memset(&zero, 0, sizeof(zero));
    struct chain c;
    chain_load(&c, "server.pem");
    assert_int_equal(ss_verify_chain(&zero, c.leaf, NULL, NULL, 0, &res),
                     SS_ERR_INVAL);
    assert_false(res.ok);
    chain_free(&c);

    assert_int_equal(ss_verifier_attach(NULL, &zero, &err), SS_ERR_INVAL);
    assert_string_equal(err.msg, "verify: nothing to attach");
    assert_int_equal(ss_verify_prepare_ssl(NULL, NULL, &res, &err),
                     SS_ERR_INVAL);
    assert_string_equal(err.msg, "verify: no connection to prepare");
}

/* Without trusted-ca the system store is used: our private root is not in
 * it, so the server chain is an unknown issuer. */
static void test_default_paths(void **state)
{
    (void)state;
    struct ss_verifier v;
    verifier_make(&v, NULL, NULL, SS_PURPOSE_SERVER, false);
    assert_int_equal(sk_X509_num(v.trusted_listed), 0);
    struct ss_verify_result res;
    int rc = check_file(&v, "server.pem", "localhost", 0, &res);
    assert_int_equal(rc, SS_ERR_VERIFY);
    assert_int_equal(res.x509_error,
                     X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    ss_verifier_free(&v);
}

static void test_free_zeroed_twice(void **state)
{
    (void)state;
    struct ss_verifier v;
    memset(&v, 0, sizeof(v));
    ss_verifier_free(&v);
    verifier_make(&v, tu_pki_file("ca.pem"), tu_pki_file("crl.pem"),
                  SS_PURPOSE_SERVER, true);
    assert_true(v.crl_check);
    assert_true(v.compat);
    ss_verifier_free(&v);
    assert_null(v.store);
    ss_verifier_free(&v);
    ss_verifier_free(NULL);
}

static void test_relaxation_names(void **state)
{
    (void)state;
    assert_string_equal(ss_relaxation_name(SS_RELAX_REVOKED_TRUSTED_CA),
                        "revoked CA listed in trusted-ca");
    assert_string_equal(ss_relaxation_name(SS_RELAX_KEY_USAGE),
                        "key usage mismatch");
    assert_string_equal(ss_relaxation_name((enum ss_relaxation)0),
                        "unknown relaxation");
}

/* ------------------------------------------------------------------ */
/* allow-peer                                                           */

/* A list of the given entries (NULL-terminated); fails the test when one
 * does not parse. */
static struct ss_peer_allow allow_of(const char *first, ...)
{
    struct ss_peer_allow a = {0};
    va_list ap;
    va_start(ap, first);
    for (const char *t = first; t != NULL; t = va_arg(ap, const char *)) {
        char why[512];
        if (ss_peer_allow_add(&a, t, why, sizeof(why)) != SS_OK)
            fail_msg("'%s': %s", t, why);
    }
    va_end(ap);
    return a;
}

static EVP_PKEY *cert_key;

/* A certificate with the subject entries (pairs of attribute and UTF-8
 * value, NULL-terminated) and, when san is not NULL, a subjectAltName
 * in openssl's configuration syntax; self-signed, as only its identities
 * are looked at. */
static X509 *cert_with(const char *san, ...)
{
    if (cert_key == NULL)
        cert_key = EVP_EC_gen("P-256");
    assert_non_null(cert_key);
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    va_list ap;
    va_start(ap, san);
    for (const char *f = va_arg(ap, const char *); f != NULL;
         f = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        assert_int_equal(X509_NAME_add_entry_by_txt(
                             name, f, MBSTRING_UTF8,
                             (const unsigned char *)v, -1, -1, 0), 1);
    }
    va_end(ap);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_int_equal(X509_set_pubkey(x, cert_key), 1);
    if (san != NULL) {
        X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, NULL,
                                                   NID_subject_alt_name,
                                                   san);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(x, ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(x, cert_key, EVP_sha256()) > 0);
    return x;
}

/* alice: every kind, two OUs, a wildcard DNS name of her own. */
static X509 *alice(void)
{
    return cert_with("DNS:alice.example.com, DNS:*.svc.example.com, "
                     "URI:spiffe://example.org/alice, IP:192.0.2.7, "
                     "IP:2001:db8::5",
                     "O", "Example Ltd", "OU", "ops", "OU", "payments",
                     "CN", "alice", NULL);
}

#define ALICE_PRESENTS                                                    \
    "O=Example Ltd, OU=ops, OU=payments, CN=alice, DNS:alice.example.com, " \
    "DNS:*.svc.example.com, URI:spiffe://example.org/alice, IP:192.0.2.7, " \
    "IP:2001:db8::5"

/* One entry against x: SS_OK or SS_ERR_VERIFY, as wanted. */
static void expect_one(X509 *x, const char *entry, bool match)
{
    struct ss_peer_allow a = allow_of(entry, NULL);
    char why[512];
    int rc = ss_verify_allow_peer(&a, x, why, sizeof(why));
    if (rc != (match ? SS_OK : SS_ERR_VERIFY))
        fail_msg("'%s': %s (%s)", entry, ss_strerror(rc), why);
    if (match)
        assert_string_equal(why, "");
    ss_peer_allow_free(&a);
}

static void test_allow_peer_each_form(void **state)
{
    (void)state;
    X509 *x = alice();
    expect_one(x, "CN=alice", true);
    expect_one(x, "CN=Alice", false);
    expect_one(x, "CN=alic", false);
    expect_one(x, "OU=ops", true);
    expect_one(x, "OU=payments", true); /* any of the values */
    expect_one(x, "OU=hr", false);
    expect_one(x, "O=Example Ltd", true);
    expect_one(x, "O=Example", false);
    expect_one(x, "CN=ops", false);     /* an OU value is not a CN */
    expect_one(x, "DNS:alice.example.com", true);
    expect_one(x, "DNS:ALICE.Example.com", true);
    expect_one(x, "DNS:bob.example.com", false);
    expect_one(x, "DNS:alice", false);  /* the CN is not a DNS name */
    expect_one(x, "URI:spiffe://example.org/alice", true);
    expect_one(x, "URI:spiffe://example.org/alice/x", false);
    expect_one(x, "URI:spiffe://example.org/bob", false);
    expect_one(x, "IP:192.0.2.7", true);
    expect_one(x, "IP:::ffff:192.0.2.7", true);
    expect_one(x, "IP:192.0.2.8", false);
    expect_one(x, "IP:2001:db8::5", true);
    expect_one(x, "IP:2001:0db8:0:0:0:0:0:5", true);
    expect_one(x, "IP:2001:db8::6", false);
    X509_free(x);
}

static void test_allow_peer_wildcards(void **state)
{
    (void)state;
    X509 *x = alice();
    /* The entry's wildcard: exactly one label. */
    expect_one(x, "DNS:*.example.com", true);
    expect_one(x, "DNS:*.com", false);
    expect_one(x, "DNS:*.alice.example.com", false);
    /* The certificate's wildcard is never expanded for a literal name,
     * nor taken as a label; only the same wildcard allows it. */
    expect_one(x, "DNS:a.svc.example.com", false);
    expect_one(x, "DNS:svc.example.com", false);
    expect_one(x, "DNS:*.svc.example.com", true);
    X509_free(x);
    x = cert_with("DNS:*.svc.example.com", "CN", "wild", NULL);
    expect_one(x, "DNS:*.example.com", false);
    X509_free(x);
}

static void test_allow_peer_several_entries(void **state)
{
    (void)state;
    X509 *x = alice();
    struct ss_peer_allow some = allow_of("CN=bob", "DNS:x.example.org",
                                         "IP:2001:db8::5", NULL);
    char why[512];
    assert_int_equal(ss_verify_allow_peer(&some, x, why, sizeof(why)),
                     SS_OK);
    ss_peer_allow_free(&some);
    struct ss_peer_allow none = allow_of("CN=bob", "OU=hr",
                                         "DNS:*.example.org", NULL);
    assert_int_equal(ss_verify_allow_peer(&none, x, why, sizeof(why)),
                     SS_ERR_VERIFY);
    assert_string_equal(why, "none of the identities the peer's certificate "
                        "presents (" ALICE_PRESENTS ") matches allow-peer");
    ss_peer_allow_free(&none);
    X509_free(x);
}

static void test_allow_peer_refusal_sentences(void **state)
{
    (void)state;
    struct ss_peer_allow a = allow_of("DNS:a.example", NULL);
    char why[512];
    X509 *bare = cert_with(NULL, "CN", "bare", NULL);
    assert_int_equal(ss_verify_allow_peer(&a, bare, why, sizeof(why)),
                     SS_ERR_VERIFY);
    assert_string_equal(why, "none of the identities the peer's certificate "
                        "presents (CN=bare) matches allow-peer");
    X509_free(bare);
    X509 *nothing = cert_with("email:a@example.com", "C", "DE", NULL);
    assert_int_equal(ss_verify_allow_peer(&a, nothing, why, sizeof(why)),
                     SS_ERR_VERIFY);
    assert_string_equal(why, "the peer's certificate presents no subject "
                        "CN, OU or O and no subjectAltName DNS, URI or IP, "
                        "so it matches no allow-peer identity");
    X509_free(nothing);
    /* Control bytes are escaped; UTF-8 stays readable. */
    X509 *odd = cert_with(NULL, "CN", "a\nb", "O", "Zo\xc3\xab", NULL);
    assert_int_equal(ss_verify_allow_peer(&a, odd, why, sizeof(why)),
                     SS_ERR_VERIFY);
    assert_string_equal(why, "none of the identities the peer's certificate "
                        "presents (CN=a\\x0ab, O=Zo\xc3\xab) matches "
                        "allow-peer");
    struct ss_peer_allow utf8 = allow_of("O=Zo\xc3\xab", NULL);
    assert_int_equal(ss_verify_allow_peer(&utf8, odd, NULL, 0), SS_OK);
    ss_peer_allow_free(&utf8);
    X509_free(odd);
    /* Many identities: the sentence is cut, and says so. */
    char san[4096] = "";
    for (int i = 0; i < 60; i++)
        snprintf(san + strlen(san), sizeof(san) - strlen(san),
                 "%sDNS:host-%02d.example.com", i ? ", " : "", i);
    X509 *many = cert_with(san, "CN", "many", NULL);
    assert_int_equal(ss_verify_allow_peer(&a, many, why, sizeof(why)),
                     SS_ERR_VERIFY);
    assert_contains(why, "(CN=many, DNS:host-00.example.com, ");
    assert_contains(why, " ...) matches allow-peer");
    X509_free(many);
    ss_peer_allow_free(&a);
}

/* A subjectAltName that cannot be read (here: two of them) refuses the
 * certificate even when its subject matches: nothing of it is trusted. */
static void test_allow_peer_unreadable_san(void **state)
{
    (void)state;
    X509 *x = cert_with("DNS:a.example", "CN", "dup", NULL);
    X509_EXTENSION *again = X509V3_EXT_nconf_nid(NULL, NULL,
                                                 NID_subject_alt_name,
                                                 "DNS:b.example");
    assert_non_null(again);
    assert_int_equal(X509_add_ext(x, again, -1), 1);
    X509_EXTENSION_free(again);
    assert_true(X509_sign(x, cert_key, EVP_sha256()) > 0);
    struct ss_peer_allow a = allow_of("CN=dup", NULL);
    char why[512];
    assert_int_equal(ss_verify_allow_peer(&a, x, why, sizeof(why)),
                     SS_ERR_VERIFY);
    assert_string_equal(why, "the peer's certificate has a subjectAltName "
                        "that cannot be read, so it matches no allow-peer "
                        "identity");
    ss_peer_allow_free(&a);
    X509_free(x);
}

static void test_allow_peer_arguments(void **state)
{
    (void)state;
    X509 *x = alice();
    struct ss_peer_allow empty = {0};
    assert_int_equal(ss_verify_allow_peer(NULL, x, NULL, 0), SS_OK);
    assert_int_equal(ss_verify_allow_peer(&empty, x, NULL, 0), SS_OK);
    struct ss_peer_allow a = allow_of("CN=alice", NULL);
    assert_int_equal(ss_verify_allow_peer(&a, NULL, NULL, 0), SS_ERR_INVAL);
    assert_int_equal(ss_verify_allow_peer(NULL, NULL, NULL, 0),
                     SS_ERR_INVAL);
    ss_peer_allow_free(&a);
    X509_free(x);
}

/* After the chain: offline verification applies the verifier's
 * allow-peer only to a chain it accepted. */
static void test_allow_peer_after_chain(void **state)
{
    (void)state;
    struct ss_verifier v;
    verifier_make(&v, tu_pki_file("ca.pem"), NULL, SS_PURPOSE_CLIENT, false);
    struct ss_peer_allow ok = allow_of("CN=nobody", "CN=secshim-client",
                                       NULL);
    struct ss_peer_allow no = allow_of("CN=secshim-server", NULL);
    struct ss_verify_result res;
    v.allow_peer = &ok;
    assert_accepted(check_file(&v, "client.pem", NULL, 0, &res), &res, 0);
    v.allow_peer = &no;
    int rc = check_file(&v, "client.pem", NULL, 0, &res);
    assert_int_equal(rc, SS_ERR_VERIFY);
    assert_false(res.ok);
    assert_int_equal(res.x509_error, X509_V_ERR_CERT_REJECTED);
    assert_int_equal(res.error_depth, 0);
    assert_string_equal(res.reason,
                        "none of the identities the peer's certificate "
                        "presents (CN=secshim-client, DNS:localhost, "
                        "IP:127.0.0.1, IP:::1) matches allow-peer");
    ss_verifier_free(&v);

    /* A chain that fails is reported as such, before any identity. */
    verifier_make(&v, tu_pki_file("ca.pem"), NULL, SS_PURPOSE_SERVER, false);
    v.allow_peer = &no;
    rc = check_file(&v, "expired.pem", NULL, 0, &res);
    assert_int_equal(rc, SS_ERR_VERIFY);
    assert_int_equal(res.x509_error, X509_V_ERR_CERT_HAS_EXPIRED);
    ss_verifier_free(&v);

    /* Compatibility mode relaxes the key usage and nothing of allow-peer:
     * the relaxation is recorded, the identity still refused. */
    verifier_make(&v, tu_pki_file("ca.pem"), NULL, SS_PURPOSE_SERVER, true);
    v.allow_peer = &no;
    rc = check_file(&v, "ku-noauth.pem", "localhost", 0, &res);
    assert_int_equal(rc, SS_ERR_VERIFY);
    assert_int_equal(res.x509_error, X509_V_ERR_CERT_REJECTED);
    assert_int_equal(res.relaxations, SS_RELAX_KEY_USAGE);
    assert_contains(res.reason, "(CN=secshim-ku-noauth, DNS:localhost");
    struct ss_peer_allow ku = allow_of("CN=secshim-ku-noauth", NULL);
    v.allow_peer = &ku;
    assert_accepted(check_file(&v, "ku-noauth.pem", "localhost", 0, &res),
                    &res, SS_RELAX_KEY_USAGE);
    ss_verifier_free(&v);
    ss_peer_allow_free(&ku);
    ss_peer_allow_free(&ok);
    ss_peer_allow_free(&no);
}

/* ------------------------------------------------------------------ */
/* Real handshakes over a socketpair                                    */

struct handshake {
    bool client_ok;
    bool server_ok;
    struct ss_verify_result res;
    long verify_result; /* SSL_get_verify_result on the client */
};

/* Steps one side; returns true when it is finished (done or failed). */
static bool step(SSL *ssl, bool *ok)
{
    ERR_clear_error();
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
        *ok = true;
        return true;
    }
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return false;
    ERR_clear_error();
    *ok = false;
    return true;
}

/*
 * A client with verifier v (purpose server; host localhost) against a
 * plain OpenSSL server presenting cert_path / key_path at security level
 * server_level (-1: its default). Both sides are non-blocking and
 * alternate in this thread, so every wait is bounded by the loop count.
 */
static void handshake_with(const char *cert_path, const char *key_path,
                           int server_level, const struct ss_verifier *v,
                           int version, struct handshake *out)
{
    memset(out, 0, sizeof(*out));
    int sv[2];
    tu_socketpair_nonblock(sv);

    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(sctx);
    if (server_level >= 0)
        SSL_CTX_set_security_level(sctx, server_level);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(sctx, cert_path), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(sctx, key_path,
                                                 SSL_FILETYPE_PEM), 1);

    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(cctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(cctx, version), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(cctx, version), 1);
    struct ss_errbuf err = {{0}};
    assert_int_equal(ss_verifier_attach(cctx, v, &err), SS_OK);

    SSL *server = SSL_new(sctx);
    SSL *client = SSL_new(cctx);
    assert_non_null(server);
    assert_non_null(client);
    assert_int_equal(ss_verify_prepare_ssl(client, "localhost", &out->res,
                                           &err), SS_OK);
    assert_int_equal(SSL_set_fd(server, sv[0]), 1);
    assert_int_equal(SSL_set_fd(client, sv[1]), 1);
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);

    bool cdone = false, sdone = false;
    for (int i = 0; i < 1000 && !(cdone && sdone); i++) {
        if (!cdone)
            cdone = step(client, &out->client_ok);
        if (!sdone)
            sdone = step(server, &out->server_ok);
    }
    assert_true(cdone && sdone);
    out->verify_result = SSL_get_verify_result(client);

    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    close(sv[0]);
    close(sv[1]);
}

/* handshake_with a verifier of trusted, the PKI's CRLs, compat and allow,
 * against the PKI's cert_file / key_file. */
static void handshake_run_allow(const char *cert_file, const char *key_file,
                                const char *trusted, bool compat, int version,
                                const struct ss_peer_allow *allow,
                                struct handshake *out)
{
    struct ss_verifier v;
    verifier_make(&v, tu_pki_file(trusted), tu_pki_file("crl.pem"),
                  SS_PURPOSE_SERVER, compat);
    v.allow_peer = allow;
    char cert_path[4096];
    snprintf(cert_path, sizeof(cert_path), "%s", tu_pki_file(cert_file));
    handshake_with(cert_path, tu_pki_file(key_file), -1, &v, version, out);
    ss_verifier_free(&v);
}

static void handshake_run(const char *cert_file, const char *key_file,
                          const char *trusted, bool compat, int version,
                          struct handshake *out)
{
    handshake_run_allow(cert_file, key_file, trusted, compat, version, NULL,
                        out);
}

static void test_handshake_good_server(void **state)
{
    (void)state;
    const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    for (size_t i = 0; i < 2; i++) {
        struct handshake h;
        handshake_run("server.pem", "server.key", "ca.pem", false,
                      versions[i], &h);
        assert_true(h.client_ok);
        assert_true(h.server_ok);
        assert_true(h.res.ok);
        assert_int_equal(h.res.relaxations, 0);
        assert_int_equal(h.verify_result, X509_V_OK);
    }
}

static void test_handshake_wrong_host(void **state)
{
    (void)state;
    struct handshake h;
    handshake_run("wronghost.pem", "wronghost.key", "ca.pem", true,
                  TLS1_3_VERSION, &h);
    assert_false(h.client_ok);
    assert_false(h.server_ok);
    assert_false(h.res.ok);
    assert_int_equal(h.res.x509_error, X509_V_ERR_HOSTNAME_MISMATCH);
    assert_contains(h.res.reason,
                    "certificate does not match host name 'localhost'");
}

static void test_handshake_revoked_inter(void **state)
{
    (void)state;
    struct handshake h;
    handshake_run("revoked-inter.pem", "revoked-inter.key",
                  "ca-with-revoked-inter.pem", false, TLS1_3_VERSION, &h);
    assert_false(h.client_ok);
    assert_false(h.res.ok);
    assert_int_equal(h.res.x509_error, X509_V_ERR_CERT_REVOKED);
    assert_int_equal(h.res.error_depth, 1);

    handshake_run("revoked-inter.pem", "revoked-inter.key",
                  "ca-with-revoked-inter.pem", true, TLS1_3_VERSION, &h);
    assert_true(h.client_ok);
    assert_true(h.server_ok);
    assert_true(h.res.ok);
    assert_int_equal(h.res.relaxations, SS_RELAX_REVOKED_TRUSTED_CA);
    assert_string_equal(h.res.relaxed_subject[0],
                        "CN = secshim Test Revoked Intermediate CA");
    assert_int_equal(h.verify_result, X509_V_OK);
}

/* libssl adds no key-usage check of its own for RSA keys, in either
 * version: compat mode alone decides. */
static void test_handshake_ku_noauth(void **state)
{
    (void)state;
    const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    for (size_t i = 0; i < 2; i++) {
        struct handshake h;
        handshake_run("ku-noauth.pem", "ku-noauth.key", "ca.pem", false,
                      versions[i], &h);
        assert_false(h.client_ok);
        assert_false(h.server_ok);
        assert_false(h.res.ok);
        assert_int_equal(h.res.x509_error, X509_V_ERR_INVALID_PURPOSE);
        assert_contains(h.res.reason, "CN = secshim-ku-noauth");

        handshake_run("ku-noauth.pem", "ku-noauth.key", "ca.pem", true,
                      versions[i], &h);
        assert_true(h.client_ok);
        assert_true(h.server_ok);
        assert_true(h.res.ok);
        assert_int_equal(h.res.relaxations, SS_RELAX_KEY_USAGE);
        assert_string_equal(h.res.relaxed_subject[1],
                            "CN = secshim-ku-noauth");
        assert_int_equal(h.verify_result, X509_V_OK);
    }
}

/* In a handshake the same check runs where libssl verifies the chain: a
 * mismatch fails it like any verification failure (bad_certificate). */
static void test_handshake_allow_peer(void **state)
{
    (void)state;
    const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    struct ss_peer_allow ok = allow_of("DNS:*.example.com",
                                       "CN=secshim-server", NULL);
    struct ss_peer_allow no = allow_of("DNS:*.example.com", "IP:10.0.0.1",
                                       NULL);
    for (size_t i = 0; i < 2; i++) {
        struct handshake h;
        handshake_run_allow("server.pem", "server.key", "ca.pem", false,
                            versions[i], &ok, &h);
        assert_true(h.client_ok);
        assert_true(h.server_ok);
        assert_true(h.res.ok);

        handshake_run_allow("server.pem", "server.key", "ca.pem", false,
                            versions[i], &no, &h);
        assert_false(h.client_ok);
        assert_false(h.server_ok);
        assert_false(h.res.ok);
        assert_int_equal(h.res.x509_error, X509_V_ERR_CERT_REJECTED);
        assert_int_equal(h.verify_result, X509_V_ERR_CERT_REJECTED);
        assert_contains(h.res.reason, "presents (CN=secshim-server, "
                        "DNS:localhost, IP:127.0.0.1, IP:::1) matches "
                        "allow-peer");

        /* compat relaxes ku-noauth's key usage, not the identity. */
        handshake_run_allow("ku-noauth.pem", "ku-noauth.key", "ca.pem", true,
                            versions[i], &no, &h);
        assert_false(h.client_ok);
        assert_int_equal(h.res.x509_error, X509_V_ERR_CERT_REJECTED);
    }
    ss_peer_allow_free(&ok);
    ss_peer_allow_free(&no);
}

/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* The RFC 5280 profile, security levels and name constraints (issue 11) */
/*                                                                      */
/* Every rule gets a chain made here with OpenSSL's API (nothing with a  */
/* key is committed): a compliant root, intermediate and leaf, P-256     */
/* keys and SHA-256 signatures, with exactly one thing changed.          */

/* How one certificate is made. NULL extension values: no extension. */
struct spec {
    const char *cn;        /* subject CN; NULL: an empty subject */
    int version;           /* X509_VERSION_3, _2, or _1 (no extensions) */
    const char *serial;    /* hex, "-" for negative; NULL: a fresh one */
    const char *bc, *ku, *eku, *san, *nc, *skid, *akid;
    const EVP_MD *md;      /* NULL: SHA-256 */
    EVP_PKEY *key;         /* the certificate's key */
};

/* Keys made once per program: P-256 is fast; the weak ones on demand. */
static EVP_PKEY *root_key, *inter_key, *leaf_key;

static void strict_keys(void)
{
    if (root_key != NULL)
        return;
    root_key = EVP_EC_gen("P-256");
    inter_key = EVP_EC_gen("P-256");
    leaf_key = EVP_EC_gen("P-256");
    assert_non_null(root_key);
    assert_non_null(inter_key);
    assert_non_null(leaf_key);
}

static struct spec root_spec(void)
{
    strict_keys();
    return (struct spec){
        .cn = "Strict Root CA", .version = X509_VERSION_3,
        .bc = "critical,CA:TRUE", .ku = "critical,keyCertSign,cRLSign",
        .skid = "hash", .akid = "keyid:always", .key = root_key};
}

static struct spec inter_spec(void)
{
    struct spec s = root_spec();
    s.cn = "Strict Intermediate CA";
    s.key = inter_key;
    return s;
}

static struct spec leaf_spec(void)
{
    strict_keys();
    return (struct spec){
        .cn = "strict-leaf", .version = X509_VERSION_3, .bc = "CA:FALSE",
        .ku = "critical,digitalSignature", .eku = "serverAuth",
        .san = "DNS:localhost", .skid = "hash", .akid = "keyid:always",
        .key = leaf_key};
}

/* The authorityKeyIdentifier of RFC 5280 4.2.1.2 (1), the SHA-1 of the
 * issuer's public key: what openssl's "keyid:always" writes, also when
 * the issuer has no subjectKeyIdentifier of its own to copy. */
static void add_akid(X509 *x, X509 *issuer)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    assert_int_equal(X509_pubkey_digest(issuer, EVP_sha1(), md, &n), 1);
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    assert_non_null(akid);
    akid->keyid = ASN1_OCTET_STRING_new();
    assert_non_null(akid->keyid);
    assert_int_equal(ASN1_OCTET_STRING_set(akid->keyid, md, (int)n), 1);
    assert_int_equal(X509_add1_ext_i2d(x, NID_authority_key_identifier, akid,
                                       0, 0), 1);
    AUTHORITY_KEYID_free(akid);
}

/* Adds one extension in openssl's configuration syntax ("critical,..."),
 * directoryName sections from the [dir] section of conf. */
static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    if (value == NULL)
        return;
    if (nid == NID_authority_key_identifier &&
        strcmp(value, "keyid:always") == 0) {
        add_akid(x, issuer);
        return;
    }
    static const char dir_section[] = "[dir]\nO = Strict Org\n";
    CONF *conf = NCONF_new(NULL);
    BIO *mem = BIO_new_mem_buf(dir_section, -1);
    long eline = 0;
    assert_int_equal(NCONF_load_bio(conf, mem, &eline), 1);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509V3_set_nconf(&v3, conf);
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(conf, &v3, nid, value);
    if (e == NULL)
        fail_msg("extension %s = %s does not build", OBJ_nid2sn(nid), value);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
    BIO_free(mem);
    NCONF_free(conf);
}

static long next_serial = 0x1000;

/* Makes the certificate of sp, signed by issuer (NULL: self-signed). */
static X509 *make_cert(const struct spec *sp, X509 *issuer,
                       EVP_PKEY *issuer_key)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, sp->version), 1);
    BIGNUM *bn = NULL;
    char fresh[32];
    snprintf(fresh, sizeof(fresh), "%lX", next_serial++);
    assert_true(BN_hex2bn(&bn, sp->serial != NULL ? sp->serial : fresh) > 0);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    if (sp->cn != NULL)
        assert_int_equal(X509_NAME_add_entry_by_txt(
                             X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                             (const unsigned char *)sp->cn, -1, -1, 0), 1);
    X509 *signer = issuer != NULL ? issuer : x;
    assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(signer)),
                     1);
    assert_int_equal(X509_set_pubkey(x, sp->key), 1);
    if (sp->version != X509_VERSION_1) {
        add_ext(x, signer, NID_basic_constraints, sp->bc);
        add_ext(x, signer, NID_key_usage, sp->ku);
        add_ext(x, signer, NID_ext_key_usage, sp->eku);
        add_ext(x, signer, NID_subject_alt_name, sp->san);
        add_ext(x, signer, NID_name_constraints, sp->nc);
        add_ext(x, signer, NID_subject_key_identifier, sp->skid);
        add_ext(x, signer, NID_authority_key_identifier, sp->akid);
    }
    EVP_PKEY *key = issuer != NULL ? issuer_key : sp->key;
    assert_true(X509_sign(x, key, sp->md != NULL ? sp->md : EVP_sha256())
                > 0);
    return x;
}

/* A root, an intermediate and a leaf. */
struct built {
    X509 *root, *inter, *leaf;
    struct spec r, i, l;
};

static void built_default(struct built *b)
{
    memset(b, 0, sizeof(*b));
    b->r = root_spec();
    b->i = inter_spec();
    b->l = leaf_spec();
}

static void built_make(struct built *b)
{
    b->root = make_cert(&b->r, NULL, NULL);
    b->inter = make_cert(&b->i, b->root, b->r.key);
    b->leaf = make_cert(&b->l, b->inter, b->i.key);
}

static void built_free(struct built *b)
{
    X509_free(b->root);
    X509_free(b->inter);
    X509_free(b->leaf);
}

static const char *write_cert(const char *name, X509 *x)
{
    const char *path = tu_pki_file(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    return path;
}

/* How one verification of a built chain is set up. */
struct how {
    bool strict;
    bool compat;
    int level; /* -1: the verifier's default (a new context's) */
};

static int verify_built(const struct built *b, struct how how,
                        struct ss_verify_result *res)
{
    struct ss_verifier v;
    verifier_make(&v, write_cert("strict-root.pem", b->root), NULL,
                  SS_PURPOSE_SERVER, how.compat);
    v.x509_strict = how.strict;
    if (how.level >= 0)
        v.security_level = how.level;
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    assert_non_null(untrusted);
    assert_true(sk_X509_push(untrusted, b->inter) > 0);
    int rc = ss_verify_chain(&v, b->leaf, untrusted, "localhost", 0, res);
    sk_X509_free(untrusted);
    ss_verifier_free(&v);
    return rc;
}

/* Rejected with error at depth, the reason holding words, with the
 * profile on, compatibility mode off and on; with x509-strict = false
 * accepted when lax_ok (the rule is the profile's), else rejected the
 * same way. */
static void assert_rule(const struct built *b, int error, int depth,
                        const char *words, bool lax_ok)
{
    struct ss_verify_result res;
    for (int compat = 0; compat <= 1; compat++) {
        int rc = verify_built(b, (struct how){true, compat, -1}, &res);
        assert_rejected(rc, &res, error, depth, words, "");
    }
    int rc = verify_built(b, (struct how){false, false, -1}, &res);
    if (lax_ok)
        assert_accepted(rc, &res, 0);
    else
        assert_rejected(rc, &res, error, depth, words, "");
}

static void test_strict_compliant_chain(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    built_make(&b);
    struct ss_verify_result res;
    assert_accepted(verify_built(&b, (struct how){true, false, -1}, &res),
                    &res, 0);
    built_free(&b);
}

static void test_strict_inter_without_skid(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.i.skid = NULL;
    built_make(&b);
    assert_rule(&b, X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER, 1,
                "intermediate CA 'CN = Strict Intermediate CA' has no "
                "subjectKeyIdentifier (RFC 5280 4.2.1.2); set x509-strict = "
                "false to accept a legacy chain", true);
    built_free(&b);
}

static void test_strict_leaf_without_akid(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.l.akid = NULL;
    built_make(&b);
    assert_rule(&b, X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER, 0,
                "the server certificate 'CN = strict-leaf' has no "
                "authorityKeyIdentifier with a keyIdentifier (RFC 5280 "
                "4.2.1.1)", true);
    built_free(&b);
}

static void test_strict_inter_without_akid(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.i.akid = NULL;
    built_make(&b);
    assert_rule(&b, X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER, 1,
                "intermediate CA 'CN = Strict Intermediate CA' has no "
                "authorityKeyIdentifier", true);
    built_free(&b);
}

static void test_strict_ca_bc_not_critical(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.i.bc = "CA:TRUE";
    built_make(&b);
    assert_rule(&b, X509_V_ERR_CA_BCONS_NOT_CRITICAL, 1,
                "has a basicConstraints extension that is not marked "
                "critical (RFC 5280 4.2.1.9)", true);
    built_free(&b);
    /* The trust anchor is held to the profile too (as some roots of the
     * system's store are not: docs/verification.md). */
    built_default(&b);
    b.r.bc = "CA:TRUE";
    built_make(&b);
    assert_rule(&b, X509_V_ERR_CA_BCONS_NOT_CRITICAL, 2,
                "root CA 'CN = Strict Root CA' has a basicConstraints "
                "extension that is not marked critical", true);
    built_free(&b);
}

/* The other rules of OpenSSL's strict mode that a CA can get wrong in
 * its own extensions. */
static void test_strict_other_extension_rules(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.l.akid = "critical,keyid:always";
    built_make(&b);
    /* OpenSSL 3.0 handles no critical authorityKeyIdentifier: refused in
     * every mode before the strict rule (AUTHORITY_KEY_IDENTIFIER_CRITICAL)
     * is reached. */
    assert_rule(&b, X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION, 0,
                "unhandled critical extension at depth 0 (subject CN = "
                "strict-leaf)", false);
    built_free(&b);

    built_default(&b);
    b.i.skid = "critical,hash";
    built_make(&b);
    /* The same for a critical subjectKeyIdentifier. */
    assert_rule(&b, X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION, 1,
                "unhandled critical extension at depth 1 (subject CN = "
                "Strict Intermediate CA)", false);
    built_free(&b);

    built_default(&b);
    b.l.bc = "critical,CA:FALSE,pathlen:0";
    built_make(&b);
    assert_rule(&b, X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA, 0,
                "has a pathLenConstraint but is not a CA (RFC 5280 "
                "4.2.1.9)", true);
    built_free(&b);

    /* A version 2 leaf with extensions: OpenSSL's rule comes first. */
    built_default(&b);
    b.l.version = X509_VERSION_2;
    built_make(&b);
    assert_rule(&b, X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3, 0,
                "has extensions but is not a version 3 certificate (RFC 5280 "
                "4.1.2.1)", true);
    built_free(&b);
}

/* The intermediate in ways no mode accepts, and an intermediate with
 * an empty subject (so its leaf's issuer is empty). */
static void test_strict_inter_not_a_ca(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.i.bc = "critical,CA:FALSE";
    built_make(&b);
    assert_rule(&b, X509_V_ERR_INVALID_CA, 1,
                "intermediate CA 'CN = Strict Intermediate CA' issues "
                "certificates but its basicConstraints says CA:FALSE (RFC "
                "5280 4.2.1.9)", false);
    built_free(&b);

    built_default(&b);
    b.i.version = X509_VERSION_1;
    built_make(&b);
    assert_rule(&b, X509_V_ERR_INVALID_CA, 1,
                "intermediate CA 'CN = Strict Intermediate CA' is a version "
                "1 certificate, which cannot be a CA (RFC 5280 4.1.2.1)",
                false);
    built_free(&b);

    built_default(&b);
    b.i.cn = NULL;
    built_make(&b);
    assert_rule(&b, X509_V_ERR_ISSUER_NAME_EMPTY, 0,
                "the server certificate 'CN = strict-leaf' has an empty "
                "issuer name (RFC 5280 4.1.2.4)", true);
    built_free(&b);
}

/* A root without basicConstraints (its keyUsage allows keyCertSign):
 * OpenSSL's lax mode still takes it as a CA, the profile does not. */
static void test_strict_root_without_bc(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.r.bc = NULL;
    built_make(&b);
    assert_rule(&b, X509_V_ERR_INVALID_CA, 2,
                "root CA 'CN = Strict Root CA' has no basicConstraints "
                "extension, so it is not a CA (RFC 5280 4.2.1.9); set "
                "x509-strict = false", true);
    built_free(&b);
}

/* An intermediate without basicConstraints is no CA in either mode:
 * x509-strict = false does not help, and the reason does not offer it. */
static void test_strict_inter_without_bc_always(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.i.bc = NULL;
    built_make(&b);
    assert_rule(&b, X509_V_ERR_INVALID_CA, 1,
                "intermediate CA 'CN = Strict Intermediate CA' has no "
                "basicConstraints extension, so it is not a CA (RFC 5280 "
                "4.2.1.9)", false);
    struct ss_verify_result res;
    verify_built(&b, (struct how){true, false, -1}, &res);
    assert_null(strstr(res.reason, "x509-strict"));
    built_free(&b);
}

static void test_strict_ca_without_key_usage(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.i.ku = NULL;
    built_make(&b);
    assert_rule(&b, X509_V_ERR_CA_CERT_MISSING_KEY_USAGE, 1,
                "is a CA without a keyUsage extension (RFC 5280 4.2.1.3)",
                true);
    built_free(&b);
}

static void test_strict_leaf_key_cert_sign(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.l.ku = "critical,digitalSignature,keyCertSign";
    built_make(&b);
    assert_rule(&b, X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA, 0,
                "the server certificate 'CN = strict-leaf' is not a CA but "
                "its keyUsage asserts keyCertSign (RFC 5280 4.2.1.3)", true);
    built_free(&b);
}

/* An empty subject needs a critical subjectAltName. */
static void test_strict_empty_subject(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.l.cn = NULL;
    built_make(&b);
    assert_rule(&b, X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL, 0,
                "has an empty subject name and a subjectAltName that is not "
                "marked critical (RFC 5280 4.2.1.6)", true);
    built_free(&b);

    built_default(&b);
    b.l.cn = NULL;
    b.l.san = "critical,DNS:localhost";
    built_make(&b);
    struct ss_verify_result res;
    assert_accepted(verify_built(&b, (struct how){true, false, -1}, &res),
                    &res, 0);
    built_free(&b);
}

/* An EC key with explicit curve parameters: OpenSSL 3.0 refuses it in
 * any chain of two or more, so the reason offers no x509-strict. */
static void test_strict_ec_explicit_params(void **state)
{
    (void)state;
    /* The openssl command writes explicit parameters (OpenSSL's API keeps
     * the curve's name in what it encodes). */
    const char *path = tu_pki_file("explicit-ec.key");
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "openssl ecparam -name prime256v1 "
             "-param_enc explicit -genkey -noout -out '%s'", path);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    EVP_PKEY *explicit_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(explicit_key);
    struct built b;
    built_default(&b);
    b.l.key = explicit_key;
    built_make(&b);
    assert_rule(&b, X509_V_ERR_EC_KEY_EXPLICIT_PARAMS, 0,
                "the server certificate 'CN = strict-leaf' has an EC key "
                "with explicit curve parameters instead of a named curve",
                false);
    struct ss_verify_result res;
    verify_built(&b, (struct how){true, false, -1}, &res);
    assert_null(strstr(res.reason, "x509-strict"));
    built_free(&b);
    EVP_PKEY_free(explicit_key);
}

/* RFC 5280 4.1.2.2, which OpenSSL does not check: zero, negative, longer
 * than 20 octets. 20 octets exactly (the top bit clear) is fine. */
static void test_strict_serial_numbers(void **state)
{
    (void)state;
    static const struct {
        const char *serial;
        const char *words;
    } bad[] = {
        {"0", "has serial number 0 (RFC 5280 4.1.2.2"},
        {"-1A", "has a negative serial number (RFC 5280 4.1.2.2"},
        /* 21 octets */
        {"0102030405060708090A0B0C0D0E0F101112131415",
         "has a serial number longer than 20 octets"},
        /* 20 octets of magnitude with the top bit set: 21 in DER */
        {"8102030405060708090A0B0C0D0E0F1011121314",
         "has a serial number longer than 20 octets"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct built b;
        built_default(&b);
        b.l.serial = bad[k].serial;
        built_make(&b);
        assert_rule(&b, X509_V_ERR_APPLICATION_VERIFICATION, 0,
                    bad[k].words, true);
        built_free(&b);
        /* The same on a CA of the chain. */
        built_default(&b);
        b.i.serial = bad[k].serial;
        built_make(&b);
        assert_rule(&b, X509_V_ERR_APPLICATION_VERIFICATION, 1,
                    "intermediate CA 'CN = Strict Intermediate CA' has ",
                    true);
        built_free(&b);
    }
    struct built b;
    built_default(&b);
    b.l.serial = "7102030405060708090A0B0C0D0E0F1011121314";
    built_make(&b);
    struct ss_verify_result res;
    assert_accepted(verify_built(&b, (struct how){true, false, -1}, &res),
                    &res, 0);
    built_free(&b);
}

/* Version 1: a leaf (OpenSSL takes it: no extensions to check) and a
 * root (OpenSSL's strict mode refuses it as a CA). */
static void test_strict_version_1(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.l.version = X509_VERSION_1;
    b.l.cn = "localhost"; /* no subjectAltName: the name is the CN */
    built_make(&b);
    assert_rule(&b, X509_V_ERR_APPLICATION_VERIFICATION, 0,
                "the server certificate 'CN = localhost' is a version 1 "
                "certificate; the profile takes only version 3 (RFC 5280 "
                "4.1.2.1); set x509-strict = false", true);
    built_free(&b);

    built_default(&b);
    b.r.version = X509_VERSION_1;
    built_make(&b);
    assert_rule(&b, X509_V_ERR_INVALID_CA, 2,
                "root CA 'CN = Strict Root CA' is a version 1 certificate, "
                "which cannot be a CA (RFC 5280 4.1.2.1); set x509-strict",
                true);
    built_free(&b);
}

/* Rejected below the level with error at depth and words, whatever
 * x509-strict and compatibility mode say; accepted at ok_level. */
static void assert_level(const struct built *b, int level, int error,
                         int depth, const char *words, int ok_level)
{
    struct ss_verify_result res;
    for (int mode = 0; mode < 3; mode++) {
        struct how how = {mode != 1, mode == 2, level};
        int rc = verify_built(b, how, &res);
        assert_rejected(rc, &res, error, depth, words, "");
    }
    int rc = verify_built(b, (struct how){true, false, ok_level}, &res);
    assert_accepted(rc, &res, 0);
}

static void test_level_rsa_1024(void **state)
{
    (void)state;
    EVP_PKEY *rsa = EVP_RSA_gen(1024);
    assert_non_null(rsa);
    struct built b;
    built_default(&b);
    b.l.key = rsa;
    built_make(&b);
    /* The default level is a new context's: 2 on Debian 12. */
    assert_level(&b, -1, X509_V_ERR_EE_KEY_TOO_SMALL, 0,
                 "the key of the server certificate 'CN = strict-leaf' is "
                 "RSA 1024 bits, below security level 2 (at least 2048 "
                 "bits)", 1);
    built_free(&b);
    /* As a CA's key. */
    built_default(&b);
    b.i.key = rsa;
    built_make(&b);
    assert_level(&b, 2, X509_V_ERR_CA_KEY_TOO_SMALL, 1,
                 "the key of intermediate CA 'CN = Strict Intermediate CA' "
                 "is RSA 1024 bits, below security level 2", 1);
    built_free(&b);
    EVP_PKEY_free(rsa);
}

static void test_level_p192(void **state)
{
    (void)state;
    EVP_PKEY *p192 = EVP_EC_gen("P-192");
    assert_non_null(p192);
    struct built b;
    built_default(&b);
    b.l.key = p192;
    built_make(&b);
    assert_level(&b, 2, X509_V_ERR_EE_KEY_TOO_SMALL, 0,
                 "is EC prime192v1 (192 bits), below security level 2 (a "
                 "curve of at least 224 bits)", 1);
    built_free(&b);
    EVP_PKEY_free(p192);
}

static void test_level_sha1(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.l.md = EVP_sha1();
    built_make(&b);
    assert_level(&b, 2, X509_V_ERR_CA_MD_TOO_WEAK, 0,
                 "the server certificate 'CN = strict-leaf' is signed with "
                 "SHA1 (63 bits of security), below security level 2 (at "
                 "least 112 bits)", 0);
    built_free(&b);
}

static void test_level_dsa_1024(void **state)
{
    (void)state;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL);
    EVP_PKEY *params = NULL, *dsa = NULL;
    assert_non_null(pctx);
    assert_int_equal(EVP_PKEY_paramgen_init(pctx), 1);
    assert_int_equal(EVP_PKEY_CTX_set_dsa_paramgen_bits(pctx, 1024), 1);
    assert_int_equal(EVP_PKEY_CTX_set_dsa_paramgen_q_bits(pctx, 160), 1);
    assert_int_equal(EVP_PKEY_paramgen(pctx, &params), 1);
    EVP_PKEY_CTX_free(pctx);
    pctx = EVP_PKEY_CTX_new(params, NULL);
    assert_int_equal(EVP_PKEY_keygen_init(pctx), 1);
    assert_int_equal(EVP_PKEY_keygen(pctx, &dsa), 1);
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(params);
    struct built b;
    built_default(&b);
    b.i.key = dsa;
    built_make(&b);
    assert_level(&b, 2, X509_V_ERR_CA_KEY_TOO_SMALL, 1,
                 "is DSA 1024 bits, below security level 2 (at least 2048 "
                 "bits)", 1);
    built_free(&b);
    EVP_PKEY_free(dsa);
}

/* Name constraints, which OpenSSL checks: the reason names the CA, the
 * type, the name and the subtrees. */
static void test_name_constraints_dns(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.i.nc = "critical,permitted;DNS:example.com";
    built_make(&b);
    assert_rule(&b, X509_V_ERR_PERMITTED_VIOLATION, 0,
                "the server certificate 'CN = strict-leaf' has DNS name "
                "'localhost', which is outside the permitted DNS name "
                "subtrees (example.com) of the nameConstraints of "
                "intermediate CA 'CN = Strict Intermediate CA' (RFC 5280 "
                "4.2.1.10)", false);
    built_free(&b);
    /* Inside: accepted. */
    built_default(&b);
    b.i.nc = "critical,permitted;DNS:localhost";
    built_make(&b);
    struct ss_verify_result res;
    assert_accepted(verify_built(&b, (struct how){true, false, -1}, &res),
                    &res, 0);
    built_free(&b);
}

static void test_name_constraints_ip(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.r.nc = "critical,excluded;IP:127.0.0.0/255.0.0.0";
    b.l.san = "DNS:localhost, IP:127.0.0.1";
    built_make(&b);
    assert_rule(&b, X509_V_ERR_EXCLUDED_VIOLATION, 0,
                "has IP address '127.0.0.1', which is inside the excluded "
                "IP address subtree '127.0.0.0/255.0.0.0' of the "
                "nameConstraints of root CA 'CN = Strict Root CA'", false);
    built_free(&b);
}

static void test_name_constraints_dirname(void **state)
{
    (void)state;
    struct built b;
    built_default(&b);
    b.i.nc = "critical,permitted;dirName:dir";
    built_make(&b);
    assert_rule(&b, X509_V_ERR_PERMITTED_VIOLATION, 0,
                "has directory name 'CN = strict-leaf', which is outside the "
                "permitted directory name subtrees (O = Strict Org) of the "
                "nameConstraints of intermediate CA", false);
    built_free(&b);
}

/* The profile is the default of every verifier. */
static void test_strict_is_default(void **state)
{
    (void)state;
    struct ss_verifier v;
    verifier_make(&v, tu_pki_file("ca.pem"), NULL, SS_PURPOSE_SERVER, false);
    assert_true(v.x509_strict);
    SSL_CTX *probe = SSL_CTX_new(TLS_method());
    assert_non_null(probe);
    assert_int_equal(v.security_level, SSL_CTX_get_security_level(probe));
    SSL_CTX_free(probe);
    ss_verifier_free(&v);
}

/* Writes b's leaf + intermediate and key as a server's files. */
static void write_server(const struct built *b, EVP_PKEY *key,
                         char *cert_path, char *key_path, size_t len)
{
    snprintf(cert_path, len, "%s", tu_pki_file("strict-server.pem"));
    snprintf(key_path, len, "%s", tu_pki_file("strict-server.key"));
    FILE *f = fopen(cert_path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, b->leaf), 1);
    assert_int_equal(PEM_write_X509(f, b->inter), 1);
    fclose(f);
    f = fopen(key_path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL),
                     1);
    fclose(f);
}

/* In a handshake the same callback applies the profile and the level:
 * the same codes and sentences as offline, in TLS 1.2 and 1.3. */
static void test_handshake_strict_and_level(void **state)
{
    (void)state;
    char cert_path[4096], key_path[4096];
    const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    struct built b;
    built_default(&b);
    b.i.skid = NULL;
    built_make(&b);
    write_server(&b, b.l.key, cert_path, key_path, sizeof(cert_path));
    for (size_t k = 0; k < 2; k++) {
        for (int strict = 0; strict <= 1; strict++) {
            struct ss_verifier v;
            verifier_make(&v, write_cert("strict-root.pem", b.root), NULL,
                          SS_PURPOSE_SERVER, false);
            v.x509_strict = strict;
            struct handshake h;
            handshake_with(cert_path, key_path, -1, &v, versions[k], &h);
            ss_verifier_free(&v);
            if (!strict) {
                assert_true(h.client_ok);
                assert_true(h.res.ok);
                continue;
            }
            assert_false(h.client_ok);
            assert_int_equal(h.verify_result,
                             X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER);
            assert_contains(h.res.reason, "intermediate CA 'CN = Strict "
                            "Intermediate CA' has no subjectKeyIdentifier");
        }
    }
    built_free(&b);

    /* A serial number of 0: our own rule, in the handshake too. */
    built_default(&b);
    b.l.serial = "0";
    built_make(&b);
    write_server(&b, b.l.key, cert_path, key_path, sizeof(cert_path));
    struct ss_verifier v;
    verifier_make(&v, write_cert("strict-root.pem", b.root), NULL,
                  SS_PURPOSE_SERVER, true);
    struct handshake h;
    handshake_with(cert_path, key_path, -1, &v, TLS1_3_VERSION, &h);
    assert_false(h.client_ok);
    assert_false(h.res.ok);
    assert_int_equal(h.verify_result, X509_V_ERR_APPLICATION_VERIFICATION);
    assert_contains(h.res.reason, "has serial number 0");
    ss_verifier_free(&v);
    built_free(&b);

    /* RSA 1024 from a server at level 0: the client's level 2 refuses it
     * in verification, with the sentence of `secshim verify`. */
    EVP_PKEY *rsa = EVP_RSA_gen(1024);
    assert_non_null(rsa);
    built_default(&b);
    b.l.key = rsa;
    built_make(&b);
    write_server(&b, rsa, cert_path, key_path, sizeof(cert_path));
    verifier_make(&v, write_cert("strict-root.pem", b.root), NULL,
                  SS_PURPOSE_SERVER, false);
    v.security_level = 2;
    handshake_with(cert_path, key_path, 0, &v, TLS1_2_VERSION, &h);
    assert_false(h.client_ok);
    assert_int_equal(h.verify_result, X509_V_ERR_EE_KEY_TOO_SMALL);
    assert_contains(h.res.reason, "is RSA 1024 bits, below security level 2");
    ss_verifier_free(&v);
    built_free(&b);
    EVP_PKEY_free(rsa);
}

/* The compat warnings of the matrix go to a file, not the test output. */
static const char *quiet_log(void)
{
    return tu_pki_file("warnings.log");
}

static int group_setup(void **state)
{
    (void)state;
    tu_pki();
    struct ss_errbuf err = {{0}};
    return ss_log_configure(SS_LOG_WARNING, quiet_log(), &err) == SS_OK ? 0
                                                                        : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    struct ss_errbuf err = {{0}};
    ss_log_configure(SS_LOG_WARNING, "stderr", &err);
    EVP_PKEY_free(cert_key);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(inter_key);
    EVP_PKEY_free(leaf_key);
    tu_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_localhost),
        cmocka_unit_test(test_valid_ipv4),
        cmocka_unit_test(test_valid_ipv6),
        cmocka_unit_test(test_valid_no_host),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_not_yet_valid),
        cmocka_unit_test(test_wrong_host),
        cmocka_unit_test(test_wrong_ip),
        cmocka_unit_test(test_other_name),
        cmocka_unit_test(test_unknown_ca),
        cmocka_unit_test(test_revoked_leaf),
        cmocka_unit_test(test_revoked_leaf_listed),
        cmocka_unit_test(test_revoked_inter_listed),
        cmocka_unit_test(test_revoked_inter_not_listed),
        cmocka_unit_test(test_ku_noauth),
        cmocka_unit_test(test_no_serverauth),
        cmocka_unit_test(test_client_no_clientauth),
        cmocka_unit_test(test_client_good),
        cmocka_unit_test(test_server_cert_as_client),
        cmocka_unit_test(test_expired_wins_over_relaxation),
        cmocka_unit_test(test_at_after_expiry),
        cmocka_unit_test(test_at_before_validity),
        cmocka_unit_test(test_no_crl_revoked_accepted),
        cmocka_unit_test(test_crl_missing_for_intermediate),
        cmocka_unit_test(test_file_lists),
        cmocka_unit_test(test_relaxations_logged),
        cmocka_unit_test(test_missing_trusted_ca),
        cmocka_unit_test(test_missing_crl),
        cmocka_unit_test(test_empty_trusted_ca),
        cmocka_unit_test(test_crl_file_without_crl),
        cmocka_unit_test(test_empty_crl),
        cmocka_unit_test(test_corrupt_trusted_ca),
        cmocka_unit_test(test_empty_list_item),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_default_paths),
        cmocka_unit_test(test_free_zeroed_twice),
        cmocka_unit_test(test_relaxation_names),
        cmocka_unit_test(test_handshake_good_server),
        cmocka_unit_test(test_handshake_wrong_host),
        cmocka_unit_test(test_handshake_revoked_inter),
        cmocka_unit_test(test_handshake_ku_noauth),
        cmocka_unit_test(test_allow_peer_each_form),
        cmocka_unit_test(test_allow_peer_wildcards),
        cmocka_unit_test(test_allow_peer_several_entries),
        cmocka_unit_test(test_allow_peer_refusal_sentences),
        cmocka_unit_test(test_allow_peer_unreadable_san),
        cmocka_unit_test(test_allow_peer_arguments),
        cmocka_unit_test(test_allow_peer_after_chain),
        cmocka_unit_test(test_handshake_allow_peer),
        cmocka_unit_test(test_strict_compliant_chain),
        cmocka_unit_test(test_strict_is_default),
        cmocka_unit_test(test_strict_inter_without_skid),
        cmocka_unit_test(test_strict_leaf_without_akid),
        cmocka_unit_test(test_strict_inter_without_akid),
        cmocka_unit_test(test_strict_ca_bc_not_critical),
        cmocka_unit_test(test_strict_other_extension_rules),
        cmocka_unit_test(test_strict_inter_not_a_ca),
        cmocka_unit_test(test_strict_root_without_bc),
        cmocka_unit_test(test_strict_inter_without_bc_always),
        cmocka_unit_test(test_strict_ca_without_key_usage),
        cmocka_unit_test(test_strict_leaf_key_cert_sign),
        cmocka_unit_test(test_strict_empty_subject),
        cmocka_unit_test(test_strict_ec_explicit_params),
        cmocka_unit_test(test_strict_serial_numbers),
        cmocka_unit_test(test_strict_version_1),
        cmocka_unit_test(test_level_rsa_1024),
        cmocka_unit_test(test_level_p192),
        cmocka_unit_test(test_level_sha1),
        cmocka_unit_test(test_level_dsa_1024),
        cmocka_unit_test(test_name_constraints_dns),
        cmocka_unit_test(test_name_constraints_ip),
        cmocka_unit_test(test_name_constraints_dirname),
        cmocka_unit_test(test_handshake_strict_and_level),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
