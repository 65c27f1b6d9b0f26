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
#include "ev_common.h"

static void usage(void)
{
    fprintf(stderr, "usage: echo_server [-4|-6] PORT|0 [--once] "
                    "[--port-file F] [--timeout S]\n");
    exit(2);
}

/* Echoes one connection until EOF. Returns 0, or 1 on an error. */
static int echo(int fd)
{
    /* Per thread, so that 64 KiB reads need no large stack. */
    static __thread char buf[64 * 1024];
    return ev_echo_into(fd, buf, sizeof(buf));
}

static void *echo_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    return (void *)(intptr_t)echo(fd);
}

int main(int argc, char **argv)
{
    ev_prog = "echo_server";
    struct ev_server_opts o;
    ev_server_opts_init(&o);
    o.timeout = 300;
    for (int i = 1; i < argc; i++) {
        /* Only --once: echo_server predates --max-conns. */
        if (strcmp(argv[i], "--max-conns") == 0 ||
            !ev_server_arg(&o, argc, argv, &i))
            usage();
    }
    if (o.port_arg == NULL)
        usage();
    int lfd = ev_server_start(&o, 0);
    if (lfd < 0)
        return 1;

    for (;;) {
        int fd = ev_accept(lfd);
        if (fd < 0)
            return 1;
        if (o.max_conns == 1) /* --once */
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
