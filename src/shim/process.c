/*
 * process.c - the shim's life in a process: the constructor that loads the
 * policy (or stays inert, or stops a process whose policy is broken), the
 * published policy snapshot and its reload, the sockets a program
 * inherited at start, the fork handlers, the exec family (connections on
 * 0-2 continue through a relay, relay.c; the others are stand-ins in the
 * new program) and the calls that close many descriptors at once
 * (close_range, closefrom).
 */
#include "epoll.h"
#include "fdtab.h"
#include "gate.h"
#include "guard.h"
#include "linger.h"
#include "logfd.h"
#include "process.h"
#include "real.h"
#include "relay.h"
#include "resolve.h"
#include "sock.h"
#include "sockets.h"
#include "status.h"
#include "streams.h"
#include "tlslib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "secshim/compat.h"
#include "secshim/log.h"
#include "secshim/session.h"

/* Guards `current` (taking a reference on it and swapping it). A leaf:
 * nothing else is locked while it is held. */
static pthread_mutex_t policy_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ss_policy *current;

/* Set once by the constructor; NULL while inert. */
static char *policy_path;

/* The reload check: at most one per second (checked_at, monotonic
 * seconds), done by one thread at a time (reloading); fingerprint is only
 * touched by the thread holding `reloading`. */
static atomic_llong checked_at;
static atomic_flag reloading = ATOMIC_FLAG_INIT;
static uint64_t fingerprint;
/* When the reload check last looked at certificate expiry (monotonic
 * seconds); touched only by the thread holding `reloading`. */
static long long expiry_swept_at;

static long long monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec;
}

/* FNV-1a step over a few integers. */
static uint64_t mix(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        h ^= (v >> (8 * i)) & 0xff;
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t mix_file(uint64_t h, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return mix(h, (uint64_t)errno);
    h = mix(h, (uint64_t)st.st_ino);
    h = mix(h, (uint64_t)st.st_size);
    h = mix(h, (uint64_t)st.st_mtim.tv_sec);
    h = mix(h, (uint64_t)st.st_mtim.tv_nsec);
    return mix(h, (uint64_t)st.st_ctim.tv_nsec);
}

static int mix_listed(const char *file, size_t index, void *arg)
{
    (void)index;
    uint64_t *h = arg;
    *h = mix_file(*h, file);
    return SS_OK;
}

/* Every file of a comma-separated list (as certificate, trusted-ca ...). */
static uint64_t mix_list(uint64_t h, const char *list)
{
    /* Out of memory leaves the files out: the fingerprint then differs
     * and a reload is tried, which is built whole or not at all. */
    if (list != NULL)
        (void)ss_for_each_file(list, mix_listed, &h);
    return h;
}

/* A value that changes when the policy file or any file it names does. */
static uint64_t policy_fingerprint(const struct ss_policy *p)
{
    uint64_t h = mix_file(14695981039346656037ull, policy_path);
    for (size_t i = 0; p != NULL && i < p->n_endpoints; i++) {
        const struct ss_endpoint *ep = &p->endpoints[i];
        h = mix_list(h, ep->certificate);
        h = mix_list(h, ep->certificate_key);
        h = mix_list(h, ep->trusted_ca);
        h = mix_list(h, ep->tls_crl);
    }
    return h;
}

/* Applies the snapshot's log settings (under the environment's word,
 * ss_log_override); a log file that cannot be opened leaves logging on
 * stderr, with a warning there. */
static void apply_logging(const struct ss_policy *p)
{
    struct ss_errbuf err;
    int rc = ss_log_configure(p->log_level, p->log_file, &err);
    if (rc == SS_ERR_INVAL)
        ss_log_event(SS_LOG_WARNING, "env_ignored", NULL, "%s", err.msg);
    else if (rc != SS_OK)
        ss_log_event(SS_LOG_WARNING, "log_target_failed", NULL,
                     "%s; logging to stderr", err.msg);
}

/* --- certificate expiry ------------------------------------------------- */

/* A certificate this close to its notAfter is warned about; again once a
 * day, at the first reload check after that (no thread, no timer). */
#define EXPIRY_WARN_DAYS 30
#define EXPIRY_REPEAT_S (24 * 60 * 60)
/* How often the reload check looks: a day's reminder is at most this
 * late, and the check costs a few loads per endpoint once a minute. */
#define EXPIRY_SWEEP_S 60

/* Whole days from now to not_after, rounded down (-1 an hour after). */
static long days_until(time_t not_after, time_t now)
{
    long long left = (long long)not_after - (long long)now;
    return (long)(left >= 0 ? left / 86400 : -((-left + 86399) / 86400));
}

/*
 * Warns about ep's own certificate (a listen endpoint's, a connect
 * endpoint's client certificate) when its context is built and it is
 * within EXPIRY_WARN_DAYS of its end (fresh: always; else at most once
 * per EXPIRY_REPEAT_S). An expired certificate is an error: peers that
 * check it refuse every handshake.
 */
static void check_expiry(const struct ss_endpoint *ep, bool fresh)
{
    const struct ss_tlsctx *t = ss_endpoint_tls(ep);
    if (t == NULL || ep->certificate == NULL)
        return;
    time_t not_after = ss_tlsctx_not_after(t);
    time_t now = time(NULL);
    if (not_after == 0 ||
        (long long)not_after - now > EXPIRY_WARN_DAYS * 86400LL)
        return;
    char key[160];
    snprintf(key, sizeof(key), "expiry:%s", ep->name);
    if (!ss_log_reminder_due(key, EXPIRY_REPEAT_S, fresh))
        return;
    char when[SS_LOG_TIME_LEN];
    struct timespec ts = {.tv_sec = not_after, .tv_nsec = 0};
    ss_log_time(when, &ts);
    long days = days_until(not_after, now);
    struct ss_log_fields f;
    ss_log_fields_init(&f);
    ss_log_field_endpoint(&f, ep->name);
    ss_log_field(&f, "file", ep->certificate);
    ss_log_field(&f, "not_after", when);
    ss_log_fieldf(&f, "days_left", "%ld", days);
    if (not_after <= now)
        ss_log_event(SS_LOG_ERROR, "cert_expired", &f, "endpoint '%s': "
                     "certificate %s expired at %s: peers that check it "
                     "refuse every handshake", ep->name, ep->certificate,
                     when);
    else
        ss_log_event(SS_LOG_WARNING, "cert_expiring", &f, "endpoint '%s': "
                     "certificate %s expires in %ld day%s (at %s)", ep->name,
                     ep->certificate, days, days == 1 ? "" : "s", when);
}

/* Every built endpoint of p; fresh as check_expiry's. */
static void check_expiry_all(const struct ss_policy *p, bool fresh)
{
    for (size_t i = 0; p != NULL && i < p->n_endpoints; i++)
        check_expiry(&p->endpoints[i], fresh);
}

static struct ss_policy *policy_current_ref(void)
{
    pthread_mutex_lock(&policy_lock);
    struct ss_policy *p = current;
    if (p != NULL)
        ss_policy_ref(p);
    pthread_mutex_unlock(&policy_lock);
    return p;
}

/*
 * Builds the new snapshot completely, then publishes it; a file that no
 * longer loads keeps the old one (docs/design.md, "Policy snapshots").
 * Completely means parsed, and with the contexts of the endpoints in_use
 * has built (those in use): a certificate that no longer builds for one
 * of them keeps in_use, as when every context was built at load; the other
 * endpoints are built at their first need, as at start.
 */
static void reload(const struct ss_policy *in_use, uint64_t seen)
{
    struct ss_policy *fresh = NULL;
    struct ss_errbuf err;
    if (ss_policy_parse(policy_path, ss_compat_mode(), &fresh, &err) !=
            SS_OK ||
        ss_policy_build_used(fresh, in_use, &err) != SS_OK) {
        ss_policy_unref(fresh);
        struct ss_log_fields f;
        ss_log_fields_init(&f);
        ss_log_field(&f, "policy", policy_path);
        ss_log_field(&f, "reason", err.msg);
        ss_log_event(SS_LOG_ERROR, "reload_refused", &f, "policy %s changed "
                     "but does not load, keeping the previous one: %s",
                     policy_path, err.msg);
        fingerprint = seen; /* retry only when it changes again */
        return;
    }
    pthread_mutex_lock(&policy_lock);
    struct ss_policy *old = current;
    current = fresh;
    pthread_mutex_unlock(&policy_lock);
    ss_policy_unref(old);
    /* A policy that names its first endpoints needs the guard as one
     * that named them at start (docs/design.md, "The syscall guard"). */
    if (fresh->n_endpoints > 0)
        guard_start();
    shim_status_policy(fresh); /* `reloading` is held: one adder */
    apply_logging(fresh);
    fingerprint = policy_fingerprint(fresh);
    struct ss_log_fields f;
    ss_log_fields_init(&f);
    ss_log_field(&f, "policy", policy_path);
    ss_log_fieldf(&f, "endpoints", "%zu", fresh->n_endpoints);
    ss_log_event(SS_LOG_INFO, "policy_reloaded", &f, "policy %s reloaded: "
                 "%zu endpoints, used by new connections", policy_path,
                 fresh->n_endpoints);
    /* The contexts rebuilt for the endpoints in use: as at a build. */
    check_expiry_all(fresh, true);
}

static void maybe_reload(void)
{
    if (policy_path == NULL)
        return;
    long long now = monotonic_seconds();
    long long last = atomic_load(&checked_at);
    if (now == last ||
        !atomic_compare_exchange_strong(&checked_at, &last, now))
        return;
    if (atomic_flag_test_and_set(&reloading))
        return;
    struct ss_policy *p = policy_current_ref();
    uint64_t seen = policy_fingerprint(p);
    if (seen != fingerprint)
        reload(p, seen);
    else if (now - expiry_swept_at >= EXPIRY_SWEEP_S) {
        expiry_swept_at = now;
        check_expiry_all(p, false);
    }
    ss_policy_unref(p);
    atomic_flag_clear(&reloading);
}

struct ss_policy *shim_policy_get(void)
{
    maybe_reload();
    return policy_current_ref();
}

/* --- TLS contexts, built at their first need ---------------------------------- */

/* exit() and a return from main: what the process's connections were
 * given is delivered, bounded (linger.c), once. _exit() skips it, as it
 * skips stdio's buffers. */
static atomic_flag exit_done = ATOMIC_FLAG_INIT;

static void shim_exit(void)
{
    if (shim_in_vfork_child() || atomic_flag_test_and_set(&exit_done))
        return;
    linger_at_exit();
    shim_status_exit();
}

/*
 * The engine's TLS half (libsecshim-tls.so, and with it libssl and
 * libcrypto) is loaded and OpenSSL started once, before the first context
 * is built: a process that uses no endpoint loads neither. shim_exit runs
 * before OpenSSL cleans up, should the program's own start of OpenSSL
 * have registered a cleanup that runs before the shim's atexit handler
 * (src/tlslib/entry.c). A library that cannot be loaded is said once;
 * nothing TLS can be done in the process then, and every use fails.
 */
enum tls_state { TLS_UNTRIED, TLS_LOADED, TLS_FAILED };
static atomic_int tls_state; /* TLS_UNTRIED */

/* Guards the load (tls_state's change from TLS_UNTRIED). Held across
 * dlopen and OpenSSL's start, during which only the log lock is taken;
 * taken with no other lock held, and first by fork_prepare, so a child
 * never gets a half-loaded library or half-started OpenSSL. */
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whether the TLS half is loaded: its state (the session cache, the
 * ticket keys) exists only then. */
static bool tls_loaded(void)
{
    return atomic_load_explicit(&tls_state, memory_order_acquire) ==
           TLS_LOADED;
}

/* 0 when the TLS half is loaded (now or before), else -1. */
static int tls_ready(void)
{
    int state = atomic_load_explicit(&tls_state, memory_order_acquire);
    if (state != TLS_UNTRIED)
        return state == TLS_LOADED ? 0 : -1;
    pthread_mutex_lock(&tls_lock);
    state = atomic_load_explicit(&tls_state, memory_order_relaxed);
    if (state == TLS_UNTRIED) {
        struct ss_errbuf err = {""};
        guard_own_load_begin(); /* the shim's code, not the program's */
        state = shim_tls_load(shim_exit, &err) == 0 ? TLS_LOADED
                                                    : TLS_FAILED;
        guard_own_load_end();
        if (state == TLS_FAILED)
            ss_log(SS_LOG_ERROR, "%s: no endpoint can be used in this "
                   "process", err.msg);
        atomic_store_explicit(&tls_state, state, memory_order_release);
    }
    pthread_mutex_unlock(&tls_lock);
    return state == TLS_LOADED ? 0 : -1;
}

int shim_endpoint_ready(struct ss_policy *p, const struct ss_endpoint *ep)
{
    if (ss_endpoint_tls(ep) != NULL)
        return 0; /* the fast path: one acquire load */
    int saved = errno;
    shim_status_touch(); /* a fork child building a context publishes */
    if (tls_ready() != 0) {
        errno = EPROTO;
        return -1;
    }
    bool built_here = false;
    struct ss_errbuf err = {""};
    int rc = ss_policy_tls(p, ep, &built_here, &err);
    if (rc == SS_OK) {
        if (built_here) {
            shim_status_built(ep);
            struct ss_log_fields f;
            ss_log_fields_init(&f);
            ss_log_field_endpoint(&f, ep->name);
            ss_log_event(SS_LOG_INFO, "context_built", &f, "endpoint '%s': "
                         "TLS context built at its first use", ep->name);
            check_expiry(ep, true);
        }
        errno = saved;
        return 0;
    }
    /* One line per cause: the build that failed says why; the calls after
     * it fail without a word until a reload gives it another try. */
    if (rc == SS_ERR_NOMEM)
        ss_log(SS_LOG_ERROR, "endpoint '%s': out of memory building its "
               "TLS context", ep->name); /* not remembered: tried again */
    else if (built_here) {
        shim_status_fail(shim_status_endpoint(ep), err.msg);
        struct ss_log_fields f;
        ss_log_fields_init(&f);
        ss_log_field_endpoint(&f, ep->name);
        ss_log_field_reason(&f, err.msg);
        ss_log_event(SS_LOG_ERROR, "context_failed", &f, "%s; its "
                     "connections fail until the policy or its files "
                     "change", err.msg);
    }
    errno = rc == SS_ERR_NOMEM ? ENOMEM : EPROTO;
    return -1;
}

/* --- fork ------------------------------------------------------------------ */

/* Takes the process-wide shim locks in the documented order (sock.h) and
 * closes the gate (gate.h), so that the child never inherits a lock held
 * by a thread it does not have, at a cost that does not grow with the
 * connections: no sock is touched. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&tls_lock);  /* waits for a load under way */
    ss_policy_fork_prepare();       /* and for a build */
    shim_gate_fork_prepare();       /* every gated lock is free */
    pthread_mutex_lock(&policy_lock);
    resolve_fork_prepare();
    linger_fork_prepare();
    /* The TLS half's state exists once it is loaded; tls_lock, held from
     * here to the end of fork, keeps that answer the same throughout. */
    if (tls_loaded())
        ss_session_fork_prepare();
    ss_log_fork_prepare();
    guard_fork_prepare(); /* a leaf */
}

static void fork_parent(void)
{
    guard_fork_parent();
    ss_log_fork_parent();
    if (tls_loaded())
        ss_session_fork_parent();
    linger_fork_parent();
    resolve_fork_parent();
    pthread_mutex_unlock(&policy_lock);
    shim_gate_fork_parent();
    ss_policy_fork_parent();
    pthread_mutex_unlock(&tls_lock);
}

/* The child's one thread is the one that took every lock in
 * fork_prepare: it unlocks them, as the parent does. The gate opens
 * first, since the handlers after it take gated locks (linger closes its
 * copies of descriptors through the fdtab). */
static void fork_child(void)
{
    shim_gate_fork_child();
    guard_fork_child();
    ss_log_fork_child();
    if (tls_loaded())
        ss_session_fork_child(); /* it keeps the sessions and keys */
    shim_sock_fork_child();
    shim_status_fork_child(); /* after the pid is known anew */
    linger_fork_child();
    resolve_fork_child();
    pthread_mutex_unlock(&policy_lock);
    ss_policy_fork_child();
    pthread_mutex_unlock(&tls_lock);
    atomic_flag_clear(&reloading);
}

/* --- exec ------------------------------------------------------------------ */

/* Managed descriptors named in the warning, at most. */
#define EXEC_LIST_MAX 64

/*
 * TLS state is process memory and cannot cross execve(). Connections on
 * descriptors 0-2 get a relay first (relay_exec_prepare; skip names those
 * numbers); any other managed descriptor the new program inherits is the
 * stand-in, on which every read and write fails (the TCP connection stays
 * on the private descriptor, which is close-on-exec). The call is not
 * refused (the program may mean it, e.g. to hand over a plain listener
 * too); one warning names the descriptors. Uses no lock and no
 * allocation, so it is safe between vfork and exec. Keeps errno.
 */
static void exec_check(const char *call, unsigned skip)
{
    int fds[EXEC_LIST_MAX];
    size_t n = fdtab_managed_fds(fds, EXEC_LIST_MAX);
    if (n == 0)
        return; /* the common case: one scan of the table */
    int saved = errno;
    char list[256] = "";
    size_t used = 0, inherited = 0;
    for (size_t i = 0; i < n && i < EXEC_LIST_MAX; i++) {
        if (fds[i] < RELAY_FDS && (skip & (1u << fds[i])) != 0)
            continue;
        int fl = REAL(fcntl)(fds[i], F_GETFD);
        if (fl < 0 || (fl & FD_CLOEXEC) != 0)
            continue;
        inherited++;
        if (used < sizeof(list)) {
            int w = snprintf(list + used, sizeof(list) - used, "%s%d",
                             inherited > 1 ? ", " : "", fds[i]);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    if (inherited > 0)
        ss_log(SS_LOG_WARNING, "%s: %zu TLS connection descriptor%s (%s%s) "
               "without FD_CLOEXEC pass%s to the new program without "
               "%s TLS state: the new program gets a socket that fails "
               "every read and write",
               call, inherited, inherited > 1 ? "s" : "", list,
               n > EXEC_LIST_MAX ? ", more not checked" : "",
               inherited > 1 ? "" : "es", inherited > 1 ? "their" : "its");
    errno = saved;
}

/* The exec itself, through the envp-taking variant: the new image's
 * environment gets SECSHIM_RELAYED when a relay stands on 0-2 (or this
 * image has relayed descriptors to pass on). */
enum exec_call { CALL_EXECVE, CALL_EXECVPE, CALL_FEXECVE };

static int exec_real(enum exec_call call, const char *path, int fd,
                     char *const argv[], char *const envp[])
{
    switch (call) {
    case CALL_EXECVE:
        return REAL(execve)(path, argv, envp);
    case CALL_EXECVPE:
        return REAL(execvpe)(path, argv, envp);
    case CALL_FEXECVE:
        return REAL(fexecve)(fd, argv, envp);
    default:
        errno = EINVAL;
        return -1;
    }
}

/*
 * Every exec of the family comes here (docs/design.md, "Process life").
 * When the exec fails the program continues as before: its descriptors
 * get their stand-ins back, the relays leave without a word, and the
 * connections stay managed here. Without a relay or relayed descriptor the
 * call and its environment are the program's own, untouched.
 */
static int exec_with_relays(const char *name, enum exec_call call,
                            const char *path, int fd, char *const argv[],
                            char *const envp[])
{
    struct relay_exec rx;
    relay_exec_prepare(&rx, name);
    exec_check(name, rx.relayed_mask);
    shim_status_exec_begin();
    int rc;
    if (rx.env[0] == '\0' && rx.relayed_mask == 0) {
        rc = exec_real(call, path, fd, argv, envp);
    } else {
        char *env[relay_env_count(envp) + 2];
        relay_env_build(&rx, envp, env);
        rc = exec_real(call, path, fd, argv, env);
        relay_exec_failed(&rx);
    }
    int e = errno;
    shim_status_exec_failed();
    errno = e;
    return rc;
}

static int shim_execve(const char *path, char *const argv[],
                       char *const envp[])
{
    return exec_with_relays("execve", CALL_EXECVE, path, -1, argv, envp);
}

static int shim_execv(const char *path, char *const argv[])
{
    return exec_with_relays("execv", CALL_EXECVE, path, -1, argv, environ);
}

static int shim_execvp(const char *file, char *const argv[])
{
    return exec_with_relays("execvp", CALL_EXECVPE, file, -1, argv, environ);
}

static int shim_execvpe(const char *file, char *const argv[],
                        char *const envp[])
{
    return exec_with_relays("execvpe", CALL_EXECVPE, file, -1, argv, envp);
}

static int shim_fexecve(int fd, char *const argv[], char *const envp[])
{
    return exec_with_relays("fexecve", CALL_FEXECVE, NULL, fd, argv, envp);
}

/*
 * posix_spawn makes no relay: the parent goes on holding its connection,
 * and a relay would be a second process using one TLS state (the fork
 * rule, docs/shim.md). The child gets the stand-ins (fails closed). glibc
 * spawns through a CLONE_VFORK child and its internal execve, which the
 * shim cannot see; file actions are not inspected, so the warning may be
 * one too many, never one too few.
 */
static int shim_posix_spawn(pid_t *pid, const char *path,
                            const posix_spawn_file_actions_t *fa,
                            const posix_spawnattr_t *attr,
                            char *const argv[], char *const envp[], bool p)
{
    exec_check(p ? "posix_spawnp" : "posix_spawn", 0);
    return p ? REAL(posix_spawnp)(pid, path, fa, attr, argv, envp)
             : REAL(posix_spawn)(pid, path, fa, attr, argv, envp);
}

/* The execl family lists its arguments; glibc's own versions call its
 * internal execve, which the shim cannot see, so they are rebuilt here as
 * an argv on the stack (as glibc does) and passed to the v-variant. */
enum exec_kind { EXEC_L, EXEC_LP, EXEC_LE };

#define EXEC_ARGS_MAX 65536

static int exec_list(enum exec_kind kind, const char *path, const char *arg,
                     va_list ap)
{
    va_list count;
    va_copy(count, ap);
    size_t argc = 1;
    while (va_arg(count, const char *) != NULL && argc < EXEC_ARGS_MAX)
        argc++;
    va_end(count);
    if (argc >= EXEC_ARGS_MAX) {
        errno = E2BIG;
        return -1;
    }
    char *argv[argc + 1];
    argv[0] = (char *)arg;
    for (size_t i = 1; i <= argc; i++)
        argv[i] = va_arg(ap, char *); /* argv[argc] is the NULL */
    switch (kind) {
    case EXEC_L:
        return shim_execv(path, argv);
    case EXEC_LP:
        return shim_execvp(path, argv);
    case EXEC_LE: {
        char *const *envp = va_arg(ap, char *const *);
        return shim_execve(path, argv, envp);
    }
    default:
        errno = EINVAL;
        return -1;
    }
}

SS_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    return shim_execve(path, argv, envp);
}

SS_EXPORT int execv(const char *path, char *const argv[])
{
    return shim_execv(path, argv);
}

SS_EXPORT int execvp(const char *file, char *const argv[])
{
    return shim_execvp(file, argv);
}

SS_EXPORT int execvpe(const char *file, char *const argv[],
                      char *const envp[])
{
    return shim_execvpe(file, argv, envp);
}

SS_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    return shim_fexecve(fd, argv, envp);
}

SS_EXPORT int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    int rc = exec_list(EXEC_L, path, arg, ap);
    va_end(ap);
    return rc;
}

SS_EXPORT int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    int rc = exec_list(EXEC_LP, file, arg, ap);
    va_end(ap);
    return rc;
}

SS_EXPORT int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    int rc = exec_list(EXEC_LE, path, arg, ap);
    va_end(ap);
    return rc;
}

SS_EXPORT int posix_spawn(pid_t *restrict pid, const char *restrict path,
                          const posix_spawn_file_actions_t *fa,
                          const posix_spawnattr_t *restrict attr,
                          char *const argv[restrict],
                          char *const envp[restrict])
{
    return shim_posix_spawn(pid, path, fa, attr, argv, envp, false);
}

SS_EXPORT int posix_spawnp(pid_t *restrict pid, const char *restrict file,
                           const posix_spawn_file_actions_t *fa,
                           const posix_spawnattr_t *restrict attr,
                           char *const argv[restrict],
                           char *const envp[restrict])
{
    return shim_posix_spawn(pid, file, fa, attr, argv, envp, true);
}

/* --- closing many descriptors ------------------------------------------------ */

/*
 * close_range() and closefrom() close descriptors without calling
 * close(), so their entries are dropped here first (with close_notify
 * under the fork rule, as close() does). The range is detached before the
 * kernel closes it, never after: a number closed and reused by another
 * thread in between would otherwise lose the new socket's entry. The
 * shim's own descriptors in the range are left open: the range is closed
 * around them (daemons close every number above 2 at start; the shim's
 * connections and log must survive that). Arguments the kernel rejects
 * (EINVAL) pass straight through; CLOSE_RANGE_CLOEXEC only marks, which
 * the shim's descriptors are already. CLOSE_RANGE_UNSHARE is done first
 * with unshare(), so that the close itself can no longer fail once
 * entries are gone.
 */
/* close() also tells epoll.c (epoll sets hold any descriptor, managed
 * or not); descriptors only exist below RLIMIT_NOFILE, which bounds the
 * walk of a range such as closefrom's [n, UINT_MAX]. */
static void detach_range(unsigned int first, unsigned int last)
{
    fdtab_detach_range(first, last);
    long open_max = sysconf(_SC_OPEN_MAX);
    unsigned int top = open_max > 0 && (unsigned long)open_max <= UINT_MAX
                           ? (unsigned int)(open_max - 1) : (1u << 20);
    if (last < top)
        top = last;
    for (unsigned int fd = first; fd <= top && fd <= (unsigned int)INT_MAX;
         fd++)
        events_fd_closing((int)fd);
}

/* The kernel's close_range over [first, last] minus the shim's own
 * descriptors. Returns 0 or -1 with errno. */
static int close_around_owned(unsigned int first, unsigned int last,
                              int flags)
{
    unsigned int from = first;
    while (from <= last) {
        int owned = from <= (unsigned int)INT_MAX
                        ? fdtab_next_owned((int)from) : -1;
        while (owned >= 0 && (unsigned int)owned <= last &&
               !fdtab_ours(owned))
            owned = fdtab_next_owned(owned + 1); /* reused: not ours */
        if (owned < 0 || (unsigned int)owned > last)
            return REAL_OPTIONAL(close_range)(from, last, flags);
        if ((unsigned int)owned > from &&
            REAL_OPTIONAL(close_range)(from, (unsigned int)owned - 1,
                                       flags) != 0)
            return -1;
        if ((unsigned int)owned == UINT_MAX)
            return 0;
        from = (unsigned int)owned + 1;
    }
    return 0;
}

static int shim_close_range(unsigned int first, unsigned int last, int flags)
{
    unsigned int known = CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC;
    /* Without libc's close_range nothing may be detached: the whole call
     * is -1 ENOSYS and every descriptor stays as it was. */
    if (first > last || ((unsigned int)flags & ~known) != 0 ||
        !REAL_PRESENT(close_range))
        return REAL_OPTIONAL(close_range)(first, last, flags);
    if (((unsigned int)flags & CLOSE_RANGE_CLOEXEC) != 0)
        return close_around_owned(first, last, flags);
    if (((unsigned int)flags & CLOSE_RANGE_UNSHARE) != 0 &&
        unshare(CLONE_FILES) != 0)
        return -1;
    detach_range(first, last);
    return close_around_owned(first, last, 0);
}

static void shim_closefrom(int lowfd)
{
    unsigned int first = lowfd > 0 ? (unsigned int)lowfd : 0;
    detach_range(first, UINT_MAX);
    if (close_around_owned(first, UINT_MAX, 0) != 0) {
        /* Without close_range (old kernels) glibc's closefrom closes one
         * by one; so does the shim, skipping its own. */
        long open_max = sysconf(_SC_OPEN_MAX);
        for (long fd = first; fd < open_max; fd++)
            if (!fdtab_ours((int)fd))
                REAL(close)((int)fd);
    }
}

SS_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    return shim_close_range(first, last, flags);
}

SS_EXPORT void closefrom(int lowfd)
{
    shim_closefrom(lowfd);
}

/* --- sockets inherited at start ---------------------------------------------- */

/* LISTEN_FDS descriptors looked at, at most (systemd passes a handful). */
#define INHERITED_LISTEN_MAX 64

/* Whether the policy has a listen endpoint at all (else nothing to do). */
static bool has_listen(const struct ss_policy *p)
{
    for (size_t i = 0; i < p->n_endpoints; i++)
        if (p->endpoints[i].direction == SS_DIR_LISTEN &&
            p->endpoints[i].enabled)
            return true;
    return false;
}

/* A connected AF_INET/AF_INET6 stream socket, not a relay's socketpair;
 * st is its fstat. */
static bool connected_tcp(int fd, struct stat *st)
{
    if (fstat(fd, st) != 0 || !S_ISSOCK(st->st_mode) ||
        relay_is_relayed(st->st_dev, st->st_ino))
        return false;
    int type = 0;
    socklen_t len = sizeof(type);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    return REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
           type == SOCK_STREAM &&
           REAL(getpeername)(fd, (struct sockaddr *)&peer, &plen) == 0 &&
           (peer.ss_family == AF_INET || peer.ss_family == AF_INET6);
}

/* The LISTEN_FDS count systemd passed to this very process, or 0. */
static int listen_fds(void)
{
    const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
    if (pid == NULL || n == NULL || atol(pid) != (long)getpid())
        return 0;
    long v = atol(n);
    return v <= 0 ? 0 : v > INHERITED_LISTEN_MAX ? INHERITED_LISTEN_MAX
                                                 : (int)v;
}

static bool is_managed(int fd)
{
    struct shim_sock *s = fdtab_get(fd);
    shim_sock_unref(s);
    return s != NULL;
}

/* fd is another number for the socket already adopted on first: it
 * becomes a copy of first's stand-in and shares its connection, as a dup
 * of it would. */
static void adopt_duplicate(int fd, int first)
{
    struct shim_sock *s = fdtab_get(first);
    int fl = REAL(fcntl)(fd, F_GETFD);
    if (s == NULL || REAL(dup3)(first, fd, fl >= 0 && (fl & FD_CLOEXEC)
                                              ? O_CLOEXEC : 0) < 0) {
        REAL(shutdown)(fd, SHUT_RDWR); /* never a path in clear */
        shim_sock_unref(s);
        return;
    }
    fdtab_install(fd, s);
    shim_sock_unref(s);
}

/*
 * Sockets inherited from a parent that was not under the shim (inetd,
 * xinetd, systemd socket activation with Accept=yes): a connected TCP
 * socket whose local address matches a listen endpoint is managed as an
 * accepted socket, so such a service is a TLS service, not a plaintext
 * one. Looked at: 0, 1, 2, and 3..3+LISTEN_FDS-1 when LISTEN_PID is this
 * process (at most INHERITED_LISTEN_MAX): a bounded scan, a few system
 * calls per process start (docs/shim.md, "exec"). One socket on several
 * numbers (inetd puts it on 0 and 1) is one connection. stdin/stdout/
 * stderr over an adopted socket get the shim's streams, as after a dup2.
 */
static void adopt_inherited(const struct ss_policy *p)
{
    if (!has_listen(p))
        return;
    int saved = errno;
    int top = 3 + listen_fds();
    struct seen_socket { dev_t dev; ino_t ino; int fd; }
        seen[3 + INHERITED_LISTEN_MAX];
    int n_seen = 0;
    for (int fd = 0; fd < top; fd++) {
        struct stat st;
        if (!connected_tcp(fd, &st))
            continue;
        int first = -1;
        for (int i = 0; i < n_seen && first < 0; i++)
            if (seen[i].dev == st.st_dev && seen[i].ino == st.st_ino)
                first = seen[i].fd;
        if (first >= 0)
            adopt_duplicate(fd, first);
        else if (shim_adopt_accepted(fd) == 1)
            seen[n_seen++] = (struct seen_socket){st.st_dev, st.st_ino, fd};
        else
            continue;
        if (is_managed(fd))
            shim_stdio_after_dup(fd);
    }
    errno = saved;
}

/* --- start and exit -------------------------------------------------------- */

/*
 * Whether another copy of the shim already started in this process image
 * (LD_PRELOAD naming two different files of the library, say an installed
 * one and a build, or /etc/ld.so.preload and LD_PRELOAD): each copy's
 * constructor runs, and both would load and log the policy and adopt the
 * inherited sockets. The first to start claims the image in the
 * environment with the kernel's AT_RANDOM bytes, which are new at every
 * exec, so an exec'd image starts afresh; the others stay inert and pass
 * every call on (the active copy is reached through RTLD_NEXT or calls
 * through it). docs/shim.md, "Start-up".
 */
static bool image_taken_by_another_copy(void)
{
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    if (r == NULL)
        return false;
    char mark[2 * 16 + 1];
    for (int i = 0; i < 16; i++)
        snprintf(mark + 2 * i, 3, "%02x", r[i]);
    const char *seen = getenv("SECSHIM_IMAGE");
    if (seen != NULL && strcmp(seen, mark) == 0)
        return true;
    (void)setenv("SECSHIM_IMAGE", mark, 1);
    return false;
}

/* SECSHIM_TEST_LOG_WINDOW=SECONDS: a test switch (docs/testing.md) that
 * shortens the rate limit's window, so a case sees a suppressed count
 * without waiting a minute. */
static void log_test_switches(void)
{
    const char *w = getenv("SECSHIM_TEST_LOG_WINDOW");
    if (w != NULL && *w != '\0')
        ss_log_set_clock(NULL, atoi(w));
}

/*
 * Runs before main. Fail closed: a policy that exists but does not load,
 * or a policy named by SECSHIM_CONFIG that cannot be read, ends the
 * process with one message before the program could open a single
 * connection in clear. The policy is parsed and checked here, but no TLS
 * context is built and OpenSSL is not started: a process that never uses
 * an endpoint reads no key (shim_endpoint_ready builds each at its first
 * need; docs/design.md, "When TLS contexts are built"). Names are not
 * resolved here either: a process that never connects pays no lookup
 * (resolve.c resolves when a connect needs it).
 */
__attribute__((constructor)) static void shim_start(void)
{
    if (image_taken_by_another_copy())
        return;
    shim_real_bind();
    (void)shim_self_pid(); /* cached before any vfork (shim_in_vfork_child) */
    relay_image_start();
    bool compat = ss_compat_mode(); /* frozen from now on */
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    /* Read once: the environment's log level and file win over the
     * policy's, across reloads too; a bad value is said once the log is
     * set up, and ignored. */
    struct ss_errbuf env_err = {""};
    int env_rc = ss_log_override(getenv("SECSHIM_LOG_LEVEL"),
                                 getenv("SECSHIM_LOG_FILE"), &env_err);
    log_test_switches();

    const char *env = getenv("SECSHIM_CONFIG");
    bool asked = env != NULL && *env != '\0';
    const char *path = asked ? env : SS_DEFAULT_CONFIG_PATH;
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        /* Only the default policy may be absent: then nobody asked for
         * TLS and the shim stays out of the way. An operator who named a
         * policy asked for TLS, and a program running without it would
         * speak in clear where TLS was meant (docs/shim.md, "Start-up"). */
        if (asked) {
            fprintf(stderr, "secshim: SECSHIM_CONFIG=%s: cannot read the "
                    "policy: %s; not starting without it\n", path,
                    strerror(ENOENT));
            fflush(stderr);
            _exit(1);
        }
        ss_log_event(SS_LOG_INFO, "inert", NULL, "policy %s not found: "
                     "secshim is inert, no connection is changed", path);
        return;
    }

    /* From here on the shim works: its log gets a descriptor of its own
     * (an inert process keeps every number as it was). */
    shim_log_start();
    shim_tls_locate();
    struct ss_policy *p = NULL;
    struct ss_errbuf err;
    if (ss_policy_parse(path, compat, &p, &err) != SS_OK) {
        fprintf(stderr, "secshim: %s\n", err.msg);
        fflush(stderr);
        _exit(1);
    }
    policy_path = strdup(path);
    if (policy_path == NULL) {
        fprintf(stderr, "secshim: out of memory loading %s\n", path);
        _exit(1);
    }
    apply_logging(p);
    if (env_rc != SS_OK)
        ss_log_event(SS_LOG_WARNING, "env_ignored", NULL, "%s",
                     env_err.msg);
    struct ss_log_fields f;
    ss_log_fields_init(&f);
    ss_log_field(&f, "policy", path);
    ss_log_fieldf(&f, "endpoints", "%zu", p->n_endpoints);
    ss_log_field(&f, "compat", compat ? "on" : "off");
    ss_log_event(SS_LOG_INFO, "policy_loaded", &f, "policy %s loaded: %zu "
                 "endpoints (compatibility mode %s)", path, p->n_endpoints,
                 compat ? "on" : "off");
    fingerprint = policy_fingerprint(p);
    atomic_store(&checked_at, monotonic_seconds());
    pthread_mutex_lock(&policy_lock);
    current = p;
    pthread_mutex_unlock(&policy_lock);
    shim_status_start(p, path, compat);
    if (p->n_endpoints > 0)
        guard_start();
    /* Before the program's own handlers, so after them at exit; OpenSSL
     * is kept alive for it (openssl_start). */
    (void)atexit(shim_exit);
    adopt_inherited(p);
}
