/*
 * tlsctx.c - one SSL_CTX per enabled endpoint (see tlsctx.h).
 *
 * The context is built completely and returned only on success: every
 * failure frees what was made so far, so a policy snapshot never holds a
 * half-configured context. Every error names the policy file, the line and
 * the option it comes from (ss_endpoint_fail).
 */
#include "secshim/tlsctx.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include "secshim/alloc.h"
#include "secshim/cpu.h"
#include "secshim/fips.h"
#include "secshim/log.h"
#include "secshim/protocol.h"

/* What an option failure needs to be reported with file:line:option. */
struct ctx_build {
    const char *path;
    const struct ss_endpoint *ep;
    struct ss_errbuf *err;
    struct ss_tlsctx *t;
};

/* A failure that OpenSSL's queue says came from an allocation is
 * SS_ERR_NOMEM whatever it looked like ("holds no PEM certificate",
 * "key values mismatch"): not the files' fault, and the build is tried
 * again at the next need instead of being remembered (policy.h,
 * ss_policy_tls). The queue is consumed. */
static int fail_opt(struct ctx_build *b, int code, enum ss_opt opt,
                    const char *what)
{
    char queue[512];
    bool nomem = false;
    ss_openssl_errors_nomem(queue, sizeof(queue), &nomem);
    return ss_endpoint_fail(b->err, nomem ? SS_ERR_NOMEM : code, b->path,
                            b->ep, opt, "%s", what);
}

/* Like fail_opt, with OpenSSL's error queue appended. */
static int fail_opt_openssl(struct ctx_build *b, int code, enum ss_opt opt,
                            const char *what)
{
    char queue[512];
    bool nomem = false;
    ss_openssl_errors_nomem(queue, sizeof(queue), &nomem);
    return ss_endpoint_fail(b->err, nomem ? SS_ERR_NOMEM : code, b->path,
                            b->ep, opt, "%s: %s", what, queue);
}

/* ---- certificate chain and key ---------------------------------------- */

struct chain_load {
    struct ctx_build *b;
    int n_leaf;  /* certificates taken as the leaf so far (0 or 1) */
};

/* The next PEM certificate of in, made in the endpoint's library context
 * (its public key then is decoded there too), or NULL. */
static X509 *read_cert(const struct ss_tlsctx *t, BIO *in)
{
    X509 *x = X509_new_ex(t->libctx, t->propq);
    if (x == NULL)
        return NULL;
    if (PEM_read_bio_X509(in, &x, NULL, NULL) == NULL) {
        X509_free(x);
        return NULL;
    }
    return x;
}

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
    while ((x = read_cert(b->t, in)) != NULL) {
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

/* x509-strict = false: one warning per context built (once per policy
 * snapshot), naming file, line and option like an error would. */
static void warn_not_strict(struct ctx_build *b)
{
    struct ss_errbuf msg = {{0}};
    (void)ss_endpoint_fail(&msg, SS_OK, b->path, b->ep, SS_OPT_X509_STRICT,
                           "the RFC 5280 profile is off for this endpoint: "
                           "peer chains that break it are accepted "
                           "(docs/verification.md)");
    ss_log(SS_LOG_WARNING, "%s", msg.msg);
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
    int rc = ss_verifier_init_ex(&b->t->verifier, b->t->libctx,
                                 b->t->propq, ep->trusted_ca, ep->tls_crl,
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
    /* The endpoint owns its allow-peer and outlives this context. */
    b->t->verifier.allow_peer = &ep->allow_peer;
    /* The profile: x509-strict, and the level this context has now that
     * its protocols and ciphers are set (set_protocol, set_ciphers run
     * first; cipher-list may hold @SECLEVEL). The verify callback applies
     * both, as `secshim verify` does with this verifier's values. */
    b->t->verifier.x509_strict = ep->x509_strict;
    b->t->verifier.security_level = SSL_CTX_get_security_level(b->t->ctx);
    if (!ep->x509_strict)
        warn_not_strict(b);
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

/* Whether the endpoint's library context has the cipher of a suite.
 * libssl takes a FIPS endpoint's TLS_CHACHA20_POLY1305_SHA256 by name and
 * leaves it out only at the handshake. */
static bool suite_usable(const struct ss_tlsctx *t, const SSL_CIPHER *c)
{
    const char *name = OBJ_nid2sn(SSL_CIPHER_get_cipher_nid(c));
    EVP_CIPHER *cipher = name != NULL
                             ? EVP_CIPHER_fetch(t->libctx, name, t->propq)
                             : NULL;
    EVP_CIPHER_free(cipher);
    return cipher != NULL;
}

/* A FIPS endpoint's cipher-suites must name at least one suite its
 * provider offers: a list of ChaCha20 alone would otherwise load and then
 * refuse every TLS 1.3 peer. */
static int check_fips_suites(struct ctx_build *b)
{
    STACK_OF(SSL_CIPHER) *all = SSL_CTX_get_ciphers(b->t->ctx);
    int usable = 0;
    for (int i = 0; i < sk_SSL_CIPHER_num(all); i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(all, i);
        /* TLS 1.3 suites are 0x13XX (RFC 8446, B.4). */
        if ((SSL_CIPHER_get_protocol_id(c) >> 8) == 0x13 &&
            suite_usable(b->t, c))
            usable++;
    }
    ERR_clear_error();
    if (usable == 0)
        return fail_opt(b, SS_ERR_CONFIG, SS_OPT_CIPHER_SUITES,
                        "fips140-enabled: the FIPS provider offers none "
                        "of these TLS 1.3 cipher suites");
    return SS_OK;
}

/* TLS 1.2 and below: the operator's cipher-list, else the endpoint's
 * default (ECDHE with AEAD only, ss_protocol_default_cipher_list), else,
 * for an endpoint that allows TLS 1.0 or 1.1, OpenSSL's own default. */
static int set_cipher_list(struct ctx_build *b)
{
    const struct ss_endpoint *ep = b->ep;
    ERR_clear_error();
    if (ep->cipher_list != NULL && ep->cipher_list[0] != '\0') {
        if (SSL_CTX_set_cipher_list(b->t->ctx, ep->cipher_list) != 1)
            return fail_opt_openssl(b, SS_ERR_CONFIG, SS_OPT_CIPHER_LIST,
                                    "OpenSSL accepts no cipher of this "
                                    "list");
        return SS_OK;
    }
    const char *list = ss_protocol_default_cipher_list(&ep->proto,
                                                       ss_cpu_has_aes());
    if (list == NULL)
        return SS_OK;
    SS_GUARD_OSSL(SSL_CTX_set_cipher_list(b->t->ctx, list), b->err,
                  SS_ERR_TLS, "cannot set the default TLS 1.2 cipher list");
    return SS_OK;
}

static int set_ciphers(struct ctx_build *b)
{
    const struct ss_endpoint *ep = b->ep;
    SS_GUARD(set_cipher_list(b));
    ERR_clear_error();
    if (ep->cipher_suites != NULL && ep->cipher_suites[0] != '\0') {
        if (SSL_CTX_set_ciphersuites(b->t->ctx, ep->cipher_suites) != 1)
            return fail_opt_openssl(b, SS_ERR_CONFIG, SS_OPT_CIPHER_SUITES,
                                    "OpenSSL rejects this TLS 1.3 cipher "
                                    "suite list");
        return b->ep->fips140_enabled ? check_fips_suites(b) : SS_OK;
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

/* ---- the trust digest ---------------------------------------------------- */

/*
 * Everything that decides whether a peer is accepted, hashed into
 * t->trust_digest (tlsctx.h): a session or a ticket key made under one
 * digest is never used under another, so a reload that changes any of it
 * starts with full handshakes, and one that changes anything else (the
 * log level, another endpoint) resumes. Each field goes in tagged and
 * length-prefixed, so that two different settings never hash alike; files
 * by path and by content (a CA bundle rewritten in place is new trust).
 */
struct digest {
    EVP_MD_CTX *md;
    struct ctx_build *b;
    enum ss_opt opt; /* whose files are being hashed */
    bool ok;         /* every update succeeded */
};

static void digest_bytes(struct digest *d, const char *tag, const void *p,
                         size_t n)
{
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    d->ok = d->ok && EVP_DigestUpdate(d->md, tag, strlen(tag) + 1) == 1 &&
            EVP_DigestUpdate(d->md, len, sizeof(len)) == 1 &&
            (n == 0 || EVP_DigestUpdate(d->md, p, n) == 1);
}

/* An unset option and an empty value differ. */
static void digest_str(struct digest *d, const char *tag, const char *v)
{
    unsigned char set = v != NULL;
    digest_bytes(d, tag, &set, 1);
    if (v != NULL)
        digest_bytes(d, tag, v, strlen(v));
}

static void digest_int(struct digest *d, const char *tag, long long v)
{
    unsigned char be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (unsigned char)((unsigned long long)v >> (56 - 8 * i));
    digest_bytes(d, tag, be, sizeof(be));
}

/* One file of a list: its name, then what it holds now. */
static int digest_file(const char *file, size_t index, void *arg)
{
    (void)index;
    struct digest *d = arg;
    digest_str(d, "file", file);
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        char what[600];
        snprintf(what, sizeof(what), "cannot read %s: %s", file,
                 strerror(errno));
        return fail_opt(d->b, SS_ERR_IO, d->opt, what);
    }
    unsigned char buf[16384];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        digest_bytes(d, "content", buf, n);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed)
        return fail_opt(d->b, SS_ERR_IO, d->opt, "cannot read a file to "
                        "hash its trust settings");
    return SS_OK;
}

static int digest_files(struct digest *d, enum ss_opt opt, const char *list)
{
    /* The option by number: its name lives in policy.c, which is not in
     * libsecshim-tls.so (include/secshim/tlsapi.h). */
    digest_int(d, "option", (long long)opt);
    digest_str(d, "files", list);
    if (list == NULL)
        return SS_OK;
    d->opt = opt;
    int rc = ss_for_each_file(list, digest_file, d);
    return rc == SS_ERR_NOMEM ? ss_fail(d->b->err, rc, "out of memory") : rc;
}

/* allow-peer, entry by entry as written: a reload that changes it (a
 * narrower list above all) starts with full handshakes, so no session
 * accepted under the old list is resumed under the new one. */
static void digest_allow_peer(struct digest *d,
                              const struct ss_peer_allow *allow)
{
    digest_int(d, "allow-peer", (long long)allow->n);
    for (size_t i = 0; i < allow->n; i++)
        digest_str(d, "allow-peer-id", allow->ids[i].text);
}

static int digest_fields(struct digest *d, bool compat)
{
    const struct ss_endpoint *ep = d->b->ep;
    const struct ss_proto *proto = &ep->proto;
    digest_int(d, "direction", ep->direction);
    SS_GUARD(digest_files(d, SS_OPT_TRUSTED_CA, ep->trusted_ca));
    SS_GUARD(digest_files(d, SS_OPT_TLS_CRL, ep->tls_crl));
    digest_str(d, "tls-target-name", ep->target_name);
    digest_int(d, "tls-target-name-check", ep->target_name_check);
    digest_int(d, "tls-mutual", ep->tls_mutual);
    digest_allow_peer(d, &ep->allow_peer);
    /* A reload that turns x509-strict back on must not resume a session
     * whose chain only the lax profile accepted. */
    digest_int(d, "x509-strict", ep->x509_strict);
    /* Our own certificate only where it is presented (build()). */
    if (d->b->t->role == SS_ROLE_SERVER || ep->tls_mutual) {
        SS_GUARD(digest_files(d, SS_OPT_CERTIFICATE, ep->certificate));
        SS_GUARD(digest_files(d, SS_OPT_CERTIFICATE_KEY,
                              ep->certificate_key));
    }
    digest_int(d, "proto-mode", proto->mode);
    digest_int(d, "proto-versions", proto->versions);
    digest_int(d, "proto-min", proto->min_version);
    digest_int(d, "proto-max", proto->max_version);
    digest_int(d, "proto-level", proto->security_level);
    digest_str(d, "cipher-list", ep->cipher_list);
    digest_str(d, "cipher-suites", ep->cipher_suites);
    digest_int(d, "fips140-enabled", ep->fips140_enabled);
    digest_int(d, "compat", compat);
    return SS_OK;
}

/* SHA-256 from the endpoint's library context: a FIPS endpoint hashes
 * with the FIPS provider too. NULL on failure (OpenSSL's queue says why);
 * EVP_MD_free it. */
static EVP_MD *fetch_sha256(const struct ss_tlsctx *t)
{
    return EVP_MD_fetch(t->libctx, "SHA2-256", t->propq);
}

static int compute_trust_digest(struct ctx_build *b, bool compat)
{
    struct digest d = {.md = EVP_MD_CTX_new(), .b = b, .ok = true};
    unsigned int len = 0;
    ERR_clear_error();
    EVP_MD *sha256 = fetch_sha256(b->t);
    if (d.md == NULL || sha256 == NULL ||
        EVP_DigestInit_ex(d.md, sha256, NULL) != 1) {
        EVP_MD_CTX_free(d.md);
        EVP_MD_free(sha256);
        return ss_fail_openssl(b->err, SS_ERR_TLS,
                               "cannot hash the trust settings");
    }
    int rc = digest_fields(&d, compat);
    if (rc == SS_OK &&
        (!d.ok || EVP_DigestFinal_ex(d.md, b->t->trust_digest, &len) != 1 ||
         len != SS_TRUST_DIGEST_LEN))
        rc = ss_fail_openssl(b->err, SS_ERR_TLS,
                             "cannot hash the trust settings");
    EVP_MD_CTX_free(d.md);
    EVP_MD_free(sha256);
    return rc;
}

/* ---- sessions ---------------------------------------------------------------- */

/* Listen endpoints: a session id context derived from the endpoint name,
 * so that a session made on one endpoint is never resumed on another
 * (OpenSSL checks it at every resumption; mutual TLS needs one). */
static int set_session_id_context(struct ctx_build *b)
{
    unsigned char sid_ctx[EVP_MAX_MD_SIZE];
    unsigned int sid_len = 0;
    const char *name = b->ep->name != NULL ? b->ep->name : "";
    ERR_clear_error();
    EVP_MD *sha256 = fetch_sha256(b->t);
    int ok = sha256 != NULL &&
             EVP_Digest(name, strlen(name), sid_ctx, &sid_len, sha256,
                        NULL) == 1 &&
             sid_len <= SSL_MAX_SID_CTX_LENGTH;
    EVP_MD_free(sha256);
    if (!ok)
        return ss_fail_openssl(b->err, SS_ERR_TLS,
                               "cannot derive a session id context");
    SS_GUARD_OSSL(SSL_CTX_set_session_id_context(b->t->ctx, sid_ctx,
                                                 sid_len),
                  b->err, SS_ERR_TLS, "cannot set the session id context");
    return SS_OK;
}

/* A listen endpoint's tickets: the keys of its name and trust digest,
 * shared with the contexts built for it before (a reload). */
static int set_server_tickets(struct ctx_build *b, struct ss_errbuf *sub)
{
    SS_GUARD(ss_ticket_keys_get(b->ep->name != NULL ? b->ep->name : "",
                                b->t->trust_digest, b->t->libctx,
                                &b->t->tickets, sub));
    return ss_session_server_ctx(b->t->ctx, b->t->tickets, sub);
}

/* session-resumption (docs/protocols.md, "Sessions"): connect endpoints
 * keep their sessions in the process's client cache, listen endpoints
 * issue tickets under the keys of their endpoint and trust digest; off,
 * every handshake is full. */
static int set_sessions(struct ctx_build *b)
{
    bool server = b->t->role == SS_ROLE_SERVER;
    if (server)
        SS_GUARD(set_session_id_context(b));
    b->t->resume = b->ep->session_resumption;
    if (!b->t->resume) {
        ss_session_ctx_off(b->t->ctx, server);
        return SS_OK;
    }
    struct ss_errbuf sub = {{0}};
    int rc = server ? set_server_tickets(b, &sub)
                    : ss_session_client_ctx(b->t->ctx, &sub);
    return rc < 0 ? fail_opt(b, rc, SS_OPT_SESSION_RESUMPTION, sub.msg) : rc;
}

/* FIPS: everything of the endpoint comes from the FIPS library context
 * (fips.h), fetched with "fips=yes"; when it cannot be made, the build
 * fails: there is no silent non-FIPS fallback. The process's default
 * context is left alone (docs/design.md, "FIPS in a library context of
 * its own"). */
static int use_fips(struct ctx_build *b)
{
    struct ss_errbuf sub = {{0}};
    int rc = ss_fips_libctx(&b->t->libctx, &sub);
    if (rc < 0)
        return fail_opt(b, rc, SS_OPT_FIPS140_ENABLED, sub.msg);
    b->t->propq = SS_FIPS_PROPQ;
    return SS_OK;
}

/*
 * The key exchange groups of a FIPS endpoint: the NIST curves and the
 * RFC 7919 finite-field groups, the SP 800-56A schemes. OpenSSL 3.0's
 * FIPS provider also implements X25519 and X448 (and would negotiate
 * them first), which SP 800-56A does not list; they are left out here
 * (docs/fips.md).
 */
#define FIPS_GROUPS "P-256:P-384:P-521:ffdhe2048:ffdhe3072:ffdhe4096:" \
                    "ffdhe6144:ffdhe8192"

static int set_fips_groups(struct ctx_build *b)
{
    ERR_clear_error();
    if (SSL_CTX_set1_groups_list(b->t->ctx, FIPS_GROUPS) != 1)
        return fail_opt_openssl(b, SS_ERR_UNSUPPORTED,
                                SS_OPT_FIPS140_ENABLED,
                                "the FIPS provider offers none of the "
                                "approved key exchange groups");
    return SS_OK;
}

static int create_ctx(struct ctx_build *b)
{
    const SSL_METHOD *method = b->t->role == SS_ROLE_SERVER
                                   ? TLS_server_method()
                                   : TLS_client_method();
    ERR_clear_error();
    b->t->ctx = SSL_CTX_new_ex(b->t->libctx, b->t->propq, method);
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
    /* Read-ahead into OpenSSL's one-record buffer: one recv takes a
     * record's header and body (and what follows, up to the buffer), and
     * a short one says the kernel's queue is empty, so a read returns
     * without another recv to find that out (ss_conn_input_drained;
     * docs/design.md, "Memory and copies"). */
    SSL_CTX_set_read_ahead(b->t->ctx, 1);
    return SS_OK;
}

static int build(struct ctx_build *b, bool compat)
{
    if (b->ep->fips140_enabled)
        SS_GUARD(use_fips(b));
    SS_GUARD(create_ctx(b));
    if (b->ep->fips140_enabled)
        SS_GUARD(set_fips_groups(b));
    SS_GUARD(set_protocol(b));
    SS_GUARD(set_ciphers(b));
    /* Servers always present a certificate; clients only for tls-mutual
     * (a client certificate configured without it is not loaded). */
    if (b->t->role == SS_ROLE_SERVER || b->ep->tls_mutual)
        SS_GUARD(load_certificate(b));
    SS_GUARD(setup_verification(b, compat));
    /* After everything loaded: the files hashed are those just used. */
    SS_GUARD(compute_trust_digest(b, compat));
    SS_GUARD(set_sessions(b));
    return SS_OK;
}

int ss_tlsctx_new(const char *path, const struct ss_endpoint *ep,
                  bool compat, struct ss_tlsctx **out,
                  struct ss_errbuf *err)
{
    *out = NULL;
    if (ep == NULL)
        return ss_fail(err, SS_ERR_INVAL, "no endpoint");
    struct ss_tlsctx *t = ss_calloc(1, sizeof(*t));
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
    /* The context first: it points at the verifier's store and the
     * ticket keys. */
    SSL_CTX_free(t->ctx);
    ss_ticket_keys_put(t->tickets);
    if (t->verifier.store != NULL || t->verifier.trusted_listed != NULL)
        ss_verifier_free(&t->verifier);
    X509_free(t->own_cert);
    /* libctx is the process's FIPS context: kept (fips.h). */
    free(t);
}

time_t ss_tlsctx_not_after(const struct ss_tlsctx *t)
{
    struct tm tm;
    if (t == NULL || t->own_cert == NULL ||
        ASN1_TIME_to_tm(X509_get0_notAfter(t->own_cert), &tm) != 1)
        return 0;
    return timegm(&tm);
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
