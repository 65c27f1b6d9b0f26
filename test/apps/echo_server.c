/*
 * echo_server - a plain TCP echo server with no TLS code, for running
 * under the shim.
 *
 *   echo_server [-4|-6] PORT|0 [--once] [--port-file F] [--timeout S]
 *
 * Binds 127.0.0.1 (or ::1 with -6), writes the bound port to F (written
 * to a temporary name and renamed, so a reader never sees half a number),
 * accepts in a loop and echoes each connection from its own thread with
 * read/write until EOF, then closes it. --once: exit after the first
 * connection, with status 0 only if it was echoed without error. The
 * whole run is bounded by alarm(S) (default 300 s).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void usage(void)
{
    fprintf(stderr, "usage: echo_server [-4|-6] PORT|0 [--once] "
                    "[--port-file F] [--timeout S]\n");
    exit(2);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "echo_server: timed out\n";
    (void)write(2, msg, sizeof(msg) - 1);
    _exit(2);
}

/* Writes all of buf; returns 0 or -1 with errno. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Echoes one connection until EOF. Returns 0, or 1 on an error. */
static int echo(int fd)
{
    static __thread char buf[64 * 1024];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "echo_server: read: %s\n", strerror(errno));
            close(fd);
            return 1;
        }
        if (n == 0)
            break;
        if (write_all(fd, buf, (size_t)n) != 0) {
            fprintf(stderr, "echo_server: write: %s\n", strerror(errno));
            close(fd);
            return 1;
        }
    }
    if (close(fd) != 0) {
        fprintf(stderr, "echo_server: close: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

static void *echo_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    return (void *)(intptr_t)echo(fd);
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 ||
        rename(tmp, path) != 0) {
        fprintf(stderr, "echo_server: port file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    return 0;
}

/* A listening socket on loopback; returns it, or -1 after a message. */
static int listen_on(int family, unsigned port, unsigned *bound)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    int fd = socket(family, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        fprintf(stderr, "echo_server: listen on port %u: %s\n", port,
                strerror(errno));
        return -1;
    }
    *bound = ntohs(family == AF_INET6
                       ? ((struct sockaddr_in6 *)&ss)->sin6_port
                       : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int main(int argc, char **argv)
{
    int family = AF_INET;
    const char *port_arg = NULL, *port_file = NULL;
    int once = 0;
    unsigned timeout = 300;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-4") == 0)
            family = AF_INET;
        else if (strcmp(argv[i], "-6") == 0)
            family = AF_INET6;
        else if (strcmp(argv[i], "--once") == 0)
            once = 1;
        else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
            port_file = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (port_arg == NULL && argv[i][0] != '-')
            port_arg = argv[i];
        else
            usage();
    }
    if (port_arg == NULL)
        usage();
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN); /* a client that leaves is not our failure */
    alarm(timeout);

    unsigned port;
    int lfd = listen_on(family, (unsigned)strtoul(port_arg, NULL, 10), &port);
    if (lfd < 0)
        return 1;
    if (port_file != NULL && write_port_file(port_file, port) != 0)
        return 1;
    printf("listening on port %u\n", port);
    fflush(stdout);

    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            fprintf(stderr, "echo_server: accept: %s\n", strerror(errno));
            return 1;
        }
        if (once)
            return echo(fd);
        pthread_t t;
        if (pthread_create(&t, NULL, echo_thread, (void *)(intptr_t)fd) != 0) {
            fprintf(stderr, "echo_server: cannot start a thread\n");
            close(fd);
            continue;
        }
        pthread_detach(t);
    }
}
