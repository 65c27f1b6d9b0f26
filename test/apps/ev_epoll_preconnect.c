/*
 * ev_epoll_preconnect - an epoll registration made before connect() and
 * never modified afterwards, read the way nginx reads (its upstream
 * sockets are registered so).
 *
 *   ev_epoll_preconnect HOST PORT [--bytes N] [--read-chunk K]
 *
 * A non-blocking socket joins an epoll set with EPOLLIN|EPOLLOUT|EPOLLET
 * and epoll_data 42 before connect(). It sends N bytes (waiting for an
 * EPOLLOUT edge on EAGAIN) and reads the echo back K bytes per read,
 * taking a short read as "drained" and waiting for the next edge, as
 * nginx does. Prints the usual "ok N bytes sha=..." line; exit 1 on a
 * wrong event or a wait of 10 s without one, 2 on the time bound.
 */
#include "ev_common.h"

#include <sys/epoll.h>

/* Waits for events on the one registration; returns them. */
static uint32_t wait_for(int ep, uint32_t want)
{
    for (;;) {
        struct epoll_event ev;
        int n = epoll_wait(ep, &ev, 1, 10000);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != 1 || ev.data.u64 != 42) {
            fprintf(stderr, "ev_epoll_preconnect: epoll_wait %d (data %llu)"
                    "\n", n, n == 1 ? (unsigned long long)ev.data.u64 : 0);
            exit(1);
        }
        if (ev.events & (want | EPOLLERR | EPOLLHUP))
            return ev.events;
    }
}

int main(int argc, char **argv)
{
    ev_prog = "ev_epoll_preconnect";
    struct ev_client_opts o;
    ev_client_parse(&o, argc, argv);
    if (o.bytes > 1024 * 1024)
        o.bytes = 1024 * 1024;
    ev_client_start(&o, "");
    struct addrinfo *ai = ev_resolve(&o);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int ep = epoll_create1(0);
    struct epoll_event reg = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                              .data.u64 = 42};
    if (fd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &reg) != 0) {
        perror("ev_epoll_preconnect: setup");
        return 1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
        errno != EINPROGRESS) {
        perror("ev_epoll_preconnect: connect");
        return 1;
    }
    freeaddrinfo(ai);
    if (!(wait_for(ep, EPOLLOUT) & EPOLLOUT)) {
        fprintf(stderr, "ev_epoll_preconnect: connect failed\n");
        return 1;
    }

    char *out = malloc(o.bytes), *in = malloc(o.read_chunk);
    struct ev_prng p;
    ev_prng_init(&p);
    ev_prng_fill(&p, out, o.bytes);
    size_t sent = 0;
    struct ev_check c;
    ev_check_init(&c, o.bytes);
    /* Write what the socket takes, read what came (until a short read),
     * and wait for the next edge: the whole echo, on edges alone. */
    while (c.got < o.bytes) {
        while (sent < o.bytes) {
            ssize_t n = write(fd, out + sent, o.bytes - sent);
            if (n < 0 && errno == EAGAIN)
                break;
            if (n <= 0) {
                perror("ev_epoll_preconnect: write");
                return 1;
            }
            sent += (size_t)n;
        }
        for (;;) {
            ssize_t n = read(fd, in, o.read_chunk);
            if (n < 0 && errno == EAGAIN)
                break;
            if (n <= 0 || ev_check_feed(&c, in, (size_t)n) != 0) {
                fprintf(stderr, "ev_epoll_preconnect: read %zd after %llu\n",
                        n, c.got);
                return 1;
            }
            if ((size_t)n < o.read_chunk)
                break; /* nginx: a short read drained the socket */
        }
        if (c.got < o.bytes)
            wait_for(ep, EPOLLIN | EPOLLOUT);
    }
    free(out);
    free(in);
    if (ev_check_done(&c) != 0)
        return 1;
    ev_report_ok(stdout, &c);
    return 0;
}
