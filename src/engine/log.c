/*
 * log.c - leveled logging (see log.h).
 *
 * Output goes through stdio or syslog, which use libc's internal write and
 * send, so logging from inside the shim never re-enters its interposed
 * functions.
 */
#include "secshim/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

enum log_target { TARGET_STDERR, TARGET_SYSLOG, TARGET_FILE };

/* Guards target, file and the syslog openlog state; held only while one
 * line is written, and nothing else is taken under it. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_target target = TARGET_STDERR;
static FILE *file;
/* Read without the lock: a stale level only misplaces one line. */
static _Atomic int current_level = SS_LOG_WARNING;

static const char *const level_names[] = {"error", "warning", "info",
                                          "debug"};

int ss_log_level_parse(const char *name, enum ss_log_level *out)
{
    for (int i = SS_LOG_ERROR; i <= SS_LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum ss_log_level)i;
            return SS_OK;
        }
    }
    return SS_ERR_INVAL;
}

int ss_log_configure(enum ss_log_level level, const char *where,
                     struct ss_errbuf *err)
{
    FILE *opened = NULL;
    enum log_target next = TARGET_STDERR;
    if (strcmp(where, "syslog") == 0) {
        next = TARGET_SYSLOG;
    } else if (strcmp(where, "stderr") != 0) {
        opened = fopen(where, "ae");
        if (opened == NULL)
            return ss_fail(err, SS_ERR_IO, "cannot open log file %s: %s",
                           where, strerror(errno));
        setvbuf(opened, NULL, _IOLBF, 0);
        next = TARGET_FILE;
    }
    pthread_mutex_lock(&log_lock);
    if (file != NULL)
        fclose(file);
    file = opened;
    target = next;
    if (target == TARGET_SYSLOG)
        openlog("secshim", LOG_PID, LOG_DAEMON);
    current_level = level;
    pthread_mutex_unlock(&log_lock);
    return SS_OK;
}

bool ss_log_enabled(enum ss_log_level level)
{
    return (int)level <= current_level;
}

static int syslog_priority(enum ss_log_level level)
{
    switch (level) {
    case SS_LOG_ERROR: return LOG_ERR;
    case SS_LOG_WARNING: return LOG_WARNING;
    case SS_LOG_INFO: return LOG_INFO;
    default: return LOG_DEBUG;
    }
}

void ss_log(enum ss_log_level level, const char *fmt, ...)
{
    if (!ss_log_enabled(level))
        return;
    int saved_errno = errno;
    char line[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&log_lock);
    if (target == TARGET_SYSLOG) {
        syslog(syslog_priority(level), "%s", line);
    } else {
        FILE *out = target == TARGET_FILE ? file : stderr;
        fprintf(out, "secshim[%ld]: %s: %s\n", (long)getpid(),
                level_names[level], line);
        fflush(out);
    }
    pthread_mutex_unlock(&log_lock);
    errno = saved_errno;
}

void ss_log_fork_prepare(void)
{
    pthread_mutex_lock(&log_lock);
}

void ss_log_fork_parent(void)
{
    pthread_mutex_unlock(&log_lock);
}

void ss_log_fork_child(void)
{
    pthread_mutex_init(&log_lock, NULL);
}
