/*
 * relay.c - TLS across exec (docs/design.md, "Process life").
 *
 * TLS state is process memory: execve() cannot carry it. Legacy services
 * hand a connection to an exec'd program on descriptors 0, 1 and 2
 * (inetd, `socat EXEC:prog,nofork`, sshd's re-exec, `dup2(sock, 1);
 * exec`). For those, the exec'ing process forks a relay before the exec:
 * a copy of itself that owns the TLS state and the private descriptor,
 * and joins the new program through an AF_UNIX socketpair put on the same
 * descriptor numbers. The relay pumps plaintext between the socketpair
 * and the TLS connection (through the shim's own read/write, so the
 * engine does every byte that reaches the TCP socket), honours half-close
 * and ends with the connection.
 *
 * Life of a relay:
 *   - made with a double fork, so it is reparented at once and is never
 *     a child (or a zombie) of the exec'd program;
 *   - closes every descriptor it inherited except its socketpair end, the
 *     private descriptor and the shim's log (a pipe's write end kept open
 *     would keep the program's parent from seeing EOF);
 *   - waits for the exec: the exec'ing process holds the write end of a
 *     close-on-exec "commit" pipe. EOF there means the exec happened; one
 *     byte means it failed: the relay then leaves without a word (no
 *     close_notify) and the program keeps its connection;
 *   - never writes to the TCP socket but through the engine.
 *
 * The new image, under the shim too (LD_PRELOAD is inherited), learns from
 * SECSHIM_RELAYED which of its descriptors are relayed and the TCP
 * addresses they stand for, so getpeername/getsockname answer as before
 * the exec. The variable is removed at start, so it does not propagate.
 */
#include "fdtab.h"
#include "io.h"
#include "real.h"
#include "relay.h"
#include "sock.h"
#include "sockets.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "secshim/log.h"

#define RELAY_ENV "SECSHIM_RELAYED"

/* --- relayed descriptors of this image ------------------------------------ */

/* One socketpair end of a relay: the TCP connection it stands for. */
struct relayed {
    dev_t dev;
    ino_t ino;
    struct sockaddr_storage peer, local;
    socklen_t peer_len, local_len;
};

/* Filled once by the constructor (relay_image_start), read-only after. */
static struct relayed relayed[RELAY_FDS];
static int n_relayed;

/* The record whose socket fd is (device and inode, so dups count too),
 * or NULL. One load when the image has none. */
static const struct relayed *relayed_of(int fd)
{
    if (n_relayed == 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
        return NULL;
    for (int i = 0; i < n_relayed; i++)
        if (relayed[i].dev == st.st_dev && relayed[i].ino == st.st_ino)
            return &relayed[i];
    return NULL;
}

bool relay_is_relayed(dev_t dev, ino_t ino)
{
    for (int i = 0; i < n_relayed; i++)
        if (relayed[i].dev == dev && relayed[i].ino == ino)
            return true;
    return false;
}

/* Copies an address as getpeername does: truncated to *len, *len set to
 * the full size. */
static void copy_name(const struct sockaddr_storage *ss, socklen_t ss_len,
                      struct sockaddr *addr, socklen_t *len)
{
    socklen_t n = *len < ss_len ? *len : ss_len;
    memcpy(addr, ss, n);
    *len = ss_len;
}

bool relay_name(int fd, bool peer, struct sockaddr *addr, socklen_t *len,
                int *rc)
{
    const struct relayed *r = relayed_of(fd);
    if (r == NULL)
        return false;
    if (addr == NULL || len == NULL) {
        errno = EFAULT;
        *rc = -1;
        return true;
    }
    if (peer)
        copy_name(&r->peer, r->peer_len, addr, len);
    else
        copy_name(&r->local, r->local_len, addr, len);
    *rc = 0;
    return true;
}

/*
 * Socket options on a relayed descriptor: the TCP socket is the relay's.
 * SO_DOMAIN and SO_PROTOCOL answer for it (AF_INET/AF_INET6, TCP); the
 * other SOL_SOCKET options are the socketpair's own (buffers, timeouts,
 * which are what the program's calls wait on). TCP and IP level options
 * cannot reach the TCP socket: setting one succeeds and does nothing,
 * reading one fails with ENOPROTOOPT (docs/shim.md, "exec").
 */
bool relay_sockopt(int fd, int level, int name, bool set, void *val,
                   socklen_t *len, int *rc)
{
    if (level != IPPROTO_TCP && level != IPPROTO_IP &&
        level != IPPROTO_IPV6 &&
        !(level == SOL_SOCKET && !set &&
          (name == SO_DOMAIN || name == SO_PROTOCOL)))
        return false;
    const struct relayed *r = relayed_of(fd);
    if (r == NULL)
        return false;
    *rc = 0;
    if (set)
        return true;
    if (level != SOL_SOCKET) {
        errno = ENOPROTOOPT;
        *rc = -1;
        return true;
    }
    int v = name == SO_DOMAIN ? r->peer.ss_family : IPPROTO_TCP;
    if (val == NULL || len == NULL || *len < (socklen_t)sizeof(v)) {
        errno = EINVAL;
        *rc = -1;
        return true;
    }
    memcpy(val, &v, sizeof(v));
    *len = sizeof(v);
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Parses HEX (up to the next '/' ',' or end) into an address. */
static const char *parse_addr(const char *p, struct sockaddr_storage *ss,
                              socklen_t *len)
{
    unsigned char *out = (unsigned char *)ss;
    size_t n = 0;
    memset(ss, 0, sizeof(*ss));
    while (p != NULL && hexval(p[0]) >= 0 && hexval(p[1]) >= 0) {
        if (n == sizeof(*ss))
            return NULL;
        out[n++] = (unsigned char)(hexval(p[0]) << 4 | hexval(p[1]));
        p += 2;
    }
    *len = (socklen_t)n;
    if (n < sizeof(sa_family_t) ||
        (ss->ss_family != AF_INET && ss->ss_family != AF_INET6))
        return NULL;
    return p;
}

/* One entry "FD/DEV/INO/PEERHEX/LOCALHEX": recorded when FD is still
 * that socket (a program between may have moved descriptors). */
static const char *parse_entry(const char *p)
{
    char *end;
    long fd = strtol(p, &end, 10);
    if (*end != '/')
        return NULL;
    unsigned long long dev = strtoull(end + 1, &end, 10);
    if (*end != '/')
        return NULL;
    unsigned long long ino = strtoull(end + 1, &end, 10);
    if (*end != '/')
        return NULL;
    struct relayed r;
    const char *q = parse_addr(end + 1, &r.peer, &r.peer_len);
    if (q == NULL || *q != '/')
        return NULL;
    q = parse_addr(q + 1, &r.local, &r.local_len);
    if (q == NULL)
        return NULL;
    r.dev = (dev_t)dev;
    r.ino = (ino_t)ino;
    struct stat st;
    if (fd >= 0 && fd < RELAY_FDS && n_relayed < RELAY_FDS &&
        fstat((int)fd, &st) == 0 && st.st_dev == r.dev &&
        st.st_ino == r.ino && !relay_is_relayed(r.dev, r.ino))
        relayed[n_relayed++] = r;
    return q;
}

void relay_image_start(void)
{
    const char *v = getenv(RELAY_ENV);
    if (v == NULL)
        return;
    for (const char *p = v; p != NULL && *p != '\0';) {
        p = parse_entry(p);
        if (p != NULL && *p == ',')
            p++;
        else if (p != NULL && *p != '\0')
            p = NULL;
    }
    /* Only this image's descriptors are described: a program it execs
     * gets its own list (relay_exec_prepare), or none. */
    unsetenv(RELAY_ENV);
    if (n_relayed > 0)
        ss_log(SS_LOG_DEBUG, "%d descriptor%s relayed from the process that "
               "exec'd this one", n_relayed, n_relayed > 1 ? "s" : "");
}

/* --- the relay process ----------------------------------------------------- */

/* Signals the relay leaves at their defaults (the program's handlers are
 * the program's code, which must not run here); SIGPIPE is ignored so a
 * gone program or peer shows as EPIPE. */
static void relay_signals(void)
{
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)signal(sig, SIG_DFL);
    (void)signal(SIGPIPE, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    (void)pthread_sigmask(SIG_SETMASK, &none, NULL);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Closes every descriptor but keep[0..n-1] (close_range over the gaps;
 * one by one up to the limit where the kernel has no close_range). */
static void close_all_but(int *keep, size_t n)
{
    qsort(keep, n, sizeof(*keep), cmp_int);
    unsigned int from = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        if (keep[i] < 0 || (unsigned int)keep[i] < from)
            continue;
        if ((unsigned int)keep[i] > from)
            ok = REAL_OPTIONAL(close_range)(from, (unsigned int)keep[i] - 1,
                                            0) == 0;
        from = (unsigned int)keep[i] + 1;
    }
    if (ok && REAL_OPTIONAL(close_range)(from, UINT_MAX, 0) == 0)
        return;
    long open_max = sysconf(_SC_OPEN_MAX);
    for (long fd = 0; fd < open_max && fd <= INT_MAX; fd++) {
        bool kept = false;
        for (size_t i = 0; i < n; i++)
            kept = kept || keep[i] == fd;
        if (!kept)
            REAL(close)((int)fd);
    }
}

struct pump {
    int tls;   /* the relay's program descriptor of the managed socket */
    int plain; /* the relay's socketpair end */
};

#define PUMP_BUF (16 * 1024)

/* Writes all of buf to the socketpair; false when the program is gone. */
static bool plain_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = REAL(write)(fd, buf, len);
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
 * Program -> peer. The program's EOF (shutdown(SHUT_WR) or close) becomes
 * close_notify and a TCP half-close. When the peer can take no more, the
 * socketpair's read side is shut so the program's writes fail with EPIPE,
 * as on TCP. Then the relay lives until the program has closed its end
 * entirely (POLLHUP): its last close is the connection's end, as the
 * kernel's close of the socket would have been. Ends the process.
 */
/* Every process the relay's double fork makes ends here: its status file
 * (each fork child publishes one, src/shim/status.c) goes with it, as at
 * a normal exit; _exit, because nothing else of the program's may run. */
static _Noreturn void relay_exit(int code)
{
    shim_status_exit();
    _exit(code);
}

static void *pump_out(void *arg)
{
    const struct pump *pu = arg;
    static char buf[PUMP_BUF];
    for (;;) {
        ssize_t n = REAL(read)(pu->plain, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (shim_write(pu->tls, buf, (size_t)n) != n) {
            REAL(shutdown)(pu->plain, SHUT_RD);
            break;
        }
    }
    (void)shim_shutdown(pu->tls, SHUT_WR);
    struct pollfd pfd = {.fd = pu->plain, .events = 0, .revents = 0};
    while ((pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) == 0)
        if (REAL(poll)(&pfd, 1, -1) < 0 && errno != EINTR)
            break;
    relay_exit(0);
}

/* Peer -> program: the peer's close_notify or EOF (or a failed
 * connection) becomes the socketpair's half-close, which the program
 * reads as EOF. */
static void pump_in(const struct pump *pu)
{
    static char buf[PUMP_BUF];
    for (;;) {
        ssize_t n = shim_read(pu->tls, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0 || !plain_write_all(pu->plain, buf, (size_t)n))
            break;
    }
    REAL(shutdown)(pu->plain, SHUT_WR);
}

/*
 * The relay's life (never returns). s is the connection; plain the
 * relay's socketpair end; commit the read end of the commit pipe; fds
 * the program's numbers it stood on (for the log line).
 */
static void relay_main(struct shim_sock *s, int family, int plain,
                       int commit, const char *fds)
{
    relay_signals();
    /* A descriptor of its own for the connection, blocking and out of the
     * program's reach: the stand-ins it inherited are shared with other
     * processes (their O_NONBLOCK too). */
    int tls = REAL(socket)(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (tls < 0)
        relay_exit(1);
    fdtab_install(tls, s);
    int keep[] = {plain, commit, s->priv_fd, ss_log_fd(), tls};
    close_all_but(keep, sizeof(keep) / sizeof(keep[0]));
    char b = 0;
    ssize_t n;
    do
        n = REAL(read)(commit, &b, 1);
    while (n < 0 && errno == EINTR);
    if (n != 0)
        relay_exit(0); /* the exec failed: the program keeps its connection */
    REAL(close)(commit);
    /* The program's timeouts were for its own calls; the relay waits for
     * as long as the connection lives. */
    struct timeval zero = {0, 0};
    (void)REAL(setsockopt)(s->priv_fd, SOL_SOCKET, SO_RCVTIMEO, &zero,
                           sizeof(zero));
    (void)REAL(setsockopt)(s->priv_fd, SOL_SOCKET, SO_SNDTIMEO, &zero,
                           sizeof(zero));
    ss_log(SS_LOG_INFO, "endpoint '%s': TLS connection with %s continues "
           "across exec through relay process %ld (descriptors %s)",
           shim_sock_endpoint(s), s->peer, (long)getpid(), fds);
    struct pump pu = {tls, plain};
    pthread_t t;
    if (pthread_create(&t, NULL, pump_out, &pu) != 0) {
        ss_log(SS_LOG_ERROR, "endpoint '%s': relay for %s cannot start: "
               "no thread", shim_sock_endpoint(s), s->peer);
        (void)shim_shutdown(tls, SHUT_RDWR);
        relay_exit(1);
    }
    pump_in(&pu);
    pthread_join(t, NULL); /* pump_out ends the process */
    relay_exit(0);
}

/* --- the exec'ing side ----------------------------------------------------- */

/* Appends "FD/DEV/INO/PEER/LOCAL" for program end fd standing for a
 * connection with those addresses. */
static void env_add(struct relay_exec *rx, int fd, const struct stat *st,
                    const struct sockaddr_storage *peer, socklen_t plen,
                    const struct sockaddr_storage *local, socklen_t llen)
{
    size_t used = strlen(rx->env);
    if (used == 0)
        used = (size_t)snprintf(rx->env, sizeof(rx->env), "%s=", RELAY_ENV);
    int w = snprintf(rx->env + used, sizeof(rx->env) - used, "%s%d/%llu/%llu/",
                     rx->env[used - 1] == '=' ? "" : ",", fd,
                     (unsigned long long)st->st_dev,
                     (unsigned long long)st->st_ino);
    if (w < 0 || (size_t)w >= sizeof(rx->env) - used)
        return;
    used += (size_t)w;
    const unsigned char *a[2] = {(const unsigned char *)peer,
                                 (const unsigned char *)local};
    socklen_t l[2] = {plen, llen};
    for (int k = 0; k < 2; k++) {
        for (socklen_t i = 0; i < l[k] && used + 3 < sizeof(rx->env); i++)
            used += (size_t)snprintf(rx->env + used, sizeof(rx->env) - used,
                                     "%02x", a[k][i]);
        if (k == 0 && used + 2 < sizeof(rx->env))
            rx->env[used++] = '/';
        rx->env[used] = '\0';
    }
}

/* Whether fd is inherited by an exec (open, without FD_CLOEXEC). */
static bool inherited(int fd)
{
    int fl = REAL(fcntl)(fd, F_GETFD);
    return fl >= 0 && (fl & FD_CLOEXEC) == 0;
}

/*
 * Forks the relay for s (double fork) and returns the exec'ing side's
 * socketpair end, or -1 with *why set when it cannot be made. *commit is
 * the write end of the commit pipe.
 */
static int relay_fork(struct shim_sock *s, int family, int *commit,
                      const char *fds, const char **why)
{
    int sp[2], cp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
        *why = "socketpair";
        return -1;
    }
    if (pipe2(cp, O_CLOEXEC) != 0) {
        REAL(close)(sp[0]);
        REAL(close)(sp[1]);
        *why = "pipe";
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        pid_t relay = fork();
        if (relay == 0)
            relay_main(s, family, sp[1], cp[0], fds);
        relay_exit(relay < 0 ? 1 : 0);
    }
    REAL(close)(sp[1]);
    REAL(close)(cp[0]);
    int status = 0;
    pid_t got;
    do
        got = waitpid(pid, &status, 0);
    while (got < 0 && errno == EINTR);
    /* ECHILD: the program's own SIGCHLD handler reaped it first; the
     * relay was then most likely made. Without one, the exec'd program
     * meets a closed socketpair: it fails, never in clear. */
    if (pid < 0 || (got == pid && (!WIFEXITED(status) ||
                                   WEXITSTATUS(status) != 0))) {
        REAL(close)(sp[0]);
        REAL(close)(cp[1]);
        *why = "fork";
        return -1;
    }
    *commit = cp[1];
    return sp[0];
}

/* The connection's addresses, for the new image's getpeername. */
static bool names_of(int priv, struct sockaddr_storage *peer, socklen_t *plen,
                     struct sockaddr_storage *local, socklen_t *llen)
{
    *plen = sizeof(*peer);
    *llen = sizeof(*local);
    return REAL(getpeername)(priv, (struct sockaddr *)peer, plen) == 0 &&
           REAL(getsockname)(priv, (struct sockaddr *)local, llen) == 0;
}

/* Relays the connection s, which stands on the program's descriptors in
 * mask (bits 0-2), and re-points them at the relay. */
static void relay_one(struct relay_exec *rx, struct shim_sock *s,
                      unsigned mask, const char *call)
{
    char fds[16] = "";
    for (int fd = 0; fd < RELAY_FDS; fd++)
        if (mask & (1u << fd))
            snprintf(fds + strlen(fds), sizeof(fds) - strlen(fds), "%s%d",
                     fds[0] != '\0' ? ", " : "", fd);
    struct sockaddr_storage peer, local;
    socklen_t plen, llen;
    const char *why = "getpeername";
    int commit = -1, end = -1;
    if (names_of(s->priv_fd, &peer, &plen, &local, &llen))
        end = relay_fork(s, peer.ss_family, &commit, fds, &why);
    struct stat st;
    if (end >= 0 && fstat(end, &st) != 0) {
        why = "fstat";
        REAL(close)(end);
        REAL(close)(commit);
        end = -1;
    }
    if (end < 0) {
        int e = errno;
        ss_log(SS_LOG_WARNING, "%s: the TLS connection with %s on "
               "descriptor%s %s cannot cross exec (%s: %s): the new "
               "program gets a socket that fails every read and write",
               call, s->peer, mask & (mask - 1) ? "s" : "", fds, why,
               strerror(e));
        return;
    }
    for (int fd = 0; fd < RELAY_FDS; fd++) {
        if (!(mask & (1u << fd)))
            continue;
        /* The stand-in is kept (close-on-exec) to be put back should the
         * exec fail. */
        int saved = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, RELAY_FDS);
        if (saved < 0 || REAL(dup2)(end, fd) < 0) {
            if (saved >= 0)
                REAL(close)(saved);
            continue; /* the stand-in stays: fails closed */
        }
        rx->saved[fd] = saved;
        rx->relayed_mask |= 1u << fd;
        env_add(rx, fd, &st, &peer, plen, &local, llen);
    }
    REAL(close)(end);
    if (rx->n_commit < RELAY_FDS)
        rx->commit[rx->n_commit++] = commit;
    else
        REAL(close)(commit);
}

static bool sock_failed(struct shim_sock *s)
{
    shim_sock_lock_quiet(s); /* not a use: no claim on the connection */
    bool failed = s->failed || s->closed;
    shim_sock_unlock(s);
    return failed;
}

/* Descriptors 0-2 that are already a relay's socketpair end in this image
 * pass their description on to the next one. */
static void pass_on_relayed(struct relay_exec *rx)
{
    for (int fd = 0; fd < RELAY_FDS && n_relayed > 0; fd++) {
        const struct relayed *r = relayed_of(fd);
        struct stat st;
        if (r == NULL || !inherited(fd) || fstat(fd, &st) != 0)
            continue;
        env_add(rx, fd, &st, &r->peer, r->peer_len, &r->local, r->local_len);
    }
}

void relay_exec_prepare(struct relay_exec *rx, const char *call)
{
    memset(rx, 0, sizeof(*rx));
    for (int fd = 0; fd < RELAY_FDS; fd++)
        rx->saved[fd] = -1;
    if (shim_in_vfork_child())
        return; /* the parent keeps the connection: see exec_check */
    int saved_errno = errno;
    struct shim_sock *socks[RELAY_FDS] = {NULL, NULL, NULL};
    for (int fd = 0; fd < RELAY_FDS; fd++) {
        socks[fd] = fdtab_get(fd);
        if (socks[fd] != NULL && (!inherited(fd) || sock_failed(socks[fd]))) {
            shim_sock_unref(socks[fd]);
            socks[fd] = NULL;
        }
    }
    /* One relay per connection, standing on all its numbers (inetd puts
     * one socket on 0 and 1). */
    for (int fd = 0; fd < RELAY_FDS; fd++) {
        if (socks[fd] == NULL)
            continue;
        unsigned mask = 0;
        for (int k = fd; k < RELAY_FDS; k++)
            if (socks[k] == socks[fd])
                mask |= 1u << k;
        relay_one(rx, socks[fd], mask, call);
        for (int k = RELAY_FDS - 1; k >= fd; k--) {
            if (k != fd && socks[k] == socks[fd]) {
                shim_sock_unref(socks[k]);
                socks[k] = NULL;
            }
        }
        shim_sock_unref(socks[fd]);
        socks[fd] = NULL;
    }
    pass_on_relayed(rx);
    errno = saved_errno;
}

size_t relay_env_count(char *const envp[])
{
    size_t n = 0;
    while (envp != NULL && envp[n] != NULL)
        n++;
    return n;
}

void relay_env_build(const struct relay_exec *rx, char *const envp[],
                     char **out)
{
    size_t k = 0;
    size_t name_len = strlen(RELAY_ENV);
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
        if (strncmp(envp[i], RELAY_ENV, name_len) != 0 ||
            envp[i][name_len] != '=')
            out[k++] = envp[i];
    if (rx->env[0] != '\0')
        out[k++] = (char *)rx->env;
    out[k] = NULL;
}

void relay_exec_failed(struct relay_exec *rx)
{
    int saved_errno = errno;
    for (int fd = 0; fd < RELAY_FDS; fd++) {
        if (rx->saved[fd] < 0)
            continue;
        (void)REAL(dup3)(rx->saved[fd], fd, 0);
        REAL(close)(rx->saved[fd]);
        rx->saved[fd] = -1;
    }
    /* One byte: the relays leave without touching the connection. */
    for (int i = 0; i < rx->n_commit; i++) {
        char abort_byte = 'x';
        (void)REAL(write)(rx->commit[i], &abort_byte, 1);
        REAL(close)(rx->commit[i]);
    }
    rx->n_commit = 0;
    rx->relayed_mask = 0;
    errno = saved_errno;
}
