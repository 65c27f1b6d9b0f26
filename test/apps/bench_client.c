/*
 * bench_client - a plaintext load generator for test/bench/run (no TLS
 * code: under LD_PRELOAD the shim supplies TLS, under stunnel/socat the
 * proxy does). It talks to an echo server and prints one line of figures.
 *
 *   bench_client HOST PORT throughput BYTES       full duplex: one thread
 *                                                 writes BYTES in 64 KiB
 *                                                 writes, the other reads
 *                                                 the echo; prints MiB/s
 *   bench_client HOST PORT pingpong COUNT SIZE    COUNT round trips of SIZE
 *                                                 bytes; prints the median
 *                                                 and p99 in microseconds
 *   bench_client HOST PORT connect COUNT          COUNT sequential connects,
 *                                                 each with a 1-byte round
 *                                                 trip; prints connections/s
 *   bench_client HOST PORT hold COUNT             opens COUNT connections,
 *                                                 does one round trip on
 *                                                 each, prints "held", then
 *                                                 waits for stdin to close
 *
 * Modes added for issue 9 (the defaults above are unchanged):
 *
 *   bench_client HOST PORT connect-for SECONDS CLIENTS
 *                             CLIENTS threads, each connecting, making a
 *                             1-byte round trip and closing in a loop for
 *                             SECONDS; prints connections/s over all and
 *                             the count. HOST is resolved once.
 *   bench_client HOST PORT hold-grow COUNT CLIENTS
 *                             opens COUNT connections, CLIENTS threads at a
 *                             time, one round trip on each, and prints
 *                             "held COUNT"; then reads a line from stdin:
 *                             a larger total opens more the same way and
 *                             prints "held TOTAL"; "fork M" forks M times
 *                             one after the other, each child exiting at
 *                             once, and prints "fork_us F cycle_us C held
 *                             N": F the median time fork() took to return
 *                             in this process, C the median from the fork
 *                             to waitpid's return (the child's side, its
 *                             exit included), in microseconds, with N
 *                             connections open; EOF or anything else
 *                             closes them all and exits
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/samples.h"

#define IO_CHUNK (64 * 1024)

static const char *host;
static const char *port;

static void die(const char *what)
{
    fprintf(stderr, "bench_client: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_once(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "bench_client: %s: %s\n", host, gai_strerror(rc));
        exit(1);
    }
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0)
        die("connect");
    freeaddrinfo(res);
    return fd;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("write");
        buf += n;
        len -= (size_t)n;
    }
}

static void read_exactly(int fd, char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            fprintf(stderr, "bench_client: unexpected EOF\n");
            exit(1);
        }
        if (n < 0)
            die("read");
        buf += n;
        len -= (size_t)n;
    }
}

struct writer_args {
    int fd;
    uint64_t bytes;
};

static void *writer_main(void *p)
{
    const struct writer_args *a = p;
    static char block[IO_CHUNK];
    memset(block, 'x', sizeof(block));
    for (uint64_t left = a->bytes; left > 0;) {
        size_t n = left < sizeof(block) ? (size_t)left : sizeof(block);
        write_all(a->fd, block, n);
        left -= n;
    }
    return NULL;
}

static int run_throughput(uint64_t bytes)
{
    int fd = connect_once();
    struct writer_args args = {fd, bytes};
    pthread_t writer;
    double start = now_seconds();
    if (pthread_create(&writer, NULL, writer_main, &args) != 0)
        die("pthread_create");
    static char buf[IO_CHUNK];
    for (uint64_t got = 0; got < bytes;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("read");
        got += (uint64_t)n;
    }
    double elapsed = now_seconds() - start;
    pthread_join(writer, NULL);
    close(fd);
    printf("throughput_mib_s %.1f\n", (double)bytes / elapsed / 1048576.0);
    return 0;
}

static int run_pingpong(long count, size_t size)
{
    int fd = connect_once();
    char *out = malloc(size), *in = malloc(size);
    double *rtt = malloc(sizeof(double) * (size_t)count);
    if (out == NULL || in == NULL || rtt == NULL)
        die("malloc");
    memset(out, 'p', size);
    for (long i = 0; i < count; i++) {
        double start = now_seconds();
        write_all(fd, out, size);
        read_exactly(fd, in, size);
        rtt[i] = (now_seconds() - start) * 1e6;
    }
    close(fd);
    print_rtts(rtt, count);
    free(out);
    free(in);
    free(rtt);
    return 0;
}

static int run_connect(long count)
{
    double start = now_seconds();
    for (long i = 0; i < count; i++) {
        int fd = connect_once();
        char c = 'c';
        write_all(fd, &c, 1);
        read_exactly(fd, &c, 1);
        close(fd);
    }
    printf("connections_per_s %.1f\n", (double)count / (now_seconds() - start));
    return 0;
}

static int run_hold(long count)
{
    int *fds = malloc(sizeof(int) * (size_t)count);
    if (fds == NULL)
        die("malloc");
    for (long i = 0; i < count; i++) {
        fds[i] = connect_once();
        char c = 'h';
        write_all(fds[i], &c, 1);
        read_exactly(fds[i], &c, 1);
    }
    printf("held %ld\n", count);
    fflush(stdout);
    char c;
    while (read(STDIN_FILENO, &c, 1) > 0)
        ;
    for (long i = 0; i < count; i++)
        close(fds[i]);
    free(fds);
    return 0;
}

/* ---- connect-for: concurrent connection churn ---- */

static struct addrinfo *resolved;
static double churn_deadline;

static void *churn_main(void *arg)
{
    long *done = arg;
    while (now_seconds() < churn_deadline) {
        int fd = socket(resolved->ai_family, SOCK_STREAM, 0);
        if (fd < 0)
            die("socket");
        if (connect(fd, resolved->ai_addr, resolved->ai_addrlen) != 0)
            die("connect");
        char c = 'c';
        write_all(fd, &c, 1);
        read_exactly(fd, &c, 1);
        close(fd);
        ++*done;
    }
    return NULL;
}

static int run_connect_for(double seconds, int clients)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    int rc = getaddrinfo(host, port, &hints, &resolved);
    if (rc != 0) {
        fprintf(stderr, "bench_client: %s: %s\n", host, gai_strerror(rc));
        return 1;
    }
    if (clients < 1 || clients > 1024 || seconds <= 0) {
        fprintf(stderr, "bench_client: connect-for SECONDS CLIENTS\n");
        return 2;
    }
    pthread_t *t = calloc((size_t)clients, sizeof(*t));
    long *done = calloc((size_t)clients, sizeof(*done));
    if (t == NULL || done == NULL)
        die("calloc");
    double start = now_seconds();
    churn_deadline = start + seconds;
    for (int i = 0; i < clients; i++)
        if (pthread_create(&t[i], NULL, churn_main, &done[i]) != 0)
            die("pthread_create");
    long total = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(t[i], NULL);
        total += done[i];
    }
    /* The last connection of each thread may end after the deadline: the
     * rate is over the time they really took. */
    double elapsed = now_seconds() - start;
    printf("connections_per_s %.1f connections %ld\n",
           (double)total / elapsed, total);
    freeaddrinfo(resolved);
    free(t);
    free(done);
    return 0;
}

/* ---- hold-grow: many idle connections, several openers at a time ---- */

struct opener {
    int *fds;
    long from, to; /* this thread opens fds[from..to) */
};

static void *opener_main(void *arg)
{
    const struct opener *o = arg;
    for (long i = o->from; i < o->to; i++) {
        o->fds[i] = connect_once();
        char c = 'h';
        write_all(o->fds[i], &c, 1);
        read_exactly(o->fds[i], &c, 1);
    }
    return NULL;
}

/* Opens fds[from..to) with `clients` threads. */
static void open_range(int *fds, long from, long to, int clients)
{
    struct opener o[64];
    pthread_t t[64];
    if (clients > 64)
        clients = 64;
    long n = to - from;
    for (int i = 0; i < clients; i++) {
        o[i] = (struct opener){fds, from + n * i / clients,
                               from + n * (i + 1) / clients};
        if (pthread_create(&t[i], NULL, opener_main, &o[i]) != 0)
            die("pthread_create");
    }
    for (int i = 0; i < clients; i++)
        pthread_join(t[i], NULL);
}

/* "fork M": see the header. */
static void time_forks(long m, long held)
{
    enum { FORKS_MAX = 1000 };
    static double fork_us[FORKS_MAX], cycle_us[FORKS_MAX];
    if (m < 1 || m > FORKS_MAX)
        m = FORKS_MAX;
    for (long i = 0; i < m; i++) {
        double t0 = now_seconds();
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0)
            _exit(0);
        double t1 = now_seconds();
        int st;
        if (waitpid(pid, &st, 0) != pid)
            die("waitpid");
        fork_us[i] = (t1 - t0) * 1e6;
        cycle_us[i] = (now_seconds() - t0) * 1e6;
    }
    qsort(fork_us, (size_t)m, sizeof(double), compare_double);
    qsort(cycle_us, (size_t)m, sizeof(double), compare_double);
    printf("fork_us %.1f cycle_us %.1f held %ld\n", fork_us[m / 2],
           cycle_us[m / 2], held);
    fflush(stdout);
}

/* Reads one line of stdin into line (cut to its size); "" at EOF. */
static void next_line(char *line, size_t size)
{
    size_t len = 0;
    char c;
    while (read(STDIN_FILENO, &c, 1) == 1 && c != '\n')
        if (len + 1 < size)
            line[len++] = c;
    line[len] = '\0';
}

/* The next total count from stdin, after timing the forks asked for on
 * the way; 0 at EOF or on a line that is neither. */
static long next_count(long held)
{
    char line[64];
    for (;;) {
        next_line(line, sizeof(line));
        if (strncmp(line, "fork ", 5) != 0)
            return atol(line);
        time_forks(atol(line + 5), held);
    }
}

static int run_hold_grow(long count, int clients)
{
    int *fds = NULL;
    long held = 0;
    while (count > held) {
        int *more = realloc(fds, sizeof(int) * (size_t)count);
        if (more == NULL)
            die("realloc");
        fds = more;
        open_range(fds, held, count, clients < 1 ? 1 : clients);
        held = count;
        printf("held %ld\n", held);
        fflush(stdout);
        count = next_count(held);
    }
    for (long i = 0; i < held; i++)
        close(fds[i]);
    free(fds);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_client HOST PORT MODE ARGS...\n");
        return 2;
    }
    host = argv[1];
    port = argv[2];
    const char *mode = argv[3];
    alarm(600); /* a benchmark that hangs is a failure, not a figure */
    if (strcmp(mode, "throughput") == 0)
        return run_throughput(strtoull(argv[4], NULL, 10));
    if (strcmp(mode, "pingpong") == 0 && argc == 6)
        return run_pingpong(atol(argv[4]), (size_t)atol(argv[5]));
    if (strcmp(mode, "connect") == 0)
        return run_connect(atol(argv[4]));
    if (strcmp(mode, "connect-for") == 0 && argc == 6)
        return run_connect_for(atof(argv[4]), atoi(argv[5]));
    if (strcmp(mode, "hold") == 0)
        return run_hold(atol(argv[4]));
    if (strcmp(mode, "hold-grow") == 0 && argc == 6)
        return run_hold_grow(atol(argv[4]), atoi(argv[5]));
    fprintf(stderr, "bench_client: unknown mode %s\n", mode);
    return 2;
}
