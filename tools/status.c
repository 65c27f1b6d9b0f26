/*
 * status.c - `secshim status [--json | --prometheus]`: every process of
 * this user (every user's for root) running under the shim, read from
 * the status files they publish (include/secshim/status.h;
 * docs/operations.md, "Status and metrics"). Files of processes that are
 * gone, or whose pid is now another process's, are stale: never listed,
 * and removed when this user owns them (root: any).
 *
 * Exit codes: 0 listed (also when no process runs under the shim), 1 a
 * status file or directory could not be read (the others are listed),
 * 2 usage.
 */
#include "status.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "secshim/common.h"
#include "secshim/status.h"

enum { STATUS_OK = 0, STATUS_UNREADABLE = 1, STATUS_USAGE = 2 };
enum format { FORMAT_TABLE, FORMAT_JSON, FORMAT_PROMETHEUS };

/* One endpoint as read, out of the mapping. */
struct ep_view {
    char name[SS_STATUS_NAME_LEN];
    char address[SS_STATUS_ADDRESS_LEN];
    bool listen;
    int64_t open;
    uint64_t ok, resumed, failed, bytes_in, bytes_out;
    int64_t not_after;
    char reason[SS_STATUS_REASON_LEN];
    int64_t reason_time;
};

struct proc_view {
    pid_t pid;
    uint64_t start_time;
    char comm[SS_STATUS_COMM_LEN];
    char policy[SS_STATUS_PATH_LEN];
    bool compat;
    int64_t started_at;
    size_t n;
    struct ep_view *eps;
};

struct stale_view {
    pid_t pid;
    uint64_t start_time;
    const char *why; /* "gone" or "reused" */
    bool removed;
};

struct listing {
    struct proc_view *procs;
    size_t n_procs, cap_procs;
    struct stale_view *stale;
    size_t n_stale, cap_stale;
    int rc;
};

/* --- reading one file ---------------------------------------------------- */

/* /proc/PID/stat's text into buf, or NULL when there is no such process. */
static const char *proc_stat(pid_t pid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return buf;
}

static void *grow(void *array, size_t *cap, size_t size)
{
    size_t fresh = *cap == 0 ? 8 : *cap * 2;
    void *p = realloc(array, fresh * size);
    if (p == NULL) {
        fputs("secshim: out of memory\n", stderr);
        exit(STATUS_UNREADABLE);
    }
    *cap = fresh;
    return p;
}

static void read_endpoint(const struct ss_status_endpoint *e,
                          struct ep_view *v)
{
    snprintf(v->name, sizeof(v->name), "%.*s", (int)sizeof(e->name) - 1,
             e->name);
    snprintf(v->address, sizeof(v->address), "%.*s",
             (int)sizeof(e->address) - 1, e->address);
    v->listen = e->role == SS_STATUS_LISTEN;
    v->open = atomic_load_explicit(&e->open, memory_order_relaxed);
    v->ok = atomic_load_explicit(&e->handshakes_ok, memory_order_relaxed);
    v->resumed = atomic_load_explicit(&e->handshakes_resumed,
                                      memory_order_relaxed);
    v->failed = atomic_load_explicit(&e->handshakes_failed,
                                     memory_order_relaxed);
    v->bytes_in = atomic_load_explicit(&e->bytes_in, memory_order_relaxed);
    v->bytes_out = atomic_load_explicit(&e->bytes_out, memory_order_relaxed);
    v->not_after = atomic_load_explicit(&e->cert_not_after,
                                        memory_order_relaxed);
    (void)ss_status_reason_get(e, v->reason, sizeof(v->reason),
                               &v->reason_time);
}

/* Copies a checked file into a proc_view. */
static void read_process(const struct ss_status_file *f, struct proc_view *p)
{
    p->pid = f->pid;
    p->start_time = f->start_time;
    snprintf(p->comm, sizeof(p->comm), "%.*s", (int)sizeof(f->comm) - 1,
             f->comm);
    snprintf(p->policy, sizeof(p->policy), "%.*s",
             (int)sizeof(f->policy) - 1, f->policy);
    p->compat = f->compat != 0;
    p->started_at = f->started_at;
    p->n = atomic_load_explicit(&f->n_endpoints, memory_order_acquire);
    p->eps = calloc(p->n > 0 ? p->n : 1, sizeof(*p->eps));
    if (p->eps == NULL) {
        fputs("secshim: out of memory\n", stderr);
        exit(STATUS_UNREADABLE);
    }
    for (size_t i = 0; i < p->n; i++)
        read_endpoint(&f->endpoints[i], &p->eps[i]);
}

static bool listed(const struct listing *l, pid_t pid, uint64_t start)
{
    for (size_t i = 0; i < l->n_procs; i++)
        if (l->procs[i].pid == pid && l->procs[i].start_time == start)
            return true;
    return false;
}

/* A stale file is removed through the directory's descriptor (dfd), so
 * a directory swapped for a link meanwhile cannot redirect the unlink. */
static void note_stale(struct listing *l, int dfd, const char *name,
                       const struct stat *st, pid_t pid, uint64_t start,
                       enum ss_status_liveness live)
{
    bool may = st->st_uid == geteuid() || geteuid() == 0;
    if (l->n_stale == l->cap_stale)
        l->stale = grow(l->stale, &l->cap_stale, sizeof(*l->stale));
    l->stale[l->n_stale++] = (struct stale_view){
        pid, start, live == SS_PROC_GONE ? "gone" : "reused",
        may && unlinkat(dfd, name, 0) == 0};
}

static void unreadable(struct listing *l, const char *dir, const char *name,
                       const char *why)
{
    fprintf(stderr, "secshim: status file %s/%s: %s\n", dir, name, why);
    l->rc = STATUS_UNREADABLE;
}

/* One entry of directory dir (open as dfd): listed, stale, or skipped.
 * Never a link, and O_NONBLOCK: a FIFO under a status file's name must
 * not hold the listing. */
static void read_file(struct listing *l, int dfd, const char *dir,
                      const char *name)
{
    pid_t pid;
    uint64_t start;
    if (ss_status_parse_name(name, &pid, &start) != SS_OK)
        return; /* not a status file */
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
                                   O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0 || errno != ENOENT) /* removed meanwhile: gone */
            unreadable(l, dir, name, fd < 0 ? strerror(errno)
                                            : "not a regular file");
        if (fd >= 0)
            close(fd);
        return;
    }
    char text[1024];
    enum ss_status_liveness live =
        ss_status_liveness(start, proc_stat(pid, text, sizeof(text)));
    if (live == SS_PROC_GONE || live == SS_PROC_REUSED) {
        close(fd);
        note_stale(l, dfd, name, &st, pid, start, live);
        return;
    }
    if (live == SS_PROC_UNKNOWN || (size_t)st.st_size <
                                       sizeof(struct ss_status_file)) {
        close(fd);
        if (live == SS_PROC_UNKNOWN)
            unreadable(l, dir, name, "its process's /proc stat is not "
                       "understood");
        return; /* a short file is one being created */
    }
    const struct ss_status_file *f =
        mmap(NULL, sizeof(*f), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (f == MAP_FAILED) {
        unreadable(l, dir, name, strerror(errno));
        return;
    }
    int rc = ss_status_check(f, (size_t)st.st_size);
    if (rc == SS_ERR_INVAL && f->magic != 0)
        unreadable(l, dir, name, "not a status file of this secshim's "
                   "layout");
    /* Zeros: being rewritten by a new image; EXECED: the image left. */
    bool take = rc == SS_OK &&
                atomic_load_explicit(&f->state, memory_order_acquire) ==
                    SS_STATUS_RUNNING &&
                f->pid == pid && f->start_time == start &&
                !listed(l, pid, start);
    if (take) {
        if (l->n_procs == l->cap_procs)
            l->procs = grow(l->procs, &l->cap_procs, sizeof(*l->procs));
        struct proc_view *p = &l->procs[l->n_procs];
        int64_t started = f->started_at;
        read_process(f, p);
        /* Rewritten meanwhile (an exec of the same process): the copy may
         * mix two images; the new one is read next time. */
        if (atomic_load_explicit(&f->state, memory_order_acquire) ==
                SS_STATUS_RUNNING && f->started_at == started)
            l->n_procs++;
        else
            free(p->eps);
    }
    munmap((void *)f, sizeof(*f));
}

static void read_dir(struct listing *l, const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        int e = errno;
        if (dfd >= 0)
            close(dfd);
        /* Missing, or a link (never followed): nothing of ours there. */
        if (e != ENOENT && e != ENOTDIR && e != ELOOP) {
            fprintf(stderr, "secshim: %s: %s\n", dir, strerror(e));
            l->rc = STATUS_UNREADABLE;
        }
        return;
    }
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        if (de->d_name[0] != '.')
            read_file(l, dfd, dir, de->d_name);
    closedir(d);
}

/* --- where the files are ------------------------------------------------- */

/* Directories already read (the same one reached by two names). */
struct seen_dirs {
    dev_t dev[64];
    ino_t ino[64];
    size_t n;
};

static void read_dir_once(struct listing *l, struct seen_dirs *seen,
                          const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return;
    for (size_t i = 0; i < seen->n; i++)
        if (seen->dev[i] == st.st_dev && seen->ino[i] == st.st_ino)
            return;
    if (seen->n < 64) {
        seen->dev[seen->n] = st.st_dev;
        seen->ino[seen->n++] = st.st_ino;
    }
    read_dir(l, dir);
}

static void read_glob(struct listing *l, struct seen_dirs *seen,
                      const char *pattern)
{
    glob_t g;
    if (glob(pattern, GLOB_ONLYDIR, NULL, &g) != 0)
        return;
    for (size_t i = 0; i < g.gl_pathc; i++)
        read_dir_once(l, seen, g.gl_pathv[i]);
    globfree(&g);
}

/*
 * Where a process of this user may publish (src/shim/status.c): under
 * $XDG_RUNTIME_DIR (ours, and the usual /run/user/UID of processes
 * started with another environment) and /dev/shm/secshim-UID. Root
 * reads every user's.
 */
static void read_all(struct listing *l)
{
    struct seen_dirs seen = {.n = 0};
    char dir[PATH_MAX];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg != NULL && xdg[0] == '/') {
        snprintf(dir, sizeof(dir), "%s/%s", xdg, SS_STATUS_XDG_SUBDIR);
        read_dir_once(l, &seen, dir);
    }
    if (geteuid() == 0) {
        read_glob(l, &seen, "/run/user/*/" SS_STATUS_XDG_SUBDIR);
        read_glob(l, &seen, SS_STATUS_SHM_PREFIX "*");
        return;
    }
    snprintf(dir, sizeof(dir), "/run/user/%lu/%s", (unsigned long)geteuid(),
             SS_STATUS_XDG_SUBDIR);
    read_dir_once(l, &seen, dir);
    snprintf(dir, sizeof(dir), "%s%lu", SS_STATUS_SHM_PREFIX,
             (unsigned long)geteuid());
    read_dir_once(l, &seen, dir);
}

static int by_pid(const void *a, const void *b)
{
    const struct proc_view *x = a, *y = b;
    return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* --- output -------------------------------------------------------------- */

/* Whole days left until t (rounded down; negative once expired). */
static long long days_left(int64_t t, time_t now)
{
    long long secs = (long long)t - (long long)now;
    return secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
}

static void print_table(const struct listing *l, time_t now)
{
    if (l->n_procs == 0)
        printf("no process is running under secshim\n");
    for (size_t i = 0; i < l->n_procs; i++) {
        const struct proc_view *p = &l->procs[i];
        printf("%spid %ld  %s  policy %s  compat %s\n", i > 0 ? "\n" : "",
               (long)p->pid, p->comm, p->policy, p->compat ? "on" : "off");
        printf("  %-16s %-7s %-22s %5s %8s %8s %8s %12s %12s %5s  %s\n",
               "ENDPOINT", "ROLE", "ADDRESS", "OPEN", "HS-OK", "HS-FAIL",
               "HS-RESUM", "BYTES-IN", "BYTES-OUT", "DAYS", "LAST FAILURE");
        for (size_t j = 0; j < p->n; j++) {
            const struct ep_view *e = &p->eps[j];
            char days[24] = "-";
            if (e->not_after != 0)
                snprintf(days, sizeof(days), "%lld",
                         days_left(e->not_after, now));
            char when[32] = "";
            struct tm tm;
            time_t t = (time_t)e->reason_time;
            if (e->reason_time != 0 && gmtime_r(&t, &tm) != NULL)
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ ", &tm);
            printf("  %-16s %-7s %-22s %5" PRId64 " %8" PRIu64 " %8" PRIu64
                   " %8" PRIu64 " %12" PRIu64 " %12" PRIu64 " %5s  %s%s\n",
                   e->name, e->listen ? "listen" : "connect", e->address,
                   e->open, e->ok, e->failed, e->resumed, e->bytes_in,
                   e->bytes_out, days, when,
                   e->reason[0] != '\0' ? e->reason : "-");
        }
    }
    for (size_t i = 0; i < l->n_stale; i++)
        printf("stale status file of pid %ld (process %s): %s\n",
               (long)l->stale[i].pid, l->stale[i].why,
               l->stale[i].removed ? "removed" : "left (not ours)");
}

/* s as the inside of a JSON string. */
static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\')
            printf("\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            printf("\\u%04x", *c);
        else
            putchar(*c);
    }
    putchar('"');
}

static void json_endpoint(const struct ep_view *e, time_t now)
{
    printf("{\"name\":");
    json_string(e->name);
    printf(",\"role\":\"%s\",\"address\":", e->listen ? "listen" : "connect");
    json_string(e->address);
    printf(",\"connections_open\":%" PRId64 ",\"handshakes\":{\"ok\":%" PRIu64
           ",\"resumed\":%" PRIu64 ",\"failed\":%" PRIu64 "},\"bytes\":{"
           "\"in\":%" PRIu64 ",\"out\":%" PRIu64 "},", e->open, e->ok,
           e->resumed, e->failed, e->bytes_in, e->bytes_out);
    if (e->not_after != 0)
        printf("\"certificate_not_after\":%" PRId64 ",\"certificate_days_"
               "left\":%lld,", e->not_after, days_left(e->not_after, now));
    else
        printf("\"certificate_not_after\":null,\"certificate_days_left\":"
               "null,");
    printf("\"last_failure\":");
    if (e->reason_time == 0 && e->reason[0] == '\0') {
        printf("null}");
        return;
    }
    printf("{\"reason\":");
    json_string(e->reason);
    printf(",\"time\":%" PRId64 "}}", e->reason_time);
}

static void print_json(const struct listing *l, time_t now)
{
    printf("{\"processes\":[");
    for (size_t i = 0; i < l->n_procs; i++) {
        const struct proc_view *p = &l->procs[i];
        printf("%s{\"pid\":%ld,\"start_time\":%" PRIu64 ",\"command\":",
               i > 0 ? "," : "", (long)p->pid, p->start_time);
        json_string(p->comm);
        printf(",\"policy\":");
        json_string(p->policy);
        printf(",\"compat\":%s,\"started_at\":%" PRId64 ",\"endpoints\":[",
               p->compat ? "true" : "false", p->started_at);
        for (size_t j = 0; j < p->n; j++) {
            if (j > 0)
                putchar(',');
            json_endpoint(&p->eps[j], now);
        }
        printf("]}");
    }
    printf("],\"stale\":[");
    for (size_t i = 0; i < l->n_stale; i++)
        printf("%s{\"pid\":%ld,\"start_time\":%" PRIu64 ",\"process\":\"%s\","
               "\"removed\":%s}", i > 0 ? "," : "", (long)l->stale[i].pid,
               l->stale[i].start_time, l->stale[i].why,
               l->stale[i].removed ? "true" : "false");
    printf("]}\n");
}

/* s as a Prometheus label value (backslash, quote and newline escaped). */
static void prom_value(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            printf("\\%c", *s);
        else if (*s == '\n')
            printf("\\n");
        else
            putchar(*s);
    }
    putchar('"');
}

/* The labels every endpoint sample carries. */
static void prom_labels(const struct proc_view *p, const struct ep_view *e)
{
    printf("{pid=\"%ld\",endpoint=", (long)p->pid);
    prom_value(e->name);
    printf(",role=\"%s\"", e->listen ? "listen" : "connect");
}

static void prom_head(const char *name, const char *type, const char *help)
{
    printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One endpoint family: which == 0 open, 1 handshakes, 2 bytes, 3 expiry. */
static void prom_family(const struct listing *l, int which)
{
    for (size_t i = 0; i < l->n_procs; i++) {
        const struct proc_view *p = &l->procs[i];
        for (size_t j = 0; j < p->n; j++) {
            const struct ep_view *e = &p->eps[j];
            if (which == 0) {
                printf("secshim_connections_open");
                prom_labels(p, e);
                printf("} %" PRId64 "\n", e->open);
            } else if (which == 1) {
                const char *results[] = {"ok", "resumed", "failed"};
                uint64_t values[] = {e->ok, e->resumed, e->failed};
                for (int k = 0; k < 3; k++) {
                    printf("secshim_handshakes_total");
                    prom_labels(p, e);
                    printf(",result=\"%s\"} %" PRIu64 "\n", results[k],
                           values[k]);
                }
            } else if (which == 2) {
                printf("secshim_bytes_total");
                prom_labels(p, e);
                printf(",direction=\"in\"} %" PRIu64 "\n", e->bytes_in);
                printf("secshim_bytes_total");
                prom_labels(p, e);
                printf(",direction=\"out\"} %" PRIu64 "\n", e->bytes_out);
            } else if (e->not_after != 0) {
                printf("secshim_certificate_expiry_timestamp_seconds");
                prom_labels(p, e);
                printf("} %" PRId64 "\n", e->not_after);
            }
        }
    }
}

static void print_prometheus(const struct listing *l)
{
    prom_head("secshim_process_info", "gauge",
              "A process running under secshim (always 1).");
    for (size_t i = 0; i < l->n_procs; i++) {
        const struct proc_view *p = &l->procs[i];
        printf("secshim_process_info{pid=\"%ld\",command=", (long)p->pid);
        prom_value(p->comm);
        printf(",policy=");
        prom_value(p->policy);
        printf(",compat=\"%s\"} 1\n", p->compat ? "on" : "off");
    }
    prom_head("secshim_connections_open", "gauge",
              "TLS connections the process holds open.");
    prom_family(l, 0);
    prom_head("secshim_handshakes_total", "counter",
              "TLS handshakes completed in full (ok), resumed, or failed.");
    prom_family(l, 1);
    prom_head("secshim_bytes_total", "counter",
              "Plaintext the program read (in) and wrote (out) on TLS "
              "connections.");
    prom_family(l, 2);
    prom_head("secshim_certificate_expiry_timestamp_seconds", "gauge",
              "notAfter of the endpoint's own certificate, once its TLS "
              "context is built.");
    prom_family(l, 3);
}

static const char status_usage[] =
    "usage: secshim status [--json | --prometheus]\n";

int cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"prometheus", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    enum format format = FORMAT_TABLE;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(status_usage, stdout);
            return STATUS_OK;
        }
        if ((c != 'j' && c != 'p') || format != FORMAT_TABLE) {
            fputs(c == 'j' || c == 'p'
                      ? "secshim: --json and --prometheus exclude each other\n"
                      : "", stderr);
            fputs(status_usage, stderr);
            return STATUS_USAGE;
        }
        format = c == 'j' ? FORMAT_JSON : FORMAT_PROMETHEUS;
    }
    if (optind < argc) {
        fputs("secshim: status takes no arguments\n", stderr);
        fputs(status_usage, stderr);
        return STATUS_USAGE;
    }
    struct listing l = {.rc = STATUS_OK};
    read_all(&l);
    if (l.n_procs > 1)
        qsort(l.procs, l.n_procs, sizeof(*l.procs), by_pid);
    time_t now = time(NULL);
    if (format == FORMAT_JSON)
        print_json(&l, now);
    else if (format == FORMAT_PROMETHEUS)
        print_prometheus(&l);
    else
        print_table(&l, now);
    for (size_t i = 0; i < l.n_procs; i++)
        free(l.procs[i].eps);
    free(l.procs);
    free(l.stale);
    return fflush(stdout) == 0 ? l.rc : STATUS_UNREADABLE;
}
