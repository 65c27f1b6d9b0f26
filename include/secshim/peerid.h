/*
 * peerid.h - the identities of allow-peer (docs/policy.md, "allow-peer"):
 * parsed and validated when the policy is loaded, compared with what a
 * verified peer certificate presents.
 *
 * No OpenSSL here: policy.c, which parses the option, is in libsecshim.so
 * (include/secshim/tlsapi.h). verify.c reads the certificate and asks
 * ss_peer_id_matches about each value it presents
 * (ss_verify_allow_peer, verify.h).
 */
#ifndef SECSHIM_PEERID_H
#define SECSHIM_PEERID_H

#include <stdbool.h>
#include <stddef.h>

/* What an identity names in the certificate. */
enum ss_peer_id_kind {
    SS_PEER_ID_CN,  /* "CN=..."  a commonName of the subject DN */
    SS_PEER_ID_OU,  /* "OU=..."  an organizationalUnitName of the subject */
    SS_PEER_ID_O,   /* "O=..."   an organizationName of the subject */
    SS_PEER_ID_DNS, /* "DNS:..." a subjectAltName dNSName */
    SS_PEER_ID_URI, /* "URI:..." a subjectAltName uniformResourceIdentifier */
    SS_PEER_ID_IP   /* "IP:..."  a subjectAltName iPAddress */
};

struct ss_peer_id {
    enum ss_peer_id_kind kind;
    char *text;              /* as written ("DNS:*.example.com"); owned */
    const char *value;       /* into text, after the prefix */
    size_t value_len;
    bool wildcard;           /* DNS: "*." and a name: one label, any */
    unsigned char addr[16];  /* IP: network order, IPv4-mapped as IPv4 */
    size_t addr_len;         /* IP: 4 or 16 */
};

/* An endpoint's allow-peer: n == 0 when it is not set (any verified peer
 * is accepted). Owns its identities. */
struct ss_peer_allow {
    struct ss_peer_id *ids;
    size_t n;
};

/*
 * Parses text ("CN=app", "DNS:*.example.com", "IP:::1", ...) and appends
 * it to a. Returns SS_OK; SS_ERR_CONFIG when text is not a valid
 * identity, with why holding one sentence saying what is wrong (an
 * unknown form, an empty value, an address that does not parse, a
 * wildcard that is not the whole left-most label, ...); or SS_ERR_NOMEM.
 * a is unchanged on failure.
 */
int ss_peer_allow_add(struct ss_peer_allow *a, const char *text, char *why,
                      size_t why_len);

/* A copy of src into dst (zeroed first). Returns SS_OK or SS_ERR_NOMEM
 * (dst then empty). */
int ss_peer_allow_copy(struct ss_peer_allow *dst,
                       const struct ss_peer_allow *src);

/* Frees what a owns and empties it; safe on an empty one. */
void ss_peer_allow_free(struct ss_peer_allow *a);

/*
 * Whether id matches one value of the given kind that a certificate
 * presents: value is UTF-8 text of len bytes (CN, OU, O, DNS, URI) or the
 * address bytes (IP, 4 or 16). The rules (docs/policy.md):
 *   CN, OU, O, URI  the same bytes;
 *   DNS             the same name ignoring ASCII case; "*.rest" matches a
 *                   name of exactly one more label than rest; a presented
 *                   name holding '*' (a certificate's own wildcard) is
 *                   never expanded: it matches only the same wildcard
 *                   entry, never a literal name;
 *   IP              the same address (IPv4-mapped IPv6 compared as IPv4).
 * A kind other than id's never matches.
 */
bool ss_peer_id_matches(const struct ss_peer_id *id,
                        enum ss_peer_id_kind kind, const void *value,
                        size_t len);

/* "CN=", "OU=", "O=", "DNS:", "URI:" or "IP:". */
const char *ss_peer_id_prefix(enum ss_peer_id_kind kind);

#endif
