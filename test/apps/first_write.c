/*
 * first_write - a plain TCP client with no TLS code that times the first
 * request of fresh connections, and reads TCP_NODELAY as the program sees
 * it, for the Nagle cases (docs/design.md, "No record waits behind
 * Nagle's algorithm").
 *
 *   first_write HOST PORT [--rounds N] [--set-nodelay] [--set-before]
 *
 * Each round: a blocking connect, getsockopt(TCP_NODELAY), one write of
 * "ping\n", a read until a newline (an echo or `openssl s_server -rev`
 * answers one line), getsockopt(TCP_NODELAY) again, close. --set-nodelay:
 * after the reply, setsockopt(TCP_NODELAY) to 1 and then to 0, reading it
 * back after each; --set-before: the same right after connect, before the
 * write. One line per round:
 *
 *   round R ms T write W nodelay A B [before: set 1 -> X, 0 -> Y] [set 1 -> X, 0 -> Y]
 *
 * T is connect-to-reply in milliseconds (with the handshake under the
 * shim, which a blocking connect completes); W is write-to-reply, the part
 * a write held behind Nagle's algorithm stretches by the peer's delayed
 * ACK; A and B are the values read before the write and after the reply.
 * Exit: 0 every round got its reply; 1 one failed (with a line on stderr);
 * 2 usage, or the 60 s alarm.
 */
#include "ev_common.h"

#include <netinet/tcp.h>
#include <stdbool.h>
#include <time.h>

static int nodelay_of(int fd)
{
    int on = -1;
    socklen_t len = sizeof(on);
    if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0)
        return -1;
    return on;
}

static int set_nodelay(int fd, int on)
{
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0)
        return -1;
    return nodelay_of(fd);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Connects to host:port (getaddrinfo); -1 when no address answers. */
static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Reads until a newline; 0, or -1 at EOF or on an error. */
static int read_line(int fd)
{
    char c;
    for (;;) {
        ssize_t n = read(fd, &c, 1);
        if (n <= 0)
            return -1;
        if (c == '\n')
            return 0;
    }
}

static bool set_after, set_before;

/* Sets TCP_NODELAY to 1, then to 0, reading it back after each. */
struct set_readings {
    int on, off;
};

static struct set_readings set_both(int fd)
{
    struct set_readings r;
    r.on = set_nodelay(fd, 1);
    r.off = set_nodelay(fd, 0);
    return r;
}

static int one_round(const char *host, const char *port, int round)
{
    double t0 = now_ms();
    int fd = connect_to(host, port);
    if (fd < 0) {
        fprintf(stderr, "round %d: connect: %s\n", round, strerror(errno));
        return -1;
    }
    int before = nodelay_of(fd);
    struct set_readings early = {0, 0};
    if (set_before)
        early = set_both(fd);
    double t_write = now_ms();
    if (write(fd, "ping\n", 5) != 5 || read_line(fd) != 0) {
        fprintf(stderr, "round %d: no reply: %s\n", round, strerror(errno));
        close(fd);
        return -1;
    }
    double t_reply = now_ms();
    int after = nodelay_of(fd);
    printf("round %d ms %.2f write %.2f nodelay %d %d", round, t_reply - t0,
           t_reply - t_write, before, after);
    if (set_before)
        printf(" before: set 1 -> %d, 0 -> %d", early.on, early.off);
    if (set_after) {
        struct set_readings late = set_both(fd);
        printf(" set 1 -> %d, 0 -> %d", late.on, late.off);
    }
    printf("\n");
    fflush(stdout);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: first_write HOST PORT [--rounds N] "
                        "[--set-nodelay] [--set-before]\n");
        return 2;
    }
    int rounds = 1;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--set-nodelay") == 0)
            set_after = true;
        else if (strcmp(argv[i], "--set-before") == 0)
            set_before = true;
        else
            return 2;
    }
    alarm(60);
    for (int r = 1; r <= rounds; r++)
        if (one_round(argv[1], argv[2], r) != 0)
            return 1;
    return 0;
}
