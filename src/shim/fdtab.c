/*
 * fdtab.c - descriptor -> managed socket, and the life of a shim_sock.
 *
 * Lookups are lock-free for the common case: an unmanaged descriptor below
 * FDTAB_LOW costs exactly one atomic load of a NULL slot. Descriptors above
 * it live in lazily allocated chunks (never freed), so any fd number works.
 * Taking a reference on a non-NULL slot is done under the slot's stripe
 * lock, which close/dup2 also take to clear the slot: a sock can therefore
 * not be freed between the load and the reference.
 */
#include "shim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "secshim/log.h"

#define FDTAB_LOW 4096
#define CHUNK_SHIFT 12
#define CHUNK_SIZE (1 << CHUNK_SHIFT)
#define CHUNKS ((1 << 20) / CHUNK_SIZE * 64) /* fds up to 64 Mi */
#define STRIPES 64

typedef _Atomic(struct shim_sock *) slot_t;

static slot_t fdtab_low[FDTAB_LOW];
static _Atomic(slot_t *) fdtab_chunks[CHUNKS];

/* Stripe i guards the transitions (set, clear, take a reference) of every
 * slot whose fd % STRIPES == i. Leaf locks: nothing is taken under them. */
static pthread_mutex_t stripe_lock[STRIPES];
static pthread_once_t stripe_once = PTHREAD_ONCE_INIT;

/* Guards the list of live socks (for the fork handlers). Taken before any
 * sock lock, and only at fork time together with them. */
static pthread_mutex_t sock_list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shim_sock *sock_list;

/* The descriptor the engine's BIO must use during the current engine call
 * of this thread (see shim_sock_lock); -1 outside engine calls. */
static __thread int io_fd __attribute__((tls_model("initial-exec"))) = -1;

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

static void stripes_init(void)
{
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&stripe_lock[i], NULL);
}

static pthread_mutex_t *stripe_of(int fd)
{
    pthread_once(&stripe_once, stripes_init);
    return &stripe_lock[fd % STRIPES];
}

/* The slot of fd, or NULL when fd is out of range or (create == false) its
 * chunk does not exist yet. */
static slot_t *slot_of(int fd, bool create)
{
    if (fd < 0)
        return NULL;
    if (fd < FDTAB_LOW)
        return &fdtab_low[fd];
    size_t hi = (size_t)(fd - FDTAB_LOW) >> CHUNK_SHIFT;
    if (hi >= CHUNKS)
        return NULL;
    slot_t *chunk = atomic_load_explicit(&fdtab_chunks[hi],
                                         memory_order_acquire);
    if (chunk == NULL && create) {
        slot_t *fresh = calloc(CHUNK_SIZE, sizeof(*fresh));
        if (fresh == NULL)
            return NULL;
        slot_t *expected = NULL;
        if (atomic_compare_exchange_strong(&fdtab_chunks[hi], &expected,
                                           fresh)) {
            chunk = fresh;
        } else {
            free(fresh); /* another thread won the race */
            chunk = expected;
        }
    }
    if (chunk == NULL)
        return NULL;
    return &chunk[(size_t)(fd - FDTAB_LOW) & (CHUNK_SIZE - 1)];
}

/* --- shim_sock life -------------------------------------------------------- */

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
                                const char *peer)
{
    struct shim_sock *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        ss_conn_free(conn);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->owner = self();
    sock_sync_init(s);
    s->conn = conn;
    s->dir = dir;
    snprintf(s->peer, sizeof(s->peer), "%s", peer);

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
    /* ss_conn_free sends nothing, so it is safe even though every
     * descriptor of the socket may be closed (and reused) by now. */
    ss_conn_free(s->conn);
    pthread_cond_destroy(&s->hs_cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
    errno = saved;
}

/* Locks s for fd without claiming the connection: for bookkeeping that
 * is not a use (a close must not make its process the owner). */
static void lock_quiet(struct shim_sock *s, int fd)
{
    pthread_mutex_lock(&s->lock);
    io_fd = fd;
}

/* Every engine call goes through here, so this is where the process that
 * uses the connection claims it: after a fork, the first process to drive
 * the conn becomes the one whose last close sends close_notify. */
void shim_sock_lock(struct shim_sock *s, int fd)
{
    lock_quiet(s, fd);
    s->owner = self();
}

void shim_sock_unlock(struct shim_sock *s)
{
    io_fd = -1;
    pthread_mutex_unlock(&s->lock);
}

/* The engine's BIO calls these; the fd it passes is the one the conn was
 * made with, which a dup + close may have retired, so the descriptor of the
 * app call being served is used instead. */
static ssize_t shim_io_recv(int fd, void *buf, size_t len, int flags)
{
    return REAL(recv)(io_fd >= 0 ? io_fd : fd, buf, len, flags);
}

static ssize_t shim_io_send(int fd, const void *buf, size_t len, int flags)
{
    return REAL(send)(io_fd >= 0 ? io_fd : fd, buf, len, flags);
}

const struct ss_io_ops shim_io = {shim_io_recv, shim_io_send};

static void detach(int fd, bool notify);

/* --- the table ------------------------------------------------------------- */

struct shim_sock *fdtab_get(int fd)
{
    slot_t *slot = slot_of(fd, false);
    if (slot == NULL ||
        atomic_load_explicit(slot, memory_order_relaxed) == NULL)
        return NULL;
    pthread_mutex_t *m = stripe_of(fd);
    pthread_mutex_lock(m);
    struct shim_sock *s = atomic_load_explicit(slot, memory_order_acquire);
    if (s != NULL)
        shim_sock_ref(s);
    pthread_mutex_unlock(m);
    return s;
}

void fdtab_install(int fd, struct shim_sock *s)
{
    int saved = errno;
    /* A stale entry: the program closed fd in a way the shim did not see
     * (fclose, close_range): fd is a new socket now, so nothing is sent. */
    detach(fd, false);
    slot_t *slot = slot_of(fd, true);
    if (slot == NULL) {
        /* Out of memory or an absurd fd: fail closed rather than leave a
         * TLS endpoint unmanaged. */
        ss_log(SS_LOG_ERROR, "descriptor %d cannot be tracked; shutting "
               "the TLS connection down", fd);
        REAL(shutdown)(fd, SHUT_RDWR);
        errno = saved;
        return;
    }
    shim_sock_ref(s);
    pthread_mutex_lock(&s->lock);
    s->nfds++;
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_t *m = stripe_of(fd);
    pthread_mutex_lock(m);
    atomic_store_explicit(slot, s, memory_order_release);
    pthread_mutex_unlock(m);
    errno = saved;
}

/* Clears fd's slot; notify: fd is still the socket the sock belongs to,
 * so close_notify may be sent on it. */
static void detach(int fd, bool notify)
{
    slot_t *slot = slot_of(fd, false);
    if (slot == NULL ||
        atomic_load_explicit(slot, memory_order_relaxed) == NULL)
        return;
    int saved = errno;
    pthread_mutex_t *m = stripe_of(fd);
    pthread_mutex_lock(m);
    struct shim_sock *s = atomic_exchange(slot, NULL);
    pthread_mutex_unlock(m);
    if (s == NULL) {
        errno = saved;
        return;
    }
    lock_quiet(s, fd);
    if (--s->nfds == 0) {
        /* Calls still in flight in other threads now fail with EBADF
         * instead of touching a descriptor number that may be reused. */
        s->closed = true;
        /* close_notify is best effort and non-blocking. Only the process
         * that used the connection last since a fork sends it: another
         * process that still has the socket may be the one using it, and
         * a close_notify from here would end its stream (DESIGN.md
         * decision 8, docs/shim.md "fork"). */
        if (notify && !s->failed && s->owner == self())
            (void)ss_conn_shutdown(s->conn);
    }
    shim_sock_unlock(s);
    shim_sock_unref(s);
    errno = saved;
}

void fdtab_detach(int fd)
{
    detach(fd, true);
}

void fdtab_detach_range(unsigned int first, unsigned int last)
{
    int saved = errno;
    unsigned int top = (unsigned int)FDTAB_LOW - 1;
    for (unsigned int fd = first; fd <= last && fd <= top; fd++)
        detach((int)fd, true);
    /* Above the low array only chunks that exist can hold entries. */
    for (size_t hi = 0; hi < CHUNKS; hi++) {
        unsigned int base = (unsigned int)(FDTAB_LOW + (hi << CHUNK_SHIFT));
        unsigned int end = base + CHUNK_SIZE - 1;
        if (base > last)
            break;
        if (end < first ||
            atomic_load_explicit(&fdtab_chunks[hi], memory_order_acquire) ==
                NULL)
            continue;
        unsigned int lo = base > first ? base : first;
        unsigned int up = end < last ? end : last;
        for (unsigned int fd = lo; fd <= up; fd++)
            detach((int)fd, true);
    }
    errno = saved;
}

size_t fdtab_managed_fds(int *fds, size_t max)
{
    size_t n = 0;
    for (int fd = 0; fd < FDTAB_LOW; fd++) {
        if (atomic_load_explicit(&fdtab_low[fd], memory_order_relaxed) ==
            NULL)
            continue;
        if (n < max)
            fds[n] = fd;
        n++;
    }
    for (size_t hi = 0; hi < CHUNKS; hi++) {
        slot_t *chunk = atomic_load_explicit(&fdtab_chunks[hi],
                                             memory_order_acquire);
        for (size_t i = 0; chunk != NULL && i < CHUNK_SIZE; i++) {
            if (atomic_load_explicit(&chunk[i], memory_order_relaxed) ==
                NULL)
                continue;
            if (n < max)
                fds[n] = FDTAB_LOW + (int)((hi << CHUNK_SHIFT) + i);
            n++;
        }
    }
    return n;
}

/* --- fork ------------------------------------------------------------------ */

void fdtab_fork_prepare(void)
{
    pthread_once(&stripe_once, stripes_init);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_lock(&stripe_lock[i]);
    pthread_mutex_lock(&sock_list_lock);
    for (struct shim_sock *s = sock_list; s != NULL; s = s->list_next)
        pthread_mutex_lock(&s->lock);
}

/* After a fork two processes hold every connection and neither has used
 * it since: the first to use it claims it (shim_sock_lock). */
void fdtab_fork_parent(void)
{
    for (struct shim_sock *s = sock_list; s != NULL; s = s->list_next) {
        s->owner = 0;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&sock_list_lock);
    for (int i = STRIPES - 1; i >= 0; i--)
        pthread_mutex_unlock(&stripe_lock[i]);
}

/* The child has one thread, the one that forked: every lock is re-made
 * rather than unlocked, and a handshake wait that belonged to a thread
 * that does not exist here is forgotten. References held by calls in
 * flight in those threads are never dropped here: such a sock outlives
 * its last close in the child (a small leak, never a use after free). */
void fdtab_fork_child(void)
{
    atomic_store_explicit(&self_pid, getpid(), memory_order_relaxed);
    for (struct shim_sock *s = sock_list; s != NULL; s = s->list_next) {
        s->owner = 0;
        sock_sync_init(s);
        s->hs_busy = false;
    }
    pthread_mutex_init(&sock_list_lock, NULL);
    for (int i = 0; i < STRIPES; i++)
        pthread_mutex_init(&stripe_lock[i], NULL);
}
