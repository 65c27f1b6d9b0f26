/*
 * raw_calls - a program that connects, accepts and opens with Fast Open
 * through its own system calls, never libc's connect/accept/sendto: what
 * the syscall guard (src/shim/guard.c) is for. The cases are in
 * test/integration/cases_guard.py. libc only: the same program runs over
 * plain TCP (the reference) and under the shim.
 *
 *   raw_calls connect HOST PORT
 *                     [--via syscall|asm|plugin|int80|socketcall]
 *                     [--thread] [--own-sigsys catch|ignore]
 *                     [client options]
 *   raw_calls fastopen HOST PORT [client options]
 *   raw_calls serve PORT PORT_FILE
 *   raw_calls io_uring
 *   raw_calls load-many DIR COUNT
 *   raw_calls blocked-connect HOST PORT
 *
 * connect: libc's socket(), then connect(2) through syscall(3) (--via
 * syscall, the default), the program's own syscall instruction (--via
 * asm), that of a library loaded with dlopen after start (--via plugin:
 * plugins/raw_connect.so beside the program) or the 32-bit ABI's int
 * 0x80 (--via int80: i386's connect;
 * --via socketcall: socketcall(SYS_CONNECT)), from the main thread or a
 * new one (--thread); then the client
 * exchange of ev_common.h over libc's read/write ("ok N bytes sha=X").
 * --own-sigsys catch|ignore: first signal(SIGSYS, a counting handler or
 * SIG_IGN); after the exchange raise(SIGSYS), then "own SIGSYS: caught N"
 * or "own SIGSYS: ignored".
 * HOST is an IPv4 address (no name lookup: a program with its own
 * system calls has its own resolver too).
 * fastopen: the same, connecting with sendto(2, MSG_FASTOPEN) of the
 * stream's first chunk through syscall(3), the rest through libc.
 * serve: listens on 127.0.0.1:PORT (0: any) with libc, writes PORT_FILE,
 * accepts one connection with accept4(2) through syscall(3), echoes it
 * through libc until EOF; exit 0 when all was echoed.
 * io_uring: io_uring_setup(2); prints "io_uring_setup: ok" or
 * "io_uring_setup: <errno text>"; exit 0 either way.
 * load-many: dlopen of DIR/lib-0.so ... DIR/lib-(COUNT-1).so (copies of
 * one library, each its own object), stopping at the first that fails:
 * prints "loaded K of COUNT", and "dlopen: <dlerror>" for a failure;
 * exit 0 either way.
 * blocked-connect: blocks every signal, then connect(2) through
 * syscall(3): prints "connected" or "connect: <reason>".
 * Exit 0 ok, 1 I/O or stream error, 2 usage or bound, 3 connect failed.
 */
#include "ev_common.h"
#include "raw_connect.h"

#include <dlfcn.h>
#include <libgen.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/syscall.h>

/* connect(2) through the 32-bit ABI (int 0x80), which a 64-bit process
 * can reach too: i386's connect (362), or socketcall(2) with SYS_CONNECT
 * (3) and its three arguments in memory. Pointers must lie below 4 GiB. */
static long int80_connect(int fd, const struct sockaddr *addr, socklen_t len,
                          bool socketcall)
{
    char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (low == MAP_FAILED)
        return -1;
    memcpy(low, addr, len);
    uint32_t *args = (uint32_t *)(low + 256);
    args[0] = (uint32_t)fd;
    args[1] = (uint32_t)(uintptr_t)low;
    args[2] = len;
    long nr = socketcall ? 102 : 362;
    long b = socketcall ? 3 : fd;
    char *c = socketcall ? (char *)args : low;
    long rc;
    __asm__ volatile("int $0x80"
                     : "=a"(rc)
                     : "a"(nr), "b"(b), "c"(c), "d"((long)len)
                     : "memory");
    munmap(low, 4096);
    if (rc < 0) {
        errno = (int)-rc;
        return -1;
    }
    return rc;
}

/* connect(2) with the own instruction of plugins/raw_connect.so, loaded
 * now: code that was not there when the program started. */
static long plugin_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n < 0)
        return -1;
    path[n] = '\0'; /* readlink does not end the string */
    char *dir = dirname(path);
    char lib[4160];
    snprintf(lib, sizeof(lib), "%s/plugins/raw_connect.so", dir);
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "%s: dlopen: %s\n", ev_prog, dlerror());
        errno = ELIBACC;
        return -1;
    }
    union {
        void *p;
        int (*f)(int, const struct sockaddr *, socklen_t);
    } fn = {dlsym(h, "raw_plugin_connect")};
    if (fn.p == NULL) {
        errno = ELIBBAD;
        return -1;
    }
    return fn.f(fd, addr, len);
}

static void ipv4(const char *host, const char *port, struct sockaddr_in *a)
{
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)strtoul(port, NULL, 10));
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) {
        fprintf(stderr, "%s: %s is not an IPv4 address\n", ev_prog, host);
        exit(2);
    }
}

#define VIA_USAGE "[--via syscall|asm|plugin|int80|socketcall] [--thread] " \
                  "[--own-sigsys catch|ignore]"

/* --own-sigsys: the program's own SIGSYS disposition, set with signal()
 * before the connect and tried with raise() after the exchange. */
static volatile sig_atomic_t own_sigsys_caught;

static void on_own_sigsys(int sig)
{
    (void)sig;
    own_sigsys_caught++;
}

/* How the connect is made. */
enum via { VIA_SYSCALL, VIA_ASM, VIA_PLUGIN, VIA_INT80, VIA_SOCKETCALL };

struct connect_job {
    const struct ev_client_opts *o;
    enum via via;
    int fd;
    int err;
};

static void *do_raw_connect(void *arg)
{
    struct connect_job *rc = arg;
    struct sockaddr_in a;
    ipv4(rc->o->host, rc->o->port, &a);
    rc->fd = socket(AF_INET, SOCK_STREAM, 0);
    const struct sockaddr *sa = (const struct sockaddr *)&a;
    long r = rc->via == VIA_ASM     ? raw_connect(rc->fd, sa, sizeof(a))
             : rc->via == VIA_PLUGIN ? plugin_connect(rc->fd, sa, sizeof(a))
             : rc->via == VIA_INT80
                 ? int80_connect(rc->fd, sa, sizeof(a), false)
             : rc->via == VIA_SOCKETCALL
                 ? int80_connect(rc->fd, sa, sizeof(a), true)
                 : syscall(SYS_connect, rc->fd, sa, sizeof(a));
    rc->err = r == 0 ? 0 : errno;
    return NULL;
}

static int exchange(int fd, const struct ev_client_opts *o)
{
    struct ev_check c;
    ev_check_init(&c, o->bytes);
    if (ev_exchange_duplex(fd, o, &c) != 0)
        return 1;
    ev_report_ok(stdout, &c);
    return 0;
}

static int cmd_connect(int argc, char **argv)
{
    struct ev_client_opts o;
    ev_client_opts_init(&o);
    struct connect_job rc = {&o, VIA_SYSCALL, -1, 0};
    bool thread = false;
    const char *own_sigsys = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--thread") == 0)
            thread = true;
        else if (strcmp(argv[i], "--own-sigsys") == 0 && i + 1 < argc)
            own_sigsys = argv[++i];
        else if (strcmp(argv[i], "--via") == 0 && i + 1 < argc)
            rc.via = strcmp(argv[++i], "asm") == 0          ? VIA_ASM
                     : strcmp(argv[i], "plugin") == 0     ? VIA_PLUGIN
                     : strcmp(argv[i], "int80") == 0      ? VIA_INT80
                     : strcmp(argv[i], "socketcall") == 0 ? VIA_SOCKETCALL
                                                          : VIA_SYSCALL;
        else if (!ev_client_arg(&o, argc, argv, &i))
            ev_client_usage(VIA_USAGE);
    }
    ev_client_start(&o, VIA_USAGE);
    bool ignore = own_sigsys != NULL && strcmp(own_sigsys, "ignore") == 0;
    if (own_sigsys != NULL &&
        signal(SIGSYS, ignore ? SIG_IGN : on_own_sigsys) == SIG_ERR) {
        fprintf(stderr, "%s: signal: %s\n", ev_prog, strerror(errno));
        return 2;
    }
    pthread_t t;
    if (thread && pthread_create(&t, NULL, do_raw_connect, &rc) == 0)
        pthread_join(t, NULL);
    else
        do_raw_connect(&rc);
    if (rc.err != 0) {
        fprintf(stderr, "connect: %s\n", strerror(rc.err));
        return 3;
    }
    int rc_exchange = exchange(rc.fd, &o);
    if (own_sigsys != NULL) {
        raise(SIGSYS);
        if (ignore)
            printf("own SIGSYS: ignored\n");
        else
            printf("own SIGSYS: caught %d\n", (int)own_sigsys_caught);
    }
    return rc_exchange;
}

static int cmd_fastopen(int argc, char **argv)
{
    struct ev_client_opts o;
    ev_client_parse(&o, argc - 1, argv + 1);
    ev_client_start(&o, "");
    struct sockaddr_in a;
    ipv4(o.host, o.port, &a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    /* The first bytes of the stream go with the connect; the exchange
     * then sends the whole stream again from its start, so the peer's
     * echo is checked against what was sent: a prefix of it, then it. */
    static const char first[] = "FASTOPEN-RAW\n";
    long r = syscall(SYS_sendto, fd, first, sizeof(first) - 1, MSG_FASTOPEN,
                     &a, sizeof(a));
    if (r < 0) {
        fprintf(stderr, "connect: %s\n", strerror(errno));
        return 3;
    }
    char echo[sizeof(first)] = {0};
    size_t got = 0;
    while (got < sizeof(first) - 1) {
        ssize_t n = read(fd, echo + got, sizeof(first) - 1 - got);
        if (n <= 0) {
            fprintf(stderr, "%s: read: %s\n", ev_prog,
                    n < 0 ? strerror(errno) : "EOF");
            return 1;
        }
        got += (size_t)n;
    }
    if (memcmp(echo, first, sizeof(first) - 1) != 0) {
        fprintf(stderr, "%s: the first bytes did not come back\n", ev_prog);
        return 1;
    }
    printf("fastopen %ld bytes echoed\n", r);
    return exchange(fd, &o);
}

static int cmd_serve(int argc, char **argv)
{
    if (argc != 4)
        return fprintf(stderr, "usage: %s serve PORT PORT_FILE\n", ev_prog), 2;
    ev_bound(60);
    unsigned port;
    int lfd = ev_listen(AF_INET, (unsigned)strtoul(argv[2], NULL, 10), 0,
                        &port);
    if (lfd < 0 || ev_write_port_file(argv[3], port) != 0)
        return 1;
    printf("listening on port %u\n", port);
    fflush(stdout);
    long fd;
    do
        fd = syscall(SYS_accept4, lfd, NULL, NULL, 0);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        fprintf(stderr, "%s: accept4: %s\n", ev_prog, strerror(errno));
        return 1;
    }
    return ev_echo_blocking((int)fd, 16384);
}

static int cmd_io_uring(void)
{
    unsigned char params[120] = {0}; /* struct io_uring_params */
    long fd = syscall(SYS_io_uring_setup, 4, params);
    printf("io_uring_setup: %s\n", fd >= 0 ? "ok" : strerror(errno));
    return 0;
}

static int cmd_blocked_connect(int argc, char **argv)
{
    if (argc != 4)
        return fprintf(stderr, "usage: %s blocked-connect HOST PORT\n",
                       ev_prog), 2;
    ev_bound(30);
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGALRM); /* the bound */
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    struct sockaddr_in a;
    ipv4(argv[2], argv[3], &a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (syscall(SYS_connect, fd, &a, sizeof(a)) != 0) {
        printf("connect: %s\n", strerror(errno));
        return 3;
    }
    printf("connected\n");
    return 0;
}

static int cmd_load_many(int argc, char **argv)
{
    if (argc != 4)
        return fprintf(stderr, "usage: %s load-many DIR COUNT\n", ev_prog), 2;
    ev_bound(120);
    long count = strtol(argv[3], NULL, 10), loaded = 0;
    for (; loaded < count; loaded++) {
        char lib[4096];
        snprintf(lib, sizeof(lib), "%s/lib-%ld.so", argv[2], loaded);
        if (dlopen(lib, RTLD_NOW | RTLD_LOCAL) == NULL) {
            printf("dlopen: %s\n", dlerror());
            break;
        }
    }
    printf("loaded %ld of %ld\n", loaded, count);
    return 0;
}

int main(int argc, char **argv)
{
    ev_prog = "raw_calls";
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *cmd = argc > 1 ? argv[1] : "";
    if (strcmp(cmd, "connect") == 0)
        return cmd_connect(argc, argv);
    if (strcmp(cmd, "fastopen") == 0)
        return cmd_fastopen(argc, argv);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(cmd, "io_uring") == 0)
        return cmd_io_uring();
    if (strcmp(cmd, "blocked-connect") == 0)
        return cmd_blocked_connect(argc, argv);
    if (strcmp(cmd, "load-many") == 0)
        return cmd_load_many(argc, argv);
    fprintf(stderr, "usage: %s connect|fastopen|serve|io_uring|"
                    "blocked-connect|load-many ...\n", ev_prog);
    return 2;
}
