/*
 * reset_writer - connects, waits for the harness, writes a line, then reads
 * once, for the case of a write that meets a peer who already reset the
 * connection (test/integration/cases_errors.py). Plain C, no TLS code.
 *
 *   reset_writer HOST PORT
 *
 * Connects (getaddrinfo, blocking), prints "connected", waits for a line
 * on stdin (the harness sends it once the peer has reset the connection),
 * writes "late line\n" and prints "write: ok N" or "write: error NAME",
 * then makes one blocking read and prints "read: N", "read: eof" or
 * "read: error NAME". Exit 0 once the read returned, 2 on usage, setup
 * failure or the alarm (10 s: "timed out").
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "timed out\n";
    (void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
    _exit(2);
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: reset_writer HOST PORT\n");
        return 2;
    }
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN); /* a write to a reset peer says EPIPE */
    alarm(10);
    int fd = connect_to(argv[1], argv[2]);
    if (fd < 0) {
        printf("connect: %s\n", strerror(errno));
        return 2;
    }
    printf("connected\n");
    fflush(stdout);
    char line[64];
    if (fgets(line, sizeof(line), stdin) == NULL)
        return 2;
    static const char text[] = "late line\n";
    ssize_t n = write(fd, text, sizeof(text) - 1);
    if (n < 0)
        printf("write: error %s\n", strerrorname_np(errno));
    else
        printf("write: ok %zd\n", n);
    fflush(stdout);
    char buf[256];
    n = read(fd, buf, sizeof(buf));
    if (n > 0)
        printf("read: %zd\n", n);
    else if (n == 0)
        printf("read: eof\n");
    else
        printf("read: error %s\n", strerrorname_np(errno));
    return 0;
}
