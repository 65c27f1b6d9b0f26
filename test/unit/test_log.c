/*
 * test_log.c - leveled logging: level names, the line format, the level
 * filter, errno kept across a log call, and a file target that cannot be
 * opened leaving the previous target in place.
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
    char expect[128];
    snprintf(expect, sizeof(expect), "secshim[%ld]: info: shown 1\n",
             (long)getpid());
    const char *text = log_text();
    assert_non_null(strstr(text, expect));
    snprintf(expect, sizeof(expect), "secshim[%ld]: error: shown too\n",
             (long)getpid());
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_file_target_format_and_filter),
        cmocka_unit_test(test_errno_kept),
        cmocka_unit_test(test_unopenable_file_keeps_target),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
