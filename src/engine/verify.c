/*
 * verify.c - peer chain verification (see verify.h and docs/verification.md).
 *
 * One verify callback decides for both paths, so `secshim verify` and a
 * handshake can never disagree:
 *   - offline (ss_verify_chain): we own the X509_STORE_CTX and hang a
 *     struct verify_state off our own X509_STORE_CTX ex_data index;
 *   - handshake (ss_verifier_attach + ss_verify_prepare_ssl): libssl owns
 *     the X509_STORE_CTX; the callback reaches the SSL through libssl's
 *     index, the verifier through the SSL_CTX's ex_data and the result
 *     through the SSL's ex_data.
 * The callback applies the two compatibility relaxations (docs/design.md,
 * "Policy snapshots") and records the first fatal error as one sentence.
 * allow-peer is applied by one function too (verify_then_authorize),
 * after X509_verify_cert has accepted the chain: offline directly, in
 * handshakes as the context's certificate verify callback, which libssl
 * calls in place of X509_verify_cert (docs/verification.md).
 */
#include "secshim/verify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "secshim/log.h"

/* What the callback needs, whichever path called it. */
struct verify_state {
    const struct ss_verifier *v;
    struct ss_verify_result *res; /* may be NULL: decide, record nothing */
};

/*
 * ex_data indexes, allocated once per process. OpenSSL has no way to free
 * an index, and one per kind is all we ever need.
 */
static pthread_once_t index_once = PTHREAD_ONCE_INIT;
static int store_ctx_index = -1; /* X509_STORE_CTX -> struct verify_state */
static int ssl_ctx_index = -1;   /* SSL_CTX -> const struct ss_verifier */
static int ssl_index = -1;       /* SSL -> struct ss_verify_result */

static void index_alloc(void)
{
    store_ctx_index = X509_STORE_CTX_get_ex_new_index(0, NULL, NULL, NULL,
                                                      NULL);
    ssl_ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* Returns SS_OK once the indexes exist, or SS_ERR_TLS. */
static int index_ready(struct ss_errbuf *err)
{
    pthread_once(&index_once, index_alloc);
    if (store_ctx_index < 0 || ssl_ctx_index < 0 || ssl_index < 0)
        return ss_fail(err, SS_ERR_TLS,
                       "cannot allocate OpenSSL ex_data indexes");
    return SS_OK;
}

/* ------------------------------------------------------------------ */
/* Loading trusted-ca and tls-crl                                       */

/* Which option a file came from: names it in messages, picks the items. */
enum pem_kind { PEM_CERTS, PEM_CRLS };

static const char *kind_option(enum pem_kind kind)
{
    return kind == PEM_CERTS ? "trusted-ca" : "tls-crl";
}

/* Adds every item of kind from one X509_INFO to the verifier being built.
 * Returns the number added (0 or 1) or a negative error. */
static int add_info(struct ss_verifier *v, X509_INFO *info,
                    enum pem_kind kind)
{
    if (kind == PEM_CERTS) {
        if (info->x509 == NULL)
            return 0;
        ERR_clear_error();
        if (X509_STORE_add_cert(v->store, info->x509) != 1)
            return SS_ERR_TLS;
        if (X509_up_ref(info->x509) != 1)
            return SS_ERR_TLS;
        if (sk_X509_push(v->trusted_listed, info->x509) <= 0) {
            X509_free(info->x509);
            return SS_ERR_NOMEM;
        }
        return 1;
    }
    if (info->crl == NULL)
        return 0;
    ERR_clear_error();
    if (X509_STORE_add_crl(v->store, info->crl) != 1)
        return SS_ERR_TLS;
    return 1;
}

/*
 * Loads one PEM file (certificates or CRLs, several per file allowed).
 * Returns SS_OK, SS_ERR_IO (missing, unreadable, nothing of kind inside) or
 * SS_ERR_TLS / SS_ERR_NOMEM.
 */
static int load_pem_file(struct ss_verifier *v, const char *path,
                         enum pem_kind kind, struct ss_errbuf *err)
{
    const char *option = kind_option(kind);
    if (path[0] == '\0')
        return ss_fail(err, SS_ERR_IO, "%s: empty file name in list",
                       option);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return ss_fail(err, SS_ERR_IO, "%s: cannot open %s: %s", option,
                       path, strerror(errno));
    BIO *bio = BIO_new_fp(f, BIO_CLOSE);
    if (bio == NULL) {
        fclose(f);
        return ss_fail(err, SS_ERR_NOMEM, "%s: out of memory", option);
    }
    ERR_clear_error();
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio_ex(
        bio, NULL, NULL, NULL, v->libctx, v->propq);
    BIO_free(bio);
    if (infos == NULL)
        return ss_fail_openssl(err, SS_ERR_IO, "%s: cannot read %s", option,
                               path);
    int found = 0;
    int rc = SS_OK;
    for (int i = 0; i < sk_X509_INFO_num(infos) && rc == SS_OK; i++) {
        int added = add_info(v, sk_X509_INFO_value(infos, i), kind);
        if (added < 0)
            rc = ss_fail_openssl(err, added, "%s: cannot add %s", option,
                                 path);
        else
            found += added;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    SS_GUARD(rc);
    if (found == 0)
        return ss_fail(err, SS_ERR_IO, "%s: %s holds no %s", option, path,
                       kind == PEM_CERTS ? "certificate" : "CRL");
    return SS_OK;
}

/* What load_one_listed needs besides the file name. */
struct pem_list_load {
    struct ss_verifier *v;
    enum pem_kind kind;
    struct ss_errbuf *err;
};

static int load_one_listed(const char *file, size_t index, void *arg)
{
    (void)index;
    const struct pem_list_load *l = arg;
    return load_pem_file(l->v, file, l->kind, l->err);
}

/* Loads every file of a comma-separated list (blanks around names are
 * ignored). Returns SS_OK or the first file's error. */
static int load_pem_list(struct ss_verifier *v, const char *list,
                         enum pem_kind kind, struct ss_errbuf *err)
{
    struct pem_list_load l = {v, kind, err};
    int rc = ss_for_each_file(list, load_one_listed, &l);
    if (rc == SS_ERR_NOMEM)
        return ss_fail(err, rc, "%s: out of memory", kind_option(kind));
    return rc;
}

static int x509_purpose(enum ss_purpose purpose)
{
    switch (purpose) {
    case SS_PURPOSE_SERVER:
        return X509_PURPOSE_SSL_SERVER;
    case SS_PURPOSE_CLIENT:
        return X509_PURPOSE_SSL_CLIENT;
    default:
        return -1;
    }
}

/* The security level OpenSSL gives a new SSL_CTX (its build default, or
 * the system's openssl.cnf): what a handshake of an endpoint with default
 * protocol settings applies. -1 when no context could be made. Found once
 * per process. */
static pthread_once_t level_once = PTHREAD_ONCE_INIT;
static int new_ctx_level = -1;

static void level_find(void)
{
    SSL_CTX *probe = SSL_CTX_new(TLS_method());
    if (probe != NULL)
        new_ctx_level = SSL_CTX_get_security_level(probe);
    SSL_CTX_free(probe);
    ERR_clear_error();
}

static int default_security_level(struct ss_errbuf *err)
{
    pthread_once(&level_once, level_find);
    if (new_ctx_level < 0)
        return ss_fail(err, SS_ERR_TLS, "verify: cannot find OpenSSL's "
                       "default security level");
    return new_ctx_level;
}

/* Fills the store of a verifier whose fields are already set. Returns SS_OK
 * or a negative error with err filled. */
static int verifier_build(struct ss_verifier *v, const char *trusted_ca,
                          const char *crl, struct ss_errbuf *err)
{
    ERR_clear_error();
    v->store = X509_STORE_new();
    v->trusted_listed = sk_X509_new_null();
    if (v->store == NULL || v->trusted_listed == NULL)
        return ss_fail(err, SS_ERR_NOMEM, "verify: out of memory");
    if (trusted_ca != NULL) {
        SS_GUARD(load_pem_list(v, trusted_ca, PEM_CERTS, err));
    } else {
        ERR_clear_error();
        SS_GUARD_OSSL(X509_STORE_set_default_paths_ex(v->store, v->libctx,
                                                      v->propq), err,
                      SS_ERR_TLS, "cannot load the system's default CAs");
    }
    if (v->crl_check) {
        SS_GUARD(load_pem_list(v, crl, PEM_CRLS, err));
        /* The whole chain: a CA without a CRL then fails (fail closed). */
        ERR_clear_error();
        SS_GUARD_OSSL(X509_STORE_set_flags(v->store,
                                           X509_V_FLAG_CRL_CHECK |
                                           X509_V_FLAG_CRL_CHECK_ALL),
                      err, SS_ERR_TLS, "cannot enable CRL checking");
    }
    ERR_clear_error();
    SS_GUARD_OSSL(X509_STORE_set_purpose(v->store, x509_purpose(v->purpose)),
                  err, SS_ERR_TLS, "cannot set the certificate purpose");
    return SS_OK;
}

/*
 * Builds v completely, then publishes it: on failure *v is left zeroed.
 * Returns SS_OK, SS_ERR_IO (a file is missing or holds nothing usable),
 * SS_ERR_INVAL, SS_ERR_NOMEM or SS_ERR_TLS; err names the file.
 */
int ss_verifier_init(struct ss_verifier *v, const char *trusted_ca,
                     const char *crl, enum ss_purpose purpose, bool compat,
                     struct ss_errbuf *err)
{
    return ss_verifier_init_ex(v, NULL, NULL, trusted_ca, crl, purpose,
                               compat, err);
}

int ss_verifier_init_ex(struct ss_verifier *v, OSSL_LIB_CTX *libctx,
                        const char *propq, const char *trusted_ca,
                        const char *crl, enum ss_purpose purpose,
                        bool compat, struct ss_errbuf *err)
{
    SS_ENSURE(v != NULL, SS_ERR_INVAL);
    memset(v, 0, sizeof(*v));
    if (x509_purpose(purpose) < 0)
        return ss_fail(err, SS_ERR_INVAL, "verify: unknown purpose %d",
                       (int)purpose);
    int level = default_security_level(err);
    SS_GUARD(level);
    struct ss_verifier built = {
        .purpose = purpose,
        .crl_check = crl != NULL,
        .compat = compat,
        .x509_strict = true,
        .security_level = level,
        .libctx = libctx,
        .propq = propq,
    };
    int rc = verifier_build(&built, trusted_ca, crl, err);
    if (rc < 0) {
        ss_verifier_free(&built);
        return rc;
    }
    *v = built;
    return SS_OK;
}

/* Frees what v owns and zeroes it; safe on a zeroed or freed verifier. */
void ss_verifier_free(struct ss_verifier *v)
{
    if (v == NULL)
        return;
    X509_STORE_free(v->store);
    sk_X509_pop_free(v->trusted_listed, X509_free);
    memset(v, 0, sizeof(*v));
}

/* ------------------------------------------------------------------ */
/* The verify callback                                                  */

/* "CN = name, O = org" of name into buf ("(empty)" for an empty one). */
static void name_line(const X509_NAME *name, char *buf, size_t len)
{
    snprintf(buf, len, "(empty)");
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem == NULL)
        return;
    /* Keep UTF-8 readable instead of escaping every high byte. */
    unsigned long flags = XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB;
    if (X509_NAME_print_ex(mem, name, 0, flags) >= 0) {
        char *data = NULL;
        long n = BIO_get_mem_data(mem, &data);
        if (n > 0 && data != NULL)
            snprintf(buf, len, "%.*s", (int)n, data);
    }
    BIO_free(mem);
}

/* "CN = name, O = org" of cert into buf ("(no certificate)" for NULL). */
static void subject_line(X509 *cert, char *buf, size_t len)
{
    snprintf(buf, len, "(no certificate)");
    if (cert != NULL)
        name_line(X509_get_subject_name(cert), buf, len);
}

static bool is_trusted_listed(const struct ss_verifier *v, X509 *cert)
{
    if (cert == NULL || v->trusted_listed == NULL)
        return false;
    for (int i = 0; i < sk_X509_num(v->trusted_listed); i++) {
        if (X509_cmp(sk_X509_value(v->trusted_listed, i), cert) == 0)
            return true;
    }
    return false;
}

/* Index of relaxation r in relaxed_subject[]. */
static int relax_slot(enum ss_relaxation r)
{
    return r == SS_RELAX_REVOKED_TRUSTED_CA ? 0 : 1;
}

static void record_relaxation(struct ss_verify_result *res,
                              enum ss_relaxation r, const char *subject)
{
    if (res == NULL || (res->relaxations & (unsigned)r) != 0)
        return;
    res->relaxations |= (unsigned)r;
    snprintf(res->relaxed_subject[relax_slot(r)],
             sizeof(res->relaxed_subject[0]), "%s", subject);
}

/* The relaxation compat mode may apply to this failure, or 0. */
static unsigned relaxation_for(const struct ss_verifier *v,
                               X509_STORE_CTX *ctx, int error, int depth)
{
    if (!v->compat)
        return 0;
    switch (error) {
    case X509_V_ERR_CERT_REVOKED:
        if (depth > 0 &&
            is_trusted_listed(v, X509_STORE_CTX_get_current_cert(ctx)))
            return SS_RELAX_REVOKED_TRUSTED_CA;
        return 0;
    case X509_V_ERR_INVALID_PURPOSE:
        return SS_RELAX_KEY_USAGE;
    case X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE:
        return depth == 0 ? SS_RELAX_KEY_USAGE : 0;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ */
/* The RFC 5280 profile, the security level and name constraints:       */
/* the sentences of their rejections (docs/verification.md, the table)  */

/* snprintf for sentences that may be cut at the end of buf: a reason is
 * one bounded line, and its start says what matters. */
static void say(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* What a reason needs to know about the certificate it is about. */
struct about {
    const struct ss_verifier *v;
    X509_STORE_CTX *ctx;
    X509 *cert;
    int depth;
    const char *subject;
};

/* "the server certificate 'CN = a'", "intermediate CA 'CN = b'" or "root
 * CA 'CN = c'": what a PKI owner calls the certificate at depth. */
static void cert_role(const struct ss_verifier *v, X509_STORE_CTX *ctx,
                      X509 *cert, int depth, const char *subject,
                      char *buf, size_t len)
{
    if (depth == 0) {
        say(buf, len, "the %s certificate '%s'",
            v->purpose == SS_PURPOSE_CLIENT ? "client" : "server",
            subject);
        return;
    }
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    bool top = chain != NULL && depth == sk_X509_num(chain) - 1;
    bool root = top && cert != NULL && X509_self_signed(cert, 0) == 1;
    say(buf, len, "%s CA '%s'", root ? "root" : "intermediate",
        subject);
}

static const char strict_hint[] =
    "; set x509-strict = false to accept a legacy chain";

/* The RFC 5280 rules OpenSSL checks under X509_V_FLAG_X509_STRICT (and
 * one it checks in every chain of two or more: explicit EC parameters):
 * the code, what the certificate does wrong, and the section. */
struct strict_rule {
    int error;
    const char *what;
    const char *section;
    bool always; /* OpenSSL checks it without the flag too: no hint */
};

static const struct strict_rule strict_rules[] = {
    {X509_V_ERR_CA_BCONS_NOT_CRITICAL,
     "has a basicConstraints extension that is not marked critical",
     "4.2.1.9", false},
    {X509_V_ERR_CA_CERT_MISSING_KEY_USAGE,
     "is a CA without a keyUsage extension", "4.2.1.3", false},
    {X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA,
     "is not a CA but its keyUsage asserts keyCertSign", "4.2.1.3", false},
    {X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA,
     "has a pathLenConstraint but is not a CA", "4.2.1.9", false},
    {X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN,
     "has a pathLenConstraint but its keyUsage does not assert keyCertSign",
     "4.2.1.9", false},
    {X509_V_ERR_ISSUER_NAME_EMPTY, "has an empty issuer name", "4.1.2.4",
     false},
    {X509_V_ERR_SUBJECT_NAME_EMPTY,
     "has an empty subject name (a CA, a CRL signer or a certificate "
     "without subjectAltName needs one)", "4.1.2.6", false},
    {X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL,
     "has an empty subject name and a subjectAltName that is not marked "
     "critical", "4.2.1.6", false},
    {X509_V_ERR_EMPTY_SUBJECT_ALT_NAME,
     "has a subjectAltName extension without any name", "4.2.1.6", false},
    {X509_V_ERR_SIGNATURE_ALGORITHM_INCONSISTENCY,
     "names one signature algorithm in its signed part and another outside "
     "it", "4.1.1.2", false},
    {X509_V_ERR_AUTHORITY_KEY_IDENTIFIER_CRITICAL,
     "has an authorityKeyIdentifier marked critical", "4.2.1.1", false},
    {X509_V_ERR_SUBJECT_KEY_IDENTIFIER_CRITICAL,
     "has a subjectKeyIdentifier marked critical", "4.2.1.2", false},
    {X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER,
     "has no authorityKeyIdentifier with a keyIdentifier", "4.2.1.1", false},
    {X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER,
     "has no subjectKeyIdentifier", "4.2.1.2", false},
    {X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3,
     "has extensions but is not a version 3 certificate", "4.1.2.1", false},
    {X509_V_ERR_EC_KEY_EXPLICIT_PARAMS,
     "has an EC key with explicit curve parameters instead of a named "
     "curve", "4.1.2.7, RFC 5480 2.1.1", true},
};

static const struct strict_rule *strict_rule_for(int error)
{
    for (size_t i = 0; i < sizeof(strict_rules) / sizeof(strict_rules[0]);
         i++)
        if (strict_rules[i].error == error)
            return &strict_rules[i];
    return NULL;
}

/* An invalid CA (X509_V_ERR_INVALID_CA): why this one is not a CA. The
 * hint only where x509-strict = false would accept it: the trust anchor
 * (top of the chain) that OpenSSL's lax mode still takes as a CA
 * (X509_check_ca > 1: a version 1 root, keyUsage keyCertSign without
 * basicConstraints). Lax mode refuses such an intermediate as well. */
static void invalid_ca_reason(const struct about *a, const char *role,
                              char *buf, size_t len)
{
    long version = X509_get_version(a->cert) + 1;
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(a->ctx);
    bool anchor = chain != NULL && a->depth == sk_X509_num(chain) - 1;
    const char *hint = anchor && X509_check_ca(a->cert) > 1 ? strict_hint
                                                             : "";
    uint32_t flags = X509_get_extension_flags(a->cert);
    if (version < 3) {
        say(buf, len, "%s is a version %ld certificate, which cannot "
            "be a CA (RFC 5280 4.1.2.1)%s", role, version, hint);
        return;
    }
    if ((flags & EXFLAG_BCONS) == 0) {
        say(buf, len, "%s has no basicConstraints extension, so it is "
            "not a CA (RFC 5280 4.2.1.9)%s", role, hint);
        return;
    }
    if ((flags & EXFLAG_CA) == 0) {
        say(buf, len, "%s issues certificates but its basicConstraints "
            "says CA:FALSE (RFC 5280 4.2.1.9)", role);
        return;
    }
    say(buf, len, "%s is not a valid CA: its keyUsage does not allow "
        "keyCertSign (RFC 5280 4.2.1.3)", role);
}

/* Bits of security of each level (SSL_CTX_set_security_level(3)). */
static int level_bits(int level)
{
    static const int bits[] = {0, 80, 112, 128, 192, 256};
    if (level < 0)
        return 0;
    return level > 5 ? 256 : bits[level];
}

/* Smallest RSA / DSA modulus of a level, in bits. */
static int level_modulus(int level)
{
    static const int modulus[] = {0, 1024, 2048, 3072, 7680, 15360};
    if (level < 0)
        return 0;
    return level > 5 ? 15360 : modulus[level];
}

/* "RSA 1024 bits", "EC prime192v1 (192 bits)", "DSA 1024 bits" ... and the
 * smallest key of that kind the level takes. */
static void key_words(EVP_PKEY *key, int level, char *what, size_t wlen,
                      char *need, size_t nlen)
{
    int bits = EVP_PKEY_get_bits(key);
    int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_EC) {
        char curve[64] = "?";
        size_t n = 0;
        if (EVP_PKEY_get_group_name(key, curve, sizeof(curve), &n) != 1)
            snprintf(curve, sizeof(curve), "with explicit parameters");
        snprintf(what, wlen, "EC %s (%d bits)", curve, bits);
        snprintf(need, nlen, "a curve of at least %d bits",
                 2 * level_bits(level));
        return;
    }
    const char *name = id == EVP_PKEY_RSA   ? "RSA"
                       : id == EVP_PKEY_DSA ? "DSA"
                       : id == EVP_PKEY_DH  ? "DH"
                                            : EVP_PKEY_get0_type_name(key);
    snprintf(what, wlen, "%s %d bits", name != NULL ? name : "?", bits);
    if (id == EVP_PKEY_RSA || id == EVP_PKEY_DSA || id == EVP_PKEY_DH)
        snprintf(need, nlen, "at least %d bits", level_modulus(level));
    else
        snprintf(need, nlen, "at least %d bits of security",
                 level_bits(level));
}

/* A key (EE_KEY_TOO_SMALL, CA_KEY_TOO_SMALL) or a signature
 * (CA_MD_TOO_WEAK) below the verifier's security level. */
static void level_reason(const struct about *a, int error, const char *role,
                         char *buf, size_t len)
{
    int level = a->v->security_level;
    if (error == X509_V_ERR_CA_MD_TOO_WEAK) {
        int mdnid = NID_undef, secbits = -1;
        if (X509_get_signature_info(a->cert, &mdnid, NULL, &secbits, NULL)
            != 1)
            ERR_clear_error();
        const char *md = mdnid != NID_undef ? OBJ_nid2sn(mdnid) : "?";
        say(buf, len, "%s is signed with %s (%d bits of security), "
            "below security level %d (at least %d bits); reissue it "
            "with SHA-256 or better", role, md, secbits, level,
            level_bits(level));
        return;
    }
    char what[96] = "?", need[96] = "?";
    EVP_PKEY *key = X509_get0_pubkey(a->cert);
    if (key != NULL)
        key_words(key, level, what, sizeof(what), need, sizeof(need));
    ERR_clear_error();
    say(buf, len, "the key of %s is %s, below security level %d (%s); "
        "reissue it with a stronger key", role, what, level, need);
}

/* ---- name constraints ------------------------------------------------ */

/* The names OpenSSL compares with constraints: one GENERAL_NAME of the
 * SAN, or the subject as a directoryName. */
static const char *gen_type_name(int type)
{
    switch (type) {
    case GEN_DNS: return "DNS name";
    case GEN_IPADD: return "IP address";
    case GEN_DIRNAME: return "directory name";
    case GEN_EMAIL: return "email address";
    case GEN_URI: return "URI";
    default: return "name";
    }
}

/* Writes one name (base: a constraint, whose IP form is address/mask). */
static void gen_line(const GENERAL_NAME *g, bool base, char *buf, size_t len)
{
    say(buf, len, "?");
    switch (g->type) {
    case GEN_DNS:
    case GEN_EMAIL:
    case GEN_URI: {
        const ASN1_IA5STRING *s = g->d.ia5;
        say(buf, len, "%.*s", ASN1_STRING_length(s),
            (const char *)ASN1_STRING_get0_data(s));
        return;
    }
    case GEN_DIRNAME:
        name_line(g->d.directoryName, buf, len);
        return;
    case GEN_IPADD: {
        const unsigned char *p = ASN1_STRING_get0_data(g->d.iPAddress);
        int n = ASN1_STRING_length(g->d.iPAddress);
        int alen = base ? n / 2 : n;
        int af = alen == 4 ? AF_INET : alen == 16 ? AF_INET6 : -1;
        char addr[INET6_ADDRSTRLEN] = "?", mask[INET6_ADDRSTRLEN] = "?";
        if (af < 0)
            return;
        inet_ntop(af, p, addr, sizeof(addr));
        if (!base) {
            say(buf, len, "%s", addr);
            return;
        }
        inet_ntop(af, p + alen, mask, sizeof(mask));
        say(buf, len, "%s/%s", addr, mask);
        return;
    }
    default:
        return;
    }
}

/* RFC 5280 4.2.1.10 for one name and one base of the same type, as
 * OpenSSL compares them (crypto/x509/v3_ncons.c): DNS by whole trailing
 * labels, IP by address and mask, directory names by leading RDNs. Only
 * used to say which name broke which constraint: OpenSSL decides. */
/* ASCII only, whatever the program's locale (DNS names are ASCII). */
static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool dns_within(const ASN1_IA5STRING *name, const ASN1_IA5STRING *base)
{
    int n = ASN1_STRING_length(name), b = ASN1_STRING_length(base);
    const char *np = (const char *)ASN1_STRING_get0_data(name);
    const char *bp = (const char *)ASN1_STRING_get0_data(base);
    if (b == 0)
        return true;
    if (n < b)
        return false;
    const char *tail = np + (n - b);
    if (n > b && bp[0] != '.' && tail[-1] != '.')
        return false;
    for (int i = 0; i < b; i++)
        if (ascii_lower(tail[i]) != ascii_lower(bp[i]))
            return false;
    return true;
}

static bool ip_within(const ASN1_OCTET_STRING *ip,
                      const ASN1_OCTET_STRING *base)
{
    int n = ASN1_STRING_length(ip);
    if (ASN1_STRING_length(base) != 2 * n)
        return false;
    const unsigned char *a = ASN1_STRING_get0_data(ip);
    const unsigned char *b = ASN1_STRING_get0_data(base);
    for (int i = 0; i < n; i++)
        if ((a[i] & b[n + i]) != b[i])
            return false;
    return true;
}

static bool dn_within(const X509_NAME *name, const X509_NAME *base)
{
    int nb = X509_NAME_entry_count(base);
    if (nb > X509_NAME_entry_count(name))
        return false;
    X509_NAME *head = X509_NAME_dup(name);
    if (head == NULL)
        return false;
    while (X509_NAME_entry_count(head) > nb)
        X509_NAME_ENTRY_free(X509_NAME_delete_entry(
            head, X509_NAME_entry_count(head) - 1));
    bool within = X509_NAME_cmp(head, base) == 0;
    X509_NAME_free(head);
    return within;
}

/* Whether name lies within base; false for types we do not compare. */
static bool gen_within(const GENERAL_NAME *name, const GENERAL_NAME *base)
{
    if (name->type != base->type)
        return false;
    switch (name->type) {
    case GEN_DNS: return dns_within(name->d.dNSName, base->d.dNSName);
    case GEN_IPADD: return ip_within(name->d.iPAddress, base->d.iPAddress);
    case GEN_DIRNAME:
        return dn_within(name->d.directoryName, base->d.directoryName);
    default: return false;
    }
}

/* What one name does against one CA's constraints. */
struct nc_finding {
    bool found;
    bool excluded;              /* inside an excluded subtree */
    char name[256];
    int type;
    char subtrees[256];         /* the permitted ones of its type, or the
                                 * excluded one it falls in */
};

/* Fills f when name breaks nc: within an excluded subtree, or outside
 * every permitted subtree of its type (when there are some). */
static void nc_judge(const NAME_CONSTRAINTS *nc, const GENERAL_NAME *name,
                     struct nc_finding *f)
{
    if (f->found || name->type == GEN_OTHERNAME)
        return;
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->excludedSubtrees); i++) {
        const GENERAL_NAME *base =
            sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, i)->base;
        if (gen_within(name, base)) {
            f->found = f->excluded = true;
            gen_line(base, true, f->subtrees, sizeof(f->subtrees));
            break;
        }
    }
    if (!f->found) {
        size_t used = 0;
        bool typed = false, inside = false;
        f->subtrees[0] = '\0';
        for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees);
             i++) {
            const GENERAL_NAME *base =
                sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i)->base;
            if (base->type != name->type)
                continue;
            typed = true;
            inside = inside || gen_within(name, base);
            char one[128];
            gen_line(base, true, one, sizeof(one));
            if (used < sizeof(f->subtrees))
                used += (size_t)snprintf(f->subtrees + used,
                                         sizeof(f->subtrees) - used, "%s%s",
                                         used > 0 ? ", " : "", one);
        }
        f->found = typed && !inside;
    }
    if (f->found) {
        f->type = name->type;
        gen_line(name, false, f->name, sizeof(f->name));
    }
}

/* The name of cert that breaks nc: its SAN entries, then its subject. */
static void nc_find(X509 *cert, const NAME_CONSTRAINTS *nc,
                    struct nc_finding *f)
{
    GENERAL_NAMES *san = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL,
                                          NULL);
    for (int i = 0; i < sk_GENERAL_NAME_num(san) && !f->found; i++)
        nc_judge(nc, sk_GENERAL_NAME_value(san, i), f);
    GENERAL_NAMES_free(san);
    const X509_NAME *subject = X509_get_subject_name(cert);
    if (!f->found && X509_NAME_entry_count(subject) > 0) {
        GENERAL_NAME dn = {.type = GEN_DIRNAME};
        dn.d.directoryName = (X509_NAME *)subject;
        nc_judge(nc, &dn, f);
    }
    ERR_clear_error();
}

/*
 * X509_V_ERR_PERMITTED_VIOLATION / EXCLUDED_VIOLATION: OpenSSL reports the
 * certificate whose name breaks a constraint, not the CA that set it nor
 * the name. The CA is the one above whose constraints OpenSSL itself
 * refuses the certificate with (NAME_CONSTRAINTS_check); the name is found
 * by comparing each one with that CA's subtrees.
 */
static bool name_constraint_reason(const struct about *a, const char *role,
                                   char *buf, size_t len)
{
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(a->ctx);
    for (int j = sk_X509_num(chain) - 1; j > a->depth; j--) {
        X509 *ca = sk_X509_value(chain, j);
        NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca, NID_name_constraints,
                                                NULL, NULL);
        if (nc == NULL)
            continue;
        if (NAME_CONSTRAINTS_check(a->cert, nc) == X509_V_OK) {
            NAME_CONSTRAINTS_free(nc);
            continue;
        }
        struct nc_finding f = {0};
        nc_find(a->cert, nc, &f);
        NAME_CONSTRAINTS_free(nc);
        char ca_subject[256], ca_role[320];
        subject_line(ca, ca_subject, sizeof(ca_subject));
        cert_role(a->v, a->ctx, ca, j, ca_subject, ca_role, sizeof(ca_role));
        if (!f.found)
            say(buf, len, "%s violates the nameConstraints of %s "
                "(RFC 5280 4.2.1.10)", role, ca_role);
        else if (f.excluded)
            say(buf, len, "%s has %s '%s', which is inside the "
                "excluded %s subtree '%s' of the nameConstraints of %s "
                "(RFC 5280 4.2.1.10)", role, gen_type_name(f.type),
                f.name, gen_type_name(f.type), f.subtrees, ca_role);
        else
            say(buf, len, "%s has %s '%s', which is outside the "
                "permitted %s subtrees (%s) of the nameConstraints of "
                "%s (RFC 5280 4.2.1.10)", role, gen_type_name(f.type),
                f.name, gen_type_name(f.type), f.subtrees, ca_role);
        ERR_clear_error();
        return true;
    }
    ERR_clear_error();
    return false;
}

/*
 * The sentence of a profile, level or name-constraint rejection into buf;
 * false for other errors (the caller says it OpenSSL's way).
 */
static bool profile_reason(const struct about *a, int error, char *buf,
                           size_t len)
{
    if (a->cert == NULL)
        return false;
    char role[320];
    cert_role(a->v, a->ctx, a->cert, a->depth, a->subject, role,
              sizeof(role));
    const struct strict_rule *rule = strict_rule_for(error);
    if (rule != NULL) {
        say(buf, len, "%s %s (RFC 5280 %s)%s", role, rule->what,
       rule->section, rule->always ? "" : strict_hint);
        return true;
    }
    switch (error) {
    case X509_V_ERR_INVALID_CA:
        invalid_ca_reason(a, role, buf, len);
        return true;
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
    case X509_V_ERR_CA_MD_TOO_WEAK:
        level_reason(a, error, role, buf, len);
        return true;
    case X509_V_ERR_PERMITTED_VIOLATION:
    case X509_V_ERR_EXCLUDED_VIOLATION:
        return name_constraint_reason(a, role, buf, len);
    default:
        return false;
    }
}

/* ---- checks OpenSSL does not make ------------------------------------ */

/* RFC 5280 4.1.2.2: a positive integer of at most 20 octets. Returns
 * NULL when serial complies, else what is wrong with it. */
static const char *serial_problem(const ASN1_INTEGER *serial)
{
    if (serial == NULL)
        return "has no serial number";
    if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER)
        return "has a negative serial number";
    const unsigned char *p = ASN1_STRING_get0_data(serial);
    int n = ASN1_STRING_length(serial);
    bool zero = true;
    for (int i = 0; i < n; i++)
        zero = zero && p[i] == 0;
    if (zero)
        return "has serial number 0";
    /* DER content octets: the magnitude, plus a leading 0x00 when its top
     * bit is set (so that it does not read as negative). */
    int octets = n + ((p[0] & 0x80) != 0 ? 1 : 0);
    if (octets > 20)
        return "has a serial number longer than 20 octets";
    return NULL;
}

/*
 * Our own rules of the profile on one certificate (docs/verification.md):
 * its serial number, and version 3. Returns true when cert complies, else
 * false with the sentence in buf.
 */
static bool own_rules_hold(const struct about *a, char *buf, size_t len)
{
    char role[320];
    cert_role(a->v, a->ctx, a->cert, a->depth, a->subject, role,
              sizeof(role));
    const char *serial = serial_problem(X509_get0_serialNumber(a->cert));
    if (serial != NULL) {
        say(buf, len, "%s %s (RFC 5280 4.1.2.2: a positive integer of "
            "at most 20 octets)%s", role, serial, strict_hint);
        return false;
    }
    long version = X509_get_version(a->cert) + 1;
    if (version != 3) {
        say(buf, len, "%s is a version %ld certificate; the profile "
            "takes only version 3 (RFC 5280 4.1.2.1)%s", role, version,
            strict_hint);
        return false;
    }
    return true;
}

/* The sentence for a name mismatch, naming what was expected. */
static void mismatch_reason(X509_STORE_CTX *ctx, int error,
                            const char *subject, char *buf, size_t len)
{
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    if (error == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        char *ip = X509_VERIFY_PARAM_get1_ip_asc(param);
        snprintf(buf, len,
                 "certificate does not match IP address '%s' (subject %s)",
                 ip != NULL ? ip : "?", subject);
        OPENSSL_free(ip);
        return;
    }
    const char *host = X509_VERIFY_PARAM_get0_host(param, 0);
    snprintf(buf, len,
             "certificate does not match host name '%s' (subject %s)",
             host != NULL ? host : "?", subject);
}

/* Records the first fatal error; later ones are consequences. */
static void record_fatal(const struct ss_verifier *v,
                         struct ss_verify_result *res, X509_STORE_CTX *ctx,
                         int error, int depth, const char *subject)
{
    if (res == NULL)
        return;
    res->ok = false;
    if (res->x509_error != X509_V_OK)
        return;
    res->x509_error = error;
    res->error_depth = depth;
    if (error == X509_V_ERR_HOSTNAME_MISMATCH ||
        error == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        mismatch_reason(ctx, error, subject, res->reason,
                        sizeof(res->reason));
        return;
    }
    struct about a = {v, ctx, X509_STORE_CTX_get_current_cert(ctx), depth,
                      subject};
    if (profile_reason(&a, error, res->reason, sizeof(res->reason)))
        return;
    snprintf(res->reason, sizeof(res->reason), "%s at depth %d (subject %s)",
             X509_verify_cert_error_string(error), depth, subject);
}

static void log_relaxation(enum ss_relaxation r, int error, int depth,
                           const char *subject)
{
    if (r == SS_RELAX_REVOKED_TRUSTED_CA) {
        ss_log(SS_LOG_WARNING,
               "compatibility mode: accepted revoked CA certificate listed "
               "in trusted-ca: %s", subject);
        return;
    }
    ss_log(SS_LOG_WARNING,
           "compatibility mode: accepted key usage / extended key usage "
           "that does not fit the purpose (%s) at depth %d: %s",
           X509_verify_cert_error_string(error), depth, subject);
}

/* Finds the verifier and result for ctx, whichever path is verifying. */
static bool find_state(X509_STORE_CTX *ctx, struct verify_state *out)
{
    const struct verify_state *own = X509_STORE_CTX_get_ex_data(
        ctx, store_ctx_index);
    if (own != NULL) {
        *out = *own;
        return true;
    }
    SSL *ssl = X509_STORE_CTX_get_ex_data(
        ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (ssl == NULL)
        return false;
    out->v = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ssl_ctx_index);
    out->res = SSL_get_ex_data(ssl, ssl_index);
    return out->v != NULL;
}

static int verify_cb(int preverify_ok, X509_STORE_CTX *ctx)
{
    struct verify_state st;
    /* Without our state nobody asked for relaxations: OpenSSL decides. */
    if (!find_state(ctx, &st))
        return preverify_ok;
    int depth = X509_STORE_CTX_get_error_depth(ctx);
    if (preverify_ok) {
        /* internal_verify reports success last for the leaf. */
        if (depth == 0 && st.res != NULL && st.res->x509_error == X509_V_OK)
            st.res->ok = true;
        return 1;
    }
    int error = X509_STORE_CTX_get_error(ctx);
    char subject[256];
    subject_line(X509_STORE_CTX_get_current_cert(ctx), subject,
                 sizeof(subject));
    unsigned relax = relaxation_for(st.v, ctx, error, depth);
    if (relax == 0) {
        record_fatal(st.v, st.res, ctx, error, depth, subject);
        return 0;
    }
    record_relaxation(st.res, (enum ss_relaxation)relax, subject);
    log_relaxation((enum ss_relaxation)relax, error, depth, subject);
    /* OpenSSL keeps the error in ctx otherwise; the chain is accepted. */
    X509_STORE_CTX_set_error(ctx, X509_V_OK);
    return 1;
}

/* ------------------------------------------------------------------ */
/* allow-peer                                                           */

/* Room for the identities a refusal names; the rest is " ...". */
#define PRESENTED_MAX 384

/* What one allow-peer check has seen of the certificate. */
struct peer_check {
    const struct ss_peer_allow *allow;
    bool matched;
    size_t n_presented;
    char presented[PRESENTED_MAX];
    size_t used;
    bool truncated;
};

/* Appends text (n bytes) to the description, control bytes escaped. */
static void describe_bytes(struct peer_check *pc, const unsigned char *p,
                           size_t n)
{
    for (size_t i = 0; i < n && !pc->truncated; i++) {
        char esc[5] = {(char)p[i], '\0'};
        if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
            snprintf(esc, sizeof(esc), "\\x%02x", p[i]);
        size_t len = strlen(esc);
        if (pc->used + len >= sizeof(pc->presented)) {
            pc->truncated = true;
            break;
        }
        memcpy(pc->presented + pc->used, esc, len + 1);
        pc->used += len;
    }
}

static void describe(struct peer_check *pc, enum ss_peer_id_kind kind,
                     const unsigned char *value, size_t len)
{
    const char *sep = pc->n_presented++ > 0 ? ", " : "";
    describe_bytes(pc, (const unsigned char *)sep, strlen(sep));
    const char *prefix = ss_peer_id_prefix(kind);
    describe_bytes(pc, (const unsigned char *)prefix, strlen(prefix));
    if (kind != SS_PEER_ID_IP) {
        describe_bytes(pc, value, len);
        return;
    }
    char ip[INET6_ADDRSTRLEN] = "?";
    if (len == 4 || len == 16)
        inet_ntop(len == 4 ? AF_INET : AF_INET6, value, ip, sizeof(ip));
    describe_bytes(pc, (const unsigned char *)ip, strlen(ip));
}

/* One identity the certificate presents: matched against every entry
 * until one matches, and described for the refusal otherwise. */
static void consider(struct peer_check *pc, enum ss_peer_id_kind kind,
                     const unsigned char *value, size_t len)
{
    if (pc->matched)
        return;
    for (size_t i = 0; i < pc->allow->n; i++) {
        if (ss_peer_id_matches(&pc->allow->ids[i], kind, value, len)) {
            pc->matched = true;
            return;
        }
    }
    describe(pc, kind, value, len);
}

/* The subject's CN, OU and O values, in DN order, as UTF-8. A value that
 * cannot be converted is presented as nothing: it matches no entry (fail
 * closed). */
static void consider_subject(struct peer_check *pc, X509 *leaf)
{
    const X509_NAME *name = X509_get_subject_name(leaf);
    for (int i = 0; i < X509_NAME_entry_count(name) && !pc->matched; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        enum ss_peer_id_kind kind;
        switch (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e))) {
        case NID_commonName: kind = SS_PEER_ID_CN; break;
        case NID_organizationalUnitName: kind = SS_PEER_ID_OU; break;
        case NID_organizationName: kind = SS_PEER_ID_O; break;
        default: continue;
        }
        unsigned char *utf8 = NULL;
        int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
        if (len < 0) {
            ERR_clear_error();
            continue;
        }
        consider(pc, kind, utf8, (size_t)len);
        OPENSSL_free(utf8);
    }
}

/*
 * The leaf's subjectAltName into *out (NULL when it has none). Returns
 * SS_OK, or SS_ERR_VERIFY when the extension is there but cannot be read
 * (or is there twice): nothing of the certificate can then be trusted to
 * match, not even its subject (fail closed).
 */
static int read_san(X509 *leaf, GENERAL_NAMES **out, char *why,
                    size_t why_len)
{
    int crit = -1;
    *out = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
    if (*out != NULL || crit == -1) {
        ERR_clear_error();
        return SS_OK;
    }
    ERR_clear_error();
    if (why != NULL)
        snprintf(why, why_len, "the peer's certificate has a subjectAltName "
                 "that cannot be read, so it matches no allow-peer "
                 "identity");
    return SS_ERR_VERIFY;
}

/* The subjectAltName's DNS, URI and IP entries, in order. */
static void consider_san(struct peer_check *pc, const GENERAL_NAMES *gens)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(gens) && !pc->matched; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        enum ss_peer_id_kind kind;
        const ASN1_STRING *v;
        switch (g->type) {
        case GEN_DNS: kind = SS_PEER_ID_DNS; v = g->d.dNSName; break;
        case GEN_URI:
            kind = SS_PEER_ID_URI;
            v = g->d.uniformResourceIdentifier;
            break;
        case GEN_IPADD: kind = SS_PEER_ID_IP; v = g->d.iPAddress; break;
        default: continue;
        }
        consider(pc, kind, ASN1_STRING_get0_data(v),
                 (size_t)ASN1_STRING_length(v));
    }
}

/*
 * allow-peer on a leaf whose chain was verified (verify.h). Returns SS_OK
 * (an identity matches, or there is no list), SS_ERR_VERIFY (none does,
 * or the subjectAltName cannot be read; why says which) or SS_ERR_INVAL
 * (no leaf).
 */
int ss_verify_allow_peer(const struct ss_peer_allow *allow, X509 *leaf,
                         char *why, size_t why_len)
{
    if (why != NULL && why_len > 0)
        why[0] = '\0';
    SS_ENSURE(leaf != NULL, SS_ERR_INVAL);
    if (allow == NULL || allow->n == 0)
        return SS_OK;
    GENERAL_NAMES *gens = NULL;
    SS_GUARD(read_san(leaf, &gens, why, why_len));
    struct peer_check pc = {.allow = allow};
    consider_subject(&pc, leaf);
    consider_san(&pc, gens);
    GENERAL_NAMES_free(gens);
    if (pc.matched)
        return SS_OK;
    if (why != NULL && pc.n_presented == 0)
        snprintf(why, why_len, "the peer's certificate presents no subject "
                 "CN, OU or O and no subjectAltName DNS, URI or IP, so it "
                 "matches no allow-peer identity");
    else if (why != NULL)
        snprintf(why, why_len, "none of the identities the peer's "
                 "certificate presents (%s%s) matches allow-peer",
                 pc.presented, pc.truncated ? " ..." : "");
    return SS_ERR_VERIFY;
}

/*
 * The profile of v on one verification, set by the one function both
 * paths run (verify_then_authorize): X509_V_FLAG_X509_STRICT with
 * x509-strict, and v's security level for keys and signatures. In a
 * handshake this replaces what libssl set from the SSL's own level,
 * which the owner made v's (tlsctx.c), so the two cannot differ.
 */
static void apply_profile(X509_STORE_CTX *ctx, const struct ss_verifier *v)
{
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    if (v->x509_strict)
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
    else
        X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_X509_STRICT);
    X509_VERIFY_PARAM_set_auth_level(param, v->security_level);
}

/* Refuses the verified chain for cert at depth: error into ctx (libssl
 * answers it with its alert) and, with why, into the result. Returns 0. */
static int refuse(X509_STORE_CTX *ctx, const struct verify_state *st,
                  int error, int depth, X509 *cert, const char *why)
{
    X509_STORE_CTX_set_error_depth(ctx, depth);
    X509_STORE_CTX_set_current_cert(ctx, cert);
    X509_STORE_CTX_set_error(ctx, error);
    struct ss_verify_result *res = st->res;
    if (res != NULL) {
        res->ok = false;
        res->x509_error = error;
        res->error_depth = depth;
        snprintf(res->reason, sizeof(res->reason), "%s", why);
    }
    return 0;
}

/* Our own rules of the profile (own_rules_hold) on every certificate of
 * the verified chain, the leaf first. Returns 1 or, refused, 0. */
static int own_rules(X509_STORE_CTX *ctx, const struct verify_state *st)
{
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    for (int depth = 0; depth < sk_X509_num(chain); depth++) {
        X509 *cert = sk_X509_value(chain, depth);
        char subject[256], why[sizeof(st->res->reason)];
        subject_line(cert, subject, sizeof(subject));
        struct about a = {st->v, ctx, cert, depth, subject};
        if (!own_rules_hold(&a, why, sizeof(why)))
            return refuse(ctx, st, X509_V_ERR_APPLICATION_VERIFICATION,
                          depth, cert, why);
    }
    return 1;
}

/*
 * X509_verify_cert under v's profile; then, when the chain is accepted,
 * our own rules of the profile (with x509-strict) and, when v has
 * allow-peer, the check of the leaf. A refusal after X509_verify_cert is
 * recorded like the callback's fatal errors (allow-peer:
 * X509_V_ERR_CERT_REJECTED at depth 0, which libssl answers with a
 * bad_certificate alert; our rules: X509_V_ERR_APPLICATION_VERIFICATION);
 * compatibility mode never reaches them. Returns 1 (accepted) or 0.
 */
static int verify_then_authorize(X509_STORE_CTX *ctx,
                                 const struct verify_state *st)
{
    apply_profile(ctx, st->v);
    if (X509_verify_cert(ctx) <= 0)
        return 0;
    if (st->v->x509_strict && own_rules(ctx, st) == 0)
        return 0;
    const struct ss_peer_allow *allow = st->v->allow_peer;
    if (allow == NULL || allow->n == 0)
        return 1;
    X509 *leaf = X509_STORE_CTX_get0_cert(ctx);
    char why[sizeof(st->res->reason)];
    int rc = ss_verify_allow_peer(allow, leaf, why, sizeof(why));
    if (rc == SS_OK)
        return 1;
    if (rc != SS_ERR_VERIFY)
        snprintf(why, sizeof(why), "allow-peer could not be checked: %s",
                 ss_strerror(rc));
    return refuse(ctx, st, X509_V_ERR_CERT_REJECTED, 0, leaf, why);
}

/*
 * libssl's certificate verify callback (SSL_CTX_set_cert_verify_callback):
 * the whole verification of a peer's chain in a handshake. A context
 * without our state (which ss_verifier_attach always sets) refuses: it
 * cannot know the endpoint's allow-peer.
 */
static int cert_verify_cb(X509_STORE_CTX *ctx, void *arg)
{
    (void)arg;
    struct verify_state st;
    if (!find_state(ctx, &st)) {
        X509_STORE_CTX_set_error(ctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return verify_then_authorize(ctx, &st);
}

/* ------------------------------------------------------------------ */
/* Name checks, offline verification and handshakes                     */

static bool is_ip_literal(const char *host)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, host, addr) == 1 ||
           inet_pton(AF_INET6, host, addr) == 1;
}

/* Sets the name or address param must match (NULL: none). Returns SS_OK or
 * SS_ERR_TLS. */
static int set_host(X509_VERIFY_PARAM *param, const char *host,
                    struct ss_errbuf *err)
{
    if (host == NULL)
        return SS_OK;
    ERR_clear_error();
    if (is_ip_literal(host)) {
        SS_GUARD_OSSL(X509_VERIFY_PARAM_set1_ip_asc(param, host), err,
                      SS_ERR_TLS, "cannot set address '%s' to check", host);
        return SS_OK;
    }
    X509_VERIFY_PARAM_set_hostflags(param,
                                    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SS_GUARD_OSSL(X509_VERIFY_PARAM_set1_host(param, host, 0), err,
                  SS_ERR_TLS, "cannot set host name '%s' to check", host);
    return SS_OK;
}

static void result_reset(struct ss_verify_result *res)
{
    memset(res, 0, sizeof(*res));
    res->x509_error = X509_V_OK;
}

/* Sets up ctx for one offline verification. Returns SS_OK or SS_ERR_TLS. */
static int chain_ctx_setup(X509_STORE_CTX *ctx, const struct ss_verifier *v,
                           X509 *leaf, STACK_OF(X509) *untrusted,
                           const char *host, time_t at,
                           struct verify_state *st, struct ss_errbuf *err)
{
    ERR_clear_error();
    SS_GUARD_OSSL(X509_STORE_CTX_init(ctx, v->store, leaf, untrusted), err,
                  SS_ERR_TLS, "cannot start verification");
    SS_GUARD_OSSL(X509_STORE_CTX_set_ex_data(ctx, store_ctx_index, st), err,
                  SS_ERR_TLS, "cannot start verification");
    SS_GUARD_OSSL(X509_STORE_CTX_set_purpose(ctx, x509_purpose(v->purpose)),
                  err, SS_ERR_TLS, "cannot set the certificate purpose");
    X509_STORE_CTX_set_verify_cb(ctx, verify_cb);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    SS_GUARD(set_host(param, host, err));
    if (at != 0)
        X509_VERIFY_PARAM_set_time(param, at);
    return SS_OK;
}

/*
 * Verifies offline exactly as a handshake would. Returns SS_OK (res->ok),
 * SS_ERR_VERIFY (res says why), SS_ERR_INVAL or SS_ERR_TLS / SS_ERR_NOMEM
 * when verification could not run (res->reason then says why).
 */
int ss_verify_chain(const struct ss_verifier *v, X509 *leaf,
                    STACK_OF(X509) *untrusted, const char *host, time_t at,
                    struct ss_verify_result *res)
{
    SS_ENSURE(res != NULL, SS_ERR_INVAL);
    result_reset(res);
    SS_ENSURE(v != NULL && v->store != NULL && leaf != NULL, SS_ERR_INVAL);
    struct ss_errbuf err = {{0}};
    SS_GUARD(index_ready(&err));
    X509_STORE_CTX *ctx = X509_STORE_CTX_new_ex(v->libctx, v->propq);
    if (ctx == NULL)
        return SS_ERR_NOMEM;
    struct verify_state st = {.v = v, .res = res};
    int rc = chain_ctx_setup(ctx, v, leaf, untrusted, host, at, &st, &err);
    if (rc < 0) {
        X509_STORE_CTX_free(ctx);
        snprintf(res->reason, sizeof(res->reason), "%.*s",
                 (int)sizeof(res->reason) - 1, err.msg);
        return rc;
    }
    ERR_clear_error();
    int ret = verify_then_authorize(ctx, &st);
    if (ret <= 0 && res->x509_error == X509_V_OK) {
        /* Failed without the callback seeing an error: an internal one. */
        int error = X509_STORE_CTX_get_error(ctx);
        res->x509_error = error != X509_V_OK ? error
                                             : X509_V_ERR_UNSPECIFIED;
        res->error_depth = X509_STORE_CTX_get_error_depth(ctx);
        snprintf(res->reason, sizeof(res->reason), "%s at depth %d",
                 X509_verify_cert_error_string(res->x509_error),
                 res->error_depth);
    }
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    res->ok = ret > 0;
    if (!res->ok)
        return SS_ERR_VERIFY;
    res->x509_error = X509_V_OK;
    res->reason[0] = '\0';
    return SS_OK;
}

/*
 * Makes ctx verify peers with v (SSL_VERIFY_PEER, our callback, v's store,
 * flags and purpose). v must outlive ctx. Returns SS_OK, SS_ERR_INVAL or
 * SS_ERR_TLS.
 */
int ss_verifier_attach(SSL_CTX *ctx, const struct ss_verifier *v,
                       struct ss_errbuf *err)
{
    if (ctx == NULL || v == NULL || v->store == NULL)
        return ss_fail(err, SS_ERR_INVAL, "verify: nothing to attach");
    SS_GUARD(index_ready(err));
    ERR_clear_error();
    /* The store is shared by every connection: SSL_CTX takes a reference. */
    SSL_CTX_set1_cert_store(ctx, v->store);
    SS_GUARD_OSSL(SSL_CTX_set_ex_data(ctx, ssl_ctx_index, (void *)v), err,
                  SS_ERR_TLS, "cannot attach the verifier");
    SS_GUARD_OSSL(SSL_CTX_set_purpose(ctx, x509_purpose(v->purpose)), err,
                  SS_ERR_TLS, "cannot set the certificate purpose");
    if (v->crl_check) {
        /* Also on the context's own parameters, which libssl applies last. */
        SS_GUARD_OSSL(X509_VERIFY_PARAM_set_flags(
                          SSL_CTX_get0_param(ctx),
                          X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL),
                      err, SS_ERR_TLS, "cannot enable CRL checking");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
    /* The chain, then allow-peer: one function decides, as offline. */
    SSL_CTX_set_cert_verify_callback(ctx, cert_verify_cb, NULL);
    return SS_OK;
}

/*
 * Per connection: the name/address to check (NULL: none) and where to
 * record the result (res is reset now). Returns SS_OK, SS_ERR_INVAL or
 * SS_ERR_TLS.
 */
int ss_verify_prepare_ssl(SSL *ssl, const char *host,
                          struct ss_verify_result *res,
                          struct ss_errbuf *err)
{
    if (ssl == NULL || res == NULL)
        return ss_fail(err, SS_ERR_INVAL, "verify: no connection to prepare");
    SS_GUARD(index_ready(err));
    result_reset(res);
    ERR_clear_error();
    SS_GUARD_OSSL(SSL_set_ex_data(ssl, ssl_index, res), err, SS_ERR_TLS,
                  "cannot attach the verification result");
    SS_GUARD(set_host(SSL_get0_param(ssl), host, err));
    return SS_OK;
}

void ss_verify_forget_ssl(SSL *ssl)
{
    if (ssl != NULL && ssl_index >= 0)
        (void)SSL_set_ex_data(ssl, ssl_index, NULL);
}

/* A short static description of r ("unknown relaxation" for others). */
const char *ss_relaxation_name(enum ss_relaxation r)
{
    switch (r) {
    case SS_RELAX_REVOKED_TRUSTED_CA:
        return "revoked CA listed in trusted-ca";
    case SS_RELAX_KEY_USAGE:
        return "key usage mismatch";
    default:
        return "unknown relaxation";
    }
}

/* The names of OpenSSL 3.0's verification errors, as its header spells them:
 * what an operator greps for and looks up. */
static const char *const verify_error_names[] = {
    [X509_V_OK] = "X509_V_OK",
    [X509_V_ERR_UNSPECIFIED] = "X509_V_ERR_UNSPECIFIED",
    [X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT] = "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT",
    [X509_V_ERR_UNABLE_TO_GET_CRL] = "X509_V_ERR_UNABLE_TO_GET_CRL",
    [X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE] = "X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE",
    [X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE] = "X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE",
    [X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY] = "X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
    [X509_V_ERR_CERT_SIGNATURE_FAILURE] = "X509_V_ERR_CERT_SIGNATURE_FAILURE",
    [X509_V_ERR_CRL_SIGNATURE_FAILURE] = "X509_V_ERR_CRL_SIGNATURE_FAILURE",
    [X509_V_ERR_CERT_NOT_YET_VALID] = "X509_V_ERR_CERT_NOT_YET_VALID",
    [X509_V_ERR_CERT_HAS_EXPIRED] = "X509_V_ERR_CERT_HAS_EXPIRED",
    [X509_V_ERR_CRL_NOT_YET_VALID] = "X509_V_ERR_CRL_NOT_YET_VALID",
    [X509_V_ERR_CRL_HAS_EXPIRED] = "X509_V_ERR_CRL_HAS_EXPIRED",
    [X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD] = "X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD",
    [X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD] = "X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD",
    [X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD] = "X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD",
    [X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD] = "X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD",
    [X509_V_ERR_OUT_OF_MEM] = "X509_V_ERR_OUT_OF_MEM",
    [X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT] = "X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT",
    [X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN] = "X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN",
    [X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY] = "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    [X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE] = "X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    [X509_V_ERR_CERT_CHAIN_TOO_LONG] = "X509_V_ERR_CERT_CHAIN_TOO_LONG",
    [X509_V_ERR_CERT_REVOKED] = "X509_V_ERR_CERT_REVOKED",
    [X509_V_ERR_NO_ISSUER_PUBLIC_KEY] = "X509_V_ERR_NO_ISSUER_PUBLIC_KEY",
    [X509_V_ERR_PATH_LENGTH_EXCEEDED] = "X509_V_ERR_PATH_LENGTH_EXCEEDED",
    [X509_V_ERR_INVALID_PURPOSE] = "X509_V_ERR_INVALID_PURPOSE",
    [X509_V_ERR_CERT_UNTRUSTED] = "X509_V_ERR_CERT_UNTRUSTED",
    [X509_V_ERR_CERT_REJECTED] = "X509_V_ERR_CERT_REJECTED",
    [X509_V_ERR_SUBJECT_ISSUER_MISMATCH] = "X509_V_ERR_SUBJECT_ISSUER_MISMATCH",
    [X509_V_ERR_AKID_SKID_MISMATCH] = "X509_V_ERR_AKID_SKID_MISMATCH",
    [X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH] = "X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH",
    [X509_V_ERR_KEYUSAGE_NO_CERTSIGN] = "X509_V_ERR_KEYUSAGE_NO_CERTSIGN",
    [X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER] = "X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER",
    [X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION] = "X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION",
    [X509_V_ERR_KEYUSAGE_NO_CRL_SIGN] = "X509_V_ERR_KEYUSAGE_NO_CRL_SIGN",
    [X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION] = "X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION",
    [X509_V_ERR_INVALID_NON_CA] = "X509_V_ERR_INVALID_NON_CA",
    [X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED] = "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED",
    [X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE] = "X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE",
    [X509_V_ERR_PROXY_CERTIFICATES_NOT_ALLOWED] = "X509_V_ERR_PROXY_CERTIFICATES_NOT_ALLOWED",
    [X509_V_ERR_INVALID_EXTENSION] = "X509_V_ERR_INVALID_EXTENSION",
    [X509_V_ERR_INVALID_POLICY_EXTENSION] = "X509_V_ERR_INVALID_POLICY_EXTENSION",
    [X509_V_ERR_NO_EXPLICIT_POLICY] = "X509_V_ERR_NO_EXPLICIT_POLICY",
    [X509_V_ERR_DIFFERENT_CRL_SCOPE] = "X509_V_ERR_DIFFERENT_CRL_SCOPE",
    [X509_V_ERR_UNSUPPORTED_EXTENSION_FEATURE] = "X509_V_ERR_UNSUPPORTED_EXTENSION_FEATURE",
    [X509_V_ERR_UNNESTED_RESOURCE] = "X509_V_ERR_UNNESTED_RESOURCE",
    [X509_V_ERR_PERMITTED_VIOLATION] = "X509_V_ERR_PERMITTED_VIOLATION",
    [X509_V_ERR_EXCLUDED_VIOLATION] = "X509_V_ERR_EXCLUDED_VIOLATION",
    [X509_V_ERR_SUBTREE_MINMAX] = "X509_V_ERR_SUBTREE_MINMAX",
    [X509_V_ERR_APPLICATION_VERIFICATION] = "X509_V_ERR_APPLICATION_VERIFICATION",
    [X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE] = "X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE",
    [X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX] = "X509_V_ERR_UNSUPPORTED_CONSTRAINT_SYNTAX",
    [X509_V_ERR_UNSUPPORTED_NAME_SYNTAX] = "X509_V_ERR_UNSUPPORTED_NAME_SYNTAX",
    [X509_V_ERR_CRL_PATH_VALIDATION_ERROR] = "X509_V_ERR_CRL_PATH_VALIDATION_ERROR",
    [X509_V_ERR_PATH_LOOP] = "X509_V_ERR_PATH_LOOP",
    [X509_V_ERR_SUITE_B_INVALID_VERSION] = "X509_V_ERR_SUITE_B_INVALID_VERSION",
    [X509_V_ERR_SUITE_B_INVALID_ALGORITHM] = "X509_V_ERR_SUITE_B_INVALID_ALGORITHM",
    [X509_V_ERR_SUITE_B_INVALID_CURVE] = "X509_V_ERR_SUITE_B_INVALID_CURVE",
    [X509_V_ERR_SUITE_B_INVALID_SIGNATURE_ALGORITHM] = "X509_V_ERR_SUITE_B_INVALID_SIGNATURE_ALGORITHM",
    [X509_V_ERR_SUITE_B_LOS_NOT_ALLOWED] = "X509_V_ERR_SUITE_B_LOS_NOT_ALLOWED",
    [X509_V_ERR_SUITE_B_CANNOT_SIGN_P_384_WITH_P_256] = "X509_V_ERR_SUITE_B_CANNOT_SIGN_P_384_WITH_P_256",
    [X509_V_ERR_HOSTNAME_MISMATCH] = "X509_V_ERR_HOSTNAME_MISMATCH",
    [X509_V_ERR_EMAIL_MISMATCH] = "X509_V_ERR_EMAIL_MISMATCH",
    [X509_V_ERR_IP_ADDRESS_MISMATCH] = "X509_V_ERR_IP_ADDRESS_MISMATCH",
    [X509_V_ERR_DANE_NO_MATCH] = "X509_V_ERR_DANE_NO_MATCH",
    [X509_V_ERR_EE_KEY_TOO_SMALL] = "X509_V_ERR_EE_KEY_TOO_SMALL",
    [X509_V_ERR_CA_KEY_TOO_SMALL] = "X509_V_ERR_CA_KEY_TOO_SMALL",
    [X509_V_ERR_CA_MD_TOO_WEAK] = "X509_V_ERR_CA_MD_TOO_WEAK",
    [X509_V_ERR_INVALID_CALL] = "X509_V_ERR_INVALID_CALL",
    [X509_V_ERR_STORE_LOOKUP] = "X509_V_ERR_STORE_LOOKUP",
    [X509_V_ERR_NO_VALID_SCTS] = "X509_V_ERR_NO_VALID_SCTS",
    [X509_V_ERR_PROXY_SUBJECT_NAME_VIOLATION] = "X509_V_ERR_PROXY_SUBJECT_NAME_VIOLATION",
    [X509_V_ERR_OCSP_VERIFY_NEEDED] = "X509_V_ERR_OCSP_VERIFY_NEEDED",
    [X509_V_ERR_OCSP_VERIFY_FAILED] = "X509_V_ERR_OCSP_VERIFY_FAILED",
    [X509_V_ERR_OCSP_CERT_UNKNOWN] = "X509_V_ERR_OCSP_CERT_UNKNOWN",
    [X509_V_ERR_UNSUPPORTED_SIGNATURE_ALGORITHM] = "X509_V_ERR_UNSUPPORTED_SIGNATURE_ALGORITHM",
    [X509_V_ERR_SIGNATURE_ALGORITHM_MISMATCH] = "X509_V_ERR_SIGNATURE_ALGORITHM_MISMATCH",
    [X509_V_ERR_SIGNATURE_ALGORITHM_INCONSISTENCY] = "X509_V_ERR_SIGNATURE_ALGORITHM_INCONSISTENCY",
    [X509_V_ERR_INVALID_CA] = "X509_V_ERR_INVALID_CA",
    [X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA] = "X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA",
    [X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN] = "X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN",
    [X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA] = "X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA",
    [X509_V_ERR_ISSUER_NAME_EMPTY] = "X509_V_ERR_ISSUER_NAME_EMPTY",
    [X509_V_ERR_SUBJECT_NAME_EMPTY] = "X509_V_ERR_SUBJECT_NAME_EMPTY",
    [X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER] = "X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER",
    [X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER] = "X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER",
    [X509_V_ERR_EMPTY_SUBJECT_ALT_NAME] = "X509_V_ERR_EMPTY_SUBJECT_ALT_NAME",
    [X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL] = "X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL",
    [X509_V_ERR_CA_BCONS_NOT_CRITICAL] = "X509_V_ERR_CA_BCONS_NOT_CRITICAL",
    [X509_V_ERR_AUTHORITY_KEY_IDENTIFIER_CRITICAL] = "X509_V_ERR_AUTHORITY_KEY_IDENTIFIER_CRITICAL",
    [X509_V_ERR_SUBJECT_KEY_IDENTIFIER_CRITICAL] = "X509_V_ERR_SUBJECT_KEY_IDENTIFIER_CRITICAL",
    [X509_V_ERR_CA_CERT_MISSING_KEY_USAGE] = "X509_V_ERR_CA_CERT_MISSING_KEY_USAGE",
    [X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3] = "X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3",
    [X509_V_ERR_EC_KEY_EXPLICIT_PARAMS] = "X509_V_ERR_EC_KEY_EXPLICIT_PARAMS",
};

const char *ss_verify_error_name(int x509_error)
{
    size_t n = sizeof(verify_error_names) / sizeof(verify_error_names[0]);
    if (x509_error < 0 || (size_t)x509_error >= n ||
        verify_error_names[x509_error] == NULL)
        return NULL;
    return verify_error_names[x509_error];
}
