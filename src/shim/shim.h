/*
 * shim.h - internals of the LD_PRELOAD layer (build/libsecshim.so).
 *
 * Each intercepted call has three names (STYLE.md): the real libc function
 * in the `real` table, the logic in a static shim_NAME, and the exported
 * one-line trampoline NAME marked SS_EXPORT. Families live in one file
 * each: real.c (the table), fdtab.c (program fd -> managed socket, and the
 * shim's own descriptors), sock.c (the managed socket: private descriptor,
 * stand-in, lifetime), logfd.c (the log's descriptor), process.c
 * (constructor, policy snapshot, fork, exec, close_range), resolve.c
 * (connect matching: address sets of the policy's names, names the
 * program resolved), sockets.c (socket/connect/accept/close/shutdown/dup/fcntl,
 * options, the handshake), io.c (data calls), events.c (poll/select/
 * epoll), stdio.c (streams over managed sockets), relay.c (TLS across
 * exec, and the relayed descriptors of an image), linger.c (close and
 * exit deliver what was accepted). docs/design.md is the architecture.
 *
 * The shim holds no TLS logic: it only calls the engine (conn.h).
 *
 * Lock order (no shim lock is held while waiting for the OS):
 *   policy_lock (process.c) and resolve_lock (resolve.c) are leaves;
 *   fdtab stripe locks (fdtab.c) are leaves;
 *   sock_list_lock (sock.c) -> shim_sock.lock   (only at fork and exit)
 *   shim_sock.lock -> linger_lock (linger.c: a last close hands the
 *                     connection over while holding the sock's lock)
 *   shim_sock.lock -> the engine's log lock
 * pthread_atfork takes them all in that order, linger_lock after every
 * sock lock and the log lock last (fork_prepare in process.c).
 */
#ifndef SECSHIM_SHIM_H
#define SECSHIM_SHIM_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <netdb.h>

#include "compat_libc.h"
#include "secshim/conn.h"
#include "secshim/policy.h"

/* Only the trampolines leave the library (-fvisibility=hidden). */
#define SS_EXPORT __attribute__((visibility("default")))

/* --- real.c ------------------------------------------------------------ */

/* The next definition of every libc function the shim interposes or uses
 * for its own I/O that glibc 2.28 has (the required symbols, docs/shim.md
 * "Required and optional symbols"), bound once by shim_real_bind(). */
struct real_fns {
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*close)(int);
    int (*shutdown)(int, int);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *,
                        socklen_t *);
    ssize_t (*sendto)(int, const void *, size_t, int,
                      const struct sockaddr *, socklen_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*getaddrinfo)(const char *, const char *, const struct addrinfo *,
                       struct addrinfo **);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
    int (*poll)(struct pollfd *, nfds_t, int);
    int (*getsockopt)(int, int, int, void *, socklen_t *);
    int (*getsockname)(int, struct sockaddr *, socklen_t *);
    int (*getpeername)(int, struct sockaddr *, socklen_t *);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*socket)(int, int, int);
    int (*bind)(int, const struct sockaddr *, socklen_t);
    int (*listen)(int, int);
    /* events.c and sockets.c (issue 4, part A) */
    int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *,
                 const sigset_t *);
    int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    int (*pselect)(int, fd_set *, fd_set *, fd_set *,
                   const struct timespec *, const sigset_t *);
    int (*epoll_create)(int);
    int (*epoll_create1)(int);
    int (*epoll_ctl)(int, int, int, struct epoll_event *);
    int (*epoll_wait)(int, struct epoll_event *, int, int);
    int (*epoll_pwait)(int, struct epoll_event *, int, int,
                       const sigset_t *);
    int (*ioctl)(int, unsigned long, ...);
    /* io.c and process.c (issue 4, part B) */
    ssize_t (*sendfile)(int, int, off_t *, size_t);
    ssize_t (*splice)(int, off_t *, int, off_t *, size_t, unsigned int);
    int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int,
                    struct timespec *);
    int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execv)(const char *, char *const[]);
    int (*execvp)(const char *, char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
    int (*posix_spawn)(pid_t *, const char *, const void *, const void *,
                       char *const[], char *const[]);
    int (*posix_spawnp)(pid_t *, const char *, const void *, const void *,
                        char *const[], char *const[]);
    FILE *(*fdopen)(int, const char *);
    struct hostent *(*gethostbyname2)(const char *, int);
    int (*gethostbyname2_r)(const char *, int, struct hostent *, char *,
                            size_t, struct hostent **, int *);
    /* io.c: the remaining ways to send and receive (issue 7, part 3) */
    int (*vdprintf)(int, const char *, va_list);
    int (*__vdprintf_chk)(int, int, const char *, va_list);
    ssize_t (*preadv)(int, const struct iovec *, int, off_t);
    ssize_t (*pwritev)(int, const struct iovec *, int, off_t);
    ssize_t (*preadv2)(int, const struct iovec *, int, off_t, int);
    ssize_t (*pwritev2)(int, const struct iovec *, int, off_t, int);
};

extern struct real_fns real;

/* Binds `real` on first use (pthread_once), so a trampoline called before
 * the constructor, or from another library's constructor, still works. A
 * missing required symbol is fatal with a message. */
void shim_real_bind(void);

/* Binds on first use and yields the table: `REAL(read)(fd, buf, len)`. */
#define REAL(name) (shim_real_bind(), real.name)

/* The optional symbols: interposed or used, but newer than glibc 2.28.
 * Each is looked up at its first use; where libc has none, that call
 * answers -1 ENOSYS and the process keeps running (docs/shim.md).
 * closefrom (2.34) is interposed but never forwarded (process.c). */
enum real_optional {
    REAL_OPT_epoll_pwait2, /* glibc 2.35 */
    REAL_OPT_close_range,  /* glibc 2.34 */
    REAL_OPT_COUNT
};

/* The optional functions' types; real_missing holds their stand-ins, each
 * failing with ENOSYS. */
struct real_optional_fns {
    int (*epoll_pwait2)(int, struct epoll_event *, int,
                        const struct timespec *, const sigset_t *);
    int (*close_range)(unsigned int, unsigned int, int);
};
extern const struct real_optional_fns real_missing;

/* The next definition of an optional symbol, looked up once (thread-safe),
 * or its ENOSYS stand-in: never NULL. */
void (*shim_real_optional(enum real_optional which))(void);
/* Whether libc has the optional symbol (looked up as above). */
bool shim_real_present(enum real_optional which);

/* `REAL_OPTIONAL(close_range)(first, last, flags)`: the real function, or
 * -1 ENOSYS where libc has none. */
#define REAL_OPTIONAL(name) \
    ((__typeof__(real_missing.name))shim_real_optional(REAL_OPT_##name))
#define REAL_PRESENT(name) shim_real_present(REAL_OPT_##name)

/* --- sock.c ------------------------------------------------------------ */

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
    /* The process that used the connection last since the last fork (0:
     * none yet): only it sends close_notify. Guarded by lock. */
    pid_t owner;

    /* Guards every field below. Never held across a wait; only the
     * engine's log lock is taken while holding it. */
    pthread_mutex_t lock;
    pthread_cond_t hs_cond;    /* the handshake driver finished a step */
    struct ss_conn *conn;      /* owned */
    int priv_fd;               /* the TCP socket; owned, close-on-exec */
    struct shim_owned priv_own; /* what priv_fd is, for fdtab's owned table */
    enum ss_direction dir;
    int nfds;                  /* program descriptors pointing here */
    bool hs_busy;              /* a thread is waiting for the handshake */
    bool failed;               /* never again carries data */
    int fail_errno;            /* what I/O returns once failed */
    bool so_error_read;        /* SO_ERROR reported fail_errno once: like
                                  the kernel's, it reads 0 from then on */
    bool nonblocking_connect;  /* EINPROGRESS connect: issue 4 drives it */
    bool closed;               /* the last descriptor was closed */
    bool established;          /* the handshake's end was announced */
    bool tcp_connecting;       /* non-blocking connect: TCP not done yet */
    struct timespec hs_deadline; /* handshake-timeout, from connect/accept */
    char peer[320];            /* "HOST:PORT" for messages */

    /* Guarded by the list lock in sock.c. */
    struct shim_sock *list_prev, *list_next;

    /* events.c: registrations of this socket in epoll sets it tracks, so
     * that I/O on a socket in no set costs one load there. */
    atomic_int ep_regs;
    /* Guarded by linger_lock (linger.c): the bounded linger that delivers
     * what was accepted after the last close (docs/shim.md, "close"). */
    enum shim_linger { LINGER_NONE, LINGER_ACTIVE, LINGER_DONE } linger;
    int linger_wait_ms;        /* SO_LINGER's l_linger: close() waits */
    struct timespec linger_deadline;
    struct shim_sock *linger_next;
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
void shim_sock_unlock(struct shim_sock *s);

/* Counts a program descriptor in (+1) or out (-1). The last one out marks
 * s closed and, in the owning process, sends close_notify (best effort,
 * non-blocking). */
void shim_sock_count_fd(struct shim_sock *s, int delta);

/* Whether s->priv_fd is still the socket s was made with (fstat): false
 * once a raw syscall closed it and the number was reused. */
bool shim_sock_private_ours(const struct shim_sock *s);

/* The endpoint's name, for messages. */
const char *shim_sock_endpoint(const struct shim_sock *s);

/* A close-on-exec duplicate of fd in the private range (above FD_SETSIZE
 * where the limit allows; for_connection: the soft RLIMIT_NOFILE may be
 * raised once for it). Returns the descriptor, or -1 with errno (EMFILE
 * when none is free). */
int shim_private_dup(int fd, bool for_connection);


/* Re-points fd at a fresh unconnected TCP socket of family that carries
 * fd's file status flags and close-on-exec flag. Returns 0 or -1 with
 * errno (fd is then unchanged). */
int shim_standin_install(int fd, int family);

/* This process's pid as the shim knows it (cached; the fork handler
 * updates it). The constructor calls it first, so the cache is set. */
pid_t shim_self_pid(void);

/* True in a vfork() child (or a raw clone() child) between the clone and
 * its exec: the cached pid is the parent's, which shares this memory.
 * Takes no lock and writes nothing. */
bool shim_in_vfork_child(void);

void shim_sock_fork_prepare(void);
void shim_sock_fork_parent(void);
void shim_sock_fork_child(void);

/* The engine I/O used for every conn the shim makes (real recv/send on the
 * private descriptor). */
extern const struct ss_io_ops shim_io;

/* Calls fn on every live sock of this process that is neither closed
 * nor failed, each with a reference taken that fn must drop (process
 * exit, linger.c). Takes no sock lock while calling fn. */
void shim_sock_for_each_open(void (*fn)(struct shim_sock *s));

/* --- linger.c ---------------------------------------------------------- */

/*
 * The last close of s in the process that owns it, with s locked: queues
 * close_notify behind what the program wrote (unless SO_LINGER asks for
 * an abortive close, or the handshake never started) and, when bytes are
 * still unsent, hands s to the linger thread, which delivers them without
 * blocking the caller (docs/design.md, "Close without loss"). Keeps errno.
 */
void linger_last_close(struct shim_sock *s);

/* close() of the program's last descriptor of s: with SO_LINGER l_linger
 * > 0, waits (no lock held) until the linger delivered everything or that
 * time passed, as the kernel's close does. Keeps errno. */
void linger_close_wait(struct shim_sock *s);

/* Process exit: every open connection this process owns is closed as the
 * kernel closes a dying process's sockets (its bytes and close_notify
 * delivered), and the linger is waited for, in all at most
 * LINGER_EXIT_MS. Not in a vfork child. */
#define LINGER_EXIT_MS 5000
void linger_at_exit(void);

void linger_fork_prepare(void);
void linger_fork_parent(void);
void linger_fork_child(void);

/* --- fdtab.c ----------------------------------------------------------- */

/* The sock behind program descriptor fd with a reference taken, or NULL
 * for an unmanaged fd (one atomic load). */
struct shim_sock *fdtab_get(int fd);

/* Points fd at s (taking a reference and counting the descriptor); a
 * stale entry for fd is detached first. Keeps errno. */
void fdtab_install(int fd, struct shim_sock *s);

/* Forgets fd before the kernel closes it (the sock counts it out). Keeps
 * errno. */
void fdtab_detach(int fd);

/* Forgets every managed descriptor in [first, last] (close_range,
 * closefrom). Keeps errno. */
void fdtab_detach_range(unsigned int first, unsigned int last);

/* Writes up to max managed descriptors into fds and returns how many
 * there are (may exceed max). Takes no lock and no reference, so it is
 * usable between vfork and exec; the answer is a snapshot. */
size_t fdtab_managed_fds(int *fds, size_t max);

/* The shim's own descriptors: private connection descriptors and others
 * such as the log. The interposed close/close_range/closefrom/dup leave
 * them alone while they are still the shim's (fdtab_ours). o must live
 * until fdtab_disown. */
bool fdtab_owned(int fd);
void fdtab_own(int fd, struct shim_owned *o);
void fdtab_disown(int fd);
/* Whether fd is owned and still what the shim made (fstat); an entry whose
 * number was reused behind the shim's back is dropped. */
bool fdtab_ours(int fd);
/* The sock whose private descriptor is fd, with a reference; else NULL. */
struct shim_sock *fdtab_owner_get(int fd);
/* The program wants number fd, which the shim owns: the owner moves its
 * descriptor to another number. Returns 0 (also when fd is not owned) or
 * -1 with errno. */
int fdtab_move_owned(int fd);
/* The first owned descriptor >= from, or -1. */
int fdtab_next_owned(int from);

void fdtab_fork_prepare(void);
void fdtab_fork_parent(void);
void fdtab_fork_child(void);

/* --- process.c --------------------------------------------------------- */

/* The current policy snapshot with a reference (release with
 * ss_policy_unref), or NULL while inert. Checks, at most once a second,
 * whether the policy or its files changed and reloads them. */
struct ss_policy *shim_policy_get(void);

/* --- logfd.c ------------------------------------------------------------ */

/* Moves the log to a descriptor of the shim's own (call first thing in the
 * constructor). */
void shim_log_start(void);

/* The program wants number fd, which is the log's: the log moves to
 * another. Returns 0 (also when fd is not the log's) or -1 with errno. */
int shim_log_relocate(int fd);

/* --- resolve.c --------------------------------------------------------- */

/*
 * The connect endpoint of snapshot p that a connection to addr belongs to,
 * or NULL (no endpoint, or a disabled first match: plain TCP). Name
 * endpoints match by the addresses the shim resolves for their names
 * itself (resolved when a connect first needs them, kept ADDRSET_TTL_S);
 * IPv4-mapped destinations match as IPv4. On a match, host (size
 * host_len) receives the name to send as SNI and check: tls-target-name,
 * a name endpoint's own name, or for address, prefix and `*` endpoints
 * the one name the program resolved to addr, else the address text
 * (docs/shim.md, "Matching a destination"). May look names up: call
 * without any shim lock held. Keeps errno.
 */
const struct ss_endpoint *resolve_match_connect(struct ss_policy *p,
                                                const struct sockaddr *addr,
                                                socklen_t len, char *host,
                                                size_t host_len);

void resolve_fork_prepare(void);
void resolve_fork_parent(void);
void resolve_fork_child(void);

/* --- io.c ---------------------------------------------------------------- */

/* read()/write() as the program sees them (managed or not); for the
 * shim's own stdio streams, which must not call the interposed names. */
ssize_t shim_read(int fd, void *buf, size_t len);
ssize_t shim_write(int fd, const void *buf, size_t len);

/* --- stdio.c ------------------------------------------------------------- */

/*
 * Around dup2/dup3 of a managed socket onto newfd: before, flush a standard
 * output stream that stands for newfd into its old target; after, replace
 * stdin/stdout/stderr (newfd 0, 1, 2) with a stream whose I/O goes through
 * the shim (glibc's stdio cannot be interposed). Keep errno.
 */
void shim_stdio_before_dup(int newfd);
void shim_stdio_after_dup(int newfd);

/* --- sockets.c --------------------------------------------------------- */

/* close() as the program sees it. */
int shim_close(int fd);

/* shutdown() as the program sees it (close_notify for a managed fd). */
int shim_shutdown(int fd, int how);

/*
 * With s locked, after the program's last close (s->closed may be set):
 * one non-blocking step towards delivering what the program wrote: the
 * TCP connect and handshake when early writes wait for them, then
 * close_notify and the flush. Returns SS_OK when the engine holds nothing
 * more, SS_WANT_READ / SS_WANT_WRITE, or a negative ss_err (s is failed
 * or the peer is gone).
 */
int shim_close_step(struct shim_sock *s);

/*
 * A connected TCP socket the program inherited from a parent that was
 * not under the shim (inetd, systemd Accept=yes): when its local address
 * matches a listen endpoint, fd becomes managed as an accepted socket
 * (server-side TLS, handshake at the first I/O), exactly as accept()
 * would have made it. Returns 1 when managed, 0 when no endpoint matches
 * (fd untouched), -1 with errno when it matched but cannot be managed:
 * fd is then shut down, so nothing passes in clear.
 */
int shim_adopt_accepted(int fd);


/*
 * Drives the handshake of s until it is done, blocking on fd for at most
 * the conn's handshake-timeout (unless dontwait or the descriptor is
 * non-blocking: then one step). Returns 0 when the connection is open, or -1 with errno
 * (EAGAIN: non-blocking and not done; otherwise the failure's errno; the
 * sock is then failed and shut down, and the reason logged once).
 */
int shim_handshake(struct shim_sock *s, int fd, bool dontwait);

/*
 * What a blocked caller must wait for after an engine call answered rc
 * (SS_WANT_READ/WRITE): rc itself, and writability while ciphertext is
 * still unsent (conn.h: waiting for readability alone could deadlock).
 * Readability is not added to a write wait: a socket with unread data
 * would wake the writer at once, again and again. A bit set of SS_WANT_*.
 * Called with s locked.
 */
int shim_wants(const struct shim_sock *s, int rc);

/*
 * After an engine call that may have finished the handshake (a read or a
 * write drives it too): the first time the connection is seen past it,
 * logs "established" and wakes the threads waiting for it. Called with s
 * locked.
 */
void shim_note_established(struct shim_sock *s);

/* poll() events for a bit set of SS_WANT_*. */
short shim_poll_events(int wants);

/* CLOCK_MONOTONIC now + ms. */
struct timespec shim_deadline_after(int ms);
/* Milliseconds left until t (rounded up; 0 when past), for poll(). */
int shim_ms_until(const struct timespec *t);

/*
 * One non-blocking step of the handshake of s (issue 4), with s locked:
 * completes a pending TCP connect first, applies the handshake-timeout
 * counted from connect/accept (hs_deadline). Returns SS_OK when the
 * connection is past the handshake, SS_WANT_READ/SS_WANT_WRITE, or a
 * negative ss_err once s is failed (s->failed, s->fail_errno set).
 */
int shim_handshake_step(struct shim_sock *s);

/*
 * With s locked: progress without blocking and without taking the
 * program's data: the TCP connect and handshake step, a flush of unsent
 * ciphertext and, when read is true and no plaintext is buffered, one
 * record read into the engine (a one-byte SSL_peek). Returns the last
 * engine result: SS_OK, SS_EOF, SS_WANT_*, or a negative ss_err (a TLS
 * failure has then failed s; SS_ERR_STATE when s was already failed).
 */
int shim_pump(struct shim_sock *s, bool read);

/* events.c: forgets fd in every epoll set the shim tracks, and the set
 * itself when fd is an epoll descriptor. Called by close() before the
 * kernel closes fd. Keeps errno. */
void events_fd_closing(int fd);

/* events.c: after I/O on s by any thread (called with s unlocked): wakes
 * the threads sleeping in epoll_wait on a set that holds s, so readiness
 * left in the engine (plaintext, the handshake's end) is seen at once.
 * One load when s is in no epoll set. Keeps errno. */
void events_sock_progress(struct shim_sock *s);

/* events.c: epoll registrations made on a TCP socket before connect()
 * (nginx registers upstream sockets so) move with the connection when it
 * becomes managed. socket() notes new TCP sockets; connect() settles them
 * (managed or not); in between, the registrations made on them are kept.
 * take removes them from the kernel (call while fd is still the real
 * socket); restore registers them again for the managed fd (after it is
 * in the fdtab); free drops them. Keep errno. */
struct events_moved;
void events_socket_created(int fd);
void events_socket_settled(int fd);
struct events_moved *events_take_registrations(int fd);
void events_restore_registrations(struct events_moved *m, int fd);
void events_moved_free(struct events_moved *m);

/* True when fd has O_NONBLOCK set. */
bool shim_fd_nonblocking(int fd);

/* Marks s failed with errno e, logs one error line saying why (during the
 * handshake or later), and shuts the socket down so no byte can pass in
 * clear afterwards. Called with s locked. */
void shim_sock_fail(struct shim_sock *s, int e, bool handshake,
                    const char *why);

/* The errno a failed engine call (rc < 0) gives the program: during the
 * handshake (handshake true) or on later I/O. Called with s locked. */
int shim_errno_of(const struct shim_sock *s, int rc, bool handshake);

/*
 * sendto/sendmsg with MSG_FASTOPEN on a descriptor the shim does not
 * manage (io.c): when fd is a TCP socket and addr (of addr_len bytes) a
 * destination the policy says is TLS, connects fd exactly as connect()
 * would (blocking: TCP and the handshake; non-blocking: -1 EINPROGRESS)
 * and returns connect's 0 or -1 with errno. Returns 1 when the call is
 * none of the shim's business: the caller passes it on unchanged.
 */
int shim_connect_for_fastopen(int fd, const struct sockaddr *addr,
                              socklen_t addr_len);

/* --- relay.c ------------------------------------------------------------ */

/* Descriptors a relay may stand on: 0, 1 and 2 (the inetd convention). */
#define RELAY_FDS 3

/* What relay_exec_prepare did to the exec'ing process, to undo should
 * the exec fail. Lives on the exec wrapper's stack. */
struct relay_exec {
    unsigned relayed_mask;  /* program descriptors now a relay's socketpair */
    int saved[RELAY_FDS];   /* their stand-ins, close-on-exec, or -1 */
    int commit[RELAY_FDS];  /* write ends of the relays' commit pipes */
    int n_commit;
    char env[768];          /* "SECSHIM_RELAYED=...", or "" */
};

/*
 * Before an exec: each managed connection on descriptor 0, 1 or 2 without
 * FD_CLOEXEC gets a relay process, and those numbers become the relay's
 * socketpair (docs/design.md, "Process life"); rx->env describes them
 * (and descriptors this image was itself given by a relay) for the new
 * image. Nothing in a vfork child. A relay that cannot be made leaves the
 * stand-in with one warning. Keeps errno.
 */
void relay_exec_prepare(struct relay_exec *rx, const char *call);
/* The exec returned: the descriptors get their stand-ins back and the
 * relays leave without touching the connection. Keeps errno. */
void relay_exec_failed(struct relay_exec *rx);
/* envp's entries; relay_env_build writes into out (relay_env_count + 2
 * slots) envp without any SECSHIM_RELAYED entry, plus rx's. */
size_t relay_env_count(char *const envp[]);
void relay_env_build(const struct relay_exec *rx, char *const envp[],
                     char **out);

/* The constructor: reads (and removes) SECSHIM_RELAYED. */
void relay_image_start(void);
/* Whether the socket dev/ino is a relay's socketpair end in this image. */
bool relay_is_relayed(dev_t dev, ino_t ino);
/* getpeername (peer) / getsockname of a relayed descriptor: the original
 * TCP addresses. True when fd is relayed (*rc is then the call's result,
 * with errno), false otherwise. */
bool relay_name(int fd, bool peer, struct sockaddr *addr, socklen_t *len,
                int *rc);
/* getsockopt/setsockopt (set) on a relayed descriptor, for the options
 * that would otherwise tell the socketpair from the TCP socket. True when
 * answered (*rc is the result), false to pass the call through. */
bool relay_sockopt(int fd, int level, int name, bool set, void *val,
                   socklen_t *len, int *rc);

#endif
