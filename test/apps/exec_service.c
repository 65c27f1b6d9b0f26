/*
 * exec_service - an inetd service: the connection is its standard input
 * and output.
 *
 *   exec_service
 *
 * First writes one line to stderr, "names peer ADDR:PORT local ADDR:PORT
 * family F" (getpeername/getsockname/getsockopt(SO_DOMAIN) of descriptor
 * 0; "names error: ..." when they fail), then, with stdio only, reads
 * lines from stdin and writes each back reversed to stdout until EOF.
 * Exit 0 at EOF, 1 on a write error. No TLS code: under the shim the
 * connection is TLS on the wire, and across an exec it reaches this
 * program through a relay.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void addr_text(const struct sockaddr_storage *ss, char *out,
                      size_t len)
{
    char a[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
        port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof(a));
        port = ntohs(in6->sin6_port);
    } else {
        snprintf(a, sizeof(a), "family-%d", ss->ss_family);
    }
    snprintf(out, len, "%s:%u", a, port);
}

static void report_names(void)
{
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof(peer), llen = sizeof(local);
    int domain = -1;
    socklen_t dlen = sizeof(domain);
    if (getpeername(0, (struct sockaddr *)&peer, &plen) != 0 ||
        getsockname(0, (struct sockaddr *)&local, &llen) != 0 ||
        getsockopt(0, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) != 0) {
        perror("names error");
        return;
    }
    char p[80], l[80];
    addr_text(&peer, p, sizeof(p));
    addr_text(&local, l, sizeof(l));
    fprintf(stderr, "names peer %s local %s family %s\n", p, l,
            domain == AF_INET ? "inet" : domain == AF_INET6 ? "inet6"
                                                            : "other");
}

int main(void)
{
    report_names();
    char line[4096];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        size_t n = strcspn(line, "\r\n");
        for (size_t i = 0; i < n / 2; i++) {
            char t = line[i];
            line[i] = line[n - 1 - i];
            line[n - 1 - i] = t;
        }
        line[n] = '\0';
        if (printf("%s\n", line) < 0 || fflush(stdout) != 0)
            return 1;
    }
    return 0;
}
