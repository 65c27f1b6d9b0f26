/*
 * platform_calls - the libc functions newer than glibc 2.28 (epoll_pwait2,
 * close_range, closefrom), called the way a program built for old and new
 * glibc calls them: through weak references, so it links and runs where
 * libc lacks them (the reference is then NULL, unless the shim defines the
 * name). It prints one line per call, with the result and errno.
 *
 *   platform_calls local
 *     on a pipe: epoll_pwait2 and epoll_wait on a set holding its readable
 *     end, close_range of one end, closefrom above every other descriptor.
 *   platform_calls connect HOST PORT
 *     on a connection to HOST PORT (an echo server): sends "ping", then
 *     epoll_pwait2 on a set holding the socket, close_range of just the
 *     socket, then (when the socket is still open) epoll_wait and a read
 *     of the echo.
 *
 * Each line is "NAME RESULT [ERRNO-NAME] [open|closed]", or "NAME absent"
 * where the reference is NULL. "main" comes first, so a process that dies
 * before main prints nothing. Exit 0 when every call ran (whatever it
 * answered), 1 on a setup failure, 2 on the time bound (20 s).
 */
#include "ev_common.h"

#include <sys/epoll.h>
#include <time.h>

/* Declared here, weak, rather than taken from the headers: glibc 2.28's
 * headers do not declare them and its libc does not define them. */
extern int epoll_pwait2(int, struct epoll_event *, int,
                        const struct timespec *, const sigset_t *)
    __attribute__((weak));
extern int close_range(unsigned int, unsigned int, int) __attribute__((weak));
extern void closefrom(int) __attribute__((weak));

static const char *errno_name(int e)
{
    switch (e) {
    case ENOSYS: return "ENOSYS";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case EINTR: return "EINTR";
    default: return "E?";
    }
}

/* "NAME R" plus errno's name when R < 0. */
static void report(const char *name, int r, int err)
{
    if (r < 0)
        printf("%s %d %s", name, r, errno_name(err));
    else
        printf("%s %d", name, r);
}

static const char *open_or_closed(int fd)
{
    return fcntl(fd, F_GETFD) >= 0 ? "open" : "closed";
}

/* A set holding fd for EPOLLIN; exits 1 when it cannot be made. */
static int set_with(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        perror("platform_calls: epoll");
        exit(1);
    }
    return ep;
}

static void call_epoll_pwait2(int ep, int seconds)
{
    if (epoll_pwait2 == NULL) {
        printf("epoll_pwait2 absent\n");
        return;
    }
    struct epoll_event out;
    struct timespec tmo = {seconds, 0};
    int r = epoll_pwait2(ep, &out, 1, &tmo, NULL);
    report("epoll_pwait2", r, errno);
    printf("\n");
}

static void call_close_range(int fd)
{
    if (close_range == NULL) {
        printf("close_range absent\n");
        return;
    }
    int r = close_range((unsigned int)fd, (unsigned int)fd, 0);
    report("close_range", r, errno);
    printf(" %s\n", open_or_closed(fd));
}

static int local_calls(void)
{
    int p[2];
    if (pipe(p) != 0 || write(p[1], "x", 1) != 1) {
        perror("platform_calls: pipe");
        return 1;
    }
    int ep = set_with(p[0]);
    call_epoll_pwait2(ep, 0);
    struct epoll_event out;
    report("epoll_wait", epoll_wait(ep, &out, 1, 0), errno);
    printf("\n");
    call_close_range(p[1]);
    /* Far above every number the program holds; the shim keeps its own. */
    int high = fcntl(p[0], F_DUPFD, 900);
    if (high < 0) {
        perror("platform_calls: F_DUPFD");
        return 1;
    }
    if (closefrom == NULL) {
        printf("closefrom absent\n");
        return 0;
    }
    closefrom(900);
    printf("closefrom %s\n", open_or_closed(high));
    return 0;
}

/* Reads the 4-byte echo; "echo ping" or "echo failed". */
static void read_echo(int fd)
{
    char buf[8];
    size_t got = 0;
    while (got < 4) {
        ssize_t n = read(fd, buf + got, 4 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    printf("echo %s\n", got == 4 && memcmp(buf, "ping", 4) == 0 ? "ping"
                                                                : "failed");
}

static int connect_calls(const char *host, const char *port)
{
    struct ev_client_opts o;
    ev_client_opts_init(&o);
    o.host = host;
    o.port = port;
    int fd = ev_connect(&o);
    if (ev_write_all(fd, "ping", 4) != 0) {
        perror("platform_calls: write");
        return 1;
    }
    int ep = set_with(fd);
    call_epoll_pwait2(ep, 5);
    call_close_range(fd);
    if (fcntl(fd, F_GETFD) < 0)
        return 0;
    struct epoll_event out;
    report("epoll_wait", epoll_wait(ep, &out, 1, 5000), errno);
    printf("\n");
    read_echo(fd);
    return 0;
}

int main(int argc, char **argv)
{
    ev_prog = "platform_calls";
    setvbuf(stdout, NULL, _IOLBF, 0);
    ev_bound(20);
    printf("main\n");
    if (argc == 2 && strcmp(argv[1], "local") == 0)
        return local_calls();
    if (argc == 4 && strcmp(argv[1], "connect") == 0)
        return connect_calls(argv[2], argv[3]);
    fprintf(stderr, "usage: platform_calls local | connect HOST PORT\n");
    return 2;
}
