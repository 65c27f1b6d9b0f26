/*
 * ev_poll_server - a single-threaded poll() echo server with no TLS code.
 *
 *   ev_poll_server [-4|-6] PORT|0 [--port-file F] [--once|--max-conns N]
 *                  [--timeout S]
 *
 * One poll() loop drives everything: the listener and every client are
 * non-blocking (SOCK_NONBLOCK, accept4(SOCK_NONBLOCK)), each connection
 * has its own output buffer, reads take 256 bytes at a time (so a TLS
 * record is split over several reads), and POLLOUT is asked for only
 * while a connection has output pending; POLLIN only while its buffer has
 * room. After each read the server tries to write at once, so EAGAIN on a
 * write is a normal path. Exit status as in ev_common.h.
 */
#include "ev_common.h"

#include <poll.h>

enum { MAX_CONNS = 256, READ_SIZE = 256, OUT_CAP = 8192 };

struct conn {
    int fd;
    int eof; /* the peer has finished sending */
    struct ev_outbuf out; /* over buf */
    char buf[OUT_CAP];
};

static struct conn *conns[MAX_CONNS];
static size_t nconns;

/* One read of at most READ_SIZE bytes into the output buffer, then an
 * attempt to write it. Returns 0, or -1 after a message. */
static int on_readable(struct conn *c)
{
    size_t room = ev_outbuf_room(&c->out);
    if (room == 0 || c->eof) /* POLLHUP/POLLERR come even when not asked */
        return ev_outbuf_flush(c->fd, &c->out);
    ssize_t n = ev_outbuf_read(c->fd, &c->out, READ_SIZE);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0; /* readiness is a hint; EAGAIN is allowed */
    if (n < 0) {
        fprintf(stderr, "%s: read: %s\n", ev_prog, strerror(errno));
        return -1;
    }
    if (n == 0)
        c->eof = 1;
    return ev_outbuf_flush(c->fd, &c->out);
}

static short interest(const struct conn *c)
{
    short ev = 0;
    if (!c->eof && c->out.len < OUT_CAP)
        ev |= POLLIN;
    if (c->out.len > 0)
        ev |= POLLOUT;
    return ev;
}

/* Accepts every pending connection. Returns how many were accepted. */
static unsigned long accept_all(int lfd, unsigned long left)
{
    unsigned long got = 0;
    while (got < left && nconns < MAX_CONNS) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0) {
            if (errno != EAGAIN)
                fprintf(stderr, "%s: accept4: %s\n", ev_prog,
                        strerror(errno));
            break;
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            break;
        }
        c->fd = fd;
        ev_outbuf_init(&c->out, c->buf, sizeof(c->buf));
        conns[nconns++] = c;
        got++;
    }
    return got;
}

/* Closes conns[i] and moves the last connection into its slot. Returns 0,
 * or 1 if the close failed. */
static int drop(size_t i)
{
    int bad = close(conns[i]->fd) != 0;
    if (bad)
        fprintf(stderr, "%s: close: %s\n", ev_prog, strerror(errno));
    free(conns[i]);
    conns[i] = conns[--nconns];
    return bad;
}

int main(int argc, char **argv)
{
    ev_prog = "ev_poll_server";
    struct ev_server_opts o;
    int lfd = ev_server_setup(&o, argc, argv, 1);
    if (lfd < 0)
        return 1;

    unsigned long accepted = 0;
    int failed = 0;
    static struct pollfd pfd[MAX_CONNS + 1];
    for (;;) {
        int listening = o.max_conns == 0 || accepted < o.max_conns;
        if (!listening && nconns == 0)
            break;
        /* pfd[0] is the listener; fd -1 makes poll skip it once done. */
        pfd[0] = (struct pollfd){listening && nconns < MAX_CONNS ? lfd : -1,
                                 POLLIN, 0};
        for (size_t i = 0; i < nconns; i++)
            pfd[i + 1] = (struct pollfd){conns[i]->fd, interest(conns[i]), 0};
        int n = poll(pfd, nconns + 1, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "%s: poll: %s\n", ev_prog, strerror(errno));
            return 1;
        }
        /* Back to front, so that drop() only moves entries already seen. */
        for (size_t i = nconns; i-- > 0;) {
            struct conn *c = conns[i];
            short re = pfd[i + 1].revents;
            int rc = 0;
            if (re & POLLNVAL) {
                fprintf(stderr, "%s: poll: POLLNVAL on fd %d\n", ev_prog,
                        c->fd);
                rc = -1;
            } else if (re & (POLLIN | POLLHUP | POLLERR)) {
                rc = on_readable(c); /* read reports the error, if any */
            } else if (re & POLLOUT) {
                rc = ev_outbuf_flush(c->fd, &c->out);
            }
            if (rc != 0 || (c->eof && c->out.len == 0)) {
                failed |= rc != 0;
                failed |= drop(i);
            }
        }
        if (pfd[0].revents & POLLIN)
            accepted += accept_all(lfd, o.max_conns == 0
                                            ? (unsigned long)-1
                                            : o.max_conns - accepted);
    }
    close(lfd);
    return failed;
}
