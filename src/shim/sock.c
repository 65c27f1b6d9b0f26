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
#include "gate.h"
#include "linger.h"
#include "real.h"
#include "sock.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "secshim/log.h"

/* Descriptors kept free below the soft limit when choosing where private
 * descriptors start, so the program can still open files near its limit. */
#define PRIVATE_RESERVE 64
/* When the soft RLIMIT_NOFILE leaves no room above FD_SETSIZE, it is
 * raised towards the hard limit, up to this (private_raise). */
#define PRIVATE_RAISE_TO (4 * FD_SETSIZE)

/* Guards the list of live socks (for the exit handler). Gated; taken
 * before a sock lock, and only at exit together with one. */
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
    shim_sock_lock_quiet(s);
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
    shim_sock_unlock(s);
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

int shim_standin_install(int fd, int family, int *status)
{
    *status = REAL(fcntl)(fd, F_GETFL);
    int fdflags = REAL(fcntl)(fd, F_GETFD);
    if (*status < 0 || fdflags < 0)
        return -1;
    /* The program's O_NONBLOCK (and O_APPEND, O_ASYNC...) now live on the
     * stand-in, where fcntl/ioctl(FIONBIO) find and change them. A fresh
     * socket has none: O_NONBLOCK comes with it, the rare others after. */
    int type = SOCK_STREAM | SOCK_CLOEXEC |
               ((*status & O_NONBLOCK) ? SOCK_NONBLOCK : 0);
    int standin = REAL(socket)(family, type, IPPROTO_TCP);
    if (standin < 0)
        return -1;
    if ((*status & ~(O_ACCMODE | O_NONBLOCK)) != 0)
        (void)REAL(fcntl)(standin, F_SETFL, *status);
    int rc = REAL(dup3)(standin, fd, (fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0);
    int e = errno;
    REAL(close)(standin);
    errno = e;
    return rc < 0 ? -1 : 0;
}

/* --- shim_sock life ------------------------------------------------------------ */

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
    s->owner_epoch = shim_fork_epoch();
    shim_status_touch(); /* a fork child's first connection publishes it */
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->hs_steps, 0);
    s->conn = conn;
    s->stat = shim_status_endpoint(ss_conn_endpoint(conn));
    s->dir = dir;
    s->priv_fd = priv_fd;
    memcpy(s->peer, peer, peer_len + 1);
    s->priv_own.move = private_move;
    fdtab_own(priv_fd, &s->priv_own);

    shim_lock(&sock_list_lock);
    s->list_next = sock_list;
    if (sock_list != NULL)
        sock_list->list_prev = s;
    sock_list = s;
    shim_unlock(&sock_list_lock);
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
    shim_lock(&sock_list_lock);
    if (s->list_prev != NULL)
        s->list_prev->list_next = s->list_next;
    else
        sock_list = s->list_next;
    if (s->list_next != NULL)
        s->list_next->list_prev = s->list_prev;
    shim_unlock(&sock_list_lock);
    ss_conn_free(s->conn); /* sends nothing */
    private_close(s);
    pthread_mutex_destroy(&s->lock);
    free(s);
    errno = saved;
}

void shim_sock_lock_quiet(struct shim_sock *s)
{
    shim_lock(&s->lock);
}

bool shim_sock_owned_here(const struct shim_sock *s)
{
    return s->owner == self() && s->owner_epoch == shim_fork_epoch();
}

/* Every engine call goes through here, so this is where the process that
 * uses the connection claims it: after a fork, the first process to drive
 * the conn becomes the one whose last close sends close_notify. A fork
 * changes the epoch on both sides, so neither owns it until then, and
 * fork itself touches no sock. */
void shim_sock_lock(struct shim_sock *s)
{
    shim_sock_lock_quiet(s);
    if (!shim_sock_owned_here(s)) {
        s->owner = self();
        s->owner_epoch = shim_fork_epoch();
        /* The first use since a fork: a child publishes its status. */
        shim_status_touch();
    }
}

void shim_sock_unlock(struct shim_sock *s)
{
    shim_unlock(&s->lock);
}

bool shim_sock_hs_busy(const struct shim_sock *s)
{
    return s->hs_busy && s->hs_busy_gen == shim_child_generation();
}

void shim_sock_set_hs_busy(struct shim_sock *s, bool busy)
{
    s->hs_busy = busy;
    s->hs_busy_gen = shim_child_generation();
}

void shim_sock_step_done(struct shim_sock *s)
{
    atomic_fetch_add_explicit(&s->hs_steps, 1, memory_order_relaxed);
    if (s->hs_waiters > 0)
        (void)syscall(SYS_futex, &s->hs_steps, FUTEX_WAKE_PRIVATE, INT_MAX,
                      NULL, NULL, 0);
}

/* A futex rather than a condition variable: the wait holds no lock, so
 * fork need not wait for it (gate.h), and a fork child finds nothing of
 * the parent's sleepers to re-make. The word is read under s's lock and
 * only changes under it, so a step that ends between the unlock and the
 * sleep makes the sleep return at once. */
int shim_sock_wait_step(struct shim_sock *s, const struct timespec *deadline)
{
    unsigned seen = atomic_load_explicit(&s->hs_steps, memory_order_relaxed);
    s->hs_waiters++;
    shim_sock_unlock(s);
    int e = 0;
    if (syscall(SYS_futex, &s->hs_steps,
                FUTEX_WAIT_BITSET_PRIVATE, seen, deadline, NULL,
                FUTEX_BITSET_MATCH_ANY) != 0)
        e = errno;
    shim_sock_lock(s);
    s->hs_waiters--;
    return e == ETIMEDOUT ? ETIMEDOUT : 0;
}

void shim_sock_count_fd(struct shim_sock *s, int delta)
{
    shim_sock_lock_quiet(s);
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
        if (!s->failed && shim_sock_owned_here(s))
            linger_last_close(s);
    }
    shim_sock_unlock(s);
}

void shim_sock_for_each_open(void (*fn)(struct shim_sock *s))
{
    size_t n = 0, cap = 0;
    struct shim_sock **open = NULL;
    shim_lock(&sock_list_lock);
    for (struct shim_sock *s = sock_list; s != NULL; s = s->list_next)
        cap++;
    if (cap > 0)
        open = malloc(cap * sizeof(*open));
    for (struct shim_sock *s = sock_list; open != NULL && s != NULL;
         s = s->list_next) {
        shim_sock_lock_quiet(s);
        bool take = !s->closed && !s->failed;
        shim_sock_unlock(s);
        if (!take)
            continue;
        shim_sock_ref(s);
        open[n++] = s;
    }
    shim_unlock(&sock_list_lock);
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

/* Nothing of any sock is touched at fork (its cost does not grow with
 * the connections): the gate guarantees no sock lock is held, the epochs
 * make the owner and the handshake's waiter the parent's (gate.h). */
void shim_sock_fork_child(void)
{
    atomic_store_explicit(&self_pid, getpid(), memory_order_relaxed);
}
