/*
 * epoll.c - epoll_create/epoll_create1, epoll_ctl, epoll_wait,
 * epoll_pwait, epoll_pwait2, and the epoll sets the shim tracks.
 *
 * Readiness stays honest (docs/design.md, "Readiness stays honest"): a
 * managed descriptor's kernel registration is on a private duplicate of
 * its socket with an internal token; epoll_wait reports what shim_revents
 * (drive.c) says the program can do, under the program's own epoll_data,
 * with level, edge and one-shot semantics kept (docs/shim.md, "epoll").
 * Readiness that arises outside a wait wakes sleepers through one eventfd
 * per tracked set. Registrations made before connect() move with the
 * connection when it becomes managed. The functions other families call
 * are in epoll.h (events_*).
 */
#include "drive.h"
#include "epoll.h"
#include "fdtab.h"
#include "gate.h"
#include "real.h"
#include "sock.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>

#include "secshim/log.h"


/* --- epoll ------------------------------------------------------------------ */

/*
 * The shim's record of one registration of a managed socket in one epoll
 * set (docs/shim.md, "epoll"). The kernel watches kfd: the connection's
 * private descriptor itself for its first registration in a set (direct),
 * so that an epoll server holds two descriptors per connection, not three
 * (issue 9); a private duplicate made for this registration alone for a
 * further one in the same set, as the kernel keys registrations by open
 * file and number and two program duplicates of one socket can both be
 * in one set. Either way a registration can outlive the program number it
 * was made with, as the kernel's belongs to the open file: the reference
 * on the sock keeps the private descriptor open as long as it lives. The
 * kernel registration carries a token (TOKEN_TAG | id) in place of the
 * program's epoll_data. Its mode follows the program's:
 *  - EPOLLET: the kernel registration is edge-triggered too and asks for
 *    IN|OUT|RDHUP for good, so each kernel edge (new bytes, space freed
 *    after a write hit EAGAIN) reaches the shim and becomes the
 *    program's edge; it is never re-armed, so it cannot spin;
 *  - otherwise it is EPOLLONESHOT, asks for what the connection needs and
 *    is re-armed by the shim before each wait that needs it, so a socket
 *    that keeps reporting (a hang-up the program has not handled, a
 *    disarmed EPOLLONESHOT registration) cannot make the shim spin.
 */
struct ep_reg {
    struct ep_reg *next;
    int fd;                  /* the program's descriptor; -1 once closed */
    struct shim_sock *s;     /* a reference */
    int kfd;                 /* what the kernel watches */
    /* kfd is s->priv_fd (the sock's, never closed here; it follows a move
     * of the private descriptor, events_private_move); else kfd is a
     * duplicate this registration owns. At most one per sock and set. */
    bool direct;
    struct shim_owned own;   /* a duplicate kfd, for fdtab's owned table */
    uint64_t token;
    uint32_t events;         /* the program's, flags included */
    epoll_data_t data;       /* the program's */
    bool armed;              /* false after an EPOLLONESHOT report */
    bool kern_armed;         /* our kernel registration can fire */
    uint32_t kern_events;    /* what it asks for (without flags) */
    short last_ready;        /* EPOLLET: ready bits at the last look */
    /* EPOLLET: ss_conn_received at its last report (edge_already_given) */
    unsigned long long rx_at_report;
    unsigned pass;           /* the wait pass that reported it */
};

/* The epoll sets that hold at least one managed descriptor. */
struct ep_set {
    struct ep_set *next;
    int epfd;
    int refs;                /* guarded by ep_lock */
    bool dead;               /* the epoll fd was closed */
    /* Guards regs and every reg's fields. Taken before a sock lock. */
    pthread_mutex_t lock;
    struct ep_reg *regs;
    unsigned pass;
    /* An eventfd in the kernel set (token WAKE_TOKEN): readiness that
     * arises outside a wait (a re-arm by EPOLL_CTL_MOD, plaintext left by
     * another thread's read) signals it, so a thread sleeping in the
     * kernel wakes and looks again (docs/design.md, "Readiness stays
     * honest"). Owned by the shim. */
    int wake_fd;
    struct shim_owned wake_own;
    atomic_int waiters;      /* threads between their look and its end */
};

/* Tags tokens: user-space pointers and descriptor numbers, which
 * programs put in epoll_data, never have these top bits. Id 0 is the
 * set's wake-up eventfd. */
#define TOKEN_TAG 0x5ec5000000000000ull
#define TOKEN_MASK 0xffff000000000000ull
#define WAKE_TOKEN TOKEN_TAG

/* What an edge-triggered kernel registration always asks for. */
#define ET_KERNEL (EPOLLIN | EPOLLOUT | EPOLLRDHUP)

/* Guards ep_sets and each set's refs/dead/next. A leaf except that a set
 * lock may be taken under it (set lock -> sock lock). Like every epoll
 * lock, gated (gate.h): a fork child finds them all unlocked. */
static pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ep_set *ep_sets;
static atomic_int ep_nsets;
static _Atomic uint64_t ep_next_id = 1;

/* Whether epfd (below TRACKED_MAX) has a live set in ep_sets, so that an
 * epoll_wait on a set the shim does not track costs one load, no lock,
 * even while other sets are tracked. Written under ep_lock. */
#define TRACKED_MAX 65536
static atomic_bool set_tracked[TRACKED_MAX];

/* How many registrations were made through program descriptor fd (below
 * TRACKED_MAX) and still carry that number (ep_reg.fd), so that closing
 * an untouched descriptor looks at no set. Changed under the set's lock. */
static _Atomic unsigned int regs_on_fd[TRACKED_MAX];

/* Sets g->fd (-1: no number any more), keeping regs_on_fd. */
static void reg_set_fd(struct ep_reg *g, int fd)
{
    if (g->fd >= 0 && g->fd < TRACKED_MAX)
        atomic_fetch_sub(&regs_on_fd[g->fd], 1);
    g->fd = fd;
    if (fd >= 0 && fd < TRACKED_MAX)
        atomic_fetch_add(&regs_on_fd[fd], 1);
}

/* False when no registration carries number fd (lock-free look). */
static bool maybe_regs_on(int fd)
{
    return fd < 0 || fd >= TRACKED_MAX ||
           atomic_load_explicit(&regs_on_fd[fd], memory_order_relaxed) != 0;
}

static void note_tracked(int epfd, bool tracked)
{
    if (epfd >= 0 && epfd < TRACKED_MAX)
        atomic_store_explicit(&set_tracked[epfd], tracked,
                              memory_order_relaxed);
}

/* False when epfd certainly has no set (lock-free look). */
static bool maybe_tracked(int epfd)
{
    if (atomic_load_explicit(&ep_nsets, memory_order_relaxed) == 0)
        return false;
    if (epfd >= 0 && epfd < TRACKED_MAX)
        return atomic_load_explicit(&set_tracked[epfd],
                                    memory_order_relaxed);
    return true;
}

static struct ep_set *set_find_locked(int epfd)
{
    for (struct ep_set *e = ep_sets; e != NULL; e = e->next)
        if (e->epfd == epfd && !e->dead)
            return e;
    return NULL;
}

static int move_owned(int fd);

/* The registration of s in e that watches s's private descriptor itself,
 * or NULL (set locked). */
static struct ep_reg *direct_reg(struct ep_set *e, const struct shim_sock *s)
{
    for (struct ep_reg *g = e->regs; g != NULL; g = g->next)
        if (g->s == s && g->direct)
            return g;
    return NULL;
}

/* A duplicate of fd of the shim's own, above the program's numbers (o
 * records it). Returns it or -1 with errno. */
static int own_private(int fd, struct shim_owned *o)
{
    return shim_own_private(fd, o, NULL, move_owned, false);
}

static void own_close(int fd)
{
    fdtab_disown(fd);
    REAL(close)(fd);
}

/* The wake-up eventfd of a new set, in its kernel set. 0 or -1 with
 * errno (EINVAL/EBADF: epfd is not an epoll set, as the kernel says). */
static int set_wake_init(struct ep_set *e)
{
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0)
        return -1;
    e->wake_fd = own_private(efd, &e->wake_own);
    int saved = errno;
    REAL(close)(efd);
    errno = saved;
    if (e->wake_fd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TOKEN};
    if (REAL(epoll_ctl)(e->epfd, EPOLL_CTL_ADD, e->wake_fd, &ev) != 0) {
        saved = errno;
        own_close(e->wake_fd);
        errno = saved;
        return -1;
    }
    return 0;
}

/*
 * *kfd, registered in e's kernel set with ev, moves to another number of
 * the shim's own (the program dup2()s onto it): the new number is
 * registered, then the old one removed and closed. Set locked.
 */
static int move_registered(struct ep_set *e, int *kfd, struct shim_owned *o,
                           struct epoll_event ev)
{
    int fresh = own_private(*kfd, o);
    if (fresh < 0)
        return -1;
    if (REAL(epoll_ctl)(e->epfd, EPOLL_CTL_ADD, fresh, &ev) != 0) {
        int saved = errno;
        own_close(fresh);
        errno = saved;
        return -1;
    }
    (void)REAL(epoll_ctl)(e->epfd, EPOLL_CTL_DEL, *kfd, NULL);
    own_close(*kfd);
    *kfd = fresh;
    return 0;
}

static struct epoll_event reg_kernel_event(const struct ep_reg *g,
                                           uint32_t os);

/* shim_owned.move of the descriptors epoll.c owns: a set's wake-up
 * eventfd or a registration's private duplicate, found by number. */
static int move_owned(int fd)
{
    int rc = 0;
    shim_lock(&ep_lock);
    for (struct ep_set *e = ep_sets; e != NULL; e = e->next) {
        shim_lock(&e->lock);
        if (e->wake_fd == fd) {
            struct epoll_event ev = {.events = EPOLLIN,
                                     .data.u64 = WAKE_TOKEN};
            rc = move_registered(e, &e->wake_fd, &e->wake_own, ev);
        }
        for (struct ep_reg *g = e->regs; g != NULL; g = g->next)
            if (g->kfd == fd && !g->direct)
                rc = move_registered(e, &g->kfd, &g->own,
                                     reg_kernel_event(g, g->kern_events));
        shim_unlock(&e->lock);
    }
    shim_unlock(&ep_lock);
    return rc;
}

void events_hold(void)
{
    shim_lock(&ep_lock);
    for (struct ep_set *e = ep_sets; e != NULL; e = e->next)
        shim_lock(&e->lock);
}

void events_release(void)
{
    for (struct ep_set *e = ep_sets; e != NULL; e = e->next)
        shim_unlock(&e->lock);
    shim_unlock(&ep_lock);
}

/* Undoes events_private_move's registrations on fresh in the sets before
 * stop, the set whose ADD failed. */
static void unmove_direct(struct shim_sock *s, int old, int fresh,
                          struct ep_set *stop)
{
    for (struct ep_set *e = ep_sets; e != stop; e = e->next) {
        struct ep_reg *g = direct_reg(e, s);
        if (g != NULL && g->kfd == old)
            (void)REAL(epoll_ctl)(e->epfd, EPOLL_CTL_DEL, fresh, NULL);
    }
}

/*
 * The kernel keys a registration by open file and number, and removes it
 * only when the file's last reference goes, not when the number is
 * closed: left keyed by old, a direct registration would stay in the set
 * after the program's dup2() onto old, reporting under its token and
 * beyond any EPOLL_CTL_MOD or DEL. So each is registered again on fresh
 * (every set first, so that a failure undoes the new ones and leaves all
 * as it was), then removed from old.
 */
int events_private_move(struct shim_sock *s, int old, int fresh)
{
    if (atomic_load(&s->ep_regs) == 0)
        return 0;
    for (struct ep_set *e = ep_sets; e != NULL; e = e->next) {
        struct ep_reg *g = direct_reg(e, s);
        if (g == NULL || g->kfd != old)
            continue;
        struct epoll_event ev = reg_kernel_event(g, g->kern_events);
        if (REAL(epoll_ctl)(e->epfd, EPOLL_CTL_ADD, fresh, &ev) != 0) {
            int saved = errno;
            unmove_direct(s, old, fresh, e);
            errno = saved;
            return -1;
        }
    }
    for (struct ep_set *e = ep_sets; e != NULL; e = e->next) {
        struct ep_reg *g = direct_reg(e, s);
        if (g == NULL || g->kfd != old)
            continue;
        (void)REAL(epoll_ctl)(e->epfd, EPOLL_CTL_DEL, old, NULL);
        g->kfd = fresh;
        g->kern_armed = true; /* the ADD armed it */
    }
    return 0;
}

/* Wakes the threads sleeping in the kernel on e, if any. Costs nothing
 * when none is. Keeps errno. */
static void set_wake(struct ep_set *e)
{
    if (atomic_load(&e->waiters) == 0)
        return;
    int saved = errno;
    uint64_t one = 1;
    (void)!REAL(write)(e->wake_fd, &one, sizeof(one));
    errno = saved;
}

static void set_wake_drain(struct ep_set *e)
{
    uint64_t n = 0;
    (void)!REAL(read)(e->wake_fd, &n, sizeof(n));
}

/* The set of epfd with a reference, created when create is true; NULL
 * when there is none (errno ENOMEM, or the kernel's for a descriptor
 * that is not an epoll set). */
static struct ep_set *set_get(int epfd, bool create)
{
    if (!create && !maybe_tracked(epfd))
        return NULL;
    shim_lock(&ep_lock);
    struct ep_set *e = set_find_locked(epfd);
    if (e == NULL && create) {
        e = calloc(1, sizeof(*e));
        if (e == NULL) {
            errno = ENOMEM;
        } else {
            e->epfd = epfd;
            if (set_wake_init(e) != 0) {
                int saved = errno;
                free(e);
                e = NULL;
                errno = saved;
            }
        }
        if (e != NULL) {
            pthread_mutex_init(&e->lock, NULL);
            e->next = ep_sets;
            ep_sets = e;
            e->refs = 1; /* the list's */
            atomic_fetch_add(&ep_nsets, 1);
            note_tracked(epfd, true);
        }
    }
    if (e != NULL)
        e->refs++;
    shim_unlock(&ep_lock);
    return e;
}

/*
 * Ends registration g: out of the kernel set (unless the set itself is
 * gone), its duplicate closed, its sock reference dropped. A direct one
 * leaves the private descriptor open: the kernel registration is removed
 * by EPOLL_CTL_DEL, as closing kfd would not do while the connection
 * lives. A kfd that is no longer the shim's (closed by a raw syscall and
 * reused) is left alone: the DEL would remove the new file's own
 * registration of that number.
 */
static void reg_free(struct ep_set *e, struct ep_reg *g)
{
    if (g->direct) {
        if (!e->dead && shim_sock_private_ours(g->s))
            (void)REAL(epoll_ctl)(e->epfd, EPOLL_CTL_DEL, g->kfd, NULL);
    } else if (shim_owned_still(&g->own, g->kfd)) {
        if (!e->dead)
            (void)REAL(epoll_ctl)(e->epfd, EPOLL_CTL_DEL, g->kfd, NULL);
        own_close(g->kfd);
    } else {
        fdtab_disown(g->kfd);
    }
    atomic_fetch_sub(&g->s->ep_regs, 1);
    shim_sock_unref(g->s);
    reg_set_fd(g, -1);
    free(g);
}

static void set_put(struct ep_set *e)
{
    shim_lock(&ep_lock);
    bool last = --e->refs == 0;
    shim_unlock(&ep_lock);
    if (!last)
        return;
    int saved = errno;
    while (e->regs != NULL) {
        struct ep_reg *g = e->regs;
        e->regs = g->next;
        reg_free(e, g);
    }
    if (shim_owned_still(&e->wake_own, e->wake_fd))
        own_close(e->wake_fd);
    else
        fdtab_disown(e->wake_fd);
    pthread_mutex_destroy(&e->lock);
    free(e);
    errno = saved;
}

static struct ep_reg *reg_by_fd(struct ep_set *e, int fd)
{
    for (struct ep_reg *g = e->regs; g != NULL; g = g->next)
        if (g->fd == fd)
            return g;
    return NULL;
}

static struct ep_reg *reg_by_token(struct ep_set *e, uint64_t token)
{
    for (struct ep_reg *g = e->regs; g != NULL; g = g->next)
        if (g->token == token)
            return g;
    return NULL;
}

static void reg_unlink(struct ep_set *e, struct ep_reg *g)
{
    for (struct ep_reg **pp = &e->regs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            return;
        }
    }
}

static bool reg_et(const struct ep_reg *g)
{
    return (g->events & EPOLLET) != 0;
}

/* An EPOLLEXCLUSIVE registration: the kernel wakes one of the sets that
 * hold the socket so. The kernel takes EPOLLEXCLUSIVE only with IN, OUT,
 * ERR, HUP and ET, never with ONESHOT or RDHUP, so its kernel
 * registration is a permanent edge-triggered one (reported as the
 * program asked, level or edge, by reg_look). */
static bool reg_exclusive(const struct ep_reg *g)
{
    return (g->events & EPOLLEXCLUSIVE) != 0;
}

/* Whether g's kernel registration is edge-triggered and never re-armed. */
static bool reg_kernel_edge(const struct ep_reg *g)
{
    return reg_et(g) || reg_exclusive(g);
}

/* The kernel registration's events for g asking for os (poll bits). */
static struct epoll_event reg_kernel_event(const struct ep_reg *g,
                                           uint32_t os)
{
    uint32_t events = reg_exclusive(g)
                          ? EPOLLIN | EPOLLOUT | EPOLLET | EPOLLEXCLUSIVE
                      : reg_et(g) ? ET_KERNEL | EPOLLET
                                  : os | EPOLLONESHOT;
    struct epoll_event ev = {.events = events, .data.u64 = g->token};
    return ev;
}

/* (Re)arms the kernel registration of g for os (poll bits). An
 * edge-triggered one stays armed for good. Called with the set locked. */
static void reg_arm(struct ep_set *e, struct ep_reg *g, uint32_t os)
{
    if (g->kern_armed && (reg_kernel_edge(g) || g->kern_events == os))
        return;
    struct epoll_event ev = reg_kernel_event(g, os);
    if (REAL(epoll_ctl)(e->epfd, EPOLL_CTL_MOD, g->kfd, &ev) == 0) {
        g->kern_armed = true;
        g->kern_events = os;
    }
}

/* The program's poll interest of a registration. */
static short reg_want(const struct ep_reg *g)
{
    return (short)(g->events & (EV_IN | EV_OUT | POLLRDHUP | POLLPRI));
}

/*
 * Looks at g (kernel: what the kernel just reported, 0 for none) and
 * decides whether to report it. Level-triggered: whenever ready.
 * EPOLLET: on a kernel edge of the socket (new bytes arrived, space came
 * back after a write that hit EAGAIN: the kernel reports every ready bit
 * then, and so does the shim), when new plaintext, EOF or a failure came
 * out of the engine, or when a ready bit was not ready at the previous
 * look. EPOLLONESHOT disarms after a report. Returns the events to
 * report, 0 for none. Called with the set locked.
 */
/*
 * EPOLLET, a look that only a kernel edge would report (no new plaintext,
 * no new bit): whether g has been given that edge already. The kernel
 * queues an event per registration; a look at another registration of
 * the connection (or a first look) may have taken the new bytes into the
 * engine, and g been reported for them, while g's own kernel event was
 * still queued; it then comes in a later wait, and plain TCP reports
 * those bytes once. It is the same edge when the engine has read nothing
 * since g's report (rx) and the kernel holds no new bytes; a hang-up or
 * an error is never the same edge. A registration that asks for
 * writability never has its edges taken so: room that came back in the
 * socket is an edge too, and the look may have spent it flushing the
 * engine's ciphertext before the kernel's event was read, while its ready
 * bits are the same as at the last look (a transfer would stall). Costs
 * one ioctl, only on this path.
 */
static bool edge_already_given(const struct ep_reg *g, short kernel,
                               unsigned long long rx)
{
    if ((reg_want(g) & EV_OUT) != 0 ||
        (kernel & (POLLERR | POLLHUP | POLLRDHUP)) != 0 ||
        rx != g->rx_at_report)
        return false;
    int queued = 0;
    return REAL(ioctl)(g->kfd, FIONREAD, &queued) == 0 && queued == 0;
}

static uint32_t reg_look(struct ep_set *e, struct ep_reg *g, short kernel,
                         int *cap)
{
    struct shim_probe p = {reg_want(g), kernel, 0, false, *cap};
    shim_sock_lock(g->s);
    short rev = shim_revents(g->s, &p);
    unsigned long long rx = g->s->failed || g->s->closed
                                ? 0 : ss_conn_received(g->s->conn);
    shim_sock_unlock(g->s);
    *cap = p.cap_ms;
    rev &= (short)(p.want | POLLERR | POLLHUP);
    bool report = rev != 0;
    if (report && reg_et(g)) {
        bool news = p.fresh || (rev & ~g->last_ready) != 0;
        report = news ||
                 ((kernel & (EV_IN | EV_OUT | POLLRDHUP | POLLERR | POLLHUP))
                      != 0 &&
                  !edge_already_given(g, kernel, rx));
        if (report)
            g->rx_at_report = rx;
    }
    g->last_ready = rev;
    if (!report) {
        reg_arm(e, g, (uint32_t)(unsigned short)p.os);
        return 0;
    }
    if (g->events & EPOLLONESHOT)
        g->armed = false;
    return (uint32_t)(unsigned short)rev;
}

/* Fills slot with the program's events rev and its epoll_data for g, which
 * counts as reported in this pass. Set locked. */
static void report_reg(struct ep_set *e, struct ep_reg *g,
                       struct epoll_event *slot, uint32_t rev)
{
    g->pass = e->pass;
    slot->events = rev;
    slot->data = g->data;
}

/* Adds every ready managed registration to out (at most max). */
static int collect_ready(struct ep_set *e, struct epoll_event *out, int max,
                         int *cap)
{
    int n = 0;
    for (struct ep_reg *g = e->regs; g != NULL && n < max; g = g->next) {
        if (!g->armed)
            continue;
        uint32_t rev = reg_look(e, g, 0, cap);
        if (rev != 0)
            report_reg(e, g, &out[n++], rev);
    }
    return n;
}

/*
 * Rewrites the kernel's events at out[from..from+got) in place: managed
 * tokens become the program's events and data (or are dropped), the
 * wake-up eventfd is drained and dropped, the others are kept as they
 * are. Returns the new end. Set locked.
 */
static int translate(struct ep_set *e, struct epoll_event *out, int from,
                     int got, bool *siblings)
{
    int end = from;
    for (int i = from; i < from + got; i++) {
        struct epoll_event ev = out[i];
        if ((ev.data.u64 & TOKEN_MASK) != TOKEN_TAG) {
            out[end++] = ev;
            continue;
        }
        if (ev.data.u64 == WAKE_TOKEN) {
            set_wake_drain(e);
            continue;
        }
        struct ep_reg *g = reg_by_token(e, ev.data.u64);
        if (g == NULL)
            continue; /* removed since the kernel queued it */
        if (!reg_et(g))
            g->kern_armed = false;
        if (!g->armed || g->pass == e->pass)
            continue;
        int cap = -1;
        uint32_t rev = reg_look(e, g, (short)ev.events, &cap);
        if (rev == 0)
            continue;
        report_reg(e, g, &out[end++], rev);
        if (atomic_load_explicit(&g->s->ep_regs, memory_order_relaxed) > 1)
            *siblings = true;
    }
    return end;
}

/* Whether another registration of g's connection was reported in this
 * pass. Set locked. */
static bool sibling_reported(const struct ep_set *e, const struct ep_reg *g)
{
    for (const struct ep_reg *h = e->regs; h != NULL; h = h->next)
        if (h != g && h->s == g->s && h->pass == e->pass)
            return true;
    return false;
}

/*
 * A connection registered twice in one set (the program added a duplicate
 * too): the kernel may return from the wait with only one of the two
 * queued, and the look at that one took the bytes into the engine, so the
 * kernel will never report the other. Plain TCP reports both, so the
 * other registrations of each connection reported in this pass are looked
 * at now. Only connections with more than one registration are searched
 * for. Returns the new end of out. Set locked.
 */
static int report_siblings(struct ep_set *e, struct epoll_event *out, int n,
                           int max)
{
    for (struct ep_reg *g = e->regs; g != NULL && n < max; g = g->next) {
        if (!g->armed || g->pass == e->pass ||
            atomic_load_explicit(&g->s->ep_regs, memory_order_relaxed) < 2 ||
            !sibling_reported(e, g))
            continue;
        int cap = -1;
        uint32_t rev = reg_look(e, g, 0, &cap);
        if (rev != 0)
            report_reg(e, g, &out[n++], rev);
    }
    return n;
}

/* The real wait of the epoll family. */
static int epoll_real(int epfd, struct epoll_event *ev, int max, int ms,
                      const sigset_t *mask)
{
    if (mask == NULL)
        return REAL(epoll_wait)(epfd, ev, max, ms);
    return REAL(epoll_pwait)(epfd, ev, max, ms, mask);
}

/* epoll_wait on a set with managed registrations. deadline NULL:
 * forever. Returns the number of events or -1 with errno. The thread
 * counts as a waiter from before its look until the kernel answered, so
 * readiness that arises after the look signals the wake-up eventfd. */
static int epoll_managed(struct ep_set *e, struct epoll_event *out, int max,
                         const struct timespec *deadline,
                         const sigset_t *mask)
{
    for (;;) {
        int cap = -1;
        atomic_fetch_add(&e->waiters, 1);
        shim_lock(&e->lock);
        e->pass++;
        int n = collect_ready(e, out, max, &cap);
        shim_unlock(&e->lock);
        int ms = n > 0 ? 0 : shim_ms_min(shim_ms_left(deadline), cap);
        if (n == max) {
            atomic_fetch_sub(&e->waiters, 1);
            return n;
        }
        int got = epoll_real(e->epfd, out + n, max - n, ms, mask);
        int saved = errno;
        atomic_fetch_sub(&e->waiters, 1);
        if (got < 0) {
            errno = saved;
            return n > 0 ? n : -1;
        }
        bool siblings = false;
        shim_lock(&e->lock);
        n = translate(e, out, n, got, &siblings);
        if (siblings)
            n = report_siblings(e, out, n, max);
        shim_unlock(&e->lock);
        if (n > 0 || (deadline != NULL && shim_ms_left(deadline) == 0))
            return n;
    }
}

static int epoll_any(int epfd, struct epoll_event *out, int max,
                     const struct timespec *tmo, const sigset_t *mask,
                     bool pwait2, int ms)
{
    struct ep_set *e = max > 0 && out != NULL ? set_get(epfd, false) : NULL;
    if (e == NULL) {
        if (pwait2)
            return REAL_OPTIONAL(epoll_pwait2)(epfd, out, max, tmo, mask);
        return epoll_real(epfd, out, max, ms, mask);
    }
    struct timespec deadline = shim_deadline_after_ts(tmo);
    int r = epoll_managed(e, out, max, tmo != NULL ? &deadline : NULL, mask);
    int saved = errno;
    set_put(e);
    errno = saved;
    return r;
}

static int shim_epoll_pwait(int epfd, struct epoll_event *ev, int max, int ms,
                            const sigset_t *mask)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    return epoll_any(epfd, ev, max, ms < 0 ? NULL : &ts, mask, false, ms);
}

static int shim_epoll_pwait2(int epfd, struct epoll_event *ev, int max,
                             const struct timespec *tmo, const sigset_t *mask)
{
    /* Where libc lacks it, every set answers ENOSYS, managed or not. */
    if (!REAL_PRESENT(epoll_pwait2))
        return REAL_OPTIONAL(epoll_pwait2)(epfd, ev, max, tmo, mask);
    if (!shim_timeout_valid(tmo)) {
        errno = EINVAL;
        return -1;
    }
    return epoll_any(epfd, ev, max, tmo, mask, true, 0);
}

/* Chooses what the kernel watches for new registration g of s in e: the
 * private descriptor itself when no other registration of s in e watches
 * it, else a duplicate of it (the kernel refuses a second registration of
 * one file and number in a set). Set locked. Returns 0 or -1 with errno. */
static int reg_pick_kfd(struct ep_set *e, struct ep_reg *g,
                        struct shim_sock *s)
{
    shim_sock_lock(s);
    g->direct = direct_reg(e, s) == NULL;
    g->kfd = g->direct ? s->priv_fd : own_private(s->priv_fd, &g->own);
    shim_sock_unlock(s);
    return g->kfd < 0 ? -1 : 0;
}

/* A managed descriptor enters a set: the kernel gets the token, on the
 * private descriptor or a duplicate of it (reg_pick_kfd). */
static int ctl_add(struct ep_set *e, int fd, struct shim_sock *s,
                   const struct epoll_event *ev)
{
    struct ep_reg *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        errno = ENOMEM;
        return -1;
    }
    g->fd = -1; /* set with its count once the registration is made */
    g->token = TOKEN_TAG | (atomic_fetch_add(&ep_next_id, 1) & ~TOKEN_MASK);
    g->events = ev->events;
    g->data = ev->data;
    g->armed = true;
    if (reg_pick_kfd(e, g, s) != 0) {
        int saved = errno;
        free(g);
        errno = saved;
        return -1;
    }
    /* Ask for what the program asked for until the first wait says what
     * the connection needs. */
    uint32_t os = ev->events & (EV_IN | EV_OUT | POLLRDHUP);
    struct epoll_event kev = reg_kernel_event(g, os);
    if (REAL(epoll_ctl)(e->epfd, EPOLL_CTL_ADD, g->kfd, &kev) != 0) {
        int saved = errno;
        if (!g->direct)
            own_close(g->kfd);
        free(g);
        errno = saved;
        return -1;
    }
    shim_sock_ref(s);
    atomic_fetch_add(&s->ep_regs, 1);
    g->s = s;
    reg_set_fd(g, fd);
    g->kern_armed = true;
    g->kern_events = os;
    g->next = e->regs;
    e->regs = g;
    set_wake(e); /* a sleeper looks at it at once */
    return 0;
}

/* EPOLL_CTL_MOD of a managed registration: new events and data, armed
 * again; a thread sleeping on the set looks at once (plaintext may be
 * buffered already, as the kernel re-checks readiness at MOD). */
static int ctl_mod(struct ep_set *e, struct ep_reg *g,
                   const struct epoll_event *ev)
{
    g->events = ev->events;
    g->data = ev->data;
    g->armed = true;
    g->last_ready = 0;
    uint32_t os = ev->events & (EV_IN | EV_OUT | POLLRDHUP);
    struct epoll_event kev = reg_kernel_event(g, os);
    if (REAL(epoll_ctl)(e->epfd, EPOLL_CTL_MOD, g->kfd, &kev) == 0) {
        g->kern_armed = true;
        g->kern_events = os;
    } else {
        g->kern_armed = false;
    }
    set_wake(e);
    return 0;
}

static int ctl_managed(struct ep_set *e, int op, int fd, struct shim_sock *s,
                       struct epoll_event *ev)
{
    struct ep_reg *g = reg_by_fd(e, fd);
    switch (op) {
    case EPOLL_CTL_ADD:
        if (g != NULL) {
            errno = EEXIST;
            return -1;
        }
        if ((ev->events & EPOLLEXCLUSIVE) && (ev->events & EPOLLONESHOT)) {
            errno = EINVAL;
            return -1;
        }
        return ctl_add(e, fd, s, ev);
    case EPOLL_CTL_MOD:
        if (ev->events & EPOLLEXCLUSIVE) {
            errno = EINVAL;
            return -1;
        }
        if (g == NULL) {
            errno = ENOENT;
            return -1;
        }
        if (reg_exclusive(g)) {
            errno = EINVAL; /* the kernel's answer for an exclusive one */
            return -1;
        }
        return ctl_mod(e, g, ev);
    case EPOLL_CTL_DEL:
        if (g == NULL) {
            errno = ENOENT;
            return -1;
        }
        reg_unlink(e, g);
        reg_free(e, g);
        return 0;
    default:
        errno = EINVAL;
        return -1;
    }
}

/*
 * epoll_ctl: unmanaged descriptors pass through with their data as
 * given; a managed one gets a registration record in the set of epfd.
 * EPOLLEXCLUSIVE keeps the kernel's meaning (reg_exclusive): its kernel
 * registration is exclusive too, so one of the sets is woken.
 */
/* --- registrations made before connect() ------------------------------------ */

/*
 * nginx and others add an upstream socket to their epoll set before
 * connect(). Such a kernel registration is on the real socket, which the
 * shim moves to a private descriptor at connect: left in place it would
 * report the real socket's readiness under the program's epoll_data and
 * could never be changed or removed by the program. So the registrations
 * made on a TCP socket between socket() and connect() are remembered, and
 * moved to the managed socket when it becomes one. Sockets below
 * FRESH_MAX are followed (one flag each).
 */
#define FRESH_MAX 65536

struct events_moved {
    struct events_moved *next;
    int fd, epfd;
    struct epoll_event ev;
};

static atomic_bool fresh[FRESH_MAX];
/* Guards pendings. A leaf: nothing is taken under it. */
static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static struct events_moved *pendings;
static atomic_int n_pendings;

static bool is_fresh(int fd)
{
    return fd >= 0 && fd < FRESH_MAX &&
           atomic_load_explicit(&fresh[fd], memory_order_relaxed);
}

/* Unlinks every pending registration matching (fd, epfd), -1 meaning any,
 * and returns them as a list. */
static struct events_moved *pending_take(int fd, int epfd)
{
    if (atomic_load_explicit(&n_pendings, memory_order_relaxed) == 0)
        return NULL;
    struct events_moved *taken = NULL;
    shim_lock(&pending_lock);
    for (struct events_moved **pp = &pendings; *pp != NULL;) {
        struct events_moved *m = *pp;
        if ((fd >= 0 && m->fd != fd) || (epfd >= 0 && m->epfd != epfd)) {
            pp = &m->next;
            continue;
        }
        *pp = m->next;
        m->next = taken;
        taken = m;
        atomic_fetch_sub(&n_pendings, 1);
    }
    shim_unlock(&pending_lock);
    return taken;
}

void events_moved_free(struct events_moved *m)
{
    while (m != NULL) {
        struct events_moved *next = m->next;
        free(m);
        m = next;
    }
}

void events_socket_created(int fd)
{
    if (fd < 0 || fd >= FRESH_MAX)
        return;
    events_moved_free(pending_take(fd, -1)); /* a number reused unseen */
    atomic_store_explicit(&fresh[fd], true, memory_order_relaxed);
}

void events_socket_settled(int fd)
{
    if (!is_fresh(fd))
        return;
    atomic_store_explicit(&fresh[fd], false, memory_order_relaxed);
    events_moved_free(pending_take(fd, -1));
}

/* Remembers a successful epoll_ctl on a socket not yet connected. */
static void pending_note(int epfd, int op, int fd,
                         const struct epoll_event *ev)
{
    if (!is_fresh(fd))
        return;
    events_moved_free(pending_take(fd, epfd));
    if (op == EPOLL_CTL_DEL || ev == NULL)
        return;
    struct events_moved *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return; /* left in the kernel: readiness of the real socket */
    m->fd = fd;
    m->epfd = epfd;
    m->ev = *ev;
    shim_lock(&pending_lock);
    m->next = pendings;
    pendings = m;
    atomic_fetch_add(&n_pendings, 1);
    shim_unlock(&pending_lock);
}

struct events_moved *events_take_registrations(int fd)
{
    if (!is_fresh(fd))
        return NULL;
    int saved = errno;
    atomic_store_explicit(&fresh[fd], false, memory_order_relaxed);
    struct events_moved *list = pending_take(fd, -1);
    for (struct events_moved *m = list; m != NULL; m = m->next)
        (void)REAL(epoll_ctl)(m->epfd, EPOLL_CTL_DEL, fd, NULL);
    errno = saved;
    return list;
}

void events_restore_registrations(struct events_moved *list, int fd)
{
    int saved = errno;
    struct shim_sock *s = list != NULL ? fdtab_get(fd) : NULL;
    for (struct events_moved *m = list; s != NULL && m != NULL; m = m->next) {
        struct ep_set *e = set_get(m->epfd, true);
        if (e == NULL)
            continue;
        shim_lock(&e->lock);
        if (ctl_add(e, fd, s, &m->ev) != 0)
            ss_log(SS_LOG_ERROR, "epoll set %d: cannot move the registration "
                   "of descriptor %d to its TLS connection: %s", m->epfd, fd,
                   strerror(errno));
        shim_unlock(&e->lock);
        set_put(e);
    }
    shim_sock_unref(s);
    events_moved_free(list);
    errno = saved;
}

/* A record of fd in the set of epfd that outlived its connection (the
 * number was closed by a path the shim did not see, and reused). */
static void drop_stale_reg(int epfd, int fd)
{
    struct ep_set *e = set_get(epfd, false);
    if (e == NULL)
        return;
    shim_lock(&e->lock);
    struct ep_reg *g = reg_by_fd(e, fd);
    if (g != NULL) {
        reg_unlink(e, g);
        reg_free(e, g);
    }
    shim_unlock(&e->lock);
    set_put(e);
}

static int shim_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL) {
        int rc = REAL(epoll_ctl)(epfd, op, fd, ev);
        /* Bookkeeping only for a fresh TCP socket or a tracked set. */
        bool note = rc == 0 && is_fresh(fd);
        bool stale = op == EPOLL_CTL_DEL && maybe_tracked(epfd);
        if (!note && !stale)
            return rc;
        int saved = errno;
        if (note)
            pending_note(epfd, op, fd, ev);
        if (stale)
            drop_stale_reg(epfd, fd);
        errno = saved;
        return rc;
    }
    int rc;
    if (op != EPOLL_CTL_DEL && ev == NULL) {
        errno = EFAULT;
        rc = -1;
    } else if (epfd == fd) {
        errno = EINVAL;
        rc = -1;
    } else {
        struct ep_set *e = set_get(epfd, op != EPOLL_CTL_DEL);
        if (e == NULL && op == EPOLL_CTL_DEL) {
            rc = REAL(epoll_ctl)(epfd, op, fd, ev);
        } else if (e == NULL) {
            rc = -1; /* set_get's errno */
        } else {
            shim_lock(&e->lock);
            rc = ctl_managed(e, op, fd, s, ev);
            shim_unlock(&e->lock);
            int saved = errno;
            set_put(e);
            errno = saved;
        }
    }
    int saved = errno;
    shim_sock_unref(s);
    errno = saved;
    return rc;
}

/*
 * Drops the registrations of fd in e (set locked). The kernel keeps a
 * registration as long as its open file is open: while another program
 * descriptor of the connection remains (last false), a registration made
 * through fd stays, reporting under its epoll_data, only no longer
 * reachable by number. When fd is the connection's last (last true),
 * every registration of the connection in e goes.
 */
static void set_fd_closing(struct ep_set *e, int fd, struct shim_sock *s,
                           bool last)
{
    for (struct ep_reg **pp = &e->regs; *pp != NULL;) {
        struct ep_reg *g = *pp;
        if (g->fd == fd && !last && g->s == s) {
            reg_set_fd(g, -1);
        } else if (g->fd == fd || (last && g->s == s)) {
            *pp = g->next;
            reg_free(e, g);
            continue;
        }
        pp = &g->next;
    }
}

/* Whether a close of fd concerns this file: a fresh socket, pending
 * registrations (fd may be their set), a tracked set, a registration made
 * through that number or a managed socket. Lock-free loads, so closing
 * an untouched descriptor saves no errno and takes no lock, even while
 * sets are tracked. */
static bool closing_concerns_epoll(int fd)
{
    if (is_fresh(fd) ||
        atomic_load_explicit(&n_pendings, memory_order_relaxed) != 0)
        return true;
    if (atomic_load_explicit(&ep_nsets, memory_order_relaxed) == 0)
        return false;
    /* A managed fd's last close ends every registration of its socket. */
    return maybe_tracked(fd) || maybe_regs_on(fd) ||
           !fdtab_low_empty(fdtab_program_low, fd);
}

void events_fd_closing(int fd)
{
    if (!closing_concerns_epoll(fd))
        return;
    int saved = errno;
    events_socket_settled(fd);
    events_moved_free(pending_take(-1, fd)); /* fd may be an epoll set */
    errno = saved;
    if (atomic_load_explicit(&ep_nsets, memory_order_relaxed) == 0)
        return;
    struct shim_sock *s = fdtab_get(fd);
    bool last = true;
    if (s != NULL) {
        shim_sock_lock(s);
        last = s->nfds <= 1;
        shim_sock_unlock(s);
    }
    struct ep_set *gone = NULL;
    shim_lock(&ep_lock);
    for (struct ep_set **pp = &ep_sets; *pp != NULL;) {
        struct ep_set *e = *pp;
        if (e->epfd == fd) {
            *pp = e->next;
            e->dead = true;
            e->next = gone;
            gone = e;
            atomic_fetch_sub(&ep_nsets, 1);
            note_tracked(fd, false);
            continue;
        }
        /* Lock order: ep_lock -> set lock -> sock lock. */
        shim_lock(&e->lock);
        set_fd_closing(e, fd, s, last);
        shim_unlock(&e->lock);
        pp = &e->next;
    }
    shim_unlock(&ep_lock);
    shim_sock_unref(s);
    while (gone != NULL) {
        struct ep_set *e = gone;
        gone = e->next;
        set_put(e);
    }
    errno = saved;
}

/* Another thread's I/O may have left readiness in the engine that no
 * kernel event will announce (plaintext buffered, the handshake
 * finished): the sets that hold a registration of s and have a thread
 * asleep look again. */
void events_sock_progress(struct shim_sock *s)
{
    if (atomic_load_explicit(&s->ep_regs, memory_order_relaxed) == 0)
        return;
    int saved = errno;
    shim_lock(&ep_lock);
    for (struct ep_set *e = ep_sets; e != NULL; e = e->next) {
        if (atomic_load(&e->waiters) == 0)
            continue;
        shim_lock(&e->lock);
        for (struct ep_reg *g = e->regs; g != NULL; g = g->next) {
            if (g->s == s) {
                set_wake(e);
                break;
            }
        }
        shim_unlock(&e->lock);
    }
    shim_unlock(&ep_lock);
    errno = saved;
}

SS_EXPORT int epoll_create(int size)
{
    return REAL(epoll_create)(size);
}

SS_EXPORT int epoll_create1(int flags)
{
    return REAL(epoll_create1)(flags);
}

SS_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
    return shim_epoll_ctl(epfd, op, fd, ev);
}

SS_EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int ms)
{
    return shim_epoll_pwait(epfd, ev, max, ms, NULL);
}

SS_EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int ms,
                          const sigset_t *mask)
{
    return shim_epoll_pwait(epfd, ev, max, ms, mask);
}

SS_EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int max,
                           const struct timespec *tmo, const sigset_t *mask)
{
    return shim_epoll_pwait2(epfd, ev, max, tmo, mask);
}

