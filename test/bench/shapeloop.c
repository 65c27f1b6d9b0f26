/*
 * shapeloop - what the kernel alone costs a TLS connection: plain TCP
 * carrying the same segments as a secshim connection, with no TLS. Its
 * rate is the floor the new-connection figures are set against beside
 * the library's in-memory rate (hsloop): a TLS handshake needs messages
 * plain TCP never sends, and each is a send, a wake-up and a receive on
 * the other side, whatever does the cryptography.
 *
 *   shapeloop server PORT SCRIPT
 *   shapeloop client HOST PORT SECONDS CLIENTS SCRIPT
 *
 * SCRIPT is the exchange of one connection, a step per word: "c" (the
 * client sends) or "s" (the server sends), then the sizes of that side's
 * send() calls joined by "+", e.g. "c530 s225 c64+23 s287+23 c24 s24"
 * (secshim's resumed TLS 1.3 connection: ClientHello; the server's
 * flight; the client's Finished, then its first byte's record; the
 * session ticket, then the reply's record; the two close_notify).
 * The receiving side reads until it has the step's bytes. The harness
 * (test/bench/benchlib/scenarios.py) holds the scripts and where they
 * were measured.
 *
 * As bench_client connect-for against echo_server: the server takes a
 * thread per connection; the client runs CLIENTS threads, each
 * connecting, running the script and closing in a loop for SECONDS, and
 * prints "connections_per_s R connections N". Both sides set
 * TCP_NODELAY, as secshim does while its records lead the stream.
 * Exit 0, or 1 after a message. Links nothing but libc.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PROGRAM "shapeloop"
#include "bench_server.h"

#define MAX_STEPS 32
#define MAX_SENDS 4
#define MAX_SEND 16384

struct step {
    bool by_client;
    int n_sends;
    size_t sends[MAX_SENDS];
};

static struct step script[MAX_STEPS];
static int n_steps;
static char payload[MAX_SEND]; /* what every send carries: zeros */

static void usage(void)
{
    fprintf(stderr, "usage: shapeloop server PORT SCRIPT\n"
                    "       shapeloop client HOST PORT SECONDS CLIENTS "
                    "SCRIPT\n");
    exit(1);
}

/* "c530 s225 c64+23" into script[]; exits on a malformed word. */
static void parse_script(char *text)
{
    for (char *save = NULL, *w = strtok_r(text, " ", &save); w != NULL;
         w = strtok_r(NULL, " ", &save)) {
        if (n_steps == MAX_STEPS || (w[0] != 'c' && w[0] != 's'))
            usage();
        struct step *st = &script[n_steps++];
        st->by_client = w[0] == 'c';
        for (char *p = w + 1;;) {
            char *end;
            long n = strtol(p, &end, 10);
            if (end == p || n <= 0 || n > MAX_SEND ||
                st->n_sends == MAX_SENDS)
                usage();
            st->sends[st->n_sends++] = (size_t)n;
            if (*end == '\0')
                break;
            if (*end != '+')
                usage();
            p = end + 1;
        }
    }
    if (n_steps == 0)
        usage();
}

/* Each returns false when the connection failed, errno saying why. */
static bool send_all(int fd, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = send(fd, payload + done, n - done, MSG_NOSIGNAL);
        if (r < 0 && errno != EINTR)
            return false;
        if (r > 0)
            done += (size_t)r;
    }
    return true;
}

static bool recv_exactly(int fd, size_t n)
{
    char buf[MAX_SEND * MAX_SENDS];
    size_t done = 0;
    while (done < n) {
        ssize_t r = recv(fd, buf, n - done, 0);
        if (r == 0)
            errno = ECONNRESET; /* the peer closed early */
        if (r == 0 || (r < 0 && errno != EINTR))
            return false;
        if (r > 0)
            done += (size_t)r;
    }
    return true;
}

/* One connection's exchange, as the client or as the server. */
static bool run_script(int fd, bool client)
{
    int on = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0)
        return false;
    for (int i = 0; i < n_steps; i++) {
        const struct step *st = &script[i];
        size_t total = 0;
        for (int k = 0; k < st->n_sends; k++) {
            if (st->by_client == client && !send_all(fd, st->sends[k]))
                return false;
            total += st->sends[k];
        }
        if (st->by_client != client && !recv_exactly(fd, total))
            return false;
    }
    return true;
}

/* ---- server ------------------------------------------------------------ */

static void *serve_one(void *arg)
{
    int fd = (int)(long)arg;
    (void)run_script(fd, false); /* a client that left (the harness's
                                    probe of the port) ends only its own */
    close(fd);
    return NULL;
}

/* ---- client ------------------------------------------------------------ */

static struct addrinfo *resolved;
static double deadline;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *churn(void *arg)
{
    long *done = arg;
    while (now_seconds() < deadline) {
        int fd = socket(resolved->ai_family, SOCK_STREAM, 0);
        if (fd < 0)
            bench_die("socket");
        if (connect(fd, resolved->ai_addr, resolved->ai_addrlen) != 0)
            bench_die("connect");
        if (!run_script(fd, true))
            bench_die("the exchange");
        close(fd);
        ++*done;
    }
    return NULL;
}

static int run_client(const char *host, const char *port, double seconds,
                      int clients)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(host, port, &hints, &resolved);
    if (rc != 0) {
        fprintf(stderr, "shapeloop: %s: %s\n", host, gai_strerror(rc));
        return 1;
    }
    if (clients < 1 || clients > 1024 || seconds <= 0)
        usage();
    pthread_t threads[1024];
    long done[1024] = {0};
    double start = now_seconds();
    deadline = start + seconds;
    for (int i = 0; i < clients; i++)
        if (pthread_create(&threads[i], NULL, churn, &done[i]) != 0)
            bench_die("pthread_create");
    long total = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(threads[i], NULL);
        total += done[i];
    }
    printf("connections_per_s %.1f connections %ld\n",
           (double)total / (now_seconds() - start), total);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "server") == 0) {
        parse_script(argv[3]);
        bench_run_server(argv[2], serve_one);
    }
    if (argc == 7 && strcmp(argv[1], "client") == 0) {
        parse_script(argv[6]);
        return run_client(argv[2], argv[3], atof(argv[4]), atoi(argv[5]));
    }
    usage();
    return 1;
}
