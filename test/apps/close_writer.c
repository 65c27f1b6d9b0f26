/*
 * close_writer.c - writes a stream, then ends the connection one way, for
 * the "close and exit never lose accepted bytes" cases
 * (test/integration/cases_close.py). libc only, no TLS code: the same
 * program runs over plain TCP (the reference) and under the shim.
 *
 *   close_writer HOST PORT --bytes N --end close|exit|abort|linger
 *                [--linger-s S] [--blocking] [--progress FILE]
 *                [--pause-ms MS] [--timeout S]
 *   close_writer --accept-close PORT [--timeout S]
 *
 * Writes N bytes of echo_client's xorshift64* stream (non-blocking writes
 * with poll, or blocking with --blocking), prints "written N", waits MS
 * milliseconds (default 0), then:
 *   close   close() at once, print "closed", then wait for EOF on stdin
 *           (the harness closes it once the peer reported) and _exit(0):
 *           no exit handler runs, so only close() delivered the bytes;
 *   exit    exit(0) right after the last write, without close();
 *   abort   SO_LINGER {1, 0}, close(), then as "close";
 *   linger  SO_LINGER {1, S}, close(); prints "peer-read-at-close B", the
 *           number the peer wrote to FILE (--progress) when close()
 *           returned; then as "close".
 * --accept-close: listens on 127.0.0.1:PORT, prints "listening", accepts
 * one connection, waits 300 ms, closes it without any I/O, prints
 * "closed", waits for EOF on stdin and exits 0.
 * Exit 1 on an I/O error, 2 on usage or the alarm(S) bound (default 30).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "close_writer: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* echo_client's payload: xorshift64* words, little-endian. */
static uint64_t prng_state = 0x9e3779b97f4a7c15ULL;

static void prng_fill(unsigned char *buf, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        prng_state ^= prng_state >> 12;
        prng_state ^= prng_state << 25;
        prng_state ^= prng_state >> 27;
        uint64_t w = prng_state * 2685821657736338717ULL;
        for (int b = 0; b < 8; b++)
            buf[i + b] = (unsigned char)(w >> (8 * b));
    }
}

static int dial(const char *host, const char *port)
{
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        fprintf(stderr, "close_writer: cannot resolve %s\n", host);
        exit(2);
    }
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0)
        die("connect");
    freeaddrinfo(res);
    return fd;
}

/* Writes n bytes of the stream; a non-blocking socket waits with poll. */
static void write_stream(int fd, size_t n)
{
    static unsigned char buf[16384];
    size_t sent = 0, have = 0, off = 0;
    while (sent < n) {
        if (off == have) {
            have = n - sent < sizeof(buf) ? n - sent : sizeof(buf);
            prng_fill(buf, sizeof(buf));
            off = 0;
        }
        ssize_t w = write(fd, buf + off, have - off);
        if (w > 0) {
            off += (size_t)w;
            sent += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, 10000) < 0 && errno != EINTR)
                die("poll");
            continue;
        }
        die("write");
    }
    printf("written %zu\n", n);
    fflush(stdout);
}

/* The harness closes stdin once it has seen what it needs. */
static void wait_stdin_then_quit(void)
{
    char c;
    while (read(0, &c, 1) > 0)
        ;
    _exit(0);
}

static void set_linger(int fd, int onoff, int secs)
{
    struct linger lg = {onoff, secs};
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) != 0)
        die("setsockopt SO_LINGER");
}

static long read_progress(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f != NULL) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static void pause_ms(int ms)
{
    struct pollfd p = {.fd = -1, .events = 0};
    (void)poll(&p, 0, ms);
}

static int accept_close(int port)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 1) != 0)
        die("listen");
    printf("listening\n");
    fflush(stdout);
    int c = accept(l, NULL, NULL);
    if (c < 0)
        die("accept");
    /* Give the client's ClientHello time to arrive before the close: a
     * close that ran a handshake step would answer it. */
    pause_ms(300);
    if (close(c) != 0)
        die("close");
    printf("closed\n");
    fflush(stdout);
    wait_stdin_then_quit();
    return 0;
}

int main(int argc, char **argv)
{
    const char *end = "close", *progress = NULL;
    size_t nbytes = 1 << 20;
    int linger_s = 10, timeout = 30, pause = 0;
    bool blocking = false;
    const char *accept_port = NULL;
    int pos = 0;
    const char *host = NULL, *port = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--blocking") == 0) {
            blocking = true;
        } else if (v != NULL && strcmp(a, "--bytes") == 0) {
            nbytes = strtoul(v, NULL, 10), i++;
        } else if (v != NULL && strcmp(a, "--end") == 0) {
            end = v, i++;
        } else if (v != NULL && strcmp(a, "--linger-s") == 0) {
            linger_s = atoi(v), i++;
        } else if (v != NULL && strcmp(a, "--progress") == 0) {
            progress = v, i++;
        } else if (v != NULL && strcmp(a, "--timeout") == 0) {
            timeout = atoi(v), i++;
        } else if (v != NULL && strcmp(a, "--pause-ms") == 0) {
            pause = atoi(v), i++;
        } else if (v != NULL && strcmp(a, "--accept-close") == 0) {
            accept_port = v, i++;
        } else if (pos == 0) {
            host = a, pos++;
        } else if (pos == 1) {
            port = a, pos++;
        } else {
            fprintf(stderr, "close_writer: unexpected %s\n", a);
            return 2;
        }
    }
    alarm((unsigned)timeout);
    if (accept_port != NULL)
        return accept_close(atoi(accept_port));
    if (host == NULL || port == NULL) {
        fprintf(stderr, "usage: close_writer HOST PORT [options]\n");
        return 2;
    }
    int fd = dial(host, port);
    if (!blocking && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
        die("fcntl");
    write_stream(fd, nbytes);
    if (pause > 0)
        pause_ms(pause);
    if (strcmp(end, "exit") == 0)
        exit(0);
    if (strcmp(end, "abort") == 0)
        set_linger(fd, 1, 0);
    else if (strcmp(end, "linger") == 0)
        set_linger(fd, 1, linger_s);
    else if (strcmp(end, "close") != 0)
        return 2;
    if (close(fd) != 0)
        die("close");
    printf("closed\n");
    if (progress != NULL)
        printf("peer-read-at-close %ld\n", read_progress(progress));
    fflush(stdout);
    wait_stdin_then_quit();
    return 0;
}
