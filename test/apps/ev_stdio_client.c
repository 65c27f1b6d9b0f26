/*
 * ev_stdio_client - an echo client that talks through stdio on a socket
 * dup2()ed onto its standard input and output, with no TLS code.
 *
 *   ev_stdio_client HOST PORT [--bytes N] [--chunk K] [--read-chunk K]
 *                   [--timeout S] [--fdopen]
 *
 * Like a program started by inetd or a shell redirect: it connects
 * (blocking), dup2()s the socket onto fd 0 and fd 1, closes the original
 * descriptor, and from then on does all its traffic with stdio. A writer
 * thread fwrite()s the payload to stdout in K-byte pieces and fflush()es
 * each one, then shuts down the sending side with shutdown(1, SHUT_WR)
 * (fclose could not: fd 0 keeps the socket open). The main thread
 * fread()s stdin, whose buffer is set to read-chunk bytes with setvbuf,
 * and checks the echo. Since stdout is the socket, the "ok N bytes
 * sha=HEX" line and every message go to stderr; the exit status is that
 * of ev_common.h.
 *
 * --fdopen: the other way a program gets stdio on a socket: streams made
 * with fdopen() on the socket (reading) and on a dup of it (writing),
 * instead of the dup2 onto stdin/stdout.
 */
#include "ev_common.h"

#include <pthread.h>
#include <stdbool.h>

/* The streams the exchange uses: stdin/stdout, or fdopen()ed ones. */
static FILE *in;
static FILE *out;

struct sender {
    unsigned long long bytes;
    size_t chunk;
    int rc;
};

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    char *buf = malloc(s->chunk);
    struct ev_prng p;
    ev_prng_init(&p);
    s->rc = buf == NULL ? -1 : 0;
    for (unsigned long long sent = 0; s->rc == 0 && sent < s->bytes;) {
        size_t n = s->bytes - sent < s->chunk ? (size_t)(s->bytes - sent)
                                              : s->chunk;
        ev_prng_fill(&p, buf, n);
        if (fwrite(buf, 1, n, out) != n || fflush(out) != 0) {
            fprintf(stderr, "%s: fwrite: %s\n", ev_prog, strerror(errno));
            s->rc = -1;
        }
        sent += n;
    }
    free(buf);
    shutdown(fileno(out), s->rc == 0 ? SHUT_WR : SHUT_RDWR);
    return NULL;
}

/* fread()s the input stream until EOF, feeding c. Returns 0 if all
 * matched. */
static int receive(size_t read_chunk, struct ev_check *c)
{
    /* glibc ignores the size unless we hand it the buffer; stdin keeps
     * using it until exit, so it is never freed. */
    char *stdio_buf = malloc(read_chunk);
    char *buf = malloc(read_chunk);
    if (buf == NULL || stdio_buf == NULL ||
        setvbuf(in, stdio_buf, _IOFBF, read_chunk) != 0)
        return -1;
    for (;;) {
        size_t n = fread(buf, 1, read_chunk, in);
        if (n > 0 && ev_check_feed(c, buf, n) != 0)
            break;
        if (n < read_chunk && ferror(in)) {
            fprintf(stderr, "%s: fread after %llu bytes: %s\n", ev_prog,
                    c->got, strerror(errno));
            c->bad = 1;
        }
        if (n < read_chunk)
            break;
    }
    free(buf);
    return ev_check_done(c);
}

/* The socket onto fd 0 and 1, used through stdin and stdout. */
static int streams_by_dup2(int fd)
{
    if (dup2(fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
        close(fd) != 0)
        return -1;
    in = stdin;
    out = stdout;
    return 0;
}

/* Two streams of the program's own over the socket and a dup of it. */
static int streams_by_fdopen(int fd)
{
    int wfd = dup(fd);
    in = fdopen(fd, "r");
    out = wfd < 0 ? NULL : fdopen(wfd, "w");
    return in != NULL && out != NULL ? 0 : -1;
}

int main(int argc, char **argv)
{
    ev_prog = "ev_stdio_client";
    struct ev_client_opts o;
    ev_client_opts_init(&o);
    bool use_fdopen = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fdopen") == 0)
            use_fdopen = true;
        else if (!ev_client_arg(&o, argc, argv, &i))
            ev_client_usage(" [--fdopen]");
    }
    ev_client_start(&o, "");

    int fd = ev_connect(&o);
    if ((use_fdopen ? streams_by_fdopen(fd) : streams_by_dup2(fd)) != 0) {
        fprintf(stderr, "%s: %s: %s\n", ev_prog,
                use_fdopen ? "fdopen" : "dup2/close", strerror(errno));
        return 1;
    }
    struct sender s = {o.bytes, o.chunk, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, sender_main, &s) != 0) {
        fprintf(stderr, "%s: cannot start the writer thread\n", ev_prog);
        return 1;
    }
    struct ev_check c;
    ev_check_init(&c, o.bytes);
    int rc = receive(o.read_chunk, &c);
    pthread_join(t, NULL);
    if (rc != 0 || s.rc != 0)
        return 1;
    ev_report_ok(stderr, &c);
    return 0;
}
