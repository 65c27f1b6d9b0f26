/*
 * bench_epoll_server - a lean single-threaded epoll echo server for the
 * memory figure of test/bench/run: it holds many idle connections at the
 * smallest cost of its own, so that what a setup adds per connection
 * (the shim's, a proxy's) stands out. No TLS code.
 *
 *   bench_epoll_server [-4|-6] PORT|0 [--port-file F] [--timeout S]
 *
 * Options as in ev_common.h (--max-conns is not taken: it serves until
 * stopped by PID). Unlike ev_epoll_server (at most 256 connections, a
 * 4 KiB buffer each, every event checked against a list), this keeps no
 * state per connection but the epoll registration itself: epoll_data.fd
 * is the descriptor, and the echo goes through one static buffer. A write
 * that would block waits in poll() for that connection alone (bounded to
 * 10 s, then the connection is dropped): the benchmark's clients send a
 * byte and wait for it, so this never happens in a run, and a server that
 * stalled there would be a figure no one should trust anyway.
 */
#include "ev_common.h"

#include <poll.h>
#include <sys/epoll.h>

enum { MAX_EVENTS = 64, WRITE_WAIT_MS = 10000 };

static char buf[64 * 1024];

/* Writes all of p on a non-blocking socket. Returns 0, or -1 when the
 * peer is gone or would not take it within WRITE_WAIT_MS. */
static int write_all_nb(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, WRITE_WAIT_MS) <= 0)
                return -1;
            continue;
        }
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Echoes what is readable now. Returns 0 to keep the connection, -1 at
 * EOF or on an error (the caller closes it). */
static int serve(int fd)
{
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return -1;
        if (write_all_nb(fd, buf, (size_t)n) != 0)
            return -1;
        if ((size_t)n < sizeof(buf))
            return 0; /* level-triggered: anything left comes back */
    }
}

/* Accepts every pending connection. Returns 0, or -1 on an error that is
 * not about one connection (EMFILE and the like are reported and end the
 * run: a count the server could not hold is not a figure). */
static int accept_all(int epfd, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0 && errno == EAGAIN)
            return 0;
        if (fd < 0) {
            fprintf(stderr, "%s: accept4: %s\n", ev_prog, strerror(errno));
            return -1;
        }
        struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
            fprintf(stderr, "%s: epoll_ctl ADD: %s\n", ev_prog,
                    strerror(errno));
            return -1;
        }
    }
}

int main(int argc, char **argv)
{
    ev_prog = "bench_epoll_server";
    struct ev_server_opts o;
    ev_server_opts_init(&o);
    o.timeout = 3600;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--max-conns") == 0 ||
            strcmp(argv[i], "--once") == 0 ||
            !ev_server_arg(&o, argc, argv, &i))
            ev_server_usage("");
    int lfd = ev_server_start(&o, 1);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (lfd < 0 || epfd < 0)
        return 1;
    struct epoll_event le = {.events = EPOLLIN, .data.fd = lfd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &le) != 0)
        return 1;
    for (;;) {
        struct epoll_event evs[MAX_EVENTS];
        int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "%s: epoll_wait: %s\n", ev_prog, strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                if (accept_all(epfd, lfd) != 0)
                    return 1;
                continue;
            }
            if (serve(fd) != 0)
                close(fd); /* the kernel drops its registration */
        }
    }
}
