/*
 * peerid.c - allow-peer identities: parsing and comparison (see peerid.h;
 * docs/policy.md, "allow-peer", for the rules, docs/verification.md for
 * where the check sits).
 *
 * Built into both libraries: libsecshim.so parses at policy load,
 * libsecshim-tls.so compares during handshakes. Neither part calls
 * OpenSSL or depends on the locale (DNS names fold ASCII case only).
 */
#include "secshim/peerid.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secshim/alloc.h"
#include "secshim/common.h"

/* The forms, in the order messages list them. */
static const struct {
    const char *prefix;
    enum ss_peer_id_kind kind;
} forms[] = {
    {"CN=", SS_PEER_ID_CN},   {"OU=", SS_PEER_ID_OU},
    {"O=", SS_PEER_ID_O},     {"DNS:", SS_PEER_ID_DNS},
    {"URI:", SS_PEER_ID_URI}, {"IP:", SS_PEER_ID_IP},
};

#define N_FORMS (sizeof(forms) / sizeof(forms[0]))

/* The prefix of kind, a static string ("?" for no kind). */
const char *ss_peer_id_prefix(enum ss_peer_id_kind kind)
{
    for (size_t i = 0; i < N_FORMS; i++)
        if (forms[i].kind == kind)
            return forms[i].prefix;
    return "?";
}

/* ---- parsing ------------------------------------------------------------ */

static int bad(char *why, size_t len, const char *text, const char *what)
{
    snprintf(why, len, "'%s': %s", text, what);
    return SS_ERR_CONFIG;
}

static int parse_dns(struct ss_peer_id *id, char *why, size_t len)
{
    const char *v = id->value;
    const char *star = strchr(v, '*');
    if (star != NULL) {
        /* Only "*." + a name: one whole label, the left-most, and only
         * one; "w*.example.com", "a.*.example.com" and "*" are refused. */
        if (star != v || v[1] != '.' || strchr(v + 1, '*') != NULL ||
            !ss_dns_name_valid(v + 2, id->value_len - 2))
            return bad(why, len, id->text,
                       "a wildcard must be the whole left-most label of a "
                       "DNS name (\"DNS:*.example.com\")");
        id->wildcard = true;
        return SS_OK;
    }
    if (!ss_dns_name_valid(v, id->value_len))
        return bad(why, len, id->text,
                   "is not a valid DNS name (labels of letters, digits, "
                   "'-' and '_', no trailing dot)");
    return SS_OK;
}

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0,
                                            0, 0, 0, 0, 0xff, 0xff};

static int parse_ip(struct ss_peer_id *id, char *why, size_t len)
{
    if (inet_pton(AF_INET, id->value, id->addr) == 1) {
        id->addr_len = 4;
        return SS_OK;
    }
    if (inet_pton(AF_INET6, id->value, id->addr) != 1)
        return bad(why, len, id->text,
                   "is not an IPv4 or IPv6 address (no brackets, no "
                   "prefix length, no zone)");
    id->addr_len = 16;
    if (memcmp(id->addr, v4_mapped, sizeof(v4_mapped)) == 0) {
        memmove(id->addr, id->addr + 12, 4);
        id->addr_len = 4;
    }
    return SS_OK;
}

/* A scheme (RFC 3986: a letter, then letters, digits, '+', '-', '.'),
 * ':', and something after it. */
static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool has_scheme(const char *v)
{
    if (!is_alpha((unsigned char)v[0]))
        return false;
    size_t n = 1;
    while (is_alpha((unsigned char)v[n]) || (v[n] >= '0' && v[n] <= '9') ||
           v[n] == '+' || v[n] == '-' || v[n] == '.')
        n++;
    return v[n] == ':' && v[n + 1] != '\0';
}

/* Parses text into id, which borrows nothing: id->text is text's copy. */
static int parse_id(const char *text, struct ss_peer_id *id, char *why,
                    size_t len)
{
    memset(id, 0, sizeof(*id));
    size_t form = N_FORMS;
    for (size_t i = 0; i < N_FORMS && form == N_FORMS; i++)
        if (strncmp(text, forms[i].prefix, strlen(forms[i].prefix)) == 0)
            form = i;
    if (form == N_FORMS)
        return bad(why, len, text,
                   "unknown form: use CN=, OU=, O=, DNS:, URI: or IP: "
                   "followed by the value");
    size_t skip = strlen(forms[form].prefix);
    if (text[skip] == '\0')
        return bad(why, len, text, "the value after the prefix is empty");
    id->text = ss_strdup(text);
    if (id->text == NULL)
        return SS_ERR_NOMEM;
    id->kind = forms[form].kind;
    id->value = id->text + skip;
    id->value_len = strlen(id->value);
    int rc = SS_OK;
    if (id->kind == SS_PEER_ID_DNS)
        rc = parse_dns(id, why, len);
    else if (id->kind == SS_PEER_ID_IP)
        rc = parse_ip(id, why, len);
    else if (id->kind == SS_PEER_ID_URI && !has_scheme(id->value))
        rc = bad(why, len, text,
                 "is not a URI with a scheme (\"URI:spiffe://...\")");
    if (rc < 0) {
        free(id->text);
        memset(id, 0, sizeof(*id));
    }
    return rc;
}

/* Parses text onto the end of a (peerid.h). Returns SS_OK, SS_ERR_CONFIG
 * (why says what is wrong) or SS_ERR_NOMEM; a is unchanged on failure. */
int ss_peer_allow_add(struct ss_peer_allow *a, const char *text, char *why,
                      size_t why_len)
{
    struct ss_peer_id id;
    SS_GUARD(parse_id(text, &id, why, why_len));
    struct ss_peer_id *grown = ss_realloc(a->ids, (a->n + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(id.text);
        return SS_ERR_NOMEM;
    }
    a->ids = grown;
    a->ids[a->n++] = id;
    return SS_OK;
}

/* dst becomes a copy of src. Returns SS_OK or SS_ERR_NOMEM (dst empty). */
int ss_peer_allow_copy(struct ss_peer_allow *dst,
                       const struct ss_peer_allow *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src->n == 0)
        return SS_OK;
    dst->ids = ss_calloc(src->n, sizeof(*dst->ids));
    SS_ENSURE(dst->ids != NULL, SS_ERR_NOMEM);
    for (size_t i = 0; i < src->n; i++) {
        struct ss_peer_id *d = &dst->ids[i];
        *d = src->ids[i];
        d->text = ss_strdup(src->ids[i].text);
        if (d->text == NULL) {
            ss_peer_allow_free(dst);
            return SS_ERR_NOMEM;
        }
        d->value = d->text + (src->ids[i].value - src->ids[i].text);
        dst->n = i + 1;
    }
    return SS_OK;
}

/* Frees what a owns and empties it. */
void ss_peer_allow_free(struct ss_peer_allow *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->ids[i].text);
    free(a->ids);
    memset(a, 0, sizeof(*a));
}

/* ---- comparison ----------------------------------------------------------- */

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static bool equal_nocase(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return false;
    return true;
}

static bool dns_matches(const struct ss_peer_id *id, const char *name,
                        size_t len)
{
    /* A certificate's own wildcard stands for many names; it is never
     * taken as one of them: only the same wildcard entry matches it. */
    if (memchr(name, '*', len) != NULL)
        return id->wildcard && len == id->value_len &&
               equal_nocase(name, id->value, len);
    if (!id->wildcard)
        return len == id->value_len && equal_nocase(name, id->value, len);
    /* "*.rest": one non-empty label, then ".rest". */
    const char *suffix = id->value + 1;
    size_t suffix_len = id->value_len - 1;
    if (len <= suffix_len ||
        !equal_nocase(name + len - suffix_len, suffix, suffix_len))
        return false;
    return memchr(name, '.', len - suffix_len) == NULL;
}

static bool ip_matches(const struct ss_peer_id *id, const unsigned char *addr,
                       size_t len)
{
    if (len == 16 && memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0) {
        addr += 12;
        len = 4;
    }
    return len == id->addr_len && memcmp(addr, id->addr, len) == 0;
}

/* Whether id matches the presented value of kind (the rules: peerid.h).
 * Returns false for another kind or a NULL argument. */
bool ss_peer_id_matches(const struct ss_peer_id *id,
                        enum ss_peer_id_kind kind, const void *value,
                        size_t len)
{
    if (id == NULL || value == NULL || kind != id->kind)
        return false;
    switch (kind) {
    case SS_PEER_ID_CN:
    case SS_PEER_ID_OU:
    case SS_PEER_ID_O:
    case SS_PEER_ID_URI:
        return len == id->value_len && memcmp(value, id->value, len) == 0;
    case SS_PEER_ID_DNS:
        return dns_matches(id, value, len);
    case SS_PEER_ID_IP:
        return ip_matches(id, value, len);
    default:
        return false;
    }
}
