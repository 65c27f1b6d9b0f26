/*
 * bench_server.h - the server loop of the bench programs that stand in
 * for echo_server (shapeloop, tlsloop): listen on 127.0.0.1:PORT, say
 * "listening on port PORT" on stdout (the harness waits for the port),
 * and serve each accepted connection in a detached thread of its own,
 * as echo_server does. serve gets the descriptor as (void *)(long)fd and
 * closes it.
 *
 * One translation unit each, which defines BENCH_PROGRAM (its name, for
 * messages) first: everything here is static.
 */
#ifndef SECSHIM_BENCH_SERVER_H
#define SECSHIM_BENCH_SERVER_H

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* "PROGRAM: what: strerror(errno)", exit 1. */
static _Noreturn void bench_die(const char *what)
{
    fprintf(stderr, BENCH_PROGRAM ": %s: %s\n", what, strerror(errno));
    exit(1);
}

static _Noreturn void bench_run_server(const char *port, void *(*serve)(void *))
{
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0)
        bench_die("socket");
    int on = 1;
    (void)setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((unsigned short)atoi(port)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(ls, 1024) != 0)
        bench_die("bind/listen");
    printf("listening on port %s\n", port);
    fflush(stdout);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            bench_die("accept");
        }
        pthread_t t;
        if (pthread_create(&t, &attr, serve, (void *)(long)fd) != 0)
            bench_die("pthread_create");
    }
}

#endif
