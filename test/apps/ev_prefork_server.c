/*
 * ev_prefork_server - a pre-forking echo server with no TLS code.
 *
 *   ev_prefork_server [-4|-6] PORT|0 [--port-file F] [--once|--max-conns N]
 *                     [--timeout S] [--workers W]
 *
 * The parent creates the (blocking) listener, then forks W workers
 * (default 4) that all block in accept() on that one inherited socket;
 * whichever the kernel wakes takes the connection and echoes it with
 * read/write of 512 bytes. After each connection a worker writes one
 * status byte ('0' ok, '1' failed) to a pipe the parent reads. With
 * --max-conns N the parent, after N status bytes, stops its workers by
 * PID (SIGTERM) and reaps them; exit 0 if all N were echoed. Without it
 * the parent waits until it is stopped. Workers die with the parent
 * (PR_SET_PDEATHSIG) and have their own alarm bound, so none outlives a
 * run. Exit status as in ev_common.h.
 */
#include "ev_common.h"

#include <sys/prctl.h>
#include <sys/wait.h>

static void worker(int lfd, int status_fd, pid_t parent, unsigned timeout)
{
    ev_bound(timeout);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        exit(1); /* the parent is gone already */
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0) {
            fprintf(stderr, "%s[%ld]: accept: %s\n", ev_prog, (long)getpid(),
                    strerror(errno));
            exit(1);
        }
        char status = ev_echo_blocking(fd, 512) == 0 ? '0' : '1';
        if (write(status_fd, &status, 1) != 1)
            exit(1);
    }
}

/* Reads status bytes until `want` came (0: until every worker is gone).
 * Returns 0 if all said ok and enough came, else 1. */
static int collect(int status_fd, unsigned long want)
{
    unsigned long got = 0;
    int failed = 0;
    while (want == 0 || got < want) {
        char s;
        ssize_t n = read(status_fd, &s, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got++;
        failed |= s != '0';
    }
    if (want != 0 && got < want) {
        fprintf(stderr, "%s: workers ended after %lu of %lu connections\n",
                ev_prog, got, want);
        failed = 1;
    }
    return failed;
}

int main(int argc, char **argv)
{
    ev_prog = "ev_prefork_server";
    struct ev_server_opts o;
    ev_server_opts_init(&o);
    unsigned long nworkers = 4;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
            nworkers = strtoul(argv[++i], NULL, 10);
        else if (!ev_server_arg(&o, argc, argv, &i))
            ev_server_usage("[--workers W]");
    }
    if (nworkers == 0 || nworkers > 64)
        ev_server_usage("[--workers W]");
    int lfd = ev_server_start(&o, 0);
    int st[2];
    if (lfd < 0 || pipe2(st, O_CLOEXEC) != 0)
        return 1;

    pid_t parent = getpid(), pids[64];
    for (unsigned long i = 0; i < nworkers; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            fprintf(stderr, "%s: fork: %s\n", ev_prog, strerror(errno));
            return 1; /* the started workers die with us */
        }
        if (pids[i] == 0) {
            close(st[0]);
            worker(lfd, st[1], parent, o.timeout);
        }
    }
    close(st[1]); /* so that read() says EOF once every worker is gone */
    int failed = collect(st[0], o.max_conns);
    for (unsigned long i = 0; i < nworkers; i++)
        kill(pids[i], SIGTERM);
    for (unsigned long i = 0; i < nworkers; i++)
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    close(lfd);
    return failed;
}
