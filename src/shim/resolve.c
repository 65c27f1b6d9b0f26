/*
 * resolve.c - which connect endpoint a destination address belongs to,
 * and the name sent as SNI and checked for it (docs/design.md, "Endpoints
 * and matching"; docs/shim.md, "Matching a destination").
 *
 * Two kinds of memory, with different jobs:
 *
 * - Address sets. The host name of every connect endpoint given by name
 *   is resolved by the shim itself, through the real resolver, into the
 *   set of addresses it means; a destination in that set belongs to the
 *   endpoint. Whether a connection is TLS therefore depends only on
 *   addresses the shim looked up, never on which name the program used
 *   (an alias, a virtual host, a number) or on whether it used the
 *   resolver at all. A set is made the first time a connect needs it and
 *   refreshed when older than ADDRSET_TTL_S; the sets belong to one policy
 *   snapshot and are dropped when another is in use.
 *
 * - The ring of names the program resolved (getaddrinfo, gethostbyname):
 *   the most recent RING_SIZE (address, name) pairs. It only chooses the
 *   SNI and checked name for endpoints given as an address, a prefix or
 *   `*`, and only when the address has exactly one name in it.
 */
#include "process.h"
#include "real.h"
#include "resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "secshim/log.h"

#define RING_SIZE 256

/* How long a resolved address set is used before a connect that needs it
 * looks the name up again: DNS changes reach the shim within a minute,
 * and a busy client pays one lookup per name per minute, not one per
 * connect. */
#define ADDRSET_TTL_S 60

/* After a failed lookup, how long the previous set (or none) is used
 * before trying again: a name that does not resolve must not cost a
 * resolver timeout on every connect. */
#define ADDRSET_RETRY_S 5

#define SS_STR_(x) #x
#define SS_STR(x) SS_STR_(x)

/* One name the program resolved, and one address it got. */
struct remembered {
    struct ss_net_addr addr; /* family 0: empty; IPv4-mapped stored as IPv4 */
    char name[256];
};

/* The addresses of one name endpoint. */
struct addrset {
    struct ss_net_addr *addrs; /* owned, n of them; ports are 0 */
    size_t n;
    long long fresh_until;     /* monotonic s; 0: never resolved */
    long long retry_at;        /* a lookup failed: not again before this */
};

/* The address sets of one policy snapshot, by endpoint index (only the
 * entries of name connect endpoints are used). */
struct addrsets {
    struct ss_policy *policy;  /* a reference: the snapshot they belong to */
    size_t n;
    struct addrset set[];
};

/* Guards ring, next and sets. A leaf lock: never held across a lookup,
 * an allocation of the resolver's, a log line or a policy release. */
static pthread_mutex_t resolve_lock = PTHREAD_MUTEX_INITIALIZER;
static struct remembered ring[RING_SIZE];
static size_t next;
static struct addrsets *sets;

/* Set while this thread is inside the real resolver: a resolver that
 * connects over TCP itself (DNS over TCP to a port some endpoint uses)
 * is answered from the sets as they are, never by a nested lookup. */
static _Thread_local bool in_lookup;

static long long monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

/* Numeric names are addresses already, not names: every form the
 * resolver accepts as a number (inet_aton's "127.1" and "2130706433"
 * too), and scoped IPv6. */
static bool is_numeric(const char *node)
{
    unsigned char buf[16];
    struct in_addr in;
    return inet_pton(AF_INET, node, buf) == 1 ||
           inet_pton(AF_INET6, node, buf) == 1 || inet_aton(node, &in) != 0 ||
           strchr(node, '%') != NULL;
}

/* The address text of a (IPv4 for a mapped one), "?" when it has none. */
static void addr_text(const struct ss_net_addr *a, char *out, size_t len)
{
    if (inet_ntop(a->family, a->bytes, out, (socklen_t)len) == NULL)
        snprintf(out, len, "?");
}

/* --- the ring of names the program resolved ------------------------------- */

/* Records that the program's name node resolved to a. Called with
 * resolve_lock held. */
static void remember_locked(const char *node, const struct ss_net_addr *a)
{
    struct remembered *r = &ring[next];
    next = (next + 1) % RING_SIZE;
    r->addr = *a;
    r->addr.port = 0;
    snprintf(r->name, sizeof(r->name), "%s", node);
}

static void remember(const char *node, const struct addrinfo *res)
{
    pthread_mutex_lock(&resolve_lock);
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        struct ss_net_addr a;
        if (ss_net_addr_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &a))
            remember_locked(node, &a);
    }
    pthread_mutex_unlock(&resolve_lock);
}

/* One address of a hostent (4 or 16 bytes of family af) as an
 * ss_net_addr, through the one normalisation: gethostbyname2 may answer
 * IPv4-mapped IPv6 addresses. */
static bool hostent_addr(int af, const char *bytes, struct ss_net_addr *a)
{
    if (af == AF_INET) {
        struct sockaddr_in in = {.sin_family = AF_INET};
        memcpy(&in.sin_addr, bytes, 4);
        return ss_net_addr_from_sockaddr((struct sockaddr *)&in, sizeof(in),
                                         a);
    }
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    memcpy(&in6.sin6_addr, bytes, 16);
    return ss_net_addr_from_sockaddr((struct sockaddr *)&in6, sizeof(in6), a);
}

/* The same as remember() for gethostbyname's answer. */
static void remember_hostent(const char *node, const struct hostent *h)
{
    if (!(h->h_addrtype == AF_INET && h->h_length == 4) &&
        !(h->h_addrtype == AF_INET6 && h->h_length == 16))
        return;
    pthread_mutex_lock(&resolve_lock);
    for (char *const *p = h->h_addr_list; *p != NULL; p++) {
        struct ss_net_addr a;
        if (hostent_addr(h->h_addrtype, *p, &a))
            remember_locked(node, &a);
    }
    pthread_mutex_unlock(&resolve_lock);
}

enum remembered_names { NAMES_NONE, NAMES_ONE, NAMES_SEVERAL };

/* Whether the ring holds no name, exactly one (copied into name), or
 * several different names for a. */
static enum remembered_names remembered_name(const struct ss_net_addr *a,
                                             char *name, size_t len)
{
    enum remembered_names found = NAMES_NONE;
    char first[256] = "";
    pthread_mutex_lock(&resolve_lock);
    for (size_t i = 0; i < RING_SIZE && found != NAMES_SEVERAL; i++) {
        const struct remembered *r = &ring[i];
        if (r->addr.family == 0 || !ss_net_addr_equal(&r->addr, a))
            continue;
        if (found == NAMES_NONE) {
            snprintf(first, sizeof(first), "%s", r->name);
            found = NAMES_ONE;
        } else if (!ss_host_name_equal(first, r->name)) {
            found = NAMES_SEVERAL;
        }
    }
    pthread_mutex_unlock(&resolve_lock);
    if (found == NAMES_ONE)
        snprintf(name, len, "%s", first);
    return found;
}

/* --- address sets of name endpoints ---------------------------------------- */

static void addrsets_free(struct addrsets *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->set[i].addrs);
    ss_policy_unref(s->policy);
    free(s);
}

/*
 * Makes `sets` the (empty) sets of snapshot p unless they already are.
 * Returns the sets it replaced, which the caller frees after unlocking
 * (releasing a snapshot may free it, which is not done under a leaf
 * lock). Out of memory leaves `sets` NULL: every lookup is then made for
 * the connect at hand and not kept. Called with resolve_lock held.
 */
static struct addrsets *adopt_locked(struct ss_policy *p)
{
    if (sets != NULL && sets->policy == p)
        return NULL;
    struct addrsets *old = sets;
    sets = calloc(1, sizeof(*sets) + p->n_endpoints * sizeof(sets->set[0]));
    if (sets != NULL) {
        ss_policy_ref(p);
        sets->policy = p;
        sets->n = p->n_endpoints;
    }
    return old;
}

static bool list_has(const struct ss_net_addr *list, size_t n,
                     const struct ss_net_addr *a)
{
    for (size_t i = 0; i < n; i++)
        if (ss_net_addr_equal(&list[i], a))
            return true;
    return false;
}

/*
 * Looks name up through the real resolver, both families, and returns its
 * distinct addresses in *out (owned by the caller) and their number in
 * *n. Returns 0 or the resolver's EAI_* code. Called with no lock held.
 */
static int lookup(const char *name, struct ss_net_addr **out, size_t *n)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    *out = NULL;
    *n = 0;
    in_lookup = true;
    int rc = REAL(getaddrinfo)(name, NULL, &hints, &res);
    in_lookup = false;
    if (rc != 0)
        return rc;
    size_t max = 0;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        max++;
    *out = calloc(max > 0 ? max : 1, sizeof(**out));
    if (*out == NULL) {
        freeaddrinfo(res);
        return EAI_MEMORY;
    }
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        struct ss_net_addr a;
        if (!ss_net_addr_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &a) ||
            list_has(*out, *n, &a))
            continue;
        a.port = 0;
        (*out)[(*n)++] = a;
    }
    freeaddrinfo(res);
    return 0;
}

/* Up to a few addresses of a set as text, for the debug log. */
static void list_text(const struct ss_net_addr *list, size_t n, char *out,
                      size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && i < 8 && used + 1 < len; i++) {
        char one[INET6_ADDRSTRLEN];
        addr_text(&list[i], one, sizeof(one));
        int w = snprintf(out + used, len - used, "%s%s", i > 0 ? ", " : "",
                         one);
        used += w > 0 ? (size_t)w : 0;
    }
    if (n > 8 && used + 1 < len)
        snprintf(out + used, len - used, ", ...");
}

/*
 * Resolves ep's name now (the set was never resolved, or is older than
 * the TTL and no failed lookup is being waited out), publishes the answer
 * in the set when it still belongs to snapshot p, and says whether a is
 * in the set. A failed lookup keeps the previous set and is retried after
 * ADDRSET_RETRY_S. The lookup runs with no lock held; two threads that
 * both find the set stale both look it up, and the later answer stays.
 */
static bool refresh(struct ss_policy *p, size_t i, const struct ss_endpoint *ep,
                    const struct ss_net_addr *a)
{
    struct ss_net_addr *found;
    size_t n;
    int rc = lookup(ep->match.name, &found, &n);
    int e = errno;
    long long now = monotonic_seconds();
    bool debug = ss_log_enabled(SS_LOG_DEBUG);
    bool hit;
    pthread_mutex_lock(&resolve_lock);
    struct addrset *s = sets != NULL && sets->policy == p ? &sets->set[i]
                                                          : NULL;
    if (s != NULL && rc == 0) {
        free(s->addrs);
        s->addrs = found;
        s->n = n;
        s->fresh_until = now + ADDRSET_TTL_S;
        s->retry_at = 0;
        found = NULL;
    } else if (s != NULL) {
        s->retry_at = now + ADDRSET_RETRY_S;
    }
    const struct ss_net_addr *cur = s != NULL ? s->addrs : found;
    size_t cur_n = s != NULL ? s->n : rc == 0 ? n : 0;
    bool known = rc == 0 || (s != NULL && s->fresh_until != 0);
    hit = known ? list_has(cur, cur_n, a)
                : ss_endpoint_unresolved_matches(ep);
    char text[400] = "";
    if (debug)
        list_text(cur, cur_n, text, sizeof(text));
    pthread_mutex_unlock(&resolve_lock);
    if (rc != 0)
        ss_log(SS_LOG_WARNING, "endpoint '%s': cannot resolve '%s': %s; "
               "until it resolves (next try in %d s) %s", ep->name,
               ep->match.name, rc == EAI_SYSTEM ? strerror(e)
                                                : gai_strerror(rc),
               ADDRSET_RETRY_S,
               known ? "the addresses it had before are used"
               : ep->enabled ? "every destination on its port is taken as "
                               "this endpoint's (TLS, its name verified)"
                             : "no destination matches it");
    else if (debug)
        ss_log(SS_LOG_DEBUG, "endpoint '%s': resolved '%s' to %zu "
               "address%s (%s), %s", ep->name, ep->match.name, cur_n,
               cur_n == 1 ? "" : "es", text,
               s != NULL ? "kept for " SS_STR(ADDRSET_TTL_S) " s"
                         : "for this connect only (the policy changed)");
    free(found);
    return hit;
}

/*
 * ss_name_has_addr_fn for ss_policy_match_connect: whether destination a
 * is in the address set of ep (a name endpoint of snapshot arg). A set
 * that is fresh, or whose last lookup failed less than ADDRSET_RETRY_S
 * ago, answers at once; otherwise the name is looked up first, by the
 * connect that needs it (the shim starts no thread of its own). A thread
 * still holding an older snapshot than the sets' makes them anew for it:
 * rare (a reload in the middle of a connect) and only costs lookups.
 */
static bool in_name_set(const struct ss_endpoint *ep,
                        const struct ss_net_addr *a, void *arg)
{
    struct ss_policy *p = arg;
    size_t i = (size_t)(ep - p->endpoints);
    long long now = monotonic_seconds();
    pthread_mutex_lock(&resolve_lock);
    struct addrsets *dropped = adopt_locked(p);
    const struct addrset *s = sets != NULL ? &sets->set[i] : NULL;
    bool usable = in_lookup ||
                  (s != NULL && (now < s->fresh_until || now < s->retry_at));
    bool hit = usable && s != NULL && list_has(s->addrs, s->n, a);
    /* Waiting out a failed first lookup: fail closed (not for the
     * resolver's own connections, which must reach DNS). */
    if (usable && !in_lookup && s != NULL && s->fresh_until == 0)
        hit = ss_endpoint_unresolved_matches(ep);
    pthread_mutex_unlock(&resolve_lock);
    addrsets_free(dropped);
    return usable ? hit : refresh(p, i, ep, a);
}

/* --- the name sent and checked --------------------------------------------- */

/*
 * The name ep's handshake with a sends as SNI and checks, into host
 * (ss_endpoint_tls_name decides): for an address, prefix or `*`
 * endpoint it is the one name the program resolved to a, from the ring.
 */
static void choose_name(const struct ss_endpoint *ep,
                        const struct ss_net_addr *a, char *host, size_t len)
{
    char name[256];
    /* The ring is scanned (under its lock) only when its answer counts. */
    enum remembered_names names =
        ep->target_name == NULL && ep->match.kind != SS_HOST_NAME
            ? remembered_name(a, name, sizeof(name))
            : NAMES_NONE;
    enum ss_tls_name_source src = ss_endpoint_tls_name(
        ep, names == NAMES_ONE ? name : NULL, a, host, len);
    if (!ss_log_enabled(SS_LOG_DEBUG))
        return;
    const char *why = src == SS_NAME_TARGET     ? "tls-target-name"
                      : src == SS_NAME_ENDPOINT ? "the endpoint's name"
                      : src == SS_NAME_RESOLVED
                          ? "the name the program resolved"
                      : names == NAMES_SEVERAL
                          ? "the program resolved several names to this "
                            "address"
                          : "the program resolved no name to this address";
    char text[INET6_ADDRSTRLEN];
    addr_text(a, text, sizeof(text));
    ss_log(SS_LOG_DEBUG, "endpoint '%s' matches %s port %u: TLS name "
           "'%s' (%s)", ep->name, text, a->port, host, why);
}

const struct ss_endpoint *resolve_match_connect(struct ss_policy *p,
                                                const struct sockaddr *addr,
                                                socklen_t len, char *host,
                                                size_t host_len)
{
    int saved = errno;
    struct ss_net_addr a;
    const struct ss_endpoint *ep = NULL;
    if (p != NULL && ss_net_addr_from_sockaddr(addr, len, &a))
        ep = ss_policy_match_connect(p, addr, len, in_name_set, p);
    if (ep != NULL)
        choose_name(ep, &a, host, host_len);
    errno = saved;
    return ep;
}

void resolve_fork_prepare(void)
{
    pthread_mutex_lock(&resolve_lock);
}

void resolve_fork_parent(void)
{
    pthread_mutex_unlock(&resolve_lock);
}

void resolve_fork_child(void)
{
    pthread_mutex_unlock(&resolve_lock); /* taken by this thread in prepare */
}

/* --- interposed ------------------------------------------------------------ */

static int shim_getaddrinfo(const char *node, const char *service,
                            const struct addrinfo *hints,
                            struct addrinfo **res)
{
    int rc = REAL(getaddrinfo)(node, service, hints, res);
    if (rc == 0 && node != NULL && !is_numeric(node))
        remember(node, *res);
    return rc;
}

/* gethostbyname*: legacy programs resolve with these; the answer points
 * into static or caller storage, so it is copied right away. */
static struct hostent *shim_gethostbyname2(const char *name, int af)
{
    struct hostent *h = REAL(gethostbyname2)(name, af);
    if (h != NULL && name != NULL && !is_numeric(name))
        remember_hostent(name, h);
    return h;
}

static int shim_gethostbyname2_r(const char *name, int af,
                                 struct hostent *ret, char *buf, size_t len,
                                 struct hostent **result, int *h_errnop)
{
    int rc = REAL(gethostbyname2_r)(name, af, ret, buf, len, result,
                                    h_errnop);
    if (rc == 0 && *result != NULL && name != NULL && !is_numeric(name))
        remember_hostent(name, *result);
    return rc;
}

SS_EXPORT struct hostent *gethostbyname(const char *name)
{
    return shim_gethostbyname2(name, AF_INET);
}

SS_EXPORT struct hostent *gethostbyname2(const char *name, int af)
{
    return shim_gethostbyname2(name, af);
}

SS_EXPORT int gethostbyname_r(const char *name, struct hostent *ret,
                              char *buf, size_t len, struct hostent **result,
                              int *h_errnop)
{
    return shim_gethostbyname2_r(name, AF_INET, ret, buf, len, result,
                                 h_errnop);
}

SS_EXPORT int gethostbyname2_r(const char *name, int af,
                               struct hostent *ret, char *buf, size_t len,
                               struct hostent **result, int *h_errnop)
{
    return shim_gethostbyname2_r(name, af, ret, buf, len, result, h_errnop);
}

SS_EXPORT int getaddrinfo(const char *restrict node,
                          const char *restrict service,
                          const struct addrinfo *restrict hints,
                          struct addrinfo **restrict res)
{
    return shim_getaddrinfo(node, service, hints, res);
}

/* --- rcmd and rexec: connections the shim cannot carry ---------------------- */

/*
 * glibc's rcmd and rexec connect with its internal connect, which no
 * preloaded library sees: to a TLS destination they would send the user
 * names, the password and the command in clear. There they are refused
 * (fail closed, docs/shim.md "Every path to the wire"); anywhere else
 * they are libc's, untouched. True when host:port (network order) is a
 * TLS destination; logs why once per call.
 */
static bool legacy_to_tls(const char *call, const char *host,
                          uint16_t port_net, sa_family_t af)
{
    struct ss_policy *p = shim_policy_get();
    if (p == NULL || host == NULL) {
        ss_policy_unref(p);
        return false;
    }
    struct addrinfo hints = {.ai_family = af, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    const struct ss_endpoint *ep = NULL;
    if (REAL(getaddrinfo)(host, NULL, &hints, &res) == 0) {
        for (struct addrinfo *ai = res; ai != NULL && ep == NULL;
             ai = ai->ai_next) {
            char name[256];
            if (ai->ai_family == AF_INET)
                ((struct sockaddr_in *)ai->ai_addr)->sin_port = port_net;
            else if (ai->ai_family == AF_INET6)
                ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = port_net;
            else
                continue;
            ep = resolve_match_connect(p, ai->ai_addr, ai->ai_addrlen, name,
                                       sizeof(name));
        }
        freeaddrinfo(res);
    }
    if (ep != NULL) {
        struct ss_log_fields f;
        ss_log_fields_init(&f);
        ss_log_field_endpoint(&f, ep->name);
        ss_log_fieldf(&f, "peer", "%s:%u", host, ntohs(port_net));
        ss_log_field(&f, "direction", "connect");
        ss_log_fieldf(&f, "reason", "%s cannot be made TLS", call);
        ss_log_event(SS_LOG_ERROR, "refused", &f, "endpoint '%s': %s to %s "
                     "port %u refused: glibc connects it where the shim "
                     "cannot make it TLS", ep->name, call, host,
                     ntohs(port_net));
    }
    ss_policy_unref(p);
    return ep != NULL;
}

static int shim_rcmd_af(char **ahost, unsigned short inport,
                        const char *locuser, const char *remuser,
                        const char *cmd, int *fd2p, sa_family_t af)
{
    if (ahost != NULL && legacy_to_tls("rcmd", *ahost, inport, af)) {
        errno = ECONNREFUSED;
        return -1;
    }
    return REAL(rcmd_af)(ahost, inport, locuser, remuser, cmd, fd2p, af);
}

static int shim_rexec_af(char **ahost, int rport, const char *name,
                         const char *pass, const char *cmd, int *fd2p,
                         sa_family_t af)
{
    if (ahost != NULL &&
        legacy_to_tls("rexec", *ahost, (uint16_t)rport, af)) {
        errno = ECONNREFUSED;
        return -1;
    }
    return REAL(rexec_af)(ahost, rport, name, pass, cmd, fd2p, af);
}

SS_EXPORT int rcmd_af(char **ahost, unsigned short inport,
                      const char *locuser, const char *remuser,
                      const char *cmd, int *fd2p, sa_family_t af)
{
    return shim_rcmd_af(ahost, inport, locuser, remuser, cmd, fd2p, af);
}

SS_EXPORT int rcmd(char **ahost, unsigned short inport, const char *locuser,
                   const char *remuser, const char *cmd, int *fd2p)
{
    return shim_rcmd_af(ahost, inport, locuser, remuser, cmd, fd2p, AF_INET);
}

SS_EXPORT int rexec_af(char **ahost, int rport, const char *name,
                       const char *pass, const char *cmd, int *fd2p,
                       sa_family_t af)
{
    return shim_rexec_af(ahost, rport, name, pass, cmd, fd2p, af);
}

SS_EXPORT int rexec(char **ahost, int rport, const char *name,
                    const char *pass, const char *cmd, int *fd2p)
{
    return shim_rexec_af(ahost, rport, name, pass, cmd, fd2p, AF_INET);
}
