/*
 * process.c - the shim's life in a process: the constructor that loads the
 * policy (or stays inert, or stops a process whose policy is broken), the
 * published policy snapshot and its reload, and the fork handlers.
 */
#include "shim.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "secshim/compat.h"
#include "secshim/log.h"

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

/* Every file of a comma-separated list (as certificate, trusted-ca ...). */
static uint64_t mix_list(uint64_t h, const char *list)
{
    if (list == NULL)
        return h;
    char one[4096];
    while (*list != '\0') {
        size_t n = strcspn(list, ",");
        const char *start = list;
        list += n + (list[n] == ',');
        while (n > 0 && *start == ' ') {
            start++;
            n--;
        }
        while (n > 0 && start[n - 1] == ' ')
            n--;
        if (n == 0 || n >= sizeof(one))
            continue;
        memcpy(one, start, n);
        one[n] = '\0';
        h = mix_file(h, one);
    }
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

/* Applies the snapshot's log settings; a log file that cannot be opened
 * leaves logging on stderr, with a warning there. */
static void apply_logging(const struct ss_policy *p)
{
    struct ss_errbuf err;
    if (ss_log_configure(p->log_level, p->log_file, &err) != SS_OK)
        ss_log(SS_LOG_WARNING, "%s; logging to stderr", err.msg);
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

/* Builds the new snapshot completely, then publishes it; a file that no
 * longer loads keeps the old one (DESIGN.md decision 5). */
static void reload(uint64_t seen)
{
    struct ss_policy *fresh = NULL;
    struct ss_errbuf err;
    if (ss_policy_load(policy_path, ss_compat_mode(), &fresh, &err) !=
        SS_OK) {
        ss_log(SS_LOG_ERROR, "policy %s changed but does not load, keeping "
               "the previous one: %s", policy_path, err.msg);
        fingerprint = seen; /* retry only when it changes again */
        return;
    }
    pthread_mutex_lock(&policy_lock);
    struct ss_policy *old = current;
    current = fresh;
    pthread_mutex_unlock(&policy_lock);
    ss_policy_unref(old);
    apply_logging(fresh);
    fingerprint = policy_fingerprint(fresh);
    ss_log(SS_LOG_INFO, "policy %s reloaded: %zu endpoints, used by new "
           "connections", policy_path, fresh->n_endpoints);
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
    ss_policy_unref(p);
    if (seen != fingerprint)
        reload(seen);
    atomic_flag_clear(&reloading);
}

struct ss_policy *shim_policy_get(void)
{
    maybe_reload();
    return policy_current_ref();
}

/* --- fork ------------------------------------------------------------------ */

/* Takes every shim lock in the documented order (shim.h), so the child
 * never inherits one held by a thread it does not have. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&policy_lock);
    resolve_fork_prepare();
    fdtab_fork_prepare();
    ss_log_fork_prepare();
}

static void fork_parent(void)
{
    ss_log_fork_parent();
    fdtab_fork_parent();
    resolve_fork_parent();
    pthread_mutex_unlock(&policy_lock);
}

static void fork_child(void)
{
    ss_log_fork_child();
    fdtab_fork_child();
    resolve_fork_child();
    pthread_mutex_init(&policy_lock, NULL);
    atomic_flag_clear(&reloading);
}

/* --- start ----------------------------------------------------------------- */

/*
 * Runs before main. Fail closed: a policy that exists but does not load
 * ends the process with the engine's "FILE:LINE: ..." message before the
 * program could open a single connection in clear.
 */
__attribute__((constructor)) static void shim_start(void)
{
    shim_real_bind();
    bool compat = ss_compat_mode(); /* frozen from now on */
    pthread_atfork(fork_prepare, fork_parent, fork_child);

    const char *env = getenv("SECSHIM_CONFIG");
    const char *path = env != NULL && *env != '\0' ? env
                                                   : SS_DEFAULT_CONFIG_PATH;
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        /* Quiet (info) when nobody asked for a policy; a warning when
         * SECSHIM_CONFIG names a file that is not there. */
        ss_log(env != NULL ? SS_LOG_WARNING : SS_LOG_INFO,
               "policy %s not found: secshim is inert, no connection is "
               "changed", path);
        return;
    }

    struct ss_policy *p = NULL;
    struct ss_errbuf err;
    if (ss_policy_load(path, compat, &p, &err) != SS_OK) {
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
    ss_log(SS_LOG_INFO, "policy %s loaded: %zu endpoints (compatibility "
           "mode %s)", path, p->n_endpoints, compat ? "on" : "off");
    fingerprint = policy_fingerprint(p);
    atomic_store(&checked_at, monotonic_seconds());
    pthread_mutex_lock(&policy_lock);
    current = p;
    pthread_mutex_unlock(&policy_lock);
}
