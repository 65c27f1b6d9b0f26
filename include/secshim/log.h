/*
 * log.h - leveled logging to stderr, syslog or a file; never stdout, which
 * belongs to the program the shim is preloaded into.
 *
 * Lines look like "secshim[PID]: LEVEL: message". Logging never changes errno.
 */
#ifndef SECSHIM_LOG_H
#define SECSHIM_LOG_H

#include <stdbool.h>

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
 * fork() support for the shim's pthread_atfork handlers: prepare takes the
 * log lock (last, because shim code may log while holding its own locks),
 * parent releases it, child re-initialises it.
 */
void ss_log_fork_prepare(void);
void ss_log_fork_parent(void);
void ss_log_fork_child(void);

#endif
