/*
 * The fork gate (docs/design.md, "Process life").
 *
 * fork() must not copy a lock that a thread holds in the middle of a
 * change, and must cost the same with ten connections open or ten
 * thousand. The per-object locks (each connection's, the descriptor
 * table's stripes, the epoll sets', the list of connections) are
 * therefore never taken by fork itself: they are taken only inside the
 * gate (shim_lock), and fork_prepare closes the gate and waits until no
 * thread is inside. One counter, whatever the number of locks; at fork no
 * gated lock is held, so the child finds every one of them unlocked and
 * needs to re-make none.
 *
 * A thread is inside from its first gated lock to its last unlock
 * (nesting is counted per thread), and never waits while inside: no
 * shim lock is held across a wait for the OS or for another thread
 * (sock.h; a thread waiting for another's handshake step waits on a futex
 * with the sock unlocked, shim_sock_wait_step).
 *
 * The process-wide locks fork_prepare takes itself (tls_lock, the build
 * lock, policy_lock, resolve_lock, linger_lock, the session and log
 * locks) are not gated; they are few and fixed, and the child unlocks
 * them (the thread that took them is the child's one thread).
 */
#ifndef SECSHIM_SHIM_GATE_H
#define SECSHIM_SHIM_GATE_H

#include <pthread.h>
#include <time.h>

/* m locked inside the gate; blocks while a fork is under way. */
void shim_lock(pthread_mutex_t *m);
/* m unlocked; the gate left with the thread's last gated lock. */
void shim_unlock(pthread_mutex_t *m);

/* How many forks this process's line has seen since it started: both
 * sides of a fork count it, so a record stamped before the fork is
 * "before" in both. Used by the connection's owner rule (sock.c). */
unsigned shim_fork_epoch(void);
/* How many times this process's line has been a fork child: a record
 * stamped with an older value was made by threads the child does not
 * have (sock.c re-makes its condition variable at the first use). */
unsigned shim_child_generation(void);

/* pthread_atfork, called by process.c's handlers: prepare closes the gate
 * and returns once nobody is inside (the gate stays closed until parent or
 * child); parent opens it again; child opens it for its one thread. */
void shim_gate_fork_prepare(void);
void shim_gate_fork_parent(void);
void shim_gate_fork_child(void);

#endif
