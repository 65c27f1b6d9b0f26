/*
 * tlsloop - TLS written into the program: OpenSSL over real TCP in the
 * shapes of the new-connection and latency scenarios, with no shim. It is
 * what a perfect in-process TLS costs on this machine, measured rather
 * than modelled: the library's work (hsloop), the kernel's work for
 * TLS's segments (shapeloop), and what neither loop has: two processes
 * whose threads wake each other, each with its own caches. secshim's
 * figures over tlsloop's are the shim's own share of a connection.
 *
 *   tlsloop server PORT full|resumed CERT KEY CA
 *   tlsloop client HOST PORT full|resumed SECONDS CLIENTS CERT KEY CA
 *   tlsloop pingpong HOST PORT COUNT SIZE CERT KEY CA
 *
 * As bench_client connect-for against echo_server, both under the shim:
 * the server takes a thread per connection and echoes into a 64 KiB
 * thread-local buffer, as echo_server does; the client runs CLIENTS
 * threads, each connecting, handshaking, sending 1 byte and reading the
 * echo, then sending close_notify and closing, in a loop for SECONDS; the
 * server reads the client's close_notify and answers with its own. Both
 * set TCP_NODELAY, as secshim does while its records lead the stream.
 * The TLS settings are bench_tls.h's (secshim's endpoints'); HOST is also
 * the name the client verifies and sends as SNI. full: the server issues
 * no tickets, the client offers no session; resumed: each client thread
 * offers the session of its last connection's ticket.
 * The client prints "connections_per_s R connections N reused U".
 *
 * pingpong is bench_client pingpong with TLS written in, against the same
 * server (full): one connection, then COUNT round trips of SIZE bytes
 * (SSL_write, then SSL_read until SIZE bytes are back), each timed; it
 * prints "rtt_median_us M rtt_p99_us P" as bench_client does. Unlike the
 * server it leaves Nagle on, as bench_client and echo_server do (a
 * ping-pong never has unacknowledged data when it writes).
 * Exit 0, or 1 after a message (any failed connection ends the run).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BENCH_PROGRAM "tlsloop"
#include "../common/samples.h"
#include "bench_server.h"
#include "bench_tls.h"

#define MAX_CLIENTS 1024

static SSL_CTX *ctx;

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: tlsloop server PORT full|resumed CERT KEY CA\n"
                    "       tlsloop client HOST PORT full|resumed SECONDS "
                    "CLIENTS CERT KEY CA\n"
                    "       tlsloop pingpong HOST PORT COUNT SIZE CERT KEY CA\n");
    exit(2);
}

static bool nodelay(int fd)
{
    int on = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == 0;
}

/* ---- server ------------------------------------------------------------ */

/* One connection, as echo_server serves it with TLS written in: the
 * handshake, then an echo into a 64 KiB buffer of the thread's own (as
 * echo_server's, whose pages each new thread touches again) until the
 * client's close_notify, which is answered with ours. A connection that
 * fails ends only itself (the harness's probe of the port is one). */
static void *serve_one(void *arg)
{
    static __thread char buf[64 * 1024];
    int fd = (int)(long)arg;
    SSL *s = SSL_new(ctx);
    size_t n, sent;
    if (s != NULL && nodelay(fd) && SSL_set_fd(s, fd) == 1 &&
        SSL_accept(s) == 1) {
        while (SSL_read_ex(s, buf, sizeof(buf), &n) == 1)
            if (SSL_write_ex(s, buf, n, &sent) != 1)
                break;
        if (SSL_get_error(s, 0) == SSL_ERROR_ZERO_RETURN)
            (void)SSL_shutdown(s);
    }
    SSL_free(s);
    close(fd);
    ERR_clear_error();
    return NULL;
}

/* ---- client ------------------------------------------------------------ */

static struct addrinfo *resolved;
static const char *host;
static bool resume;
static double deadline;

struct churner {
    long done, reused;
};

/* One connection; *sess is the session to offer and gets the new one
 * (resumed mode). Returns whether the handshake resumed. */
static bool one_connection(SSL_SESSION **sess)
{
    int fd = socket(resolved->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, resolved->ai_addr, resolved->ai_addrlen) != 0 ||
        !nodelay(fd))
        bench_die("connect");
    SSL *c = SSL_new(ctx);
    if (c == NULL || SSL_set_fd(c, fd) != 1 ||
        SSL_set_tlsext_host_name(c, host) != 1 || SSL_set1_host(c, host) != 1)
        fail("cannot set up the client SSL");
    if (*sess != NULL && SSL_set_session(c, *sess) != 1)
        fail("cannot offer the session");
    char b = 'x';
    size_t n;
    if (SSL_connect(c) != 1)
        fail("the handshake failed");
    if (SSL_write_ex(c, &b, 1, &n) != 1 || SSL_read_ex(c, &b, 1, &n) != 1)
        fail("the round trip failed");
    bool reused = SSL_session_reused(c);
    if (resume) {
        SSL_SESSION_free(*sess);
        *sess = SSL_get1_session(c);
    }
    (void)SSL_shutdown(c); /* our close_notify; the program closes next */
    SSL_free(c);
    close(fd);
    return reused;
}

static void *churn(void *arg)
{
    struct churner *me = arg;
    SSL_SESSION *sess = NULL;
    while (now_seconds() < deadline) {
        me->reused += one_connection(&sess);
        me->done++;
    }
    SSL_SESSION_free(sess);
    return NULL;
}

/* host:port into resolved, once: the connections need no look-up. */
static void resolve(const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(host, port, &hints, &resolved);
    if (rc != 0) {
        fprintf(stderr, "tlsloop: %s: %s\n", host, gai_strerror(rc));
        exit(1);
    }
}

static int run_client(const char *port, double seconds, int clients)
{
    resolve(port);
    if (clients < 1 || clients > MAX_CLIENTS || seconds <= 0)
        usage();
    alarm((unsigned)seconds + 60);
    static pthread_t threads[MAX_CLIENTS];
    static struct churner churners[MAX_CLIENTS];
    double start = now_seconds();
    deadline = start + seconds;
    for (int i = 0; i < clients; i++)
        if (pthread_create(&threads[i], NULL, churn, &churners[i]) != 0)
            fail("pthread_create");
    long total = 0, reused = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(threads[i], NULL);
        total += churners[i].done;
        reused += churners[i].reused;
    }
    printf("connections_per_s %.1f connections %ld reused %ld\n",
           (double)total / (now_seconds() - start), total, reused);
    return 0;
}

/* ---- pingpong ---------------------------------------------------------- */

static int run_pingpong(const char *port, long count, size_t size)
{
    resolve(port);
    if (count < 1 || size < 1)
        usage();
    alarm(600);
    int fd = socket(resolved->ai_family, SOCK_STREAM, 0);
    SSL *c = SSL_new(ctx);
    if (fd < 0 || connect(fd, resolved->ai_addr, resolved->ai_addrlen) != 0)
        bench_die("connect");
    if (c == NULL || SSL_set_fd(c, fd) != 1 ||
        SSL_set_tlsext_host_name(c, host) != 1 ||
        SSL_set1_host(c, host) != 1 || SSL_connect(c) != 1)
        fail("the handshake failed");
    char *out = malloc(size), *in = malloc(size);
    double *rtt = malloc(sizeof(double) * (size_t)count);
    if (out == NULL || in == NULL || rtt == NULL)
        fail("malloc");
    memset(out, 'p', size);
    for (long i = 0; i < count; i++) {
        double start = now_seconds();
        size_t n, got = 0;
        if (SSL_write_ex(c, out, size, &n) != 1 || n != size)
            fail("SSL_write");
        for (; got < size; got += n)
            if (SSL_read_ex(c, in + got, size - got, &n) != 1)
                fail("SSL_read");
        rtt[i] = (now_seconds() - start) * 1e6;
    }
    (void)SSL_shutdown(c);
    SSL_free(c);
    close(fd);
    print_rtts(rtt, count);
    free(out);
    free(in);
    free(rtt);
    return 0;
}

static bool mode_resumes(const char *mode)
{
    if (strcmp(mode, "full") != 0 && strcmp(mode, "resumed") != 0)
        usage();
    return strcmp(mode, "resumed") == 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN); /* a peer that left fails its connection */
    if (argc == 7 && strcmp(argv[1], "server") == 0) {
        ctx = new_ctx(1, mode_resumes(argv[3]), argv[4], argv[5], argv[6]);
        bench_run_server(argv[2], serve_one);
    }
    if (argc == 10 && strcmp(argv[1], "client") == 0) {
        host = argv[2];
        resume = mode_resumes(argv[4]);
        ctx = new_ctx(0, resume, argv[7], argv[8], argv[9]);
        return run_client(argv[3], atof(argv[5]), atoi(argv[6]));
    }
    if (argc == 9 && strcmp(argv[1], "pingpong") == 0) {
        host = argv[2];
        ctx = new_ctx(0, 0, argv[6], argv[7], argv[8]);
        return run_pingpong(argv[3], atol(argv[4]), (size_t)atol(argv[5]));
    }
    usage();
}
