/*
 * ev_early_shutdown - a non-blocking client that writes its request at
 * once, before anything tells it the connection is ready, half-closes
 * with shutdown(SHUT_WR), and then reads the whole answer (HTTP/1.0 or
 * `nc -N` style). Plain C, no TLS code.
 *
 *   ev_early_shutdown HOST PORT
 *
 * Against an echo server it must get its request back; it prints
 * "ok echo of N bytes" and exits 0, else says what it got and exits 1
 * (2: usage, or the 30 s alarm).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char request[] = "request written before the handshake, "
                              "then shutdown(SHUT_WR)";

/* Reads until EOF into buf (at most len - 1 bytes), waiting with poll at
 * most 5 s for each piece. Returns the count, or -1 on an error. */
static ssize_t read_to_eof(int fd, char *buf, size_t len)
{
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            return -1;
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n == 0)
            break;
        if (n < 0 && errno == EAGAIN)
            continue;
        if (n < 0) {
            perror("ev_early_shutdown: read");
            return -1;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    return (ssize_t)got;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ev_early_shutdown HOST PORT\n");
        return 2;
    }
    alarm(30);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(argv[1], argv[2], &hints, &res) != 0)
        return 2;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 &&
        errno != EINPROGRESS) {
        perror("ev_early_shutdown: connect");
        return 1;
    }
    freeaddrinfo(res);
    /* Give TCP a moment so the write is not refused with EAGAIN; the
     * point is to write before waiting for writability. */
    usleep(20 * 1000);
    ssize_t w = write(fd, request, strlen(request));
    if (w != (ssize_t)strlen(request) || shutdown(fd, SHUT_WR) != 0) {
        fprintf(stderr, "ev_early_shutdown: write %zd / shutdown: %s\n", w,
                strerror(errno));
        return 1;
    }
    char echo[256];
    ssize_t got = read_to_eof(fd, echo, sizeof(echo));
    close(fd);
    if (got != (ssize_t)strlen(request) || strcmp(echo, request) != 0) {
        fprintf(stderr, "ev_early_shutdown: got %zd bytes back: '%s'\n", got,
                got > 0 ? echo : "");
        return 1;
    }
    printf("ok echo of %zd bytes\n", got);
    return 0;
}
