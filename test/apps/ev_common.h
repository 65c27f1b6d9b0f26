/*
 * ev_common.h - what the test/apps/ev_*.c programs share: their command
 * lines, the deterministic payload and its check, the loopback listener
 * and the port file. Header-only (static inline) because the Makefile
 * builds each test/apps source file alone into its own program. It holds
 * no I/O style beyond plain blocking calls (and the one writer thread of
 * the blocking full-duplex exchange that echo_client and ev_banner_client
 * both make), so that each program's mechanism (poll, epoll, select,
 * threads, fork, stdio) stays in its file.
 *
 * The conventions are echo_server's and echo_client's, so the harness can
 * drive every program alike:
 *
 *   servers: NAME [-4|-6] PORT|0 [--port-file F] [--once | --max-conns N]
 *                 [--timeout S]
 *     bind 127.0.0.1 (or ::1), write the bound port to F (temporary name,
 *     then rename), echo every byte back, and with --max-conns N exit after
 *     the N-th connection has ended: 0 if every one was echoed without an
 *     error, 1 otherwise. Without it they serve until stopped. 2: usage or
 *     the alarm(S) bound (default 120 s) fired.
 *   clients: NAME HOST PORT [--bytes N] [--chunk K] [--read-chunk K]
 *                 [--timeout S]
 *     send N bytes of echo_client's xorshift64* stream in writes of K,
 *     then shutdown(SHUT_WR), read the echo in reads of read-chunk bytes,
 *     compare every byte, and print "ok N bytes sha=<FNV-1a 64 hex>" (the
 *     same line echo_client prints for the same N). Exit 0 all matched; 1
 *     mismatch or I/O error; 2 usage or timeout (default 60 s); 3 connect
 *     failed ("connect: <reason>").
 */
#ifndef EV_COMMON_H
#define EV_COMMON_H

/* Debian builds its packages with -D_FORTIFY_SOURCE=2 (dpkg-buildflags),
 * which turns some calls into fortified entry points (__read_chk,
 * __poll_chk, __fdelt_chk, ...). Build these programs the same way so the
 * shim is tested on those names too. It only works with optimisation. */
#if defined(__OPTIMIZE__) && !defined(_FORTIFY_SOURCE)
#define _FORTIFY_SOURCE 2
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The program name for messages; each main sets it first. */
static const char *ev_prog = "ev";

/* ---- the payload: echo_client's stream, so checksums are comparable */

struct ev_prng {
    uint64_t state;
    uint64_t word;
    int left; /* bytes of word not used yet */
};

static inline void ev_prng_init(struct ev_prng *p)
{
    p->state = 0x9e3779b97f4a7c15ull;
    p->word = 0;
    p->left = 0;
}

/* xorshift64*: a fixed stream, the same on both ends of the comparison. */
static inline unsigned char ev_prng_byte(struct ev_prng *p)
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

static inline void ev_prng_fill(struct ev_prng *p, char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)ev_prng_byte(p);
}

/* The receiving side's running comparison and checksum of one stream. */
struct ev_check {
    struct ev_prng expect;
    uint64_t fnv;
    unsigned long long got;
    unsigned long long want;
    int bad;
};

static inline void ev_check_init(struct ev_check *c, unsigned long long want)
{
    ev_prng_init(&c->expect);
    c->fnv = 14695981039346656037ull;
    c->got = 0;
    c->want = want;
    c->bad = 0;
}

/* Takes n received bytes; returns 0, or -1 after a message on the first
 * byte that is not the expected one (or one past the expected length). */
static inline int ev_check_feed(struct ev_check *c, const char *buf, size_t n)
{
    for (size_t i = 0; i < n && !c->bad; i++) {
        unsigned char b = (unsigned char)buf[i];
        if (c->got + i >= c->want || b != ev_prng_byte(&c->expect)) {
            fprintf(stderr, "%s: mismatch at byte %llu\n", ev_prog,
                    c->got + (unsigned long long)i);
            c->bad = 1;
        }
        c->fnv = (c->fnv ^ b) * 1099511628211ull;
    }
    c->got += n;
    return c->bad ? -1 : 0;
}

/* At EOF: returns 0 if the whole stream came and matched, else -1. */
static inline int ev_check_done(struct ev_check *c)
{
    if (!c->bad && c->got != c->want) {
        fprintf(stderr, "%s: got %llu of %llu bytes\n", ev_prog, c->got,
                c->want);
        c->bad = 1;
    }
    return c->bad ? -1 : 0;
}

static inline void ev_report_ok(FILE *to, const struct ev_check *c)
{
    fprintf(to, "ok %llu bytes sha=%016llx\n", c->got,
            (unsigned long long)c->fnv);
    fflush(to);
}

/* ---- process bounds */

static inline void ev_on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = ": timed out\n";
    (void)!write(2, ev_prog, strlen(ev_prog));
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(2);
}

/* Bounds the whole run; a fork child calls it again (alarms are not
 * inherited across fork). */
static inline void ev_bound(unsigned seconds)
{
    signal(SIGALRM, ev_on_alarm);
    alarm(seconds);
}

static inline int ev_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Writes all of buf with blocking write(); returns 0 or -1 with errno. */
static inline int ev_write_all(int fd, const char *buf, size_t len)
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

/* ---- servers */

struct ev_server_opts {
    int family;
    const char *port_arg;
    const char *port_file;
    unsigned long max_conns; /* 0: serve until stopped */
    unsigned timeout;
};

static inline void ev_server_usage(const char *extra)
{
    fprintf(stderr, "usage: %s [-4|-6] PORT|0 [--port-file F] "
                    "[--once|--max-conns N] [--timeout S]%s%s\n",
            ev_prog, extra[0] ? " " : "", extra);
    exit(2);
}

static inline void ev_server_opts_init(struct ev_server_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->family = AF_INET;
    o->timeout = 120;
}

/* Consumes argv[*i] (and its value) if it is a common server option;
 * returns 1 if it did, 0 if the caller must handle it. */
static inline int ev_server_arg(struct ev_server_opts *o, int argc,
                                char **argv, int *i)
{
    const char *a = argv[*i];
    int has_val = *i + 1 < argc;
    if (strcmp(a, "-4") == 0)
        o->family = AF_INET;
    else if (strcmp(a, "-6") == 0)
        o->family = AF_INET6;
    else if (strcmp(a, "--once") == 0)
        o->max_conns = 1;
    else if (strcmp(a, "--max-conns") == 0 && has_val)
        o->max_conns = strtoul(argv[++*i], NULL, 10);
    else if (strcmp(a, "--port-file") == 0 && has_val)
        o->port_file = argv[++*i];
    else if (strcmp(a, "--timeout") == 0 && has_val)
        o->timeout = (unsigned)strtoul(argv[++*i], NULL, 10);
    else if (o->port_arg == NULL && a[0] != '-')
        o->port_arg = a;
    else
        return 0;
    return 1;
}

static inline int ev_write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 ||
        rename(tmp, path) != 0) {
        fprintf(stderr, "%s: port file %s: %s\n", ev_prog, path,
                strerror(errno));
        return -1;
    }
    return 0;
}

/* A listening socket on loopback (non-blocking if asked); returns it, or
 * -1 after a message. *bound gets the port actually bound. */
static inline int ev_listen(int family, unsigned port, int nonblock,
                            unsigned *bound)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof(*a);
    }
    int fd = socket(family, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    int one = 1;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        fprintf(stderr, "%s: listen on port %u: %s\n", ev_prog, port,
                strerror(errno));
        return -1;
    }
    *bound = ntohs(family == AF_INET6
                       ? ((struct sockaddr_in6 *)&ss)->sin6_port
                       : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* Checks the options, sets the bounds, listens and announces the port
 * (port file, then "listening on port P" on stdout). Returns the listener
 * or -1 after a message. */
static inline int ev_server_start(struct ev_server_opts *o, int nonblock)
{
    if (o->port_arg == NULL)
        ev_server_usage("");
    ev_bound(o->timeout);
    signal(SIGPIPE, SIG_IGN); /* a client that leaves is not our failure */
    unsigned port;
    int lfd = ev_listen(o->family, (unsigned)strtoul(o->port_arg, NULL, 10),
                        nonblock, &port);
    if (lfd < 0)
        return -1;
    if (o->port_file != NULL && ev_write_port_file(o->port_file, port) != 0)
        return -1;
    printf("listening on port %u\n", port);
    fflush(stdout);
    return lfd;
}

/* The start of a server with no options of its own: the common options
 * (anything else is a usage error, exit 2), then ev_server_start. Returns
 * the listener, or -1 after a message. */
static inline int ev_server_setup(struct ev_server_opts *o, int argc,
                                  char **argv, int nonblock)
{
    ev_server_opts_init(o);
    for (int i = 1; i < argc; i++)
        if (!ev_server_arg(o, argc, argv, &i))
            ev_server_usage("");
    return ev_server_start(o, nonblock);
}

/* A blocking accept() on the listener, again after EINTR and after a
 * client that left before it was accepted (ECONNABORTED). Returns the new
 * socket, or -1 after a message. */
static inline int ev_accept(int lfd)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0)
            return fd;
        if (errno != EINTR && errno != ECONNABORTED)
            break;
    }
    fprintf(stderr, "%s: accept: %s\n", ev_prog, strerror(errno));
    return -1;
}

/* Echoes one blocking connection with reads of up to bufsize bytes into
 * the caller's buf until EOF, then closes it. Returns 0, or 1 after a
 * message. */
static inline int ev_echo_into(int fd, char *buf, size_t bufsize)
{
    for (;;) {
        ssize_t n = read(fd, buf, bufsize);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            break;
        if (n < 0 || ev_write_all(fd, buf, (size_t)n) != 0) {
            fprintf(stderr, "%s: %s: %s\n", ev_prog, n < 0 ? "read" : "write",
                    strerror(errno));
            close(fd);
            return 1;
        }
    }
    if (close(fd) != 0) {
        fprintf(stderr, "%s: close: %s\n", ev_prog, strerror(errno));
        return 1;
    }
    return 0;
}

/* ev_echo_into with reads of bufsize bytes (at most 4096). */
static inline int ev_echo_blocking(int fd, size_t bufsize)
{
    char buf[4096];
    return ev_echo_into(fd, buf, bufsize < sizeof(buf) ? bufsize : sizeof(buf));
}

/* ---- non-blocking servers: one connection's pending output */

/* What a connection has read and not yet written back. */
struct ev_outbuf {
    char *data; /* cap bytes, the caller's */
    size_t cap;
    size_t off; /* first pending byte */
    size_t len; /* pending bytes */
};

static inline void ev_outbuf_init(struct ev_outbuf *b, char *data,
                                  size_t cap)
{
    *b = (struct ev_outbuf){data, cap, 0, 0};
}

/* Returns the free bytes after the pending ones, first moving those to
 * the front when they reach the end of the buffer. */
static inline size_t ev_outbuf_room(struct ev_outbuf *b)
{
    if (b->off > 0 && b->off + b->len == b->cap) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
    }
    return b->cap - b->off - b->len;
}

/* One read() of at most max bytes (and the room left) onto the end of the
 * pending output. Returns read()'s result: bytes, 0 at EOF, or -1 with
 * errno. */
static inline ssize_t ev_outbuf_read(int fd, struct ev_outbuf *b, size_t max)
{
    size_t room = b->cap - b->off - b->len;
    ssize_t n = read(fd, b->data + b->off + b->len, room < max ? room : max);
    if (n > 0)
        b->len += (size_t)n;
    return n;
}

/* Writes pending output until it is gone or the socket says EAGAIN.
 * Returns 0, or -1 after a message. */
static inline int ev_outbuf_flush(int fd, struct ev_outbuf *b)
{
    while (b->len > 0) {
        ssize_t n = write(fd, b->data + b->off, b->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0) {
            fprintf(stderr, "%s: write: %s\n", ev_prog, strerror(errno));
            return -1;
        }
        b->off += (size_t)n;
        b->len -= (size_t)n;
    }
    b->off = 0;
    return 0;
}

/* ---- clients */

struct ev_client_opts {
    const char *host;
    const char *port;
    unsigned long long bytes;
    size_t chunk;
    size_t read_chunk;
    unsigned timeout;
};

static inline void ev_client_usage(const char *extra)
{
    fprintf(stderr, "usage: %s HOST PORT [--bytes N] [--chunk K] "
                    "[--read-chunk K] [--timeout S]%s%s\n",
            ev_prog, extra[0] ? " " : "", extra);
    exit(2);
}

static inline void ev_client_opts_init(struct ev_client_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->bytes = 1024 * 1024;
    o->chunk = 16384;
    o->read_chunk = 16384;
    o->timeout = 60;
}

/* Consumes argv[*i] (and its value) if it is a common client option;
 * returns 1 if it did, 0 if the caller must handle it. */
static inline int ev_client_arg(struct ev_client_opts *o, int argc,
                                char **argv, int *i)
{
    const char *a = argv[*i];
    if (a[0] != '-' && o->host == NULL) {
        o->host = a;
        return 1;
    }
    if (a[0] != '-' && o->port == NULL) {
        o->port = a;
        return 1;
    }
    if (*i + 1 >= argc)
        return 0;
    const char *v = argv[*i + 1];
    if (strcmp(a, "--bytes") == 0)
        o->bytes = strtoull(v, NULL, 10);
    else if (strcmp(a, "--chunk") == 0)
        o->chunk = strtoul(v, NULL, 10);
    else if (strcmp(a, "--read-chunk") == 0)
        o->read_chunk = strtoul(v, NULL, 10);
    else if (strcmp(a, "--timeout") == 0)
        o->timeout = (unsigned)strtoul(v, NULL, 10);
    else
        return 0;
    ++*i;
    return 1;
}

/* The command line of a client with no options of its own: the common
 * ones, anything else is a usage error (exit 2). */
static inline void ev_client_parse(struct ev_client_opts *o, int argc,
                                   char **argv)
{
    ev_client_opts_init(o);
    for (int i = 1; i < argc; i++)
        if (!ev_client_arg(o, argc, argv, &i))
            ev_client_usage("");
}

/* Checks the options and sets the time bound. */
static inline void ev_client_start(struct ev_client_opts *o, const char *extra)
{
    if (o->host == NULL || o->port == NULL || o->chunk == 0 ||
        o->read_chunk == 0)
        ev_client_usage(extra);
    ev_bound(o->timeout);
}

static inline struct addrinfo *ev_resolve(const struct ev_client_opts *o)
{
    struct addrinfo hints, *res;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(o->host, o->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "connect: %s: %s\n", o->host, gai_strerror(rc));
        exit(3);
    }
    return res;
}

/* A blocking connection to HOST PORT (getaddrinfo, so the shim learns the
 * name); exits 3 with "connect: <reason>" when no address answers. */
static inline int ev_connect(const struct ev_client_opts *o)
{
    struct addrinfo *res = ev_resolve(o);
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

/* Sends the whole payload on a blocking socket in chunk-sized writes,
 * then shuts down the sending side (on failure both sides, so that the
 * reader of the same socket wakes up). Returns 0, or -1 after a message. */
static inline int ev_send_stream(int fd, unsigned long long bytes,
                                 size_t chunk)
{
    char *buf = malloc(chunk);
    struct ev_prng p;
    ev_prng_init(&p);
    int rc = buf == NULL ? -1 : 0;
    if (buf == NULL)
        fprintf(stderr, "%s: out of memory\n", ev_prog);
    for (unsigned long long sent = 0; rc == 0 && sent < bytes;) {
        size_t n = bytes - sent < chunk ? (size_t)(bytes - sent) : chunk;
        ev_prng_fill(&p, buf, n);
        if (ev_write_all(fd, buf, n) != 0) {
            fprintf(stderr, "%s: write: %s\n", ev_prog, strerror(errno));
            rc = -1;
        }
        sent += n;
    }
    free(buf);
    shutdown(fd, rc == 0 ? SHUT_WR : SHUT_RDWR);
    return rc;
}

/* Reads a blocking socket until EOF in read_chunk pieces, feeding c.
 * Returns 0 if the whole stream matched, else -1 after a message. */
static inline int ev_recv_stream(int fd, size_t read_chunk,
                                 struct ev_check *c)
{
    char *buf = malloc(read_chunk);
    if (buf == NULL)
        return -1;
    for (;;) {
        ssize_t n = read(fd, buf, read_chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "%s: read after %llu bytes: %s\n", ev_prog,
                    c->got, strerror(errno));
            c->bad = 1;
        }
        if (n <= 0 || ev_check_feed(c, buf, (size_t)n) != 0)
            break;
    }
    free(buf);
    return ev_check_done(c);
}

/* The writer thread of ev_exchange_duplex. */
struct ev_sender {
    int fd;
    const struct ev_client_opts *o;
    int rc;
};

static inline void *ev_sender_main(void *arg)
{
    struct ev_sender *s = arg;
    s->rc = ev_send_stream(s->fd, s->o->bytes, s->o->chunk);
    return NULL;
}

/* The blocking full-duplex exchange: a writer thread sends the payload
 * (ev_send_stream) while the calling thread reads and checks the echo
 * into c (ev_recv_stream); then the socket is closed. Returns 0 if all was
 * sent, came back intact and the close succeeded, else -1 after a
 * message. */
static inline int ev_exchange_duplex(int fd, const struct ev_client_opts *o,
                                     struct ev_check *c)
{
    struct ev_sender s = {fd, o, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, ev_sender_main, &s) != 0) {
        fprintf(stderr, "%s: cannot start the writer thread\n", ev_prog);
        return -1;
    }
    int rc = ev_recv_stream(fd, o->read_chunk, c);
    pthread_join(t, NULL);
    if (close(fd) != 0) {
        fprintf(stderr, "%s: close: %s\n", ev_prog, strerror(errno));
        rc = -1;
    }
    return rc != 0 || s.rc != 0 ? -1 : 0;
}

#endif
