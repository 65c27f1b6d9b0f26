/*
 * linger.c - close and exit never lose accepted bytes (docs/design.md,
 * "Close without loss"; docs/shim.md, "close").
 *
 * write() reports what the engine accepted, and the engine may hold up to
 * SS_CONN_OUTBUF_MAX bytes of ciphertext the kernel has not taken yet.
 * Over plain TCP the kernel keeps sending after close() and after the
 * process died; here the program's last close hands such a connection to
 * one linger thread per process, started at the first need, which
 * delivers the bytes, then close_notify, then lets the kernel send its FIN
 * (the final close of the private descriptor), each connection bounded by
 * LINGER_MAX_MS. close() itself returns at once, as the kernel's does,
 * unless SO_LINGER asks it to wait.
 *
 * SO_LINGER is read from the private descriptor, where the program's
 * setsockopt went: {1, 0} is the kernel's abortive close (nothing more is
 * sent, the kernel resets the connection); {1, N} makes close() wait up to
 * N seconds for the delivery, as Linux does.
 *
 * Fork: the thread does not exist in a child. Lingering connections are
 * the parent's (the program closed them before the fork): the child
 * closes its copies of their descriptors and never touches them.
 */
#include "drive.h"
#include "fdtab.h"
#include "linger.h"
#include "real.h"
#include "sock.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "secshim/log.h"

/* The thread's name, at most 15 characters (docs/shim.md, "close"). */
#define LINGER_THREAD_NAME "secshim-linger"
/* How long one connection may linger: a peer that takes nothing for this
 * long is reset (the kernel gives up on an orphaned socket too). */
#define LINGER_MAX_MS 30000
/* The thread looks again at least this often: for new connections and
 * for deadlines. */
#define LINGER_TICK_MS 50
/* How often a connection waiting only for the kernel's send queue to
 * drain is looked at: that queue gives no event to poll for. */
#define LINGER_QUEUE_TICK_MS 5
/* How long a delivered connection waits for the peer's answer to its
 * close_notify (its own close_notify and FIN), about one round trip and
 * the peer program's reaction to it; docs/design.md, "Close without loss". */
#define LINGER_FIN_WAIT_MS 1000

/*
 * Guards the list of lingering socks, the thread's existence, and each
 * sock's linger fields. Taken with a sock's lock held (a last close);
 * nothing is taken while holding it. Never held across a wait other than
 * the condition variables below.
 */
static pthread_mutex_t linger_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t linger_work;  /* the list got an entry */
static pthread_cond_t linger_ended; /* an entry ended */
static struct shim_sock *lingering; /* each entry holds a reference */
static size_t n_lingering;
static bool thread_running;
static pthread_once_t conds_once = PTHREAD_ONCE_INIT;

static void conds_init(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&linger_work, &ca);
    pthread_cond_init(&linger_ended, &ca);
    pthread_condattr_destroy(&ca);
}

/* Bytes the kernel still holds for a socket to send or to have
 * acknowledged (TIOCOUTQ, i.e. SIOCOUTQ); 0 when it cannot say. */
static int kernel_outq(int fd)
{
    int n = 0;
    return REAL(ioctl)(fd, TIOCOUTQ, &n) == 0 ? n : 0;
}

/*
 * Whether the kernel has given up on the connection (TCP_CLOSE: the peer
 * reset it, e.g. because its program had closed before our close_notify
 * arrived). Its send queue then still counts the bytes that were never
 * acknowledged, and never will be: waiting for that queue to drain would
 * last until LINGER_MAX_MS.
 */
static bool tcp_closed(int fd)
{
    struct tcp_info ti = {0};
    socklen_t len = sizeof(ti);
    return REAL(getsockopt)(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
           ti.tcpi_state == TCP_CLOSE;
}

/*
 * Whether the kernel's final close could still lose what the program
 * wrote. Linux resets a connection, dropping its send queue, when bytes
 * arrive after close() or are unread at close(): a TLS peer sends session
 * tickets and its own close_notify, which the program never reads. So the
 * descriptor stays open, and what arrives is read and dropped (drain),
 * until the kernel's send queue is empty too.
 */
static bool kernel_would_lose(const struct shim_sock *s)
{
    return kernel_outq(s->priv_fd) > 0 && !tcp_closed(s->priv_fd);
}

/* Reads and drops what the peer sent since the close (s locked): nobody
 * will read it, and left unread it would make the final close a reset.
 * Returns whether the peer's side has ended: EOF, or an error such as the
 * peer's reset, after which nothing more arrives. */
static bool drain(const struct shim_sock *s)
{
    static char sink[16384]; /* only the linger thread drains */
    for (int i = 0; i < 64; i++) {
        ssize_t n = REAL(recv)(s->priv_fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n == 0)
            return true;
        if (n < 0)
            return errno != EAGAIN && errno != EWOULDBLOCK;
    }
    return false;
}

/*
 * The FIN leaves with the program's close, as over plain TCP: once the
 * engine has handed the kernel everything up to close_notify, the private
 * socket's write side is shut (s locked). Otherwise the peer's FIN, which
 * its program sends when it reads our close_notify, would come first, and
 * the peer, not the side that closed, would hold the TIME_WAIT
 * (docs/design.md, "Close without loss").
 */
static void send_fin(struct shim_sock *s)
{
    if (s->fin_sent || ss_conn_unsent(s->conn) > 0)
        return;
    s->fin_sent = true;
    (void)REAL(shutdown)(s->priv_fd, SHUT_WR);
}

/*
 * The end of the stream at the last close (s locked): close_notify behind
 * the data and, with fin, the FIN behind it. Corked, the kernel sends the
 * two in one segment: sent apart, the peer's program could read
 * close_notify and close before our FIN arrived, and a close from both
 * sides at once leaves a TIME_WAIT on each. Whatever the cork holds back
 * goes out with the FIN, or with the final close should the stream end
 * without one (a failed send).
 */
static void end_stream(struct shim_sock *s, bool fin)
{
    int on = 1;
    if (fin)
        (void)REAL(setsockopt)(s->priv_fd, IPPROTO_TCP, TCP_CORK, &on,
                               sizeof(on));
    if (ss_conn_shutdown(s->conn) == SS_OK && fin)
        send_fin(s);
}

/* --- the thread ------------------------------------------------------------- */

/*
 * What a step found: still delivering; delivered (the kernel's queue,
 * our FIN included, is acknowledged) and waiting only for the peer's end;
 * done; or gone (the connection failed).
 */
enum step { STEP_WAIT, STEP_DELIVERED, STEP_DONE, STEP_GONE };

/*
 * Where s stands once the engine has handed the kernel everything (s
 * locked); sets what to poll for and how soon to look again. Until the
 * kernel's queue is acknowledged, what arrives is dropped (drain): the
 * queue has no event, so it is looked at every LINGER_QUEUE_TICK_MS. Then
 * the peer's answer to our close_notify is due, usually with its FIN: it
 * is waited for, at most LINGER_FIN_WAIT_MS, because arriving at a closed
 * socket it would be answered with a reset where plain TCP leaves the
 * FIN exchange and the TIME_WAIT (docs/design.md, "Close without loss").
 * What comes later is reset; nothing of ours is lost by then.
 */
static enum step delivery(struct shim_sock *s, short *events, int *next_ms)
{
    bool peer_ended = drain(s);
    if (kernel_would_lose(s)) {
        *next_ms = LINGER_QUEUE_TICK_MS;
        return STEP_WAIT;
    }
    if (peer_ended || !s->fin_sent)
        return STEP_DONE;
    if (!s->fin_acked) {
        s->fin_acked = true;
        s->fin_wait_until = shim_deadline_after(LINGER_FIN_WAIT_MS);
    }
    *next_ms = shim_ms_until(&s->fin_wait_until);
    *events = POLLIN;
    return *next_ms == 0 ? STEP_DONE : STEP_DELIVERED;
}

/* One non-blocking step of s; *events what to poll for when waiting (0:
 * nothing), *next_ms the longest it may wait before the next step. */
static enum step linger_step(struct shim_sock *s, short *events, int *next_ms)
{
    *events = 0;
    *next_ms = LINGER_TICK_MS;
    shim_sock_lock(s);
    int rc = shim_close_step(s);
    enum step st;
    if (rc == SS_WANT_READ || rc == SS_WANT_WRITE) {
        *events = shim_poll_events(shim_wants(s, rc));
        st = STEP_WAIT;
    } else if (rc < 0) {
        st = STEP_GONE;
    } else {
        send_fin(s);
        st = delivery(s, events, next_ms);
    }
    shim_sock_unlock(s);
    return st;
}

/* The end of one linger, outside every lock: a connection that ran out of
 * time is reset rather than cut with a FIN the peer would take for a
 * complete stream; a SO_LINGER the program set was already honoured. */
static void linger_finish(struct shim_sock *s, bool timed_out)
{
    struct linger lg = {timed_out ? 1 : 0, 0};
    if (timed_out)
        ss_log(SS_LOG_WARNING, "endpoint '%s': %s took nothing for %d s "
               "after close; resetting the connection",
               shim_sock_endpoint(s), s->peer, LINGER_MAX_MS / 1000);
    if (timed_out || s->linger_wait_ms > 0)
        (void)REAL(setsockopt)(s->priv_fd, SOL_SOCKET, SO_LINGER, &lg,
                               sizeof(lg));
    shim_sock_unref(s); /* the last reference closes the descriptor */
}

/* The program's bytes are acknowledged: a close() under SO_LINGER {1, N}
 * returns, as the kernel's does once its queue is acknowledged, and exit
 * need not wait for the peer's answer. */
static void mark_delivered(struct shim_sock *s)
{
    pthread_mutex_lock(&linger_lock);
    if (!s->linger_delivered) {
        s->linger_delivered = true;
        pthread_cond_broadcast(&linger_ended);
    }
    pthread_mutex_unlock(&linger_lock);
}

/* Removes s from the list (linger_lock held). */
static void list_remove(struct shim_sock *s)
{
    for (struct shim_sock **p = &lingering; *p != NULL;
         p = &(*p)->linger_next) {
        if (*p == s) {
            *p = s->linger_next;
            s->linger_next = NULL;
            n_lingering--;
            return;
        }
    }
}

/* The thread's working set, grown as needed (only the thread uses it). */
struct round {
    struct shim_sock **socks;
    struct pollfd *pfds;
    size_t cap;
};

static bool round_fit(struct round *r, size_t n)
{
    if (n <= r->cap)
        return true;
    struct shim_sock **socks = realloc(r->socks, n * sizeof(*socks));
    if (socks == NULL)
        return false;
    r->socks = socks;
    struct pollfd *pfds = realloc(r->pfds, n * sizeof(*pfds));
    if (pfds == NULL)
        return false;
    r->pfds = pfds;
    r->cap = n;
    return true;
}

/* One round over every entry (linger_lock held on entry and exit, not
 * while stepping or polling). */
static void linger_round(struct round *r)
{
    size_t n = n_lingering;
    if (!round_fit(r, n))
        n = r->cap; /* the rest waits for the next round */
    size_t i = 0;
    for (struct shim_sock *s = lingering; s != NULL && i < n;
         s = s->linger_next)
        r->socks[i++] = s;
    n = i;
    pthread_mutex_unlock(&linger_lock);
    if (n == 0) { /* no memory for the round: look again a tick later */
        (void)REAL(poll)(NULL, 0, LINGER_TICK_MS);
        pthread_mutex_lock(&linger_lock);
        return;
    }

    int timeout = LINGER_TICK_MS;
    for (i = 0; i < n; i++) {
        struct shim_sock *s = r->socks[i];
        short events;
        int next_ms;
        enum step st = linger_step(s, &events, &next_ms);
        int left = shim_ms_until(&s->linger_deadline);
        bool waiting = st == STEP_WAIT || st == STEP_DELIVERED;
        bool timed_out = st == STEP_WAIT && left == 0;
        r->pfds[i] = (struct pollfd){.fd = -1, .events = 0, .revents = 0};
        if (st == STEP_DELIVERED)
            mark_delivered(s);
        if (waiting && !timed_out) {
            /* Waiting for the kernel's queue alone: no event will say
             * it drained, and a socket the peer shut down reports
             * POLLHUP at once, so it is looked at again a tick later
             * rather than polled (poll skips a negative fd). Waiting
             * for the peer's answer is polled for input: the answer,
             * the FIN or a reset each end it at the next step. */
            if (events != 0)
                r->pfds[i] = (struct pollfd){.fd = s->priv_fd,
                                             .events = events,
                                             .revents = 0};
            if (next_ms < timeout)
                timeout = next_ms;
            if (left < timeout)
                timeout = left;
            continue;
        }
        pthread_mutex_lock(&linger_lock);
        list_remove(s);
        s->linger = LINGER_DONE;
        pthread_cond_broadcast(&linger_ended);
        pthread_mutex_unlock(&linger_lock);
        linger_finish(s, timed_out);
        r->socks[i] = NULL;
    }
    /* Every entry ended: the next round starts at once (or sleeps on
     * linger_work in linger_main). */
    bool any = false;
    for (i = 0; i < n; i++)
        any = any || r->socks[i] != NULL;
    if (any)
        (void)REAL(poll)(r->pfds, (nfds_t)n, timeout);
    pthread_mutex_lock(&linger_lock);
}

static void *linger_main(void *arg)
{
    (void)arg;
    /* A name of its own (ps -L, /proc/PID/task/TID/comm): operators, and
     * the soak test, tell it from the program's threads. */
    (void)pthread_setname_np(pthread_self(), LINGER_THREAD_NAME);
    struct round r = {NULL, NULL, 0};
    pthread_mutex_lock(&linger_lock);
    for (;;) {
        while (lingering == NULL)
            pthread_cond_wait(&linger_work, &linger_lock);
        linger_round(&r);
    }
    return NULL;
}

/* Starts the thread (linger_lock held). Every signal is blocked in it: the
 * program's handlers must not run on a thread it never made. */
static bool thread_start(void)
{
    if (thread_running)
        return true;
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int rc = pthread_create(&t, &attr, linger_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    thread_running = rc == 0;
    return thread_running;
}

/* Hands s (locked) to the thread; false when it cannot run. */
static bool adopt(struct shim_sock *s, int wait_ms)
{
    pthread_once(&conds_once, conds_init);
    pthread_mutex_lock(&linger_lock);
    if (s->linger != LINGER_NONE) {
        pthread_mutex_unlock(&linger_lock);
        return true; /* already (or once) lingering: exit, then close */
    }
    if (!thread_start()) {
        pthread_mutex_unlock(&linger_lock);
        return false;
    }
    shim_sock_ref(s);
    s->linger = LINGER_ACTIVE;
    s->linger_wait_ms = wait_ms;
    s->linger_deadline = shim_deadline_after(LINGER_MAX_MS);
    s->linger_next = lingering;
    lingering = s;
    n_lingering++;
    pthread_cond_signal(&linger_work);
    pthread_mutex_unlock(&linger_lock);
    return true;
}

/* --- close ------------------------------------------------------------------ */

/*
 * Whether the peer can send nothing more: its close_notify (or, where the
 * policy reads a bare EOF as the end, its FIN) was read, as the state
 * SS_CONN_CLOSED after our own close_notify says, and nothing is queued
 * unread. TLS lets no record follow close_notify, as no byte follows a
 * FIN, so no arrival can turn the kernel's close into a reset: the kernel
 * delivers its send queue after close(), as it does over plain TCP.
 */
static bool peer_finished(const struct shim_sock *s)
{
    int queued = 1;
    return ss_conn_state(s->conn) == SS_CONN_CLOSED &&
           REAL(ioctl)(s->priv_fd, FIONREAD, &queued) == 0 && queued == 0;
}

/* Whether anything the program wrote is still on this side of the kernel
 * (or would be lost by the kernel's close), s locked. */
static bool must_linger(const struct shim_sock *s)
{
    if (ss_conn_state(s->conn) == SS_CONN_HANDSHAKING || s->tcp_connecting)
        return true; /* early writes wait for the handshake */
    if (ss_conn_state(s->conn) == SS_CONN_FAILED)
        return false;
    if (ss_conn_unsent(s->conn) > 0)
        return true;
    /* A server whose client closed first, the common case, closes at
     * once: no hand-off to the thread and no wake-up of it (issue 9).
     * After our FIN the peer's answer is due even when the kernel's
     * queue is already acknowledged: it must not meet a closed socket
     * (delivery()). */
    return !peer_finished(s) && (s->fin_sent || kernel_would_lose(s));
}

void linger_last_close(struct shim_sock *s)
{
    int saved = errno;
    struct linger lg = {0, 0};
    socklen_t len = sizeof(lg);
    if (REAL(getsockopt)(s->priv_fd, SOL_SOCKET, SO_LINGER, &lg, &len) != 0)
        lg.l_onoff = 0;
    /* SO_LINGER {1, 0}: the kernel's abortive close. Nothing more is sent;
     * the final close of the private descriptor resets the connection. */
    if (lg.l_onoff && lg.l_linger == 0) {
        errno = saved;
        return;
    }
    /* A connection whose handshake never started (an accepted socket that
     * did no I/O) or that has nothing to deliver yet: finishing the
     * handshake for it would do TLS work (a private-key signature) for a
     * connection nobody uses. */
    bool hs = ss_conn_state(s->conn) == SS_CONN_HANDSHAKING ||
              s->tcp_connecting;
    if (hs && ss_conn_early_unsent(s->conn) == 0) {
        errno = saved;
        return;
    }
    /* When the peer's close_notify was read, the final close follows at
     * once (must_linger) and sends the FIN itself: no cork, no shutdown. */
    bool vfork_child = shim_in_vfork_child();
    bool peer_ended = ss_conn_state(s->conn) == SS_CONN_READ_CLOSED;
    if (!hs)
        end_stream(s, !vfork_child && !peer_ended);
    int wait_ms = lg.l_onoff ? (lg.l_linger > 0x7fffffff / 1000
                                    ? 0x7fffffff : lg.l_linger * 1000)
                             : 0;
    if (!vfork_child && must_linger(s) && !adopt(s, wait_ms))
        ss_log(SS_LOG_WARNING, "endpoint '%s': no thread to deliver the "
               "last bytes to %s after close", shim_sock_endpoint(s),
               s->peer);
    errno = saved;
}

void linger_close_wait(struct shim_sock *s)
{
    int saved = errno;
    pthread_once(&conds_once, conds_init);
    pthread_mutex_lock(&linger_lock);
    if (s->linger == LINGER_ACTIVE && s->linger_wait_ms > 0) {
        struct timespec until = shim_deadline_after(s->linger_wait_ms);
        while (s->linger == LINGER_ACTIVE && !s->linger_delivered &&
               pthread_cond_timedwait(&linger_ended, &linger_lock,
                                      &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&linger_lock);
    errno = saved;
}

/* --- exit ------------------------------------------------------------------- */

/* An open connection at exit, as the kernel's close of a dying process's
 * socket: only the owner (the fork rule) delivers and sends close_notify. */
static void exit_close(struct shim_sock *s)
{
    shim_sock_lock_quiet(s);
    if (!s->closed && !s->failed && shim_sock_owned_here(s))
        linger_last_close(s);
    shim_sock_unlock(s);
    shim_sock_unref(s);
}

/* Whether a lingering connection still has bytes to deliver (linger_lock
 * held): exit waits for those, not for the peers' answers. */
static bool undelivered(void)
{
    for (struct shim_sock *s = lingering; s != NULL; s = s->linger_next)
        if (!s->linger_delivered)
            return true;
    return false;
}

void linger_at_exit(void)
{
    if (shim_in_vfork_child())
        return;
    int saved = errno;
    struct timespec until = shim_deadline_after(LINGER_EXIT_MS);
    shim_sock_for_each_open(exit_close);
    pthread_once(&conds_once, conds_init);
    pthread_mutex_lock(&linger_lock);
    while (undelivered() &&
           pthread_cond_timedwait(&linger_ended, &linger_lock, &until) !=
               ETIMEDOUT)
        ;
    pthread_mutex_unlock(&linger_lock);
    errno = saved;
}

/* --- fork ------------------------------------------------------------------- */

void linger_fork_prepare(void)
{
    pthread_mutex_lock(&linger_lock);
}

void linger_fork_parent(void)
{
    pthread_mutex_unlock(&linger_lock);
}

/* The child has no linger thread and the lingering connections are the
 * parent's: its copies of their descriptors are closed (a copy kept open
 * would hold the connection open after the parent ended it) and the socks
 * are left as they are, never freed here (a small leak, like the socks of
 * threads that do not exist in the child). */
void linger_fork_child(void)
{
    pthread_mutex_unlock(&linger_lock); /* the child's thread took it */
    conds_init(); /* a waiter of the parent's is not here */
    for (struct shim_sock *s = lingering; s != NULL; s = s->linger_next) {
        s->linger = LINGER_DONE;
        if (shim_sock_private_ours(s)) {
            fdtab_disown(s->priv_fd);
            REAL(close)(s->priv_fd);
        }
    }
    lingering = NULL;
    n_lingering = 0;
    thread_running = false;
}
