/*
 * sock.c - the managed socket: the private descriptor that carries its TCP
 * connection, the inert stand-in that takes the program's descriptor
 * number, and the life of a shim_sock (docs/design.md, "The program's
 * descriptor never reaches the wire").
 *
 * When a socket becomes managed, the TCP connection moves to a descriptor
 * only the shim uses (close-on-exec, numbered above FD_SETSIZE where the
 * limit allows) and the program's number is re-pointed with dup3 at an
 * unconnected socket of the same family that carries the program's file
 * status flags. Whatever reaches the program's number without the shim (a
 * raw syscall, io_uring, AIO, an exec'd program, a process it was passed
 * to) meets the stand-in and fails (EPIPE / ENOTCONN): nothing is sent.
 */
#include "epoll.h"
#include "fdtab.h"
#include "linger.h"
#include "real.h"
#include "sock.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secshim/log.h"

/* Descriptors kept free below the soft limit when choosing where private
 * descriptors start, so the program can still open files near its limit. */
#define PRIVATE_RESERVE 64
/* When the soft RLIMIT_NOFILE leaves no room above FD_SETSIZE, it is
 * raised towards the hard limit, up to this (private_raise). */
#define PRIVATE_RAISE_TO (4 * FD_SETSIZE)

/* Guards the list of live socks (for the fork handlers). Taken before any
 * sock lock, and only at fork time together with them. */
static pthread_mutex_t sock_list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shim_sock *sock_list;

/* This process's pid, cached because the fork rule marks every engine
 * call with it and getpid() is a system call in glibc >= 2.25. 0 until
 * first use; the fork child handler sets it anew. */
static _Atomic pid_t self_pid;

static pid_t self(void)
{
    pid_t p = atomic_load_explicit(&self_pid, memory_order_relaxed);
    if (p == 0) {
        p = getpid();
        atomic_store_explicit(&self_pid, p, memory_order_relaxed);
    }
    return p;
}

pid_t shim_self_pid(void)
{
    return self();
}

bool shim_in_vfork_child(void)
{
    pid_t p = atomic_load_explicit(&self_pid, memory_order_relaxed);
    return p != 0 && p != getpid();
}

/* --- the private descriptor -------------------------------------------------- */

static _Atomic int private_floor_value = -1;
static pthread_once_t private_raise_once = PTHREAD_ONCE_INIT;

/* Where private descriptors start for the current soft limit: FD_SETSIZE,
 * so that select() programs keep every low number, or half the limit when
 * it leaves no room there. */
static int private_floor(void)
{
    int floor = atomic_load_explicit(&private_floor_value,
                                     memory_order_relaxed);
    if (floor >= 0)
        return floor;
    struct rlimit rl;
    floor = 3;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur >= FD_SETSIZE + 2 * PRIVATE_RESERVE)
            floor = FD_SETSIZE;
        else if (rl.rlim_cur / 2 > 3)
            floor = (int)(rl.rlim_cur / 2);
    }
    atomic_store_explicit(&private_floor_value, floor, memory_order_relaxed);
    return floor;
}

/*
 * A managed connection holds two descriptors. When the soft limit leaves
 * no room above FD_SETSIZE it is raised towards the hard limit, once, at
 * the first managed connection (docs/shim.md, "Descriptors"): processes
 * that never make one keep their limit.
 */
static void private_raise(void)
{
    struct rlimit rl;
    rlim_t want = FD_SETSIZE + 2 * PRIVATE_RESERVE;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want ||
        rl.rlim_max <= rl.rlim_cur)
        return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max < PRIVATE_RAISE_TO ? rl.rlim_max
                                                 : PRIVATE_RAISE_TO;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    atomic_store_explicit(&private_floor_value, -1, memory_order_relaxed);
    ss_log(SS_LOG_INFO, "soft RLIMIT_NOFILE raised from %llu to %llu for the "
           "descriptors of TLS connections", (unsigned long long)old,
           (unsigned long long)rl.rlim_cur);
}

int shim_private_dup(int fd, bool for_connection)
{
    if (for_connection)
        pthread_once(&private_raise_once, private_raise);
    int priv = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, private_floor());
    if (priv < 0 && (errno == EMFILE || errno == EINVAL))
        priv = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, 3); /* any free number */
    if (priv < 0 && errno == EINVAL)
        errno = EMFILE;
    return priv;
}

int shim_own_private(int fd, struct shim_owned *o, struct shim_sock *s,
                     int (*move)(int fd), bool for_connection)
{
    int copy = shim_private_dup(fd, for_connection);
    if (copy < 0)
        return -1;
    if (!shim_owned_record(o, copy, s)) {
        int e = errno;
        REAL(close)(copy);
        errno = e;
        return -1;
    }
    o->move = move;
    fdtab_own(copy, o);
    return copy;
}

bool shim_owned_record(struct shim_owned *o, int fd, struct shim_sock *s)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return false;
    o->dev = st.st_dev;
    o->ino = st.st_ino;
    o->sock = s;
    o->move = NULL;
    return true;
}

bool shim_owned_still(const struct shim_owned *o, int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_dev == o->dev && st.st_ino == o->ino;
}

bool shim_sock_private_ours(const struct shim_sock *s)
{
    return shim_owned_still(&s->priv_own, s->priv_fd);
}

static int private_move(int fd);

/*
 * Moves s to a new private descriptor (the program dup2'ed onto the old
 * number). The epoll registrations that watch the private descriptor
 * itself move with it (events_private_move); every epoll lock is held
 * across the move, so that none is made on the old number meanwhile.
 * Returns 0 or -1 with errno (s then stays where it was).
 */
static int sock_relocate(struct shim_sock *s)
{
    events_hold();
    pthread_mutex_lock(&s->lock);
    int old = s->priv_fd;
    int fresh = shim_own_private(old, &s->priv_own, s, private_move, true);
    int rc = fresh < 0 ? -1 : events_private_move(s, old, fresh);
    if (rc == 0) {
        s->priv_fd = fresh;
        ss_conn_set_fd(s->conn, fresh);
    }
    int e = errno;
    int unused = rc == 0 ? old : fresh;
    if (unused >= 0) {
        fdtab_disown(unused);
        REAL(close)(unused);
    }
    pthread_mutex_unlock(&s->lock);
    events_release();
    errno = e;
    return rc;
}

/* shim_owned.move of a private descriptor. */
static int private_move(int fd)
{
    struct shim_sock *s = fdtab_owner_get(fd);
    int rc = s != NULL ? sock_relocate(s) : 0;
    shim_sock_unref(s);
    return rc;
}

/* --- the stand-in ------------------------------------------------------------ */

int shim_standin_install(int fd, int family)
{
    int status = REAL(fcntl)(fd, F_GETFL);
    int fdflags = REAL(fcntl)(fd, F_GETFD);
    if (status < 0 || fdflags < 0)
        return -1;
    int standin = REAL(socket)(family, SOCK_STREAM | SOCK_CLOEXEC,
                               IPPROTO_TCP);
    if (standin < 0)
        return -1;
    /* The program's O_NONBLOCK (and O_APPEND, O_ASYNC...) now live on the
     * stand-in, where fcntl/ioctl(FIONBIO) find and change them. */
    (void)REAL(fcntl)(standin, F_SETFL, status);
    int rc = REAL(dup3)(standin, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0);
    int e = errno;
    REAL(close)(standin);
    errno = e;
    return rc < 0 ? -1 : 0;
}

/* --- shim_sock life ------------------------------------------------------------ */

/* The sock's lock and handshake condition, fresh (also in a fork child,
 * where the parent's may have been held by a thread that is not there). */
static void sock_sync_init(struct shim_sock *s)
{
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->hs_cond, &ca);
    pthread_condattr_destroy(&ca);
}

struct shim_sock *shim_sock_new(struct ss_conn *conn, enum ss_direction dir,
                                const char *peer, int priv_fd)
{
    size_t peer_len = strlen(peer);
    struct shim_sock *s = calloc(1, sizeof(*s) + peer_len + 1);
    if (s == NULL || !shim_owned_record(&s->priv_own, priv_fd, s)) {
        free(s);
        ss_conn_free(conn);
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->owner = self();
    shim_status_touch(); /* a fork child's first connection publishes it */
    sock_sync_init(s);
    s->conn = conn;
    s->stat = shim_status_endpoint(ss_conn_endpoint(conn));
    s->dir = dir;
    s->priv_fd = priv_fd;
    memcpy(s->peer, peer, peer_len + 1);
    s->priv_own.move = private_move;
    fdtab_own(priv_fd, &s->priv_own);

    pthread_mutex_lock(&sock_list_lock);
    s->list_next = sock_list;
    if (sock_list != NULL)
        sock_list->list_prev = s;
    sock_list = s;
    pthread_mutex_unlock(&sock_list_lock);
    return s;
}

void shim_sock_ref(struct shim_sock *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

/* Closes the private descriptor, unless it was taken from the shim (a raw
 * close and a reuse of the number): then it belongs to someone else now,
 * and is left alone. */
static void private_close(struct shim_sock *s)
{
    fdtab_disown(s->priv_fd);
    if (shim_sock_private_ours(s)) {
        REAL(close)(s->priv_fd);
        return;
    }
    ss_log(SS_LOG_WARNING, "endpoint '%s': the descriptor of the TLS "
           "connection with %s (%d) was closed behind the shim's back; "
           "leaving that number alone", shim_sock_endpoint(s), s->peer,
           s->priv_fd);
}

void shim_sock_unref(struct shim_sock *s)
{
    if (s == NULL)
        return;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    int saved = errno;
    pthread_mutex_lock(&sock_list_lock);
    if (s->list_prev != NULL)
        s->list_prev->list_next = s->list_next;
    else
        sock_list = s->list_next;
    if (s->list_next != NULL)
        s->list_next->list_prev = s->list_prev;
    pthread_mutex_unlock(&sock_list_lock);
    ss_conn_free(s->conn); /* sends nothing */
    private_close(s);
    pthread_cond_destroy(&s->hs_cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
    errno = saved;
}

/* Locks s without claiming the connection: for bookkeeping that is not a
 * use (a close must not make its process the owner). */
static void lock_quiet(struct shim_sock *s)
{
    pthread_mutex_lock(&s->lock);
}

/* Every engine call goes through here, so this is where the process that
 * uses the connection claims it: after a fork, the first process to drive
 * the conn becomes the one whose last close sends close_notify. */
void shim_sock_lock(struct shim_sock *s)
{
    lock_quiet(s);
    if (s->owner != self()) {
        s->owner = self();
        /* The first use since a fork: a child publishes its status. */
        shim_status_touch();
    }
}

void shim_sock_unlock(struct shim_sock *s)
{
    pthread_mutex_unlock(&s->lock);
}

void shim_sock_count_fd(struct shim_sock *s, int delta)
{
    lock_quiet(s);
    s->nfds += delta;
    if (delta < 0 && s->nfds == 0) {
        /* Calls still in flight in other threads now fail with EBADF. */
        s->closed = true;
        if (s->stat_open_pid == self()) {
            atomic_fetch_sub_explicit(&s->stat->open, 1,
                                      memory_order_relaxed);
            s->stat_open_pid = 0;
        }
        /* Only the process that used the connection last since a fork
         * sends close_notify: another process that still has the socket
         * may be the one using it, and a close_notify from here would end
         * its stream (docs/design.md, "Process life"). What the program
         * wrote is delivered first, by the linger if the socket cannot
         * take it now ("Close without loss"). */
        if (!s->failed && s->owner == self())
            linger_last_close(s);
    }
    pthread_mutex_unlock(&s->lock);
}

void shim_sock_for_each_open(void (*fn)(struct shim_sock *s))
{
    size_t n = 0, cap = 0;
    struct shim_sock **open = NULL;
    pthread_mutex_lock(&sock_list_lock);
    for (struct shim_sock *s = sock_list; s != NULL; s = s->list_next)
        cap++;
    if (cap > 0)
        open = malloc(cap * sizeof(*open));
    for (struct shim_sock *s = sock_list; open != NULL && s != NULL;
         s = s->list_next) {
        lock_quiet(s);
        bool take = !s->closed && !s->failed;
        pthread_mutex_unlock(&s->lock);
        if (!take)
            continue;
        shim_sock_ref(s);
        open[n++] = s;
    }
    pthread_mutex_unlock(&sock_list_lock);
    for (size_t i = 0; i < n; i++)
        fn(open[i]);
    free(open);
}

const char *shim_sock_endpoint(const struct shim_sock *s)
{
    const struct ss_endpoint *ep = ss_conn_endpoint(s->conn);
    return ep != NULL && ep->name != NULL ? ep->name : "?";
}

void shim_sock_log_fields(struct ss_log_fields *f, const struct shim_sock *s)
{
    ss_log_fields_init(f);
    ss_log_field_endpoint(f, shim_sock_endpoint(s));
    ss_log_field(f, "peer", s->peer);
    ss_log_field(f, "direction",
                 s->dir == SS_DIR_CONNECT ? "connect" : "accept");
}

/* The engine's BIO does its I/O on the private descriptor it was given,
 * through the real calls. */
static ssize_t shim_io_recv(int fd, void *buf, size_t len, int flags)
{
    return REAL(recv)(fd, buf, len, flags);
}

static ssize_t shim_io_send(int fd, const void *buf, size_t len, int flags)
{
    return REAL(send)(fd, buf, len, flags);
}

const struct ss_io_ops shim_io = {shim_io_recv, shim_io_send};

/* --- fork ------------------------------------------------------------------ */

void shim_sock_fork_prepare(void)
{
    pthread_mutex_lock(&sock_list_lock);
    for (struct shim_sock *s = sock_list; s != NULL; s = s->list_next)
        pthread_mutex_lock(&s->lock);
}

/* After a fork two processes hold every connection and neither has used
 * it since: the first to use it claims it (shim_sock_lock). */
void shim_sock_fork_parent(void)
{
    for (struct shim_sock *s = sock_list; s != NULL; s = s->list_next) {
        s->owner = 0;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&sock_list_lock);
}

/* The child has one thread, the one that forked: every lock is re-made
 * rather than unlocked, and a handshake wait that belonged to a thread
 * that does not exist here is forgotten. References held by calls in
 * flight in those threads are never dropped here: such a sock outlives
 * its last close in the child (a small leak, never a use after free). */
void shim_sock_fork_child(void)
{
    atomic_store_explicit(&self_pid, getpid(), memory_order_relaxed);
    for (struct shim_sock *s = sock_list; s != NULL; s = s->list_next) {
        s->owner = 0;
        sock_sync_init(s);
        s->hs_busy = false;
    }
    pthread_mutex_init(&sock_list_lock, NULL);
}
