/*
 * test_log.c - leveled logging: level names, the line format, the level
 * filter, errno kept across a log call, and a file target that cannot be
 * opened leaving the previous target in place; the event API's fields
 * (quoting, escaping, the exact line), the rate limit and the reminders
 * (on an injected clock), and the environment's override.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "secshim/log.h"

static char log_path[] = "/tmp/secshim-test-log-XXXXXX";

static int group_setup(void **state)
{
    (void)state;
    int fd = mkstemp(log_path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ss_log_configure(SS_LOG_WARNING, "stderr", NULL);
    unlink(log_path);
    return 0;
}

/* The whole log file, in a static buffer. */
static const char *log_text(void)
{
    static char text[8192];
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void test_level_names(void **state)
{
    (void)state;
    static const char *const names[] = {"error", "warning", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        enum ss_log_level level = SS_LOG_DEBUG;
        assert_int_equal(ss_log_level_parse(names[i], &level), SS_OK);
        assert_int_equal(level, i);
    }
    enum ss_log_level unchanged = SS_LOG_INFO;
    assert_int_equal(ss_log_level_parse("verbose", &unchanged), SS_ERR_INVAL);
    assert_int_equal(ss_log_level_parse("WARNING", &unchanged), SS_ERR_INVAL);
    assert_int_equal(unchanged, SS_LOG_INFO);
}

static void test_file_target_format_and_filter(void **state)
{
    (void)state;
    struct ss_errbuf err = {""};
    assert_int_equal(ss_log_configure(SS_LOG_INFO, log_path, &err), SS_OK);
    assert_true(ss_log_enabled(SS_LOG_INFO));
    assert_false(ss_log_enabled(SS_LOG_DEBUG));
    ss_log(SS_LOG_INFO, "shown %d", 1);
    ss_log(SS_LOG_DEBUG, "hidden %d", 2);
    ss_log(SS_LOG_ERROR, "shown %s", "too");
    /* The sentence, then the fields every line has (time, pid). */
    char expect[128];
    snprintf(expect, sizeof(expect), "secshim[%ld]: info: shown 1 time=",
             (long)getpid());
    const char *text = log_text();
    assert_non_null(strstr(text, expect));
    snprintf(expect, sizeof(expect), "secshim[%ld]: error: shown too time=",
             (long)getpid());
    assert_non_null(strstr(text, expect));
    snprintf(expect, sizeof(expect), " pid=%ld\n", (long)getpid());
    assert_non_null(strstr(text, expect));
    assert_null(strstr(text, "hidden"));
}

static void test_errno_kept(void **state)
{
    (void)state;
    assert_int_equal(ss_log_configure(SS_LOG_DEBUG, log_path, NULL), SS_OK);
    errno = EPROTO;
    ss_log(SS_LOG_WARNING, "a line that must not change errno");
    assert_int_equal(errno, EPROTO);
}

static void test_unopenable_file_keeps_target(void **state)
{
    (void)state;
    assert_int_equal(ss_log_configure(SS_LOG_INFO, log_path, NULL), SS_OK);
    struct ss_errbuf err = {""};
    assert_int_equal(ss_log_configure(SS_LOG_DEBUG,
                                      "/nonexistent-dir/secshim.log", &err),
                     SS_ERR_IO);
    assert_non_null(strstr(err.msg, "cannot open log file "
                                    "/nonexistent-dir/secshim.log"));
    /* Neither the target nor the level changed. */
    assert_false(ss_log_enabled(SS_LOG_DEBUG));
    ss_log(SS_LOG_INFO, "still to the old file");
    assert_non_null(strstr(log_text(), "still to the old file"));
}

/* ---- events, rate limit, override: lines captured through ss_log_io --- */

static char captured[16384];
static size_t captured_len;

static int capture_take(int fd)
{
    return fd;
}

static void capture_drop(int fd)
{
    (void)fd;
}

static ssize_t capture_write(int fd, const void *buf, size_t len)
{
    (void)fd;
    if (captured_len + len < sizeof(captured)) {
        memcpy(captured + captured_len, buf, len);
        captured_len += len;
        captured[captured_len] = '\0';
    }
    return (ssize_t)len;
}

static const struct ss_log_io capture_io = {capture_take, capture_drop,
                                            capture_write};

/* The injected clock: both clocks read fake_ms since 2026-12-01T16:01:00Z
 * (realtime) or since 1000 s (monotonic). */
static int64_t fake_ms;

static int fake_gettime(clockid_t clock, struct timespec *ts)
{
    int64_t base = clock == CLOCK_REALTIME ? 1796140860LL * 1000 : 1000000;
    int64_t ms = base + fake_ms;
    ts->tv_sec = (time_t)(ms / 1000);
    ts->tv_nsec = (long)(ms % 1000) * 1000000L;
    return 0;
}

static void capture_start(enum ss_log_level level)
{
    ss_log_override(NULL, NULL, NULL);
    assert_int_equal(ss_log_configure(level, "stderr", NULL), SS_OK);
    ss_log_set_io(&capture_io);
    ss_log_set_clock(fake_gettime, 0);
    fake_ms = 123;
    captured_len = 0;
    captured[0] = '\0';
}

static const struct ss_log_io plain_io = {capture_take, capture_drop,
                                          write};

static void capture_stop(void)
{
    ss_log_set_clock(NULL, 0);
    ss_log_set_io(&plain_io);
}

/* How many captured lines contain needle. */
static int count_lines(const char *needle)
{
    int n = 0;
    for (const char *line = captured; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        char copy[4096];
        snprintf(copy, sizeof(copy), "%.*s", (int)len, line);
        if (strstr(copy, needle) != NULL)
            n++;
        line += len + (end != NULL);
    }
    return n;
}

static void test_quote(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(ss_log_quote(out, sizeof(out), "plain"), 5);
    assert_string_equal(out, "plain");
    ss_log_quote(out, sizeof(out), "two words");
    assert_string_equal(out, "\"two words\"");
    ss_log_quote(out, sizeof(out), "say \"hi\" \\ bye");
    assert_string_equal(out, "\"say \\\"hi\\\" \\\\ bye\"");
    ss_log_quote(out, sizeof(out), "a\nb\tc\x01");
    assert_string_equal(out, "\"a\\nb\\tc\\x01\"");
    ss_log_quote(out, sizeof(out), "");
    assert_string_equal(out, "\"\"");
    ss_log_quote(out, sizeof(out), "k=v");
    assert_string_equal(out, "\"k=v\"");
    ss_log_quote(out, sizeof(out), "CN=x");
    assert_string_equal(out, "\"CN=x\"");
    /* UTF-8 passes as it is. */
    ss_log_quote(out, sizeof(out), "caf\xc3\xa9");
    assert_string_equal(out, "caf\xc3\xa9");
    /* Cut like snprintf: the length it needs, a NUL within cap. */
    assert_int_equal(ss_log_quote(out, 4, "abcdef"), 6);
    assert_string_equal(out, "abc");
}

static void test_fields(void **state)
{
    (void)state;
    struct ss_log_fields f;
    ss_log_fields_init(&f);
    ss_log_field_endpoint(&f, "srv");
    ss_log_field(&f, "skipped", NULL);
    ss_log_fieldf(&f, "n", "%d", 42);
    ss_log_field_reason(&f, "bad \"thing\"");
    assert_string_equal(f.buf, " endpoint=srv n=42 reason=\"bad \\\"thing\\\"\"");
    assert_int_not_equal(f.rate_key, 0);
    /* A field that does not fit is left out whole. */
    char big[SS_LOG_FIELDS_MAX];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    size_t before = f.len;
    ss_log_field(&f, "big", big);
    assert_int_equal(f.len, before);
    ss_log_field(&f, "after", "ok");
    assert_non_null(strstr(f.buf, "reason=\"bad \\\"thing\\\"\" after=ok"));
}

static void test_time_format(void **state)
{
    (void)state;
    char out[SS_LOG_TIME_LEN];
    struct timespec t = {0, 0};
    assert_string_equal(ss_log_time(out, &t), "1970-01-01T00:00:00.000Z");
    t.tv_sec = 1709208000; /* a leap day */
    t.tv_nsec = 999999999;
    assert_string_equal(ss_log_time(out, &t), "2024-02-29T12:00:00.999Z");
    t.tv_sec = 1796140860;
    t.tv_nsec = 123000000;
    assert_string_equal(ss_log_time(out, &t), "2026-12-01T16:01:00.123Z");
    t.tv_sec = 951868799; /* 2000-02-29T23:59:59, a century leap */
    t.tv_nsec = 0;
    assert_string_equal(ss_log_time(out, &t), "2000-02-29T23:59:59.000Z");
}

static void test_event_line_exact(void **state)
{
    (void)state;
    capture_start(SS_LOG_INFO);
    struct ss_log_fields f;
    ss_log_fields_init(&f);
    ss_log_field_endpoint(&f, "srv");
    ss_log_field(&f, "peer", "127.0.0.1:5555");
    ss_log_field(&f, "direction", "accept");
    ss_log_field(&f, "resumed", "no");
    ss_log_field(&f, "peer_subject", "CN=a b,O=x\"y");
    errno = EPROTO;
    ss_log_event(SS_LOG_INFO, "established", &f,
                 "endpoint '%s': TLS from %s established", "srv",
                 "127.0.0.1:5555");
    assert_int_equal(errno, EPROTO);
    /* A sentence stays one line. */
    ss_log_event(SS_LOG_INFO, "x", NULL, "two\nlines\r");
    ss_log_event(SS_LOG_DEBUG, "hidden", NULL, "not at info");
    char expect[1024];
    snprintf(expect, sizeof(expect),
             "secshim[%ld]: info: endpoint 'srv': TLS from 127.0.0.1:5555 "
             "established time=2026-12-01T16:01:00.123Z pid=%ld "
             "event=established endpoint=srv peer=127.0.0.1:5555 "
             "direction=accept resumed=no peer_subject=\"CN=a b,O=x\\\"y\"\n"
             "secshim[%ld]: info: two\\nlines\\r "
             "time=2026-12-01T16:01:00.123Z pid=%ld event=x\n",
             (long)getpid(), (long)getpid(), (long)getpid(), (long)getpid());
    assert_string_equal(captured, expect);
    capture_stop();
}

/* One failure event of endpoint ep with reason why. */
static void fail_event(const char *ep, const char *why)
{
    struct ss_log_fields f;
    ss_log_fields_init(&f);
    ss_log_field_endpoint(&f, ep);
    ss_log_field_reason(&f, why);
    ss_log_event(SS_LOG_ERROR, "handshake_failed", &f,
                 "endpoint '%s': TLS handshake with 127.0.0.1:1 failed: %s",
                 ep, why);
}

static void test_rate_limit_counts_and_reports(void **state)
{
    (void)state;
    capture_start(SS_LOG_WARNING);
    for (int i = 0; i < 200; i++) {
        fail_event("srv", "certificate verify failed");
        fake_ms += 100; /* 20 s in all */
    }
    assert_int_equal(count_lines("failed: certificate verify failed"), 1);
    /* Another reason, and another endpoint, are their own: at once. */
    fail_event("srv", "no certificate");
    fail_event("other", "certificate verify failed");
    assert_int_equal(count_lines("no certificate"), 1);
    assert_int_equal(count_lines("endpoint 'other'"), 1);
    /* The window ends (60 s after the first line): the next line of the
     * pair says how many were suppressed, and opens a new window. */
    fake_ms = 123 + 60000;
    fail_event("srv", "certificate verify failed");
    assert_int_equal(count_lines("(199 similar lines suppressed in the last "
                                 "60 s) time="), 1);
    assert_int_equal(count_lines(" suppressed=199"), 1);
    fail_event("srv", "certificate verify failed");
    assert_int_equal(count_lines("'srv': TLS handshake with 127.0.0.1:1 "
                                 "failed: certificate verify failed"), 2);
    /* A line without an endpoint and a reason is never limited. */
    for (int i = 0; i < 3; i++)
        ss_log_event(SS_LOG_WARNING, "w", NULL, "unkeyed warning");
    assert_int_equal(count_lines("unkeyed warning"), 3);
    capture_stop();
}

static void test_rate_limit_summary_at_next_event(void **state)
{
    (void)state;
    capture_start(SS_LOG_WARNING);
    for (int i = 0; i < 5; i++)
        fail_event("srv", "flood");
    /* The flood stopped: its count comes with the next event of any kind
     * after the window, as a line of its own. */
    fake_ms += 30000;
    ss_log_event(SS_LOG_WARNING, "other", NULL, "unrelated, inside");
    assert_int_equal(count_lines("similar lines suppressed"), 0);
    fake_ms += 31000;
    ss_log_event(SS_LOG_WARNING, "other", NULL, "unrelated, after");
    assert_int_equal(count_lines("endpoint 'srv': 4 similar lines "
                                 "suppressed in the last 61 s: flood time="),
                     1);
    assert_int_equal(count_lines("event=suppressed endpoint=srv reason=flood "
                                 "of=handshake_failed suppressed=4"), 1);
    /* Said once; and the pair's next line is a first one again. */
    ss_log_event(SS_LOG_WARNING, "other", NULL, "unrelated, again");
    fail_event("srv", "flood");
    assert_int_equal(count_lines("similar lines suppressed"), 1);
    assert_int_equal(count_lines("failed: flood time="), 2);
    capture_stop();
}

static void test_rate_limit_eviction_keeps_counts(void **state)
{
    (void)state;
    capture_start(SS_LOG_WARNING);
    fail_event("srv", "reason 0");
    fail_event("srv", "reason 0"); /* counted */
    fake_ms += 1;
    char why[32];
    for (int i = 1; i <= SS_LOG_RATE_SLOTS; i++) {
        snprintf(why, sizeof(why), "reason %d", i);
        fail_event("srv", why);
        fake_ms += 1;
    }
    /* The table was full: the least recently seen pair (reason 0) made
     * room, its count written first. */
    assert_int_equal(count_lines("1 similar line suppressed in the last 1 s: "
                                 "reason 0"), 1);
    assert_int_equal(count_lines("failed: reason "), SS_LOG_RATE_SLOTS + 1);
    /* reason 0 is new again: logged at once. */
    fail_event("srv", "reason 0");
    assert_int_equal(count_lines("failed: reason 0 time="), 2);
    capture_stop();
}

static void test_reminder(void **state)
{
    (void)state;
    capture_start(SS_LOG_WARNING);
    assert_true(ss_log_reminder_due("expiry:srv", 86400, false));
    fake_ms += 3600 * 1000;
    assert_false(ss_log_reminder_due("expiry:srv", 86400, false));
    assert_true(ss_log_reminder_due("expiry:cli", 86400, false));
    fake_ms += 23 * 3600 * 1000;
    assert_true(ss_log_reminder_due("expiry:srv", 86400, false));
    assert_false(ss_log_reminder_due("expiry:srv", 86400, false));
    assert_true(ss_log_reminder_due("expiry:srv", 86400, true));
    fake_ms += 1000;
    assert_false(ss_log_reminder_due("expiry:srv", 86400, false));
    capture_stop();
}

static void test_env_override(void **state)
{
    (void)state;
    struct ss_errbuf err = {""};
    /* The level wins over the policy's, at every configure. */
    assert_int_equal(ss_log_override("debug", NULL, &err), SS_OK);
    assert_int_equal(ss_log_configure(SS_LOG_WARNING, log_path, NULL), SS_OK);
    assert_true(ss_log_enabled(SS_LOG_DEBUG));
    assert_int_equal(ss_log_configure(SS_LOG_ERROR, log_path, NULL), SS_OK);
    assert_true(ss_log_enabled(SS_LOG_DEBUG));
    assert_int_equal(ss_log_override("error", "", &err), SS_OK);
    assert_int_equal(ss_log_configure(SS_LOG_DEBUG, log_path, NULL), SS_OK);
    assert_false(ss_log_enabled(SS_LOG_WARNING));
    /* An invalid level is said and ignored. */
    assert_int_equal(ss_log_override("verbose", NULL, &err), SS_ERR_INVAL);
    assert_string_equal(err.msg, "SECSHIM_LOG_LEVEL=\"verbose\" is not "
                        "error, warning, info or debug; ignored (the "
                        "policy's level applies)");
    assert_int_equal(ss_log_configure(SS_LOG_INFO, log_path, NULL), SS_OK);
    assert_true(ss_log_enabled(SS_LOG_INFO));
    assert_false(ss_log_enabled(SS_LOG_DEBUG));
    /* The file wins over the policy's target. */
    char other[] = "/tmp/secshim-test-log-env-XXXXXX";
    int fd = mkstemp(other);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ss_log_override(NULL, other, &err), SS_OK);
    assert_int_equal(ss_log_configure(SS_LOG_INFO, log_path, NULL), SS_OK);
    ss_log(SS_LOG_WARNING, "to the environment's file");
    assert_null(strstr(log_text(), "to the environment's file"));
    FILE *f = fopen(other, "r");
    char text[512] = "";
    assert_non_null(f);
    assert_true(fread(text, 1, sizeof(text) - 1, f) > 0);
    fclose(f);
    unlink(other);
    assert_non_null(strstr(text, "to the environment's file"));
    /* One that cannot be opened: said once, dropped, the policy's used. */
    assert_int_equal(ss_log_override(NULL, "/nonexistent-dir/x.log", &err),
                     SS_OK);
    assert_int_equal(ss_log_configure(SS_LOG_INFO, log_path, &err),
                     SS_ERR_INVAL);
    assert_non_null(strstr(err.msg, "SECSHIM_LOG_FILE: cannot open log file "
                                    "/nonexistent-dir/x.log"));
    assert_int_equal(ss_log_configure(SS_LOG_INFO, log_path, &err), SS_OK);
    ss_log(SS_LOG_WARNING, "back to the policy's file");
    assert_non_null(strstr(log_text(), "back to the policy's file"));
    ss_log_override(NULL, NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_file_target_format_and_filter),
        cmocka_unit_test(test_errno_kept),
        cmocka_unit_test(test_unopenable_file_keeps_target),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_event_line_exact),
        cmocka_unit_test(test_rate_limit_counts_and_reports),
        cmocka_unit_test(test_rate_limit_summary_at_next_event),
        cmocka_unit_test(test_rate_limit_eviction_keeps_counts),
        cmocka_unit_test(test_reminder),
        cmocka_unit_test(test_env_override),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
