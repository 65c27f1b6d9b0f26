/*
 * status.h - the status file each shimmed process publishes, and the pure
 * code that writes and reads it (src/engine/status.c).
 *
 * One file per process under the shim, shared memory in a directory of
 * the user's own (docs/operations.md, "Status and metrics"; why in
 * docs/design.md, "Status publishing"): a fixed binary layout, struct
 * ss_status_file, mapped MAP_SHARED by the process that owns it and read
 * by `secshim status` (tools/status.c) built from the same tree. The
 * connection path updates the counters with relaxed atomic adds; the
 * last failure reason is a string guarded by a sequence counter
 * (ss_status_reason_set / _get), so a reader never takes a torn one.
 *
 * The file is never shrunk while it exists (a reader maps it: a shrink
 * would be SIGBUS there); a new image after exec rewrites it in place.
 */
#ifndef SECSHIM_STATUS_H
#define SECSHIM_STATUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* "SECSHIMS" read as a little-endian 64-bit number; and the layout's
 * version, changed whenever struct ss_status_file changes shape. */
#define SS_STATUS_MAGIC 0x534d494853434553ull
#define SS_STATUS_VERSION 1u

#define SS_STATUS_MAX_ENDPOINTS 64
#define SS_STATUS_NAME_LEN 64     /* endpoint names, cut to 63 bytes */
#define SS_STATUS_ADDRESS_LEN 128 /* the connect/listen value as written */
#define SS_STATUS_REASON_LEN 200  /* the last failure, cut to 199 bytes */
#define SS_STATUS_PATH_LEN 1024   /* the policy file's path */
#define SS_STATUS_COMM_LEN 16     /* the kernel's comm, TASK_COMM_LEN */

/* The directory under $XDG_RUNTIME_DIR, and the one under /dev/shm
 * (followed by the uid) when that is not set or not usable. */
#define SS_STATUS_XDG_SUBDIR "secshim"
#define SS_STATUS_SHM_PREFIX "/dev/shm/secshim-"

/* ss_status_file.state. */
enum ss_status_state {
    SS_STATUS_STARTING = 0, /* being written: not to be read yet */
    SS_STATUS_RUNNING = 1,  /* published by a live image under the shim */
    SS_STATUS_EXECED = 2    /* the image called exec: the new one, if it
                               runs under the shim, rewrites the file */
};

enum ss_status_role {
    SS_STATUS_CONNECT = 0,
    SS_STATUS_LISTEN = 1
};

/*
 * One endpoint of the process's policy, by name: a reload keeps the slot
 * of an endpoint it keeps and adds one for a new name (the counters are
 * the process's, across snapshots). Counters only grow except `open`.
 */
struct ss_status_endpoint {
    char name[SS_STATUS_NAME_LEN];
    char address[SS_STATUS_ADDRESS_LEN];
    uint32_t role;                     /* enum ss_status_role */
    uint32_t reserved;
    _Atomic int64_t open;              /* TLS connections open now */
    _Atomic uint64_t handshakes_ok;    /* full handshakes completed */
    _Atomic uint64_t handshakes_resumed; /* resumed handshakes completed */
    _Atomic uint64_t handshakes_failed;
    _Atomic uint64_t bytes_in;         /* plaintext the program read */
    _Atomic uint64_t bytes_out;        /* plaintext the program wrote */
    /* The endpoint's own certificate's notAfter (seconds since the
     * epoch), once its TLS context is built; 0: not known (not built, or
     * no certificate of its own). */
    _Atomic int64_t cert_not_after;
    /* The last failure: odd while being written (ss_status_reason_set). */
    _Atomic uint64_t reason_seq;
    _Atomic int64_t reason_time;       /* seconds since the epoch; 0: none */
    char reason[SS_STATUS_REASON_LEN];
};

struct ss_status_file {
    uint64_t magic;                    /* SS_STATUS_MAGIC */
    uint32_t version;                  /* SS_STATUS_VERSION */
    uint32_t size;                     /* sizeof(struct ss_status_file) */
    _Atomic uint32_t state;            /* enum ss_status_state */
    int32_t pid;
    uint64_t start_time;               /* /proc/PID/stat field 22 (ticks) */
    uint32_t uid;
    uint32_t compat;                   /* compatibility mode: 1 on */
    int64_t started_at;                /* seconds since the epoch */
    char comm[SS_STATUS_COMM_LEN];
    char policy[SS_STATUS_PATH_LEN];
    /* Slots in use; a new one is filled first, then counted (release). */
    _Atomic uint32_t n_endpoints;
    uint32_t reserved;
    struct ss_status_endpoint endpoints[SS_STATUS_MAX_ENDPOINTS];
};

/* What a process's /proc entry says about the process a file names. */
enum ss_status_liveness {
    SS_PROC_RUNNING, /* the same process: pid and start time match */
    SS_PROC_GONE,    /* no such pid */
    SS_PROC_REUSED,  /* the pid is another process's (its start differs) */
    SS_PROC_UNKNOWN  /* its stat could not be understood */
};

/* The file's name for pid and start time: "PID-START". Returns SS_OK, or
 * SS_ERR_INVAL when buf (len bytes) is too small. */
int ss_status_file_name(char *buf, size_t len, pid_t pid,
                        uint64_t start_time);

/* Parses a file name made by ss_status_file_name, nothing else (no
 * sign, no leading zero, nothing after). Returns SS_OK or SS_ERR_INVAL. */
int ss_status_parse_name(const char *name, pid_t *pid, uint64_t *start_time);

/*
 * From the text of /proc/PID/stat: the command name (field 2, without
 * its parentheses, which may itself hold ") " and spaces: it ends at the
 * last ')') into comm (comm_len bytes, cut), and the start time (field
 * 22). Returns SS_OK or SS_ERR_INVAL.
 */
int ss_proc_stat_parse(const char *text, char *comm, size_t comm_len,
                       uint64_t *start_time);

/* Whether the process a file names (its start time file_start) is the
 * one whose /proc/PID/stat text is stat_text (NULL: no such process). */
enum ss_status_liveness ss_status_liveness(uint64_t file_start,
                                           const char *stat_text);

/*
 * Fills a zeroed file's header (state stays STARTING: the caller marks it
 * RUNNING once its endpoints are in). Strings are cut to their fields.
 * Returns SS_OK.
 */
int ss_status_init(struct ss_status_file *f, pid_t pid, uint64_t start_time,
                   uid_t uid, bool compat, const char *policy,
                   const char *comm, int64_t now);

/*
 * Checks a mapped file of size bytes before anything else is read: the
 * magic, this layout's version and size, a state that may be read
 * (RUNNING or EXECED) and an endpoint count in bounds. Returns SS_OK,
 * SS_ERR_INVAL (not a status file of this layout), or SS_ERR_STATE (one
 * still being written).
 */
int ss_status_check(const struct ss_status_file *f, size_t size);

/*
 * The slot of endpoint name (role, address as written): the existing one
 * of that name, else a new one. One thread adds at a time (the caller's
 * rule); finding may run beside it. Returns the slot, or NULL when all
 * SS_STATUS_MAX_ENDPOINTS are taken.
 */
struct ss_status_endpoint *ss_status_endpoint_add(struct ss_status_file *f,
                                                  const char *name,
                                                  enum ss_status_role role,
                                                  const char *address);

/* The slot of endpoint name, or NULL. */
struct ss_status_endpoint *ss_status_endpoint_find(struct ss_status_file *f,
                                                   const char *name);

/*
 * Records why the endpoint's last connection failed (cut to the field),
 * at time now. Never waits: when another thread is writing the reason at
 * this moment, this one is dropped (the other is as recent). Returns
 * true when written.
 */
bool ss_status_reason_set(struct ss_status_endpoint *e, const char *why,
                          int64_t now);

/*
 * Copies the last failure reason into out (len bytes, cut) and its time
 * into *when (0 and "" when there was none), retrying while a writer is
 * at work, at most a bounded number of times. Returns SS_OK, or
 * SS_ERR_STATE when every try met a writer (out is then "").
 */
int ss_status_reason_get(const struct ss_status_endpoint *e, char *out,
                         size_t len, int64_t *when);

/* A relaxed atomic add on a counter of a mapped file: all the connection
 * path does. */
static inline void ss_status_add(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

#endif
