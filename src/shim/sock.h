/*
 * sock.h - the managed socket: its private descriptor, the stand-in that
 * takes the program's number, its lifetime (sock.c).
 *
 * Lock order (no shim lock is held while waiting for the OS or for
 * another thread):
 *   tls_lock (process.c) -> the engine's log lock: held across the one
 *                     load of libsecshim-tls.so and OpenSSL's start, with
 *                     no other lock held;
 *   the engine's build lock (policy.c) -> the engine's log lock: held
 *                     across a TLS context's build (files, OpenSSL), and
 *                     only ever taken with no shim lock held (manage(),
 *                     listen(), a reload);
 *   policy_lock (process.c) and resolve_lock (resolve.c) are leaves;
 *   fdtab stripe locks (fdtab.c) are leaves;
 *   sock_list_lock (sock.c) -> shim_sock.lock   (only at exit)
 *   ep_lock -> an epoll set's lock -> shim_sock.lock (epoll.c); the move
 *                     of a private descriptor (sock_relocate in sock.c)
 *                     holds ep_lock and every set's lock at once, taken in
 *                     list order, then the sock's lock: nothing else holds
 *                     two set locks;
 *   shim_sock.lock -> linger_lock (linger.c: a last close hands the
 *                     connection over while holding the sock's lock;
 *                     nothing takes a gated lock while holding it)
 *   shim_sock.lock -> the engine's session locks (session.c: the client
 *                     cache and the ticket keys, leaves taken during a
 *                     handshake or a read that brings a ticket)
 *   shim_sock.lock -> the engine's log lock
 * The stripe, list, sock and epoll locks are gated (gate.h): taken only
 * through shim_lock, never by fork. fork_prepare (process.c) takes
 * tls_lock and the build lock first (so fork waits for a load or a build
 * under way), then closes the gate (so no gated lock is held), then
 * policy_lock, resolve_lock, linger_lock, the session locks and the log
 * lock: a fixed number, whatever the number of connections.
 */
#ifndef SECSHIM_SHIM_SOCK_H
#define SECSHIM_SHIM_SOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "secshim/conn.h"
#include "secshim/policy.h"
#include "secshim/status.h"

struct shim_sock;

/* A descriptor the shim owns, as it was when the shim made it: a number
 * whose device and inode no longer match is not the shim's any more (the
 * program closed it with a raw syscall and the number was reused). */
struct shim_owned {
    dev_t dev;
    ino_t ino;
    struct shim_sock *sock; /* the connection it carries, or NULL */
    /* Moves the shim's use of descriptor fd to another number (the program
     * dup2()s onto fd): 0 or -1 with errno. Set by the owner. */
    int (*move)(int fd);
};

/* A duplicate of fd in the private range (shim_private_dup), recorded in o
 * (owner s or NULL, move function move) and marked the shim's own in the
 * fdtab. Returns it, or -1 with errno. */
int shim_own_private(int fd, struct shim_owned *o, struct shim_sock *s,
                     int (*move)(int fd), bool for_connection);

/* Fills o for fd (fstat), with no move function; false when fd is not
 * open. */
bool shim_owned_record(struct shim_owned *o, int fd, struct shim_sock *s);
/* Whether fd is still what o recorded. */
bool shim_owned_still(const struct shim_owned *o, int fd);

/*
 * One managed TCP socket: the TLS connection of one kernel socket, shared
 * by every program descriptor dup'ed from it. The kernel socket itself is
 * held only by priv_fd, a descriptor the shim owns; the program's numbers
 * point at an inert stand-in (docs/design.md, "The program's descriptor
 * never reaches the wire").
 */
struct shim_sock {
    /* One per fdtab slot plus one per call in flight; the last frees. */
    atomic_int refs;
    /* The process that used the connection last since the last fork:
     * owner, when owner_epoch is the current fork epoch (gate.h); nobody
     * after a fork, in parent and child alike, until one of them uses it.
     * Only the owner sends close_notify. Guarded by lock. */
    pid_t owner;
    unsigned owner_epoch;

    /* Guards every field below. Gated (gate.h); never held across a wait. */
    pthread_mutex_t lock;
    /* Ends of handshake steps, a futex word: a thread waiting for another
     * thread's step sleeps on it with the lock released
     * (shim_sock_wait_step); the driver counts a step and wakes them
     * (shim_sock_step_done). hs_waiters counts the sleepers. */
    atomic_uint hs_steps;
    unsigned hs_waiters;
    struct ss_conn *conn;      /* owned */
    int priv_fd;               /* the TCP socket; owned, close-on-exec */
    struct shim_owned priv_own; /* what priv_fd is, for fdtab's owned table */
    enum ss_direction dir;
    int nfds;                  /* program descriptors pointing here */
    /* A thread is waiting on the socket for the handshake: hs_busy, when
     * hs_busy_gen is the current child generation (gate.h); in a fork
     * child that thread is not there, and nobody is busy. */
    bool hs_busy;
    unsigned hs_busy_gen;
    bool failed;               /* never again carries data */
    int fail_errno;            /* what I/O returns once failed */
    bool so_error_read;        /* SO_ERROR reported fail_errno once: like
                                  the kernel's, it reads 0 from then on */
    bool nonblocking_connect;  /* EINPROGRESS connect: issue 4 drives it */
    bool connect_interrupted;  /* a blocking connect's handshake gave
                                  EINTR: the next connect() done says 0 */
    bool closed;               /* the last descriptor was closed */
    bool established;          /* the handshake's end was announced */
    bool tcp_connecting;       /* non-blocking connect: TCP not done yet */
    bool nagle_window;         /* the shim holds TCP_NODELAY on (nagle.h) */
    bool nodelay_program;      /* the program's TCP_NODELAY meanwhile */
    struct timespec hs_deadline; /* handshake-timeout, from connect/accept */
    /* Its endpoint's slot in this process's status file (status.c),
     * never NULL; counted with relaxed atomic adds, no lock. */
    struct ss_status_endpoint *stat;
    /* The process whose status file counts it open (0: none): the one
     * where its handshake ended; only that one counts its close.
     * Guarded by lock. */
    pid_t stat_open_pid;
    /* The private socket's write side was shut at the last close: the
     * FIN left behind close_notify; then when the peer acknowledged it,
     * and how long its answer is waited for (linger.c). Guarded by lock. */
    bool fin_sent;
    bool fin_acked;
    struct timespec fin_wait_until;

    /* Guarded by the list lock in sock.c. */
    struct shim_sock *list_prev, *list_next;

    /* epoll.c: registrations of this socket in epoll sets it tracks, so
     * that I/O on a socket in no set costs one load there. */
    atomic_int ep_regs;
    /* Guarded by linger_lock (linger.c): the bounded linger that delivers
     * what was accepted after the last close (docs/shim.md, "close"). */
    enum shim_linger { LINGER_NONE, LINGER_ACTIVE, LINGER_DONE } linger;
    int linger_wait_ms;        /* SO_LINGER's l_linger: close() waits */
    struct timespec linger_deadline;
    struct shim_sock *linger_next;
    bool linger_delivered;     /* the kernel's queue is acknowledged */

    /* "HOST:PORT" for messages; allocated with the sock, to its length. */
    char peer[];
};

/* A new sock with one reference (the caller's), owning conn and priv_fd
 * (which it marks as the shim's own). Returns NULL with errno ENOMEM (conn
 * is then freed; priv_fd is the caller's to close). */
struct shim_sock *shim_sock_new(struct ss_conn *conn, enum ss_direction dir,
                                const char *peer, int priv_fd);

void shim_sock_ref(struct shim_sock *s);
/* Drops a reference; the last one frees the conn and closes the private
 * descriptor (if it is still the shim's). Keeps errno. NULL is allowed. */
void shim_sock_unref(struct shim_sock *s);

/* Locks s for an engine call (the caller's process then owns the
 * connection, see the fork rule in docs/shim.md). */
void shim_sock_lock(struct shim_sock *s);
/* Locks s without claiming the connection: bookkeeping that is not a use
 * (a close, a look at its state, the move of its descriptor). */
void shim_sock_lock_quiet(struct shim_sock *s);
void shim_sock_unlock(struct shim_sock *s);

/* Whether this process owns the connection (the fork rule). s locked. */
bool shim_sock_owned_here(const struct shim_sock *s);

/* The handshake's waiting thread (s locked): whether one is waiting on
 * the socket in this process, and its arrival and departure. */
bool shim_sock_hs_busy(const struct shim_sock *s);
void shim_sock_set_hs_busy(struct shim_sock *s, bool busy);
/* s locked: a handshake step ended (or the connection failed); wakes the
 * threads in shim_sock_wait_step. */
void shim_sock_step_done(struct shim_sock *s);
/* s locked: sleeps, with s unlocked, until the next shim_sock_step_done
 * or the absolute CLOCK_MONOTONIC deadline; s locked again on return.
 * Returns ETIMEDOUT once the deadline has passed, else 0 (a wake-up, a
 * signal, a fork: the caller looks at s again in any case). */
int shim_sock_wait_step(struct shim_sock *s, const struct timespec *deadline);

/* Counts a program descriptor in (+1) or out (-1). The last one out marks
 * s closed and, in the owning process, sends close_notify (best effort,
 * non-blocking). */
void shim_sock_count_fd(struct shim_sock *s, int delta);

/* Whether s->priv_fd is still the socket s was made with (fstat): false
 * once a raw syscall closed it and the number was reused. */
bool shim_sock_private_ours(const struct shim_sock *s);

/* The endpoint's name, for messages. */
const char *shim_sock_endpoint(const struct shim_sock *s);

/* Starts f with the fields every line about s has: endpoint (the first
 * half of the rate limit's key), peer and direction (connect/accept). */
struct ss_log_fields;
void shim_sock_log_fields(struct ss_log_fields *f,
                          const struct shim_sock *s);

/* A close-on-exec duplicate of fd in the private range (above FD_SETSIZE
 * where the limit allows; for_connection: the soft RLIMIT_NOFILE may be
 * raised once for it). Returns the descriptor, or -1 with errno (EMFILE
 * when none is free). */
int shim_private_dup(int fd, bool for_connection);


/* Re-points fd at a fresh unconnected TCP socket of family that carries
 * fd's file status flags (stored in *status, as F_GETFL gave them) and
 * close-on-exec flag. Returns 0 or -1 with errno (fd is then unchanged). */
int shim_standin_install(int fd, int family, int *status);

/* This process's pid as the shim knows it (cached; the fork handler
 * updates it). The constructor calls it first, so the cache is set. */
pid_t shim_self_pid(void);

/* True in a vfork() child (or a raw clone() child) between the clone and
 * its exec: the cached pid is the parent's, which shares this memory.
 * Takes no lock and writes nothing. */
bool shim_in_vfork_child(void);

/* The fork child's handler: the cached pid, anew. */
void shim_sock_fork_child(void);

/* The engine I/O used for every conn the shim makes (real recv/send on the
 * private descriptor). */
extern const struct ss_io_ops shim_io;

/* Calls fn on every live sock of this process that is neither closed
 * nor failed, each with a reference taken that fn must drop (process
 * exit, linger.c). Takes no sock lock while calling fn. */
void shim_sock_for_each_open(void (*fn)(struct shim_sock *s));

#endif
