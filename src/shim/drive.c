/*
 * drive.c - stepping one managed connection: the handshake (blocking and
 * one non-blocking step at a time), pumping without taking the program's
 * data, failure and its errno, close_notify, and the readiness of one
 * socket that poll/select (poll.c) and epoll (epoll.c) report. No call
 * here is interposed; sockets.c, io.c, poll.c, epoll.c, linger.c and
 * relay.c drive connections through it (docs/design.md, "Where the
 * handshake happens" and "Readiness stays honest").
 */
#include "drive.h"
#include "real.h"
#include "sock.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "secshim/log.h"

bool shim_fd_nonblocking(int fd)
{
    int fl = REAL(fcntl)(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK) != 0;
}
int shim_wants(const struct shim_sock *s, int rc)
{
    int wants = rc == SS_WANT_READ || rc == SS_WANT_WRITE ? rc : 0;
    if (ss_conn_unsent(s->conn) > 0)
        wants |= SS_WANT_WRITE;
    return wants;
}

short shim_poll_events(int wants)
{
    short events = 0;
    if (wants & SS_WANT_READ)
        events |= POLLIN;
    if (wants & SS_WANT_WRITE)
        events |= POLLOUT;
    return events;
}
/* --- failure and the handshake -------------------------------------------- */

int shim_errno_of(const struct shim_sock *s, int rc, bool handshake)
{
    if (rc == SS_ERR_NOMEM)
        return ENOMEM;
    /* A server-side failure looks like a peer that reset: the program
     * only learns that this client is gone. */
    if (handshake && s->dir == SS_DIR_LISTEN)
        return ECONNRESET;
    int sys = ss_conn_sys_errno(s->conn);
    switch (rc) {
    case SS_ERR_TIMEOUT:
        return ETIMEDOUT;
    case SS_ERR_TRUNCATED:
        /* What a reset looks like: the stream ended before its end. */
        return ECONNRESET;
    case SS_ERR_CLOSED:
        return handshake ? ECONNRESET : EPIPE;
    case SS_ERR_SYSCALL:
        return sys == 0 || sys == EPIPE ? ECONNRESET : sys;
    case SS_ERR_VERIFY:
    case SS_ERR_PROTOCOL:
    case SS_ERR_TLS:
        /* A peer we must not talk to (handshake), or a broken stream. */
        return handshake ? EPROTO : ECONNRESET;
    default:
        return handshake ? EPROTO : ECONNRESET;
    }
}

/* The endpoint's last failure, for `secshim status`: the log line's
 * words without the endpoint, which the status names already. */
static void note_failure(struct shim_sock *s, bool handshake, const char *why)
{
    char reason[SS_STATUS_REASON_LEN];
    snprintf(reason, sizeof(reason), "TLS %s with %s failed: %s",
             handshake ? "handshake" : "connection", s->peer, why);
    shim_status_fail(s->stat, reason);
}

/* The failure's line: one per (endpoint, reason) and minute at most
 * under a flood (ss_log_event's rate limit). */
static void log_failure(const struct shim_sock *s, int e, bool handshake,
                        const char *why)
{
    struct ss_log_fields f;
    shim_sock_log_fields(&f, s);
    if (!handshake && ss_conn_truncated(s->conn) &&
        ss_conn_state(s->conn) == SS_CONN_FAILED) {
        /* tls-unexpected-eof = "error": a warning, not a TLS failure. */
        ss_log_field_reason(&f, "closed without close_notify");
        ss_log_event(SS_LOG_WARNING, "truncated", &f, "endpoint '%s': %s "
                     "closed the connection without close_notify (the "
                     "stream may be truncated): the program's next read "
                     "fails with %s (tls-unexpected-eof = \"eof\" reads it "
                     "as end of file)", shim_sock_endpoint(s), s->peer,
                     e == ECONNRESET ? "ECONNRESET" : strerror(e));
        return;
    }
    ss_log_field_reason(&f, why);
    const struct ss_verify_result *vr = ss_conn_verify_result(s->conn);
    if (vr != NULL && vr->x509_error != 0)
        ss_log_field(&f, "verify_error", ss_verify_error_name(vr->x509_error));
    ss_log_event(SS_LOG_ERROR,
                 handshake ? "handshake_failed" : "connection_failed", &f,
                 "endpoint '%s': TLS %s with %s failed: %s",
                 shim_sock_endpoint(s), handshake ? "handshake" : "connection",
                 s->peer, why);
}

void shim_sock_fail(struct shim_sock *s, int e, bool handshake,
                    const char *why)
{
    if (s->failed)
        return;
    s->failed = true;
    s->fail_errno = e;
    if (why == NULL || *why == '\0')
        why = "unknown error";
    if (handshake)
        ss_status_add(&s->stat->handshakes_failed, 1);
    note_failure(s, handshake, why);
    log_failure(s, e, handshake, why);
    /* Nothing may pass on this socket from now on; but a number that is
     * not the connection any more belongs to someone else. */
    if (shim_sock_private_ours(s))
        REAL(shutdown)(s->priv_fd, SHUT_RDWR);
    shim_sock_step_done(s);
}

static void log_established(const struct shim_sock *s)
{
    char desc[256] = "";
    ss_conn_describe(s->conn, desc, sizeof(desc));
    char relaxed[256] = "";
    const struct ss_verify_result *vr = ss_conn_verify_result(s->conn);
    if (vr != NULL && vr->relaxations != 0) {
        snprintf(relaxed, sizeof(relaxed),
                 " (compatibility mode relaxed: %s%s%s)",
                 vr->relaxations & SS_RELAX_REVOKED_TRUSTED_CA
                     ? ss_relaxation_name(SS_RELAX_REVOKED_TRUSTED_CA) : "",
                 vr->relaxations == (SS_RELAX_REVOKED_TRUSTED_CA |
                                     SS_RELAX_KEY_USAGE) ? ", " : "",
                 vr->relaxations & SS_RELAX_KEY_USAGE
                     ? ss_relaxation_name(SS_RELAX_KEY_USAGE) : "");
    }
    struct ss_log_fields f;
    shim_sock_log_fields(&f, s);
    /* desc is "VERSION CIPHER": the two fields. */
    char *cipher = strchr(desc, ' ');
    if (cipher != NULL) {
        *cipher = '\0';
        ss_log_field(&f, "version", desc);
        ss_log_field(&f, "cipher", cipher + 1);
    }
    bool resumed = ss_conn_resumed(s->conn);
    ss_log_field(&f, "resumed", resumed ? "yes" : "no");
    char subject[512];
    ss_log_field(&f, "peer_subject",
                 ss_conn_peer_subject(s->conn, subject, sizeof(subject)));
    /* After a space, never a comma: "PROTO CIPHER" stay two words. */
    ss_log_event(SS_LOG_INFO, "established", &f,
                 "endpoint '%s': TLS %s %s established: %s%s%s%s%s",
                 shim_sock_endpoint(s),
                 s->dir == SS_DIR_CONNECT ? "to" : "from", s->peer, desc,
                 cipher != NULL ? " " : "", cipher != NULL ? cipher + 1 : "",
                 resumed ? " (resumed session)" : "", relaxed);
}

void shim_note_established(struct shim_sock *s)
{
    enum ss_conn_state st = ss_conn_state(s->conn);
    if (s->established || st == SS_CONN_HANDSHAKING || st == SS_CONN_FAILED)
        return;
    s->established = true;
    ss_status_add(ss_conn_resumed(s->conn) ? &s->stat->handshakes_resumed
                                           : &s->stat->handshakes_ok, 1);
    atomic_fetch_add_explicit(&s->stat->open, 1, memory_order_relaxed);
    s->stat_open_pid = shim_self_pid();
    if (ss_log_enabled(SS_LOG_INFO))
        log_established(s);
    shim_sock_step_done(s);
}

struct timespec shim_deadline_after(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

int shim_ms_until(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ms = (long long)(t->tv_sec - now.tv_sec) * 1000 +
                   (t->tv_nsec - now.tv_nsec + 999999) / 1000000;
    return ms <= 0 ? 0 : ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

static void fail_timeout(struct shim_sock *s, int timeout_ms)
{
    char why[128];
    snprintf(why, sizeof(why), "no complete handshake within %d.%03d s "
             "(handshake-timeout)", timeout_ms / 1000, timeout_ms % 1000);
    shim_sock_fail(s, s->dir == SS_DIR_LISTEN ? ECONNRESET : ETIMEDOUT, true,
                   why);
}

/*
 * A non-blocking connect still under way: done when the socket turns
 * writable (or reports an error), and then SO_ERROR says how it ended.
 * A failed TCP connect is the program's ordinary connect error (not a TLS
 * failure): it is kept as fail_errno and reported by SO_ERROR and I/O.
 * Returns SS_OK (connected), SS_WANT_WRITE (pending) or SS_ERR_SYSCALL.
 * Called with s locked.
 */
static int connect_check(struct shim_sock *s)
{
    if (!s->tcp_connecting)
        return SS_OK;
    struct pollfd pfd = {.fd = s->priv_fd, .events = POLLOUT, .revents = 0};
    if (REAL(poll)(&pfd, 1, 0) <= 0)
        return SS_WANT_WRITE;
    int err = 0;
    socklen_t len = sizeof(err);
    if (REAL(getsockopt)(s->priv_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == 0 && (pfd.revents & POLLOUT) == 0)
        err = ECONNREFUSED; /* hung up without an error: not connected */
    s->tcp_connecting = false;
    if (err == 0)
        return SS_OK;
    s->failed = true;
    s->fail_errno = err;
    struct ss_log_fields f;
    shim_sock_log_fields(&f, s);
    ss_log_field(&f, "reason", strerror(err));
    ss_log_event(SS_LOG_INFO, "tcp_connect_failed", &f,
                 "endpoint '%s': TCP connect to %s failed: %s",
                 shim_sock_endpoint(s), s->peer, strerror(err));
    shim_sock_step_done(s);
    return SS_ERR_SYSCALL;
}

static bool past(const struct timespec *t)
{
    return (t->tv_sec != 0 || t->tv_nsec != 0) && shim_ms_until(t) == 0;
}

/* shim_handshake_step's work, for a sock that may already be closed by
 * the program (the linger still delivers its early writes). */
static int handshake_advance(struct shim_sock *s)
{
    int rc = connect_check(s);
    if (rc == SS_OK && ss_conn_state(s->conn) == SS_CONN_HANDSHAKING) {
        rc = ss_conn_handshake(s->conn);
        if (rc == SS_OK) {
            shim_note_established(s);
        } else if (rc < 0) {
            shim_sock_fail(s, shim_errno_of(s, rc, true), true,
                           ss_conn_error(s->conn));
        }
    }
    if ((rc == SS_WANT_READ || rc == SS_WANT_WRITE) && past(&s->hs_deadline)) {
        int ms = ss_conn_handshake_timeout_ms(s->conn);
        fail_timeout(s, ms > 0 ? ms : SS_DEFAULT_HANDSHAKE_TIMEOUT_S * 1000);
        rc = SS_ERR_TIMEOUT;
    }
    return rc;
}

int shim_handshake_step(struct shim_sock *s)
{
    if (s->closed || s->failed)
        return SS_ERR_STATE;
    return handshake_advance(s);
}

int shim_close_step(struct shim_sock *s)
{
    if (s->failed)
        return SS_ERR_STATE;
    if (s->tcp_connecting ||
        ss_conn_state(s->conn) == SS_CONN_HANDSHAKING) {
        int rc = handshake_advance(s);
        if (rc != SS_OK)
            return rc;
    }
    /* Queues close_notify once (behind the data), then only flushes. */
    return ss_conn_shutdown(s->conn);
}

/* Signals that report a fault of the thread's own code: their handlers
 * (crash reporters, sanitizers, virtual machines) seldom have SA_RESTART,
 * and they do not come to a thread blocked in a system call. */
static bool is_fault_signal(int sig)
{
    switch (sig) {
    case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP:
    case SIGSYS: case SIGABRT:
        return true;
    default:
        return false;
    }
}

bool shim_signal_restarts(void)
{
    int saved = errno;
    sigset_t blocked;
    bool restarts = pthread_sigmask(SIG_BLOCK, NULL, &blocked) == 0;
    for (int sig = 1; restarts && sig < NSIG; sig++) {
        struct sigaction sa;
        /* A blocked signal did not come; glibc refuses its own
         * (SIGCANCEL, SIGSETXID), whose handlers are not the program's. */
        if (is_fault_signal(sig) || sigismember(&blocked, sig) == 1 ||
            sigaction(sig, NULL, &sa) != 0)
            continue;
        if (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)
            continue; /* no handler runs: the kernel restarts by itself */
        restarts = (sa.sa_flags & SA_RESTART) != 0;
    }
    errno = saved;
    return restarts;
}

int shim_timeo_ms(int fd, int timeo_opt)
{
    int saved = errno;
    struct timeval tv = {0, 0};
    socklen_t len = sizeof(tv);
    if (REAL(getsockopt)(fd, SOL_SOCKET, timeo_opt, &tv, &len) != 0)
        tv = (struct timeval){0, 0};
    errno = saved;
    long long ms = (long long)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* After the handshake's wait was interrupted by a signal: whether the
 * program's blocked call gives EINTR (see shim_handshake_wait). */
static bool signal_ends_wait(const struct shim_sock *s, int timeo_opt)
{
    if (timeo_opt == 0)
        return false;
    return shim_timeo_ms(s->priv_fd, timeo_opt) != 0 || !shim_signal_restarts();
}

/*
 * One thread at a time waits on the socket for the handshake (hs_busy);
 * the others wait for the end of its step (shim_sock_wait_step), so that
 * a step made by one is seen by all at once rather than after a poll
 * timeout. Every wait ends at the socket's own handshake deadline (set at
 * connect or accept), the one shim_handshake_step enforces. s is locked throughout except while
 * waiting. nonblocking: one step, then EAGAIN if not done. A signal
 * during the wait ends it with EINTR unless the program's call would be
 * restarted (timeo_opt, signal_ends_wait).
 */
int shim_handshake_wait(struct shim_sock *s, bool nonblocking, int timeo_opt)
{
    shim_sock_lock(s);
    int timeout_ms = ss_conn_handshake_timeout_ms(s->conn);
    if (timeout_ms <= 0)
        timeout_ms = SS_DEFAULT_HANDSHAKE_TIMEOUT_S * 1000;
    const struct timespec *deadline = &s->hs_deadline;
    int e = 0;
    for (;;) {
        if (s->closed) {
            e = EBADF;
            break;
        }
        if (s->failed) {
            e = s->fail_errno;
            break;
        }
        if (!s->tcp_connecting &&
            ss_conn_state(s->conn) != SS_CONN_HANDSHAKING)
            break;
        if (shim_sock_hs_busy(s)) {
            if (nonblocking) {
                e = EAGAIN;
                break;
            }
            if (shim_sock_wait_step(s, deadline) == ETIMEDOUT)
                fail_timeout(s, timeout_ms);
            continue;
        }
        int rc = shim_handshake_step(s);
        if (rc == SS_OK)
            continue; /* TCP done: now the TLS handshake, or open */
        if (rc < 0)
            continue; /* failed: the top of the loop reports it */
        if (nonblocking) {
            e = EAGAIN;
            break;
        }
        int left = shim_ms_until(deadline);
        if (left == 0) {
            fail_timeout(s, timeout_ms);
            continue;
        }
        struct pollfd pfd = {.fd = s->priv_fd,
                             .events = shim_poll_events(shim_wants(s, rc))};
        shim_sock_set_hs_busy(s, true);
        shim_sock_unlock(s);
        /* A timeout just loops: the deadline is absolute. A signal ends
         * the wait as it would end the program's call over plain TCP;
         * the handshake goes on at the next call (docs/shim.md, "Signals
         * and blocked calls"). */
        bool interrupted = REAL(poll)(&pfd, 1, left) < 0 && errno == EINTR;
        bool give_eintr = interrupted && signal_ends_wait(s, timeo_opt);
        shim_sock_lock(s);
        shim_sock_set_hs_busy(s, false);
        shim_sock_step_done(s);
        if (give_eintr) {
            e = EINTR;
            break;
        }
    }
    shim_sock_unlock(s);
    if (e == 0)
        return 0;
    errno = e;
    return -1;
}

int shim_handshake(struct shim_sock *s, int fd, bool dontwait, int timeo_opt)
{
    return shim_handshake_wait(s, dontwait || shim_fd_nonblocking(fd),
                               timeo_opt);
}

int shim_pump(struct shim_sock *s, bool read)
{
    if (s->closed || s->failed)
        return SS_ERR_STATE;
    if (s->tcp_connecting ||
        ss_conn_state(s->conn) == SS_CONN_HANDSHAKING) {
        int rc = shim_handshake_step(s);
        if (rc != SS_OK)
            return rc;
    }
    if (ss_conn_unsent(s->conn) > 0)
        (void)ss_conn_flush(s->conn); /* errors show on the next read */
    enum ss_conn_state st = ss_conn_state(s->conn);
    /* Ciphertext OpenSSL read ahead is in no kernel queue: it is looked
     * at whatever the kernel says (a partial record then answers
     * SS_WANT_READ, and the caller waits for the socket, no spin). */
    if (!read && ss_conn_buffered_input(s->conn) > 0)
        read = true;
    if (!read || ss_conn_pending(s->conn) > 0 ||
        (st != SS_CONN_OPEN && st != SS_CONN_WRITE_CLOSED))
        return SS_OK;
    /* A one-byte peek makes OpenSSL read and open one record; its
     * plaintext stays buffered for the program (ss_conn_pending). */
    char byte;
    size_t n = 0;
    int rc = ss_conn_read(s->conn, &byte, 1, true, &n);
    if (rc < 0 && rc != SS_ERR_SYSCALL && rc != SS_ERR_CLOSED)
        shim_sock_fail(s, shim_errno_of(s, rc, false), false,
                       ss_conn_error(s->conn));
    return rc;
}
/* Sends close_notify before the TCP half-close. A full socket buffer is
 * waited for at most one second: shutdown() itself never blocks on TCP. */
void shim_close_notify(struct shim_sock *s, int fd)
{
    struct timespec deadline = shim_deadline_after(1000);
    shim_sock_lock(s);
    while (!s->failed && !s->closed &&
           ss_conn_state(s->conn) != SS_CONN_HANDSHAKING) {
        int rc = ss_conn_shutdown(s->conn);
        int left = shim_ms_until(&deadline);
        if (rc != SS_WANT_WRITE || left == 0 || shim_fd_nonblocking(fd))
            break;
        struct pollfd pfd = {.fd = s->priv_fd, .events = POLLOUT};
        shim_sock_unlock(s);
        (void)REAL(poll)(&pfd, 1, left);
        shim_sock_lock(s);
    }
    shim_sock_unlock(s);
}


/* --- waiting ---------------------------------------------------------------- */


/* Whether the kernel takes tmo as a timeout (NULL: wait forever); the
 * calls that take a timespec fail with EINVAL otherwise. */
bool shim_timeout_valid(const struct timespec *tmo)
{
    return tmo == NULL || (tmo->tv_sec >= 0 && tmo->tv_nsec >= 0 &&
                           tmo->tv_nsec < 1000000000L);
}

/* CLOCK_MONOTONIC now + tmo (a valid timeout); unused when tmo is NULL. */
struct timespec shim_deadline_after_ts(const struct timespec *tmo)
{
    struct timespec d = {0, 0};
    if (tmo == NULL)
        return d;
    clock_gettime(CLOCK_MONOTONIC, &d);
    d.tv_sec += tmo->tv_sec + (d.tv_nsec + tmo->tv_nsec) / 1000000000L;
    d.tv_nsec = (d.tv_nsec + tmo->tv_nsec) % 1000000000L;
    return d;
}

/* Remaining milliseconds of a wait with deadline *d (NULL: forever). */
int shim_ms_left(const struct timespec *d)
{
    return d == NULL ? -1 : shim_ms_until(d);
}

/* min of two poll timeouts where -1 is infinity. */
int shim_ms_min(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* --- readiness of one managed socket ---------------------------------------- */

static void cap_wait(struct shim_probe *p, const struct timespec *deadline)
{
    int ms = shim_ms_until(deadline) + 1;
    if (p->cap_ms < 0 || ms < p->cap_ms)
        p->cap_ms = ms;
}

/* Makes progress on s and answers the program's revents for it (0: not
 * ready; then p->os says what to wait for). Called with s locked. */
short shim_revents(struct shim_sock *s, struct shim_probe *p)
{
    p->os = 0;
    p->fresh = false;
    if (s->closed)
        return POLLNVAL;
    bool was_failed = s->failed;
    size_t before = s->failed ? 0 : ss_conn_pending(s->conn);
    enum ss_conn_state st0 = ss_conn_state(s->conn);
    bool hup = (p->kernel & (POLLERR | POLLHUP)) != 0;
    bool read = hup || ((p->kernel & POLLIN) && (p->want & EV_IN));
    int rc = s->failed ? SS_ERR_STATE : shim_pump(s, read);
    enum ss_conn_state st = ss_conn_state(s->conn);
    if (s->failed || st == SS_CONN_FAILED) {
        p->fresh = !was_failed || st0 != st;
        return (short)(POLLERR | POLLHUP | (p->want & (EV_IN | EV_OUT)));
    }
    if (s->tcp_connecting || st == SS_CONN_HANDSHAKING) {
        int wants = rc == SS_WANT_READ || rc == SS_WANT_WRITE
                        ? shim_wants(s, rc) : ss_conn_wants(s->conn);
        p->os = shim_poll_events(wants != 0 ? wants : SS_WANT_READ);
        cap_wait(p, &s->hs_deadline);
        return 0;
    }
    size_t pending = ss_conn_pending(s->conn);
    p->fresh = pending > before || st != st0;
    bool eof = st == SS_CONN_READ_CLOSED || st == SS_CONN_CLOSED;
    short rev = 0;
    if (p->want & EV_IN) {
        if (pending > 0 || eof) {
            rev |= (short)(p->want & EV_IN);
        } else {
            p->os |= POLLIN;
            ss_conn_idle(s->conn); /* the program waits for the peer */
        }
    }
    if ((p->want & POLLRDHUP) && eof)
        rev |= POLLRDHUP;
    if (st == SS_CONN_CLOSED)
        rev |= POLLHUP;
    bool unsent = ss_conn_unsent(s->conn) > 0;
    if (p->want & EV_OUT) {
        /* After our close_notify a write fails at once (EPIPE): TCP
         * reports POLLOUT after shutdown(SHUT_WR) too. */
        if (!unsent || st == SS_CONN_WRITE_CLOSED || st == SS_CONN_CLOSED)
            rev |= (short)(p->want & EV_OUT);
    }
    if (unsent)
        p->os |= POLLOUT;
    /* A kernel hang-up or error is the program's to see as well. */
    rev |= (short)(p->kernel & (POLLERR | POLLHUP));
    return rev;
}
