/*
 * idle_server - an epoll echo server that holds thousands of idle
 * connections, for measuring memory per connection (issue 9). No TLS code.
 *
 *   idle_server PORT|0 [--poll]
 *
 * Raises its soft RLIMIT_NOFILE to the hard limit, listens on 127.0.0.1,
 * and echoes what each connection sends (level-triggered epoll, or poll
 * with --poll; reads of 64 bytes, non-blocking sockets); connections are
 * never closed by the server. Under the shim a managed connection costs
 * two descriptors with epoll and with poll (an epoll registration watches
 * the connection's private descriptor itself, docs/shim.md, "epoll").
 * On SIGUSR1 it prints one line:
 *   conns N echoed E rss_kib R heap_in_use_kib U heap_free_kib F
 * (VmRSS from /proc/self/status; glibc's mallinfo2 in-use and free bytes
 * of the heap). On SIGUSR2 it calls malloc_trim(0) first, to show what
 * of the RSS is free heap the allocator had kept. Stops on SIGTERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t report, trim, stop;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        report = 1;
    else if (sig == SIGUSR2)
        report = trim = 1;
    else
        stop = 1;
}

static void die(const char *what)
{
    fprintf(stderr, "idle_server: %s: %s\n", what, strerror(errno));
    exit(1);
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

static void print_report(long conns, long echoed)
{
    /* Cleared first: a signal that comes while printing is not lost. */
    bool do_trim = trim;
    report = trim = 0;
    if (do_trim)
        malloc_trim(0);
    struct mallinfo2 mi = mallinfo2();
    printf("conns %ld echoed %ld rss_kib %ld heap_in_use_kib %zu "
           "heap_free_kib %zu\n", conns, echoed, rss_kib(),
           (mi.uordblks + mi.hblkhd) / 1024, mi.fordblks / 1024);
    fflush(stdout);
}

static int listen_on(int port)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((unsigned short)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one,
                            sizeof(one)) != 0 ||
        bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(l, 4096) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) != 0)
        die("listen");
    printf("listening on port %d\n", ntohs(a.sin_port));
    fflush(stdout);
    return l;
}

static long conns, echoed;

/* Echoes what fd has; false when the connection ended (fd closed). */
static bool serve(int fd)
{
    char buf[64];
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r > 0) {
        if (write(fd, buf, (size_t)r) == r)
            echoed++;
        return true;
    }
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    close(fd);
    conns--;
    return false;
}

static void run_epoll(int l)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) != 0)
        die("epoll");
    struct epoll_event got[64];
    while (!stop) {
        if (report)
            print_report(conns, echoed);
        int n = epoll_wait(ep, got, 64, 200);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = got[i].data.fd;
            int c;
            if (fd != l) {
                (void)serve(fd); /* a closed fd leaves the set by itself */
                continue;
            }
            while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce) != 0)
                    die("epoll_ctl");
                conns++;
            }
        }
    }
}

static void run_poll(int l, size_t max)
{
    struct pollfd *p = calloc(max, sizeof(*p));
    if (p == NULL)
        die("calloc");
    size_t n = 1;
    p[0].fd = l;
    p[0].events = POLLIN;
    while (!stop) {
        if (report)
            print_report(conns, echoed);
        int r = poll(p, n, 200);
        if (r < 0 && errno != EINTR)
            die("poll");
        for (size_t i = n; r > 0 && i-- > 1;) {
            if (p[i].revents != 0 && !serve(p[i].fd))
                p[i] = p[--n];
        }
        int c;
        while (r > 0 && (p[0].revents & POLLIN) && n < max &&
               (c = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
            p[n].fd = c;
            p[n].events = POLLIN;
            n++;
            conns++;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: idle_server PORT|0 [--poll]\n");
        return 2;
    }
    bool use_poll = argc > 2 && strcmp(argv[2], "--poll") == 0;
    struct rlimit rl = {0, 0};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int l = listen_on(atoi(argv[1]));
    if (use_poll)
        run_poll(l, rl.rlim_cur > 16 ? (size_t)rl.rlim_cur : 1024);
    else
        run_epoll(l);
    return 0;
}
