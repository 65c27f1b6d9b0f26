/*
 * status.c - the status file's layout rules: its name, its header, its
 * endpoint slots, the last failure reason under a sequence counter, and
 * whether the process a file names still runs (include/secshim/status.h;
 * docs/design.md, "Status publishing"). Pure code: no file is opened
 * here; the shim (src/shim/status.c) publishes, the secshim command
 * (tools/status.c) reads.
 */
#include "secshim/status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secshim/common.h"

/* Readers retry a reason under a writer this many times, then give up on
 * it (a writer holds it for one short copy). */
#define REASON_TRIES 1000

int ss_status_file_name(char *buf, size_t len, pid_t pid,
                        uint64_t start_time)
{
    int n = snprintf(buf, len, "%ld-%" PRIu64, (long)pid, start_time);
    return n < 0 || (size_t)n >= len ? SS_ERR_INVAL : SS_OK;
}

/* A decimal number without sign or leading zero, ending at *end. */
static int parse_decimal(const char *s, const char **end, uint64_t *out)
{
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
        return SS_ERR_INVAL;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return SS_ERR_INVAL;
        v = v * 10 + d;
    }
    *end = s;
    *out = v;
    return SS_OK;
}

int ss_status_parse_name(const char *name, pid_t *pid, uint64_t *start_time)
{
    const char *p = name;
    uint64_t id = 0, start = 0;
    SS_GUARD(parse_decimal(p, &p, &id));
    SS_ENSURE(*p == '-' && id > 0 && id <= INT32_MAX, SS_ERR_INVAL);
    SS_GUARD(parse_decimal(p + 1, &p, &start));
    SS_ENSURE(*p == '\0', SS_ERR_INVAL);
    *pid = (pid_t)id;
    *start_time = start;
    return SS_OK;
}

int ss_proc_stat_parse(const char *text, char *comm, size_t comm_len,
                       uint64_t *start_time)
{
    const char *open = strchr(text, '(');
    const char *close = strrchr(text, ')');
    SS_ENSURE(open != NULL && close != NULL && close > open && comm_len > 0,
              SS_ERR_INVAL);
    size_t n = (size_t)(close - open - 1);
    if (n >= comm_len)
        n = comm_len - 1;
    memcpy(comm, open + 1, n);
    comm[n] = '\0';
    /* Field 3 (the state) follows ") "; the start time is field 22. */
    const char *p = close + 1;
    for (int field = 3; field <= 22; field++) {
        SS_ENSURE(*p == ' ', SS_ERR_INVAL);
        p++;
        if (field == 22)
            return parse_decimal(p, &p, start_time) == SS_OK &&
                           (*p == ' ' || *p == '\n' || *p == '\0')
                       ? SS_OK : SS_ERR_INVAL;
        p += strcspn(p, " ");
        SS_ENSURE(*p != '\0', SS_ERR_INVAL);
    }
    return SS_ERR_INVAL;
}

enum ss_status_liveness ss_status_liveness(uint64_t file_start,
                                           const char *stat_text)
{
    if (stat_text == NULL)
        return SS_PROC_GONE;
    char comm[SS_STATUS_COMM_LEN];
    uint64_t start = 0;
    if (ss_proc_stat_parse(stat_text, comm, sizeof(comm), &start) != SS_OK)
        return SS_PROC_UNKNOWN;
    return start == file_start ? SS_PROC_RUNNING : SS_PROC_REUSED;
}

/* Copies src into a field of len bytes, cut, always terminated. */
static void put_string(char *field, size_t len, const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;
    if (n >= len)
        n = len - 1;
    if (n > 0)
        memcpy(field, src, n);
    field[n] = '\0';
}

int ss_status_init(struct ss_status_file *f, pid_t pid, uint64_t start_time,
                   uid_t uid, bool compat, const char *policy,
                   const char *comm, int64_t now)
{
    /* First: over an old image's file (exec) a reader must stop taking
     * it before anything in it changes. */
    atomic_store(&f->state, SS_STATUS_STARTING);
    atomic_thread_fence(memory_order_release);
    f->version = SS_STATUS_VERSION;
    f->size = (uint32_t)sizeof(*f);
    f->pid = (int32_t)pid;
    f->start_time = start_time;
    f->uid = (uint32_t)uid;
    f->compat = compat ? 1u : 0u;
    f->started_at = now;
    put_string(f->comm, sizeof(f->comm), comm);
    put_string(f->policy, sizeof(f->policy), policy);
    atomic_store_explicit(&f->n_endpoints, 0, memory_order_relaxed);
    /* The magic last: a reader that sees it sees the header. */
    atomic_thread_fence(memory_order_release);
    f->magic = SS_STATUS_MAGIC;
    return SS_OK;
}

int ss_status_check(const struct ss_status_file *f, size_t size)
{
    SS_ENSURE(size >= sizeof(*f), SS_ERR_INVAL);
    SS_ENSURE(f->magic == SS_STATUS_MAGIC, SS_ERR_INVAL);
    SS_ENSURE(f->version == SS_STATUS_VERSION && f->size == sizeof(*f),
              SS_ERR_INVAL);
    uint32_t state = atomic_load_explicit(&f->state, memory_order_acquire);
    SS_ENSURE(state != SS_STATUS_STARTING, SS_ERR_STATE);
    SS_ENSURE(state == SS_STATUS_RUNNING || state == SS_STATUS_EXECED,
              SS_ERR_INVAL);
    SS_ENSURE(atomic_load_explicit(&f->n_endpoints, memory_order_acquire) <=
                  SS_STATUS_MAX_ENDPOINTS, SS_ERR_INVAL);
    return SS_OK;
}

struct ss_status_endpoint *ss_status_endpoint_find(struct ss_status_file *f,
                                                   const char *name)
{
    uint32_t n = atomic_load_explicit(&f->n_endpoints, memory_order_acquire);
    char cut[SS_STATUS_NAME_LEN];
    put_string(cut, sizeof(cut), name);
    for (uint32_t i = 0; i < n && i < SS_STATUS_MAX_ENDPOINTS; i++)
        if (strcmp(f->endpoints[i].name, cut) == 0)
            return &f->endpoints[i];
    return NULL;
}

struct ss_status_endpoint *ss_status_endpoint_add(struct ss_status_file *f,
                                                  const char *name,
                                                  enum ss_status_role role,
                                                  const char *address)
{
    struct ss_status_endpoint *e = ss_status_endpoint_find(f, name);
    if (e != NULL)
        return e;
    uint32_t n = atomic_load_explicit(&f->n_endpoints, memory_order_relaxed);
    if (n >= SS_STATUS_MAX_ENDPOINTS)
        return NULL;
    e = &f->endpoints[n];
    memset(e, 0, sizeof(*e));
    put_string(e->name, sizeof(e->name), name);
    put_string(e->address, sizeof(e->address), address);
    e->role = (uint32_t)role;
    /* Filled first, then counted: a finder sees it whole or not at all. */
    atomic_store_explicit(&f->n_endpoints, n + 1, memory_order_release);
    return e;
}

/* The reason's bytes are copied one by one with relaxed atomic accesses,
 * so the writer and a reader in this process (the unit tests; another
 * process reads the same way) never race on plain memory. */
static void reason_copy_in(struct ss_status_endpoint *e, const char *why)
{
    _Atomic char *dst = (_Atomic char *)e->reason;
    size_t n = why != NULL ? strlen(why) : 0;
    if (n >= SS_STATUS_REASON_LEN)
        n = SS_STATUS_REASON_LEN - 1;
    for (size_t i = 0; i < n; i++)
        atomic_store_explicit(&dst[i], why[i], memory_order_relaxed);
    atomic_store_explicit(&dst[n], '\0', memory_order_relaxed);
}

bool ss_status_reason_set(struct ss_status_endpoint *e, const char *why,
                          int64_t now)
{
    uint64_t seq = atomic_load_explicit(&e->reason_seq, memory_order_relaxed);
    /* Odd: another thread is writing; taking it from even to odd is the
     * writers' lock, which nobody ever waits for. */
    if ((seq & 1) != 0 ||
        !atomic_compare_exchange_strong_explicit(&e->reason_seq, &seq,
                                                 seq + 1,
                                                 memory_order_acquire,
                                                 memory_order_relaxed))
        return false;
    /* The data must not be seen before the odd count. */
    atomic_thread_fence(memory_order_release);
    reason_copy_in(e, why);
    atomic_store_explicit(&e->reason_time, now, memory_order_relaxed);
    atomic_store_explicit(&e->reason_seq, seq + 2, memory_order_release);
    return true;
}

/* One try: SS_OK when no writer was at work during the copy. */
static int reason_try(const struct ss_status_endpoint *e, char *out,
                      size_t len, int64_t *when)
{
    uint64_t before = atomic_load_explicit(&e->reason_seq,
                                           memory_order_acquire);
    if ((before & 1) != 0)
        return SS_ERR_STATE;
    const _Atomic char *src = (const _Atomic char *)e->reason;
    size_t i = 0;
    for (; i + 1 < len && i < SS_STATUS_REASON_LEN - 1; i++) {
        out[i] = atomic_load_explicit(&src[i], memory_order_relaxed);
        if (out[i] == '\0')
            break;
    }
    out[i] = '\0';
    *when = atomic_load_explicit(&e->reason_time, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    uint64_t after = atomic_load_explicit(&e->reason_seq,
                                          memory_order_relaxed);
    return after == before ? SS_OK : SS_ERR_STATE;
}

int ss_status_reason_get(const struct ss_status_endpoint *e, char *out,
                         size_t len, int64_t *when)
{
    SS_ENSURE(len > 0, SS_ERR_INVAL);
    for (int i = 0; i < REASON_TRIES; i++)
        if (reason_try(e, out, len, when) == SS_OK)
            return SS_OK;
    out[0] = '\0';
    *when = 0;
    return SS_ERR_STATE;
}
