/*
 * protocol.h - sec-protocol / tls-version / protocol-list to the set of TLS
 * versions an endpoint allows, and applying that set to an SSL_CTX.
 *
 * Modes (docs/policy.md has the table):
 *   unset          TLS 1.2 and 1.3 (the secure default)
 *   SSLv23         flexible: the highest version both sides allow, down to
 *                  the oldest the linked OpenSSL can do (legacy: warning)
 *   SSLv3 TLSv1 TLSv11 TLSv12 TLSv13
 *                  strict: exactly that version
 *   tls-version    Java-style strict names: TLSv1 TLSv1.1 TLSv1.2 TLSv1.3
 *   protocol-list  Java-style list of the versions allowed (may have gaps)
 */
#ifndef SECSHIM_PROTOCOL_H
#define SECSHIM_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "secshim/common.h"

enum ss_proto_mode {
    SS_PROTO_DEFAULT,  /* nothing set: TLS 1.2 + 1.3 */
    SS_PROTO_FLEXIBLE, /* SSLv23 */
    SS_PROTO_STRICT,   /* one exact version */
    SS_PROTO_LIST      /* protocol-list: an explicit set */
};

/* Bits of ss_proto.versions. */
enum ss_proto_version_bit {
    SS_V_SSL3 = 1u << 0,
    SS_V_TLS1 = 1u << 1,
    SS_V_TLS11 = 1u << 2,
    SS_V_TLS12 = 1u << 3,
    SS_V_TLS13 = 1u << 4
};

struct ss_proto {
    enum ss_proto_mode mode;
    unsigned versions;  /* set of SS_V_* allowed, never empty once parsed */
    int min_version;    /* OpenSSL constant (TLS1_VERSION...) of the lowest */
    int max_version;    /* ... and of the highest allowed version */
    int security_level; /* -1: keep OpenSSL's default; 0: needed by legacy */
    bool legacy;        /* allows TLS 1.0/1.1: warn when applied */
};

/*
 * Resolves the three settings (each may be NULL / empty) into out. At most
 * one of the three may be set; otherwise SS_ERR_CONFIG with err naming the
 * conflict. Unknown names are SS_ERR_CONFIG; a version the linked OpenSSL
 * cannot do (SSLv3 on Debian) is SS_ERR_UNSUPPORTED. The messages do not
 * carry file:line: the policy layer prefixes those.
 */
int ss_protocol_parse(const char *sec_protocol, const char *tls_version,
                      const char *const *protocol_list, size_t list_len,
                      struct ss_proto *out, struct ss_errbuf *err);

/*
 * Sets min/max version, the holes of a protocol list, and the security
 * level on ctx. Returns SS_OK, SS_ERR_INVAL (nothing to apply) or
 * SS_ERR_TLS. A server context honours a list's gaps exactly; OpenSSL
 * clients can only offer one contiguous range, so a client context (made
 * with TLS_client_method) gets ss_protocol_client_versions() instead.
 */
int ss_protocol_apply(SSL_CTX *ctx, const struct ss_proto *proto,
                      struct ss_errbuf *err);

/*
 * The versions a client context can offer for proto: the highest
 * contiguous run of proto->versions ({TLSv1.1, TLSv1.3} -> {TLSv1.3}).
 * Equal to proto->versions unless a protocol-list has gaps.
 */
unsigned ss_protocol_client_versions(const struct ss_proto *proto);

/*
 * The OpenSSL cipher string (TLS 1.2) of an endpoint whose policy sets no
 * cipher-list: ECDHE with AES-GCM or ChaCha20-Poly1305 only, AES-128-GCM
 * first when aes_first (the CPU has AES instructions, cpu.h), else
 * ChaCha20-Poly1305 first. NULL when proto allows TLS 1.0 or 1.1: those
 * versions have no such suite, and OpenSSL's own default stays. A static
 * string.
 */
const char *ss_protocol_default_cipher_list(const struct ss_proto *proto,
                                            bool aes_first);

/* Writes e.g. "TLSv1.2-TLSv1.3 (default)" or "TLSv1.1 only (strict)". */
const char *ss_protocol_describe(const struct ss_proto *proto, char *buf,
                                 size_t len);

/* "TLSv1.2" for TLS1_2_VERSION; "unknown" otherwise. */
const char *ss_protocol_version_name(int version);

#endif
