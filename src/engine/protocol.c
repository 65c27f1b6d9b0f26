/*
 * protocol.c - sec-protocol / tls-version / protocol-list to a set of TLS
 * versions, and that set applied to an SSL_CTX (see protocol.h and
 * docs/protocols.md).
 *
 * Everything is table driven: one row per version, so adding or removing a
 * version (SSLv3 exists only when the linked OpenSSL has it) is one line.
 */
#include "secshim/protocol.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "secshim/compat.h"

/* One TLS version as every setting spells it. */
struct version_row {
    unsigned bit;         /* SS_V_* */
    int version;          /* OpenSSL constant */
    const char *name;     /* OpenSSL's and Java's name: "TLSv1.1" */
    const char *genesys;  /* sec-protocol's name: "TLSv11" */
    long no_option;       /* SSL_OP_NO_* used to punch a hole in a range */
    bool legacy;          /* needs security level 0 on OpenSSL 3 */
};

/* Oldest first: the order ranges and descriptions are built in. */
static const struct version_row versions[] = {
    {SS_V_SSL3, SSL3_VERSION, "SSLv3", "SSLv3", SSL_OP_NO_SSLv3, true},
    {SS_V_TLS1, TLS1_VERSION, "TLSv1", "TLSv1", SSL_OP_NO_TLSv1, true},
    {SS_V_TLS11, TLS1_1_VERSION, "TLSv1.1", "TLSv11", SSL_OP_NO_TLSv1_1,
     true},
    {SS_V_TLS12, TLS1_2_VERSION, "TLSv1.2", "TLSv12", SSL_OP_NO_TLSv1_2,
     false},
    {SS_V_TLS13, TLS1_3_VERSION, "TLSv1.3", "TLSv13", SSL_OP_NO_TLSv1_3,
     false},
};
#define N_VERSIONS (sizeof(versions) / sizeof(versions[0]))

/* What the linked OpenSSL can do at all. */
static unsigned supported_versions(void)
{
    unsigned all = SS_V_TLS1 | SS_V_TLS11 | SS_V_TLS12 | SS_V_TLS13;
    return SS_HAVE_SSL3 ? (all | SS_V_SSL3) : all;
}

static const struct version_row *row_by_bit(unsigned bit)
{
    for (size_t i = 0; i < N_VERSIONS; i++)
        if (versions[i].bit == bit)
            return &versions[i];
    return NULL;
}

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* Fills min, max, legacy and the security level from out->versions. */
static void derive_range(struct ss_proto *out)
{
    out->min_version = 0;
    out->max_version = 0;
    out->legacy = false;
    for (size_t i = 0; i < N_VERSIONS; i++) {
        if ((out->versions & versions[i].bit) == 0)
            continue;
        if (out->min_version == 0)
            out->min_version = versions[i].version;
        out->max_version = versions[i].version;
        out->legacy = out->legacy || versions[i].legacy;
    }
    /* OpenSSL 3 refuses TLS 1.0/1.1 (their handshakes sign with SHA-1 /
     * MD5-SHA1) at every security level above 0. */
    out->security_level = out->legacy ? 0 : -1;
}

static int set_versions(struct ss_proto *out, enum ss_proto_mode mode,
                        unsigned set, struct ss_errbuf *err)
{
    unsigned missing = set & ~supported_versions();
    if (missing != 0) {
        const struct version_row *r = row_by_bit(missing & -missing);
        return ss_fail(err, SS_ERR_UNSUPPORTED,
                       "%s is not supported by the linked OpenSSL",
                       r != NULL ? r->name : "a requested version");
    }
    out->mode = mode;
    out->versions = set;
    derive_range(out);
    return SS_OK;
}

static int parse_sec_protocol(const char *value, struct ss_proto *out,
                              struct ss_errbuf *err)
{
    if (strcmp(value, "SSLv23") == 0)
        return set_versions(out, SS_PROTO_FLEXIBLE, supported_versions(),
                            err);
    for (size_t i = 0; i < N_VERSIONS; i++)
        if (strcmp(value, versions[i].genesys) == 0)
            return set_versions(out, SS_PROTO_STRICT, versions[i].bit, err);
    return ss_fail(err, SS_ERR_CONFIG,
                   "unknown sec-protocol '%s': valid values are SSLv23, "
                   "SSLv3, TLSv1, TLSv11, TLSv12, TLSv13 (case-sensitive)",
                   value);
}

/* The bit of a Java-style name ("TLSv1.2"), or 0. */
static unsigned java_bit(const char *name)
{
    for (size_t i = 0; i < N_VERSIONS; i++)
        if (strcmp(name, versions[i].name) == 0)
            return versions[i].bit;
    return 0;
}

static int parse_tls_version(const char *value, struct ss_proto *out,
                             struct ss_errbuf *err)
{
    unsigned bit = java_bit(value);
    if (bit == 0 || bit == SS_V_SSL3)
        return ss_fail(err, SS_ERR_CONFIG,
                       "unknown tls-version '%s': valid values are TLSv1, "
                       "TLSv1.1, TLSv1.2, TLSv1.3 (case-sensitive)",
                       value);
    return set_versions(out, SS_PROTO_STRICT, bit, err);
}

static int parse_protocol_list(const char *const *list, size_t n,
                               struct ss_proto *out, struct ss_errbuf *err)
{
    unsigned set = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned bit = list[i] != NULL ? java_bit(list[i]) : 0;
        if (bit == 0)
            return ss_fail(err, SS_ERR_CONFIG,
                           "unknown protocol-list entry '%s': valid values "
                           "are SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3 "
                           "(case-sensitive)",
                           list[i] != NULL ? list[i] : "(null)");
        set |= bit;
    }
    return set_versions(out, SS_PROTO_LIST, set, err);
}

int ss_protocol_parse(const char *sec_protocol, const char *tls_version,
                      const char *const *protocol_list, size_t list_len,
                      struct ss_proto *out, struct ss_errbuf *err)
{
    int n_set = is_set(sec_protocol) + is_set(tls_version) + (list_len > 0);
    if (n_set > 1)
        return ss_fail(err, SS_ERR_CONFIG,
                       "sec-protocol, tls-version and protocol-list are "
                       "mutually exclusive");
    if (is_set(sec_protocol))
        return parse_sec_protocol(sec_protocol, out, err);
    if (is_set(tls_version))
        return parse_tls_version(tls_version, out, err);
    if (list_len > 0)
        return parse_protocol_list(protocol_list, list_len, out, err);
    /* Nothing set: the secure default. */
    return set_versions(out, SS_PROTO_DEFAULT, SS_V_TLS12 | SS_V_TLS13, err);
}

unsigned ss_protocol_client_versions(const struct ss_proto *proto)
{
    /* Walk down from the highest version and stop at the first gap. */
    unsigned run = 0;
    for (size_t i = N_VERSIONS; i-- > 0;) {
        bool in = (proto->versions & versions[i].bit) != 0;
        if (in)
            run |= versions[i].bit;
        else if (run != 0)
            break;
    }
    return run;
}

/* A client context: OpenSSL treats the versions of a client as one
 * contiguous range (a gap disables everything above it), servers check
 * each version on its own. */
static bool is_client_ctx(const SSL_CTX *ctx)
{
    return SSL_CTX_get_ssl_method(ctx) == TLS_client_method();
}

int ss_protocol_apply(SSL_CTX *ctx, const struct ss_proto *proto,
                      struct ss_errbuf *err)
{
    if (ctx == NULL || proto == NULL || proto->versions == 0)
        return ss_fail(err, SS_ERR_INVAL, "no protocol versions to apply");
    struct ss_proto eff = *proto;
    if (is_client_ctx(ctx) && ss_protocol_client_versions(proto) !=
                                  proto->versions) {
        /* Left alone, OpenSSL would keep the LOWEST run of a list with
         * gaps; the highest run is the secure reading (docs/protocols.md). */
        eff.versions = ss_protocol_client_versions(proto);
        derive_range(&eff);
    }
    ERR_clear_error();
    SS_GUARD_OSSL(SSL_CTX_set_min_proto_version(ctx, eff.min_version),
                  err, SS_ERR_TLS, "cannot set the minimum version %s",
                  ss_protocol_version_name(eff.min_version));
    SS_GUARD_OSSL(SSL_CTX_set_max_proto_version(ctx, eff.max_version),
                  err, SS_ERR_TLS, "cannot set the maximum version %s",
                  ss_protocol_version_name(eff.max_version));
    /* A list with gaps: min/max give the range, SSL_OP_NO_* the holes.
     * Versions inside the set are cleared explicitly so the result does
     * not depend on what the context held before. */
    for (size_t i = 0; i < N_VERSIONS; i++) {
        int v = versions[i].version;
        if (v < eff.min_version || v > eff.max_version)
            continue;
        if (eff.versions & versions[i].bit)
            SSL_CTX_clear_options(ctx, versions[i].no_option);
        else
            SSL_CTX_set_options(ctx, versions[i].no_option);
    }
    if (eff.security_level >= 0)
        SSL_CTX_set_security_level(ctx, eff.security_level);
    return SS_OK;
}

/*
 * The TLS 1.2 suites of an endpoint without cipher-list: ECDHE key
 * exchange (forward secrecy) and AEAD encryption only, ECDSA and RSA
 * certificates alike, in the order the TLS 1.3 suites have
 * (ss_tlsctx_default_suites): AES-128-GCM first where the CPU has AES
 * instructions, ChaCha20-Poly1305 first where it has not. OpenSSL's own
 * default also offers CBC suites and RSA key transport (no forward
 * secrecy), which an external scan reports (docs/protocols.md, "Defaults
 * and the external scan"). No DHE: OpenSSL's server has no DH parameters
 * unless told, and finite-field DH adds nothing ECDHE lacks.
 */
#define ECDHE_AES128 \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
#define ECDHE_AES256 \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
#define ECDHE_CHACHA \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

const char *ss_protocol_default_cipher_list(const struct ss_proto *proto,
                                            bool aes_first)
{
    /* TLS 1.0 and 1.1 have no AEAD suite at all: a legacy endpoint keeps
     * OpenSSL's default, whose SHA-1 CBC suites they need. */
    if (proto == NULL || proto->legacy)
        return NULL;
    return aes_first ? ECDHE_AES128 ":" ECDHE_AES256 ":" ECDHE_CHACHA
                     : ECDHE_CHACHA ":" ECDHE_AES128 ":" ECDHE_AES256;
}

const char *ss_protocol_describe(const struct ss_proto *proto, char *buf,
                                 size_t len)
{
    static const char *const mode_names[] = {"default", "flexible",
                                             "strict", "list"};
    const char *mode = (unsigned)proto->mode < 4 ? mode_names[proto->mode]
                                                 : "invalid";
    size_t used = 0;
    buf[0] = '\0';
    if (proto->mode == SS_PROTO_STRICT) {
        snprintf(buf, len, "%s only (%s)",
                 ss_protocol_version_name(proto->max_version), mode);
        return buf;
    }
    if (proto->mode != SS_PROTO_LIST) {
        snprintf(buf, len, "%s-%s (%s)",
                 ss_protocol_version_name(proto->min_version),
                 ss_protocol_version_name(proto->max_version), mode);
        return buf;
    }
    for (size_t i = 0; i < N_VERSIONS && used < len; i++) {
        if ((proto->versions & versions[i].bit) == 0)
            continue;
        used += (size_t)snprintf(buf + used, len - used, "%s%s",
                                 used ? "," : "", versions[i].name);
    }
    if (used < len)
        snprintf(buf + used, len - used, " (%s)", mode);
    return buf;
}

const char *ss_protocol_version_name(int version)
{
    for (size_t i = 0; i < N_VERSIONS; i++)
        if (versions[i].version == version)
            return versions[i].name;
    return "unknown";
}
