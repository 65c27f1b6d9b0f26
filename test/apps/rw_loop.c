/*
 * rw_loop - the cost of a 1-byte write + read on a descriptor the shim
 * does not manage (issue 9, "Untouched descriptors"). No TLS code.
 *
 *   rw_loop pipe|tcp [COUNT]
 *
 * pipe: a pipe(2); tcp: a loopback TCP connection (127.0.0.1, a port of
 * the kernel's choosing, so no policy endpoint matches it). COUNT (default
 * 10 million) times: write 1 byte on one end, read it on the other.
 * Prints "MODE COUNT ns/call X" where a call is one write or one read.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "rw_loop: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* A connected loopback pair: out[0] reads, out[1] writes. */
static void tcp_pair(int out[2])
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(l, 1) != 0 || getsockname(l, (struct sockaddr *)&a, &len) != 0)
        die("listen");
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) != 0)
        die("connect");
    int s = accept(l, NULL, NULL);
    if (s < 0)
        die("accept");
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    close(l);
    out[0] = s;
    out[1] = c;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "pipe") != 0 &&
                     strcmp(argv[1], "tcp") != 0)) {
        fprintf(stderr, "usage: rw_loop pipe|tcp [COUNT]\n");
        return 2;
    }
    long count = argc > 2 ? atol(argv[2]) : 10000000L;
    int fds[2];
    if (strcmp(argv[1], "pipe") == 0) {
        if (pipe(fds) != 0)
            die("pipe");
    } else {
        tcp_pair(fds);
    }
    char byte = 'x';
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < count; i++) {
        if (write(fds[1], &byte, 1) != 1)
            die("write");
        if (read(fds[0], &byte, 1) != 1)
            die("read");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 +
                (double)(t1.tv_nsec - t0.tv_nsec);
    printf("%s %ld ns/call %.1f\n", argv[1], count, ns / (2.0 * (double)count));
    return 0;
}
