/*
 * sig_probe - what a signal does to a blocked call on a TCP socket: each
 * call is blocked, another thread sends it SIGUSR1 (pthread_kill) after
 * about 200 ms, once with the handler installed without SA_RESTART
 * ("eintr") and once with it ("restart"). Plain C, no TLS code: run over
 * plain TCP it is the reference, under the shim it must print the same.
 *
 *   sig_probe HOST MAIN STALL SLOW LISTEN [CALL ...]
 *
 * The peer is test/integration/sig_peer.py: MAIN takes one command line
 * per connection ("sink ID", "idle ID", "drain ID", "poke ID", "free");
 * STALL is a port where a connect blocks (plain: a listener whose backlog
 * is full; TLS: the handshake is not answered), SLOW accepts and says
 * "hello" (after the handshake, over TLS) only once freed. LISTEN is a
 * free port on HOST where the probe itself listens (a listen endpoint of
 * the policy under the shim). A SIGSEGV handler without SA_RESTART is
 * installed too, as a crash reporter would. CALL names the calls to run
 * (default: all but the last): write send sendmsg write-sndtimeo
 * write-partial connect poll ppoll select pselect epoll_wait epoll_pwait
 * accept accept4 recv-rcvtimeo read-handshake write-handshake (over plain
 * TCP it does not block: the shim's rule, no reference).
 *
 * About 500 ms after the signal the other thread "releases" the call (the
 * peer drains, frees, pokes; a client connects to LISTEN) when the call
 * is still blocked, or always in restart mode. One line per (call, mode):
 *
 *   CALL MODE: RESULT [ERRNO] WHEN [what came after]
 *
 * WHEN is "at-signal" when the call returned before the release,
 * "after-release" when it was still blocked then (so it was restarted,
 * or ignored the signal). Exit 0 unless a setup step failed (then 2).
 */
#include "ev_common.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* When the signal comes, and how long after it the call is released. */
#define SIGNAL_MS 200
#define RELEASE_MS 500
/* How long a socket that takes no more bytes is watched before it is
 * believed full (the peer's receive window may still be opening). */
#define FULL_MS 150
#define SETTLE_MS 300
#define CHUNK (16 * 1024)
#define BLOCKED_WRITE (64 * 1024)
#define PARTIAL_WRITE (8 * 1024 * 1024)
#define PARTIAL_READ (256 * 1024)

static const char *host, *main_port, *stall_port, *slow_port, *listen_port;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    int e = errno;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sig_probe: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", strerror(e));
    exit(2);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static const char *errno_name(int e)
{
    switch (e) {
    case EINTR: return "EINTR";
    case EAGAIN: return "EAGAIN";
    case EALREADY: return "EALREADY";
    case EINPROGRESS: return "EINPROGRESS";
    case EISCONN: return "EISCONN";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case EPROTO: return "EPROTO";
    case ENOTCONN: return "ENOTCONN";
    case EBADF: return "EBADF";
    default: return "errno?";
    }
}

/* --- sockets ---------------------------------------------------------------- */

static struct sockaddr_storage address_of(const char *port, socklen_t *len)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        errno = EINVAL;
        die("cannot resolve %s:%s", host, port);
    }
    struct sockaddr_storage ss;
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return ss;
}

static void send_all(int fd, const char *text)
{
    if (ev_write_all(fd, text, strlen(text)) != 0)
        die("write of a command");
}

/* Reads up to a newline (kept out) or EOF; bounded by the peer. */
static void read_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    while (n + 1 < size) {
        ssize_t r = read(fd, buf + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
}

/* A blocking connection to MAIN (sndbuf > 0: SO_SNDBUF first) that has
 * sent its command line. */
static int main_conn(const char *command, int sndbuf)
{
    socklen_t len;
    struct sockaddr_storage ss = address_of(main_port, &len);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    if (sndbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    while (connect(fd, (struct sockaddr *)&ss, len) != 0)
        if (errno != EINTR)
            die("connect to %s:%s", host, main_port);
    send_all(fd, command);
    return fd;
}

/* One command on a connection of its own; returns the peer's reply line. */
static void control(const char *command, char *reply, size_t size)
{
    int fd = main_conn(command, 0);
    read_line(fd, reply, size);
    close(fd);
}

/* --- the stream a writer sends: byte k of it is k % 251 ---------------- */

static void pattern(char *buf, size_t len, unsigned long long offset)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)((offset + i) % 251);
}

/* Writes without blocking until the socket takes nothing for FULL_MS,
 * and still nothing SETTLE_MS later: a zero window reopens now and then
 * at first (the peer's kernel compacts its queue), and a blocked write
 * that took bytes before the signal would return them instead of EINTR.
 * Returns the bytes taken. */
static unsigned long long fill(int fd)
{
    char buf[CHUNK];
    unsigned long long total = 0;
    int quiet = 0;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    while (quiet < 2) {
        pattern(buf, sizeof(buf), total);
        ssize_t n = write(fd, buf, sizeof(buf));
        if (n > 0) {
            total += (unsigned long long)n;
            quiet = 0;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            die("write while filling");
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        if (poll(&pfd, 1, FULL_MS) == 0) {
            quiet++;
            sleep_ms(SETTLE_MS);
        }
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return total;
}

/* --- the interrupter ---------------------------------------------------- */

static void on_usr1(int sig)
{
    (void)sig;
}

/* A crash reporter's handler: SIGSEGV without SA_RESTART, as most have
 * (and the sanitizers' own). It never runs here; it must not turn a
 * restarted call into EINTR. */
static void on_segv(int sig)
{
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_crash_handler(void)
{
    struct sigaction sa = {.sa_handler = on_segv, .sa_flags = SA_NODEFER};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
}

static void install(bool restart)
{
    struct sigaction sa = {.sa_handler = on_usr1,
                           .sa_flags = restart ? SA_RESTART : 0};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
}

struct probe;
typedef void release_fn(struct probe *p);

/* One (call, mode) run. The interrupter signals `target`, then releases
 * the call when it is still blocked (always in restart mode). */
struct probe {
    const char *call;
    bool restart;
    pthread_t target;
    atomic_bool returned;
    atomic_bool released;
    release_fn *release;
    char id[32];
    char reply[128]; /* what the release's command answered */
    int drain_fd;    /* the drain's connection, for its final line */
};

static void *interrupter(void *arg)
{
    struct probe *p = arg;
    sleep_ms(SIGNAL_MS);
    pthread_kill(p->target, SIGUSR1);
    sleep_ms(RELEASE_MS);
    if (p->restart || !atomic_load(&p->returned)) {
        atomic_store(&p->released, true);
        if (p->release != NULL)
            p->release(p);
    }
    return NULL;
}

static void start(struct probe *p, pthread_t *t)
{
    install(p->restart);
    p->target = pthread_self();
    atomic_store(&p->returned, false);
    atomic_store(&p->released, false);
    p->reply[0] = '\0';
    if (pthread_create(t, NULL, interrupter, p) != 0)
        die("pthread_create");
}

/* Marks the call as returned; says when (before or after the release). */
static const char *returned(struct probe *p)
{
    bool after = atomic_load(&p->released);
    atomic_store(&p->returned, true);
    return after ? "after-release" : "at-signal";
}

static const char *mode(const struct probe *p)
{
    return p->restart ? "restart" : "eintr";
}

/* Prints "CALL MODE: RESULT [ERRNO] WHEN" (no newline). */
static void print_result(const struct probe *p, long rc, int e,
                         const char *when)
{
    printf("%s %s: %ld", p->call, mode(p), rc);
    if (rc < 0)
        printf(" %s", errno_name(e));
    printf(" %s", when);
}

/* --- releases ------------------------------------------------------------ */

/* The peer answers "draining" at once and, on the same connection,
 * "received N ok|bad" once it has read the sink to its EOF. */
static void release_drain(struct probe *p)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "drain %s\n", p->id);
    p->drain_fd = main_conn(cmd, 0);
    read_line(p->drain_fd, p->reply, sizeof(p->reply));
}

static void release_poke(struct probe *p)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "poke %s\n", p->id);
    control(cmd, p->reply, sizeof(p->reply));
}

static void release_free(struct probe *p)
{
    control("free\n", p->reply, sizeof(p->reply));
}

static void release_listen(struct probe *p)
{
    (void)p;
    socklen_t len;
    struct sockaddr_storage ss = address_of(listen_port, &len);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) != 0)
        die("connect to the probe's own listener");
    sleep_ms(100); /* accepted before it goes */
    close(fd);
}

/* --- the calls ------------------------------------------------------------ */

enum write_kind { W_WRITE, W_SEND, W_SENDMSG };

static ssize_t blocked_write(enum write_kind kind, int fd, char *buf,
                             size_t len)
{
    struct iovec iov = {buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    switch (kind) {
    case W_SEND:
        return send(fd, buf, len, 0);
    case W_SENDMSG:
        return sendmsg(fd, &msg, 0);
    default:
        return write(fd, buf, len);
    }
}

/* A write that blocks because the peer reads nothing (small SO_SNDBUF,
 * socket filled first). In restart mode it must go on after the signal
 * and finish once the peer drains, and the peer must get every byte.
 * partial: no fill; one write of PARTIAL_WRITE bytes, of which the peer
 * reads PARTIAL_READ at once and then nothing: the signal finds it with
 * bytes taken, so it returns their count (in both modes), printed as
 * "partial" (how many is the kernel's and the shim's business). */
static void probe_write(struct probe *p, enum write_kind kind, int sndtimeo_s,
                        bool partial)
{
    static int n_sink;
    snprintf(p->id, sizeof(p->id), "w%d", ++n_sink);
    char cmd[64];
    if (partial)
        snprintf(cmd, sizeof(cmd), "sink %s %d\n", p->id, PARTIAL_READ);
    else
        snprintf(cmd, sizeof(cmd), "sink %s\n", p->id);
    int fd = main_conn(cmd, 4096);
    if (sndtimeo_s > 0) {
        struct timeval tv = {sndtimeo_s, 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    unsigned long long sent = partial ? 0 : fill(fd);
    size_t len = partial ? PARTIAL_WRITE : BLOCKED_WRITE;
    static char buf[PARTIAL_WRITE];
    pattern(buf, len, sent);
    p->release = release_drain;
    pthread_t t;
    start(p, &t);
    errno = 0;
    ssize_t n = blocked_write(kind, fd, buf, len);
    int e = errno;
    const char *when = returned(p);
    if (n > 0)
        sent += (unsigned long long)n;
    if (partial && n > 0 && (size_t)n < len)
        printf("%s %s: partial %s", p->call, mode(p), when);
    else
        print_result(p, (long)n, e, when);
    /* The peer drains in every mode, so what was taken is delivered
     * before the EOF (close_notify under the shim) goes after it. */
    pthread_join(t, NULL);
    if (!atomic_load(&p->released))
        release_drain(p);
    shutdown(fd, SHUT_WR);
    char line[128];
    read_line(p->drain_fd, line, sizeof(line));
    close(p->drain_fd);
    unsigned long long got = 0;
    char verdict[16] = "";
    if (sscanf(line, "received %llu %15s", &got, verdict) != 2)
        printf(" peer said '%s'\n", line);
    else
        printf(" peer got all %s\n",
               got == sent && strcmp(verdict, "ok") == 0 ? "yes" : "no");
    close(fd);
}

/* A blocking connect to STALL: plain TCP's SYN finds a full backlog, the
 * shim's handshake finds a peer that does not answer. Restart: once freed
 * the connect must end with 0 and the connection say hello. */
static void probe_connect(struct probe *p)
{
    socklen_t len;
    struct sockaddr_storage ss = address_of(stall_port, &len);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    p->release = release_free;
    pthread_t t;
    start(p, &t);
    errno = 0;
    int rc = connect(fd, (struct sockaddr *)&ss, len);
    int e = errno;
    const char *when = returned(p);
    print_result(p, rc, e, when);
    pthread_join(t, NULL);
    if (rc != 0 && e == EINTR && !p->restart) {
        /* The connect goes on: freed, a connect again (as a program that
         * retries on EINTR) ends with 0 once, then EISCONN. */
        release_free(p);
        errno = 0;
        rc = connect(fd, (struct sockaddr *)&ss, len);
        printf(", again %d", rc);
        if (rc != 0)
            printf(" %s", errno_name(errno));
        errno = 0;
        int third = connect(fd, (struct sockaddr *)&ss, len);
        printf(", again %d %s", third, third != 0 ? errno_name(errno) : "");
    }
    if (rc == 0) {
        char line[64];
        read_line(fd, line, sizeof(line));
        printf(" then read '%s'", line);
    }
    printf("\n");
    close(fd);
}

enum wait_kind { K_POLL, K_PPOLL, K_SELECT, K_PSELECT, K_EPOLL_WAIT,
                 K_EPOLL_PWAIT };

static int blocked_wait(enum wait_kind kind, int fd)
{
    sigset_t mask; /* the thread's own: the calls' mask paths, unchanged */
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct epoll_event ev = {.events = EPOLLIN}, out;
    int ep = -1, rc;
    switch (kind) {
    case K_POLL:
        return poll(&pfd, 1, -1);
    case K_PPOLL:
        return ppoll(&pfd, 1, NULL, &mask);
    case K_SELECT:
        return select(fd + 1, &rd, NULL, NULL, NULL);
    case K_PSELECT:
        return pselect(fd + 1, &rd, NULL, NULL, NULL, &mask);
    default:
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
            die("epoll");
        rc = kind == K_EPOLL_WAIT ? epoll_wait(ep, &out, 1, -1)
                                  : epoll_pwait(ep, &out, 1, -1, &mask);
        int e = errno;
        close(ep);
        errno = e;
        return rc;
    }
}

/* A wait for readability on a connection where the peer sends nothing
 * until poked. signal(7): never restarted, whatever SA_RESTART says. */
static void probe_wait(struct probe *p, enum wait_kind kind)
{
    static int n_idle;
    snprintf(p->id, sizeof(p->id), "i%d", ++n_idle);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "idle %s\n", p->id);
    int fd = main_conn(cmd, 0);
    p->release = release_poke;
    pthread_t t;
    start(p, &t);
    errno = 0;
    int rc = blocked_wait(kind, fd);
    int e = errno;
    const char *when = returned(p);
    print_result(p, rc, e, when);
    printf("\n");
    pthread_join(t, NULL);
    close(fd);
}

/* accept/accept4 on the probe's own listener (a listen endpoint under the
 * shim) with no client until the release connects one. */
static void probe_accept(struct probe *p, bool four)
{
    socklen_t len;
    struct sockaddr_storage ss = address_of(listen_port, &len);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, len) != 0 ||
        listen(lfd, 8) != 0)
        die("listen on %s:%s", host, listen_port);
    p->release = release_listen;
    pthread_t t;
    start(p, &t);
    errno = 0;
    int fd = four ? accept4(lfd, NULL, NULL, SOCK_CLOEXEC)
                  : accept(lfd, NULL, NULL);
    int e = errno;
    const char *when = returned(p);
    print_result(p, fd < 0 ? -1 : 0, e, when);
    printf("%s\n", fd >= 0 ? " (a descriptor)" : "");
    pthread_join(t, NULL);
    if (fd >= 0)
        close(fd);
    close(lfd);
}

/* recv with SO_RCVTIMEO on a connection the peer keeps quiet.
 * signal(7): EINTR even with SA_RESTART when a timeout is set. */
static void probe_recv_timeo(struct probe *p)
{
    static int n_timeo;
    snprintf(p->id, sizeof(p->id), "t%d", ++n_timeo);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "idle %s\n", p->id);
    int fd = main_conn(cmd, 0);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    p->release = release_poke;
    pthread_t t;
    start(p, &t);
    char buf[64];
    errno = 0;
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    int e = errno;
    const char *when = returned(p);
    print_result(p, (long)n, e, when);
    printf("\n");
    pthread_join(t, NULL);
    close(fd);
}

/* A connection to SLOW made with a non-blocking connect (so that under
 * the shim the handshake is still to do), then made blocking. */
static int connect_slow_then_block(void)
{
    socklen_t len;
    struct sockaddr_storage ss = address_of(slow_port, &len);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (struct sockaddr *)&ss, len) != 0 &&
        errno != EINPROGRESS)
        die("non-blocking connect to %s:%s", host, slow_port);
    sleep_ms(50); /* the TCP connect, not the handshake, is done */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

/* A blocking read on a connection to SLOW, which says nothing until
 * freed: over plain TCP a read that waits for data, under the shim one
 * that waits in the TLS handshake (the connect was non-blocking). */
static void probe_read_handshake(struct probe *p)
{
    int fd = connect_slow_then_block();
    p->release = release_free;
    pthread_t t;
    start(p, &t);
    char buf[64];
    errno = 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int e = errno;
    const char *when = returned(p);
    print_result(p, (long)n, e, when);
    if (n > 0) {
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        printf(" read '%s'", buf);
    }
    printf("\n");
    pthread_join(t, NULL);
    close(fd);
}

/* A blocking write after a non-blocking connect to SLOW: over plain TCP
 * it returns at once; under the shim it waits for the handshake, which a
 * signal interrupts as it would a write waiting for buffer space. */
static void probe_write_handshake(struct probe *p)
{
    int fd = connect_slow_then_block();
    p->release = release_free;
    pthread_t t;
    start(p, &t);
    errno = 0;
    ssize_t n = write(fd, "hi\n", 3);
    int e = errno;
    const char *when = returned(p);
    print_result(p, (long)n, e, when);
    pthread_join(t, NULL);
    if (n > 0 && atomic_load(&p->released)) {
        char line[64];
        read_line(fd, line, sizeof(line));
        printf(" then read '%s'", line);
    }
    printf("\n");
    close(fd);
}

/* --- main ----------------------------------------------------------------- */

static void run(const char *call, bool restart)
{
    struct probe p = {.call = call, .restart = restart};
    if (strcmp(call, "write") == 0)
        probe_write(&p, W_WRITE, 0, false);
    else if (strcmp(call, "send") == 0)
        probe_write(&p, W_SEND, 0, false);
    else if (strcmp(call, "sendmsg") == 0)
        probe_write(&p, W_SENDMSG, 0, false);
    else if (strcmp(call, "write-sndtimeo") == 0)
        probe_write(&p, W_WRITE, 10, false);
    else if (strcmp(call, "write-partial") == 0)
        probe_write(&p, W_WRITE, 0, true);
    else if (strcmp(call, "connect") == 0)
        probe_connect(&p);
    else if (strcmp(call, "poll") == 0)
        probe_wait(&p, K_POLL);
    else if (strcmp(call, "ppoll") == 0)
        probe_wait(&p, K_PPOLL);
    else if (strcmp(call, "select") == 0)
        probe_wait(&p, K_SELECT);
    else if (strcmp(call, "pselect") == 0)
        probe_wait(&p, K_PSELECT);
    else if (strcmp(call, "epoll_wait") == 0)
        probe_wait(&p, K_EPOLL_WAIT);
    else if (strcmp(call, "epoll_pwait") == 0)
        probe_wait(&p, K_EPOLL_PWAIT);
    else if (strcmp(call, "accept") == 0)
        probe_accept(&p, false);
    else if (strcmp(call, "accept4") == 0)
        probe_accept(&p, true);
    else if (strcmp(call, "recv-rcvtimeo") == 0)
        probe_recv_timeo(&p);
    else if (strcmp(call, "read-handshake") == 0)
        probe_read_handshake(&p);
    else if (strcmp(call, "write-handshake") == 0)
        probe_write_handshake(&p);
    else {
        fprintf(stderr, "sig_probe: unknown call %s\n", call);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    static const char *all[] = {
        "write", "send", "sendmsg", "write-sndtimeo", "write-partial",
        "connect", "poll",
        "ppoll", "select", "pselect", "epoll_wait", "epoll_pwait", "accept",
        "accept4", "recv-rcvtimeo", "read-handshake"};
    if (argc < 6) {
        fprintf(stderr, "usage: sig_probe HOST MAIN STALL SLOW LISTEN "
                "[CALL ...]\n");
        return 2;
    }
    host = argv[1];
    main_port = argv[2];
    stall_port = argv[3];
    slow_port = argv[4];
    listen_port = argv[5];
    alarm(60);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    install_crash_handler();
    size_t n = argc > 6 ? (size_t)(argc - 6) : sizeof(all) / sizeof(all[0]);
    for (size_t i = 0; i < n; i++) {
        const char *call = argc > 6 ? argv[6 + i] : all[i];
        run(call, false);
        run(call, true);
    }
    return 0;
}
