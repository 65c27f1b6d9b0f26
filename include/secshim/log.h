/*
 * log.h - leveled logging to stderr, syslog or a file; never stdout, which
 * belongs to the program the shim is preloaded into.
 *
 * Lines look like "secshim[PID]: LEVEL: message time=... pid=... KEY=VALUE
 * ...": the human sentence, then key=value fields (docs/operations.md,
 * "Logs"), each line written with one write() to a descriptor of the log's
 * own, never through stdio. A line is always one line: control bytes are
 * escaped. Logging never changes errno.
 */
#ifndef SECSHIM_LOG_H
#define SECSHIM_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "secshim/common.h"

enum ss_log_level {
    SS_LOG_ERROR = 0,
    SS_LOG_WARNING = 1,
    SS_LOG_INFO = 2,
    SS_LOG_DEBUG = 3
};

/* Parses "error|warning|info|debug". Returns SS_OK or SS_ERR_INVAL. */
int ss_log_level_parse(const char *name, enum ss_log_level *out);

/*
 * Sets the level and the target: "stderr", "syslog", or a file path opened
 * for append; the environment's (ss_log_override) win over both. Returns
 * SS_OK, or SS_ERR_IO (with err filled) when the file cannot be opened;
 * the previous target then stays in place. When the environment's file
 * cannot be opened it is dropped for good and the target given is used:
 * SS_ERR_INVAL, err saying so.
 */
int ss_log_configure(enum ss_log_level level, const char *target,
                     struct ss_errbuf *err);

/*
 * The environment's word over the policy's log group (SECSHIM_LOG_LEVEL,
 * SECSHIM_LOG_FILE; NULL or "" when unset): kept for every later
 * ss_log_configure, so it wins across reloads too. An invalid level is
 * ignored. Returns SS_OK, or SS_ERR_INVAL with err saying which value is
 * ignored (the caller logs it once, as a warning, once the log is set up).
 */
int ss_log_override(const char *level, const char *file,
                    struct ss_errbuf *err);

/* True when a message at level would be written. */
bool ss_log_enabled(enum ss_log_level level);

void ss_log(enum ss_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- events: a sentence and its fields -------------------------------- */

/* Room for one line's fields (the reason may be quoted at length). */
#define SS_LOG_FIELDS_MAX 1536

/*
 * The key=value fields of one event, built on the caller's stack before
 * the line is logged: ss_log_fields_init, then ss_log_field* in the order
 * they are to appear. Values are quoted when they need it (a space, a
 * quote, '=', a backslash, a control byte, or empty) with \" and \\
 * escaped and control bytes written as \n, \r, \t or \xHH, so a line
 * stays one line. What does not fit is cut at a whole field.
 * ss_log_field_endpoint and ss_log_field_reason also name the line for
 * the rate limit (ss_log_event).
 */
struct ss_log_fields {
    size_t len;
    uint64_t rate_key;           /* 0: the line is not rate limited */
    const char *endpoint;        /* for the limiter's summary line */
    const char *reason;
    char buf[SS_LOG_FIELDS_MAX]; /* " k=v k=v", NUL-terminated */
};

void ss_log_fields_init(struct ss_log_fields *f);
/* Appends key=value; a NULL value appends nothing. */
void ss_log_field(struct ss_log_fields *f, const char *key,
                  const char *value);
void ss_log_fieldf(struct ss_log_fields *f, const char *key,
                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* endpoint=NAME, and the first half of the rate-limit key. */
void ss_log_field_endpoint(struct ss_log_fields *f, const char *name);
/* reason=WORDS, and the second half of the rate-limit key. */
void ss_log_field_reason(struct ss_log_fields *f, const char *why);

/*
 * Writes VALUE as a field value would appear (quoted only when it needs
 * it) into out, NUL-terminated. Returns the length it needs (as snprintf:
 * a result >= cap means out holds a cut copy).
 */
size_t ss_log_quote(char *out, size_t cap, const char *value);

/*
 * Logs one event: "SENTENCE time=... pid=... event=EVENT FIELDS". A
 * warning or error whose fields name an endpoint and a reason is rate
 * limited per (endpoint, reason): the first is written at once, repeats
 * within SS_LOG_RATE_WINDOW_S are counted instead, and the first line
 * after the window (or a summary line, event=suppressed, at the next
 * event of any kind after the window ended) says how many were
 * suppressed. f may be NULL. Keeps errno.
 */
void ss_log_event(enum ss_log_level level, const char *event,
                  const struct ss_log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The rate limit's window, and its table: (endpoint, reason) pairs kept
 * at once; a new pair takes a free slot, else the one seen least
 * recently, whose count (if any) is written as a summary first. */
#define SS_LOG_RATE_WINDOW_S 60
#define SS_LOG_RATE_SLOTS 32

/*
 * A reminder that repeats at most once per interval_s for key (e.g. an
 * expiring certificate, once a day): true the first time, and when
 * interval_s has passed since the last true, which is recorded; force
 * records now and returns true. A bounded table (SS_LOG_RATE_SLOTS keys,
 * the least recently reminded replaced). Thread-safe.
 */
bool ss_log_reminder_due(const char *key, int interval_s, bool force);

/*
 * Test hook: the clock the log reads (the time field: CLOCK_REALTIME;
 * the rate limit and reminders: CLOCK_MONOTONIC). NULL restores
 * clock_gettime. Also empties the rate-limit and reminder tables, and
 * sets the window (0: SS_LOG_RATE_WINDOW_S).
 */
void ss_log_set_clock(int (*gettime)(clockid_t, struct timespec *),
                      int window_s);

/* Writes t as RFC 3339 UTC with milliseconds ("2026-12-01T16:01:00.123Z",
 * 24 characters and a NUL) into out, which holds SS_LOG_TIME_LEN bytes;
 * needs no lock (no gmtime_r: glibc's takes the time-zone lock).
 * Returns out. */
#define SS_LOG_TIME_LEN 48
char *ss_log_time(char *out, const struct timespec *t);

/*
 * Where log lines go, for a host that must keep its log descriptor apart
 * from the program's (the shim, docs/design.md "The shim never writes
 * through the program"). take(fd) returns the descriptor to keep for fd,
 * a target just opened or the one kept so far (fd itself, or a copy: then
 * take closes fd unless it is 0, 1 or 2); drop closes a kept descriptor;
 * write writes one line. The default (libc's calls, fd kept as it is)
 * suits the CLI and the tests.
 */
struct ss_log_io {
    int (*take)(int fd);
    void (*drop)(int fd);
    ssize_t (*write)(int fd, const void *buf, size_t len);
};

/* Installs io and re-takes the current target through it. */
void ss_log_set_io(const struct ss_log_io *io);

/* The descriptor lines are written to now (-1: none). */
int ss_log_fd(void);

/* Moves the log to another descriptor (the old number is wanted by the
 * program): take(current), which must then return a new one. Returns
 * SS_OK or SS_ERR_IO. */
int ss_log_move(void);

/*
 * fork() support for the shim's pthread_atfork handlers: prepare takes the
 * log lock (last, because shim code may log while holding its own locks),
 * parent releases it, and so does the child (its one thread took it).
 */
void ss_log_fork_prepare(void);
void ss_log_fork_parent(void);
void ss_log_fork_child(void);

#endif
