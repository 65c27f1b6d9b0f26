/*
 * test_inetd - the smallest inetd: one TCP port, one service, started per
 * connection with the connection on its standard input and output.
 *
 *   test_inetd --port-file F [--port P] [--env NAME=VALUE]... [--timeout S]
 *              -- PROG ARG...
 *
 * Listens on 127.0.0.1 (port P, default 0: any; the port is written to F
 * once listening),
 * and for each accepted connection forks a child that dup2()s the socket
 * onto descriptors 0 and 1 (inetd's "nowait" convention: one socket on
 * both), closes every other copy, sets the --env variables and execv()s
 * PROG. The parent closes its copy and reaps children as they end.
 *
 * It has no TLS code. Run without the shim it is the "parent that is not
 * under the shim" of an inetd-started service (the service gets the shim
 * through --env LD_PRELOAD=...); run under the shim with a listen
 * endpoint it is an inetd-style server whose accepted connection crosses
 * exec. Ends after --timeout seconds (default 60) or on SIGTERM.
 * Exit: 2 usage, 1 the listener cannot be set up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ENV 16

static void usage(void)
{
    fprintf(stderr, "usage: test_inetd --port-file F [--port P] "
                    "[--env NAME=VALUE]... [--timeout S] -- PROG ARG...\n");
    exit(2);
}

static int listener(const char *port_file, int port)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((unsigned short)port);
    socklen_t len = sizeof(sin);
    if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one,
                            sizeof(one)) != 0 ||
        bind(l, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(l, 64) != 0 ||
        getsockname(l, (struct sockaddr *)&sin, &len) != 0) {
        perror("test_inetd: listen");
        exit(1);
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d\n", ntohs(sin.sin_port)) < 0 ||
        fclose(f) != 0 || rename(tmp, port_file) != 0) {
        perror("test_inetd: port file");
        exit(1);
    }
    return l;
}

/* The child: the connection on 0 and 1, then the service. */
static void serve(int c, char *const envs[], int n_env, char *const argv[])
{
    if (dup2(c, 0) < 0 || dup2(c, 1) < 0) {
        perror("test_inetd: dup2");
        _exit(1);
    }
    if (c > 1)
        close(c);
    for (int i = 0; i < n_env; i++)
        if (putenv(envs[i]) != 0)
            _exit(1);
    signal(SIGALRM, SIG_DFL);
    alarm(0);
    execv(argv[0], argv);
    fprintf(stderr, "test_inetd: exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int main(int argc, char **argv)
{
    const char *port_file = NULL;
    char *envs[MAX_ENV];
    int n_env = 0, timeout = 60, port = 0, i;
    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
            port_file = argv[++i];
        else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--env") == 0 && i + 1 < argc &&
                 n_env < MAX_ENV)
            envs[n_env++] = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            timeout = atoi(argv[++i]);
        else
            usage();
    }
    if (port_file == NULL || i + 1 >= argc)
        usage();
    char **prog = &argv[i + 1];
    alarm((unsigned)timeout);
    int l = listener(port_file, port);
    for (;;) {
        int c = accept(l, NULL, NULL);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("test_inetd: accept");
            return 1;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(l);
            serve(c, envs, n_env, prog);
        }
        if (pid < 0)
            perror("test_inetd: fork");
        close(c);
    }
}
