/*
 * The fork gate: gate.h says what it is for, docs/design.md ("Process
 * life") why.
 *
 * A counter of the threads inside and a flag that fork raises. A thread
 * enters by counting itself in and then looking at the flag; fork raises
 * the flag and then looks at the counter. Both are sequentially
 * consistent, so at least one of the two sees the other: either the
 * thread sees the flag and counts itself out again to wait, or fork sees
 * the thread and waits for it to leave.
 */
#include "gate.h"

#include <stdatomic.h>
#include <stdbool.h>

/* Gated locks the calling thread holds; the gate is entered at 0 -> 1 and
 * left at 1 -> 0. Initial-exec: the preloaded library has static TLS, and
 * this is read on every managed call. */
static __thread unsigned depth __attribute__((tls_model("initial-exec")));

static atomic_uint inside; /* threads with depth > 0, or about to be */
static atomic_bool closed; /* a fork is under way */

/* Guards nothing but the two waits: a thread waiting for the gate to open
 * (reopened) and fork waiting for the last thread to leave (emptied).
 * Held by fork from prepare to parent or child. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reopened = PTHREAD_COND_INITIALIZER;
static pthread_cond_t emptied = PTHREAD_COND_INITIALIZER;

static atomic_uint fork_epoch;
static atomic_uint child_generation;

/* Counts the thread out; the last one out while fork waits wakes it. */
static void count_out(void)
{
    if (atomic_fetch_sub(&inside, 1) == 1 && atomic_load(&closed)) {
        pthread_mutex_lock(&gate_lock);
        pthread_cond_signal(&emptied);
        pthread_mutex_unlock(&gate_lock);
    }
}

static void enter(void)
{
    for (;;) {
        atomic_fetch_add(&inside, 1);
        if (!atomic_load(&closed))
            return;
        count_out();
        pthread_mutex_lock(&gate_lock);
        while (atomic_load(&closed))
            pthread_cond_wait(&reopened, &gate_lock);
        pthread_mutex_unlock(&gate_lock);
    }
}

void shim_lock(pthread_mutex_t *m)
{
    if (depth++ == 0)
        enter();
    pthread_mutex_lock(m);
}

void shim_unlock(pthread_mutex_t *m)
{
    pthread_mutex_unlock(m);
    if (--depth == 0)
        count_out();
}

unsigned shim_fork_epoch(void)
{
    return atomic_load_explicit(&fork_epoch, memory_order_relaxed);
}

unsigned shim_child_generation(void)
{
    return atomic_load_explicit(&child_generation, memory_order_relaxed);
}

void shim_gate_fork_prepare(void)
{
    pthread_mutex_lock(&gate_lock);
    atomic_store(&closed, true);
    while (atomic_load(&inside) > 0)
        pthread_cond_wait(&emptied, &gate_lock);
}

void shim_gate_fork_parent(void)
{
    atomic_fetch_add_explicit(&fork_epoch, 1, memory_order_relaxed);
    atomic_store(&closed, false);
    pthread_cond_broadcast(&reopened);
    pthread_mutex_unlock(&gate_lock);
}

/* The child's one thread is the one that forked, outside the gate. A
 * thread of the parent's that counted itself in after fork's last look
 * (and would have counted itself out on seeing the flag) is not here:
 * the count starts again at 0. Threads of the parent's waiting on
 * reopened are not here either, so its state is made anew rather than
 * broadcast to (a broadcast would wait for their wake-ups). */
void shim_gate_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_epoch, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&child_generation, 1, memory_order_relaxed);
    atomic_store(&inside, 0);
    atomic_store(&closed, false);
    pthread_cond_init(&reopened, NULL);
    pthread_mutex_unlock(&gate_lock);
}
