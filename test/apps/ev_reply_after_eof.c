/*
 * ev_reply_after_eof - a server that answers after its client has closed
 * its sending side, and closes at once, for the case
 * close_after_the_peers_close_needs_no_linger (test/integration/
 * cases_close.py). libc only: the same program runs over plain TCP (the
 * reference) and under the shim.
 *
 *   ev_reply_after_eof serve PORT PORT_FILE BYTES
 *   ev_reply_after_eof ask HOST PORT BYTES DELAY_MS
 *
 * serve: listens on 127.0.0.1:PORT (0: any), writes PORT_FILE, accepts one
 * connection with SO_SNDBUF 1 MiB (so that the kernel, not the program or
 * the shim, holds the answer at close), reads it to EOF, writes BYTES of
 * echo_client's stream (blocking), close()s it, prints "closed threads B
 * A" (the threads of this process, from /proc/self/task, before and after
 * the close: a sanitizer's runtime may have its own), then waits for EOF
 * on stdin and _exit(0)s: no exit handler delivers anything.
 * ask: SO_RCVBUF 4 KiB, connects, writes "go", shutdown(SHUT_WR), then
 * reads 4 KiB at a time with DELAY_MS between reads, checking the stream:
 * prints "ok N bytes sha=X" at EOF, or the first error.
 * Exit 0, 1 on an I/O or stream error, 2 on usage or the 30 s bound.
 */
#include "ev_common.h"

#include <dirent.h>

#define ASK_RCVBUF 4096
#define SERVE_SNDBUF (1 << 20)

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static int read_to_eof(int fd)
{
    char buf[256];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r == 0)
            return 0;
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "%s: read: %s\n", ev_prog, strerror(errno));
            return -1;
        }
    }
}

static int serve(const char *port, const char *port_file,
                 unsigned long long bytes)
{
    unsigned bound;
    int lfd = ev_listen(AF_INET, (unsigned)strtoul(port, NULL, 10), 0,
                        &bound);
    if (lfd < 0 || ev_write_port_file(port_file, bound) != 0)
        return 1;
    int fd = ev_accept(lfd);
    int size = SERVE_SNDBUF;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) != 0 ||
        read_to_eof(fd) != 0)
        return 1;
    char *buf = malloc((size_t)bytes);
    if (buf == NULL)
        return 1;
    struct ev_prng p;
    ev_prng_init(&p);
    ev_prng_fill(&p, buf, (size_t)bytes);
    if (ev_write_all(fd, buf, (size_t)bytes) != 0)
        return 1;
    int before = count_threads();
    close(fd);
    printf("closed threads %d %d\n", before, count_threads());
    fflush(stdout);
    char c;
    while (read(STDIN_FILENO, &c, 1) > 0)
        ;
    _exit(0);
}

static int ask(const char *host, const char *port, unsigned long long bytes,
               long delay_ms)
{
    struct ev_client_opts o;
    ev_client_opts_init(&o);
    o.host = host;
    o.port = port;
    struct addrinfo *res = ev_resolve(&o);
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    int size = ASK_RCVBUF;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) != 0 ||
        connect(fd, res->ai_addr, res->ai_addrlen) != 0 ||
        ev_write_all(fd, "go", 2) != 0 || shutdown(fd, SHUT_WR) != 0) {
        fprintf(stderr, "%s: connect/ask: %s\n", ev_prog, strerror(errno));
        return 1;
    }
    freeaddrinfo(res);
    struct ev_check check;
    ev_check_init(&check, bytes);
    struct timespec pause = {delay_ms / 1000, (delay_ms % 1000) * 1000000};
    char buf[4096];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "%s: read: %s\n", ev_prog, strerror(errno));
            return 1;
        }
        if (ev_check_feed(&check, buf, (size_t)r) != 0)
            return 1;
        nanosleep(&pause, NULL);
    }
    if (ev_check_done(&check) != 0)
        return 1;
    ev_report_ok(stdout, &check);
    return 0;
}

int main(int argc, char **argv)
{
    ev_prog = "ev_reply_after_eof";
    ev_bound(30);
    signal(SIGPIPE, SIG_IGN);
    if (argc == 5 && strcmp(argv[1], "serve") == 0)
        return serve(argv[2], argv[3], strtoull(argv[4], NULL, 10));
    if (argc == 6 && strcmp(argv[1], "ask") == 0)
        return ask(argv[2], argv[3], strtoull(argv[4], NULL, 10),
                   strtol(argv[5], NULL, 10));
    fprintf(stderr, "usage: ev_reply_after_eof serve PORT PORT_FILE BYTES\n"
                    "       ev_reply_after_eof ask HOST PORT BYTES "
                    "DELAY_MS\n");
    return 2;
}
