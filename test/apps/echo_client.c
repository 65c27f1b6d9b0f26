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
#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct prng {
    uint64_t state;
    uint64_t word;
    int left; /* bytes of word not used yet */
};

static void prng_init(struct prng *p)
{
    p->state = 0x9e3779b97f4a7c15ull;
    p->left = 0;
}

/* xorshift64*: a fixed stream, the same on both ends of the comparison. */
static unsigned char prng_byte(struct prng *p)
{
    if (p->left == 0) {
        p->state ^= p->state >> 12;
        p->state ^= p->state << 25;
        p->state ^= p->state >> 27;
        p->word = p->state * 2685821657736338717ull;
        p->left = 8;
    }
    unsigned char b = (unsigned char)p->word;
    p->word >>= 8;
    p->left--;
    return b;
}

struct sender {
    int fd;
    unsigned long long bytes;
    size_t chunk;
    int failed;
};

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "echo_client: timed out\n";
    (void)write(2, msg, sizeof(msg) - 1);
    _exit(2);
}

static void usage(void)
{
    fprintf(stderr, "usage: echo_client HOST PORT [--bytes N] [--chunk K] "
                    "[--read-chunk K] [--line TEXT] [--timeout S]\n"
                    "       [--gethostbyname]\n");
    exit(2);
}

/* Writes all of buf; returns 0 or -1 with errno. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void *send_all(void *arg)
{
    struct sender *s = arg;
    char *buf = malloc(s->chunk);
    struct prng p;
    prng_init(&p);
    for (unsigned long long sent = 0; buf != NULL && sent < s->bytes;) {
        size_t n = s->bytes - sent < s->chunk ? (size_t)(s->bytes - sent)
                                              : s->chunk;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)prng_byte(&p);
        if (write_all(s->fd, buf, n) != 0) {
            fprintf(stderr, "echo_client: write: %s\n", strerror(errno));
            s->failed = 1;
            break;
        }
        sent += n;
    }
    if (buf == NULL) {
        fprintf(stderr, "echo_client: out of memory\n");
        s->failed = 1;
    }
    free(buf);
    /* EOF to the server; on failure also wake our own reader. */
    shutdown(s->fd, s->failed ? SHUT_RDWR : SHUT_WR);
    return NULL;
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

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "connect: %s: %s\n", host, gai_strerror(rc));
        exit(3);
    }
    int err = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            freeaddrinfo(res);
            return fd;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    fprintf(stderr, "connect: %s\n", strerror(err));
    exit(3);
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
    int bad = write_all(fd, out, len + 1) != 0;
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
    if (argc < 3)
        usage();
    const char *host = argv[1], *port = argv[2], *line = NULL;
    unsigned long long bytes = 1024 * 1024;
    size_t chunk = 16384, read_chunk = 16384;
    unsigned timeout = 60;
    bool legacy_resolver = false;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--gethostbyname") == 0) {
            legacy_resolver = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--bytes") == 0)
            bytes = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--chunk") == 0)
            chunk = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--read-chunk") == 0)
            read_chunk = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--line") == 0)
            line = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0)
            timeout = (unsigned)strtoul(argv[++i], NULL, 10);
        else
            usage();
    }
    if (chunk == 0 || read_chunk == 0)
        usage();
    signal(SIGALRM, on_alarm);
    alarm(timeout);

    int fd = legacy_resolver ? connect_by_gethostbyname(host, port)
                             : connect_to(host, port);
    if (line != NULL)
        return line_exchange(fd, line);

    struct sender snd = {fd, bytes, chunk, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, send_all, &snd) != 0) {
        fprintf(stderr, "echo_client: cannot start the writer thread\n");
        return 1;
    }
    char *buf = malloc(read_chunk);
    if (buf == NULL)
        return 1;
    struct prng expect;
    prng_init(&expect);
    uint64_t fnv = 14695981039346656037ull;
    unsigned long long got = 0;
    int bad = 0;
    for (;;) {
        ssize_t n = read(fd, buf, read_chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "echo_client: read after %llu bytes: %s\n", got,
                    strerror(errno));
            bad = 1;
            break;
        }
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n && !bad; i++) {
            unsigned char c = (unsigned char)buf[i];
            if (got + (unsigned long long)i >= bytes ||
                c != prng_byte(&expect)) {
                fprintf(stderr, "echo_client: mismatch at byte %llu\n",
                        got + (unsigned long long)i);
                bad = 1;
            }
            fnv = (fnv ^ c) * 1099511628211ull;
        }
        got += (unsigned long long)n;
        if (bad)
            break;
    }
    pthread_join(t, NULL);
    free(buf);
    if (!bad && got != bytes) {
        fprintf(stderr, "echo_client: got %llu of %llu bytes\n", got, bytes);
        bad = 1;
    }
    if (close(fd) != 0) {
        fprintf(stderr, "echo_client: close: %s\n", strerror(errno));
        bad = 1;
    }
    if (bad || snd.failed)
        return 1;
    printf("ok %llu bytes sha=%016llx\n", got, (unsigned long long)fnv);
    return 0;
}
