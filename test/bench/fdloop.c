/*
 * fdloop - the cost of a descriptor the shim does not manage: COUNT
 * 1-byte calls in one thread, timed with CLOCK_MONOTONIC: BATCH write()s
 * of one byte on one end, then BATCH read()s of one byte on the other,
 * and again. Links nothing but libc, so that under LD_PRELOAD=libsecshim.so
 * every call goes through the shim's interposed read/write and its "is
 * this descriptor mine" check.
 *
 *   fdloop pipe COUNT   a pipe(2)
 *   fdloop tcp COUNT    a loopback TCP connection to a listener of its own
 *                       on 127.0.0.1, port 0 (an ephemeral port no
 *                       endpoint of the bench policy names). The writer is
 *                       corked (TCP_CORK) during each batch and uncorked
 *                       after it, so that a write() queues its byte
 *                       instead of sending a segment through the loopback
 *                       stack each time: the calls are then cheap enough
 *                       (a few hundred ns) for the shim's cost on them to
 *                       show, and 10 million take seconds, not minutes.
 *                       The two setsockopt calls per batch are timed too.
 *
 * Each batch (BATCH writes and BATCH reads) is timed on its own too.
 * Prints "ns_per_call X calls N median_batch_ns_per_call M": X over the
 * whole run, M the median batch's. On a shared machine another process
 * taking the core lands in some batches and moves X; the median batch is
 * the cost of the calls themselves. Exit 0, or 1 after a message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/samples.h"

/* Bytes written before they are read: well inside a pipe's 64 KiB and a
 * loopback socket's buffers, so no write blocks. */
#define BATCH 1000

static double elapsed_ns(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e9 +
           (double)(b->tv_nsec - a->tv_nsec);
}

static void die(const char *what)
{
    fprintf(stderr, "fdloop: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* A connected loopback TCP pair: fds[0] the client end, fds[1] the
 * accepted end. */
static void tcp_pair(int fds[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) != 0)
        die("listen");
    fds[0] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof(a)) != 0)
        die("connect");
    fds[1] = accept(lfd, NULL, NULL);
    if (fds[1] < 0)
        die("accept");
    close(lfd);
}

static void cork(int fd, int on)
{
    if (setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) != 0)
        die("setsockopt TCP_CORK");
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "pipe") != 0 &&
                      strcmp(argv[1], "tcp") != 0)) {
        fprintf(stderr, "usage: fdloop pipe|tcp COUNT\n");
        return 2;
    }
    long count = atol(argv[2]);
    if (count < 2) {
        fprintf(stderr, "fdloop: COUNT must be at least 2\n");
        return 2;
    }
    alarm(600);
    int tcp = strcmp(argv[1], "tcp") == 0;
    int fds[2]; /* fds[0] is written, fds[1] read */
    if (!tcp) {
        int p[2];
        if (pipe(p) != 0)
            die("pipe");
        fds[0] = p[1];
        fds[1] = p[0];
    } else {
        tcp_pair(fds);
    }
    struct timespec t0, t1, b0, b1;
    char c = 'x';
    size_t batches = 0;
    double *per_call = malloc(sizeof(double) * (size_t)(count / 2 / BATCH + 1));
    if (per_call == NULL)
        die("malloc");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long calls = 0;
    while (calls < count) {
        long n = (count - calls) / 2 < BATCH ? (count - calls) / 2 : BATCH;
        if (n == 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &b0);
        if (tcp)
            cork(fds[0], 1);
        for (long i = 0; i < n; i++)
            if (write(fds[0], &c, 1) != 1)
                die("write");
        if (tcp)
            cork(fds[0], 0); /* sends the batch */
        for (long i = 0; i < n; i++)
            if (read(fds[1], &c, 1) != 1)
                die("read");
        clock_gettime(CLOCK_MONOTONIC, &b1);
        per_call[batches++] = elapsed_ns(&b0, &b1) / (double)(2 * n);
        calls += 2 * n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    qsort(per_call, batches, sizeof(*per_call), compare_double);
    printf("ns_per_call %.1f calls %ld median_batch_ns_per_call %.1f\n",
           elapsed_ns(&t0, &t1) / (double)calls, calls,
           per_call[batches / 2]);
    free(per_call);
    return 0;
}
