/*
 * tlsctx.c - one SSL_CTX per enabled endpoint (see tlsctx.h).
 *
 * The context is built completely and returned only on success: every
 * failure frees what was made so far, so a policy snapshot never holds a
 * half-configured context. Every error names the policy file, the line and
 * the option it comes from (ss_endpoint_fail).
 */
#include "secshim/tlsctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>

#include "secshim/compat.h"
#include "secshim/log.h"
#include "secshim/protocol.h"

/* What an option failure needs to be reported with file:line:option. */
struct ctx_build {
    const char *path;
    const struct ss_endpoint *ep;
    struct ss_errbuf *err;
    struct ss_tlsctx *t;
};

static int fail_opt(struct ctx_build *b, int code, enum ss_opt opt,
                    const char *what)
{
    return ss_endpoint_fail(b->err, code, b->path, b->ep, opt, "%s", what);
}

/* Like fail_opt, with OpenSSL's error queue appended. */
static int fail_opt_openssl(struct ctx_build *b, int code, enum ss_opt opt,
                            const char *what)
{
    char queue[512];
    ss_openssl_errors(queue, sizeof(queue));
    return ss_endpoint_fail(b->err, code, b->path, b->ep, opt, "%s: %s",
                            what, queue);
}

/* ---- certificate chain and key ---------------------------------------- */

struct chain_load {
    struct ctx_build *b;
    int n_leaf;  /* certificates taken as the leaf so far (0 or 1) */
};

/* Reads every certificate of one PEM file: the very first one of the
 * first file is the leaf, all others are the chain, in file order. */
static int load_cert_file(const char *file, size_t index, void *arg)
{
    struct chain_load *cl = arg;
    struct ctx_build *b = cl->b;
    char what[600];
    ERR_clear_error();
    BIO *in = BIO_new_file(file, "r");
    if (in == NULL) {
        snprintf(what, sizeof(what), "cannot read %s", file);
        return fail_opt_openssl(b, SS_ERR_IO, SS_OPT_CERTIFICATE, what);
    }
    int rc = SS_OK;
    int n_read = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        n_read++;
        if (index == 0 && cl->n_leaf == 0) {
            cl->n_leaf = 1;
            b->t->own_cert = x;
            if (SSL_CTX_use_certificate(b->t->ctx, x) != 1) {
                snprintf(what, sizeof(what), "cannot use the certificate "
                         "in %s", file);
                rc = fail_opt_openssl(b, SS_ERR_TLS, SS_OPT_CERTIFICATE,
                                      what);
                break;
            }
            continue;
        }
        /* add1 takes its own reference. */
        int ok = SSL_CTX_add1_chain_cert(b->t->ctx, x);
        X509_free(x);
        if (ok != 1) {
            snprintf(what, sizeof(what), "cannot add the chain "
                     "certificate from %s", file);
            rc = fail_opt_openssl(b, SS_ERR_TLS, SS_OPT_CERTIFICATE, what);
            break;
        }
    }
    BIO_free(in);
    if (rc == SS_OK && n_read == 0) {
        snprintf(what, sizeof(what), "%s holds no PEM certificate", file);
        rc = fail_opt(b, SS_ERR_IO, SS_OPT_CERTIFICATE, what);
    }
    /* The loop ends on "no start line" when the file is exhausted. */
    ERR_clear_error();
    return rc;
}

static bool is_key_mismatch(unsigned long e)
{
    return ERR_GET_LIB(e) == ERR_LIB_X509 &&
           (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
            ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);
}

static int key_mismatch(struct ctx_build *b)
{
    return fail_opt_openssl(b, SS_ERR_CONFIG, SS_OPT_CERTIFICATE_KEY,
                            "certificate-key does not match certificate");
}

static int load_certificate(struct ctx_build *b)
{
    const struct ss_endpoint *ep = b->ep;
    if (ep->certificate == NULL || ep->certificate[0] == '\0')
        return fail_opt(b, SS_ERR_CONFIG, SS_OPT_CERTIFICATE,
                        ep->direction == SS_DIR_LISTEN
                            ? "a listen endpoint needs a certificate"
                            : "tls-mutual on a connect endpoint needs a "
                              "certificate to present");
    if (ep->certificate_key == NULL || ep->certificate_key[0] == '\0')
        return fail_opt(b, SS_ERR_CONFIG, SS_OPT_CERTIFICATE_KEY,
                        "certificate is set but certificate-key is not");
    struct chain_load cl = {.b = b, .n_leaf = 0};
    int rc = ss_for_each_file(ep->certificate, load_cert_file, &cl);
    if (rc == SS_ERR_NOMEM)
        return ss_fail(b->err, rc, "out of memory");
    SS_GUARD(rc);
    if (cl.n_leaf == 0)
        return fail_opt(b, SS_ERR_CONFIG, SS_OPT_CERTIFICATE,
                        "no certificate file given");

    char what[600];
    ERR_clear_error();
    /* OpenSSL checks the key against the leaf while loading it. */
    if (SSL_CTX_use_PrivateKey_file(b->t->ctx, ep->certificate_key,
                                    SSL_FILETYPE_PEM) != 1) {
        if (is_key_mismatch(ERR_peek_last_error()))
            return key_mismatch(b);
        snprintf(what, sizeof(what), "cannot load the private key %s",
                 ep->certificate_key);
        return fail_opt_openssl(b, SS_ERR_IO, SS_OPT_CERTIFICATE_KEY, what);
    }
    ERR_clear_error();
    if (SSL_CTX_check_private_key(b->t->ctx) != 1)
        return key_mismatch(b);
    return SS_OK;
}

/* ---- verification -------------------------------------------------------- */

struct find_file {
    const char *msg;
    bool found;
};

static int find_in_msg(const char *file, size_t index, void *arg)
{
    (void)index;
    struct find_file *ff = arg;
    if (strstr(ff->msg, file) != NULL)
        ff->found = true;
    return SS_OK;
}

static int setup_verification(struct ctx_build *b, bool compat)
{
    const struct ss_endpoint *ep = b->ep;
    bool server = ep->direction == SS_DIR_LISTEN;
    if (server && ep->tls_mutual &&
        (ep->trusted_ca == NULL || ep->trusted_ca[0] == '\0'))
        return fail_opt(b, SS_ERR_CONFIG, SS_OPT_TRUSTED_CA,
                        "tls-mutual on a listen endpoint needs trusted-ca "
                        "to verify clients against");

    /* The peer's purpose: a client checks a server and vice versa. */
    enum ss_purpose purpose = server ? SS_PURPOSE_CLIENT : SS_PURPOSE_SERVER;
    struct ss_errbuf sub;
    sub.msg[0] = '\0';
    int rc = ss_verifier_init(&b->t->verifier, ep->trusted_ca, ep->tls_crl,
                              purpose, compat, &sub);
    if (rc < 0) {
        /* ss_verifier_init names the file; attribute it to tls-crl when it
         * is one of the CRL files, else to trusted-ca. */
        struct find_file ff = {.msg = sub.msg, .found = false};
        if (ep->tls_crl != NULL)
            ss_for_each_file(ep->tls_crl, find_in_msg, &ff);
        return fail_opt(b, rc, ff.found ? SS_OPT_TLS_CRL : SS_OPT_TRUSTED_CA,
                        sub.msg);
    }
    rc = ss_verifier_attach(b->t->ctx, &b->t->verifier, &sub);
    if (rc < 0)
        return fail_opt(b, rc, SS_OPT_TRUSTED_CA, sub.msg);

    /* Keep the verifier's callback, choose the mode here: a client always
     * verifies the server; a server asks for (and then requires) a client
     * certificate only with tls-mutual. */
    int mode = SSL_VERIFY_PEER;
    if (server)
        mode = ep->tls_mutual
                   ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                   : SSL_VERIFY_NONE;
    SSL_CTX_set_verify(b->t->ctx, mode,
                       SSL_CTX_get_verify_callback(b->t->ctx));
    return SS_OK;
}

/* ---- the rest of the context ------------------------------------------ */

/*
 * The TLS 1.3 suites when the endpoint names none: OpenSSL's three, the
 * fastest first, since a server's order decides
 * (SSL_OP_CIPHER_SERVER_PREFERENCE) and a client's is the server's hint.
 * OpenSSL's own default puts AES-256-GCM first; AES-128-GCM is as safe
 * and faster where the CPU has AES instructions, ChaCha20-Poly1305 where
 * it has not (docs/protocols.md).
 */
const char *ss_tlsctx_default_suites(void)
{
    return ss_cpu_has_aes()
               ? "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                 "TLS_CHACHA20_POLY1305_SHA256"
               : "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:"
                 "TLS_AES_256_GCM_SHA384";
}

static int set_ciphers(struct ctx_build *b)
{
    const struct ss_endpoint *ep = b->ep;
    ERR_clear_error();
    if (ep->cipher_list != NULL && ep->cipher_list[0] != '\0' &&
        SSL_CTX_set_cipher_list(b->t->ctx, ep->cipher_list) != 1)
        return fail_opt_openssl(b, SS_ERR_CONFIG, SS_OPT_CIPHER_LIST,
                                "OpenSSL accepts no cipher of this list");
    ERR_clear_error();
    if (ep->cipher_suites != NULL && ep->cipher_suites[0] != '\0') {
        if (SSL_CTX_set_ciphersuites(b->t->ctx, ep->cipher_suites) != 1)
            return fail_opt_openssl(b, SS_ERR_CONFIG, SS_OPT_CIPHER_SUITES,
                                    "OpenSSL rejects this TLS 1.3 cipher "
                                    "suite list");
        return SS_OK;
    }
    SS_GUARD_OSSL(SSL_CTX_set_ciphersuites(b->t->ctx,
                                           ss_tlsctx_default_suites()),
                  b->err, SS_ERR_TLS, "cannot set the TLS 1.3 cipher suites");
    return SS_OK;
}

static int set_protocol(struct ctx_build *b)
{
    struct ss_errbuf sub;
    int rc = ss_protocol_apply(b->t->ctx, &b->ep->proto, &sub);
    const struct ss_proto *proto = &b->ep->proto;
    if (rc < 0) {
        enum ss_opt opt = SS_OPT_SEC_PROTOCOL;
        if (b->ep->opt_line[SS_OPT_TLS_VERSION] > 0)
            opt = SS_OPT_TLS_VERSION;
        else if (b->ep->opt_line[SS_OPT_PROTOCOL_LIST] > 0)
            opt = SS_OPT_PROTOCOL_LIST;
        return fail_opt(b, rc, opt, sub.msg);
    }
    if (b->t->role == SS_ROLE_CLIENT &&
        ss_protocol_client_versions(proto) != proto->versions) {
        struct ss_proto offered = *proto;
        offered.versions = ss_protocol_client_versions(proto);
        char have[128], sent[128];
        ss_protocol_describe(proto, have, sizeof(have));
        ss_protocol_describe(&offered, sent, sizeof(sent));
        ss_log(SS_LOG_WARNING,
               "endpoint '%s': protocol-list %s has a gap an OpenSSL "
               "client cannot offer: offering %s",
               b->ep->name != NULL ? b->ep->name : "?", have, sent);
    }
    if (proto->legacy) {
        char desc[128];
        ss_log(SS_LOG_WARNING,
               "endpoint '%s': legacy protocol versions enabled (%s): "
               "OpenSSL security level 0 for this endpoint only",
               b->ep->name != NULL ? b->ep->name : "?",
               ss_protocol_describe(&b->ep->proto, desc, sizeof(desc)));
    }
    return SS_OK;
}

/* Server-side session cache, keyed by endpoint so that a session made for
 * one endpoint is never resumed on another. */
static int set_session_cache(struct ctx_build *b)
{
    if (b->t->role != SS_ROLE_SERVER)
        return SS_OK; /* clients: OpenSSL's defaults (no client cache) */
    unsigned char sid_ctx[EVP_MAX_MD_SIZE];
    unsigned int sid_len = 0;
    const char *name = b->ep->name != NULL ? b->ep->name : "";
    ERR_clear_error();
    if (EVP_Digest(name, strlen(name), sid_ctx, &sid_len, EVP_sha256(),
                   NULL) != 1 ||
        sid_len > SSL_MAX_SID_CTX_LENGTH)
        return ss_fail_openssl(b->err, SS_ERR_TLS,
                               "cannot derive a session id context");
    SSL_CTX_set_session_cache_mode(b->t->ctx, SSL_SESS_CACHE_SERVER);
    SS_GUARD_OSSL(SSL_CTX_set_session_id_context(b->t->ctx, sid_ctx,
                                                 sid_len),
                  b->err, SS_ERR_TLS, "cannot set the session id context");
    return SS_OK;
}

/* FIPS: the provider must load, and then every algorithm of this context
 * is fetched with "fips=yes"; there is no silent non-FIPS fallback. */
static int load_fips(struct ctx_build *b)
{
    ERR_clear_error();
    b->t->fips = OSSL_PROVIDER_load(NULL, "fips");
    if (b->t->fips == NULL) {
        ERR_clear_error();
        return fail_opt(b, SS_ERR_UNSUPPORTED, SS_OPT_FIPS140_ENABLED,
                        "fips140-enabled: the OpenSSL FIPS provider is not "
                        "installed");
    }
    return SS_OK;
}

static int create_ctx(struct ctx_build *b)
{
    const SSL_METHOD *method = b->t->role == SS_ROLE_SERVER
                                   ? TLS_server_method()
                                   : TLS_client_method();
    ERR_clear_error();
    b->t->ctx = SSL_CTX_new_ex(NULL, b->ep->fips140_enabled ? "fips=yes"
                                                            : NULL,
                               method);
    if (b->t->ctx == NULL)
        return ss_fail_openssl(b->err, SS_ERR_TLS,
                               "cannot create an SSL_CTX");
    uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
    if (b->t->role == SS_ROLE_SERVER)
        options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    SSL_CTX_set_options(b->t->ctx, options);
    /* The conn's BIO never refuses ciphertext, but a caller may still hand
     * a retried write a different buffer (the shim copies). No
     * SSL_MODE_RELEASE_BUFFERS: it frees and allocates the record buffers
     * around every record; the conn gives them back when the connection
     * goes idle instead (ss_conn_idle). */
    SSL_CTX_set_mode(b->t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* No read-ahead: measured slower here (docs/design.md, "Memory and
     * copies"), and without it no record waits inside OpenSSL where the
     * kernel's readiness would not show it. */
    return SS_OK;
}

static int build(struct ctx_build *b, bool compat)
{
    if (b->ep->fips140_enabled)
        SS_GUARD(load_fips(b));
    SS_GUARD(create_ctx(b));
    SS_GUARD(set_protocol(b));
    SS_GUARD(set_ciphers(b));
    /* Servers always present a certificate; clients only for tls-mutual
     * (a client certificate configured without it is not loaded). */
    if (b->t->role == SS_ROLE_SERVER || b->ep->tls_mutual)
        SS_GUARD(load_certificate(b));
    SS_GUARD(setup_verification(b, compat));
    SS_GUARD(set_session_cache(b));
    return SS_OK;
}

int ss_tlsctx_new(const char *path, const struct ss_endpoint *ep,
                  bool compat, struct ss_tlsctx **out,
                  struct ss_errbuf *err)
{
    *out = NULL;
    if (ep == NULL)
        return ss_fail(err, SS_ERR_INVAL, "no endpoint");
    struct ss_tlsctx *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    t->role = ep->direction == SS_DIR_LISTEN ? SS_ROLE_SERVER
                                             : SS_ROLE_CLIENT;
    struct ctx_build b = {.path = path, .ep = ep, .err = err, .t = t};
    int rc = build(&b, compat);
    if (rc < 0) {
        ss_tlsctx_free(t);
        return rc;
    }
    *out = t;
    return SS_OK;
}

void ss_tlsctx_free(struct ss_tlsctx *t)
{
    if (t == NULL)
        return;
    /* The context first: it points at the verifier's store. */
    SSL_CTX_free(t->ctx);
    if (t->verifier.store != NULL || t->verifier.trusted_listed != NULL)
        ss_verifier_free(&t->verifier);
    X509_free(t->own_cert);
    if (t->fips != NULL)
        OSSL_PROVIDER_unload(t->fips);
    free(t);
}

int ss_tlsctx_days_left(const struct ss_tlsctx *t, time_t now)
{
    if (t == NULL || t->own_cert == NULL)
        return 0;
    const ASN1_TIME *not_after = X509_get0_notAfter(t->own_cert);
    ASN1_TIME *at = ASN1_TIME_set(NULL, now);
    int days = 0;
    int secs = 0;
    if (at == NULL || not_after == NULL ||
        ASN1_TIME_diff(&days, &secs, at, not_after) != 1)
        days = 0;
    ASN1_TIME_free(at);
    /* Whole days: an hour past expiry is already "-1", not "0". */
    if (secs < 0)
        days--;
    return days;
}
