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
#include <stdint.h>
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

/* Guards target, log_fd, io, the syslog openlog state, the override and
 * the rate-limit and reminder tables; held only while one line (or an
 * event's few: a summary and the line) is written or an entry looked up,
 * and nothing else is taken under it. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum log_target target = TARGET_STDERR;
static int log_fd = STDERR_FILENO;
static const struct ss_log_io *io = &default_io;
/* Read without the lock: a stale level only misplaces one line. */
static _Atomic int current_level = SS_LOG_WARNING;

static const char *const level_names[] = {"error", "warning", "info",
                                          "debug"};

/* The environment's word (ss_log_override): -1 / "" when it has none.
 * Set before the first configure, from one thread (the shim's start). */
static int override_level = -1;
static char override_target[1024];

/* The clock (a test hook may replace it) and the rate limit's window. */
static int (*log_gettime)(clockid_t, struct timespec *) = clock_gettime;
static int rate_window_ms = SS_LOG_RATE_WINDOW_S * 1000;

/* What the limiter keeps of an (endpoint, reason) pair, and what its
 * summary line needs once the pair's own lines have stopped. */
struct rate_entry {
    uint64_t key;        /* 0: free */
    int64_t window_ms;   /* when the line that opened the window went out */
    int64_t seen_ms;     /* last occurrence, for the eviction rule */
    unsigned suppressed; /* counted in this window, not yet reported */
    enum ss_log_level level;
    const char *event;   /* a string literal of the call site */
    char endpoint[64];
    char reason[192];
};
static struct rate_entry rate_table[SS_LOG_RATE_SLOTS];
static unsigned rate_pending; /* entries with suppressed > 0 */

struct reminder {
    uint64_t key; /* 0: free */
    int64_t at_ms;
};
static struct reminder reminders[SS_LOG_RATE_SLOTS];

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

static int configure(enum ss_log_level level, const char *where,
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

int ss_log_configure(enum ss_log_level level, const char *where,
                     struct ss_errbuf *err)
{
    if (override_level >= 0)
        level = (enum ss_log_level)override_level;
    if (override_target[0] == '\0')
        return configure(level, where, err);
    struct ss_errbuf why = {""};
    if (configure(level, override_target, &why) == SS_OK)
        return SS_OK;
    /* Said once: the environment's file is dropped, and the policy's
     * target is used from now on. */
    override_target[0] = '\0';
    (void)configure(level, where, NULL);
    return ss_fail(err, SS_ERR_INVAL, "SECSHIM_LOG_FILE: %s; ignored (the "
                   "policy's log file applies)", why.msg);
}

int ss_log_override(const char *level, const char *file,
                    struct ss_errbuf *err)
{
    int rc = SS_OK;
    override_level = -1;
    override_target[0] = '\0';
    enum ss_log_level parsed;
    if (level != NULL && *level != '\0') {
        if (ss_log_level_parse(level, &parsed) == SS_OK)
            override_level = (int)parsed;
        else
            rc = ss_fail(err, SS_ERR_INVAL, "SECSHIM_LOG_LEVEL=\"%.64s\" is "
                         "not error, warning, info or debug; ignored (the "
                         "policy's level applies)", level);
    }
    if (file != NULL && *file != '\0') {
        if (strlen(file) < sizeof(override_target))
            snprintf(override_target, sizeof(override_target), "%s", file);
        else if (rc == SS_OK)
            rc = ss_fail(err, SS_ERR_INVAL, "SECSHIM_LOG_FILE is longer than "
                         "%zu bytes; ignored (the policy's file applies)",
                         sizeof(override_target) - 1);
    }
    return rc;
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

/* ---- formatting -------------------------------------------------------- */

/* Appends c to out[*len] when it fits (one byte is kept for the NUL). */
static void put(char *out, size_t cap, size_t *len, char c)
{
    if (*len + 1 < cap)
        out[*len] = c;
    (*len)++;
}

/* Appends s with control bytes (and, in a quoted value, '"' and '\\')
 * escaped: a line stays one line whatever a peer put in its name. */
static void put_escaped(char *out, size_t cap, size_t *len, const char *s,
                        bool quoted)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if (quoted && (c == '"' || c == '\\')) {
            put(out, cap, len, '\\');
            put(out, cap, len, (char)c);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            put(out, cap, len, '\\');
            put(out, cap, len, c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        } else if (c < 0x20 || c == 0x7f) {
            put(out, cap, len, '\\');
            put(out, cap, len, 'x');
            put(out, cap, len, hex[c >> 4]);
            put(out, cap, len, hex[c & 15]);
        } else {
            put(out, cap, len, (char)c);
        }
    }
}

static bool needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return true;
    return false;
}

/* Appends a value, quoted when it needs it. */
static void put_value(char *out, size_t cap, size_t *len, const char *v)
{
    bool quoted = needs_quotes(v);
    if (quoted)
        put(out, cap, len, '"');
    put_escaped(out, cap, len, v, quoted);
    if (quoted)
        put(out, cap, len, '"');
}

size_t ss_log_quote(char *out, size_t cap, const char *value)
{
    size_t len = 0;
    put_value(out, cap, &len, value);
    if (cap > 0)
        out[len < cap ? len : cap - 1] = '\0';
    return len;
}

void ss_log_fields_init(struct ss_log_fields *f)
{
    f->len = 0;
    f->rate_key = 0;
    f->endpoint = NULL;
    f->reason = NULL;
    f->buf[0] = '\0';
}

void ss_log_field(struct ss_log_fields *f, const char *key, const char *value)
{
    if (value == NULL)
        return;
    size_t len = f->len;
    put(f->buf, sizeof(f->buf), &len, ' ');
    for (const char *k = key; *k; k++)
        put(f->buf, sizeof(f->buf), &len, *k);
    put(f->buf, sizeof(f->buf), &len, '=');
    put_value(f->buf, sizeof(f->buf), &len, value);
    /* A field that does not fit is left out whole: a cut value would
     * read as a different one. */
    if (len < sizeof(f->buf))
        f->len = len;
    f->buf[f->len] = '\0';
}

void ss_log_fieldf(struct ss_log_fields *f, const char *key, const char *fmt,
                   ...)
{
    char value[SS_LOG_FIELDS_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    ss_log_field(f, key, value);
}

/* FNV-1a, continued from h; never 0 (0 marks a free slot). */
static uint64_t hash_str(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull; /* "ab","c" is not "a","bc" */
    return h != 0 ? h : 1;
}

#define HASH_START 14695981039346656037ull

void ss_log_field_endpoint(struct ss_log_fields *f, const char *name)
{
    ss_log_field(f, "endpoint", name);
    f->endpoint = name;
}

void ss_log_field_reason(struct ss_log_fields *f, const char *why)
{
    ss_log_field(f, "reason", why);
    f->reason = why;
    if (f->endpoint != NULL && why != NULL)
        f->rate_key = hash_str(hash_str(HASH_START, f->endpoint), why);
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

char *ss_log_time(char *out, const struct timespec *t)
{
    int64_t secs = (int64_t)t->tv_sec;
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, SS_LOG_TIME_LEN, "%04d-%02u-%02uT%02d:%02d:%02d.%03ldZ",
             y % 10000, m % 13, d % 32,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60),
             t->tv_nsec / 1000000 % 1000);
    return out;
}

/* ---- writing ----------------------------------------------------------- */

/* Room for a whole line: PIPE_BUF, so a line on a pipe is never split. */
#define LINE_MAX_LEN 4096
/* The sentence, as before the fields came. */
#define SENTENCE_MAX 1536

static int64_t now_ms(clockid_t clock, struct timespec *ts)
{
    if (log_gettime(clock, ts) != 0) {
        ts->tv_sec = 0;
        ts->tv_nsec = 0;
    }
    return (int64_t)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

/*
 * One line: sentence, then note (a suppressed count's words, or ""), then
 * time, pid, event and fields, then extra (the suppressed= field). Called
 * with log_lock held.
 */
static void emit(enum ss_log_level level, const char *sentence,
                 const char *note, const char *event, const char *fields,
                 const char *extra)
{
    char out[LINE_MAX_LEN];
    size_t len = 0;
    struct timespec rt;
    char when[SS_LOG_TIME_LEN];
    (void)now_ms(CLOCK_REALTIME, &rt);
    if (target != TARGET_SYSLOG) {
        int n = snprintf(out, sizeof(out), "secshim[%ld]: %s: ",
                         (long)getpid(), level_names[level]);
        len = n > 0 ? (size_t)n : 0;
    }
    size_t body = len;
    put_escaped(out, sizeof(out), &len, sentence, false);
    put_escaped(out, sizeof(out), &len, note, false);
    char head[128];
    snprintf(head, sizeof(head), " time=%s pid=%ld%s%s", ss_log_time(when, &rt),
             (long)getpid(), event != NULL ? " event=" : "",
             event != NULL ? event : "");
    for (const char *p = head; *p; p++)
        put(out, sizeof(out), &len, *p);
    for (const char *p = fields; *p; p++)
        put(out, sizeof(out), &len, *p);
    for (const char *p = extra; *p; p++)
        put(out, sizeof(out), &len, *p);
    if (len > sizeof(out) - 2)
        len = sizeof(out) - 2; /* cut, but still one line */
    if (target == TARGET_SYSLOG) {
        out[len] = '\0';
        syslog(syslog_priority(level), "%s", out + body);
        return;
    }
    out[len++] = '\n';
    /* One write per line: lines of several processes on one file stay
     * whole (O_APPEND). */
    if (log_fd >= 0)
        (void)io->write(log_fd, out, len);
}

static void flush_summaries(int64_t now);

void ss_log(enum ss_log_level level, const char *fmt, ...)
{
    if (!ss_log_enabled(level))
        return;
    int saved_errno = errno;
    char line[SENTENCE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    if (rate_pending > 0) {
        struct timespec mono;
        flush_summaries(now_ms(CLOCK_MONOTONIC, &mono));
    }
    emit(level, line, "", NULL, "", "");
    pthread_mutex_unlock(&log_lock);
    errno = saved_errno;
}

/* ---- the rate limit ---------------------------------------------------- */

static bool window_over(const struct rate_entry *e, int64_t now)
{
    return now - e->window_ms >= rate_window_ms;
}

/* Seconds since the window opened, rounded up: every suppressed line
 * falls within them. */
static long window_seconds(const struct rate_entry *e, int64_t now)
{
    return (long)((now - e->window_ms + 999) / 1000);
}

/* The count of a pair whose own lines stopped: one line of its own. */
static void emit_summary(struct rate_entry *e, int64_t now)
{
    char sentence[SENTENCE_MAX];
    snprintf(sentence, sizeof(sentence), "endpoint '%s': %u similar line%s "
             "suppressed in the last %ld s: %s", e->endpoint, e->suppressed,
             e->suppressed == 1 ? "" : "s", window_seconds(e, now),
             e->reason);
    struct ss_log_fields f;
    ss_log_fields_init(&f);
    ss_log_field(&f, "endpoint", e->endpoint);
    ss_log_field(&f, "reason", e->reason);
    ss_log_field(&f, "of", e->event);
    ss_log_fieldf(&f, "suppressed", "%u", e->suppressed);
    emit(e->level, sentence, "", "suppressed", f.buf, "");
    e->suppressed = 0;
    rate_pending--;
}

/* Summaries of every pair whose window ended with a count. */
static void flush_summaries(int64_t now)
{
    for (size_t i = 0; rate_pending > 0 && i < SS_LOG_RATE_SLOTS; i++)
        if (rate_table[i].suppressed > 0 && window_over(&rate_table[i], now))
            emit_summary(&rate_table[i], now);
}

/* The pair's entry: found, or a free one, or the least recently seen
 * (its count written first, so none is lost). */
static struct rate_entry *rate_slot(uint64_t key, int64_t now, bool *fresh)
{
    struct rate_entry *victim = &rate_table[0];
    for (size_t i = 0; i < SS_LOG_RATE_SLOTS; i++) {
        struct rate_entry *e = &rate_table[i];
        if (e->key == key) {
            *fresh = false;
            return e;
        }
        if (victim->key != 0 && (e->key == 0 || e->seen_ms < victim->seen_ms))
            victim = e;
    }
    if (victim->key != 0 && victim->suppressed > 0)
        emit_summary(victim, now);
    memset(victim, 0, sizeof(*victim));
    victim->key = key;
    *fresh = true;
    return victim;
}

/*
 * Whether the event's line goes out now; when it does after a window with
 * a count, note and extra get its words and field. Called with log_lock.
 */
static bool rate_admit(enum ss_log_level level, const char *event,
                       const struct ss_log_fields *f, int64_t now,
                       char *note, size_t note_len, char *extra,
                       size_t extra_len)
{
    bool fresh = false;
    struct rate_entry *e = rate_slot(f->rate_key, now, &fresh);
    e->seen_ms = now;
    if (!fresh && !window_over(e, now)) {
        if (e->suppressed++ == 0)
            rate_pending++;
        return false;
    }
    if (e->suppressed > 0) {
        snprintf(note, note_len, " (%u similar line%s suppressed in the last "
                 "%ld s)", e->suppressed, e->suppressed == 1 ? "" : "s",
                 window_seconds(e, now));
        snprintf(extra, extra_len, " suppressed=%u", e->suppressed);
        e->suppressed = 0;
        rate_pending--;
    }
    e->window_ms = now;
    e->level = level;
    e->event = event;
    snprintf(e->endpoint, sizeof(e->endpoint), "%s", f->endpoint);
    snprintf(e->reason, sizeof(e->reason), "%s", f->reason);
    return true;
}

void ss_log_event(enum ss_log_level level, const char *event,
                  const struct ss_log_fields *f, const char *fmt, ...)
{
    if (!ss_log_enabled(level))
        return;
    int saved_errno = errno;
    char line[SENTENCE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    char note[96] = "", extra[32] = "";
    struct timespec mono;
    pthread_mutex_lock(&log_lock);
    int64_t now = now_ms(CLOCK_MONOTONIC, &mono);
    bool limited = f != NULL && f->rate_key != 0 && level <= SS_LOG_WARNING;
    bool admit = !limited || rate_admit(level, event, f, now, note,
                                        sizeof(note), extra, sizeof(extra));
    if (rate_pending > 0)
        flush_summaries(now);
    if (admit)
        emit(level, line, note, event, f != NULL ? f->buf : "", extra);
    pthread_mutex_unlock(&log_lock);
    errno = saved_errno;
}

bool ss_log_reminder_due(const char *key, int interval_s, bool force)
{
    uint64_t k = hash_str(HASH_START, key);
    struct timespec mono;
    pthread_mutex_lock(&log_lock);
    int64_t now = now_ms(CLOCK_MONOTONIC, &mono);
    struct reminder *slot = &reminders[0];
    for (size_t i = 0; i < SS_LOG_RATE_SLOTS; i++) {
        if (reminders[i].key == k) {
            slot = &reminders[i];
            break;
        }
        if (slot->key != 0 &&
            (reminders[i].key == 0 || reminders[i].at_ms < slot->at_ms))
            slot = &reminders[i];
    }
    bool due = force || slot->key != k ||
               now - slot->at_ms >= (int64_t)interval_s * 1000;
    if (due) {
        slot->key = k;
        slot->at_ms = now;
    }
    pthread_mutex_unlock(&log_lock);
    return due;
}

void ss_log_set_clock(int (*gettime)(clockid_t, struct timespec *),
                      int window_s)
{
    pthread_mutex_lock(&log_lock);
    log_gettime = gettime != NULL ? gettime : clock_gettime;
    rate_window_ms = (window_s > 0 ? window_s : SS_LOG_RATE_WINDOW_S) * 1000;
    memset(rate_table, 0, sizeof(rate_table));
    memset(reminders, 0, sizeof(reminders));
    rate_pending = 0;
    pthread_mutex_unlock(&log_lock);
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
    pthread_mutex_unlock(&log_lock); /* taken by this thread in prepare */
    /* The parent's counts are the parent's to report. */
    memset(rate_table, 0, sizeof(rate_table));
    rate_pending = 0;
}
