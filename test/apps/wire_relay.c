/*
 * wire_relay - a plain loopback TCP relay that records both directions.
 *
 * Usage: wire_relay [-4|-6] TARGET_PORT --c2s FILE --s2c FILE
 *                   [--port-file F] [--once]
 *
 * Listens on an ephemeral port of 127.0.0.1 (or ::1 with -6), writes that
 * port to --port-file once listening, and for each accepted client opens a
 * connection to the same loopback address at TARGET_PORT. Bytes from the
 * client to the target are appended to the --c2s file, bytes back to the
 * --s2c file, exactly as they crossed the wire. The integration tests put
 * it between a shimmed client and a shimmed server to prove that what
 * travels is TLS records and never the application's plaintext.
 *
 * It has no TLS code and is never run under LD_PRELOAD. One thread per
 * direction, so a full-duplex peer never deadlocks the relay; a half-close
 * is passed on with shutdown(SHUT_WR). With --once it exits after the first
 * connection ends. Exit status: 0 on success, 2 on usage errors, 1 when the
 * listening socket cannot be set up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct relay_opts {
    int family;
    int target_port;
    const char *c2s_path;
    const char *s2c_path;
    const char *port_file;
    bool once;
};

/* One direction of one relayed connection. */
struct pump {
    int from;
    int to;
    FILE *record; /* only this pump's thread writes it */
};

static void usage(void)
{
    fprintf(stderr, "usage: wire_relay [-4|-6] TARGET_PORT --c2s FILE "
                    "--s2c FILE [--port-file F] [--once]\n");
    exit(2);
}

static int parse_args(int argc, char **argv, struct relay_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->family = AF_INET;
    o->target_port = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "-4") == 0)
            o->family = AF_INET;
        else if (strcmp(a, "-6") == 0)
            o->family = AF_INET6;
        else if (strcmp(a, "--once") == 0)
            o->once = true;
        else if (strcmp(a, "--c2s") == 0 && has_value)
            o->c2s_path = argv[++i];
        else if (strcmp(a, "--s2c") == 0 && has_value)
            o->s2c_path = argv[++i];
        else if (strcmp(a, "--port-file") == 0 && has_value)
            o->port_file = argv[++i];
        else if (o->target_port < 0 && a[0] >= '0' && a[0] <= '9')
            o->target_port = atoi(a);
        else
            return -1;
    }
    if (o->target_port <= 0 || o->target_port > 65535 || !o->c2s_path ||
        !o->s2c_path)
        return -1;
    return 0;
}

/* Fills a loopback sockaddr of the chosen family; returns its length. */
static socklen_t loopback_addr(int family, int port,
                               struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        s6->sin6_addr = in6addr_loopback;
        return sizeof(*s6);
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof(*s4);
}

/* Writes all of buf, retrying short writes; false when the peer is gone. */
static bool write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/*
 * Copies one direction until EOF or an error, recording every byte before
 * forwarding it (so the record is complete even if the far side resets).
 * EOF is passed on as a half-close; an error resets both directions so the
 * other pump ends too.
 */
static void *pump_run(void *arg)
{
    struct pump *p = arg;
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = recv(p->from, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            shutdown(p->to, SHUT_WR);
            break;
        }
        if (n < 0) {
            shutdown(p->to, SHUT_RDWR);
            shutdown(p->from, SHUT_RDWR);
            break;
        }
        fwrite(buf, 1, (size_t)n, p->record);
        fflush(p->record);
        if (!write_all(p->to, buf, (size_t)n)) {
            shutdown(p->to, SHUT_RDWR);
            shutdown(p->from, SHUT_RDWR);
            break;
        }
    }
    return NULL;
}

/* Relays one accepted client until both directions have ended. */
static void relay_one(const struct relay_opts *o, int client, FILE *c2s,
                      FILE *s2c)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback_addr(o->family, o->target_port, &ss);
    int target = socket(o->family, SOCK_STREAM, 0);
    if (target < 0 || connect(target, (struct sockaddr *)&ss, len) < 0) {
        perror("wire_relay: connect to target");
        if (target >= 0)
            close(target);
        close(client);
        return;
    }
    struct pump up = {.from = client, .to = target, .record = c2s};
    struct pump down = {.from = target, .to = client, .record = s2c};
    pthread_t t;
    if (pthread_create(&t, NULL, pump_run, &up) != 0) {
        perror("wire_relay: pthread_create");
        close(target);
        close(client);
        return;
    }
    pump_run(&down);
    pthread_join(t, NULL);
    close(target);
    close(client);
}

/* Binds an ephemeral loopback port and records it in port_file. */
static int listen_socket(const struct relay_opts *o)
{
    struct sockaddr_storage ss;
    socklen_t len = loopback_addr(o->family, 0, &ss);
    int fd = socket(o->family, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("wire_relay: socket");
        return -1;
    }
    socklen_t alen = sizeof(ss);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &alen) < 0) {
        perror("wire_relay: listen");
        close(fd);
        return -1;
    }
    int port = ntohs(o->family == AF_INET6
                         ? ((struct sockaddr_in6 *)&ss)->sin6_port
                         : ((struct sockaddr_in *)&ss)->sin_port);
    if (!o->port_file)
        return fd;
    /* Write then rename, so a reader never sees a half-written port. */
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", o->port_file);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        perror("wire_relay: port file");
        close(fd);
        return -1;
    }
    int bad = fprintf(f, "%d\n", port) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, o->port_file) != 0) {
        perror("wire_relay: port file");
        close(fd);
        return -1;
    }
    return fd;
}

/* Accepts and relays clients, one at a time; returns the exit status. */
static int serve(const struct relay_opts *o, int lfd, FILE *c2s, FILE *s2c)
{
    for (;;) {
        int client = accept(lfd, NULL, NULL);
        if (client < 0 && errno == EINTR)
            continue;
        if (client < 0) {
            perror("wire_relay: accept");
            return 1;
        }
        relay_one(o, client, c2s, s2c);
        if (o->once)
            return 0;
    }
}

int main(int argc, char **argv)
{
    struct relay_opts o;
    if (parse_args(argc, argv, &o) < 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    FILE *c2s = fopen(o.c2s_path, "ab");
    FILE *s2c = fopen(o.s2c_path, "ab");
    int rc = 1;
    if (!c2s || !s2c) {
        perror("wire_relay: record file");
    } else {
        int lfd = listen_socket(&o);
        if (lfd >= 0) {
            rc = serve(&o, lfd, c2s, s2c);
            close(lfd);
        }
    }
    if (c2s)
        fclose(c2s);
    if (s2c)
        fclose(s2c);
    return rc;
}
