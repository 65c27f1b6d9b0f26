/*
 * idle_clients - opens many connections and holds them, for measuring a
 * server's memory per idle connection (issue 9). No TLS code.
 *
 *   idle_clients HOST PORT COUNT [PROCS]
 *
 * PROCS processes (default 2) each open their share of COUNT connections,
 * one after another: connect, write 1 byte, read its echo. When every
 * connection has done its round trip the program prints "held COUNT" and
 * holds them all until its standard input reaches end of file. Each
 * process raises its soft RLIMIT_NOFILE to the hard limit. Exit 0, or 1
 * with a message when a connection fails.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "idle_clients: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int connect_once(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        die("connect");
    char byte = 'x';
    if (write(fd, &byte, 1) != 1)
        die("write");
    if (read(fd, &byte, 1) != 1)
        die("read");
    return fd;
}

/* One child: opens n connections, says so on done, waits for hold's EOF. */
static void child(const struct addrinfo *ai, long n, int done, int hold)
{
    for (long i = 0; i < n; i++)
        (void)connect_once(ai);
    char c = 'd';
    if (write(done, &c, 1) != 1)
        die("report");
    while (read(hold, &c, 1) > 0)
        ;
    exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: idle_clients HOST PORT COUNT [PROCS]\n");
        return 2;
    }
    long count = atol(argv[3]);
    long procs = argc > 4 ? atol(argv[4]) : 2;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    int rc = getaddrinfo(argv[1], argv[2], &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "idle_clients: %s: %s\n", argv[1], gai_strerror(rc));
        return 1;
    }
    int done[2], hold[2];
    if (pipe(done) != 0 || pipe(hold) != 0)
        die("pipe");
    for (long p = 0; p < procs; p++) {
        long share = count / procs + (p < count % procs ? 1 : 0);
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            close(done[0]);
            close(hold[1]);
            child(ai, share, done[1], hold[0]);
        }
    }
    close(done[1]);
    close(hold[0]);
    for (long p = 0; p < procs; p++) {
        char c;
        if (read(done[0], &c, 1) != 1) {
            fprintf(stderr, "idle_clients: a client process failed\n");
            return 1;
        }
    }
    printf("held %ld\n", count);
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0)
        ;
    close(hold[1]);
    int status, failed = 0;
    while (wait(&status) > 0)
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    return failed;
}
