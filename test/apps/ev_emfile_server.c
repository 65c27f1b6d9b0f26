/*
 * ev_emfile_server - accept() when the process has exactly one descriptor
 * left: the accepted socket takes it, so under the shim the connection's
 * private descriptor cannot be had.
 *
 *   ev_emfile_server [-4|-6] PORT|0 [--port-file F] [--timeout S] [--spare N]
 *
 * Echoes one connection first (so the shim has built the endpoint's
 * context), then RLIMIT_NOFILE goes down to 64 (soft and hard, so nothing
 * can raise it), the table is filled with /dev/null, one number freed
 * (1 + N with --spare: with 1 spare the shim gets its private descriptor
 * and the stand-in is what cannot be had),
 * and it accepts once: prints "accept: FD" and echoes that connection, or
 * "accept: -1 EMFILE" (or "other" and the errno's name). Then, with a few
 * numbers freed, it accepts again and echoes: "ok". Over plain TCP the
 * tight accept succeeds; under the shim it must fail with EMFILE, the
 * connection closed (docs/shim.md, "Descriptors"), and the next be
 * served. Exit 1 when a step fails, 2 on usage or the time bound.
 */
#include "ev_common.h"

#include <fcntl.h>
#include <sys/resource.h>

static int serve_one(int lfd)
{
    int fd = ev_accept(lfd);
    return fd < 0 ? 1 : ev_echo_blocking(fd, 4096);
}

int main(int argc, char **argv)
{
    ev_prog = "ev_emfile_server";
    struct ev_server_opts o;
    ev_server_opts_init(&o);
    int spare = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--spare") == 0 && i + 1 < argc)
            spare = atoi(argv[++i]);
        else if (!ev_server_arg(&o, argc, argv, &i))
            ev_server_usage(" [--spare N]");
    }
    int lfd = ev_server_start(&o, 0);
    if (lfd < 0 || serve_one(lfd) != 0)
        return 1;
    struct rlimit rl = {64, 64};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("ev_emfile_server: setrlimit");
        return 1;
    }
    int fillers[64], n = 0;
    while (n < 64 && (fillers[n] = open("/dev/null", O_RDONLY)) >= 0)
        n++;
    if (n == 0 || errno != EMFILE) {
        perror("ev_emfile_server: filling the table");
        return 1;
    }
    for (int i = 0; i <= spare && n > 0; i++)
        close(fillers[--n]);
    int fd = accept(lfd, NULL, NULL);
    int e = errno;
    printf("accept: %d%s%s\n", fd < 0 ? -1 : fd,
           fd < 0 && e == EMFILE ? " EMFILE" : fd < 0 ? " other " : "",
           fd < 0 && e != EMFILE ? strerror(e) : "");
    fflush(stdout);
    if (fd >= 0 && ev_echo_blocking(fd, 4096) != 0)
        return 1;
    for (int i = 0; i < 8 && n > 0; i++)
        close(fillers[--n]);
    if (serve_one(lfd) != 0)
        return 1;
    printf("ok\n");
    return 0;
}
