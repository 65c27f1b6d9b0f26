/*
 * fault_probe - one TCP connection, in either role, that says exactly what
 * each call returned, for the fault suite (test/faults/). No TLS code: the
 * same program runs over plain TCP (the reference) and under the shim, and
 * the suite compares the two reports (docs/testing.md, "Fault suite").
 *
 *   fault_probe connect HOST PORT [options]
 *   fault_probe accept PORT PORT_FILE [options]  (127.0.0.1; PORT_FILE is
 *                                                 written once it listens)
 * Options:
 *   --send N      write N bytes of echo_client's xorshift64* stream (from
 *                 a thread of its own, full duplex), then shutdown(SHUT_WR)
 *   --chunk K     writes of K bytes (default 16384)
 *   --nonblock    non-blocking writes: stop at the first EAGAIN
 *   --no-read     never read; after --hold-ms print the write progress and
 *                 the process's VmRSS, then exit (a peer that never reads)
 *   --hold-ms MS  see --no-read (default 1000)
 *   --conns C     accept role: C connections one after the other, each
 *                 reported in turn (default 1)
 *   --timeout S   alarm bound of the whole run (default 30)
 *
 * Unless --no-read, it reads until a read returns 0 or fails, checking that
 * what arrives is a prefix of the same stream (an echo of what it sent, or
 * a peer sending that stream). Report lines on stdout, each flushed:
 *   connect: ok | connect: error ENAME        (connect role)
 *   accept: ok  | accept: error ENAME         (accept role)
 *   write: done N | write: error ENAME after N | write: EAGAIN after N
 *   read: eof after N intact|corrupt
 *   read: error ENAME after N intact|corrupt
 *   closed                                    (both sides done, close()d)
 *   start: rss_kib R                          (--no-read, before writing)
 *   progress: written N rss_kib R             (--no-read)
 * Exit 0 once the report is complete, 2 on usage, setup failure or the
 * alarm.
 */
#include "ev_common.h"

#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

struct probe_opts {
    unsigned long long send;
    size_t chunk;
    bool nonblock;
    bool no_read;
    unsigned hold_ms;
    unsigned timeout;
    unsigned conns;
};

/* The writer thread's state; written by it, read by main after join (or,
 * with --no-read, read racily for a progress figure, hence the atomics). */
struct writer {
    int fd;
    const struct probe_opts *o;
    unsigned long long written;
    pthread_t thread;
};

static const char *errname(int e)
{
    const char *name = strerrorname_np(e);
    return name != NULL ? name : "E?";
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&lock);
    vprintf(fmt, ap);
    fflush(stdout);
    pthread_mutex_unlock(&lock);
    va_end(ap);
}

/* Non-blocking writes stop at EAGAIN: that is the result to compare. */
static void *write_stream(void *arg)
{
    struct writer *w = arg;
    struct ev_prng prng;
    ev_prng_init(&prng);
    char *buf = malloc(w->o->chunk);
    if (buf == NULL) {
        say("write: error ENOMEM after 0\n");
        return NULL;
    }
    unsigned long long left = w->o->send;
    while (left > 0) {
        size_t n = left < w->o->chunk ? (size_t)left : w->o->chunk;
        ev_prng_fill(&prng, buf, n);
        size_t off = 0;
        while (off < n) {
            ssize_t r = write(w->fd, buf + off, n - off);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0 && errno == EAGAIN) {
                say("write: EAGAIN after %llu\n",
                    __atomic_load_n(&w->written, __ATOMIC_RELAXED));
                free(buf);
                return NULL;
            }
            if (r < 0) {
                say("write: error %s after %llu\n", errname(errno),
                    __atomic_load_n(&w->written, __ATOMIC_RELAXED));
                free(buf);
                return NULL;
            }
            off += (size_t)r;
            __atomic_add_fetch(&w->written, (unsigned long long)r,
                               __ATOMIC_RELAXED);
        }
        left -= n;
    }
    free(buf);
    say("write: done %llu\n", w->written);
    (void)shutdown(w->fd, SHUT_WR);
    return NULL;
}

/* Reads to the end, comparing with the stream; one report line. */
static void read_stream(int fd)
{
    struct ev_check check;
    ev_check_init(&check, ~0ull);
    char buf[16384];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) { /* a non-blocking socket */
            struct pollfd p = {.fd = fd, .events = POLLIN};
            (void)poll(&p, 1, 1000);
            continue;
        }
        if (n > 0) {
            (void)ev_check_feed(&check, buf, (size_t)n);
            continue;
        }
        const char *state = check.bad ? "corrupt" : "intact";
        if (n == 0)
            say("read: eof after %llu %s\n", check.got, state);
        else
            say("read: error %s after %llu %s\n", errname(errno), check.got,
                state);
        return;
    }
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kib;
}

static void run_connection(int fd, const struct probe_opts *o)
{
    struct writer w = {.fd = fd, .o = o};
    if (o->nonblock && ev_set_nonblock(fd) != 0) {
        perror("fault_probe: fcntl");
        exit(2);
    }
    if (o->no_read)
        say("start: rss_kib %ld\n", rss_kib());
    bool writing = o->send > 0;
    if (writing && pthread_create(&w.thread, NULL, write_stream, &w) != 0) {
        fprintf(stderr, "fault_probe: pthread_create failed\n");
        exit(2);
    }
    if (o->no_read) {
        struct timespec ts = {.tv_sec = o->hold_ms / 1000,
                              .tv_nsec = (long)(o->hold_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
        say("progress: written %llu rss_kib %ld\n",
            __atomic_load_n(&w.written, __ATOMIC_RELAXED), rss_kib());
        _exit(0); /* the writer may be blocked for good: that is the case */
    }
    read_stream(fd);
    if (writing)
        pthread_join(w.thread, NULL);
    close(fd);
    say("closed\n");
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "fault_probe: %s: %s\n", host, gai_strerror(rc));
        exit(2);
    }
    int fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd < 0) {
        perror("fault_probe: socket");
        exit(2);
    }
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        say("connect: error %s\n", errname(errno));
        freeaddrinfo(res);
        exit(0);
    }
    freeaddrinfo(res);
    say("connect: ok\n");
    return fd;
}

/* Listens on 127.0.0.1:port, writes the port file; the listener. */
static int listen_on(const char *port, const char *port_file)
{
    struct ev_server_opts so;
    ev_server_opts_init(&so);
    so.port_arg = port;
    so.port_file = port_file;
    int lfd = ev_server_start(&so, 0);
    if (lfd < 0)
        exit(2);
    return lfd;
}

/* --conns connections one after the other, each reported in turn. */
static void serve(int lfd, const struct probe_opts *o)
{
    for (unsigned i = 0; i < o->conns; i++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            say("accept: error %s\n", errname(errno));
            continue;
        }
        say("accept: ok\n");
        run_connection(fd, o);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: fault_probe connect HOST PORT | accept PORT "
                    "PORT_FILE\n       [--send N] [--chunk K] [--nonblock] "
                    "[--no-read] [--hold-ms MS] [--conns C] [--timeout S]\n");
    exit(2);
}

static void parse_opts(struct probe_opts *o, int argc, char **argv, int i)
{
    *o = (struct probe_opts){.chunk = 16384, .hold_ms = 1000, .timeout = 30,
                             .conns = 1};
    for (; i < argc; i++) {
        bool more = i + 1 < argc;
        if (strcmp(argv[i], "--send") == 0 && more)
            o->send = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--chunk") == 0 && more)
            o->chunk = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--hold-ms") == 0 && more)
            o->hold_ms = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--conns") == 0 && more)
            o->conns = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--timeout") == 0 && more)
            o->timeout = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--nonblock") == 0)
            o->nonblock = true;
        else if (strcmp(argv[i], "--no-read") == 0)
            o->no_read = true;
        else
            usage();
    }
    if (o->chunk == 0)
        usage();
}

int main(int argc, char **argv)
{
    ev_prog = "fault_probe";
    if (argc < 4)
        usage();
    struct probe_opts o;
    parse_opts(&o, argc, argv, 4);
    ev_bound(o.timeout);
    /* A write to a reset connection is an EPIPE to report, not a death. */
    signal(SIGPIPE, SIG_IGN);
    int fd;
    if (strcmp(argv[1], "connect") == 0)
        fd = connect_to(argv[2], argv[3]);
    else if (strcmp(argv[1], "accept") == 0) {
        serve(listen_on(argv[2], argv[3]), &o);
        return 0;
    } else
        usage();
    run_connection(fd, &o);
    return 0;
}
