/*
 * ev_forkconn_server - a fork-per-connection echo server with no TLS code.
 *
 *   ev_forkconn_server [-4|-6] PORT|0 [--port-file F]
 *                      [--once|--max-conns N] [--timeout S]
 *
 * The classic inetd-style server: the parent accepts (blocking) and forks
 * a child for each connection, then closes its own copy of the accepted
 * socket at once, before the child has read anything. Under the shim that
 * close in the parent must neither end the child's connection nor send
 * anything on its behalf. The child closes the listener and echoes with
 * read/write of 512 bytes until EOF. The parent reaps finished children
 * as it goes; with --max-conns N it waits for all N and exits 0 only if
 * every child did. Exit status as in ev_common.h.
 */
#include "ev_common.h"

#include <sys/wait.h>

/* Reaps children; blocking until none is left if `all`. Returns 1 if any
 * reaped child failed, else 0. */
static int reap(int all)
{
    int failed = 0, status;
    for (;;) {
        pid_t pid = waitpid(-1, &status, all ? 0 : WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return failed;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s: child %ld failed (status 0x%x)\n", ev_prog,
                    (long)pid, status);
            failed = 1;
        }
    }
}

int main(int argc, char **argv)
{
    ev_prog = "ev_forkconn_server";
    struct ev_server_opts o;
    int lfd = ev_server_setup(&o, argc, argv, 0);
    if (lfd < 0)
        return 1;

    int failed = 0;
    for (unsigned long n = 0; o.max_conns == 0 || n < o.max_conns; n++) {
        int fd = ev_accept(lfd);
        if (fd < 0)
            return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            ev_bound(o.timeout); /* alarms are not inherited */
            exit(ev_echo_blocking(fd, 512));
        }
        if (pid < 0) {
            fprintf(stderr, "%s: fork: %s\n", ev_prog, strerror(errno));
            failed = 1;
        }
        close(fd); /* the parent's copy only; the child's lives on */
        failed |= reap(0);
    }
    failed |= reap(1);
    close(lfd);
    return failed;
}
