/*
 * ev_epoll_server - a single-threaded epoll echo server with no TLS code.
 *
 *   ev_epoll_server [-4|-6] PORT|0 [--port-file F] [--once|--max-conns N]
 *                   [--timeout S] [--et]
 *
 * Level-triggered by default: one read of 100 bytes per EPOLLIN event, and
 * EPOLLIN is dropped (EPOLL_CTL_MOD) while the connection's output buffer
 * is full. With --et every registration is edge-triggered, so each event
 * makes the server drain the fd: read until EAGAIN (or until the output
 * buffer is full, in which case reading resumes as soon as a write frees
 * room), write until EAGAIN. EPOLLOUT is added and removed with
 * EPOLL_CTL_MOD only while output is pending.
 *
 * epoll_data.ptr points to the connection's own struct; every event is
 * checked to carry a pointer that was registered and is still live, with
 * the magic and fd it was registered with; anything else is reported as
 * "epoll_data mismatch" and exits 1. Odd-numbered connections are closed
 * while still registered (the kernel removes them), even-numbered ones
 * are removed with EPOLL_CTL_DEL first. Exit status as in ev_common.h.
 */
#include "ev_common.h"

#include <sys/epoll.h>

enum { MAX_CONNS = 256, READ_SIZE = 100, OUT_CAP = 4096, MAX_EVENTS = 16 };
enum { MAGIC_CONN = 0x636f6e6e, MAGIC_LISTENER = 0x6c697374 };

struct conn {
    int magic;
    int fd;
    unsigned long serial; /* order of accept, from 0 */
    int eof;              /* the peer has finished sending */
    uint32_t events;      /* what is registered now */
    struct ev_outbuf out; /* pending output, over buf */
    char buf[OUT_CAP];
};

static struct conn *live[MAX_CONNS];
static size_t nlive;
static int epfd;
static int et;

/* Is p a pointer this program registered and has not freed? */
static int registered(const struct conn *p, const struct conn *listener)
{
    if (p == listener)
        return p->magic == MAGIC_LISTENER;
    for (size_t i = 0; i < nlive; i++)
        if (live[i] == p)
            return p->magic == MAGIC_CONN;
    return 0;
}

static uint32_t wanted(const struct conn *c)
{
    uint32_t ev = et ? EPOLLET : 0;
    /* Edge-triggered keeps EPOLLIN: no MOD is needed to see new data. */
    if (!c->eof && (et || c->out.off + c->out.len < OUT_CAP))
        ev |= EPOLLIN;
    if (c->out.len > 0)
        ev |= EPOLLOUT;
    return ev;
}

/* Brings the registration in line with what c needs. Returns 0 or -1. */
static int update(struct conn *c)
{
    uint32_t ev = wanted(c);
    if (ev == c->events)
        return 0;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e) != 0) {
        fprintf(stderr, "%s: epoll_ctl MOD: %s\n", ev_prog, strerror(errno));
        return -1;
    }
    c->events = ev;
    return 0;
}

/* One read of at most READ_SIZE bytes into the free end of the buffer.
 * Returns 1 if it read (or saw EOF), 0 on EAGAIN or a full buffer, -1 on
 * an error. */
static int read_some(struct conn *c)
{
    size_t room = ev_outbuf_room(&c->out);
    if (room == 0 || c->eof)
        return 0;
    for (;;) {
        ssize_t n = ev_outbuf_read(c->fd, &c->out, READ_SIZE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n < 0) {
            fprintf(stderr, "%s: read: %s\n", ev_prog, strerror(errno));
            return -1;
        }
        c->eof = n == 0;
        return 1;
    }
}

/* Serves one event. Level-triggered: one read, then write what we can.
 * Edge-triggered: alternate writing and reading until neither can make
 * progress, which leaves the socket at EAGAIN for reading (or the output
 * blocked at EAGAIN with a full buffer; the EPOLLOUT edge resumes us).
 * Returns 0, or -1 on an error. */
static int serve(struct conn *c)
{
    int r;
    do {
        if (ev_outbuf_flush(c->fd, &c->out) != 0)
            return -1;
        r = read_some(c);
        if (r < 0)
            return -1;
    } while (et && r > 0);
    return ev_outbuf_flush(c->fd, &c->out);
}

static int close_conn(struct conn *c)
{
    /* Half of the connections test close() of a registered fd. */
    if (c->serial % 2 == 0 && epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL)) {
        fprintf(stderr, "%s: epoll_ctl DEL: %s\n", ev_prog, strerror(errno));
        return 1;
    }
    int bad = close(c->fd) != 0;
    if (bad)
        fprintf(stderr, "%s: close: %s\n", ev_prog, strerror(errno));
    for (size_t i = 0; i < nlive; i++)
        if (live[i] == c)
            live[i] = live[--nlive];
    c->magic = 0;
    free(c);
    return bad;
}

/* Accepts every pending connection (the listener is drained in both
 * modes). Returns how many were accepted, or -1 on an error. */
static long accept_all(int lfd, unsigned long serial, unsigned long left)
{
    long got = 0;
    while ((unsigned long)got < left && nlive < MAX_CONNS) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (fd < 0 && errno == EAGAIN)
            break;
        if (fd < 0) {
            fprintf(stderr, "%s: accept4: %s\n", ev_prog, strerror(errno));
            return -1;
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (c == NULL)
            return -1;
        *c = (struct conn){.magic = MAGIC_CONN, .fd = fd,
                           .serial = serial + (unsigned long)got};
        ev_outbuf_init(&c->out, c->buf, sizeof(c->buf));
        c->events = wanted(c);
        struct epoll_event e = {.events = c->events, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
            fprintf(stderr, "%s: epoll_ctl ADD: %s\n", ev_prog,
                    strerror(errno));
            return -1;
        }
        live[nlive++] = c;
        got++;
    }
    return got;
}

int main(int argc, char **argv)
{
    ev_prog = "ev_epoll_server";
    struct ev_server_opts o;
    ev_server_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--et") == 0)
            et = 1;
        else if (!ev_server_arg(&o, argc, argv, &i))
            ev_server_usage("[--et]");
    }
    int lfd = ev_server_start(&o, 1);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (lfd < 0 || epfd < 0)
        return 1;
    struct conn listener = {.magic = MAGIC_LISTENER, .fd = lfd};
    struct epoll_event le = {.events = EPOLLIN | (et ? EPOLLET : 0),
                             .data.ptr = &listener};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &le) != 0)
        return 1;

    unsigned long accepted = 0;
    int failed = 0;
    while (o.max_conns == 0 || accepted < o.max_conns || nlive > 0) {
        struct epoll_event evs[MAX_EVENTS];
        int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "%s: epoll_wait: %s\n", ev_prog, strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!registered(c, &listener)) {
                fprintf(stderr, "%s: epoll_data mismatch (ptr %p)\n",
                        ev_prog, (void *)c);
                return 1;
            }
            if (c == &listener) {
                unsigned long left = o.max_conns == 0 ? (unsigned long)-1
                                                      : o.max_conns - accepted;
                long got = accept_all(lfd, accepted, left);
                if (got < 0)
                    return 1;
                accepted += (unsigned long)got;
                if (o.max_conns != 0 && accepted == o.max_conns)
                    epoll_ctl(epfd, EPOLL_CTL_DEL, lfd, NULL);
                continue;
            }
            int rc = serve(c);
            if (rc == 0 && !(c->eof && c->out.len == 0))
                rc = update(c);
            if (rc != 0 || (c->eof && c->out.len == 0)) {
                failed |= rc != 0;
                failed |= close_conn(c);
            }
        }
    }
    close(lfd);
    return failed;
}
