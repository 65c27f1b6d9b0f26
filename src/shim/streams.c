/*
 * streams.c - stdio streams over managed sockets.
 *
 * glibc's stdio does its I/O through internal aliases of read/write/close
 * that no preloaded library can interpose, so a FILE over a managed socket
 * would put plaintext on a TLS connection and hand TLS records to the
 * program. Two ways a program gets such a FILE, and what the shim does:
 *
 *   fdopen(fd)              on a managed fd returns a stream made with
 *                           fopencookie whose I/O goes through the shim;
 *   dup2/dup3 onto 0, 1, 2  (inetd-style "socket on stdin/stdout") swaps
 *                           stdin / stdout / stderr for such a stream.
 *
 * The cookie stream keeps fileno(): glibc marks cookie streams with
 * _fileno = -2 and never uses the field for their I/O, so setting it to the
 * descriptor makes fileno() answer as for a stream over that descriptor.
 *
 * What remains out of reach (docs/shim.md, limits): a FILE pointer the
 * program saved before the dup2, and freopen.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fdtab.h"
#include "io.h"
#include "real.h"
#include "sock.h"
#include "sockets.h"
#include "streams.h"

static ssize_t cookie_read(void *cookie, char *buf, size_t len)
{
    return shim_read((int)(intptr_t)cookie, buf, len);
}

/* fopencookie's contract: the bytes written, or 0 on an error. */
static ssize_t cookie_write(void *cookie, const char *buf, size_t len)
{
    ssize_t n = shim_write((int)(intptr_t)cookie, buf, len);
    return n < 0 ? 0 : n;
}

static int cookie_close(void *cookie)
{
    return shim_close((int)(intptr_t)cookie);
}

static const cookie_io_functions_t managed_stream_io = {
    .read = cookie_read,
    .write = cookie_write,
    .seek = NULL, /* a socket is not seekable: fseek fails with ESPIPE */
    .close = cookie_close,
};

/* A stream over managed fd, or NULL with errno set by fopencookie. */
static FILE *managed_stream(int fd, const char *mode)
{
    FILE *f = fopencookie((void *)(intptr_t)fd, mode, managed_stream_io);
    if (f != NULL)
        f->_fileno = fd;
    return f;
}

static FILE *shim_fdopen(int fd, const char *mode)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(fdopen)(fd, mode);
    shim_sock_unref(s);
    return managed_stream(fd, mode);
}

SS_EXPORT FILE *fdopen(int fd, const char *mode)
{
    return shim_fdopen(fd, mode);
}

/* The standard stream that stands for descriptor fd (0, 1, 2), or NULL. */
static FILE **standard_stream(int fd)
{
    switch (fd) {
    case STDIN_FILENO: return &stdin;
    case STDOUT_FILENO: return &stdout;
    case STDERR_FILENO: return &stderr;
    default: return NULL;
    }
}

void shim_stdio_before_dup(int newfd)
{
    /* What the program wrote before the dup2 belongs to the old target:
     * flush it there now, or exit() would flush it onto the socket. */
    FILE **stream = standard_stream(newfd);
    if (stream != NULL && newfd != STDIN_FILENO)
        fflush(*stream);
}

void shim_stdio_after_dup(int newfd)
{
    FILE **stream = standard_stream(newfd);
    if (stream == NULL)
        return;
    int saved_errno = errno;
    FILE *f = managed_stream(newfd, newfd == STDIN_FILENO ? "r" : "w");
    if (f == NULL) {
        ss_log(SS_LOG_ERROR, "cannot make a stdio stream for managed fd %d: "
               "%s; stdio on it would bypass TLS", newfd, strerror(errno));
        errno = saved_errno;
        return;
    }
    if (newfd == STDERR_FILENO)
        setvbuf(f, NULL, _IONBF, 0); /* stderr stays unbuffered */
    /* The old FILE is left open, not closed: closing it would close the
     * descriptor the program just made the socket. */
    *stream = f;
    errno = saved_errno;
}
