/*
 * status.c - this process's status file for `secshim status`: where it
 * lives, its creation in the constructor, its own file in a fork child,
 * its state across exec, its removal at exit (docs/design.md, "Status
 * publishing"; docs/operations.md, "Status and metrics"; the layout is
 * include/secshim/status.h).
 *
 * The file is mapped MAP_SHARED once and stays mapped at one address for
 * the image's life: every connection holds a pointer to its endpoint's
 * slot there (shim_sock.stat) and adds to its counters with relaxed
 * atomics, and nothing else. No thread, socket or signal. A fork child
 * maps its own file at the same address (MAP_FIXED), so the pointers its
 * connections inherited count into the child's file, never the parent's.
 */
#include "real.h"
#include "sock.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "secshim/log.h"
#include "secshim/tlsapi.h"

/* The mapped file, or private memory when nothing is published; NULL
 * before the constructor and in an inert shim. Only the constructor and
 * the fork child handler change it. */
static struct ss_status_file *status_map;
/* The file's path while this image publishes one ("" otherwise). */
static char status_path[PATH_MAX];
static char status_dir[PATH_MAX];

/* Where connections of an endpoint without a slot count: nowhere read. */
static struct ss_status_endpoint unpublished;

static int64_t now_seconds(void)
{
    return (int64_t)time(NULL);
}

/* --- the directory ------------------------------------------------------- */

/* dir exists (made here, 0700, when missing) and is this user's alone: a
 * directory, not a link, owned by the euid, no access for others. */
static bool dir_usable(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return false;
    struct stat st;
    return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
           st.st_uid == geteuid() && (st.st_mode & 077) == 0;
}

/* $XDG_RUNTIME_DIR/secshim when XDG_RUNTIME_DIR is set, absolute, and a
 * directory of this user; else /dev/shm/secshim-UID. */
static bool choose_dir(void)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    struct stat st;
    if (xdg != NULL && xdg[0] == '/' && stat(xdg, &st) == 0 &&
        S_ISDIR(st.st_mode) && st.st_uid == geteuid()) {
        int n = snprintf(status_dir, sizeof(status_dir), "%s/%s", xdg,
                         SS_STATUS_XDG_SUBDIR);
        if (n > 0 && (size_t)n < sizeof(status_dir) && dir_usable(status_dir))
            return true;
    }
    snprintf(status_dir, sizeof(status_dir), "%s%lu", SS_STATUS_SHM_PREFIX,
             (unsigned long)geteuid());
    return dir_usable(status_dir);
}

/* --- the process --------------------------------------------------------- */

/* This process's comm and start time (/proc/self/stat field 22). Returns
 * 0 or -1. */
static int self_stat(char *comm, size_t comm_len, uint64_t *start)
{
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char text[1024];
    ssize_t n = REAL(read)(fd, text, sizeof(text) - 1);
    REAL(close)(fd);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    return ss_proc_stat_parse(text, comm, comm_len, start) == SS_OK ? 0 : -1;
}

/* --- the file ------------------------------------------------------------ */

/*
 * Opens (creating it 0600) the file for pid and start, at least the
 * layout's size. After an exec the file is the old image's: the new one
 * rewrites it in place (ss_status_init, then each endpoint's slot whole),
 * and never shrinks it, which would be SIGBUS in a reader that maps it.
 * Returns the descriptor or -1 (why in *what).
 */
static int file_open(pid_t pid, uint64_t start, const char **what)
{
    char name[64];
    (void)ss_status_file_name(name, sizeof(name), pid, start);
    int n = snprintf(status_path, sizeof(status_path), "%s/%s", status_dir,
                     name);
    *what = "path too long";
    if (n < 0 || (size_t)n >= sizeof(status_path))
        return -1;
    *what = "open";
    int fd = open(status_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    if (fd < 0)
        return -1;
    struct stat st;
    *what = "fstat";
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid()) {
        REAL(close)(fd);
        return -1;
    }
    *what = "ftruncate";
    if (st.st_size < (off_t)sizeof(struct ss_status_file) &&
        ftruncate(fd, sizeof(struct ss_status_file)) != 0) {
        REAL(close)(fd);
        return -1;
    }
    return fd;
}

/* Maps fd at `at` (NULL: anywhere; else replacing what is there). */
static struct ss_status_file *file_map(int fd, void *at)
{
    void *m = mmap(at, sizeof(struct ss_status_file), PROT_READ | PROT_WRITE,
                   MAP_SHARED | (at != NULL ? MAP_FIXED : 0), fd, 0);
    return m == MAP_FAILED ? NULL : m;
}

/* Private zeroed memory at `at` (NULL: anywhere): where counters go when
 * nothing can be published. */
static struct ss_status_file *private_map(void *at)
{
    void *m = mmap(at, sizeof(struct ss_status_file), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | (at != NULL ? MAP_FIXED : 0),
                   -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

/* The file for this process, mapped at `at` (NULL: anywhere), or NULL
 * with one warning saying why. */
static struct ss_status_file *publish(pid_t pid, uint64_t start, void *at)
{
    const char *what = "no usable directory";
    int fd = -1;
    struct ss_status_file *f = NULL;
    if (choose_dir())
        fd = file_open(pid, start, &what);
    if (fd >= 0) {
        what = "mmap";
        f = file_map(fd, at);
        REAL(close)(fd);
    }
    if (f != NULL)
        return f;
    int e = errno;
    ss_log(SS_LOG_WARNING, "status file %s: %s: %s; this process is not "
           "shown by `secshim status`",
           fd >= 0 || strcmp(what, "no usable directory") != 0 ? status_path
                                                               : status_dir,
           what, strerror(e));
    if (fd >= 0)
        unlink(status_path);
    status_path[0] = '\0';
    return NULL;
}

static void add_endpoints(const struct ss_policy *p)
{
    for (size_t i = 0; p != NULL && i < p->n_endpoints; i++) {
        const struct ss_endpoint *ep = &p->endpoints[i];
        (void)ss_status_endpoint_add(status_map, ep->name,
                                     ep->direction == SS_DIR_LISTEN
                                         ? SS_STATUS_LISTEN
                                         : SS_STATUS_CONNECT,
                                     ep->address);
    }
}

void shim_status_start(const struct ss_policy *p, const char *policy_path,
                       bool compat)
{
    int saved = errno;
    char comm[SS_STATUS_COMM_LEN] = "";
    uint64_t start = 0;
    struct ss_status_file *f = NULL;
    if (self_stat(comm, sizeof(comm), &start) == 0)
        f = publish(shim_self_pid(), start, NULL);
    else
        ss_log(SS_LOG_WARNING, "status: /proc/self/stat cannot be read; "
               "this process is not shown by `secshim status`");
    if (f == NULL)
        f = private_map(NULL);
    if (f == NULL) {
        errno = saved;
        return; /* every connection counts in `unpublished` */
    }
    status_map = f;
    /* Over an old image's file (exec) the header says EXECED, then
     * STARTING, until the endpoints are written: no reader takes it
     * meanwhile. Slots beyond n_endpoints are never read. */
    (void)ss_status_init(f, shim_self_pid(), start, geteuid(), compat,
                         policy_path, comm, now_seconds());
    add_endpoints(p);
    atomic_store_explicit(&f->state, SS_STATUS_RUNNING, memory_order_release);
    errno = saved;
}

/* The certificate expiry of ep, once its context is built. */
static void note_expiry(const struct ss_endpoint *ep)
{
    const struct ss_tlsctx *t = ss_endpoint_tls(ep);
    if (t == NULL)
        return;
    struct ss_status_endpoint *e = shim_status_endpoint(ep);
    atomic_store_explicit(&e->cert_not_after,
                          (int64_t)ss_tlsctx_not_after(t),
                          memory_order_relaxed);
}

void shim_status_policy(const struct ss_policy *p)
{
    if (status_map == NULL)
        return;
    add_endpoints(p);
    for (size_t i = 0; i < p->n_endpoints; i++)
        note_expiry(&p->endpoints[i]);
}

void shim_status_built(const struct ss_endpoint *ep)
{
    note_expiry(ep);
}

struct ss_status_endpoint *shim_status_endpoint(const struct ss_endpoint *ep)
{
    struct ss_status_endpoint *e = NULL;
    if (status_map != NULL && ep != NULL && ep->name != NULL)
        e = ss_status_endpoint_find(status_map, ep->name);
    return e != NULL ? e : &unpublished;
}

void shim_status_fail(struct ss_status_endpoint *e, const char *why)
{
    (void)ss_status_reason_set(e, why, now_seconds());
}

/* --- exec, fork, exit ------------------------------------------------------ */

void shim_status_exec_begin(void)
{
    if (status_map != NULL && !shim_in_vfork_child())
        atomic_store_explicit(&status_map->state, SS_STATUS_EXECED,
                              memory_order_release);
}

void shim_status_exec_failed(void)
{
    if (status_map != NULL && !shim_in_vfork_child())
        atomic_store_explicit(&status_map->state, SS_STATUS_RUNNING,
                              memory_order_release);
}

/* A child's copy starts where a new process does: its endpoints and what
 * is known of their certificates, no count (the parent's history is the
 * parent's; docs/design.md, "Status publishing"). */
/* The bytes of f in use: the header and the endpoints it counts. */
static size_t used_size(const struct ss_status_file *f)
{
    uint32_t n = atomic_load_explicit(&f->n_endpoints, memory_order_relaxed);
    if (n > SS_STATUS_MAX_ENDPOINTS)
        n = SS_STATUS_MAX_ENDPOINTS;
    return offsetof(struct ss_status_file, endpoints) +
           n * sizeof(struct ss_status_endpoint);
}

/* A child's copy starts where a new process does: its endpoints and what
 * is known of their certificates, no count (the parent's history is the
 * parent's; docs/design.md, "Process life"). Not readable (STARTING)
 * until its file is published with its start time. */
static void child_reset(struct ss_status_file *f, pid_t pid, uint64_t start,
                        const char *comm)
{
    atomic_store_explicit(&f->state, SS_STATUS_STARTING,
                          memory_order_relaxed);
    f->pid = (int32_t)pid;
    f->start_time = start;
    f->started_at = now_seconds();
    snprintf(f->comm, sizeof(f->comm), "%s", comm);
    uint32_t n = atomic_load_explicit(&f->n_endpoints, memory_order_relaxed);
    for (uint32_t i = 0; i < n && i < SS_STATUS_MAX_ENDPOINTS; i++) {
        struct ss_status_endpoint *e = &f->endpoints[i];
        size_t counters = offsetof(struct ss_status_endpoint, cert_not_after) -
                          offsetof(struct ss_status_endpoint, open);
        memset((char *)e + offsetof(struct ss_status_endpoint, open), 0,
               counters);
        atomic_store_explicit(&e->reason_seq, 0, memory_order_relaxed);
        atomic_store_explicit(&e->reason_time, 0, memory_order_relaxed);
        memset(e->reason, 0, sizeof(e->reason));
    }
}

/* What a child learns when it publishes: its start time and command. */
static void child_reset_identity(struct ss_status_file *f, uint64_t start,
                                 const char *comm)
{
    f->start_time = start;
    snprintf(f->comm, sizeof(f->comm), "%s", comm);
    atomic_store_explicit(&f->state, SS_STATUS_RUNNING, memory_order_release);
}

/* A fork child's file is made at its first use of TLS (shim_status_touch),
 * not at the fork: see shim_status_fork_child. */
enum late { LATE_NONE, LATE_PENDING, LATE_DONE };
static atomic_int late_state; /* LATE_NONE */

void shim_status_fork_child(void)
{
    if (status_map == NULL)
        return;
    status_path[0] = '\0'; /* the parent's: never removed from here */
    /* Private memory in place of the parent's file, at the same address
     * (mremap replaces the mapping whole): every pointer the child's
     * connections inherited counts here from now on, never there. */
    size_t used = used_size(status_map);
    void *fresh = private_map(NULL);
    if (fresh != NULL) {
        memcpy(fresh, status_map, used);
        if (mremap(fresh, sizeof(*status_map), sizeof(*status_map),
                   MREMAP_MAYMOVE | MREMAP_FIXED, status_map) == MAP_FAILED) {
            munmap(fresh, sizeof(*status_map));
            fresh = NULL;
        }
    }
    if (fresh == NULL) {
        /* Unmapping would make every pointer into it fault: the lesser
         * harm is counts that reach the parent's file, said once. */
        ss_log(SS_LOG_WARNING, "status: the fork child %ld cannot replace "
               "its parent's status mapping; its counts go to the parent's "
               "file", (long)shim_self_pid());
        return;
    }
    child_reset(status_map, shim_self_pid(), 0, "");
    atomic_store_explicit(&late_state, LATE_PENDING, memory_order_relaxed);
}

/* The fork child's first use of TLS: its own file, with what it counted
 * so far, mapped where the private memory was. */
static void publish_late(void)
{
    int expected = LATE_PENDING;
    if (!atomic_compare_exchange_strong(&late_state, &expected, LATE_DONE))
        return; /* another thread does it (its adds meanwhile may be lost) */
    int saved = errno;
    char comm[SS_STATUS_COMM_LEN] = "";
    uint64_t start = 0;
    const char *what = "/proc/self/stat";
    int fd = -1;
    if (self_stat(comm, sizeof(comm), &start) == 0 && choose_dir())
        fd = file_open(shim_self_pid(), start, &what);
    else if (start != 0)
        what = "no usable directory";
    struct ss_status_file *f = status_map;
    if (fd >= 0) {
        child_reset_identity(f, start, comm);
        what = "write";
        if (pwrite(fd, f, used_size(f), 0) == (ssize_t)used_size(f)) {
            what = "mmap";
            if (file_map(fd, f) == f) {
                REAL(close)(fd);
                errno = saved;
                return;
            }
        }
        REAL(close)(fd);
        unlink(status_path);
    }
    ss_log(SS_LOG_WARNING, "status: %s: %s; this process is not shown by "
           "`secshim status`", what, strerror(errno));
    status_path[0] = '\0';
    errno = saved;
}

void shim_status_touch(void)
{
    if (atomic_load_explicit(&late_state, memory_order_relaxed) ==
        LATE_PENDING)
        publish_late();
}

void shim_status_exit(void)
{
    if (status_path[0] == '\0' || shim_in_vfork_child())
        return;
    int saved = errno;
    (void)unlink(status_path);
    status_path[0] = '\0';
    errno = saved;
}
