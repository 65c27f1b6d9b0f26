/*
 * sockets.c - the socket life calls: connect, accept, accept4, close,
 * shutdown, dup, dup2, dup3, fcntl(F_DUPFD*), and the blocking handshake.
 *
 * connect() to an endpoint the policy names does TCP and then the whole
 * TLS handshake before returning, so failures surface at connect
 * (docs/design.md, "Where the handshake happens"). accept() never
 * handshakes: the first I/O of the accepted socket drives it, so one slow
 * client cannot stall the loop.
 * A non-blocking connect returns EINPROGRESS as usual; the program's next
 * look at the socket (poll.c, epoll.c, getsockopt(SO_ERROR), ioctl(FIONREAD),
 * read, write) finishes the TCP connect and drives the handshake one
 * non-blocking step at a time (shim_handshake_step, shim_pump).
 */
#include "drive.h"
#include "epoll.h"
#include "fdtab.h"
#include "linger.h"
#include "nagle.h"
#include "process.h"
#include "real.h"
#include "relay.h"
#include "resolve.h"
#include "sock.h"
#include "sockets.h"
#include "streams.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "secshim/log.h"

static bool is_tcp(int fd, const struct sockaddr *addr)
{
    if (addr == NULL ||
        (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
        return false;
    int type = 0;
    socklen_t len = sizeof(type);
    return REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
           type == SOCK_STREAM;
}

/* "HOST:PORT" with HOST the name when known, else the address
 * ("[::1]:443" for IPv6, also when the name is IPv6 address text). */
static void peer_text(const struct sockaddr *sa, const char *name, char *out,
                      size_t len)
{
    char addr[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
        port = ntohs(in6->sin6_port);
    }
    if (name != NULL && strchr(name, ':') == NULL)
        snprintf(out, len, "%s:%u", name, port);
    else if (sa->sa_family == AF_INET6)
        snprintf(out, len, "[%s]:%u", addr, port);
    else
        snprintf(out, len, "%s:%u", addr, port);
}

/* The address alone as text, for ss_conn_new of an accepted socket. */
static void host_text(const struct sockaddr *sa, char *out, size_t len)
{
    const void *a = sa->sa_family == AF_INET6
        ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
        : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (inet_ntop(sa->sa_family, a, out, (socklen_t)len) == NULL)
        snprintf(out, len, "?");
}

/* --- becoming managed -------------------------------------------------------- */

/* The address family of socket fd (AF_INET / AF_INET6), or -1. */
static int socket_family(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (REAL(getsockname)(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return ss.ss_family;
}

/*
 * Makes fd a managed socket for ep (docs/design.md, "The program's
 * descriptor never reaches the wire"): ep's TLS context is built when this
 * is its first use, the TCP connection moves to a private descriptor,
 * epoll registrations the program made on fd move with it, fd is
 * re-pointed at a stand-in, and the conn is made over the private
 * descriptor. family is fd's address family (the stand-in's; -1 when it
 * could not be had). Returns the new sock with the caller's reference, or
 * NULL with errno (EMFILE: no descriptor for either; ENOMEM; EPROTO: the
 * endpoint's context cannot be built, or the engine refused). On NULL fd
 * is still the real socket, for the caller to shut down or close: the
 * stand-in is the last step, and it cannot fail halfway.
 */
static struct shim_sock *manage(int fd, int family, struct ss_policy *p,
                                const struct ss_endpoint *ep,
                                enum ss_direction dir, const char *host,
                                const char *peer)
{
    if (shim_endpoint_ready(p, ep) != 0)
        return NULL; /* logged once, at the build that failed */
    int priv = shim_private_dup(fd, true);
    if (priv < 0 || family < 0) {
        int e = priv < 0 ? errno : ENOTSOCK;
        ss_log(SS_LOG_ERROR, "endpoint '%s': no descriptor for the TLS "
               "connection with %s: %s", ep->name, peer, strerror(e));
        if (priv >= 0)
            REAL(close)(priv);
        errno = e;
        return NULL;
    }
    struct ss_conn *conn = NULL;
    struct ss_errbuf err = {""};
    int rc = ss_conn_new(p, ep, priv, &shim_io, host, &conn, &err);
    if (rc != SS_OK) {
        struct ss_log_fields f;
        ss_log_fields_init(&f);
        ss_log_field_endpoint(&f, ep->name);
        ss_log_field(&f, "peer", peer);
        ss_log_field(&f, "direction",
                     dir == SS_DIR_CONNECT ? "connect" : "accept");
        ss_log_field_reason(&f, err.msg);
        ss_log_event(SS_LOG_ERROR, "setup_failed", &f, "endpoint '%s': "
                     "cannot set up TLS with %s: %s", ep->name, peer,
                     err.msg);
        REAL(close)(priv);
        errno = rc == SS_ERR_NOMEM ? ENOMEM : EPROTO;
        return NULL;
    }
    int ms = ss_conn_handshake_timeout_ms(conn);
    struct shim_sock *s = shim_sock_new(conn, dir, peer, priv);
    if (s == NULL) {
        REAL(close)(priv);
        errno = ENOMEM;
        return NULL;
    }
    /* Non-blocking handshakes are timed from here (connect or accept). */
    s->hs_deadline = shim_deadline_after(
        ms > 0 ? ms : SS_DEFAULT_HANDSHAKE_TIMEOUT_S * 1000);
    struct events_moved *moved = events_take_registrations(fd);
    int status;
    if (shim_standin_install(fd, family, &status) != 0) {
        int e = errno;
        ss_log(SS_LOG_ERROR, "endpoint '%s': cannot put a stand-in on "
               "descriptor %d for %s: %s", ep->name, fd, peer, strerror(e));
        events_moved_free(moved);
        REAL(shutdown)(priv, SHUT_RDWR); /* fd is that socket still */
        shim_sock_unref(s);
        errno = e == ENFILE ? ENFILE : EMFILE;
        return NULL;
    }
    /* The real socket is blocking from now on: the engine always asks for
     * MSG_DONTWAIT, and the shim's own waits need it (a blocking peek
     * lets the kernel apply SO_RCVTIMEO and SA_RESTART). The program's
     * O_NONBLOCK is on the stand-in; priv still shares the flags the
     * stand-in was given (status), the original socket's. */
    if (status & O_NONBLOCK)
        (void)REAL(fcntl)(priv, F_SETFL, status & ~O_NONBLOCK);
    shim_nagle_open(s);
    fdtab_install(fd, s);
    events_restore_registrations(moved, fd);
    return s;
}

/* --- connect ---------------------------------------------------------------- */

/*
 * Connect endpoints: after the TCP connect, match and handshake. pending
 * means the TCP connect is still under way (EINPROGRESS, or EINTR): the
 * sock is recorded as "TCP connecting" and the program's next look at the
 * descriptor (poll/select/epoll, getsockopt(SO_ERROR), read, write)
 * completes the TCP connect and drives the handshake (docs/design.md,
 * "Where the handshake happens"). Returns 0, or -1 with errno.
 */
static int secure_connect(int fd, const struct sockaddr *addr,
                          socklen_t addr_len, bool pending)
{
    struct ss_policy *p = shim_policy_get();
    if (p == NULL)
        return 0;
    char name[256];
    const struct ss_endpoint *ep =
        resolve_match_connect(p, addr, addr_len, name, sizeof(name));
    if (ep == NULL) {
        ss_policy_unref(p);
        return 0;
    }
    /* name is what resolve_match_connect chose to send and check (a name,
     * or the address as text): the conn's host already. */
    char peer[320];
    peer_text(addr, name, peer, sizeof(peer));
    struct shim_sock *s = manage(fd, socket_family(fd), p, ep, SS_DIR_CONNECT,
                                 name, peer);
    ss_policy_unref(p); /* the conn holds its own reference */
    if (s == NULL) {
        int e = errno;
        REAL(shutdown)(fd, SHUT_RDWR); /* never plaintext to a TLS peer */
        errno = e;
        return -1;
    }
    int rc = 0;
    if (pending) {
        shim_sock_lock(s);
        s->nonblocking_connect = true;
        s->tcp_connecting = true;
        shim_sock_unlock(s);
    } else {
        rc = shim_handshake(s, fd, false, SO_SNDTIMEO);
        if (rc != 0 && errno == EINTR) {
            /* The kernel's connect, interrupted, goes on in the
             * background, and the next connect() answers 0 once it is
             * done: the handshake goes on the same way. */
            shim_sock_lock(s);
            s->connect_interrupted = true;
            shim_sock_unlock(s);
            errno = EINTR;
        }
    }
    shim_sock_unref(s);
    return rc;
}

/*
 * connect() again on a socket the shim already manages. Programs do this to
 * learn how a non-blocking connect ended (hiredis), or after a blocking
 * connect a signal interrupted (EINTR): Linux answers 0 once after the TCP
 * connect completed, then EISCONN. The answer must be the TLS
 * connection's: 0 / EISCONN once its handshake is done, EALREADY while it
 * is not (non-blocking), or the handshake's failure. A blocking socket
 * drives the handshake to its end first. The kernel is asked on the
 * private descriptor: a connect on the stand-in would open a second,
 * plaintext connection. Returns 0 or -1 with errno.
 */
static int connect_again(struct shim_sock *s, int fd,
                         const struct sockaddr *addr, socklen_t len)
{
    int kernel_rc = REAL(connect)(s->priv_fd, addr, len);
    if (kernel_rc != 0 && errno != EISCONN)
        return kernel_rc; /* EALREADY and real errors, as they are */
    if (shim_handshake(s, fd, false, SO_SNDTIMEO) != 0) {
        if (errno == EAGAIN)
            errno = EALREADY;
        return -1;
    }
    /* The TCP connect of an interrupted blocking connect was done before
     * the handshake (the kernel says EISCONN); the program's connect was
     * not: this is the one 0 the kernel gives after it. */
    shim_sock_lock(s);
    bool interrupted = s->connect_interrupted;
    s->connect_interrupted = false;
    shim_sock_unlock(s);
    if (kernel_rc == 0 || interrupted)
        return 0;
    errno = EISCONN;
    return -1;
}

int shim_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct shim_sock *managed = fdtab_get(fd);
    if (managed != NULL) {
        int rc = connect_again(managed, fd, addr, len);
        shim_sock_unref(managed); /* keeps errno */
        return rc;
    }
    int rc = REAL(connect)(fd, addr, len);
    if (rc != 0 && errno != EINPROGRESS && errno != EINTR)
        return rc;
    int saved = errno;
    if (!is_tcp(fd, addr)) {
        errno = saved;
        return rc;
    }
    int secured = secure_connect(fd, addr, len, rc != 0);
    int e = errno;
    events_socket_settled(fd);
    if (secured != 0) {
        errno = e;
        return -1;
    }
    errno = saved;
    return rc;
}

SS_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    return shim_connect(fd, addr.__sockaddr__, len);
}

/* --- accept ----------------------------------------------------------------- */

/*
 * Listen endpoints: an accepted socket whose local address matches becomes
 * a server conn in handshaking state (no I/O here). remote is the peer's
 * address as accept() gave it, or NULL: then it is asked for, which fails
 * once the peer has reset the connection (the log would say "?").
 * Returns the new sock (the caller's reference; the fdtab slot holds
 * another), or NULL: with *matched false when no endpoint matches (fd
 * untouched), else with errno (fd is then the real socket still, or
 * already the stand-in).
 */
static struct shim_sock *manage_accepted(int fd, const struct sockaddr *remote,
                                         bool *matched)
{
    *matched = false;
    struct ss_policy *p = shim_policy_get();
    if (p == NULL)
        return NULL;
    struct sockaddr_storage local, asked;
    socklen_t llen = sizeof(local), alen = sizeof(asked);
    const struct ss_endpoint *ep = NULL;
    if (REAL(getsockname)(fd, (struct sockaddr *)&local, &llen) == 0 &&
        (local.ss_family == AF_INET || local.ss_family == AF_INET6))
        ep = ss_policy_match_listen(p, (struct sockaddr *)&local, llen);
    if (ep == NULL) {
        ss_policy_unref(p);
        return NULL;
    }
    *matched = true;
    char host[256] = "?", peer[320] = "?";
    if (remote == NULL &&
        REAL(getpeername)(fd, (struct sockaddr *)&asked, &alen) == 0)
        remote = (const struct sockaddr *)&asked;
    if (remote != NULL) {
        host_text(remote, host, sizeof(host));
        peer_text(remote, NULL, peer, sizeof(peer));
    }
    struct shim_sock *s = manage(fd, local.ss_family, p, ep, SS_DIR_LISTEN,
                                 host, peer);
    ss_policy_unref(p);
    return s;
}

/*
 * accept()'s side: returns fd, or -1 with the errno of the failure
 * (ECONNABORTED when the engine cannot make the conn, EMFILE when no
 * descriptor is left): the connection is closed rather than served in
 * clear, and accept loops retry on both.
 */
static int secure_accept(int fd, const struct sockaddr *remote)
{
    bool matched;
    struct shim_sock *s = manage_accepted(fd, remote, &matched);
    if (!matched)
        return fd;
    if (s == NULL) {
        int e = errno;
        REAL(close)(fd);
        errno = e == EMFILE || e == ENFILE ? e : ECONNABORTED;
        return -1;
    }
    shim_sock_unref(s); /* the fdtab slot keeps it */
    return fd;
}

/* An inherited socket is the program's descriptor, not one accept() is
 * returning: on failure it is shut down (whatever it points at now)
 * rather than closed, so its number stays the program's. */
int shim_adopt_accepted(int fd)
{
    bool matched;
    struct shim_sock *s = manage_accepted(fd, NULL, &matched);
    if (!matched)
        return 0;
    if (s == NULL) {
        int e = errno;
        REAL(shutdown)(fd, SHUT_RDWR);
        ss_log(SS_LOG_ERROR, "inherited descriptor %d matches a listen "
               "endpoint but cannot be made TLS (%s); it was shut down",
               fd, strerror(e));
        errno = e;
        return -1;
    }
    shim_sock_unref(s);
    return 1;
}

/* The peer's address as accept() gave it, when whole (a program's short
 * buffer holds part of it: then NULL, and the shim asks the socket). */
static const struct sockaddr *accepted_peer(const struct sockaddr *addr,
                                            socklen_t given,
                                            socklen_t len)
{
    if (len > given ||
        (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
        return NULL;
    return addr;
}

/* A program that passes no address buffer (most do) gets the kernel's
 * answer unchanged; the shim's own buffer keeps the peer's address for
 * the log, which getpeername no longer gives once the peer has reset. */
int shim_accept(int lfd, struct sockaddr *addr, socklen_t *len, int flags,
                bool four)
{
    struct sockaddr_storage own;
    socklen_t own_len = sizeof(own);
    struct sockaddr *a = addr != NULL ? addr : (struct sockaddr *)&own;
    socklen_t *l = addr != NULL ? len : &own_len;
    socklen_t given = addr != NULL && len != NULL ? *len : own_len;
    int fd = four ? REAL(accept4)(lfd, a, l, flags)
                  : REAL(accept)(lfd, a, l);
    if (fd < 0)
        return fd;
    int saved = errno;
    int rc = secure_accept(fd, accepted_peer(a, given, *l));
    if (rc >= 0)
        errno = saved;
    return rc;
}

SS_EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *restrict len)
{
    return shim_accept(fd, addr.__sockaddr__, len, 0, false);
}

SS_EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *restrict len,
                      int flags)
{
    return shim_accept(fd, addr.__sockaddr__, len, flags, true);
}

/* --- socket ------------------------------------------------------------------ */

/* A new TCP socket is noted so that an epoll registration the program
 * makes before connect() can move with the connection (epoll.c). */
static int shim_socket(int domain, int type, int protocol)
{
    int fd = REAL(socket)(domain, type, protocol);
    if (fd >= 0 && (domain == AF_INET || domain == AF_INET6) &&
        (type & 0xf) == SOCK_STREAM)
        events_socket_created(fd);
    return fd;
}

SS_EXPORT int socket(int domain, int type, int protocol)
{
    return shim_socket(domain, type, protocol);
}

/* --- close and shutdown ----------------------------------------------------- */

/* EBADF for a descriptor the shim owns: to the program that number is not
 * open (it never opened it; daemons close every number above 2). */
static int refuse_owned(void)
{
    errno = EBADF;
    return -1;
}

/* A managed descriptor's last close returns at once, as the kernel's
 * does, while the linger delivers what the program wrote; only SO_LINGER
 * makes it wait (linger_close_wait). */
int shim_close(int fd)
{
    if (fdtab_ours(fd)) /* one load when not owned */
        return refuse_owned();
    events_fd_closing(fd); /* one load when no epoll set is tracked */
    struct shim_sock *s = fdtab_get(fd); /* one load when not managed */
    fdtab_detach(fd);
    int rc = REAL(close)(fd);
    if (s != NULL) {
        linger_close_wait(s);
        shim_sock_unref(s);
    }
    return rc;
}

SS_EXPORT int close(int fd)
{
    return shim_close(fd);
}

/*
 * A write-side shutdown during the handshake first finishes it, even on a
 * non-blocking socket (bounded by handshake-timeout): once the FIN is out
 * the handshake could never end, and what the program wrote before the
 * shutdown (held in the early-write buffer) would be lost, where TCP
 * delivers it. A failed handshake is the next read's error.
 */
int shim_shutdown(int fd, int how)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(shutdown)(fd, how);
    if (how == SHUT_WR || how == SHUT_RDWR) {
        int saved = errno;
        (void)shim_handshake_wait(s, false, 0); /* shutdown never EINTR */
        errno = saved;
        shim_close_notify(s, fd);
    }
    int rc = REAL(shutdown)(s->priv_fd, how);
    shim_sock_unref(s);
    return rc;
}

SS_EXPORT int shutdown(int fd, int how)
{
    return shim_shutdown(fd, how);
}

/* --- duplicates share the connection ---------------------------------------- */

/* The program's copies of a managed descriptor are copies of its stand-in
 * (the kernel shares its file status flags, as it would the socket's) and
 * share the sock. A descriptor the shim owns cannot be copied: that would
 * hand the program the TCP connection itself. */
static int shim_dup(int old)
{
    if (fdtab_ours(old))
        return refuse_owned();
    struct shim_sock *s = fdtab_get(old);
    int fd = REAL(dup)(old);
    if (s != NULL) {
        if (fd >= 0)
            fdtab_install(fd, s);
        shim_sock_unref(s);
    }
    return fd;
}

SS_EXPORT int dup(int old)
{
    return shim_dup(old);
}

/*
 * dup2/dup3 onto a number the shim owns: the program may use any number it
 * likes (sshd moves its sockets to fixed ones), so the shim's descriptor
 * moves out of the way first. Returns 0, or -1 with errno.
 */
static int make_room(int new)
{
    if (!fdtab_ours(new))
        return 0;
    return fdtab_move_owned(new);
}

/*
 * dup2/dup3 silently close newfd: when it is managed its entry is dropped
 * first, while it still is that socket. Should the call then fail, newfd
 * is shut down: it must not stay open without its TLS.
 */
static int shim_dup3(int old, int new, int flags, bool three)
{
    if (fdtab_ours(old))
        return refuse_owned();
    if (old == new)
        return three ? REAL(dup3)(old, new, flags) : REAL(dup2)(old, new);
    if (make_room(new) != 0)
        return -1;
    struct shim_sock *s = fdtab_get(old);
    struct shim_sock *replaced = fdtab_get(new);
    bool detached = false;
    if (replaced != NULL && REAL(fcntl)(old, F_GETFD) >= 0) {
        events_fd_closing(new);
        fdtab_detach(new);
        detached = true;
    }
    if (s != NULL)
        shim_stdio_before_dup(new);
    int fd = three ? REAL(dup3)(old, new, flags) : REAL(dup2)(old, new);
    if (s == NULL && replaced == NULL)
        return fd; /* untouched descriptors: no bookkeeping, errno as is */
    int saved = errno;
    if (fd < 0 && detached)
        REAL(shutdown)(new, SHUT_RDWR);
    if (fd >= 0 && s != NULL) {
        fdtab_install(fd, s);
        shim_stdio_after_dup(fd);
    }
    shim_sock_unref(replaced);
    shim_sock_unref(s);
    errno = saved;
    return fd;
}

SS_EXPORT int dup2(int old, int new)
{
    return shim_dup3(old, new, 0, false);
}

SS_EXPORT int dup3(int old, int new, int flags)
{
    return shim_dup3(old, new, flags, true);
}

/* F_GETFL/F_SETFL act on the stand-in, which carries the program's flags;
 * F_DUPFD* copy like dup. Everything else passes through. */
static int shim_fcntl(int fd, int cmd, void *arg, bool is64)
{
    int (*fn)(int, int, ...) = is64 ? REAL(fcntl64) : REAL(fcntl);
    if (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC)
        return fn(fd, cmd, arg);
    if (fdtab_ours(fd))
        return refuse_owned();
    struct shim_sock *s = fdtab_get(fd);
    int nfd = fn(fd, cmd, arg);
    if (s != NULL) {
        if (nfd >= 0)
            fdtab_install(nfd, s);
        shim_sock_unref(s);
    }
    return nfd;
}

/* fcntl's third argument is an int or a pointer depending on cmd; both
 * travel in one register, so it is passed on as read. */
SS_EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return shim_fcntl(fd, cmd, arg, false);
}

SS_EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return shim_fcntl(fd, cmd, arg, true);
}

/* --- socket options, names and ioctls: the private descriptor ------------- */

/*
 * SO_ERROR on a managed socket drives one non-blocking step first (TCP
 * connect, handshake), then answers: the errno of a failed TCP connect,
 * handshake or connection (ECONNREFUSED, EPROTO, ETIMEDOUT, ECONNRESET...)
 * once, and 0 after that, as the kernel clears a socket's error when it is
 * read (I/O keeps failing with the errno: unusable() in io.c); otherwise
 * the kernel's own value (0). While
 * the handshake is still under way SO_ERROR is 0, as for a TCP connect in
 * progress: poll/select/epoll report writability only once the handshake
 * is done or failed, so "wait for POLLOUT, then read SO_ERROR" sees the
 * outcome of the handshake. Every other option is the real socket's.
 */
static int shim_getsockopt(int fd, int level, int name, void *val,
                           socklen_t *len)
{
    struct shim_sock *s = fdtab_get(fd);
    int relayed_rc;
    if (s == NULL && relay_sockopt(fd, level, name, false, val, len,
                                   &relayed_rc))
        return relayed_rc;
    if (s == NULL)
        return REAL(getsockopt)(fd, level, name, val, len);
    int rc;
    if (shim_nagle_getsockopt(s, level, name, val, len, &rc)) {
        shim_sock_unref(s); /* keeps errno */
        return rc;
    }
    bool ours = false; /* a failed socket's SO_ERROR is the shim's */
    int e = 0;
    bool args_ok = val != NULL && len != NULL &&
                   *len >= (socklen_t)sizeof(int);
    if (level == SOL_SOCKET && name == SO_ERROR) {
        shim_sock_lock(s);
        if (!s->failed && !s->closed)
            (void)shim_pump(s, false);
        ours = s->failed;
        e = s->so_error_read ? 0 : s->fail_errno;
        if (ours && args_ok)
            s->so_error_read = true;
        shim_sock_unlock(s);
    }
    if (!ours) {
        rc = REAL(getsockopt)(s->priv_fd, level, name, val, len);
    } else if (!args_ok) {
        errno = EINVAL;
        rc = -1;
    } else {
        memcpy(val, &e, sizeof(e));
        *len = sizeof(e);
        rc = 0;
    }
    shim_sock_unref(s); /* keeps errno */
    return rc;
}

SS_EXPORT int getsockopt(int fd, int level, int name, void *restrict val,
                         socklen_t *restrict len)
{
    return shim_getsockopt(fd, level, name, val, len);
}

static int shim_setsockopt(int fd, int level, int name, const void *val,
                           socklen_t len)
{
    struct shim_sock *s = fdtab_get(fd);
    int relayed_rc;
    if (s == NULL && relay_sockopt(fd, level, name, true, (void *)val, &len,
                                   &relayed_rc))
        return relayed_rc;
    if (s == NULL)
        return REAL(setsockopt)(fd, level, name, val, len);
    int rc;
    if (!shim_nagle_setsockopt(s, level, name, val, len, &rc))
        rc = REAL(setsockopt)(s->priv_fd, level, name, val, len);
    shim_sock_unref(s);
    return rc;
}

SS_EXPORT int setsockopt(int fd, int level, int name, const void *val,
                         socklen_t len)
{
    return shim_setsockopt(fd, level, name, val, len);
}

/* getsockname, getpeername: the real socket answers; for a descriptor a
 * relay stands behind, the addresses of the connection it carries. */
static int on_private(int fd, int (*fn)(int, struct sockaddr *, socklen_t *),
                      struct sockaddr *addr, socklen_t *len)
{
    struct shim_sock *s = fdtab_get(fd);
    int relayed_rc;
    if (s == NULL && relay_name(fd, fn == REAL(getpeername), addr, len,
                                &relayed_rc))
        return relayed_rc;
    if (s == NULL)
        return fn(fd, addr, len);
    int rc = fn(s->priv_fd, addr, len);
    shim_sock_unref(s);
    return rc;
}

SS_EXPORT int getsockname(int fd, __SOCKADDR_ARG addr,
                          socklen_t *restrict len)
{
    return on_private(fd, REAL(getsockname), addr.__sockaddr__, len);
}

SS_EXPORT int getpeername(int fd, __SOCKADDR_ARG addr,
                          socklen_t *restrict len)
{
    return on_private(fd, REAL(getpeername), addr.__sockaddr__, len);
}

/* bind and listen on a connected socket fail in the kernel (EINVAL); on
 * the stand-in they would succeed, so they go to the real socket too. */
static int shim_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return REAL(bind)(fd, addr, len);
    int rc = REAL(bind)(s->priv_fd, addr, len);
    shim_sock_unref(s);
    return rc;
}

SS_EXPORT int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    return shim_bind(fd, addr.__sockaddr__, len);
}

/* Whether the IPv6 socket fd takes no IPv4 connections (IPV6_V6ONLY). */
static bool v6only(int fd)
{
    int on = 0;
    socklen_t len = sizeof(on);
    return REAL(getsockopt)(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, &len) == 0 &&
           on != 0;
}

/*
 * A TCP socket about to listen on an address that listen endpoints serve
 * (ss_policy_listen_serves: its own address's endpoint, or for 0.0.0.0
 * and [::] every enabled listen endpoint of the port) gets their TLS
 * contexts now, before any client comes, so that one that cannot be built
 * fails the program where it can say so: listen() -1 EACCES, as when a
 * security policy refuses it, and the socket never listens (docs/shim.md,
 * "Listen endpoints"). A socket not bound yet (listen binds a free port)
 * is left to accept(). Returns 0 (errno kept), or -1 with errno.
 */
static int listen_endpoints_ready(int fd)
{
    int saved = errno;
    struct ss_policy *p = shim_policy_get();
    struct sockaddr_storage local;
    socklen_t len = sizeof(local);
    if (p == NULL ||
        REAL(getsockname)(fd, (struct sockaddr *)&local, &len) != 0 ||
        !is_tcp(fd, (struct sockaddr *)&local)) {
        ss_policy_unref(p);
        errno = saved;
        return 0;
    }
    bool only6 = local.ss_family == AF_INET6 && v6only(fd);
    int rc = 0;
    for (size_t i = 0; i < p->n_endpoints && rc == 0; i++)
        if (ss_policy_listen_serves(p, &p->endpoints[i],
                                    (struct sockaddr *)&local, len, only6))
            rc = shim_endpoint_ready(p, &p->endpoints[i]);
    ss_policy_unref(p);
    errno = rc == 0 ? saved : errno == ENOMEM ? ENOMEM : EACCES;
    return rc;
}

static int shim_listen(int fd, int backlog)
{
    struct shim_sock *s = fdtab_get(fd);
    if (s == NULL)
        return listen_endpoints_ready(fd) == 0 ? REAL(listen)(fd, backlog)
                                               : -1;
    int rc = REAL(listen)(s->priv_fd, backlog);
    shim_sock_unref(s);
    return rc;
}

SS_EXPORT int listen(int fd, int backlog)
{
    return shim_listen(fd, backlog);
}

/*
 * FIONREAD (SIOCINQ) on a managed socket: what a read can return now, as
 * the kernel counts it for TCP, which programs that read exactly that much
 * and then wait for an edge rely on (nginx). When no plaintext is buffered
 * one non-blocking step reads a record that may already be in the socket;
 * then the answer is the plaintext buffered plus the ciphertext still in
 * the kernel's queue (a read continues into records that are there,
 * io.c): never less than a read returns, at most a record header and tag
 * more per record. docs/shim.md, "Blocking semantics". FIONBIO sets the
 * program's O_NONBLOCK, which lives on the stand-in; every other request
 * is the real socket's.
 */
static int shim_ioctl(int fd, unsigned long req, void *arg)
{
    struct shim_sock *s = req != FIONBIO ? fdtab_get(fd) : NULL;
    if (s == NULL)
        return REAL(ioctl)(fd, req, arg);
    if (req != FIONREAD) {
        int rc = REAL(ioctl)(s->priv_fd, req, arg);
        shim_sock_unref(s);
        return rc;
    }
    if (arg == NULL) {
        shim_sock_unref(s);
        errno = EFAULT;
        return -1;
    }
    shim_sock_lock(s);
    size_t n = 0;
    if (!s->closed && !s->failed) {
        if (ss_conn_pending(s->conn) == 0)
            (void)shim_pump(s, true);
        int queued = 0;
        n = ss_conn_pending(s->conn);
        if (n > 0) /* records OpenSSL read ahead, past the pending one */
            n += ss_conn_buffered_input(s->conn);
        if (n > 0 && REAL(ioctl)(s->priv_fd, FIONREAD, &queued) == 0 &&
            queued > 0)
            n += (size_t)queued;
    }
    shim_sock_unlock(s);
    shim_sock_unref(s);
    int v = n > INT_MAX ? INT_MAX : (int)n;
    memcpy(arg, &v, sizeof(v));
    return 0;
}

/* ioctl's third argument is a pointer or an int; passed on as read. */
SS_EXPORT int ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return shim_ioctl(fd, req, arg);
}

/* --- TCP Fast Open: connect on behalf of sendto/sendmsg (io.c) ------------- */

/* Whether addr_len covers the address of addr's family: the kernel refuses
 * a short one (EINVAL), and the matching below reads the whole address. */
static bool inet_addr_complete(const struct sockaddr *addr,
                               socklen_t addr_len)
{
    if (addr == NULL || addr_len < (socklen_t)sizeof(sa_family_t))
        return false;
    if (addr->sa_family == AF_INET)
        return addr_len >= (socklen_t)sizeof(struct sockaddr_in);
    if (addr->sa_family == AF_INET6)
        return addr_len >= (socklen_t)sizeof(struct sockaddr_in6);
    return false;
}

/* Whether connect() would manage a connection to addr: the same match
 * secure_connect makes, without its side effects. May look names up; no
 * shim lock is held. */
static bool tls_destination(const struct sockaddr *addr, socklen_t addr_len)
{
    struct ss_policy *p = shim_policy_get();
    if (p == NULL)
        return false;
    char name[256];
    bool tls = resolve_match_connect(p, addr, addr_len, name,
                                     sizeof(name)) != NULL;
    ss_policy_unref(p);
    return tls;
}

/*
 * The connect half of a Fast Open send to a TLS destination goes through
 * connect()'s own logic, so the socket becomes managed exactly as a
 * connect() would make it; the data is then sent as TLS by the caller.
 * Unmatched destinations are left to the kernel untouched (their data
 * may ride in the SYN, as the program asked).
 */
int shim_connect_for_fastopen(int fd, const struct sockaddr *addr,
                              socklen_t addr_len)
{
    int saved = errno;
    if (!inet_addr_complete(addr, addr_len) || !is_tcp(fd, addr) ||
        !tls_destination(addr, addr_len)) {
        errno = saved;
        return 1;
    }
    errno = saved;
    return shim_connect(fd, addr, addr_len);
}

/* --- libc's public aliases of interposed names ------------------------------ */

/*
 * glibc exports __connect, __close, __dup2 and __fcntl as public aliases
 * (GLIBC_2.2.5) of the calls above. A program linked against an alias
 * would bypass the shim: an unmanaged connect() to a TLS endpoint would
 * then carry plaintext. Each alias is the same call (docs/shim.md, "What
 * is interposed").
 */
SS_EXPORT int __connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    return shim_connect(fd, addr.__sockaddr__, len);
}

SS_EXPORT int __close(int fd)
{
    return shim_close(fd);
}

SS_EXPORT int __dup2(int old, int new)
{
    return shim_dup3(old, new, 0, false);
}

SS_EXPORT int __fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return shim_fcntl(fd, cmd, arg, false);
}
