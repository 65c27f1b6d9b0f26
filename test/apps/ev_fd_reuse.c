/*
 * ev_fd_reuse - a descriptor number closed while another thread is blocked
 * on a duplicate, and reused at once by an unrelated socket.
 *
 *   ev_fd_reuse HOST PORT
 *
 * Connects to HOST PORT (an echo service) as y, makes x = dup(y), and
 * blocks thread A in read(x). The main thread closes x, connects a new
 * socket to a canary listener of its own (it takes number x), then writes
 * "ping" on y. Plain TCP: A's read returns the echo (the kernel keeps the
 * closed descriptor's socket for the read in flight), and the canary
 * socket is untouched. Prints "ok" when A got the echo, the canary
 * received nothing and still works; exit 1 otherwise. Bounded by alarm.
 */
#include "ev_common.h"

#include <arpa/inet.h>
#include <pthread.h>

static int x_fd;
static char got[64];
static ssize_t got_n = -1;

static void *reader(void *arg)
{
    (void)arg;
    got_n = read(x_fd, got, sizeof(got));
    return NULL;
}

/* A plain listener on 127.0.0.1, port chosen by the kernel. */
static int canary_listen(struct sockaddr_in *addr)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len = sizeof(*addr);
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (l < 0 || bind(l, (struct sockaddr *)addr, sizeof(*addr)) != 0 ||
        listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)addr, &len) != 0) {
        perror("ev_fd_reuse: canary");
        exit(1);
    }
    return l;
}

int main(int argc, char **argv)
{
    ev_prog = "ev_fd_reuse";
    struct ev_client_opts o;
    ev_client_parse(&o, argc, argv);
    o.timeout = 15;
    ev_client_start(&o, "");
    struct sockaddr_in caddr;
    int lfd = canary_listen(&caddr);
    int y = ev_connect(&o);
    x_fd = dup(y);
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    usleep(200 * 1000); /* A is blocked in read(x) by now */

    close(x_fd);
    int z = socket(AF_INET, SOCK_STREAM, 0);
    if (z != x_fd || connect(z, (struct sockaddr *)&caddr, sizeof(caddr))) {
        fprintf(stderr, "ev_fd_reuse: canary socket %d (wanted %d): %s\n", z,
                x_fd, strerror(errno));
        return 1;
    }
    int c = accept(lfd, NULL, NULL);
    if (ev_write_all(y, "ping", 4) != 0) {
        perror("ev_fd_reuse: write");
        return 1;
    }
    pthread_join(t, NULL);

    char buf[16];
    ssize_t stray = recv(c, buf, sizeof(buf), MSG_DONTWAIT);
    int canary_clean = stray < 0 && errno == EAGAIN;
    int canary_works = write(z, "z", 1) == 1 && read(c, buf, 1) == 1 &&
                       buf[0] == 'z';
    int echoed = got_n == 4 && memcmp(got, "ping", 4) == 0;
    printf("reader got %zd bytes; canary received %zd stray bytes, %s\n",
           got_n, stray < 0 ? 0 : stray,
           canary_works ? "still works" : "broken");
    if (!echoed || !canary_clean || !canary_works)
        return 1;
    printf("ok\n");
    return 0;
}
