/*
 * resolve.c - remembers which host name each address came from, so that
 * connect() can match name-based endpoints and send SNI / check the name
 * the program asked for (docs/design.md, "Endpoints and matching").
 *
 * A ring of the most recent RING_SIZE (address, name) pairs: bounded
 * memory, and the newest answer for an address wins.
 */
#include "shim.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "secshim/log.h"

#define RING_SIZE 256

/* How long a miss of resolve_policy_name is believed: a program that keeps
 * connecting by address must not cost a name lookup per connect. */
#define UNNAMED_TTL_S 30

struct resolved {
    int family;              /* AF_INET / AF_INET6; 0 = empty */
    unsigned char addr[16];  /* network order */
    char name[256];          /* "" in an entry that records a miss */
    uint16_t miss_port;      /* a miss: the port it was for */
    long long miss_until;    /* a miss: believed until (monotonic s) */
};

/* Guards ring and next. A leaf lock. */
static pthread_mutex_t resolve_lock = PTHREAD_MUTEX_INITIALIZER;
static struct resolved ring[RING_SIZE];
static size_t next;

/* The address bytes of sa; returns their length (4, 16) or 0. */
static size_t addr_bytes(const struct sockaddr *sa, const unsigned char **out)
{
    if (sa->sa_family == AF_INET) {
        *out = (const unsigned char *)&((const struct sockaddr_in *)sa)
                   ->sin_addr;
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        *out = (const unsigned char *)&((const struct sockaddr_in6 *)sa)
                   ->sin6_addr;
        return 16;
    }
    return 0;
}

/* Numeric names are addresses already: the policy matches them as such. */
static bool is_numeric(const char *node)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, node, buf) == 1 ||
           inet_pton(AF_INET6, node, buf) == 1 || strchr(node, '%') != NULL;
}

/* Records that the program's name node resolved to the address bytes.
 * Called with resolve_lock held. */
static void remember_locked(const char *node, int family,
                            const void *bytes, size_t n)
{
    struct resolved *r = &ring[next];
    next = (next + 1) % RING_SIZE;
    memset(r, 0, sizeof(*r));
    r->family = family;
    memcpy(r->addr, bytes, n);
    snprintf(r->name, sizeof(r->name), "%s", node);
}

static long long monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

static bool same_address(const struct resolved *r, int family,
                         const unsigned char *bytes, size_t n)
{
    return r->family == family && memcmp(r->addr, bytes, n) == 0;
}

static void remember(const char *node, const struct addrinfo *res)
{
    pthread_mutex_lock(&resolve_lock);
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        const unsigned char *bytes;
        size_t n = ai->ai_addr != NULL ? addr_bytes(ai->ai_addr, &bytes) : 0;
        if (n != 0)
            remember_locked(node, ai->ai_addr->sa_family, bytes, n);
    }
    pthread_mutex_unlock(&resolve_lock);
}

/* The same for gethostbyname's answer. */
static void remember_hostent(const char *node, const struct hostent *h)
{
    size_t n = h->h_addrtype == AF_INET ? 4 : h->h_addrtype == AF_INET6 ? 16 : 0;
    if (n == 0 || (size_t)h->h_length != n)
        return;
    pthread_mutex_lock(&resolve_lock);
    for (char *const *a = h->h_addr_list; *a != NULL; a++)
        remember_locked(node, h->h_addrtype, *a, n);
    pthread_mutex_unlock(&resolve_lock);
}

bool resolve_lookup(const struct sockaddr *addr, char *name, size_t len)
{
    const unsigned char *bytes;
    size_t n = addr_bytes(addr, &bytes);
    if (n == 0)
        return false;
    bool found = false;
    pthread_mutex_lock(&resolve_lock);
    for (size_t i = 0; i < RING_SIZE && !found; i++) {
        const struct resolved *r = &ring[(next + RING_SIZE - 1 - i) %
                                         RING_SIZE];
        if (r->name[0] != '\0' &&
            same_address(r, addr->sa_family, bytes, n)) {
            snprintf(name, len, "%s", r->name);
            found = true;
        }
    }
    pthread_mutex_unlock(&resolve_lock);
    return found;
}

/* Whether resolve_policy_name found no name for addr:port less than
 * UNNAMED_TTL_S ago. */
static bool recent_miss(const unsigned char *bytes, size_t n, int family,
                        uint16_t port)
{
    long long now = monotonic_seconds();
    bool miss = false;
    pthread_mutex_lock(&resolve_lock);
    for (size_t i = 0; i < RING_SIZE && !miss; i++) {
        const struct resolved *r = &ring[i];
        miss = r->name[0] == '\0' && r->miss_port == port &&
               r->miss_until > now && same_address(r, family, bytes, n);
    }
    pthread_mutex_unlock(&resolve_lock);
    return miss;
}

static void remember_miss(const unsigned char *bytes, size_t n, int family,
                          uint16_t port)
{
    pthread_mutex_lock(&resolve_lock);
    remember_locked("", family, bytes, n);
    struct resolved *r = &ring[(next + RING_SIZE - 1) % RING_SIZE];
    r->miss_port = port;
    r->miss_until = monotonic_seconds() + UNNAMED_TTL_S;
    pthread_mutex_unlock(&resolve_lock);
}

/* Whether name (an endpoint's host) resolves to the address of addr. */
static bool name_has_address(const char *name, const struct sockaddr *addr)
{
    const unsigned char *want;
    size_t n = addr_bytes(addr, &want);
    struct addrinfo hints = {.ai_family = addr->sa_family,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (n == 0 || REAL(getaddrinfo)(name, NULL, &hints, &res) != 0)
        return false;
    bool found = false;
    for (const struct addrinfo *ai = res; ai != NULL && !found;
         ai = ai->ai_next) {
        const unsigned char *have;
        found = ai->ai_addr != NULL && addr_bytes(ai->ai_addr, &have) == n &&
                memcmp(have, want, n) == 0;
    }
    if (found)
        remember(name, res);
    freeaddrinfo(res);
    return found;
}

static uint16_t addr_port(const struct sockaddr *sa)
{
    return ntohs(sa->sa_family == AF_INET
                     ? ((const struct sockaddr_in *)sa)->sin_port
                     : ((const struct sockaddr_in6 *)sa)->sin6_port);
}

bool resolve_policy_name(const struct ss_policy *p,
                         const struct sockaddr *addr, char *name, size_t len)
{
    const unsigned char *bytes;
    size_t n = addr_bytes(addr, &bytes);
    if (n == 0)
        return false;
    uint16_t port = addr_port(addr);
    if (recent_miss(bytes, n, addr->sa_family, port))
        return false;
    if (ss_log_enabled(SS_LOG_DEBUG)) {
        char text[INET6_ADDRSTRLEN] = "?";
        inet_ntop(addr->sa_family, bytes, text, sizeof(text));
        ss_log(SS_LOG_DEBUG, "no name known for %s port %u: looking up the "
               "names of connect endpoints for that port", text, port);
    }
    bool looked_up = false;
    for (size_t i = 0; i < p->n_endpoints; i++) {
        const struct ss_endpoint *ep = &p->endpoints[i];
        if (ep->direction != SS_DIR_CONNECT ||
            ep->match.kind != SS_HOST_NAME || ep->match.port != port)
            continue;
        if (name_has_address(ep->match.name, addr)) {
            snprintf(name, len, "%s", ep->match.name);
            return true;
        }
        looked_up = true;
    }
    /* Only a miss that cost lookups is kept: the ring also holds the
     * names the program resolved, which other misses must not push out. */
    if (looked_up)
        remember_miss(bytes, n, addr->sa_family, port);
    return false;
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
    pthread_mutex_init(&resolve_lock, NULL);
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
