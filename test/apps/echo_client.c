/*
 * echo_client - a plain TCP client with no TLS code, for running under
 * the shim against echo_server (or a real TLS peer through the shim).
 *
 *   echo_client HOST PORT [--bytes N] [--chunk K] [--read-chunk K]
 *               [--line TEXT] [--timeout S] [--gethostbyname]
 *
 * Resolves HOST with getaddrinfo (so the shim learns the name; with
 * --gethostbyname, with the legacy gethostbyname, IPv4 only), connects
 * (blocking), then sends N deterministic pseudo-random bytes in writes of
 * K bytes from one thread, shuts down its sending side, and reads the echo
 * back in reads of read-chunk bytes in the main thread (full duplex),
 * comparing every byte. Prints "ok N bytes sha=<64-bit FNV-1a hex>".
 * --line TEXT sends TEXT and a newline and prints the reply line instead.
 *
 * Exit: 0 everything matched; 1 mismatch or I/O error; 2 usage or
 * timeout (alarm, default 60 s); 3 connect failed ("connect: <reason>");
 * 4 a --line reply that differs from TEXT.
 */
#include "ev_common.h"

#include <stdbool.h>

static void usage(void)
{
    fprintf(stderr, "usage: echo_client HOST PORT [--bytes N] [--chunk K] "
                    "[--read-chunk K] [--line TEXT] [--timeout S]\n"
                    "       [--gethostbyname]\n");
    exit(2);
}

/* Legacy programs resolve with gethostbyname and connect by address. */
static int connect_by_gethostbyname(const char *host, const char *port)
{
    struct hostent *h = gethostbyname(host);
    if (h == NULL || h->h_addrtype != AF_INET || h->h_addr_list[0] == NULL) {
        fprintf(stderr, "connect: %s: %s\n", host, hstrerror(h_errno));
        exit(3);
    }
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)atoi(port))};
    memcpy(&sin.sin_addr, h->h_addr_list[0], sizeof(sin.sin_addr));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        fprintf(stderr, "connect: %s\n", strerror(errno));
        exit(3);
    }
    return fd;
}

/* --line: one line out, one line back. */
static int line_exchange(int fd, const char *text)
{
    size_t len = strlen(text);
    char *out = malloc(len + 2);
    if (out == NULL)
        return 1;
    memcpy(out, text, len);
    out[len] = '\n';
    int bad = ev_write_all(fd, out, len + 1) != 0;
    free(out);
    if (bad) {
        fprintf(stderr, "echo_client: write: %s\n", strerror(errno));
        return 1;
    }
    char reply[65536];
    size_t got = 0;
    while (got < sizeof(reply) - 1 && (got == 0 || reply[got - 1] != '\n')) {
        ssize_t n = read(fd, reply + got, sizeof(reply) - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "echo_client: read: %s\n", strerror(errno));
            return 1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    reply[got] = '\0';
    if (got == 0 || reply[got - 1] != '\n') {
        fprintf(stderr, "echo_client: no complete reply line (%zu bytes)\n",
                got);
        return 1;
    }
    fputs(reply, stdout);
    close(fd);
    return got == len + 1 && memcmp(reply, text, len) == 0 ? 0 : 4;
}

int main(int argc, char **argv)
{
    ev_prog = "echo_client";
    if (argc < 3)
        usage();
    struct ev_client_opts o;
    ev_client_opts_init(&o);
    o.host = argv[1];
    o.port = argv[2];
    const char *line = NULL;
    bool legacy_resolver = false;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--gethostbyname") == 0)
            legacy_resolver = true;
        else if (strcmp(argv[i], "--line") == 0 && i + 1 < argc)
            line = argv[++i];
        else if (!ev_client_arg(&o, argc, argv, &i))
            usage();
    }
    if (o.chunk == 0 || o.read_chunk == 0)
        usage();
    ev_bound(o.timeout);

    int fd = legacy_resolver ? connect_by_gethostbyname(o.host, o.port)
                             : ev_connect(&o);
    if (line != NULL)
        return line_exchange(fd, line);

    struct ev_check c;
    ev_check_init(&c, o.bytes);
    if (ev_exchange_duplex(fd, &o, &c) != 0)
        return 1;
    ev_report_ok(stdout, &c);
    return 0;
}
