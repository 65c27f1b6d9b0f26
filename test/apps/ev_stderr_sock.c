/*
 * ev_stderr_sock - a program that makes its TLS socket its stderr, then
 * meets a peer that breaks the TLS stream.
 *
 *   ev_stderr_sock HOST PORT
 *
 * Connects, sends "hello\n" and reads the reply line, then dup2()s the
 * socket onto descriptor 2 (inetd services do this) and reads again; the
 * peer now sends bytes that are not TLS records. Whatever the shim logs
 * about that must not go to the socket, and the program must not hang:
 * it prints "read: -1 ERRNO-NAME" or "read: N" and exits 0; exit 2 on the
 * time bound.
 */
#include "ev_common.h"

int main(int argc, char **argv)
{
    ev_prog = "ev_stderr_sock";
    struct ev_client_opts o;
    ev_client_parse(&o, argc, argv);
    o.timeout = 10;
    ev_client_start(&o, "");
    int fd = ev_connect(&o);
    char buf[256];
    if (ev_write_all(fd, "hello\n", 6) != 0 || read(fd, buf, sizeof(buf)) <= 0) {
        perror("ev_stderr_sock: first exchange");
        return 1;
    }
    if (dup2(fd, 2) != 2) {
        perror("ev_stderr_sock: dup2");
        return 1;
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    int e = errno;
    printf("read: %zd%s%s\n", n, n < 0 ? " " : "",
           n < 0 ? (e == ECONNRESET ? "ECONNRESET" : strerror(e)) : "");
    return 0;
}
