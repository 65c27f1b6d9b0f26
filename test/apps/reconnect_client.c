/*
 * reconnect_client - a plain TCP client with no TLS code that connects to
 * one server several times in one process, for the session resumption
 * cases (the shim's client session cache lives in process memory, so only
 * a second connection of the same process, its threads or its forked
 * child can resume).
 *
 *   reconnect_client HOST PORT [--count K] [--threads T] [--fork]
 *                    [--step] [--half-close] [--timeout S]
 *
 * Each connection (getaddrinfo, blocking connect) sends
 * "GET / HTTP/1.0\r\n\r\n" (what `openssl s_server -www` answers with a
 * page saying whether the session was "New" or "Reused"), reads until
 * EOF (--half-close: shuts its sending side down first, so that an echo
 * server sees the end of the request and ends its reply) and prints, with
 * one write per connection:
 *
 *   === conn N pid P
 *   <the reply>
 *   === end N: ok            (or "=== end N: failed: <reason>")
 *
 * Order: K connections one after the other (default 2); then, with
 * --threads T, T threads that each make one connection at the same time;
 * then, with --fork, a child process makes one connection and the parent
 * waits for it. --step: before every connection of the sequence after the
 * first, wait for a line on stdin (the harness changes the policy
 * between them); "=== ready N" on stdout says it waits.
 *
 * Exit: 0 every connection got a reply and EOF; 1 one failed; 2 usage or
 * timeout (alarm, default 60 s).
 */
#include "ev_common.h"

#include <stdbool.h>
#include <sys/wait.h>

#define REPLY_MAX (64 * 1024)

static const char *host, *port;
static bool half_close;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void usage(void)
{
    fprintf(stderr, "usage: reconnect_client HOST PORT [--count K] "
                    "[--threads T] [--fork] [--step] [--half-close]\n"
                    "                        [--timeout S]\n");
    exit(2);
}

/* Connects to HOST PORT; -1 with errno when no address answers. */
static int connect_once(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        errno = EHOSTUNREACH;
        return -1;
    }
    int fd = -1, err = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        errno = err;
    return fd;
}

/* One request and the whole reply; returns 0 or -1 with why filled. */
static int exchange(char *reply, size_t *len, char *why, size_t why_len)
{
    static const char request[] = "GET / HTTP/1.0\r\n\r\n";
    *len = 0;
    int fd = connect_once();
    if (fd < 0) {
        snprintf(why, why_len, "connect: %s", strerror(errno));
        return -1;
    }
    if (ev_write_all(fd, request, sizeof(request) - 1) != 0 ||
        (half_close && shutdown(fd, SHUT_WR) != 0)) {
        snprintf(why, why_len, "write: %s", strerror(errno));
        close(fd);
        return -1;
    }
    for (;;) {
        if (*len == REPLY_MAX) {
            snprintf(why, why_len, "reply longer than %d bytes", REPLY_MAX);
            close(fd);
            return -1;
        }
        ssize_t n = read(fd, reply + *len, REPLY_MAX - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, why_len, "read: %s", strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        *len += (size_t)n;
    }
    close(fd);
    if (*len == 0) {
        snprintf(why, why_len, "no reply");
        return -1;
    }
    return 0;
}

/* Connection n, printed as one block with one write. Returns 0 or 1. */
static int one_connection(int n)
{
    char *reply = malloc(REPLY_MAX);
    char *out = malloc(REPLY_MAX + 512);
    if (reply == NULL || out == NULL) {
        fprintf(stderr, "reconnect_client: out of memory\n");
        exit(1);
    }
    char why[256] = "";
    size_t len = 0;
    int rc = exchange(reply, &len, why, sizeof(why));
    int used = snprintf(out, 512, "=== conn %d pid %ld\n", n, (long)getpid());
    memcpy(out + used, reply, len);
    used += (int)len;
    used += snprintf(out + used, 512, "\n=== end %d: %s%s\n", n,
                     rc == 0 ? "ok" : "failed: ", why);
    pthread_mutex_lock(&out_lock);
    (void)ev_write_all(1, out, (size_t)used);
    pthread_mutex_unlock(&out_lock);
    free(reply);
    free(out);
    return rc == 0 ? 0 : 1;
}

static void *thread_main(void *arg)
{
    return (void *)(intptr_t)one_connection((int)(intptr_t)arg);
}

/* T connections at once, numbered from first. */
static int threads(int first, int t)
{
    pthread_t tid[64];
    int bad = 0;
    for (int i = 0; i < t; i++)
        if (pthread_create(&tid[i], NULL, thread_main,
                           (void *)(intptr_t)(first + i)) != 0) {
            fprintf(stderr, "reconnect_client: pthread_create failed\n");
            exit(1);
        }
    for (int i = 0; i < t; i++) {
        void *rv;
        pthread_join(tid[i], &rv);
        bad |= (int)(intptr_t)rv;
    }
    return bad;
}

/* One connection from a forked child; the parent waits for it. */
static int forked(int n, unsigned timeout)
{
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "reconnect_client: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        ev_bound(timeout);
        _exit(one_connection(n));
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return 1;
    return WEXITSTATUS(status) != 0;
}

static void wait_step(int n)
{
    char line[256];
    char msg[64];
    int len = snprintf(msg, sizeof(msg), "=== ready %d\n", n);
    (void)ev_write_all(1, msg, (size_t)len);
    if (fgets(line, sizeof(line), stdin) == NULL) {
        fprintf(stderr, "reconnect_client: stdin closed before step %d\n",
                n);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    ev_prog = "reconnect_client";
    int count = 2, nthreads = 0;
    bool fork_child = false, step = false;
    unsigned timeout = 60;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            count = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--fork") == 0)
            fork_child = true;
        else if (strcmp(argv[i], "--step") == 0)
            step = true;
        else if (strcmp(argv[i], "--half-close") == 0)
            half_close = true;
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout = (unsigned)atoi(argv[++i]);
        else if (host == NULL)
            host = argv[i];
        else if (port == NULL)
            port = argv[i];
        else
            usage();
    }
    if (host == NULL || port == NULL || count < 0 || nthreads < 0 ||
        nthreads > 64 || timeout == 0)
        usage();
    ev_bound(timeout);
    int bad = 0, n = 0;
    for (int i = 0; i < count; i++) {
        if (step && i > 0)
            wait_step(n + 1);
        bad |= one_connection(++n);
    }
    if (nthreads > 0) {
        bad |= threads(n + 1, nthreads);
        n += nthreads;
    }
    if (fork_child)
        bad |= forked(++n, timeout);
    return bad ? 1 : 0;
}
