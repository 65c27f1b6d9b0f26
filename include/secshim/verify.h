/*
 * verify.h - peer chain verification, shared by handshakes and by the
 * offline `secshim verify` command, so both decide the same way.
 *
 * Checks: chain to a trusted CA, validity dates, signatures, the purpose
 * (serverAuth / clientAuth) and key usage, the host name or address, and,
 * when CRLs are configured, revocation of every chain entry. Compatibility
 * mode relaxes exactly two of these (docs/design.md, "Policy snapshots"):
 *   SS_RELAX_REVOKED_TRUSTED_CA  a revoked CA certificate (depth > 0) that
 *                                is itself listed in trusted-ca;
 *   SS_RELAX_KEY_USAGE           key usage / extended key usage that does
 *                                not fit the purpose.
 * Everything else is fatal with or without it. After the chain is
 * accepted, an endpoint's allow-peer is checked on the leaf
 * (ss_verify_allow_peer), which compatibility mode never relaxes.
 *
 * The RFC 5280 profile (x509_strict, on by default): OpenSSL's
 * X509_V_FLAG_X509_STRICT plus our own serial-number and version checks;
 * keys and signatures are held to the verifier's security_level, the
 * level of the endpoint's context. docs/verification.md has the table of
 * every rule, who checks it and the sentence a rejection reads. Neither
 * is touched by compatibility mode.
 */
#ifndef SECSHIM_VERIFY_H
#define SECSHIM_VERIFY_H

#include <stdbool.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "secshim/common.h"
#include "secshim/peerid.h"

/* The purpose the PEER's certificate must serve. */
enum ss_purpose {
    SS_PURPOSE_SERVER, /* we are a client checking a server */
    SS_PURPOSE_CLIENT  /* we are a server checking a client */
};

enum ss_relaxation {
    SS_RELAX_REVOKED_TRUSTED_CA = 1u << 0,
    SS_RELAX_KEY_USAGE = 1u << 1
};

/*
 * Immutable once built; shared by every connection of an endpoint. Owns the
 * store and the list.
 */
struct ss_verifier {
    X509_STORE *store;               /* trusted CAs, CRLs and flags */
    STACK_OF(X509) *trusted_listed;  /* exactly the certs in trusted-ca */
    enum ss_purpose purpose;
    bool crl_check;                  /* tls-crl set: check the whole chain */
    bool compat;                     /* the two relaxations are allowed */
    /* The RFC 5280 profile (x509-strict): true after ss_verifier_init;
     * the owner may turn it off (an endpoint's x509-strict = false). */
    bool x509_strict;
    /* The OpenSSL security level keys and signatures of the chain are
     * held to, in handshakes and offline alike (the verify callback sets
     * it on every verification). ss_verifier_init sets the level a new
     * SSL_CTX gets; the owner sets its context's (tlsctx.c) and `secshim
     * verify` the endpoint's. 0 checks nothing. */
    int security_level;
    /* Where the CAs and CRLs are decoded and the offline check fetches
     * its algorithms (a FIPS endpoint's context, fips.h); NULL, NULL:
     * OpenSSL's default. Borrowed: it outlives the verifier. */
    OSSL_LIB_CTX *libctx;
    const char *propq;
    /* allow-peer, checked once the chain is accepted: borrowed (the
     * endpoint's, or the caller's), NULL or empty for none. Set by the
     * owner after ss_verifier_init; it must outlive the verifier. */
    const struct ss_peer_allow *allow_peer;
};

/*
 * What one verification decided. reason is one sentence naming the failed
 * check, the depth and the subject; relaxed_subject[i] names the certificate
 * that relaxation bit i was applied to.
 *
 * resumed: the handshake resumed a session, so no chain was verified in
 * it; ok and relaxations are then those of the full handshake that made
 * the session (its verdict, session.h), and relaxed_subject is empty.
 */
struct ss_verify_result {
    bool ok;
    bool resumed;
    int x509_error;          /* X509_V_OK or the first fatal error */
    int error_depth;
    char reason[512];
    unsigned relaxations;    /* SS_RELAX_* used */
    char relaxed_subject[2][256];
};

/* The name of an X509_V_ERR_* code as OpenSSL's header spells it
 * ("X509_V_ERR_CERT_HAS_EXPIRED"); NULL for a code it does not know. */
const char *ss_verify_error_name(int x509_error);

/*
 * Builds v. trusted_ca and crl are comma-separated PEM file lists (either
 * may be NULL: without trusted_ca the system's default CA paths are
 * trusted). Returns SS_OK, SS_ERR_IO (a file is missing or holds no
 * certificate / CRL) or SS_ERR_TLS; err names the file.
 */
int ss_verifier_init(struct ss_verifier *v, const char *trusted_ca,
                     const char *crl, enum ss_purpose purpose, bool compat,
                     struct ss_errbuf *err);
/* The same in libctx with propq (both may be NULL: the default). */
int ss_verifier_init_ex(struct ss_verifier *v, OSSL_LIB_CTX *libctx,
                        const char *propq, const char *trusted_ca,
                        const char *crl, enum ss_purpose purpose,
                        bool compat, struct ss_errbuf *err);
void ss_verifier_free(struct ss_verifier *v);

/*
 * allow-peer (docs/policy.md, "allow-peer"): whether leaf, a peer
 * certificate whose chain has been verified, presents an identity of
 * allow: a subject CN, OU or O, or a subjectAltName DNS, URI or IP that
 * matches one entry (ss_peer_id_matches, peerid.h, has the rules).
 * Handshakes and ss_verify_chain call it after chain verification
 * succeeded, for verifiers whose allow_peer is set; any other caller
 * (secshim probe) may call it on a leaf it has verified. It checks
 * nothing but the identities. allow NULL or empty accepts every leaf.
 * Returns SS_OK when one identity matches; SS_ERR_VERIFY when none does,
 * or when the certificate's subjectAltName cannot be read (fail closed),
 * with why (may be NULL) holding one sentence naming the identities the
 * certificate presents and that none matched allow-peer; SS_ERR_INVAL
 * when leaf is NULL. Thread-safe; it allocates only what OpenSSL needs
 * to read the certificate (a failure there matches nothing).
 */
int ss_verify_allow_peer(const struct ss_peer_allow *allow, X509 *leaf,
                         char *why, size_t why_len);

/*
 * Verifies leaf (+ untrusted intermediates, may be NULL) offline exactly as
 * a handshake would, allow_peer included. host may be NULL (no name check), a DNS name, or an
 * IPv4/IPv6 literal (checked against IP SANs). at == 0 means now. Fills res
 * and returns SS_OK when accepted, SS_ERR_VERIFY when rejected, or another
 * negative error when verification could not run.
 */
int ss_verify_chain(const struct ss_verifier *v, X509 *leaf,
                    STACK_OF(X509) *untrusted, const char *host, time_t at,
                    struct ss_verify_result *res);

/*
 * Makes ctx verify peers with v: store, flags, purpose, the callback
 * that applies the relaxations, and v's allow_peer after the chain. v must outlive ctx. Returns SS_OK or
 * SS_ERR_TLS.
 */
int ss_verifier_attach(SSL_CTX *ctx, const struct ss_verifier *v,
                       struct ss_errbuf *err);

/*
 * Per connection: sets the name or address to check (NULL: none) and where
 * the handshake's verification result is recorded (res must outlive ssl's
 * handshake). Returns SS_OK or SS_ERR_TLS.
 */
int ss_verify_prepare_ssl(SSL *ssl, const char *host,
                          struct ss_verify_result *res,
                          struct ss_errbuf *err);

/* The handshake of ssl is over: its result is no longer recorded (a later
 * verification, which renegotiation being off rules out, would still
 * decide). The caller may then free the result ss_verify_prepare_ssl was
 * given. */
void ss_verify_forget_ssl(SSL *ssl);

/* "revoked CA listed in trusted-ca" / "key usage mismatch". */
const char *ss_relaxation_name(enum ss_relaxation r);

#endif
