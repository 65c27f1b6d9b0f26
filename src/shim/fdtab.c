/*
 * fdtab.c - two descriptor tables: the program's descriptors that stand
 * for a managed socket, and the descriptors the shim owns (docs/design.md,
 * "The program's descriptor never reaches the wire").
 *
 * Lookups are lock-free for the common case: an unmanaged descriptor below
 * FDTAB_LOW costs exactly one atomic load of a NULL slot. Descriptors above
 * it live in lazily allocated chunks (never freed), so any fd number works.
 * Taking a reference on a non-NULL slot is done under the slot's stripe
 * lock, which every writer of a slot also takes: a sock can therefore not
 * be freed between the load and the reference.
 */
#include "fdtab.h"
#include "gate.h"
#include "sock.h"

#include <errno.h>
#include <stdlib.h>

#include "secshim/log.h"

#define CHUNK_SHIFT 12
#define CHUNK_SIZE (1 << CHUNK_SHIFT)
#define CHUNKS ((1 << 20) / CHUNK_SIZE * 64) /* fds up to 64 Mi */
#define STRIPES 64

typedef fdtab_slot_t slot_t;

/* The low array is a global of its own (fdtab.h), which the inline fast
 * checks read directly. */
struct table {
    slot_t *low;
    _Atomic(slot_t *) chunks[CHUNKS];
};

slot_t fdtab_program_low[FDTAB_LOW];
slot_t fdtab_owned_low[FDTAB_LOW];

/* fd -> struct shim_sock *: the program's descriptors of managed sockets
 * (each slot holds a reference). */
static struct table programs = {.low = fdtab_program_low};
/* fd -> struct shim_owned * (its owner removes the entry before it closes
 * the descriptor): descriptors the shim owns, which the program must not
 * close or reuse. */
static struct table owned = {.low = fdtab_owned_low};

/* Stripe i guards the transitions (set, clear, take a reference) of every
 * slot, in both tables, whose fd % STRIPES == i. Leaf locks: nothing is
 * taken under them. Gated (gate.h): fork never takes them. */
static pthread_mutex_t stripe_lock[STRIPES];
static pthread_once_t stripe_once = PTHREAD_ONCE_INIT;

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
static slot_t *slot_of(struct table *t, int fd, bool create)
{
    if (fd < 0)
        return NULL;
    if (fd < FDTAB_LOW)
        return &t->low[fd];
    size_t hi = (size_t)(fd - FDTAB_LOW) >> CHUNK_SHIFT;
    if (hi >= CHUNKS)
        return NULL;
    slot_t *chunk = atomic_load_explicit(&t->chunks[hi], memory_order_acquire);
    if (chunk == NULL && create) {
        slot_t *fresh = calloc(CHUNK_SIZE, sizeof(*fresh));
        if (fresh == NULL)
            return NULL;
        slot_t *expected = NULL;
        if (atomic_compare_exchange_strong(&t->chunks[hi], &expected, fresh)) {
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

/* Whether fd's slot in t holds anything (one load, no lock). */
static bool slot_used(struct table *t, int fd)
{
    slot_t *slot = slot_of(t, fd, false);
    return slot != NULL &&
           atomic_load_explicit(slot, memory_order_relaxed) != NULL;
}

/* Stores v in fd's slot and returns what was there; false when the slot
 * cannot exist (out of memory, an absurd fd). */
static bool slot_swap(struct table *t, int fd, void *v, void **old)
{
    slot_t *slot = slot_of(t, fd, v != NULL);
    *old = NULL;
    if (slot == NULL)
        return v == NULL;
    pthread_mutex_t *m = stripe_of(fd);
    shim_lock(m);
    *old = atomic_exchange(slot, v);
    shim_unlock(m);
    return true;
}

/* The sock in fd's slot of t (owned: the sock of the shim_owned there)
 * with a reference taken, or NULL. */
static struct shim_sock *slot_get_sock(struct table *t, int fd)
{
    if (!slot_used(t, fd))
        return NULL;
    slot_t *slot = slot_of(t, fd, false);
    pthread_mutex_t *m = stripe_of(fd);
    shim_lock(m);
    void *v = atomic_load_explicit(slot, memory_order_acquire);
    struct shim_sock *s = t == &owned && v != NULL
                              ? ((struct shim_owned *)v)->sock : v;
    if (s != NULL)
        shim_sock_ref(s);
    shim_unlock(m);
    return s;
}

/* --- the program's descriptors ---------------------------------------------- */

struct shim_sock *fdtab_get_slow(int fd)
{
    return slot_get_sock(&programs, fd);
}

void fdtab_install(int fd, struct shim_sock *s)
{
    int saved = errno;
    /* A stale entry: the program closed fd in a way the shim did not see
     * (fclose, a raw syscall): fd is something new now. */
    fdtab_detach(fd);
    shim_sock_ref(s);
    shim_sock_count_fd(s, +1);
    void *old;
    if (!slot_swap(&programs, fd, s, &old)) {
        /* The descriptor cannot be tracked. It is a stand-in already, so
         * nothing passes in clear; the connection is shut down so the
         * program sees a failure rather than a silent stall. */
        ss_log(SS_LOG_ERROR, "descriptor %d cannot be tracked; shutting "
               "its TLS connection down", fd);
        shim_sock_count_fd(s, -1);
        shim_sock_unref(s);
    }
    errno = saved;
}

void fdtab_detach_slow(int fd)
{
    if (!slot_used(&programs, fd))
        return;
    int saved = errno;
    void *old;
    (void)slot_swap(&programs, fd, NULL, &old);
    struct shim_sock *s = old;
    if (s != NULL) {
        shim_sock_count_fd(s, -1);
        shim_sock_unref(s);
    }
    errno = saved;
}

/* Calls fn for every fd in [first, last] that has a slot in t. */
static void for_each_used(struct table *t, unsigned int first,
                          unsigned int last, void (*fn)(int fd))
{
    unsigned int top = (unsigned int)FDTAB_LOW - 1;
    for (unsigned int fd = first; fd <= last && fd <= top; fd++)
        if (atomic_load_explicit(&t->low[fd], memory_order_relaxed) != NULL)
            fn((int)fd);
    /* Above the low array only chunks that exist can hold entries. */
    for (size_t hi = 0; hi < CHUNKS; hi++) {
        unsigned int base = (unsigned int)(FDTAB_LOW + (hi << CHUNK_SHIFT));
        unsigned int end = base + CHUNK_SIZE - 1;
        if (base > last)
            break;
        slot_t *chunk = atomic_load_explicit(&t->chunks[hi],
                                             memory_order_acquire);
        if (end < first || chunk == NULL)
            continue;
        unsigned int lo = base > first ? base : first;
        unsigned int up = end < last ? end : last;
        for (unsigned int fd = lo; fd <= up; fd++)
            if (atomic_load_explicit(&chunk[fd - base],
                                     memory_order_relaxed) != NULL)
                fn((int)fd);
    }
}

void fdtab_detach_range(unsigned int first, unsigned int last)
{
    int saved = errno;
    for_each_used(&programs, first, last, fdtab_detach_slow);
    errno = saved;
}

/* fdtab_managed_fds' output, for for_each_used's callback. */
static __thread int *list_out;
static __thread size_t list_n, list_max;

static void list_one(int fd)
{
    if (list_n < list_max)
        list_out[list_n] = fd;
    list_n++;
}

size_t fdtab_managed_fds(int *fds, size_t max)
{
    list_out = fds;
    list_n = 0;
    list_max = max;
    for_each_used(&programs, 0, 0x7fffffffu, list_one);
    return list_n;
}

/* --- descriptors the shim owns ---------------------------------------------- */

void fdtab_own(int fd, struct shim_owned *o)
{
    void *old;
    if (!slot_swap(&owned, fd, o, &old))
        ss_log(SS_LOG_WARNING, "descriptor %d cannot be marked as the "
               "shim's own; the program could close it", fd);
}

void fdtab_disown(int fd)
{
    void *old;
    (void)slot_swap(&owned, fd, NULL, &old);
}

bool fdtab_ours_slow(int fd)
{
    if (!slot_used(&owned, fd))
        return false;
    slot_t *slot = slot_of(&owned, fd, false);
    pthread_mutex_t *m = stripe_of(fd);
    shim_lock(m);
    struct shim_owned *o = atomic_load_explicit(slot, memory_order_acquire);
    bool ours = o != NULL && shim_owned_still(o, fd);
    if (o != NULL && !ours)
        atomic_store_explicit(slot, NULL, memory_order_release);
    shim_unlock(m);
    return ours;
}

int fdtab_move_owned(int fd)
{
    if (!slot_used(&owned, fd))
        return 0;
    slot_t *slot = slot_of(&owned, fd, false);
    pthread_mutex_t *m = stripe_of(fd);
    shim_lock(m);
    struct shim_owned *o = atomic_load_explicit(slot, memory_order_acquire);
    int (*move)(int) = o != NULL ? o->move : NULL;
    shim_unlock(m);
    /* The owner finds its record again by number, under its own lock:
     * the record itself may be gone by now. */
    return move != NULL ? move(fd) : 0;
}

struct shim_sock *fdtab_owner_get(int fd)
{
    return slot_get_sock(&owned, fd);
}

int fdtab_next_owned(int from)
{
    for (int fd = from < 0 ? 0 : from; fd < FDTAB_LOW; fd++)
        if (atomic_load_explicit(&owned.low[fd], memory_order_relaxed))
            return fd;
    for (size_t hi = 0; hi < CHUNKS; hi++) {
        int base = FDTAB_LOW + (int)(hi << CHUNK_SHIFT);
        slot_t *chunk = atomic_load_explicit(&owned.chunks[hi],
                                             memory_order_acquire);
        if (chunk == NULL || base + CHUNK_SIZE - 1 < from)
            continue;
        for (int i = from > base ? from - base : 0; i < CHUNK_SIZE; i++)
            if (atomic_load_explicit(&chunk[i], memory_order_relaxed))
                return base + i;
    }
    return -1;
}

