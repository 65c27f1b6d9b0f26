/*
 * drive.h - stepping one managed connection: handshake, pump, failure and
 * its errno, close_notify, and one socket's readiness (drive.c).
 */
#ifndef SECSHIM_SHIM_DRIVE_H
#define SECSHIM_SHIM_DRIVE_H

#include <poll.h>
#include <stdbool.h>
#include <time.h>

#include "sock.h"

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
 * Drives the handshake of s until it is done, blocking on fd for at most
 * the conn's handshake-timeout (unless dontwait or the descriptor is
 * non-blocking: then one step). timeo_opt is the blocked call's timeout
 * option, for signals (shim_handshake_wait). Returns 0 when the
 * connection is open, or -1 with errno (EAGAIN: non-blocking and not
 * done; EINTR: a signal the call is not restarted after, the handshake
 * goes on at the next call; otherwise the failure's errno; the sock is
 * then failed and shut down, and the reason logged once).
 */
int shim_handshake(struct shim_sock *s, int fd, bool dontwait, int timeo_opt);

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

/* Poll bits that mean "readable" / "writable" to a program. */
#define EV_IN (POLLIN | POLLRDNORM)
#define EV_OUT (POLLOUT | POLLWRNORM)

/* Drives the handshake of s to its end, or one step when nonblocking
 * (EAGAIN while not done). timeo_opt: 0 when a signal must not end the
 * wait (shutdown, close); else the option (SO_RCVTIMEO, SO_SNDTIMEO)
 * that decides, for the call the program is blocked in, whether a signal
 * gives EINTR or the wait goes on (shim_signal_restarts). Returns 0 or -1
 * with errno. */
int shim_handshake_wait(struct shim_sock *s, bool nonblocking, int timeo_opt);

/*
 * After a signal handler ran while the shim waited for the program's
 * blocking call (its poll returned EINTR): whether the kernel would have
 * restarted the call (signal(7)): true when every signal this thread
 * does not block and catches has SA_RESTART. The shim cannot learn which
 * signal came, so one caught without SA_RESTART means EINTR
 * (docs/shim.md, "Signals and blocked calls"). The call's own rules (a
 * timeout set, bytes already taken) are the caller's. Keeps errno.
 */
bool shim_signal_restarts(void);

/* The socket option timeo_opt (SO_RCVTIMEO / SO_SNDTIMEO) of fd in
 * milliseconds, rounded up and at most INT_MAX; 0 when it is unset (or
 * cannot be read): the kernel then waits without end, and restarts an
 * interrupted call. Keeps errno. */
int shim_timeo_ms(int fd, int timeo_opt);

/* Sends close_notify before a TCP half-close. A full socket buffer is
 * waited for at most one second (not when fd, the program's descriptor,
 * is non-blocking): shutdown() itself never blocks on TCP. */
void shim_close_notify(struct shim_sock *s, int fd);

/* Whether the kernel takes tmo as a timeout (NULL: wait forever). */
bool shim_timeout_valid(const struct timespec *tmo);
/* CLOCK_MONOTONIC now + tmo (a valid timeout); unused when tmo is NULL. */
struct timespec shim_deadline_after_ts(const struct timespec *tmo);
/* Remaining milliseconds of a wait with deadline *d (NULL: -1, forever). */
int shim_ms_left(const struct timespec *d);
/* min of two poll timeouts where -1 is infinity. */
int shim_ms_min(int a, int b);

/* What the kernel last said about a socket and what we learnt. */
struct shim_probe {
    short want;       /* the program's poll events */
    short kernel;     /* the kernel's revents for the fd, 0: none known */
    short os;         /* out: poll events to ask the kernel for */
    bool fresh;       /* out: new plaintext, EOF or failure arrived */
    int cap_ms;       /* in/out: the wait may last at most this (-1: none) */
};

/* Makes progress on s and answers the program's revents for it (0: not
 * ready; then p->os says what to wait for). Called with s locked. */
short shim_revents(struct shim_sock *s, struct shim_probe *p);

#endif
