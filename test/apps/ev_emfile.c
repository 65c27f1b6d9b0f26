/*
 * ev_emfile - a TLS connect when the process has exactly one descriptor
 * left: the socket takes it, so the connection's private descriptor
 * cannot be had.
 *
 *   ev_emfile HOST PORT [--spare N]
 *
 * One exchange first (so the shim has resolved the endpoint's name), then
 * RLIMIT_NOFILE goes down to 64 (soft and hard, so nothing can raise it),
 * the table is filled with /dev/null, one number freed (1 + N with
 * --spare: with 1 spare the shim gets its private descriptor and the
 * stand-in is what cannot be had), and it connects. Under the
 * shim the connect must fail with EMFILE (never be left unmanaged); then,
 * with a few numbers freed, a second connection must echo. Prints
 * "connect: -1 EMFILE" or "connect: 0", then "ok" after the second
 * exchange; exit 1 when a step fails, 2 on the time bound.
 */
#include "ev_common.h"

#include <sys/resource.h>

/* One connection echoing one line; 0 when it came back. */
static int exchange(const struct ev_client_opts *o)
{
    int fd = ev_connect(o);
    char buf[8];
    int ok = ev_write_all(fd, "again\n", 6) == 0 && read(fd, buf, 6) == 6 &&
             memcmp(buf, "again\n", 6) == 0;
    close(fd);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    ev_prog = "ev_emfile";
    struct ev_client_opts o;
    ev_client_opts_init(&o);
    int spare = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--spare") == 0 && i + 1 < argc)
            spare = atoi(argv[++i]);
        else if (!ev_client_arg(&o, argc, argv, &i))
            ev_client_usage(" [--spare N]");
    }
    o.timeout = 15;
    ev_client_start(&o, "");
    struct addrinfo *ai = ev_resolve(&o);
    if (exchange(&o) != 0) {
        fprintf(stderr, "ev_emfile: the first connection failed\n");
        return 1;
    }
    struct rlimit rl = {64, 64};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("ev_emfile: setrlimit");
        return 1;
    }
    int fillers[64], n = 0;
    while (n < 64 && (fillers[n] = open("/dev/null", O_RDONLY)) >= 0)
        n++;
    if (n == 0 || errno != EMFILE) {
        perror("ev_emfile: filling the table");
        return 1;
    }
    for (int i = 0; i <= spare && n > 0; i++)
        close(fillers[--n]);
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("ev_emfile: socket");
        return 1;
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    printf("connect: %d%s\n", rc, rc != 0 && errno == EMFILE ? " EMFILE"
                                  : rc != 0 ? " other" : "");
    fflush(stdout);
    close(fd);
    freeaddrinfo(ai);
    for (int i = 0; i < 8 && n > 0; i++)
        close(fillers[--n]);
    if (exchange(&o) != 0) {
        fprintf(stderr, "ev_emfile: the connection after freeing failed\n");
        return 1;
    }
    printf("ok\n");
    return 0;
}
