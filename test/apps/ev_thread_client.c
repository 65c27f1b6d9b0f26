/*
 * ev_thread_client - many simultaneous echo connections, each with its
 * own writer and reader thread, with no TLS code.
 *
 *   ev_thread_client HOST PORT [--conns C] [--bytes N] [--chunk K]
 *                    [--read-chunk K] [--timeout S]
 *
 * Opens C connections (default 8) first, so all are open at once, then
 * starts two threads per connection: a writer that sends the N-byte
 * payload in writes of K and shuts down its side, and a reader that
 * reads the echo in read-chunk pieces and checks it. Every connection
 * carries the same payload, so all must end with the same checksum; the
 * output is the one line "ok N bytes sha=HEX" of ev_common.h (N per
 * connection, equal to echo_client's line for the same N), printed only
 * if all C connections matched. Exit status as in ev_common.h.
 */
#include "ev_common.h"

#include <pthread.h>

struct conn {
    int fd;
    const struct ev_client_opts *o;
    struct ev_check check;
    int send_rc, recv_rc;
    pthread_t writer, reader;
};

static void *writer_main(void *arg)
{
    struct conn *c = arg;
    c->send_rc = ev_send_stream(c->fd, c->o->bytes, c->o->chunk);
    return NULL;
}

static void *reader_main(void *arg)
{
    struct conn *c = arg;
    c->recv_rc = ev_recv_stream(c->fd, c->o->read_chunk, &c->check);
    return NULL;
}

int main(int argc, char **argv)
{
    ev_prog = "ev_thread_client";
    struct ev_client_opts o;
    ev_client_opts_init(&o);
    unsigned long nconns = 8;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--conns") == 0 && i + 1 < argc)
            nconns = strtoul(argv[++i], NULL, 10);
        else if (!ev_client_arg(&o, argc, argv, &i))
            ev_client_usage("[--conns C]");
    }
    if (nconns == 0)
        ev_client_usage("[--conns C]");
    ev_client_start(&o, "[--conns C]");

    struct conn *conns = calloc(nconns, sizeof(*conns));
    if (conns == NULL)
        return 1;
    for (unsigned long i = 0; i < nconns; i++) {
        conns[i].fd = ev_connect(&o);
        conns[i].o = &o;
        ev_check_init(&conns[i].check, o.bytes);
    }
    for (unsigned long i = 0; i < nconns; i++) {
        if (pthread_create(&conns[i].writer, NULL, writer_main, &conns[i]) ||
            pthread_create(&conns[i].reader, NULL, reader_main, &conns[i])) {
            fprintf(stderr, "%s: cannot start threads\n", ev_prog);
            return 1;
        }
    }
    int bad = 0;
    for (unsigned long i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        pthread_join(c->writer, NULL);
        pthread_join(c->reader, NULL);
        if (close(c->fd) != 0) {
            fprintf(stderr, "%s: close: %s\n", ev_prog, strerror(errno));
            bad = 1;
        }
        if (c->send_rc != 0 || c->recv_rc != 0 ||
            c->check.fnv != conns[0].check.fnv) {
            fprintf(stderr, "%s: connection %lu failed\n", ev_prog, i);
            bad = 1;
        }
    }
    if (bad)
        return 1;
    ev_report_ok(stdout, &conns[0].check);
    free(conns);
    return 0;
}
