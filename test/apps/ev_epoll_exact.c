/*
 * ev_epoll_exact - readiness corner cases of epoll and select, printed so
 * that a run over plain TCP and a run under the shim can be compared
 * line by line (test/integration/cases_epoll.py, docs/apps.md).
 *
 *   ev_epoll_exact MODE HOST PORT
 *
 * The peer (test/integration/sched_peer.py) sends chunks at chosen times
 * after the connection is up, or reads slowly. Wake-ups are printed in
 * coarse buckets only: "at-once" (under 0.5 s), "later" (within the wait's
 * bound) or "timeout"; no line carries a time. Modes:
 *
 *   et-unread   EPOLLET|EPOLLIN; at the first edge read 10 bytes of the
 *               first chunk, then wait: the peer's next chunk must wake
 *               it ("later", as plain TCP), though plaintext is unread.
 *   et-read-rest EPOLLET|EPOLLIN; at the first edge read 10 bytes of the
 *               first chunk, wait for the second chunk's edge, then one
 *               read with room for both: it returns the rest of the
 *               first chunk and all of the second, and nothing is left
 *               (a short read means drained).
 *   oneshot-mod EPOLLONESHOT|EPOLLIN; after the first report, another
 *               thread re-arms it with EPOLL_CTL_MOD while this one sleeps
 *               in epoll_wait, the data still unread: "at-once" after MOD.
 *   et-out      EPOLLET|EPOLLOUT against a slow reader: 5 rounds of
 *               "write until EAGAIN, wait for the EPOLLOUT edge".
 *   et-out-late the same with EPOLLIN in the registration and a second's
 *               sleep before each wait (the reader makes room meanwhile).
 *   dup-close   a dup of the socket, the original registered and then
 *               closed: the peer's 3 chunks still come as events.
 *   two-dups    the socket and a dup both in one set (data 1 and 2).
 *   select-high the socket moved above 1024 with dup2 (the soft limit
 *               raised), select() with nfds 1501 over a large fd_set
 *               array: sleeps until the peer sends ("later").
 *   read-ahead  the peer sends three 100-byte chunks at once; a second
 *               later one blocking read of 100 bytes, then poll() must
 *               report the rest readable "at-once" (an engine that read
 *               ahead would hold it inside OpenSSL, not in the socket),
 *               FIONREAD must cover it, and after a read of the second
 *               chunk a level-triggered epoll_wait reports the third.
 *   split-record the peer sends a chunk and, under TLS, half of the next
 *               record (test/integration/split_peer.py), the rest 3 s
 *               later: after reading the first chunk, poll() times out
 *               without spinning (CPU time under 0.3 s), then wakes
 *               "later" for the second chunk.
 *   move-private a level-triggered registration in one set and an
 *               edge-triggered one in another; the program dup2()s
 *               /dev/null onto every socket number it did not make (under
 *               the shim: the private descriptors, which move); two
 *               chunks must each wake both, once per edge; then
 *               EPOLL_CTL_DEL. The kernel's registrations go to stderr.
 *   two-regs    a socket and a dup in one set (level, edge), the private
 *               descriptors moved, the first deleted, a third dup added:
 *               each of four chunks reaches exactly the registrations
 *               there are, an edge-triggered one once.
 *   preconnect  the socket joins the set before connect() (nginx's
 *               upstreams), then the private descriptor moves: two
 *               chunks, each reported to the one registration.
 *   edge-once   a level-triggered registration in one set and an
 *               edge-triggered one in another; each chunk is waited for
 *               in the level set first (under the shim that look takes
 *               the record into the engine), then three times in the edge
 *               set with room for one event: one edge per chunk. The
 *               second chunk is read 10 bytes into before those waits.
 *   fork        children that exec or close their copies of the sets do
 *               not disturb the parent's registrations; then a child
 *               takes the connection over on the sets it inherited.
 *
 * Exit 0 when the mode ran (its lines say what it saw), 1 on an I/O
 * error, 2 on usage or the 30 s alarm.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *bucket(double since, int events)
{
    if (events <= 0)
        return "timeout";
    return now() - since < 0.5 ? "at-once" : "later";
}

static void die(const char *what)
{
    fprintf(stderr, "ev_epoll_exact: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int connect_to(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        fprintf(stderr, "ev_epoll_exact: cannot resolve %s\n", host);
        exit(1);
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        die("connect");
    freeaddrinfo(ai);
    return fd;
}

static void nonblock(int fd)
{
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
        die("fcntl");
}

/* One epoll_wait of at most ms; returns the count, events in *ev. */
static int wait1(int ep, struct epoll_event *ev, int max, int ms)
{
    int n;
    do {
        n = epoll_wait(ep, ev, max, ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        die("epoll_wait");
    return n;
}

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

/* Reads what is there now (non-blocking fd); returns the byte count. */
static long drain(int fd)
{
    char buf[4096];
    long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            total += n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        return total;
    }
}

/* fd non-blocking in ep as EPOLLET|EPOLLIN (data 7); waits for and
 * prints its first edge. */
static void first_edge(int fd, int ep)
{
    struct epoll_event ev;
    nonblock(fd);
    if (add(ep, fd, EPOLLIN | EPOLLET, 7) != 0)
        die("epoll_ctl");
    int n = wait1(ep, &ev, 1, 5000);
    printf("first %s\n", n == 1 && ev.data.u64 == 7 ? "edge" : "none");
}

static int et_unread(int fd, int ep)
{
    struct epoll_event ev;
    first_edge(fd, ep);
    char buf[10];
    if (read(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
        die("read");
    double t = now();
    int n = wait1(ep, &ev, 1, 4000);
    printf("new data wakes %s\n", bucket(t, n));
    printf("drained %ld\n", n == 1 ? drain(fd) : -1L);
    return 0;
}

static int et_read_rest(int fd, int ep)
{
    struct epoll_event ev;
    first_edge(fd, ep);
    char buf[4096];
    if (read(fd, buf, 10) != 10)
        die("read");
    int n = wait1(ep, &ev, 1, 5000);
    printf("second chunk's edge %s\n", n == 1 ? "yes" : "none");
    ssize_t got = read(fd, buf, sizeof(buf));
    printf("one read after it %zd\n", got);
    printf("left %ld\n", drain(fd));
    return 0;
}

struct rearm {
    int ep, fd;
    double at;
};

static void *rearm_later(void *arg)
{
    struct rearm *r = arg;
    struct timespec d = {0, 400 * 1000000L};
    nanosleep(&d, NULL);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 9};
    r->at = now();
    if (epoll_ctl(r->ep, EPOLL_CTL_MOD, r->fd, &ev) != 0)
        die("epoll_ctl MOD");
    return NULL;
}

static int oneshot_mod(int fd, int ep)
{
    struct epoll_event ev;
    nonblock(fd);
    if (add(ep, fd, EPOLLIN | EPOLLONESHOT, 8) != 0)
        die("epoll_ctl");
    int n = wait1(ep, &ev, 1, 5000);
    printf("first %s\n", n == 1 && ev.data.u64 == 8 ? "report" : "none");
    n = wait1(ep, &ev, 1, 300);
    printf("disarmed %s\n", n == 0 ? "quiet" : "reported");
    struct rearm r = {ep, fd, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, rearm_later, &r) != 0)
        die("pthread_create");
    n = wait1(ep, &ev, 1, 4000);
    pthread_join(t, NULL);
    printf("re-armed wakes %s data %llu\n", bucket(r.at, n),
           n == 1 ? (unsigned long long)ev.data.u64 : 0ull);
    return 0;
}

/* late: the registration asks for EPOLLIN too (as nginx's do), and each
 * round sleeps a second between its EAGAIN and its wait, so that the
 * reader has made room before the wait looks: the edge is queued already
 * and must still be reported. */
static int et_out(int fd, int ep, bool late)
{
    nonblock(fd);
    int sz = 65536;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    uint32_t events = EPOLLOUT | EPOLLET | (late ? EPOLLIN : 0);
    if (add(ep, fd, events, 5) != 0)
        die("epoll_ctl");
    struct epoll_event ev;
    (void)wait1(ep, &ev, 1, 2000); /* the initial edge */
    static char chunk[16384];
    memset(chunk, 'x', sizeof(chunk));
    int woken = 0;
    for (int round = 0; round < 5; round++) {
        for (;;) {
            ssize_t n = write(fd, chunk, sizeof(chunk));
            if (n < 0 && errno == EAGAIN)
                break;
            if (n < 0 && errno != EINTR)
                die("write");
            if (n >= 0 && n < (ssize_t)sizeof(chunk))
                break; /* a short count: full too */
        }
        if (late)
            usleep(1000000);
        int n = wait1(ep, &ev, 1, 5000);
        if (n == 1 && (ev.events & EPOLLOUT) && ev.data.u64 == 5)
            woken++;
    }
    printf("rounds woken %d of 5\n", woken);
    return 0;
}

static int dup_close(int fd, int ep)
{
    nonblock(fd);
    int other = dup(fd);
    if (other < 0)
        die("dup");
    if (add(ep, fd, EPOLLIN, 11) != 0)
        die("epoll_ctl");
    close(fd);
    int events = 0;
    long bytes = 0;
    for (int i = 0; i < 3; i++) {
        struct epoll_event ev;
        int n = wait1(ep, &ev, 1, 4000);
        if (n != 1 || ev.data.u64 != 11)
            break;
        events++;
        bytes += drain(other);
    }
    printf("events after close of the registered dup %d, bytes %ld\n",
           events, bytes);
    return 0;
}

static int two_dups(int fd, int ep)
{
    nonblock(fd);
    int other = dup(fd);
    if (other < 0)
        die("dup");
    int a = add(ep, fd, EPOLLIN, 1);
    int b = add(ep, other, EPOLLIN, 2);
    printf("add first %s, add dup %s\n", a == 0 ? "ok" : strerror(errno),
           b == 0 ? "ok" : strerror(errno));
    struct epoll_event ev[4];
    int n = wait1(ep, ev, 4, 4000);
    unsigned seen = 0;
    for (int i = 0; i < n; i++)
        seen |= 1u << (ev[i].data.u64 & 7);
    printf("reported data1 %s data2 %s\n", seen & 2 ? "yes" : "no",
           seen & 4 ? "yes" : "no");
    printf("drained %ld\n", drain(other));
    return 0;
}

/* Two epoll sets, each with its own thread in epoll_wait, hold the socket
 * with EPOLLEXCLUSIVE; the peer sends once: the kernel wakes one. */
struct excl_waiter {
    int ep;
    int woken;
};

static void *excl_wait(void *arg)
{
    struct excl_waiter *w = arg;
    struct epoll_event ev;
    w->woken = wait1(w->ep, &ev, 1, 3000) == 1;
    return NULL;
}

static int exclusive(int fd, int ep)
{
    nonblock(fd);
    struct excl_waiter w[2] = {{ep, 0}, {epoll_create1(EPOLL_CLOEXEC), 0}};
    if (w[1].ep < 0 || add(w[0].ep, fd, EPOLLIN | EPOLLEXCLUSIVE, 1) != 0 ||
        add(w[1].ep, fd, EPOLLIN | EPOLLEXCLUSIVE, 2) != 0)
        die("epoll_ctl EPOLLEXCLUSIVE");
    struct epoll_event mod = {.events = EPOLLIN, .data.u64 = 1};
    int m = epoll_ctl(w[0].ep, EPOLL_CTL_MOD, fd, &mod);
    printf("mod of an exclusive registration: %s\n",
           m == 0 ? "ok" : errno == EINVAL ? "EINVAL" : strerror(errno));
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, excl_wait, &w[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    printf("woken %d of 2\n", w[0].woken + w[1].woken);
    printf("drained %ld\n", drain(fd));
    return 0;
}

/* --- the private descriptor moved, two registrations in a set, fork --- */

/* Whether fd is one of the n numbers in keep. */
static int kept(int fd, const int *keep, int n)
{
    for (int i = 0; i < n; i++)
        if (keep[i] == fd)
            return 1;
    return fd <= 2;
}

/*
 * dup2()s /dev/null onto every open socket number above 2 the program
 * did not make (keep), as a daemon that takes fixed numbers does: over
 * plain TCP there is none; under the shim these are its private
 * descriptors, which must move out of the way. The numbers taken go to
 * stderr ("took N: ..."), for the case's check of the kernel's keys.
 */
static void take_sockets(const int *keep, int n)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        die("open /dev/null");
    int taken[64], ntaken = 0;
    /* The numbers first: a private descriptor moves to a higher one. */
    for (int fd = 3; fd < 65536 && ntaken < 64; fd++) {
        struct stat st;
        if (fd != null && !kept(fd, keep, n) && fstat(fd, &st) == 0 &&
            S_ISSOCK(st.st_mode))
            taken[ntaken++] = fd;
    }
    for (int i = 0; i < ntaken; i++)
        if (dup2(null, taken[i]) != taken[i])
            die("dup2");
    fprintf(stderr, "took %d:", ntaken);
    for (int i = 0; i < ntaken; i++)
        fprintf(stderr, " %d", taken[i]);
    fprintf(stderr, "\n");
}

/* The kernel's registrations in ep (/proc/self/fdinfo), to stderr as
 * "epoll LABEL tfd N data HEX" lines, for the case's checks. */
static void dump_epoll(int ep, const char *label)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        die("fdinfo");
    int entries = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        int tfd;
        unsigned events;
        unsigned long long data;
        if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events,
                   &data) != 3)
            continue;
        fprintf(stderr, "epoll %s tfd %d data %llx\n", label, tfd, data);
        entries++;
    }
    fprintf(stderr, "epoll %s end %d\n", label, entries);
    fclose(f);
}

/* One chunk's round in a set holding level-triggered registrations
 * (data in lt) and edge-triggered ones (data in et), all of one socket:
 * three waits without reading, then a drain through rfd and a wait that
 * must be quiet. Prints whether each level-triggered one was still
 * reported by the third wait and how many edges each edge-triggered one
 * had (one, unless a registration is duplicated). */
static void round_of(int ep, int rfd, const char *name, const int *lt,
                     int nlt, const int *et, int net)
{
    int level[4] = {0}, edges[4] = {0};
    int ms[3] = {4000, 300, 300};
    for (int w = 0; w < 3; w++) {
        struct epoll_event ev[8];
        int n = wait1(ep, ev, 8, ms[w]);
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < nlt; k++)
                if (ev[i].data.u64 == (uint64_t)lt[k] && w == 2)
                    level[k] = 1;
            for (int k = 0; k < net; k++)
                if (ev[i].data.u64 == (uint64_t)et[k])
                    edges[k]++;
        }
    }
    printf("%s:", name);
    for (int k = 0; k < nlt; k++)
        printf(" data%d level %s", lt[k], level[k] ? "yes" : "no");
    for (int k = 0; k < net; k++)
        printf(" data%d edges %d", et[k], edges[k]);
    long got = drain(rfd);
    struct epoll_event ev;
    printf(", drained %ld, then %s\n", got,
           wait1(ep, &ev, 1, 300) == 0 ? "quiet" : "reported");
}

/* The private descriptor moves while a level-triggered registration in
 * one set and an edge-triggered one in another watch it: each keeps
 * reporting, once per edge, and EPOLL_CTL_DEL still removes it. */
static int move_private(int fd, int ep)
{
    nonblock(fd);
    int ep2 = epoll_create1(EPOLL_CLOEXEC);
    if (ep2 < 0 || add(ep, fd, EPOLLIN, 21) != 0 ||
        add(ep2, fd, EPOLLIN | EPOLLET, 22) != 0)
        die("epoll_ctl");
    int keep[] = {fd, ep, ep2};
    take_sockets(keep, 3);
    dump_epoll(ep, "lt");
    dump_epoll(ep2, "et");
    for (int chunk = 1; chunk <= 2; chunk++) {
        struct epoll_event ev;
        double t = now();
        int n = wait1(ep, &ev, 1, 4000);
        printf("chunk %d: lt wakes %s data %llu", chunk, bucket(t, n),
               n == 1 ? (unsigned long long)ev.data.u64 : 0ull);
        t = now();
        printf(", unread %s", bucket(t, wait1(ep, &ev, 1, 2000)));
        /* Room for more than one event: a doubled edge shows as "et
         * again at-once" (maxevents 1 is the "edge-once" mode's). */
        struct epoll_event evs[8];
        t = now();
        n = wait1(ep2, evs, 8, 2000);
        printf(", et edge %s data %llu", bucket(t, n),
               n == 1 ? (unsigned long long)evs[0].data.u64 : 0ull);
        t = now();
        printf(", et again %s", bucket(t, wait1(ep2, evs, 8, 400)));
        printf(", drained %ld\n", drain(fd));
    }
    int a = epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    int b = epoll_ctl(ep2, EPOLL_CTL_DEL, fd, NULL);
    printf("del %s %s\n", a == 0 ? "ok" : strerror(errno),
           b == 0 ? "ok" : strerror(errno));
    dump_epoll(ep, "lt-deleted");
    dump_epoll(ep2, "et-deleted");
    return 0;
}

/* A socket and a dup in one set (level-triggered data 1, edge-triggered
 * data 2); the private descriptors move; the first registration goes
 * (EPOLL_CTL_DEL) and a third duplicate joins (data 3). Each chunk is
 * reported to exactly the registrations there are. */
static int two_regs(int fd, int ep)
{
    nonblock(fd);
    int other = dup(fd);
    if (other < 0 || add(ep, fd, EPOLLIN, 1) != 0 ||
        add(ep, other, EPOLLIN | EPOLLET, 2) != 0)
        die("epoll_ctl");
    int one[] = {1}, two[] = {2}, three[] = {3};
    dump_epoll(ep, "two");
    round_of(ep, other, "both", one, 1, two, 1);
    int keep[] = {fd, other, ep};
    take_sockets(keep, 3);
    dump_epoll(ep, "moved");
    round_of(ep, other, "moved", one, 1, two, 1);
    if (epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) != 0)
        die("epoll_ctl DEL");
    dump_epoll(ep, "one");
    round_of(ep, other, "first deleted", NULL, 0, two, 1);
    int third = dup(fd);
    if (third < 0 || add(ep, third, EPOLLIN, 3) != 0)
        die("epoll_ctl third");
    dump_epoll(ep, "again");
    round_of(ep, other, "third added", three, 1, two, 1);
    return 0;
}

/* Each chunk: the level-triggered set first, then edges counted in the
 * edge-triggered set with maxevents 1 (the shim's first look can fill
 * the call while the kernel's event for the same edge is still queued),
 * a drain, and a wait that must be quiet. */
static int edge_once(int fd, int ep)
{
    nonblock(fd);
    int ep2 = epoll_create1(EPOLL_CLOEXEC);
    if (ep2 < 0 || add(ep, fd, EPOLLIN, 61) != 0 ||
        add(ep2, fd, EPOLLIN | EPOLLET, 62) != 0)
        die("epoll_ctl");
    for (int chunk = 1; chunk <= 2; chunk++) {
        struct epoll_event ev;
        int n = wait1(ep, &ev, 1, 4000);
        printf("chunk %d: lt %s", chunk,
               n == 1 && ev.data.u64 == 61 ? "reported" : "missed");
        if (chunk == 2) {
            char buf[10];
            printf(", read %ld", (long)read(fd, buf, sizeof(buf)));
        }
        int edges = 0;
        for (int w = 0; w < 3; w++)
            if (wait1(ep2, &ev, 1, w == 0 ? 2000 : 300) == 1 &&
                ev.data.u64 == 62)
                edges++;
        printf(", et edges %d, drained %ld", edges, drain(fd));
        printf(", then %s\n", wait1(ep2, &ev, 1, 300) == 0 ? "quiet"
                                                          : "reported");
    }
    return 0;
}

/* A child that execs a program and one that closes its copies of the
 * sets, then exits; the parent's registrations (level-triggered in ep,
 * edge-triggered in ep2) go on reporting; then a child takes the
 * connection over and waits on the set it inherited. */
static int fork_shared(int fd, int ep)
{
    nonblock(fd);
    int ep2 = epoll_create1(EPOLL_CLOEXEC);
    if (ep2 < 0 || add(ep, fd, EPOLLIN, 41) != 0 ||
        add(ep2, fd, EPOLLIN | EPOLLET, 42) != 0)
        die("epoll_ctl");
    for (int kind = 0; kind < 2; kind++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0 && kind == 0) {
            execlp("true", "true", (char *)NULL);
            _exit(127);
        }
        if (pid == 0) {
            close(ep);
            close(ep2);
            exit(0);
        }
        int status = -1;
        if (waitpid(pid, &status, 0) != pid)
            die("waitpid");
        printf("child %s exit %d\n", kind == 0 ? "exec" : "closing the sets",
               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    struct epoll_event ev;
    double t = now();
    int n = wait1(ep2, &ev, 1, 4000);
    printf("parent et edge %s data %llu\n", bucket(t, n),
           n == 1 ? (unsigned long long)ev.data.u64 : 0ull);
    round_of(ep, fd, "parent lt", (int[]){41}, 1, NULL, 0);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        t = now();
        n = wait1(ep2, &ev, 1, 4000);
        printf("child et edge %s data %llu\n", bucket(t, n),
               n == 1 ? (unsigned long long)ev.data.u64 : 0ull);
        round_of(ep, fd, "child lt", (int[]){41}, 1, NULL, 0);
        exit(0);
    }
    int status = -1;
    if (waitpid(pid, &status, 0) != pid)
        die("waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

/* nginx's upstream pattern: the socket joins the set before connect();
 * the registration moves to the TLS connection at the swap, then the
 * private descriptor moves. Each chunk still wakes it. */
static int preconnect(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai;
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        fprintf(stderr, "ev_epoll_exact: cannot resolve %s\n", host);
        exit(1);
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0 || ep < 0 || add(ep, fd, EPOLLIN, 51) != 0)
        die("epoll_ctl before connect");
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        die("connect");
    freeaddrinfo(ai);
    nonblock(fd);
    dump_epoll(ep, "swapped");
    int one[] = {51};
    round_of(ep, fd, "swapped", one, 1, NULL, 0);
    int keep[] = {fd, ep};
    take_sockets(keep, 2);
    dump_epoll(ep, "moved");
    round_of(ep, fd, "moved", one, 1, NULL, 0);
    return 0;
}

/* Sleeps ms milliseconds. */
static void pause_ms(long ms)
{
    struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&d, &d) != 0 && errno == EINTR)
        ;
}

/* One poll() for POLLIN of at most ms; returns its count. */
static int poll_in(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    int n;
    do {
        n = poll(&p, 1, ms);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        die("poll");
    return n;
}

static void read_exactly(int fd, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("read");
        got += (size_t)n;
    }
}

static int read_ahead(int fd, int ep)
{
    char buf[100];
    pause_ms(1000); /* all three chunks have arrived */
    read_exactly(fd, buf, sizeof(buf));
    double t = now();
    printf("poll after the first chunk %s\n", bucket(t, poll_in(fd, 2000)));
    int queued = -1;
    if (ioctl(fd, FIONREAD, &queued) != 0)
        die("ioctl FIONREAD");
    printf("fionread covers the unread 200 bytes %s\n",
           queued >= 200 ? "yes" : "no");
    read_exactly(fd, buf, sizeof(buf));
    nonblock(fd);
    if (add(ep, fd, EPOLLIN, 3) != 0)
        die("epoll_ctl");
    struct epoll_event ev;
    t = now();
    printf("epoll after the second chunk %s\n", bucket(t, wait1(ep, &ev, 1,
                                                                2000)));
    printf("drained %ld\n", drain(fd));
    return 0;
}

/* CPU seconds this process has used. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int split_record(int fd)
{
    char buf[100];
    pause_ms(1000);
    read_exactly(fd, buf, sizeof(buf));
    double cpu = cpu_seconds(), t = now();
    printf("poll with half a record %s\n", bucket(t, poll_in(fd, 1000)));
    printf("cpu while waiting %s\n",
           cpu_seconds() - cpu < 0.3 ? "quiet" : "spinning");
    t = now();
    printf("rest of the record wakes %s\n", bucket(t, poll_in(fd, 5000)));
    read_exactly(fd, buf, sizeof(buf));
    printf("second chunk %c\n", buf[0]);
    return 0;
}

#define HIGH_FD 1500
#define HIGH_NFDS (HIGH_FD + 1)
#define HIGH_WORDS ((HIGH_NFDS + 63) / 64 + 2)

static int select_high(int fd)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("getrlimit");
    if (rl.rlim_cur < 2048) {
        rl.rlim_cur = rl.rlim_max < 2048 ? rl.rlim_max : 2048;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            die("setrlimit");
    }
    if (dup2(fd, HIGH_FD) != HIGH_FD)
        die("dup2");
    close(fd);
    unsigned long rset[HIGH_WORDS], wset[HIGH_WORDS];
    memset(rset, 0, sizeof(rset));
    memset(wset, 0xff, sizeof(wset)); /* bits past nfds: never touched */
    memset(wset, 0, (HIGH_NFDS + 63) / 64 * sizeof(unsigned long));
    rset[HIGH_FD / 64] |= 1ul << (HIGH_FD % 64);
    rset[HIGH_WORDS - 1] = 0xabcdul; /* past nfds: kept */
    struct timeval tv = {4, 0};
    double t = now();
    int n = select(HIGH_NFDS, (fd_set *)(void *)rset, (fd_set *)(void *)wset,
                   NULL, &tv);
    if (n < 0)
        die("select");
    int set = (rset[HIGH_FD / 64] >> (HIGH_FD % 64)) & 1;
    printf("select %d ready fd %d, wakes %s\n", n, set ? HIGH_FD : -1,
           bucket(t, n));
    printf("words past nfds kept %s\n",
           rset[HIGH_WORDS - 1] == 0xabcdul &&
                   wset[HIGH_WORDS - 1] == ~0ul ? "yes" : "no");
    char buf[256];
    ssize_t got = set ? read(HIGH_FD, buf, sizeof(buf)) : -1;
    printf("read %zd\n", got);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ev_epoll_exact MODE HOST PORT\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(30);
    const char *mode = argv[1];
    if (strcmp(mode, "preconnect") == 0)
        return preconnect(argv[2], argv[3]);
    int fd = connect_to(argv[2], argv[3]);
    if (strcmp(mode, "select-high") == 0)
        return select_high(fd);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    if (strcmp(mode, "et-unread") == 0)
        return et_unread(fd, ep);
    if (strcmp(mode, "et-read-rest") == 0)
        return et_read_rest(fd, ep);
    if (strcmp(mode, "oneshot-mod") == 0)
        return oneshot_mod(fd, ep);
    if (strcmp(mode, "et-out") == 0)
        return et_out(fd, ep, false);
    if (strcmp(mode, "et-out-late") == 0)
        return et_out(fd, ep, true);
    if (strcmp(mode, "dup-close") == 0)
        return dup_close(fd, ep);
    if (strcmp(mode, "two-dups") == 0)
        return two_dups(fd, ep);
    if (strcmp(mode, "exclusive") == 0)
        return exclusive(fd, ep);
    if (strcmp(mode, "read-ahead") == 0)
        return read_ahead(fd, ep);
    if (strcmp(mode, "split-record") == 0)
        return split_record(fd);
    if (strcmp(mode, "move-private") == 0)
        return move_private(fd, ep);
    if (strcmp(mode, "two-regs") == 0)
        return two_regs(fd, ep);
    if (strcmp(mode, "edge-once") == 0)
        return edge_once(fd, ep);
    if (strcmp(mode, "fork") == 0)
        return fork_shared(fd, ep);
    fprintf(stderr, "ev_epoll_exact: unknown mode %s\n", mode);
    return 2;
}
