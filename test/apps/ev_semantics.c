/*
 * ev_semantics - checks, one by one, that a socket keeps the exact meaning
 * of every call a program can make on it. Plain C, no TLS code: run under
 * the shim against an echo server, each check must give what plain TCP
 * gives.
 *
 *   ev_semantics HOST PORT [--exec-warning] [--refused-port N]
 *
 * The server must echo everything and send nothing of its own (and serve
 * four connections: one check leaves its stream stuck, the last opens two).
 * Each check prints "ok NAME" or "FAIL NAME: what it saw"; the exit status
 * is 0 only when every check passed, 2 on usage or when the alarm (60 s)
 * fires.
 * --exec-warning: at the end, a child process execs /bin/true with the
 * socket inherited (no FD_CLOEXEC), so the shim's exec warning can be
 * checked in its stderr.
 * --refused-port N: a port on HOST where nothing listens (a policy for the
 * shimmed run names it too): a non-blocking connect there fails, and
 * SO_ERROR must give ECONNREFUSED once, then 0, as the kernel does.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* Long enough for any loopback echo, short enough for the suite. */
#define WAIT_MS 5000
/* How long "nothing is readable" is watched before it is believed. */
#define QUIET_MS 300

static int failures;

static void report(const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(const char *name, bool ok, const char *fmt, ...)
{
    if (ok) {
        printf("ok %s\n", name);
        return;
    }
    failures++;
    printf("FAIL %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* The first stream address of host:port, or NULL; freeaddrinfo it. */
static struct addrinfo *resolve(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    return getaddrinfo(host, port, &hints, &res) == 0 ? res : NULL;
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo *res = resolve(host, port);
    if (res == NULL) {
        fprintf(stderr, "ev_semantics: cannot resolve %s\n", host);
        exit(2);
    }
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        fprintf(stderr, "ev_semantics: connect: %s\n", strerror(errno));
        exit(2);
    }
    freeaddrinfo(res);
    return fd;
}

static bool readable_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static bool write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Reads exactly len bytes (blocking socket), waiting at most WAIT_MS for
 * each piece. */
static bool read_exactly(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        if (!readable_within(fd, WAIT_MS))
            return false;
        ssize_t n = read(fd, p, len);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Sends text and reads its echo back; true when it came back intact. */
static bool echo_roundtrip(int fd, const char *text)
{
    char back[256];
    size_t n = strlen(text);
    return write_all(fd, text, n) && read_exactly(fd, back, n) &&
           memcmp(back, text, n) == 0;
}

/* ---- the checks --------------------------------------------------------- */

/* After the handshake the server may have sent session tickets: records
 * that carry no application data must not make the socket readable. */
static void check_quiet_socket(int fd)
{
    report("no-data-not-readable", !readable_within(fd, QUIET_MS),
           "poll reported POLLIN though the peer sent no data");
    int avail = -1;
    report("fionread-empty", ioctl(fd, FIONREAD, &avail) == 0 && avail == 0,
           "FIONREAD gave %d", avail);
    char c;
    errno = 0;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    report("dontwait-eagain", n == -1 && (errno == EAGAIN ||
                                          errno == EWOULDBLOCK),
           "recv(MSG_DONTWAIT) returned %zd, errno %d", n, errno);
}

static void check_peek_waitall_fionread(int fd)
{
    struct iovec iov[3] = {{"peek-", 5}, {"wait", 4}, {"all!", 4}};
    report("writev", writev(fd, iov, 3) == 13, "writev did not take 13");
    report("echo-readable", readable_within(fd, WAIT_MS),
           "no POLLIN for the echo");
    char buf[32] = "";
    ssize_t n = recv(fd, buf, 5, MSG_PEEK);
    report("msg-peek", n > 0 && memcmp(buf, "peek-", (size_t)n) == 0,
           "MSG_PEEK gave %zd bytes '%.*s'", n, (int)(n > 0 ? n : 0), buf);
    int avail = 0;
    report("fionread-data", ioctl(fd, FIONREAD, &avail) == 0 && avail > 0,
           "FIONREAD gave %d with data waiting", avail);
    memset(buf, 0, sizeof(buf));
    n = recv(fd, buf, 13, MSG_WAITALL);
    report("msg-waitall", n == 13 && memcmp(buf, "peek-waitall!", 13) == 0,
           "MSG_WAITALL gave %zd bytes '%.13s'", n, buf);
}

static void check_msg_calls(int fd)
{
    struct iovec out = {"sendmsg!", 8};
    struct msghdr m = {.msg_iov = &out, .msg_iovlen = 1};
    report("sendmsg", sendmsg(fd, &m, 0) == 8, "sendmsg did not take 8");
    char a[4], b[4];
    struct iovec in[2] = {{a, 4}, {b, 4}};
    struct msghdr r = {.msg_iov = in, .msg_iovlen = 2};
    ssize_t got = readable_within(fd, WAIT_MS) ? recvmsg(fd, &r, MSG_WAITALL)
                                               : -1;
    report("recvmsg-waitall", got == 8 && memcmp(a, "send", 4) == 0 &&
                                  memcmp(b, "msg!", 4) == 0,
           "recvmsg(MSG_WAITALL) into two buffers gave %zd bytes", got);

    struct iovec v1 = {"mm1-", 4}, v2 = {"mm2-", 4};
    struct mmsghdr mm[2] = {{.msg_hdr = {.msg_iov = &v1, .msg_iovlen = 1}},
                            {.msg_hdr = {.msg_iov = &v2, .msg_iovlen = 1}}};
    int sent = sendmmsg(fd, mm, 2, 0);
    report("sendmmsg", sent == 2 && mm[0].msg_len == 4 && mm[1].msg_len == 4,
           "sendmmsg sent %d messages", sent);
    char r1[8] = "";
    struct iovec rv = {r1, 8};
    struct mmsghdr rm[1] = {{.msg_hdr = {.msg_iov = &rv, .msg_iovlen = 1}}};
    unsigned total = 0;
    while (total < 8 && readable_within(fd, WAIT_MS)) {
        rv = (struct iovec){r1 + total, 8 - total};
        int k = recvmmsg(fd, rm, 1, MSG_WAITFORONE, NULL);
        if (k != 1)
            break;
        total += rm[0].msg_len;
    }
    report("recvmmsg", total == 8 && memcmp(r1, "mm1-mm2-", 8) == 0,
           "recvmmsg gathered %u bytes", total);

    struct sockaddr_storage from;
    socklen_t fromlen = sizeof(from);
    char t[8] = "";
    report("sendto", sendto(fd, "to-from!", 8, 0, NULL, 0) == 8,
           "sendto did not take 8");
    report("recvfrom", readable_within(fd, WAIT_MS) &&
                           recvfrom(fd, t, 8, MSG_WAITALL,
                                    (struct sockaddr *)&from, &fromlen) == 8 &&
                           memcmp(t, "to-from!", 8) == 0,
           "recvfrom did not give the echo");
}

/* Waits (bounded) until at least n bytes are readable on fd. */
static bool bytes_readable(int fd, int n)
{
    for (int i = 0; i < WAIT_MS / 10; i++) {
        int avail = 0;
        if (ioctl(fd, FIONREAD, &avail) == 0 && avail >= n)
            return true;
        (void)readable_within(fd, 10);
        usleep(10 * 1000);
    }
    return false;
}

/* The flags that are not data reads on a TCP socket keep their meaning
 * (docs/shim.md, "MSG flags"): MSG_ERRQUEUE reads the (empty) error queue,
 * MSG_OOB finds no urgent data, MSG_TRUNC takes bytes without copying. */
static void check_msg_flags(int fd)
{
    char buf[16];
    report("msg-flags-echo", write_all(fd, "errqtrunc-keep", 14) &&
                                 bytes_readable(fd, 14),
           "the echo of 14 bytes did not arrive");
    errno = 0;
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_ERRQUEUE);
    int e1 = errno;
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    errno = 0;
    ssize_t n2 = recvmsg(fd, &m, MSG_ERRQUEUE);
    int e2 = errno;
    report("msg-errqueue", n == -1 && e1 == EAGAIN && n2 == -1 &&
                               e2 == EAGAIN,
           "recv/recvmsg(MSG_ERRQUEUE) gave %zd (errno %d), %zd (errno %d)",
           n, e1, n2, e2);
    errno = 0;
    n = recv(fd, buf, 1, MSG_OOB);
    report("msg-oob-recv", n == -1 && errno == EINVAL,
           "recv(MSG_OOB) without urgent data gave %zd, errno %d", n, errno);
    memset(buf, 'x', sizeof(buf));
    n = recv(fd, buf, 4, MSG_PEEK | MSG_TRUNC);
    report("msg-peek-trunc", n == 4 && memcmp(buf, "xxxx", 4) == 0,
           "recv(MSG_PEEK|MSG_TRUNC, 4) gave %zd", n);
    n = recv(fd, buf, 9, MSG_TRUNC);
    char rest[8] = "";
    bool rest_ok = n == 9 && memcmp(buf, "xxxxxxxxx", 9) == 0 &&
                   read_exactly(fd, rest, 5) && memcmp(rest, "-keep", 5) == 0;
    report("msg-trunc", rest_ok, "recv(MSG_TRUNC, 9) gave %zd, then '%.5s' "
           "(want 9 bytes dropped unseen, then '-keep')", n, rest);
}

/* A failed non-blocking connect: SO_ERROR says why once, then 0. */
static void check_so_error_twice(const char *host, const char *port)
{
    struct addrinfo *res = resolve(host, port);
    if (res == NULL) {
        report("so-error-twice", false, "cannot resolve %s", host);
        return;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int rc = fd < 0 ? -1 : connect(fd, res->ai_addr, res->ai_addrlen);
    int ce = errno;
    freeaddrinfo(res);
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int first = -1, second = -1;
    socklen_t len = sizeof(int);
    if (rc == -1 && ce == EINPROGRESS && poll(&p, 1, WAIT_MS) == 1) {
        (void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &first, &len);
        len = sizeof(int);
        (void)getsockopt(fd, SOL_SOCKET, SO_ERROR, &second, &len);
    }
    report("so-error-twice", first == ECONNREFUSED && second == 0,
           "connect gave %d (errno %d); SO_ERROR gave %d, then %d (want %d, "
           "then 0)", rc, ce, first, second, ECONNREFUSED);
    if (fd >= 0)
        close(fd);
}

/* readv with room for more than 64 KiB (the shim's gather buffer) while
 * 100 KiB are queued: one call returns them all, as plain TCP's does (a
 * shorter return says "drained" to an edge-triggered loop). The receive
 * buffer is raised before connect so that plain TCP can queue them. */
static void check_readv_beyond_gather(const char *host, const char *port)
{
    enum { LEN = 100 * 1024, ELEM = 64 * 1024 };
    struct addrinfo *res = resolve(host, port);
    int fd = res != NULL ? socket(res->ai_family, SOCK_STREAM, 0) : -1;
    int big = 1 << 20;
    bool up = fd >= 0 &&
              setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big)) == 0 &&
              connect(fd, res->ai_addr, res->ai_addrlen) == 0;
    if (res != NULL)
        freeaddrinfo(res);
    static char out[LEN], in[2 * ELEM];
    memset(out, 'r', sizeof(out));
    up = up && write_all(fd, out, sizeof(out));
    int queued = 0;
    for (int i = 0; up && i < WAIT_MS / 10 && queued < LEN; i++) {
        if (ioctl(fd, FIONREAD, &queued) != 0)
            break;
        if (queued < LEN)
            usleep(10000);
    }
    struct iovec iov[2] = {{in, ELEM}, {in + ELEM, ELEM}};
    ssize_t n = up && queued >= LEN ? readv(fd, iov, 2) : -1;
    report("readv-beyond-64k", n == LEN,
           "readv(2 x 64 KiB) with %d bytes queued gave %zd (want %d)",
           queued, n, LEN);
    if (fd >= 0)
        close(fd);
}

static int vdprintf_to(int fd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int vdprintf_to(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vdprintf(fd, fmt, ap);
    va_end(ap);
    return r;
}

/* glibc's fortified dprintf, as -D_FORTIFY_SOURCE=2 calls it. */
extern int __dprintf_chk(int fd, int flag, const char *fmt, ...);

/* dprintf, vdprintf and __dprintf_chk: the formatted count, the bytes
 * echoed; a long line (past any small buffer) too. */
static void check_dprintf(int fd)
{
    char buf[2100] = "";
    int n = dprintf(fd, "dprintf %d!", 42);
    report("dprintf", n == 11 && read_exactly(fd, buf, 11) &&
                          memcmp(buf, "dprintf 42!", 11) == 0,
           "dprintf returned %d, echo '%.11s'", n, buf);
    n = vdprintf_to(fd, "%s-%c", "vdprintf", 'v');
    report("vdprintf", n == 10 && read_exactly(fd, buf, 10) &&
                           memcmp(buf, "vdprintf-v", 10) == 0,
           "vdprintf returned %d", n);
    n = __dprintf_chk(fd, 1, "chk%03d", 7);
    report("dprintf-chk", n == 6 && read_exactly(fd, buf, 6) &&
                              memcmp(buf, "chk007", 6) == 0,
           "__dprintf_chk returned %d", n);
    n = dprintf(fd, "%2000s|", "long");
    report("dprintf-long", n == 2001 && read_exactly(fd, buf, 2001) &&
                               memcmp(buf + 1996, "long|", 5) == 0,
           "a 2001-byte dprintf returned %d", n);
    report("dprintf-empty", dprintf(fd, "%s", "") == 0,
           "an empty dprintf did not return 0");
}

/* The positioned vector calls on a socket, as the kernel answers them. */
static void check_preadv_pwritev(int fd)
{
    char a[8] = "pwrite", b[8] = "v2!";
    struct iovec out[2] = {{a, 6}, {b, 3}};
    errno = 0;
    ssize_t n = pwritev2(fd, out, 2, -1, 0);
    char buf[16] = "";
    report("pwritev2-current", n == 9 && read_exactly(fd, buf, 9) &&
                                   memcmp(buf, "pwritev2!", 9) == 0,
           "pwritev2(offset -1) gave %zd, errno %d", n, errno);
    n = pwritev2(fd, out, 2, -1, RWF_NOWAIT);
    report("pwritev2-nowait", n == 9 && read_exactly(fd, buf, 9),
           "pwritev2(RWF_NOWAIT) gave %zd, errno %d", n, errno);
    struct iovec in[2] = {{buf, 4}, {buf + 4, 4}};
    write_all(fd, "preadv2!", 8);
    n = readable_within(fd, WAIT_MS) ? preadv2(fd, in, 2, -1, 0) : -1;
    report("preadv2-current", n > 0 && memcmp(buf, "preadv2!", (size_t)n) == 0,
           "preadv2(offset -1) gave %zd", n);
    if (n > 0 && n < 8)
        read_exactly(fd, buf, (size_t)(8 - n));
    errno = 0;
    n = preadv2(fd, in, 2, -1, RWF_NOWAIT);
    report("preadv2-nowait-eagain", n == -1 && errno == EAGAIN,
           "preadv2(RWF_NOWAIT) on an empty socket gave %zd, errno %d", n,
           errno);
    struct { const char *name; ssize_t r; int want; } refused[] = {
        {"pwritev2-offset-espipe", pwritev2(fd, out, 2, 0, 0), ESPIPE},
        {"pwritev2-offset-einval", pwritev2(fd, out, 2, -2, 0), EINVAL},
        {"preadv2-offset-espipe", preadv2(fd, in, 2, 5, 0), ESPIPE},
        {"pwritev2-flags-eopnotsupp",
         pwritev2(fd, out, 2, -1, (int)0x80000000u), EOPNOTSUPP},
        {"pwritev-espipe", pwritev(fd, out, 2, 0), ESPIPE},
        {"pwritev-einval", pwritev(fd, out, 2, -1), EINVAL},
        {"preadv-espipe", preadv(fd, in, 2, 0), ESPIPE},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        report(refused[i].name, refused[i].r == -1,
               "returned %zd instead of -1", refused[i].r);
    /* errno is checked one call at a time: the table above ran them all. */
    errno = 0;
    report("pwritev2-errno-espipe",
           pwritev2(fd, out, 2, 0, 0) == -1 && errno == ESPIPE,
           "errno %d", errno);
    errno = 0;
    report("pwritev2-errno-einval",
           pwritev2(fd, out, 2, -2, 0) == -1 && errno == EINVAL,
           "errno %d", errno);
    errno = 0;
    report("pwritev2-errno-eopnotsupp",
           pwritev2(fd, out, 2, -1, (int)0x80000000u) == -1 &&
               errno == EOPNOTSUPP,
           "errno %d", errno);
    errno = 0;
    report("pwritev-errno-einval",
           pwritev(fd, out, 2, -1) == -1 && errno == EINVAL, "errno %d",
           errno);
    struct iovec none = {a, 0};
    report("pwritev2-empty-bad-flags",
           pwritev2(fd, &none, 1, -1, (int)0x80000000u) == 0,
           "an empty vector with unknown flags did not return 0");
    report("quiet-after-refusals", !readable_within(fd, QUIET_MS),
           "a refused call sent something");
}

static void check_sendfile_splice(int fd)
{
    char path[] = "/tmp/ev_semantics-XXXXXX";
    int file = mkstemp(path);
    if (file < 0 || write(file, "0123456789abcdef", 16) != 16) {
        report("sendfile", false, "cannot make a temporary file");
        return;
    }
    unlink(path);
    off_t off = 4;
    ssize_t n = sendfile(fd, file, &off, 6);
    char buf[16] = "";
    report("sendfile-offset", n == 6 && off == 10 && read_exactly(fd, buf, 6) &&
                                  memcmp(buf, "456789", 6) == 0,
           "sendfile sent %zd, offset now %ld, echo '%.6s'", n, (long)off,
           buf);
    lseek(file, 10, SEEK_SET);
    n = sendfile(fd, file, NULL, 6);
    report("sendfile-file-offset",
           n == 6 && lseek(file, 0, SEEK_CUR) == 16 &&
               read_exactly(fd, buf, 6) && memcmp(buf, "abcdef", 6) == 0,
           "sendfile from the file offset sent %zd", n);
    close(file);

    int p[2];
    if (pipe(p) != 0 || write(p[1], "spliced!", 8) != 8) {
        report("splice", false, "cannot make a pipe");
        return;
    }
    n = splice(p[0], NULL, fd, NULL, 8, 0);
    report("splice-to-socket", n == 8, "splice pipe->socket gave %zd", n);
    ssize_t got = 0;
    while (got < 8 && readable_within(fd, WAIT_MS)) {
        ssize_t k = splice(fd, NULL, p[1], NULL, (size_t)(8 - got), 0);
        if (k <= 0)
            break;
        got += k;
    }
    memset(buf, 0, sizeof(buf));
    report("splice-from-socket",
           got == 8 && read(p[0], buf, 8) == 8 && memcmp(buf, "spliced!", 8) == 0,
           "splice socket->pipe gave %zd bytes '%.8s'", got, buf);
    close(p[0]);
    close(p[1]);
}

/* File status flags set before connect() stay the socket's after it (the
 * shim moves them to the stand-in it puts in the socket's place): a rare
 * one (O_APPEND, which TCP ignores) with a blocking connect, and
 * O_NONBLOCK given to socket() with a connect that is still under way. */
static void check_flags_kept_over_connect(const char *host, const char *port)
{
    struct addrinfo *res = resolve(host, port);
    if (res == NULL) {
        report("flags-kept-append", false, "cannot resolve %s", host);
        report("flags-kept-nonblock", false, "cannot resolve %s", host);
        return;
    }
    char buf[8];
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    bool set = fd >= 0 && fcntl(fd, F_SETFL, O_APPEND) == 0;
    bool connected = set && connect(fd, res->ai_addr, res->ai_addrlen) == 0;
    int fl = connected ? fcntl(fd, F_GETFL) : -1;
    report("flags-kept-append",
           fl >= 0 && (fl & O_APPEND) && !(fl & O_NONBLOCK) &&
               write_all(fd, "append", 6) && read_exactly(fd, buf, 6) &&
               memcmp(buf, "append", 6) == 0,
           "F_GETFL after connect gave %#x (set %d, connected %d)", fl, set,
           connected);
    if (fd >= 0)
        close(fd);

    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int rc = fd >= 0 ? connect(fd, res->ai_addr, res->ai_addrlen) : -1;
    bool pending = rc == 0 || errno == EINPROGRESS;
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    bool writable = pending && poll(&p, 1, WAIT_MS) == 1;
    fl = writable ? fcntl(fd, F_GETFL) : -1;
    ssize_t n = writable ? recv(fd, buf, sizeof(buf), 0) : 0;
    report("flags-kept-nonblock",
           fl >= 0 && (fl & O_NONBLOCK) && n == -1 &&
               (errno == EAGAIN || errno == EWOULDBLOCK),
           "F_GETFL after connect gave %#x, a read of nothing %zd (%s)", fl,
           n, strerror(errno));
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
}

static void check_flags_and_options(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    report("nonblocking-on", fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 &&
                                 (fcntl(fd, F_GETFL) & O_NONBLOCK),
           "F_SETFL O_NONBLOCK did not stick");
    char c;
    errno = 0;
    ssize_t n = read(fd, &c, 1);
    report("nonblocking-eagain", n == -1 && errno == EAGAIN,
           "read on an empty non-blocking socket: %zd, errno %d", n, errno);
    int off = 0;
    report("fionbio-off", ioctl(fd, FIONBIO, &off) == 0 &&
                              !(fcntl(fd, F_GETFL) & O_NONBLOCK),
           "FIONBIO 0 did not clear O_NONBLOCK");

    int one = 1, v = 0;
    socklen_t len = sizeof(v);
    report("tcp-nodelay",
           setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0 &&
               getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 && v,
           "TCP_NODELAY did not round-trip");
    v = 0;
    len = sizeof(v);
    report("so-keepalive",
           setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) == 0 &&
               getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len) == 0 && v,
           "SO_KEEPALIVE did not round-trip");
    int err = -1;
    len = sizeof(err);
    report("so-error-zero",
           getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0,
           "SO_ERROR gave %d on a healthy connection", err);
    struct sockaddr_storage a, b;
    socklen_t la = sizeof(a), lb = sizeof(b);
    report("names", getsockname(fd, (struct sockaddr *)&a, &la) == 0 &&
                        getpeername(fd, (struct sockaddr *)&b, &lb) == 0 &&
                        a.ss_family == b.ss_family,
           "getsockname/getpeername failed");
}

/* Returns the descriptor to go on with. */
static int check_dup_family(int fd)
{
    int d = dup(fd);
    report("dup-after-close", d >= 0 && close(fd) == 0 &&
                                  echo_roundtrip(d, "through a dup"),
           "I/O through a dup after closing the original failed");
    int high = dup3(d, 77, O_CLOEXEC);
    report("dup3-cloexec", high == 77 && (fcntl(77, F_GETFD) & FD_CLOEXEC) &&
                               echo_roundtrip(77, "through dup3"),
           "dup3 onto 77 with O_CLOEXEC failed");
    int f = fcntl(d, F_DUPFD_CLOEXEC, 100);
    report("f-dupfd-cloexec", f >= 100 && close(d) == 0 && close(77) == 0 &&
                                  echo_roundtrip(f, "through F_DUPFD"),
           "F_DUPFD_CLOEXEC failed");
    return f;
}

static void check_epoll(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT,
                             .data.u64 = 0xfeedf00dULL};
    report("epoll-add", ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0,
           "EPOLL_CTL_ADD failed");
    struct epoll_event got[4];
    report("epoll-quiet", epoll_wait(ep, got, 4, QUIET_MS) == 0,
           "an event with no data sent");
    write_all(fd, "oneshot", 7);
    int n = epoll_wait(ep, got, 4, WAIT_MS);
    report("epoll-data", n == 1 && got[0].data.u64 == 0xfeedf00dULL &&
                             (got[0].events & EPOLLIN),
           "epoll_wait gave %d events, data %llx", n,
           n > 0 ? (unsigned long long)got[0].data.u64 : 0ULL);
    report("epoll-oneshot-disarmed", epoll_wait(ep, got, 4, QUIET_MS) == 0,
           "a disarmed EPOLLONESHOT registration reported again");
    ev.events = EPOLLIN | EPOLLONESHOT;
    n = epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == 0
            ? epoll_wait(ep, got, 4, WAIT_MS)
            : -1;
    report("epoll-oneshot-rearmed", n == 1, "re-armed: %d events", n);
    char buf[8];
    report("epoll-read", read_exactly(fd, buf, 7) && memcmp(buf, "oneshot", 7) == 0,
           "the echo did not come back");
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    write_all(fd, "deleted", 7);
    report("epoll-del", epoll_wait(ep, got, 4, QUIET_MS) == 0,
           "a deleted registration reported");
    read_exactly(fd, buf, 7);
    struct epoll_event ex = {.events = EPOLLIN | EPOLLEXCLUSIVE};
    report("epoll-exclusive", epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ex) == 0,
           "EPOLLEXCLUSIVE registration refused: %s", strerror(errno));
    close(ep);
}

/* ---- timeouts and signals: the kernel's rules, whoever does the I/O ---- */

static void set_timeout(int fd, int opt, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

static void on_usr1(int sig)
{
    (void)sig;
}

/* What the interrupter thread does: signal the reader, then (for the
 * SA_RESTART case) send the bytes the restarted read must return. */
struct interrupter {
    pthread_t target;
    int fd;
    const char *then_send; /* NULL: nothing */
};

static void *interrupt_main(void *arg)
{
    const struct interrupter *it = arg;
    usleep(200 * 1000); /* let the reader block first; not a time check */
    pthread_kill(it->target, SIGUSR1);
    if (it->then_send != NULL) {
        usleep(100 * 1000);
        write_all(it->fd, it->then_send, strlen(it->then_send));
    }
    return NULL;
}

/* A blocking read interrupted by a handler installed with or without
 * SA_RESTART: EINTR without it, the data with it. */
static void check_eintr(int fd, bool restart)
{
    struct sigaction sa = {.sa_handler = on_usr1,
                           .sa_flags = restart ? SA_RESTART : 0};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    struct interrupter it = {pthread_self(), fd, restart ? "restart" : NULL};
    pthread_t t;
    if (pthread_create(&t, NULL, interrupt_main, &it) != 0) {
        report(restart ? "sa-restart" : "eintr", false, "no thread");
        return;
    }
    char buf[16] = "";
    errno = 0;
    ssize_t n = read(fd, buf, sizeof(buf));
    pthread_join(t, NULL);
    if (restart) {
        report("sa-restart", n > 0 && memcmp(buf, "restart", (size_t)n) == 0,
               "read gave %zd (errno %d) instead of the data", n, errno);
        if (n > 0 && n < 7)
            read_exactly(fd, buf, (size_t)(7 - n));
    } else {
        report("eintr", n == -1 && errno == EINTR,
               "read gave %zd, errno %d, expected -1 EINTR", n, errno);
    }
}

static void check_timeouts(int fd)
{
    set_timeout(fd, SO_RCVTIMEO, 200);
    char c;
    errno = 0;
    ssize_t n = read(fd, &c, 1);
    report("so-rcvtimeo", n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK),
           "read past SO_RCVTIMEO gave %zd, errno %d", n, errno);
    set_timeout(fd, SO_RCVTIMEO, 0);
    check_eintr(fd, false);
    check_eintr(fd, true);
}

/* Last: a write that cannot finish because nobody reads the echo. With
 * SO_SNDTIMEO a blocking write returns the part it took. */
static void check_sndtimeo(int fd)
{
    size_t len = 64u << 20;
    char *big = calloc(1, len);
    set_timeout(fd, SO_SNDTIMEO, 300);
    errno = 0;
    ssize_t n = big != NULL ? write(fd, big, len) : -2;
    report("so-sndtimeo-partial", n > 0 && (size_t)n < len,
           "write of 64 MiB nobody reads gave %zd, errno %d", n, errno);
    free(big);
}

static void check_half_close(int fd)
{
    char c;
    report("shutdown-wr", shutdown(fd, SHUT_WR) == 0 &&
                              readable_within(fd, WAIT_MS) &&
                              read(fd, &c, 1) == 0,
           "no EOF after shutdown(SHUT_WR) to an echo server");
}

/* A child execs with the socket inherited (no FD_CLOEXEC on the dup). */
static void exec_with_inherited_socket(int fd)
{
    int inherited = dup(fd);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    report("exec-child", pid > 0 && waitpid(pid, &status, 0) == pid &&
                             WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "the exec'd child did not run");
    close(inherited);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: ev_semantics HOST PORT [--exec-warning] "
                "[--refused-port N]\n");
        return 2;
    }
    bool exec_warning = false;
    const char *refused_port = NULL;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--exec-warning") == 0)
            exec_warning = true;
        else if (strcmp(argv[i], "--refused-port") == 0 && i + 1 < argc)
            refused_port = argv[++i];
    }
    alarm(60);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int fd = connect_to(argv[1], argv[2]);
    check_quiet_socket(fd);
    check_peek_waitall_fionread(fd);
    check_msg_calls(fd);
    check_msg_flags(fd);
    check_dprintf(fd);
    check_preadv_pwritev(fd);
    check_sendfile_splice(fd);
    check_flags_and_options(fd);
    fd = check_dup_family(fd);
    check_epoll(fd);
    check_timeouts(fd);
    if (exec_warning)
        exec_with_inherited_socket(fd);
    check_half_close(fd);
    close(fd);
    /* A second connection for the check that leaves its stream stuck. */
    fd = connect_to(argv[1], argv[2]);
    check_sndtimeo(fd);
    close(fd);
    check_flags_kept_over_connect(argv[1], argv[2]);
    check_readv_beyond_gather(argv[1], argv[2]);
    if (refused_port != NULL)
        check_so_error_twice(argv[1], refused_port);
    printf("%s: %d checks failed\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
