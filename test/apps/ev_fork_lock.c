/*
 * ev_fork_lock - fork() while other threads are inside I/O on a socket,
 * with no TLS code.
 *
 *   ev_fork_lock PORT|0 [--bytes N] [--chunk K] [--timeout S]
 *
 * One process is both ends: it listens on 127.0.0.1:PORT (an accept
 * thread starts one echo thread per connection) and connects to itself.
 * On that connection a reader thread blocks in read() while a writer
 * thread writes N bytes in K-byte writes (default 4 MiB in 16 KiB), so
 * that under the shim one thread waits on the socket and another holds
 * the connection lock inside write. The main thread forks three times:
 * once while the reader is blocked and nothing was written yet, then
 * twice while the writer is under way. Each child (one thread: the one
 * that forked) closes its inherited copies of both ends of the connection
 * without using them, opens a new connection of its own to the parent's
 * listener, echoes a small payload and exits 0 if it came back intact.
 * The parent's connection must not notice the forks or the children's
 * closes: the reader checks every echoed byte. Prints "ok N bytes
 * sha=HEX" (of the parent's stream) and exits 0 when the parent's stream
 * and every child succeeded; 1 on any failure; 2 usage or the alarm(S)
 * bound (default 60 s).
 */
#include "ev_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#define FORKS 3
#define CHILD_BYTES 100000ULL

static unsigned bound_port;
static unsigned timeout_s = 60;
static int listen_fd = -1;
/* The parent's connection: client end and the server end the first
 * accepted connection got (children close both). */
static int client_fd = -1;
static atomic_int server_fd = -1;
static atomic_ullong sent_bytes;

static void *echo_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    (void)ev_echo_blocking(fd, 4096);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0)
            return NULL; /* the listener was closed: the run is over */
        int expected = -1;
        atomic_compare_exchange_strong(&server_fd, &expected, fd);
        pthread_t t;
        if (pthread_create(&t, NULL, echo_main, (void *)(intptr_t)fd) != 0) {
            fprintf(stderr, "%s: pthread_create failed\n", ev_prog);
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
}

static int connect_self(void)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)bound_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        fprintf(stderr, "%s[%ld]: connect: %s\n", ev_prog, (long)getpid(),
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

struct writer {
    unsigned long long bytes;
    size_t chunk;
    int rc;
};

/* ev_send_stream, counting progress for the forking thread. */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char *buf = malloc(w->chunk);
    struct ev_prng p;
    ev_prng_init(&p);
    w->rc = buf == NULL ? -1 : 0;
    for (unsigned long long sent = 0; w->rc == 0 && sent < w->bytes;) {
        size_t n = w->bytes - sent < w->chunk ? (size_t)(w->bytes - sent)
                                              : w->chunk;
        ev_prng_fill(&p, buf, n);
        if (ev_write_all(client_fd, buf, n) != 0) {
            fprintf(stderr, "%s: write: %s\n", ev_prog, strerror(errno));
            w->rc = -1;
        }
        sent += n;
        atomic_store(&sent_bytes, sent);
    }
    free(buf);
    shutdown(client_fd, w->rc == 0 ? SHUT_WR : SHUT_RDWR);
    return NULL;
}

struct reader {
    struct ev_check check;
    int rc;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    r->rc = ev_recv_stream(client_fd, 4096, &r->check);
    return NULL;
}

/* The child: the threads are gone; the inherited connection is closed
 * unused (the parent keeps using it), and a new one must work. */
static void child_main(void)
{
    ev_bound(timeout_s);
    close(client_fd);
    int sfd = atomic_load(&server_fd);
    if (sfd >= 0)
        close(sfd);
    close(listen_fd);
    int fd = connect_self();
    if (fd < 0)
        _exit(1);
    struct ev_check c;
    ev_check_init(&c, CHILD_BYTES);
    if (ev_send_stream(fd, CHILD_BYTES, 1000) != 0 ||
        ev_recv_stream(fd, 1000, &c) != 0)
        _exit(1);
    close(fd);
    _exit(0);
}

static pid_t fork_child(void)
{
    fflush(NULL); /* no buffered output is written twice */
    pid_t pid = fork();
    if (pid == 0)
        child_main();
    if (pid < 0)
        fprintf(stderr, "%s: fork: %s\n", ev_prog, strerror(errno));
    return pid;
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void usage(void)
{
    fprintf(stderr, "usage: %s PORT|0 [--bytes N] [--chunk K] "
            "[--timeout S]\n", ev_prog);
    exit(2);
}

int main(int argc, char **argv)
{
    ev_prog = "ev_fork_lock";
    struct writer w = {4ULL << 20, 16384, 0};
    const char *port_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc)
            w.bytes = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc)
            w.chunk = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout_s = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (port_arg == NULL && argv[i][0] != '-')
            port_arg = argv[i];
        else
            usage();
    }
    if (port_arg == NULL || w.chunk == 0 || w.bytes < 4)
        usage();
    ev_bound(timeout_s);
    signal(SIGPIPE, SIG_IGN);
    listen_fd = ev_listen(AF_INET, (unsigned)strtoul(port_arg, NULL, 10), 0,
                          &bound_port);
    if (listen_fd < 0)
        return 1;

    pthread_t acceptor, reader_t, writer_t;
    struct reader r;
    ev_check_init(&r.check, w.bytes);
    r.rc = -1;
    if (pthread_create(&acceptor, NULL, accept_main, NULL) != 0)
        return 1;
    client_fd = connect_self();
    if (client_fd < 0)
        return 1;
    if (pthread_create(&reader_t, NULL, reader_main, &r) != 0)
        return 1;

    pid_t kids[FORKS];
    int nkids = 0, failed = 0;
    /* Fork 1: the reader is (very likely) blocked in read, nothing sent.
     * The pause only makes that likely; nothing depends on its length. */
    pause_ms(100);
    kids[nkids++] = fork_child();
    if (pthread_create(&writer_t, NULL, writer_main, &w) != 0)
        return 1;
    /* Forks 2 and 3: while the writer is under way. */
    for (unsigned long long mark = w.bytes / 4; nkids < FORKS;
         mark += w.bytes / 4) {
        while (atomic_load(&sent_bytes) < mark)
            pause_ms(1);
        kids[nkids++] = fork_child();
    }
    pthread_join(writer_t, NULL);
    pthread_join(reader_t, NULL);
    failed |= w.rc != 0 || r.rc != 0;

    for (int i = 0; i < nkids; i++) {
        int status;
        if (kids[i] < 0) {
            failed = 1;
            continue;
        }
        while (waitpid(kids[i], &status, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s: child %d (pid %ld) failed (status 0x%x)\n",
                    ev_prog, i + 1, (long)kids[i], status);
            failed = 1;
        }
    }
    if (failed)
        return 1;
    ev_report_ok(stdout, &r.check);
    return 0;
}
