/*
 * eof_reader - reads one connection to its end and says how it ended, for
 * the truncation cases (test/integration/cases_errors.py). Plain C, no TLS
 * code.
 *
 *   eof_reader connect HOST PORT
 *   eof_reader listen PORT PORT_FILE  (127.0.0.1, one connection; PORT_FILE
 *                                      is written once it listens)
 *
 * Prints "data: TEXT" (what arrived, as text) and then "end: eof" when a
 * read returned 0, or "end: error NAME" (ECONNRESET, ...) when one failed.
 * Exit 0 when it got to an end, 2 on usage, setup failure or the alarm
 * (20 s).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        perror("eof_reader: connect");
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int accept_one(const char *port, const char *port_file)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((unsigned short)atoi(port)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(l, 1) != 0 || getsockname(l, (struct sockaddr *)&a, &len) != 0)
        return -1;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "%d\n", ntohs(a.sin_port));
    fclose(f);
    if (rename(tmp, port_file) != 0)
        return -1;
    int fd = accept(l, NULL, NULL);
    close(l);
    return fd;
}

static const char *errno_name(int e)
{
    switch (e) {
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case EPROTO: return "EPROTO";
    case ETIMEDOUT: return "ETIMEDOUT";
    default: return strerror(e);
    }
}

int main(int argc, char **argv)
{
    alarm(20);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int fd = -1;
    if (argc == 4 && strcmp(argv[1], "connect") == 0)
        fd = connect_to(argv[2], argv[3]);
    else if (argc == 4 && strcmp(argv[1], "listen") == 0)
        fd = accept_one(argv[2], argv[3]);
    else {
        fprintf(stderr, "usage: eof_reader connect HOST PORT | "
                        "eof_reader listen PORT PORT_FILE\n");
        return 2;
    }
    if (fd < 0)
        return 2;
    char data[4096];
    size_t total = 0;
    for (;;) {
        ssize_t n = read(fd, data + total, sizeof(data) - 1 - total);
        if (n > 0 && total + (size_t)n < sizeof(data) - 1) {
            total += (size_t)n;
            continue;
        }
        data[total] = '\0';
        printf("data: %s\n", data);
        if (n == 0)
            printf("end: eof\n");
        else if (n < 0)
            printf("end: error %s\n", errno_name(errno));
        else
            printf("end: too much data\n");
        break;
    }
    close(fd);
    return 0;
}
