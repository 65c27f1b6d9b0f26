/*
 * log.c - leveled logging (see log.h).
 *
 * Output is one write() per line to the log's own descriptor (through the
 * ss_log_io the host installed: the shim's uses the real write on a
 * descriptor it owns), or syslog. Never stdio: a program may have made
 * stderr's stream something else.
 */
#include "secshim/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

enum log_target { TARGET_STDERR, TARGET_SYSLOG, TARGET_FILE };

static int default_take(int fd)
{
    return fd;
}

static void default_drop(int fd)
{
    if (fd > STDERR_FILENO)
        close(fd);
}

static const struct ss_log_io default_io = {default_take, default_drop,
                                            write};

/* Guards target, log_fd, io and the syslog openlog state; held only while
 * one line is written, and nothing else is taken under it. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_target target = TARGET_STDERR;
static int log_fd = STDERR_FILENO;
static const struct ss_log_io *io = &default_io;
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
    int opened = -1;
    enum log_target next = TARGET_STDERR;
    if (strcmp(where, "syslog") == 0) {
        next = TARGET_SYSLOG;
    } else if (strcmp(where, "stderr") != 0) {
        opened = open(where, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (opened < 0)
            return ss_fail(err, SS_ERR_IO, "cannot open log file %s: %s",
                           where, strerror(errno));
        next = TARGET_FILE;
    }
    pthread_mutex_lock(&log_lock);
    bool same_stderr = next == TARGET_STDERR && target == TARGET_STDERR;
    if (!same_stderr) {
        if (target != TARGET_SYSLOG && log_fd >= 0)
            io->drop(log_fd);
        log_fd = next == TARGET_FILE    ? io->take(opened)
                 : next == TARGET_STDERR ? io->take(STDERR_FILENO)
                                         : -1;
    }
    target = next;
    if (target == TARGET_SYSLOG)
        openlog("secshim", LOG_PID, LOG_DAEMON);
    current_level = level;
    pthread_mutex_unlock(&log_lock);
    return SS_OK;
}

void ss_log_set_io(const struct ss_log_io *next)
{
    pthread_mutex_lock(&log_lock);
    io = next;
    if (target != TARGET_SYSLOG && log_fd >= 0)
        log_fd = io->take(log_fd);
    pthread_mutex_unlock(&log_lock);
}

int ss_log_fd(void)
{
    pthread_mutex_lock(&log_lock);
    int fd = log_fd;
    pthread_mutex_unlock(&log_lock);
    return fd;
}

int ss_log_move(void)
{
    pthread_mutex_lock(&log_lock);
    int old = log_fd;
    if (target != TARGET_SYSLOG && log_fd >= 0)
        log_fd = io->take(log_fd);
    int rc = log_fd != old || old < 0 ? SS_OK : SS_ERR_IO;
    pthread_mutex_unlock(&log_lock);
    return rc;
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
    } else if (log_fd >= 0) {
        /* One write per line: lines of several processes on one file
         * stay whole (O_APPEND). */
        char out[1600];
        int n = snprintf(out, sizeof(out), "secshim[%ld]: %s: %s\n",
                         (long)getpid(), level_names[level], line);
        size_t len = n < 0 ? 0 : (size_t)n < sizeof(out) ? (size_t)n
                                                           : sizeof(out) - 1;
        if (len > 0 && out[len - 1] != '\n')
            out[len - 1] = '\n';
        (void)io->write(log_fd, out, len);
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
