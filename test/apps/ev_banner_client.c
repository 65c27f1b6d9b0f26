/*
 * ev_banner_client - the client of a server-speaks-first protocol, with
 * no TLS code.
 *
 *   ev_banner_client HOST PORT [--bytes N] [--chunk K] [--read-chunk K]
 *                    [--timeout S]
 *
 * Connects (blocking), writes nothing, and waits for the server's banner
 * with poll(POLLIN) alone before each read of it: under the shim that
 * poll() is what must drive the TLS handshake and report the banner's
 * bytes. The banner must be exactly "220 secshim-test ready\r\n" (else
 * "bad banner", exit 1). Then the echo exchange of ev_common.h: a writer
 * thread sends N bytes and shuts down its side while the main thread
 * reads and checks the echo. The banner is not part of the checksum, so
 * the "ok" line equals echo_client's for the same N.
 */
#include "ev_common.h"

#include <poll.h>

static const char banner[] = "220 secshim-test ready\r\n";

/* Reads the banner, waiting with poll(POLLIN) before every read. Returns
 * 0 if it is the expected one, else -1 after a message. */
static int read_banner(int fd)
{
    char got[sizeof(banner)];
    size_t len = 0;
    while (len < sizeof(banner) - 1 && (len == 0 || got[len - 1] != '\n')) {
        struct pollfd p = {fd, POLLIN, 0};
        int n = poll(&p, 1, -1); /* bounded by the alarm */
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "%s: poll: %s\n", ev_prog, strerror(errno));
            return -1;
        }
        /* Only what is left of the banner: the server sends no more yet. */
        ssize_t r = read(fd, got + len, sizeof(banner) - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "%s: banner read: %s\n", ev_prog,
                    r == 0 ? "EOF" : strerror(errno));
            return -1;
        }
        len += (size_t)r;
    }
    got[len] = '\0';
    if (strcmp(got, banner) != 0) {
        fprintf(stderr, "%s: bad banner \"%s\"\n", ev_prog, got);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    ev_prog = "ev_banner_client";
    struct ev_client_opts o;
    ev_client_parse(&o, argc, argv);
    ev_client_start(&o, "");

    int fd = ev_connect(&o);
    if (read_banner(fd) != 0)
        return 1;
    struct ev_check c;
    ev_check_init(&c, o.bytes);
    if (ev_exchange_duplex(fd, &o, &c) != 0)
        return 1;
    ev_report_ok(stdout, &c);
    return 0;
}
