/*
 * tlsctx.h - one SSL_CTX per enabled endpoint: certificate chain and key,
 * verification, protocol versions, ciphers, session resumption.
 */
#ifndef SECSHIM_TLSCTX_H
#define SECSHIM_TLSCTX_H

#include <stdbool.h>
#include <time.h>

#include <openssl/ssl.h>

#include "secshim/common.h"
#include "secshim/policy.h"
#include "secshim/session.h"
#include "secshim/verify.h"

enum ss_role {
    SS_ROLE_CLIENT, /* connect endpoints */
    SS_ROLE_SERVER  /* listen endpoints */
};

struct ss_tlsctx {
    SSL_CTX *ctx;
    enum ss_role role;
    struct ss_verifier verifier;   /* attached to ctx */
    X509 *own_cert;                /* our leaf (for `check`), or NULL */
    /* Where every algorithm of this endpoint is fetched from: the FIPS
     * context (fips.h) for fips140-enabled, with propq "fips=yes";
     * NULL and NULL, OpenSSL's default context, otherwise. Borrowed. */
    OSSL_LIB_CTX *libctx;
    const char *propq;
    bool resume;                   /* session-resumption (session.h) */
    /* SHA-256 over everything that decides whether a peer is accepted
     * (direction, trusted-ca, tls-crl, names, mutual TLS and our
     * certificate, allow-peer, x509-strict, protocols, ciphers, FIPS,
     * compatibility mode; files by path and content): sessions and
     * ticket keys are shared only between
     * contexts with the same digest (docs/protocols.md, "Sessions"). */
    unsigned char trust_digest[SS_TRUST_DIGEST_LEN];
    struct ss_ticket_keys *tickets; /* listen endpoints resuming; a ref */
};

/*
 * Builds the context for ep. path is the policy file, for messages. A
 * missing file, a key that does not match its certificate, an unusable
 * cipher list, a mutual listen endpoint without trusted-ca, or a FIPS
 * request whose provider does not load (missing, failing its self-test
 * or MAC check) is an error naming path, line and option
 * (ss_endpoint_fail). A fips140-enabled endpoint's context, certificates,
 * keys, stores and ticket keys all live in the FIPS library context
 * (fips.h), so nothing of it falls back to the default provider. Returns
 * SS_OK with *out set, or the error.
 */
int ss_tlsctx_new(const char *path, const struct ss_endpoint *ep,
                  bool compat, struct ss_tlsctx **out,
                  struct ss_errbuf *err);
void ss_tlsctx_free(struct ss_tlsctx *t);

/* The TLS 1.3 cipher suites of an endpoint without cipher-suites, in
 * order: AES-128-GCM first where the CPU has AES instructions,
 * ChaCha20-Poly1305 first where it has not. A static string. */
const char *ss_tlsctx_default_suites(void);

/* Whole days until own_cert expires (negative when expired), rounded
 * down; 0 when the endpoint has no certificate of its own. */
int ss_tlsctx_days_left(const struct ss_tlsctx *t, time_t now);

/* The notAfter of own_cert in seconds since the epoch; 0 when the
 * endpoint has no certificate of its own (or it cannot be read). */
time_t ss_tlsctx_not_after(const struct ss_tlsctx *t);

#endif
