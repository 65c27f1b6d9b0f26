/*
 * log.h - leveled logging to stderr, syslog or a file; never stdout, which
 * belongs to the program the shim is preloaded into.
 *
 * Lines look like "secshim[PID]: LEVEL: message", each written with one
 * write() to a descriptor of the log's own, never through stdio. Logging
 * never changes errno.
 */
#ifndef SECSHIM_LOG_H
#define SECSHIM_LOG_H

#include <stdbool.h>
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
 * for append. Returns SS_OK, or SS_ERR_IO (with err filled) when the file
 * cannot be opened; the previous target then stays in place.
 */
int ss_log_configure(enum ss_log_level level, const char *target,
                     struct ss_errbuf *err);

/* True when a message at level would be written. */
bool ss_log_enabled(enum ss_log_level level);

void ss_log(enum ss_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

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
 * parent releases it, child re-initialises it.
 */
void ss_log_fork_prepare(void);
void ss_log_fork_parent(void);
void ss_log_fork_child(void);

#endif
