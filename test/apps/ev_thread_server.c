/*
 * ev_thread_server - a thread-per-connection echo server with a reader
 * and a writer thread on every socket, with no TLS code.
 *
 *   ev_thread_server [-4|-6] PORT|0 [--port-file F] [--once|--max-conns N]
 *                    [--timeout S]
 *
 * The main thread accepts (blocking) and starts one thread per connection.
 * That thread is the socket's reader: it starts a writer thread, then
 * reads the socket 512 bytes at a time and passes the bytes to the writer
 * through a pipe; the writer reads the pipe and writes the socket. So one
 * thread is blocked in read() on a socket while another writes the same
 * socket (full duplex), and many connections run at once. At EOF the
 * reader closes the pipe, the writer drains it and ends, and the reader
 * closes the socket. A writer that fails shuts the socket down so that
 * its reader wakes up. With --max-conns N the main thread joins every
 * connection thread after the N-th accept. Exit status as in ev_common.h.
 */
#include "ev_common.h"

#include <pthread.h>
#include <stdatomic.h>

static atomic_int failed;

struct conn {
    int fd;
    int pipe_rd; /* the writer's end */
    int pipe_wr; /* the reader's end */
};

static void fail(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", ev_prog, what, strerror(errno));
    atomic_store(&failed, 1);
}

/* Pipe to socket until the pipe says EOF. */
static void *writer_main(void *arg)
{
    struct conn *c = arg;
    char buf[4096];
    for (;;) {
        ssize_t n = read(c->pipe_rd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            break;
        if (n < 0 || ev_write_all(c->fd, buf, (size_t)n) != 0) {
            fail(n < 0 ? "pipe read" : "write");
            shutdown(c->fd, SHUT_RDWR); /* wakes the reader */
            break;
        }
    }
    close(c->pipe_rd); /* a reader still writing gets EPIPE, not a hang */
    return NULL;
}

/* Socket to pipe until EOF; owns the connection and frees it. */
static void *reader_main(void *arg)
{
    struct conn *c = arg;
    pthread_t writer;
    if (pthread_create(&writer, NULL, writer_main, c) != 0) {
        fprintf(stderr, "%s: cannot start a writer thread\n", ev_prog);
        atomic_store(&failed, 1);
        close(c->pipe_rd);
        close(c->pipe_wr);
        close(c->fd);
        free(c);
        return NULL;
    }
    char buf[512];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            break;
        if (n < 0 || ev_write_all(c->pipe_wr, buf, (size_t)n) != 0) {
            fail(n < 0 ? "read" : "pipe write");
            break;
        }
    }
    close(c->pipe_wr); /* EOF for the writer once it has drained the pipe */
    pthread_join(writer, NULL);
    if (close(c->fd) != 0)
        fail("close");
    free(c);
    return NULL;
}

/* Starts the threads of one accepted socket. Returns 0, or -1. */
static int start_conn(int fd, pthread_t *t)
{
    struct conn *c = malloc(sizeof(*c));
    int p[2];
    if (c == NULL || pipe2(p, O_CLOEXEC) != 0) {
        free(c);
        close(fd);
        return -1;
    }
    *c = (struct conn){fd, p[0], p[1]};
    if (pthread_create(t, NULL, reader_main, c) != 0) {
        close(p[0]);
        close(p[1]);
        close(fd);
        free(c);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    ev_prog = "ev_thread_server";
    struct ev_server_opts o;
    int lfd = ev_server_setup(&o, argc, argv, 0);
    if (lfd < 0)
        return 1;
    /* Joinable threads only when there is an end to join them at. */
    pthread_t *threads = calloc(o.max_conns ? o.max_conns : 1,
                                sizeof(*threads));
    if (threads == NULL)
        return 1;

    unsigned long n = 0;
    while (o.max_conns == 0 || n < o.max_conns) {
        int fd = ev_accept(lfd);
        if (fd < 0)
            return 1;
        pthread_t *t = &threads[o.max_conns ? n : 0];
        if (start_conn(fd, t) != 0) {
            fprintf(stderr, "%s: cannot start a connection\n", ev_prog);
            return 1;
        }
        if (o.max_conns == 0)
            pthread_detach(*t);
        n++;
    }
    for (unsigned long i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    close(lfd);
    return atomic_load(&failed);
}
