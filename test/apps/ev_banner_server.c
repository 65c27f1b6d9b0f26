/*
 * ev_banner_server - a server-speaks-first echo server with no TLS code.
 *
 *   ev_banner_server [-4|-6] PORT|0 [--port-file F] [--once|--max-conns N]
 *                    [--timeout S]
 *
 * Like an SMTP or FTP server: right after accept() it writes the banner
 * "220 secshim-test ready\r\n" before reading anything, so under the shim
 * the first thing on an accepted TLS socket is a write (the handshake has
 * not happened yet). Then it echoes the connection with blocking
 * read/write of 512 bytes until EOF. Connections are served one after the
 * other. Exit status as in ev_common.h.
 */
#include "ev_common.h"

static const char banner[] = "220 secshim-test ready\r\n";

int main(int argc, char **argv)
{
    ev_prog = "ev_banner_server";
    struct ev_server_opts o;
    int lfd = ev_server_setup(&o, argc, argv, 0);
    if (lfd < 0)
        return 1;

    int failed = 0;
    for (unsigned long n = 0; o.max_conns == 0 || n < o.max_conns; n++) {
        int fd = ev_accept(lfd);
        if (fd < 0)
            return 1;
        if (ev_write_all(fd, banner, sizeof(banner) - 1) != 0) {
            fprintf(stderr, "%s: banner: %s\n", ev_prog, strerror(errno));
            close(fd);
            failed = 1;
            continue;
        }
        failed |= ev_echo_blocking(fd, 512);
    }
    close(lfd);
    return failed;
}
