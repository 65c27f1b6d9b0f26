/*
 * io.c - the data calls: read, write, recv, send, recvfrom, sendto, readv,
 * writev, recvmsg, sendmsg, recvmmsg, sendmmsg, the fortified __read_chk,
 * __recv_chk, __recvfrom_chk, sendfile/sendfile64/splice (emulated on
 * managed sockets).
 *
 * On a managed descriptor every byte goes through the engine, under the
 * sock lock, which is never held while waiting (docs/design.md, "The
 * engine owns no descriptor and no blocking").
 * Blocking semantics are those of plain TCP:
 *  - a read returns what is available (buffered plaintext or one record),
 *    0 at close_notify or EOF. To wait it blocks in the real
 *    recv(fd, &byte, 1, MSG_PEEK), so the kernel applies SO_RCVTIMEO
 *    (EAGAIN) and SA_RESTART / EINTR exactly as it would for the program;
 *  - a write takes everything (waiting with poll for writability, within
 *    SO_SNDTIMEO), then flushes what the engine buffered; a timeout or
 *    signal after some bytes gives the partial count at once, before any
 *    gives -1 EAGAIN / EINTR, or after a signal the wait goes on where the
 *    kernel would restart the call (SA_RESTART, no SO_SNDTIMEO; see
 *    shim_signal_restarts);
 *  - writing to a closed connection raises SIGPIPE in the calling thread
 *    (unless MSG_NOSIGNAL) and fails with EPIPE.
 * Unmanaged descriptors cost one table load and go straight to libc.
 */
#include "drive.h"
#include "epoll.h"
#include "fdtab.h"
#include "io.h"
#include "nagle.h"
#include "real.h"
#include "sock.h"
#include "sockets.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secshim/log.h"

/* glibc's fortify failure report; it does not return. */
extern void __chk_fail(void) __attribute__((noreturn));

/* Gathered writes up to this size go out as one engine write. */
#define GATHER_MAX (64 * 1024)

/* --- waiting ---------------------------------------------------------------- */

/* The send-side wait of one call: the socket's SO_SNDTIMEO, counted from
 * the call's first wait. */
struct wait_state {
    bool started;
    bool forever;
    struct timespec deadline;
    /* Wait even on a non-blocking descriptor: the bytes were already
     * taken from a pipe (sendfile/splice) and cannot be given back. */
    bool must_finish;
};

/* Waits until the socket of s can do what the engine wants (a bit set of
 * SS_WANT_*); fd is the program's descriptor, whose O_NONBLOCK counts.
 * taken: the call has already moved bytes, so a signal ends it (with the
 * count) as the kernel's would; before any byte, a signal ends it only
 * when the kernel would not restart it: a handler without SA_RESTART, or
 * timeo_opt set (signal(7); docs/shim.md, "Signals and blocked calls").
 * Returns 0, or -1 with errno EAGAIN (non-blocking, dontwait, or the
 * timeout expired) or EINTR (a signal). */
static int wait_ready(struct shim_sock *s, int fd, int want, bool dontwait,
                      int timeo_opt, bool taken, struct wait_state *ws)
{
    if (!ws->started) {
        if (dontwait || (!ws->must_finish && shim_fd_nonblocking(fd))) {
            errno = EAGAIN;
            return -1;
        }
        int ms = shim_timeo_ms(s->priv_fd, timeo_opt);
        ws->forever = ms == 0;
        ws->deadline = shim_deadline_after(ms);
        ws->started = true;
    }
    for (;;) {
        int left = ws->forever ? -1 : shim_ms_until(&ws->deadline);
        if (left == 0) {
            errno = EAGAIN;
            return -1;
        }
        struct pollfd pfd = {.fd = s->priv_fd,
                             .events = shim_poll_events(want)};
        int n = REAL(poll)(&pfd, 1, left);
        if (n > 0)
            return 0;
        if (n == 0) {
            errno = EAGAIN;
            return -1;
        }
        /* ws->forever: timeo_opt is unset. */
        if (errno != EINTR || taken || !ws->forever || !shim_signal_restarts())
            return -1; /* EINTR, or an error */
    }
}

/* errno of an unusable sock (closed by another thread, or failed). Called
 * with s locked; 0 when the sock is usable. */
static int unusable(const struct shim_sock *s)
{
    if (s->closed)
        return EBADF;
    return s->failed ? s->fail_errno : 0;
}

/* --- reading ---------------------------------------------------------------- */

/* Blocks until the socket of s has a byte (or EOF) for the engine.
 * Returns 1 when there is something to read, 0 at TCP EOF, or -1 with
 * errno. */
static int wait_readable(struct shim_sock *s)
{
    char byte = 0;
    ssize_t n = REAL(recv)(s->priv_fd, &byte, 1, MSG_PEEK);
    return n > 0 ? 1 : (int)n;
}

static ssize_t sock_recv_discard(struct shim_sock *s, int fd, size_t len,
                                 int flags);

static ssize_t sock_recv(struct shim_sock *s, int fd, void *buf, size_t len,
                         int flags)
{
    /* The error queue is the TCP socket's own (timestamps, zerocopy
     * notices): the private descriptor's, EAGAIN when empty, as on TCP;
     * never a data read. */
    if ((flags & MSG_ERRQUEUE) != 0)
        return REAL(recv)(s->priv_fd, buf, len, flags);
    if ((flags & MSG_TRUNC) != 0)
        return sock_recv_discard(s, fd, len, flags & ~MSG_TRUNC);
    bool peek = (flags & MSG_PEEK) != 0;
    bool dontwait = (flags & MSG_DONTWAIT) != 0;
    bool waitall = (flags & MSG_WAITALL) != 0 && !peek;
    struct wait_state ws = {false, false, {0, 0}, false};
    bool tcp_eof = false;
    bool waited = false; /* the socket said readable: read, don't wait */
    bool first = true;
    unsigned long long rx_at_start = 0;
    size_t total = 0;
    if ((flags & MSG_OOB) != 0) {
        errno = EINVAL; /* TLS has no urgent data; TCP says EINVAL too */
        return -1;
    }
    for (;;) {
        shim_sock_lock(s);
        int e = unusable(s);
        if (first && e == 0)
            rx_at_start = ss_conn_received(s->conn);
        first = false;
        if (e == 0 && ss_conn_state(s->conn) == SS_CONN_HANDSHAKING) {
            shim_sock_unlock(s);
            if (shim_handshake(s, fd, dontwait, SO_RCVTIMEO) != 0)
                return -1;
            continue;
        }
        if (e != 0 || len == 0) {
            shim_sock_unlock(s);
            if (e == 0 || total > 0)
                return (ssize_t)total;
            errno = e;
            return -1;
        }
        /* A reply OpenSSL queued while reading (an alert, a key update)
         * goes out before we wait for the peer, who may need it. */
        if (ss_conn_unsent(s->conn) > 0)
            (void)ss_conn_flush(s->conn);
        /* Nothing in the engine and the kernel's queue empty at the last
         * recv: a blocking read waits for the peer at once, instead of a
         * recv that would only say EAGAIN (docs/design.md, "Memory and
         * copies"). Not once it has bytes: that recv may be an earlier
         * call's, and it returns what came since, without waiting. */
        bool wait_first = total == 0 && !waited && !tcp_eof && !dontwait &&
                          ss_conn_input_drained(s->conn) &&
                          !shim_fd_nonblocking(fd);
        if (wait_first)
            ss_conn_idle(s->conn); /* as a read that found nothing */
        size_t n = 0;
        int rc = wait_first ? SS_WANT_READ
                            : ss_conn_read(s->conn, (char *)buf + total,
                                           len - total, peek, &n);
        /* A short read tells an event loop the socket is drained, so the
         * recv that found the kernel's queue empty must be this call's:
         * one from an earlier call predates the edge that woke the
         * program, and bytes that came since would wait for an edge that
         * was already spent (nginx's proxied transfers stalled so). */
        bool drained = rc == SS_OK && ss_conn_input_drained(s->conn) &&
                       ss_conn_received(s->conn) != rx_at_start;
        shim_note_established(s);
        int wants = 0;
        if (rc < 0) {
            e = shim_errno_of(s, rc, false);
            if (rc != SS_ERR_SYSCALL && rc != SS_ERR_CLOSED)
                shim_sock_fail(s, e, false, ss_conn_error(s->conn));
        } else if (rc == SS_WANT_READ || rc == SS_WANT_WRITE) {
            wants = shim_wants(s, rc);
        }
        shim_sock_unlock(s);

        if (rc == SS_OK) {
            total += n;
            if (!peek)
                ss_status_add(&s->stat->bytes_in, n);
            if (total == len || peek) {
                events_sock_progress(s); /* plaintext may be left */
                return (ssize_t)total;
            }
            /* A short read means "drained" to event loops (nginx, ET
             * readers): go on into the next record while one can be had
             * without waiting (docs/shim.md, "epoll"); this call's recv
             * may already have said there is none. */
            if (drained && !waitall)
                return (ssize_t)total;
            continue;
        }
        if (rc == SS_EOF)
            return (ssize_t)total;
        if (rc < 0) {
            if (total > 0)
                return (ssize_t)total; /* the error comes with the next call */
            errno = e;
            return -1;
        }
        if (total > 0 && !waitall)
            return (ssize_t)total; /* engine and kernel drained */
        if (wants == SS_WANT_READ && !dontwait &&
            (wait_first || !shim_fd_nonblocking(fd))) {
            int r = wait_readable(s);
            waited = r > 0;
            if (r > 0)
                continue;
            if (r == 0 && !tcp_eof) {
                tcp_eof = true; /* let the engine see the EOF once */
                continue;
            }
            if (r == 0 || total > 0)
                return (ssize_t)total;
            return -1; /* EAGAIN after SO_RCVTIMEO, EINTR, or an error */
        }
        if (wait_ready(s, fd, wants, dontwait, SO_RCVTIMEO, total > 0,
                       &ws) != 0) {
            if (total > 0)
                return (ssize_t)total;
            return -1;
        }
    }
}

/*
 * recv(MSG_TRUNC) on TCP: the kernel takes up to len bytes without copying
 * them (buf may be NULL) and returns the count; with MSG_PEEK it counts
 * without taking. The same through the engine, into a scratch buffer: the
 * first piece waits as a plain recv would, the rest takes only what is
 * there already (or waits for all with MSG_WAITALL).
 */
static ssize_t sock_recv_discard(struct shim_sock *s, int fd, size_t len,
                                 int flags)
{
    char scratch[16 * 1024];
    size_t total = 0;
    while (total < len) {
        size_t want = len - total < sizeof(scratch) ? len - total
                                                    : sizeof(scratch);
        ssize_t r = sock_recv(s, fd, scratch, want, flags);
        if (r < 0)
            return total > 0 ? (ssize_t)total : -1;
        total += (size_t)r;
        if (r == 0 || (flags & MSG_PEEK) != 0)
            break;
        if ((flags & MSG_WAITALL) == 0)
            flags |= MSG_DONTWAIT;
    }
    return (ssize_t)total;
}

/* --- writing ---------------------------------------------------------------- */

/* A write that failed with e: closed connections raise SIGPIPE like TCP
 * does, unless the program passed MSG_NOSIGNAL (or ignores the signal, in
 * which case pthread_kill does nothing). */
static ssize_t write_failed(int e, int flags)
{
    if (e == EPIPE && (flags & MSG_NOSIGNAL) == 0)
        pthread_kill(pthread_self(), SIGPIPE);
    errno = e;
    return -1;
}

/* The errno of a failed engine write. Called with s locked. */
static int write_errno(struct shim_sock *s, int rc)
{
    int sys = ss_conn_sys_errno(s->conn);
    if (rc == SS_ERR_CLOSED ||
        (rc == SS_ERR_SYSCALL && (sys == EPIPE || sys == ECONNRESET)))
        return EPIPE;
    return shim_errno_of(s, rc, false);
}

/* Pushes the engine's outbound ciphertext; stops quietly on a timeout,
 * a signal or an error (the bytes were accepted; the next call reports). */
static void sock_flush(struct shim_sock *s, int fd, bool dontwait,
                       struct wait_state *ws)
{
    for (;;) {
        shim_sock_lock(s);
        int rc = unusable(s) != 0 ? SS_ERR_STATE : ss_conn_flush(s->conn);
        int wants = rc == SS_WANT_WRITE || rc == SS_WANT_READ
                        ? shim_wants(s, rc) : 0;
        shim_sock_unlock(s);
        if (wants == 0)
            return;
        if (wait_ready(s, fd, wants, dontwait, SO_SNDTIMEO, true, ws) != 0)
            return;
    }
}

/* Makes sure the handshake is done (blocking) or, for a non-blocking
 * call, that it progressed; early writes then go to the engine's bounded
 * early-write buffer. Returns 0 or -1 with errno. */
static int send_handshake(struct shim_sock *s, int fd, bool dontwait)
{
    shim_sock_lock(s);
    bool handshaking = unusable(s) == 0 &&
                       ss_conn_state(s->conn) == SS_CONN_HANDSHAKING;
    shim_sock_unlock(s);
    if (!handshaking || shim_handshake(s, fd, dontwait, SO_SNDTIMEO) == 0)
        return 0;
    return errno == EAGAIN ? 0 : -1;
}

/* Sends len bytes; must_finish: wait for the socket even when it is
 * non-blocking (see struct wait_state). */
static ssize_t sock_send_ex(struct shim_sock *s, int fd, const void *buf,
                            size_t len, int flags, bool flush,
                            bool must_finish)
{
    bool dontwait = (flags & MSG_DONTWAIT) != 0;
    struct wait_state ws = {false, false, {0, 0}, must_finish};
    size_t total = 0;
    bool interrupted = false;
    if ((flags & MSG_OOB) != 0) {
        errno = EOPNOTSUPP; /* urgent data cannot be carried over TLS */
        return -1;
    }
    if (send_handshake(s, fd, dontwait) != 0)
        return -1;
    while (total < len) {
        shim_sock_lock(s);
        int e = unusable(s);
        size_t n = 0;
        int rc = e != 0 ? SS_ERR_STATE
                        : ss_conn_write(s->conn, (const char *)buf + total,
                                        len - total, &n);
        shim_note_established(s);
        if (rc == SS_OK && n > 0)
            shim_nagle_after_write(s);
        if (e == 0 && rc < 0) {
            e = write_errno(s, rc);
            if (rc != SS_ERR_SYSCALL && rc != SS_ERR_CLOSED)
                shim_sock_fail(s, e, false, ss_conn_error(s->conn));
        }
        int wants = rc == SS_WANT_WRITE || rc == SS_WANT_READ
                        ? shim_wants(s, rc) : 0;
        shim_sock_unlock(s);
        if (rc == SS_OK) {
            total += n;
            ss_status_add(&s->stat->bytes_out, n);
            continue;
        }
        if (rc < 0) {
            if (total > 0)
                break;
            return write_failed(e, flags);
        }
        if (wait_ready(s, fd, wants, dontwait, SO_SNDTIMEO, total > 0,
                       &ws) != 0) {
            if (total == 0)
                return -1;
            /* The signal is spent: a flush that waited now would keep
             * the count from the program until the peer reads, where the
             * kernel returns it at once. What is left goes out with the
             * next call (or the last close). */
            interrupted = errno == EINTR;
            break;
        }
    }
    struct wait_state no_wait = {false, false, {0, 0}, false};
    if (flush)
        sock_flush(s, fd, dontwait || interrupted,
                   interrupted ? &no_wait : &ws);
    events_sock_progress(s); /* the handshake's end, ciphertext flushed */
    return (ssize_t)total;
}

static ssize_t sock_send(struct shim_sock *s, int fd, const void *buf,
                         size_t len, int flags, bool flush)
{
    return sock_send_ex(s, fd, buf, len, flags, flush, false);
}

/* --- vectors ---------------------------------------------------------------- */

/* Total length of iov, or -1 (EINVAL) when the vector is invalid. */
static ssize_t iov_total(const struct iovec *iov, int cnt)
{
    if (cnt < 0 || cnt > IOV_MAX || (cnt > 0 && iov == NULL)) {
        errno = EINVAL;
        return -1;
    }
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len > (size_t)SSIZE_MAX - total) {
            errno = EINVAL;
            return -1;
        }
        total += iov[i].iov_len;
    }
    return (ssize_t)total;
}

static ssize_t sock_sendv(struct shim_sock *s, int fd, const struct iovec *iov,
                          int cnt, int flags)
{
    ssize_t len = iov_total(iov, cnt);
    if (len < 0)
        return -1;
    /* Small vectors become one buffer, so one TLS record, not one each. */
    if (cnt > 1 && len <= GATHER_MAX) {
        char *gathered = malloc((size_t)len > 0 ? (size_t)len : 1);
        if (gathered != NULL) {
            size_t off = 0;
            for (int i = 0; i < cnt; i++) {
                memcpy(gathered + off, iov[i].iov_base, iov[i].iov_len);
                off += iov[i].iov_len;
            }
            ssize_t r = sock_send(s, fd, gathered, off, flags, true);
            int saved = errno;
            free(gathered);
            errno = saved;
            return r;
        }
    }
    ssize_t total = 0;
    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len == 0)
            continue;
        bool last = i == cnt - 1;
        ssize_t r = sock_send(s, fd, iov[i].iov_base, iov[i].iov_len, flags,
                              last);
        if (r < 0)
            return total > 0 ? total : -1;
        total += r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    return total;
}

/* Reads into each element in turn, the first with flags and the others
 * with later_flags, and stops at the first one left short: EOF, a
 * timeout, an error, or with MSG_DONTWAIT nothing more queued. */
static ssize_t recv_each(struct shim_sock *s, int fd, const struct iovec *iov,
                         int cnt, int flags, int later_flags)
{
    ssize_t total = 0;
    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len == 0)
            continue;
        ssize_t r = sock_recv(s, fd, iov[i].iov_base, iov[i].iov_len,
                              total > 0 ? later_flags : flags);
        if (r < 0)
            return total > 0 ? total : -1;
        total += r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    return total;
}

static ssize_t sock_recvv(struct shim_sock *s, int fd, const struct iovec *iov,
                          int cnt, int flags)
{
    ssize_t len = iov_total(iov, cnt);
    if (len < 0)
        return -1;
    /* Nothing is copied into the vector: one call, no gather buffer. */
    if ((flags & MSG_TRUNC) != 0)
        return sock_recv(s, fd, NULL, (size_t)len, flags);
    if (cnt == 1)
        return sock_recv(s, fd, iov[0].iov_base, iov[0].iov_len, flags);
    /* Fill every element in turn: stop at EOF, timeout or error. */
    if ((flags & MSG_WAITALL) != 0 && (flags & MSG_PEEK) == 0)
        return recv_each(s, fd, iov, cnt, flags, flags);
    /* Larger than the gather buffer: element by element, the ones after
     * the first without waiting, as one stream read fills them; a 64 KiB
     * gather would end short with bytes left, which an ET loop takes for
     * drained (docs/shim.md, "epoll"). A peek must gather (each element's
     * read would see the same bytes) and stays within the buffer. */
    if ((size_t)len > GATHER_MAX && (flags & MSG_PEEK) == 0)
        return recv_each(s, fd, iov, cnt, flags, flags | MSG_DONTWAIT);
    /* One read (a stream read may return less than asked), scattered. */
    size_t want = (size_t)len < GATHER_MAX ? (size_t)len : GATHER_MAX;
    char *tmp = malloc(want > 0 ? want : 1);
    if (tmp == NULL) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t r = sock_recv(s, fd, tmp, want, flags);
    int saved = errno;
    for (size_t off = 0, i = 0; r > 0 && off < (size_t)r; i++) {
        size_t n = (size_t)r - off < iov[i].iov_len ? (size_t)r - off
                                                     : iov[i].iov_len;
        memcpy(iov[i].iov_base, tmp + off, n);
        off += n;
    }
    free(tmp);
    errno = saved;
    return r;
}

/* --- interposed ------------------------------------------------------------- */

/*
 * The untouched path of the hot data calls (issue 9): a descriptor below
 * FDTAB_LOW whose slot is NULL, once the table is bound, goes straight to
 * libc as a tail call: a load and a branch for the descriptor, a load and
 * a branch for the slot, no register saved. Anything else takes the
 * general path, NAME_slow (kept out of line so that it does not make the
 * fast path save registers), which looks further and binds.
 */
#define UNTOUCHED_CALL(name, fd, ...)                                        \
    do {                                                                    \
        __typeof__(real.name) untouched_fn_ = REAL_IF_BOUND(name);          \
        if (__builtin_expect(untouched_fn_ != NULL &&                       \
                                 fdtab_low_empty(fdtab_program_low, fd),    \
                             1))                                            \
            return untouched_fn_(fd, __VA_ARGS__);                          \
    } while (0)

/* Each NAME_slow function: one lookup; unmanaged -> libc, managed ->
 * engine, holding a reference for the duration of the call. */

__attribute__((noinline)) static ssize_t
recv_slow(int fd, void *buf, size_t len, int flags)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(recv)(fd, buf, len, flags);
    ssize_t r = sock_recv(s, fd, buf, len, flags);
    shim_sock_unref(s);
    return r;
}

static ssize_t shim_recv(int fd, void *buf, size_t len, int flags)
{
    UNTOUCHED_CALL(recv, fd, buf, len, flags);
    return recv_slow(fd, buf, len, flags);
}

__attribute__((noinline)) static ssize_t
read_slow(int fd, void *buf, size_t len)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(read)(fd, buf, len);
    ssize_t r = sock_recv(s, fd, buf, len, 0);
    shim_sock_unref(s);
    return r;
}

ssize_t shim_read(int fd, void *buf, size_t len)
{
    UNTOUCHED_CALL(read, fd, buf, len);
    return read_slow(fd, buf, len);
}

/* TCP reports no source address: *addr_len becomes 0, as the kernel does. */
__attribute__((noinline)) static ssize_t
recvfrom_slow(int fd, void *buf, size_t len, int flags,
                             struct sockaddr *addr, socklen_t *addr_len)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(recvfrom)(fd, buf, len, flags, addr, addr_len);
    ssize_t r = sock_recv(s, fd, buf, len, flags);
    if (r >= 0 && addr != NULL && addr_len != NULL)
        *addr_len = 0;
    shim_sock_unref(s);
    return r;
}

static ssize_t shim_recvfrom(int fd, void *buf, size_t len, int flags,
                             struct sockaddr *addr, socklen_t *addr_len)
{
    UNTOUCHED_CALL(recvfrom, fd, buf, len, flags, addr, addr_len);
    return recvfrom_slow(fd, buf, len, flags, addr, addr_len);
}

__attribute__((noinline)) static ssize_t
send_slow(int fd, const void *buf, size_t len, int flags)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(send)(fd, buf, len, flags);
    ssize_t r = sock_send(s, fd, buf, len, flags, true);
    shim_sock_unref(s);
    return r;
}

static ssize_t shim_send(int fd, const void *buf, size_t len, int flags)
{
    UNTOUCHED_CALL(send, fd, buf, len, flags);
    return send_slow(fd, buf, len, flags);
}

__attribute__((noinline)) static ssize_t
write_slow(int fd, const void *buf, size_t len)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(write)(fd, buf, len);
    ssize_t r = sock_send(s, fd, buf, len, 0, true);
    shim_sock_unref(s);
    return r;
}

ssize_t shim_write(int fd, const void *buf, size_t len)
{
    UNTOUCHED_CALL(write, fd, buf, len);
    return write_slow(fd, buf, len);
}

/* A connected TCP socket ignores the destination; so does the shim. */
__attribute__((noinline)) static ssize_t
sendto_slow(int fd, const void *buf, size_t len, int flags,
                           const struct sockaddr *addr, socklen_t addr_len)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(sendto)(fd, buf, len, flags, addr, addr_len);
    ssize_t r = sock_send(s, fd, buf, len, flags, true);
    shim_sock_unref(s);
    return r;
}

static ssize_t shim_sendto(int fd, const void *buf, size_t len, int flags,
                           const struct sockaddr *addr, socklen_t addr_len)
{
    UNTOUCHED_CALL(sendto, fd, buf, len, flags, addr, addr_len);
    return sendto_slow(fd, buf, len, flags, addr, addr_len);
}

__attribute__((noinline)) static ssize_t
readv_slow(int fd, const struct iovec *iov, int cnt)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(readv)(fd, iov, cnt);
    ssize_t r = sock_recvv(s, fd, iov, cnt, 0);
    shim_sock_unref(s);
    return r;
}

static ssize_t shim_readv(int fd, const struct iovec *iov, int cnt)
{
    UNTOUCHED_CALL(readv, fd, iov, cnt);
    return readv_slow(fd, iov, cnt);
}

__attribute__((noinline)) static ssize_t
writev_slow(int fd, const struct iovec *iov, int cnt)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(writev)(fd, iov, cnt);
    ssize_t r = sock_sendv(s, fd, iov, cnt, 0);
    shim_sock_unref(s);
    return r;
}

static ssize_t shim_writev(int fd, const struct iovec *iov, int cnt)
{
    UNTOUCHED_CALL(writev, fd, iov, cnt);
    return writev_slow(fd, iov, cnt);
}

/* No source address and no control messages come over TLS. */
static ssize_t sock_recvmsg(struct shim_sock *s, int fd, struct msghdr *msg,
                            int flags)
{
    /* The error queue's messages come with their control data: the real
     * call on the private descriptor (see sock_recv). */
    if ((flags & MSG_ERRQUEUE) != 0)
        return REAL(recvmsg)(s->priv_fd, msg, flags);
    ssize_t r = sock_recvv(s, fd, msg->msg_iov, (int)msg->msg_iovlen, flags);
    if (r >= 0) {
        msg->msg_namelen = 0;
        msg->msg_controllen = 0;
        msg->msg_flags = 0;
    }
    return r;
}

__attribute__((noinline)) static ssize_t
recvmsg_slow(int fd, struct msghdr *msg, int flags)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(recvmsg)(fd, msg, flags);
    ssize_t r = sock_recvmsg(s, fd, msg, flags);
    shim_sock_unref(s);
    return r;
}

static ssize_t shim_recvmsg(int fd, struct msghdr *msg, int flags)
{
    UNTOUCHED_CALL(recvmsg, fd, msg, flags);
    return recvmsg_slow(fd, msg, flags);
}

/* Control messages (SCM_RIGHTS...) mean nothing on TCP; they are dropped. */
__attribute__((noinline)) static ssize_t
sendmsg_slow(int fd, const struct msghdr *msg, int flags)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(sendmsg)(fd, msg, flags);
    ssize_t r = sock_sendv(s, fd, msg->msg_iov, (int)msg->msg_iovlen, flags);
    shim_sock_unref(s);
    return r;
}

static ssize_t shim_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    UNTOUCHED_CALL(sendmsg, fd, msg, flags);
    return sendmsg_slow(fd, msg, flags);
}

/* --- batches ---------------------------------------------------------------- */

/*
 * recvmmsg as the kernel does it on a stream socket: one recvmsg per
 * entry until vlen; MSG_WAITFORONE turns on MSG_DONTWAIT after the first;
 * the timeout is only checked between entries (the kernel's documented
 * behaviour: a blocked read is not cut short by it). An error after at
 * least one entry ends the batch with the count; the next call reports
 * it again (the sock stays failed) or the condition has passed.
 */
static int sock_recvmmsg(struct shim_sock *s, int fd, struct mmsghdr *vec,
                         unsigned int vlen, int flags,
                         const struct timespec *timeout)
{
    struct timespec deadline = {0, 0};
    if (timeout != NULL) {
        if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 ||
            timeout->tv_nsec >= 1000000000L) {
            errno = EINVAL;
            return -1;
        }
        long long ms = (long long)timeout->tv_sec * 1000 +
                       (timeout->tv_nsec + 999999) / 1000000;
        deadline = shim_deadline_after(ms > INT_MAX ? INT_MAX : (int)ms);
    }
    if (vlen > UIO_MAXIOV)
        vlen = UIO_MAXIOV;
    unsigned int done = 0;
    while (done < vlen) {
        ssize_t r = sock_recvmsg(s, fd, &vec[done].msg_hdr,
                                 flags & ~MSG_WAITFORONE);
        if (r < 0)
            return done > 0 ? (int)done : -1;
        vec[done].msg_len = (unsigned int)r;
        done++;
        if ((flags & MSG_WAITFORONE) != 0)
            flags |= MSG_DONTWAIT;
        if (timeout != NULL && shim_ms_until(&deadline) == 0)
            break;
    }
    return (int)done;
}

/* sendmmsg: one sendmsg per entry; a short write (non-blocking socket
 * full, timeout, signal) ends the batch after that entry, whose msg_len
 * says how much of it went. */
static int sock_sendmmsg(struct shim_sock *s, int fd, struct mmsghdr *vec,
                         unsigned int vlen, int flags)
{
    if (vlen > UIO_MAXIOV)
        vlen = UIO_MAXIOV;
    unsigned int done = 0;
    while (done < vlen) {
        const struct msghdr *m = &vec[done].msg_hdr;
        ssize_t want = iov_total(m->msg_iov, (int)m->msg_iovlen);
        ssize_t r = want < 0 ? -1
                             : sock_sendv(s, fd, m->msg_iov,
                                          (int)m->msg_iovlen, flags);
        if (r < 0)
            return done > 0 ? (int)done : -1;
        vec[done].msg_len = (unsigned int)r;
        done++;
        if (r < want)
            break;
    }
    return (int)done;
}

static int shim_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen,
                         int flags, struct timespec *timeout)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(recvmmsg)(fd, vec, vlen, flags, timeout);
    int r = sock_recvmmsg(s, fd, vec, vlen, flags, timeout);
    shim_sock_unref(s);
    return r;
}

static int shim_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen,
                         int flags)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(sendmmsg)(fd, vec, vlen, flags);
    int r = sock_sendmmsg(s, fd, vec, vlen, flags);
    shim_sock_unref(s);
    return r;
}

/* --- zero-copy calls, emulated ---------------------------------------------- */

/*
 * sendfile and splice move bytes inside the kernel, where TLS cannot be
 * applied, so on a managed socket they are emulated: read into a buffer,
 * write through the engine, return the count the real call would. The
 * source is never read ahead of what the socket took:
 *  - a file (seekable) is read with pread and its offset (the caller's
 *    *offset, or the file offset) advanced by what was sent, exactly as
 *    sendfile does;
 *  - a pipe cannot be un-read, so on a non-blocking socket the call first
 *    checks that the connection can take data now (else EAGAIN, nothing
 *    consumed), reads at most ZC_PIPE_CHUNK, and then delivers all of it,
 *    waiting for the socket if it must.
 */
#define ZC_CHUNK (64 * 1024)
#define ZC_PIPE_CHUNK (16 * 1024)
/* The kernel's limit on one transfer (MAX_RW_COUNT). */
#define ZC_MAX_COUNT 0x7ffff000UL

/* True when the connection can take plaintext now without waiting: open,
 * nothing left unsent, and the socket writable. */
static bool sock_can_send_now(struct shim_sock *s)
{
    shim_sock_lock(s);
    bool ok = unusable(s) == 0 &&
              ss_conn_state(s->conn) == SS_CONN_OPEN &&
              ss_conn_unsent(s->conn) == 0;
    shim_sock_unlock(s);
    struct pollfd pfd = {.fd = s->priv_fd, .events = POLLOUT};
    return ok && REAL(poll)(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT);
}

/* True when fd is readable now (for SPLICE_F_NONBLOCK on a pipe). */
static bool fd_readable_now(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return REAL(poll)(&pfd, 1, 0) == 1;
}

/* Reads up to ZC_PIPE_CHUNK bytes from a pipe (or other stream) and sends
 * all of them. Returns the count (0 at the pipe's EOF) or -1 with errno. */
static ssize_t pipe_to_sock(struct shim_sock *s, int fd, int in_fd,
                            size_t count, bool dontwait, char *buf)
{
    if ((dontwait || shim_fd_nonblocking(fd)) && !sock_can_send_now(s)) {
        errno = EAGAIN;
        return -1;
    }
    size_t want = count < ZC_PIPE_CHUNK ? count : ZC_PIPE_CHUNK;
    ssize_t n = REAL(read)(in_fd, buf, want);
    if (n <= 0)
        return n;
    ssize_t r = sock_send_ex(s, fd, buf, (size_t)n, 0, true, true);
    if (r >= 0 && r < n) {
        int saved = errno;
        ss_log(SS_LOG_ERROR, "splice/sendfile to %s: %zd bytes read from "
               "a pipe could not be sent and are lost", s->peer, n - r);
        errno = saved;
    }
    return r;
}

/*
 * sendfile(out_fd managed, in_fd, offset, count). Blocking: loops until
 * count bytes, the end of the file, or an error; non-blocking: until the
 * socket would block. Returns the count sent, or -1 with errno.
 */
static ssize_t sock_sendfile(struct shim_sock *s, int fd, int in_fd,
                             off_t *offset, size_t count)
{
    if (count > ZC_MAX_COUNT)
        count = ZC_MAX_COUNT;
    struct shim_sock *src = fdtab_get(in_fd);
    if (src != NULL) {
        shim_sock_unref(src); /* a socket is no sendfile source */
        errno = EINVAL;
        return -1;
    }
    off_t pos = offset != NULL ? *offset : lseek(in_fd, 0, SEEK_CUR);
    bool seekable = offset != NULL || pos >= 0;
    if (offset != NULL && pos < 0) {
        errno = EINVAL;
        return -1;
    }
    char *buf = malloc(count < ZC_CHUNK ? (count > 0 ? count : 1)
                                        : ZC_CHUNK);
    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    size_t total = 0;
    ssize_t r = 0;
    while (total < count) {
        size_t want = count - total < ZC_CHUNK ? count - total : ZC_CHUNK;
        if (!seekable) {
            r = pipe_to_sock(s, fd, in_fd, want, false, buf);
            if (r <= 0)
                break;
            total += (size_t)r;
            continue;
        }
        ssize_t n = pread(in_fd, buf, want, pos);
        if (n <= 0) {
            r = n;
            break;
        }
        r = sock_send(s, fd, buf, (size_t)n, 0, true);
        if (r <= 0)
            break;
        total += (size_t)r;
        pos += r;
        if (r < n)
            break; /* the socket would block, or a timeout / signal */
    }
    int saved = errno;
    free(buf);
    if (seekable && offset != NULL)
        *offset = pos;
    else if (seekable && total > 0)
        (void)lseek(in_fd, pos, SEEK_SET);
    if (total > 0)
        return (ssize_t)total;
    errno = saved;
    return r < 0 ? -1 : 0;
}

static ssize_t shim_sendfile(int out_fd, int in_fd, off_t *offset,
                             size_t count)
{
    struct shim_sock *s = fdtab_get(out_fd);
    if (s == NULL)
        return REAL(sendfile)(out_fd, in_fd, offset, count);
    ssize_t r = sock_sendfile(s, out_fd, in_fd, offset, count);
    shim_sock_unref(s);
    return r;
}

static bool is_pipe(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* Free room in a pipe, so that no plaintext is taken from the connection
 * that the pipe could not hold. Returns the bytes, 0 when full. */
static size_t pipe_room(int pfd)
{
    int size = REAL(fcntl)(pfd, F_GETPIPE_SZ);
    int queued = 0;
    if (size <= 0 || REAL(ioctl)(pfd, FIONREAD, &queued) != 0)
        return 0;
    return queued < size ? (size_t)(size - queued) : 0;
}

/*
 * splice from a managed socket into a pipe: reads at most what the pipe
 * can hold right now (waiting for room when blocking), then writes it.
 * Returns the count (0 at EOF) or -1 with errno.
 */
static ssize_t sock_splice_out(struct shim_sock *s, int fd, int pfd,
                               size_t len, bool dontwait)
{
    size_t room;
    while ((room = pipe_room(pfd)) == 0) {
        if (dontwait || shim_fd_nonblocking(pfd)) {
            errno = EAGAIN;
            return -1;
        }
        struct pollfd p = {.fd = pfd, .events = POLLOUT};
        if (REAL(poll)(&p, 1, -1) < 0)
            return -1; /* EINTR */
        if (p.revents & (POLLERR | POLLHUP)) {
            errno = EPIPE;
            return -1;
        }
    }
    size_t want = len < room ? len : room;
    want = want < ZC_CHUNK ? want : ZC_CHUNK;
    char *buf = malloc(want > 0 ? want : 1);
    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n = sock_recv(s, fd, buf, want, dontwait ? MSG_DONTWAIT : 0);
    size_t off = 0;
    while (n > 0 && off < (size_t)n) {
        ssize_t w = REAL(write)(pfd, buf + off, (size_t)n - off);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            /* Another writer took the room: wait, the bytes are ours. */
            struct pollfd p = {.fd = pfd, .events = POLLOUT};
            (void)REAL(poll)(&p, 1, -1);
            continue;
        }
        break; /* EPIPE: the reader is gone; report what went */
    }
    int saved = errno;
    free(buf);
    errno = saved;
    if (n > 0 && off == 0)
        return -1;
    return n > 0 ? (ssize_t)off : n;
}

/* splice with a managed socket on one end; the other end must be a pipe
 * and offsets only apply to files, as the kernel requires. */
static ssize_t sock_splice(struct shim_sock *in, struct shim_sock *out,
                           int fd_in, off_t *off_in, int fd_out,
                           off_t *off_out, size_t len, unsigned int flags)
{
    bool dontwait = (flags & SPLICE_F_NONBLOCK) != 0;
    if (off_in != NULL || off_out != NULL) {
        errno = ESPIPE; /* neither a socket nor a pipe has an offset */
        return -1;
    }
    if (!is_pipe(out != NULL ? fd_in : fd_out)) {
        errno = EINVAL;
        return -1;
    }
    if (len > ZC_MAX_COUNT)
        len = ZC_MAX_COUNT;
    if (len == 0)
        return 0;
    if (in != NULL)
        return sock_splice_out(in, fd_in, fd_out, len, dontwait);
    if (dontwait && !fd_readable_now(fd_in)) {
        errno = EAGAIN;
        return -1;
    }
    char *buf = malloc(ZC_PIPE_CHUNK);
    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t r = pipe_to_sock(out, fd_out, fd_in, len, dontwait, buf);
    int saved = errno;
    free(buf);
    errno = saved;
    return r;
}

static ssize_t shim_splice(int fd_in, off_t *off_in, int fd_out,
                           off_t *off_out, size_t len, unsigned int flags)
{
    struct shim_sock *in = fdtab_get(fd_in);
    struct shim_sock *out = fdtab_get(fd_out);
    if (in == NULL && out == NULL)
        return REAL(splice)(fd_in, off_in, fd_out, off_out, len, flags);
    ssize_t r = in != NULL && out != NULL
                    ? (errno = EINVAL, -1) /* no pipe on either end */
                    : sock_splice(in, out, fd_in, off_in, fd_out, off_out,
                                  len, flags);
    int saved = errno;
    shim_sock_unref(in);
    shim_sock_unref(out);
    errno = saved;
    return r;
}

/* shim_sendto_any, shim_sendmsg_any and shim_sendmmsg_any (io.h) are
 * defined with the issue 7 paths at the end of the file: they look at
 * Fast Open and SCM_RIGHTS first. */

SS_EXPORT ssize_t read(int fd, void *buf, size_t len)
{
    return shim_read(fd, buf, len);
}

SS_EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
    return shim_write(fd, buf, len);
}

SS_EXPORT ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    return shim_recv(fd, buf, len, flags);
}

SS_EXPORT ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    return shim_send(fd, buf, len, flags);
}

SS_EXPORT ssize_t recvfrom(int fd, void *restrict buf, size_t len, int flags,
                           __SOCKADDR_ARG addr, socklen_t *restrict addr_len)
{
    return shim_recvfrom(fd, buf, len, flags, addr.__sockaddr__, addr_len);
}

SS_EXPORT ssize_t sendto(int fd, const void *buf, size_t len, int flags,
                         __CONST_SOCKADDR_ARG addr, socklen_t addr_len)
{
    return shim_sendto_any(fd, buf, len, flags, addr.__sockaddr__, addr_len);
}

SS_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
    return shim_readv(fd, iov, cnt);
}

SS_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    return shim_writev(fd, iov, cnt);
}

SS_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    return shim_recvmsg(fd, msg, flags);
}

SS_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return shim_sendmsg_any(fd, msg, flags);
}

/* The fortified entry points check the buffer size as glibc does, then
 * behave as the plain call. */
SS_EXPORT ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen)
{
    if (len > buflen)
        __chk_fail();
    return shim_read(fd, buf, len);
}

SS_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen,
                             int flags)
{
    if (len > buflen)
        __chk_fail();
    return shim_recv(fd, buf, len, flags);
}

SS_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t len,
                                 size_t buflen, int flags,
                                 struct sockaddr *addr, socklen_t *addr_len)
{
    if (len > buflen)
        __chk_fail();
    return shim_recvfrom(fd, buf, len, flags, addr, addr_len);
}

SS_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen,
                       int flags, struct timespec *timeout)
{
    return shim_recvmmsg(fd, vec, vlen, flags, timeout);
}

SS_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen,
                       int flags)
{
    return shim_sendmmsg_any(fd, vec, vlen, flags);
}

SS_EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
    return shim_sendfile(out_fd, in_fd, offset, count);
}

/* off_t is 64 bits on the 64-bit targets Debian builds the shim for; the
 * assertion keeps a 32-bit build from silently mixing the two. */
_Static_assert(sizeof(off_t) == sizeof(off64_t), "sendfile64 needs off_t "
               "of 64 bits");

SS_EXPORT ssize_t sendfile64(int out_fd, int in_fd, off64_t *offset,
                             size_t count)
{
    return shim_sendfile(out_fd, in_fd, (off_t *)offset, count);
}

SS_EXPORT ssize_t splice(int fd_in, off64_t *off_in, int fd_out,
                         off64_t *off_out, size_t len, unsigned int flags)
{
    return shim_splice(fd_in, (off_t *)off_in, fd_out, (off_t *)off_out, len,
                       flags);
}

/* ===========================================================================
 * Issue 7, part 3: every way to send and receive is either carried as TLS or
 * refused. The calls below are the remaining libc entry points that move
 * data on a descriptor; docs/shim.md ("Every path to the wire") lists them
 * with the paths that fail closed instead, and test/audit-io checks that
 * list against the installed glibc.
 * ======================================================================== */

/* --- dprintf and vdprintf --------------------------------------------------- */

/* Output up to this size is formatted on the stack; longer goes to the heap. */
#define DPRINTF_STACK 1024

/* glibc's fortified formatter: flag > 0 turns on its %n and positional
 * checks, the ones __vdprintf_chk applies. */
extern int __vsnprintf_chk(char *s, size_t maxlen, int flag, size_t slen,
                           const char *fmt, va_list ap);

/* flag < 0: the plain vsnprintf; otherwise the fortified one. */
static int format_into(char *buf, size_t len, int flag, const char *fmt,
                       va_list ap)
{
    if (flag < 0)
        return vsnprintf(buf, len, fmt, ap);
    return __vsnprintf_chk(buf, len, flag, len, fmt, ap);
}

/* Writes all of buf as glibc's stdio does for a dprintf stream: short
 * writes are continued, any failure makes the whole call -1 with errno. */
static int send_all(struct shim_sock *s, int fd, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t r = sock_send(s, fd, buf + off, len - off, 0, true);
        if (r <= 0)
            return -1; /* sock_send gives 0 only for len 0 */
        off += (size_t)r;
    }
    return 0;
}

/*
 * vdprintf on a managed socket: the text is formatted first (into a stack
 * buffer, or one heap buffer of the exact size when longer), then written
 * through the engine in one call, so it goes out as one TLS write.
 * Returns the count of bytes written, or -1 with errno: vsnprintf's
 * (EOVERFLOW above INT_MAX, EILSEQ...), ENOMEM, or the write's.
 */
static int sock_vdprintf(struct shim_sock *s, int fd, int flag,
                         const char *fmt, va_list ap)
{
    char stack[DPRINTF_STACK];
    char *out = stack;
    va_list again;
    va_copy(again, ap);
    int n = format_into(stack, sizeof(stack), flag, fmt, ap);
    if (n >= 0 && (size_t)n >= sizeof(stack)) {
        out = malloc((size_t)n + 1);
        if (out == NULL) {
            va_end(again);
            errno = ENOMEM;
            return -1;
        }
        n = format_into(out, (size_t)n + 1, flag, fmt, again);
    }
    va_end(again);
    /* Empty output makes no write, as glibc's stream makes none. */
    int r = n <= 0 ? n : send_all(s, fd, out, (size_t)n) == 0 ? n : -1;
    if (out != stack) {
        int saved = errno;
        free(out);
        errno = saved;
    }
    return r;
}

static int shim_vdprintf(int fd, const char *fmt, va_list ap)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(vdprintf)(fd, fmt, ap);
    int r = sock_vdprintf(s, fd, -1, fmt, ap);
    shim_sock_unref(s);
    return r;
}

/* Unmanaged descriptors get glibc's own fortified call, so its checks stay
 * glibc's; managed ones the same checks through __vsnprintf_chk. */
static int shim___vdprintf_chk(int fd, int flag, const char *fmt, va_list ap)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(__vdprintf_chk)(fd, flag, fmt, ap);
    int r = sock_vdprintf(s, fd, flag, fmt, ap);
    shim_sock_unref(s);
    return r;
}

/* --- preadv, pwritev and their v2 forms -------------------------------------- */

/*
 * What the kernel does with them on a TCP socket (checked on plain TCP;
 * ev_semantics compares): a socket has no file position, so
 *  - preadv/pwritev: -1 EINVAL for a negative offset, else -1 ESPIPE,
 *    whatever the vector (the offset is checked first);
 *  - preadv2/pwritev2: offset -1 means "the current position", and the
 *    call is readv/writev with per-call flags; another offset below 0 is
 *    EINVAL, one from 0 up ESPIPE. An empty vector returns 0 before the
 *    flags are looked at; an RWF_ flag the running kernel does not know
 *    or that sockets cannot honour is EOPNOTSUPP. RWF_NOWAIT is
 *    MSG_DONTWAIT, RWF_NOSIGNAL (Linux 6.16) MSG_NOSIGNAL; HIPRI, DSYNC,
 *    SYNC, APPEND and NOAPPEND are accepted and mean nothing on a socket.
 */
#ifndef RWF_NOSIGNAL
#define RWF_NOSIGNAL 0x00000100 /* Linux 6.16; glibc 2.36 predates it */
#endif
/* The flags every kernel since 4.16 accepts on a socket. */
#define RWF_ALWAYS (RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND)

/*
 * Whether the running kernel refuses flags on a socket (EOPNOTSUPP).
 * Flags beyond RWF_ALWAYS are asked of the kernel itself, on an
 * unconnected UDP socket: it checks the flags before anything else and
 * then fails without sending (EDESTADDRREQ) or waiting (EAGAIN: reads
 * carry RWF_NOWAIT), and raises no signal.
 */
static bool rwf_refused(int flags, bool write)
{
    if ((flags & ~RWF_ALWAYS) == 0)
        return false;
    int saved = errno;
    int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
        errno = saved;
        return true; /* cannot tell: refuse, as an older kernel would */
    }
    char byte = 0;
    struct iovec one = {&byte, 1};
    ssize_t r = write ? REAL(pwritev2)(probe, &one, 1, -1, flags)
                      : REAL(preadv2)(probe, &one, 1, -1, flags | RWF_NOWAIT);
    bool refused = r < 0 && errno == EOPNOTSUPP;
    REAL(close)(probe);
    errno = saved;
    return refused;
}

/* The checks preadv2/pwritev2 make before any I/O, in the kernel's order.
 * Returns 1 to go on, 0 for an empty vector, -1 with errno. */
static int rw2_check(const struct iovec *iov, int cnt, off_t offset,
                     int flags, bool write)
{
    if (offset != -1) {
        errno = offset < -1 ? EINVAL : ESPIPE;
        return -1;
    }
    ssize_t len = iov_total(iov, cnt);
    if (len <= 0)
        return (int)len;
    if (rwf_refused(flags, write)) {
        errno = EOPNOTSUPP;
        return -1;
    }
    return 1;
}

static ssize_t sock_pwritev2(struct shim_sock *s, int fd,
                             const struct iovec *iov, int cnt, off_t offset,
                             int flags)
{
    int go = rw2_check(iov, cnt, offset, flags, true);
    if (go <= 0)
        return go;
    int mflags = ((flags & RWF_NOWAIT) ? MSG_DONTWAIT : 0) |
                 ((flags & RWF_NOSIGNAL) ? MSG_NOSIGNAL : 0);
    return sock_sendv(s, fd, iov, cnt, mflags);
}

static ssize_t sock_preadv2(struct shim_sock *s, int fd,
                            const struct iovec *iov, int cnt, off_t offset,
                            int flags)
{
    int go = rw2_check(iov, cnt, offset, flags, false);
    if (go <= 0)
        return go;
    return sock_recvv(s, fd, iov, cnt, (flags & RWF_NOWAIT) ? MSG_DONTWAIT
                                                             : 0);
}

/* preadv/pwritev on a socket: the kernel's answer, without a syscall. */
static ssize_t sock_positioned(off_t offset)
{
    errno = offset < 0 ? EINVAL : ESPIPE;
    return -1;
}

static ssize_t shim_pwritev(int fd, const struct iovec *iov, int cnt,
                            off_t offset)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(pwritev)(fd, iov, cnt, offset);
    shim_sock_unref(s);
    return sock_positioned(offset);
}

static ssize_t shim_preadv(int fd, const struct iovec *iov, int cnt,
                           off_t offset)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(preadv)(fd, iov, cnt, offset);
    shim_sock_unref(s);
    return sock_positioned(offset);
}

static ssize_t shim_pwritev2(int fd, const struct iovec *iov, int cnt,
                             off_t offset, int flags)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(pwritev2)(fd, iov, cnt, offset, flags);
    ssize_t r = sock_pwritev2(s, fd, iov, cnt, offset, flags);
    shim_sock_unref(s);
    return r;
}

static ssize_t shim_preadv2(int fd, const struct iovec *iov, int cnt,
                            off_t offset, int flags)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(preadv2)(fd, iov, cnt, offset, flags);
    ssize_t r = sock_preadv2(s, fd, iov, cnt, offset, flags);
    shim_sock_unref(s);
    return r;
}

/* --- MSG_FASTOPEN on a fresh socket ----------------------------------------- */

/*
 * sendto/sendmsg with MSG_FASTOPEN connect an unconnected TCP socket and
 * send in one call. To a TLS destination the shim does what was asked,
 * in two steps: connect through connect()'s own logic (sockets.c), then
 * send the data as TLS. A blocking socket returns after the handshake
 * with the count sent; a non-blocking one gets -1 EINPROGRESS with
 * nothing sent, which is what the kernel answers when it has no Fast Open
 * cookie for the peer (TLS data can never ride in the SYN). *handled is
 * false when the destination is not the shim's: the caller then makes
 * the real call, untouched.
 */
static ssize_t fastopen_sendv(int fd, const struct sockaddr *addr,
                              socklen_t addr_len, const struct iovec *iov,
                              int cnt, int flags, bool *handled)
{
    int rc = shim_connect_for_fastopen(fd, addr, addr_len);
    *handled = rc <= 0;
    if (rc != 0)
        return -1; /* 1: not ours; -1: EINPROGRESS or connect's failure */
    flags &= ~MSG_FASTOPEN;
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL) {
        /* A policy reload between the match and the connect left the
         * destination plain: the data goes as connect() decided. */
        struct msghdr m = {.msg_iov = (struct iovec *)iov,
                           .msg_iovlen = (size_t)cnt};
        return REAL(sendmsg)(fd, &m, flags);
    }
    ssize_t r = sock_sendv(s, fd, iov, cnt, flags);
    shim_sock_unref(s);
    return r;
}

/* --- descriptors handed to another process ---------------------------------- */

/*
 * A managed descriptor sent over SCM_RIGHTS reaches a process that has
 * no TLS state for it (docs/shim.md "SCM_RIGHTS"): one warning per such
 * descriptor, naming it and its endpoint; the call itself is unchanged.
 * The control buffer is read only within msg_controllen, and only when
 * msg_control is set (the kernel reports a bad one with EFAULT).
 */
static void warn_passed_fds(const struct msghdr *msg)
{
    if (msg->msg_control == NULL)
        return;
    const char *end = (const char *)msg->msg_control + msg->msg_controllen;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL;
         c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0))
            continue;
        const unsigned char *data = CMSG_DATA(c);
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        size_t room = (size_t)(end - (const char *)data) / sizeof(int);
        for (size_t i = 0; i < n && i < room; i++) {
            int passed;
            memcpy(&passed, data + i * sizeof(int), sizeof(passed));
            struct shim_sock *s = fdtab_get(passed);
            if (s == NULL)
                continue;
            const struct ss_endpoint *ep = ss_conn_endpoint(s->conn);
            int saved = errno;
            ss_log(SS_LOG_WARNING, "sendmsg: descriptor %d, the TLS "
                   "connection of endpoint '%s' with %s, is passed to "
                   "another process over SCM_RIGHTS: TLS cannot go with it",
                   passed, ep != NULL && ep->name != NULL ? ep->name : "?",
                   s->peer);
            errno = saved;
            shim_sock_unref(s);
        }
    }
}

/* Whether fd is managed now (a look, no reference kept). */
static bool fd_managed(int fd)
{
    struct shim_sock *s = fdtab_get(fd);
    bool managed = s != NULL;
    shim_sock_unref(s);
    return managed;
}

/* sendto: Fast Open is the one case that needs the address. */
ssize_t shim_sendto_any(int fd, const void *buf, size_t len, int flags,
                        const struct sockaddr *addr,
                        socklen_t addr_len)
{
    if ((flags & MSG_FASTOPEN) != 0 && !fd_managed(fd)) {
        struct iovec one = {(void *)buf, len};
        bool handled = false;
        ssize_t r = fastopen_sendv(fd, addr, addr_len, &one, 1, flags,
                                   &handled);
        if (handled)
            return r;
    }
    return shim_sendto(fd, buf, len, flags, addr, addr_len);
}

/* sendmsg: control messages and Fast Open take a look first; a plain
 * sendmsg costs one test. */
ssize_t shim_sendmsg_any(int fd, const struct msghdr *msg, int flags)
{
    if (msg != NULL &&
        (msg->msg_controllen != 0 || (flags & MSG_FASTOPEN) != 0)) {
        if (msg->msg_controllen != 0)
            warn_passed_fds(msg);
        if ((flags & MSG_FASTOPEN) != 0 && !fd_managed(fd)) {
            bool handled = false;
            ssize_t r = fastopen_sendv(fd, msg->msg_name, msg->msg_namelen,
                                       msg->msg_iov, (int)msg->msg_iovlen,
                                       flags, &handled);
            if (handled)
                return r;
        }
    }
    return shim_sendmsg(fd, msg, flags);
}

/*
 * sendmmsg carries control messages per entry, like sendmsg. With
 * MSG_FASTOPEN its first entry connects (the kernel takes the address
 * from it) and the batch ends there: the kernel's Fast Open of a second
 * entry finds the socket connected (EISCONN), so plain TCP sends one
 * entry too.
 */
int shim_sendmmsg_any(int fd, struct mmsghdr *vec, unsigned int vlen,
                      int flags)
{
    for (unsigned int i = 0; vec != NULL && i < vlen && i < UIO_MAXIOV; i++)
        if (vec[i].msg_hdr.msg_controllen != 0)
            warn_passed_fds(&vec[i].msg_hdr);
    if ((flags & MSG_FASTOPEN) != 0 && vec != NULL && vlen > 0 &&
        !fd_managed(fd)) {
        const struct msghdr *m = &vec[0].msg_hdr;
        bool handled = false;
        ssize_t r = fastopen_sendv(fd, m->msg_name, m->msg_namelen,
                                   m->msg_iov, (int)m->msg_iovlen, flags,
                                   &handled);
        if (handled) {
            if (r < 0)
                return -1;
            vec[0].msg_len = (unsigned int)r;
            return 1;
        }
    }
    return shim_sendmmsg(fd, vec, vlen, flags);
}

/* --- the exported names ------------------------------------------------------ */

SS_EXPORT int vdprintf(int fd, const char *restrict fmt, va_list ap)
{
    return shim_vdprintf(fd, fmt, ap);
}

SS_EXPORT int dprintf(int fd, const char *restrict fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = shim_vdprintf(fd, fmt, ap);
    va_end(ap);
    return r;
}

SS_EXPORT int __vdprintf_chk(int fd, int flag, const char *restrict fmt,
                             va_list ap)
{
    return shim___vdprintf_chk(fd, flag, fmt, ap);
}

SS_EXPORT int __dprintf_chk(int fd, int flag, const char *restrict fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = shim___vdprintf_chk(fd, flag, fmt, ap);
    va_end(ap);
    return r;
}

SS_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt,
                          off_t offset)
{
    return shim_pwritev(fd, iov, cnt, offset);
}

SS_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt,
                         off_t offset)
{
    return shim_preadv(fd, iov, cnt, offset);
}

SS_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt,
                           off_t offset, int flags)
{
    return shim_pwritev2(fd, iov, cnt, offset, flags);
}

SS_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt,
                          off_t offset, int flags)
{
    return shim_preadv2(fd, iov, cnt, offset, flags);
}

/* The 64 forms are the same calls where off_t has 64 bits (the assertion
 * above sendfile64). */
SS_EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt,
                            off64_t offset)
{
    return shim_pwritev(fd, iov, cnt, offset);
}

SS_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int cnt,
                           off64_t offset)
{
    return shim_preadv(fd, iov, cnt, offset);
}

SS_EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt,
                              off64_t offset, int flags)
{
    return shim_pwritev2(fd, iov, cnt, offset, flags);
}

SS_EXPORT ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt,
                             off64_t offset, int flags)
{
    return shim_preadv2(fd, iov, cnt, offset, flags);
}

/* glibc's public aliases (GLIBC_2.2.5) of read, write and send: a program
 * linked against one must not bypass the shim. */
SS_EXPORT ssize_t __read(int fd, void *buf, size_t len)
{
    return shim_read(fd, buf, len);
}

SS_EXPORT ssize_t __write(int fd, const void *buf, size_t len)
{
    return shim_write(fd, buf, len);
}

SS_EXPORT ssize_t __send(int fd, const void *buf, size_t len, int flags)
{
    return shim_send(fd, buf, len, flags);
}
