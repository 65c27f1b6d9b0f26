/*
 * ev_select_client - a select()-driven echo client with no TLS code.
 *
 *   ev_select_client HOST PORT [--bytes N] [--chunk K] [--read-chunk K]
 *                    [--timeout S]
 *
 * For each address of HOST (getaddrinfo): a SOCK_NONBLOCK socket, connect()
 * which must say EINPROGRESS (or succeed at once), select() for
 * writability, then getsockopt(SO_ERROR) to learn how the connect ended.
 * Then one select() loop does the full-duplex exchange on the still
 * non-blocking socket: it asks for writability only while payload is left
 * to send (writes of up to K bytes; a partial write keeps the rest for the
 * next round), always asks for readability, reads read-chunk bytes per
 * wakeup (at most 65536; into a fixed array, so the call is __read_chk),
 * and shuts down its sending side once everything is sent. EOF from the
 * server ends it. Output and exit status as in ev_common.h.
 */
#include "ev_common.h"

#include <sys/select.h>

/* Waits until fd is writable (the connect finished, either way). Returns
 * 0 with *err set from SO_ERROR, or -1 with errno on a select() failure. */
static int finish_connect(int fd, int *err)
{
    for (;;) {
        fd_set wr;
        FD_ZERO(&wr);
        FD_SET(fd, &wr);
        int n = select(fd + 1, NULL, &wr, NULL, NULL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 1 && FD_ISSET(fd, &wr))
            break;
    }
    socklen_t len = sizeof(*err);
    return getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &len);
}

/* A non-blocking connected socket to HOST PORT; exits 3 with
 * "connect: <reason>" when no address answers. */
static int connect_nonblocking(const struct ev_client_opts *o)
{
    struct addrinfo *res = ev_resolve(o);
    int err = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK,
                        ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS)
            rc = finish_connect(fd, &err) == 0 && err == 0 ? 0 : -1;
        else if (rc != 0)
            err = errno;
        if (rc == 0) {
            freeaddrinfo(res);
            return fd;
        }
        if (err == 0)
            err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    fprintf(stderr, "connect: %s\n", strerror(err));
    exit(3);
}

/* The sending half of the exchange. */
struct out {
    struct ev_prng prng;
    unsigned long long left; /* payload bytes not yet generated */
    char *buf;
    size_t off, len; /* generated but unsent: buf[off .. off+len) */
    int done;        /* everything sent and SHUT_WR done */
};

/* Writes once (up to K bytes). Returns 0, or -1 after a message. */
static int send_some(int fd, struct out *w, size_t chunk)
{
    if (w->len == 0) {
        w->len = w->left < chunk ? (size_t)w->left : chunk;
        w->off = 0;
        ev_prng_fill(&w->prng, w->buf, w->len);
        w->left -= w->len;
    }
    ssize_t n = w->len == 0 ? 0 : write(fd, w->buf + w->off, w->len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n < 0) {
        fprintf(stderr, "%s: write: %s\n", ev_prog, strerror(errno));
        return -1;
    }
    w->off += (size_t)n;
    w->len -= (size_t)n;
    if (w->len == 0 && w->left == 0) {
        w->done = 1;
        if (shutdown(fd, SHUT_WR) != 0) {
            fprintf(stderr, "%s: shutdown: %s\n", ev_prog, strerror(errno));
            return -1;
        }
    }
    return 0;
}

enum { RBUF_MAX = 65536 };

/* Reads once into a fixed array with a size chosen at run time, which
 * under _FORTIFY_SOURCE is a call to __read_chk (as in Debian packages).
 * Returns 1 at EOF, 0 to go on, -1 on an error or mismatch. */
static int recv_some(int fd, size_t size, struct ev_check *c)
{
    static char buf[RBUF_MAX];
    ssize_t n = read(fd, buf, size);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n < 0) {
        fprintf(stderr, "%s: read after %llu bytes: %s\n", ev_prog, c->got,
                strerror(errno));
        return -1;
    }
    if (n == 0)
        return 1;
    return ev_check_feed(c, buf, (size_t)n);
}

static int exchange(int fd, const struct ev_client_opts *o,
                    struct ev_check *c)
{
    struct out w = {.left = o->bytes, .buf = malloc(o->chunk)};
    if (w.buf == NULL || fd >= FD_SETSIZE)
        return -1;
    ev_prng_init(&w.prng);
    if (o->bytes == 0 && send_some(fd, &w, o->chunk) != 0)
        return -1;
    int rc = 0;
    while (rc == 0) {
        fd_set rd, wr;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_SET(fd, &rd);
        if (!w.done)
            FD_SET(fd, &wr);
        int n = select(fd + 1, &rd, w.done ? NULL : &wr, NULL, NULL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "%s: select: %s\n", ev_prog, strerror(errno));
            return -1;
        }
        if (!w.done && FD_ISSET(fd, &wr) && send_some(fd, &w, o->chunk))
            return -1;
        if (FD_ISSET(fd, &rd))
            rc = recv_some(fd, o->read_chunk, c);
    }
    free(w.buf);
    return rc < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    ev_prog = "ev_select_client";
    struct ev_client_opts o;
    ev_client_parse(&o, argc, argv);
    if (o.read_chunk > RBUF_MAX)
        ev_client_usage("(read-chunk at most 65536)");
    ev_client_start(&o, "");

    int fd = connect_nonblocking(&o);
    struct ev_check c;
    ev_check_init(&c, o.bytes);
    int rc = exchange(fd, &o, &c);
    if (close(fd) != 0) {
        fprintf(stderr, "%s: close: %s\n", ev_prog, strerror(errno));
        rc = -1;
    }
    if (rc != 0 || ev_check_done(&c) != 0)
        return 1;
    ev_report_ok(stdout, &c);
    return 0;
}
