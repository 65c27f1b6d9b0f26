/*
 * exec_client - connects, puts the socket on its standard output and
 * execs a helper that writes there.
 *
 *   exec_client [--fallback TEXT] HOST PORT PROG ARG...
 *
 * Resolves HOST with getaddrinfo, connects (blocking), dup2()s the socket
 * onto descriptor 1, closes the original and execvp()s PROG: whatever the
 * helper prints goes to the peer. No TLS code: under the shim the helper's
 * output must arrive as TLS application data, which a relay carries
 * across the exec. With --fallback, an exec that fails is followed by a
 * write of TEXT and a newline to descriptor 1 (the program goes on with
 * its connection, as after any failed exec), a shutdown(SHUT_WR) and a
 * read of whatever comes back until EOF; exit 0 when it was all written. Exit: 2 usage, 3 connect failed, 127 exec failed.
 */
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *fallback = NULL;
    if (argc > 2 && strcmp(argv[1], "--fallback") == 0) {
        fallback = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: exec_client [--fallback TEXT] HOST PORT "
                        "PROG ARG...\n");
        return 2;
    }
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(argv[1], argv[2], &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "connect: %s\n", gai_strerror(rc));
        return 3;
    }
    int s = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (s < 0 || connect(s, res->ai_addr, res->ai_addrlen) != 0) {
        perror("connect");
        return 3;
    }
    freeaddrinfo(res);
    if (dup2(s, 1) < 0) {
        perror("dup2");
        return 1;
    }
    close(s);
    execvp(argv[3], &argv[3]);
    perror("exec");
    if (fallback == NULL)
        return 127;
    char line[4096];
    int n = snprintf(line, sizeof(line), "%s\n", fallback);
    if (n <= 0 || write(1, line, (size_t)n) != n || shutdown(1, SHUT_WR) != 0)
        return 1;
    while (read(1, line, sizeof(line)) > 0)
        ;
    return 0;
}
