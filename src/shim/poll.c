/*
 * poll.c - poll, ppoll, select, pselect, the fortified __poll_chk and
 * __ppoll_chk, and glibc's public aliases __poll and __select.
 *
 * Readiness stays honest (docs/design.md, "Readiness stays honest"). A
 * call with a managed descriptor goes through one poll core: each managed
 * entry asks the kernel, on its private descriptor, for what the
 * connection needs, and reports what shim_revents (drive.c) says the
 * program can do. select's sets are read and written as words, for any
 * nfds. No sock lock is held across a real wait; a call with no managed
 * descriptor is the real one, untouched.
 */
#include "drive.h"
#include "fdtab.h"
#include "real.h"
#include "sock.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>

#include "secshim/log.h"


/* The real wait: ppoll when a signal mask is given, else poll. */
static int real_wait(struct pollfd *k, nfds_t n, int ms, const sigset_t *mask)
{
    if (mask == NULL)
        return REAL(poll)(k, n, ms);
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    return REAL(ppoll)(k, n, ms < 0 ? NULL : &ts, mask);
}

/* Probes every managed entry (socks[i] != NULL) into out[i], setting the
 * kernel's interest k[i].events. Returns how many are ready. */
static int probe_all(struct pollfd *fds, struct pollfd *k,
                     struct shim_sock **socks, nfds_t n, int *cap)
{
    int ready = 0;
    for (nfds_t i = 0; i < n; i++) {
        if (socks[i] == NULL)
            continue;
        struct shim_probe p = {fds[i].events, k[i].revents, 0, false, *cap};
        shim_sock_lock(socks[i]);
        short rev = shim_revents(socks[i], &p);
        shim_sock_unlock(socks[i]);
        *cap = p.cap_ms;
        fds[i].revents = rev;
        k[i].events = p.os;
        k[i].revents = 0;
        if (rev != 0)
            ready++;
    }
    return ready;
}

/*
 * poll() over fds where socks[i] is the managed sock of fds[i] (or NULL).
 * deadline NULL waits forever. Returns the number of entries with
 * revents, or -1 with errno (EINTR, EINVAL...). k is scratch of n.
 */
static int poll_managed(struct pollfd *fds, struct pollfd *k,
                        struct shim_sock **socks, nfds_t n,
                        const struct timespec *deadline,
                        const sigset_t *mask)
{
    for (nfds_t i = 0; i < n; i++) {
        /* The kernel watches the real socket, never the stand-in. */
        k[i] = fds[i];
        if (socks[i] != NULL)
            k[i].fd = socks[i]->priv_fd;
        k[i].revents = 0;
    }
    for (;;) {
        int cap = -1;
        int ready = probe_all(fds, k, socks, n, &cap);
        int ms = ready > 0 ? 0 : shim_ms_min(shim_ms_left(deadline), cap);
        int r = real_wait(k, n, ms, mask);
        if (r < 0 && ready == 0)
            return -1;
        int count = 0;
        for (nfds_t i = 0; i < n; i++) {
            if (socks[i] == NULL) {
                fds[i].revents = r < 0 ? 0 : k[i].revents;
            } else if (fds[i].revents == 0 && r > 0 && k[i].revents != 0) {
                /* The kernel saw something: progress, then look again. */
                struct shim_probe p = {fds[i].events, k[i].revents, 0, false, -1};
                shim_sock_lock(socks[i]);
                fds[i].revents = shim_revents(socks[i], &p);
                shim_sock_unlock(socks[i]);
            }
            k[i].revents = 0;
            if (fds[i].revents != 0)
                count++;
        }
        if (count > 0 || (deadline != NULL && shim_ms_left(deadline) == 0))
            return count;
    }
}

/* Whether an entry of fds may be managed: a look at each slot, taking no
 * reference, so a call on untouched descriptors allocates nothing and
 * keeps errno as it is (poll_any). */
static bool any_managed(const struct pollfd *fds, nfds_t n)
{
    for (nfds_t i = 0; fds != NULL && i < n; i++) {
        if (fdtab_low_empty(fdtab_program_low, fds[i].fd))
            continue;
        struct shim_sock *s = fdtab_get_slow(fds[i].fd);
        if (s != NULL) {
            shim_sock_unref(s);
            return true;
        }
    }
    return false;
}

/* poll_any with at least one managed entry: references on every managed
 * sock for the duration of the call. */
static int poll_some_managed(struct pollfd *fds, nfds_t n,
                             const struct timespec *tmo, const sigset_t *mask)
{
    struct shim_sock *stack_socks[16];
    struct shim_sock **socks = stack_socks;
    if (n > 16) {
        socks = calloc(n, sizeof(*socks));
        if (socks == NULL) {
            errno = ENOMEM;
            return -1;
        }
    }
    for (nfds_t i = 0; i < n; i++)
        socks[i] = fdtab_get(fds[i].fd);
    int r = -1;
    struct timespec deadline = shim_deadline_after_ts(tmo);
    struct pollfd *k = malloc(n * sizeof(*k));
    if (k == NULL)
        errno = ENOMEM;
    else
        r = poll_managed(fds, k, socks, n, tmo != NULL ? &deadline : NULL,
                         mask);
    int saved = errno;
    free(k);
    for (nfds_t i = 0; i < n; i++)
        shim_sock_unref(socks[i]);
    if (socks != stack_socks)
        free(socks);
    errno = saved;
    return r;
}

/* The poll family's common entry: a call without a managed descriptor is
 * the real one, untouched. timeout NULL: forever. A descriptor another
 * thread makes managed after the look is treated as the kernel's for this
 * call, as a poll that had already started would. */
static int poll_any(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
                    const sigset_t *mask, bool is_ppoll, int poll_ms)
{
    if (!any_managed(fds, n))
        return is_ppoll ? REAL(ppoll)(fds, n, tmo, mask)
                        : REAL(poll)(fds, n, poll_ms);
    return poll_some_managed(fds, n, tmo, mask);
}

static int shim_poll(struct pollfd *fds, nfds_t n, int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    return poll_any(fds, n, ms < 0 ? NULL : &ts, NULL, false, ms);
}

static int shim_ppoll(struct pollfd *fds, nfds_t n,
                      const struct timespec *tmo, const sigset_t *mask)
{
    if (!shim_timeout_valid(tmo)) {
        errno = EINVAL;
        return -1;
    }
    return poll_any(fds, n, tmo, mask, true, 0);
}

SS_EXPORT int poll(struct pollfd *fds, nfds_t n, int ms)
{
    return shim_poll(fds, n, ms);
}

SS_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
                    const sigset_t *mask)
{
    return shim_ppoll(fds, n, tmo, mask);
}

/* glibc's fortify failure report; it does not return. */
extern void __chk_fail(void) __attribute__((noreturn));

SS_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int ms, size_t fdslen)
{
    if (fdslen / sizeof(*fds) < n)
        __chk_fail();
    return shim_poll(fds, n, ms);
}

SS_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n,
                          const struct timespec *tmo, const sigset_t *mask,
                          size_t fdslen)
{
    if (fdslen / sizeof(*fds) < n)
        __chk_fail();
    return shim_ppoll(fds, n, tmo, mask);
}

/* --- select and pselect ----------------------------------------------------- */

/*
 * Programs may pass fd_set arrays larger than fd_set (nfds > FD_SETSIZE,
 * allocated as arrays of longs). FD_ISSET/FD_SET would trip glibc's
 * fortify check there, so the sets are read and written as words here,
 * the kernel's own layout (docs/shim.md, "select nfds").
 */
#define WORD_BITS (8 * sizeof(unsigned long))

static bool bit_get(const fd_set *set, int fd)
{
    const unsigned long *w = (const unsigned long *)(const void *)set;
    return set != NULL && (w[fd / WORD_BITS] >> (fd % WORD_BITS)) & 1ul;
}

static void bit_set(fd_set *set, int fd)
{
    unsigned long *w = (unsigned long *)(void *)set;
    w[fd / WORD_BITS] |= 1ul << (fd % WORD_BITS);
}

/* Clears the words the kernel writes back for nfds: ceil(nfds / bits). */
static void bits_zero(fd_set *set, int nfds)
{
    if (set != NULL)
        memset(set, 0, ((size_t)nfds + WORD_BITS - 1) / WORD_BITS *
                           sizeof(unsigned long));
}

/* select's nfds as the kernel uses it: it looks no further than its
 * descriptor table, which the soft RLIMIT_NOFILE bounds for numbers the
 * process can open (a table that grew before the limit was lowered is
 * not seen; such numbers are beyond any the process can get again). */
static int nfds_clamp(int nfds)
{
    struct rlimit rl;
    if (nfds <= FD_SETSIZE || getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return nfds;
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)nfds > rl.rlim_cur)
        return (int)rl.rlim_cur;
    return nfds;
}

/* select's three sets as pollfds (fds below nfds with a bit in any set). */
static nfds_t sets_to_pollfds(int nfds, fd_set *r, fd_set *w, fd_set *x,
                              struct pollfd *out)
{
    nfds_t n = 0;
    for (int fd = 0; fd < nfds; fd++) {
        short ev = 0;
        if (bit_get(r, fd))
            ev |= POLLIN;
        if (bit_get(w, fd))
            ev |= POLLOUT;
        if (bit_get(x, fd))
            ev |= POLLPRI;
        if (ev == 0)
            continue;
        out[n].fd = fd;
        out[n].events = ev;
        out[n].revents = 0;
        n++;
    }
    return n;
}

/* True when a descriptor of the sets is managed. */
static bool sets_managed(int nfds, fd_set *r, fd_set *w, fd_set *x)
{
    for (int fd = 0; fd < nfds; fd++) {
        if (!(bit_get(r, fd) || bit_get(w, fd) || bit_get(x, fd)))
            continue;
        struct shim_sock *s = fdtab_get(fd);
        if (s != NULL) {
            shim_sock_unref(s);
            return true;
        }
    }
    return false;
}

/*
 * The results of poll as select gives them, with the kernel's rules:
 * readable = IN|HUP|ERR, writable = OUT|ERR, exceptional = PRI. A
 * POLLNVAL makes the call fail with EBADF. Returns the number of bits set.
 */
static int pollfds_to_sets(const struct pollfd *p, nfds_t n, int nfds,
                           fd_set *r, fd_set *w, fd_set *x)
{
    for (nfds_t i = 0; i < n; i++) {
        if (p[i].revents & POLLNVAL) {
            errno = EBADF;
            return -1;
        }
    }
    bits_zero(r, nfds);
    bits_zero(w, nfds);
    bits_zero(x, nfds);
    int count = 0;
    for (nfds_t i = 0; i < n; i++) {
        short ev = p[i].events, rev = p[i].revents;
        if ((ev & POLLIN) && (rev & (POLLIN | POLLHUP | POLLERR))) {
            bit_set(r, p[i].fd);
            count++;
        }
        if ((ev & POLLOUT) && (rev & (POLLOUT | POLLERR))) {
            bit_set(w, p[i].fd);
            count++;
        }
        if ((ev & POLLPRI) && (rev & POLLPRI)) {
            bit_set(x, p[i].fd);
            count++;
        }
    }
    return count;
}

/*
 * select/pselect through the poll core when a managed descriptor is in a
 * set; otherwise the real call, untouched. nfds is already clamped. left
 * (select only) receives the time not used, as Linux does.
 */
static int select_any(int nfds, fd_set *r, fd_set *w, fd_set *x,
                      const struct timespec *tmo, const sigset_t *mask,
                      struct timeval *left)
{
    struct timespec deadline = shim_deadline_after_ts(tmo);
    struct pollfd *p = malloc((size_t)nfds * sizeof(*p));
    if (p == NULL) {
        errno = ENOMEM;
        return -1;
    }
    nfds_t n = sets_to_pollfds(nfds, r, w, x, p);
    struct shim_sock **socks = calloc(n > 0 ? n : 1, sizeof(*socks));
    struct pollfd *k = malloc((n > 0 ? n : 1) * sizeof(*k));
    int rc = -1;
    if (socks == NULL || k == NULL) {
        errno = ENOMEM;
    } else {
        for (nfds_t i = 0; i < n; i++)
            socks[i] = fdtab_get(p[i].fd);
        rc = poll_managed(p, k, socks, n, tmo != NULL ? &deadline : NULL,
                          mask);
        if (rc >= 0)
            rc = pollfds_to_sets(p, n, nfds, r, w, x);
        for (nfds_t i = 0; i < n; i++)
            shim_sock_unref(socks[i]);
    }
    int saved = errno;
    if (left != NULL && tmo != NULL) {
        int ms = shim_ms_until(&deadline);
        left->tv_sec = ms / 1000;
        left->tv_usec = (ms % 1000) * 1000;
    }
    free(k);
    free(socks);
    free(p);
    errno = saved;
    return rc;
}

static int shim_select(int nfds, fd_set *r, fd_set *w, fd_set *x,
                       struct timeval *tv)
{
    if (nfds <= 0 || !sets_managed(nfds_clamp(nfds), r, w, x))
        return REAL(select)(nfds, r, w, x, tv);
    nfds = nfds_clamp(nfds);
    if (tv != NULL && (tv->tv_sec < 0 || tv->tv_usec < 0)) {
        errno = EINVAL;
        return -1;
    }
    struct timespec ts;
    if (tv != NULL) {
        /* Linux normalises an oversized tv_usec the same way. */
        ts.tv_sec = tv->tv_sec + tv->tv_usec / 1000000;
        ts.tv_nsec = (long)(tv->tv_usec % 1000000) * 1000L;
    }
    return select_any(nfds, r, w, x, tv != NULL ? &ts : NULL, NULL, tv);
}

static int shim_pselect(int nfds, fd_set *r, fd_set *w, fd_set *x,
                        const struct timespec *tmo, const sigset_t *mask)
{
    if (nfds <= 0 || !sets_managed(nfds_clamp(nfds), r, w, x))
        return REAL(pselect)(nfds, r, w, x, tmo, mask);
    nfds = nfds_clamp(nfds);
    if (!shim_timeout_valid(tmo)) {
        errno = EINVAL;
        return -1;
    }
    return select_any(nfds, r, w, x, tmo, mask, NULL);
}

SS_EXPORT int select(int nfds, fd_set *restrict r, fd_set *restrict w,
                     fd_set *restrict x, struct timeval *restrict tv)
{
    return shim_select(nfds, r, w, x, tv);
}

SS_EXPORT int pselect(int nfds, fd_set *restrict r, fd_set *restrict w,
                      fd_set *restrict x,
                      const struct timespec *restrict tmo,
                      const sigset_t *restrict mask)
{
    return shim_pselect(nfds, r, w, x, tmo, mask);
}

/* --- libc's public aliases of interposed names ------------------------------ */

/* glibc exports __poll and __select as public aliases (GLIBC_2.2.5); a
 * program linked against one gets the same readiness rules
 * (docs/shim.md, "What is interposed"). */
SS_EXPORT int __poll(struct pollfd *fds, nfds_t n, int ms)
{
    return shim_poll(fds, n, ms);
}

SS_EXPORT int __select(int nfds, fd_set *restrict r, fd_set *restrict w,
                       fd_set *restrict x, struct timeval *restrict tv)
{
    return shim_select(nfds, r, w, x, tv);
}
