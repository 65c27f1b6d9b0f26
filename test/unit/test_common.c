/*
 * test_common.c - the engine's shared pieces: error names, ss_fail and
 * ss_fail_openssl, the OpenSSL error sentence, ss_for_each_file, and the
 * compatibility-mode switch frozen at its first read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "secshim/common.h"
#include "secshim/compat.h"

static void test_error_names(void **state)
{
    (void)state;
    assert_string_equal(ss_strerror(SS_OK), "SS_OK");
    assert_string_equal(ss_strerror(SS_ERR_VERIFY), "SS_ERR_VERIFY");
    assert_string_equal(ss_strerror(SS_ERR_UNSUPPORTED),
                        "SS_ERR_UNSUPPORTED");
    assert_string_equal(ss_strerror(-999), "SS_ERR_UNKNOWN");
}

static void test_fail_formats_and_returns_code(void **state)
{
    (void)state;
    struct ss_errbuf err = {""};
    assert_int_equal(ss_fail(&err, SS_ERR_IO, "cannot open %s", "x.pem"),
                     SS_ERR_IO);
    assert_string_equal(err.msg, "cannot open x.pem");
    /* No buffer: the code still comes back. */
    assert_int_equal(ss_fail(NULL, SS_ERR_CONFIG, "ignored"), SS_ERR_CONFIG);
}

static void test_openssl_queue_as_one_sentence(void **state)
{
    (void)state;
    char buf[256];
    ERR_clear_error();
    assert_string_equal(ss_openssl_errors(buf, sizeof(buf)),
                        "no error reported by OpenSSL");
    /* Make OpenSSL fail for real: a cipher list it does not know. */
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_cipher_list(ctx, "NO-SUCH-CIPHER"), 0);
    SSL_CTX_free(ctx);
    struct ss_errbuf err = {""};
    assert_int_equal(ss_fail_openssl(&err, SS_ERR_TLS, "cipher-list %s",
                                     "NO-SUCH-CIPHER"),
                     SS_ERR_TLS);
    assert_non_null(strstr(err.msg, "cipher-list NO-SUCH-CIPHER: "));
    assert_non_null(strstr(err.msg, "no cipher match"));
    /* The queue was consumed. */
    assert_int_equal(ERR_peek_error(), 0);
}

/* Collects what ss_for_each_file hands over, "|"-joined. */
struct seen {
    char text[256];
    size_t calls;
    size_t stop_at; /* return an error at this call (0: never) */
};

static int collect(const char *file, size_t index, void *arg)
{
    struct seen *s = arg;
    assert_int_equal(index, s->calls);
    s->calls++;
    size_t used = strlen(s->text);
    snprintf(s->text + used, sizeof(s->text) - used, "%s%s",
             used > 0 ? "|" : "", file);
    return s->stop_at != 0 && s->calls == s->stop_at ? SS_ERR_IO : SS_OK;
}

static void test_for_each_file(void **state)
{
    (void)state;
    struct seen s = {"", 0, 0};
    assert_int_equal(ss_for_each_file(" a.pem ,\tb.pem,c.pem\t", collect, &s),
                     SS_OK);
    assert_string_equal(s.text, "a.pem|b.pem|c.pem");

    /* Empty entries are handed over (the caller refuses them). */
    struct seen e = {"", 0, 0};
    assert_int_equal(ss_for_each_file("a.pem,, b.pem,", collect, &e), SS_OK);
    assert_int_equal(e.calls, 4);
    assert_string_equal(e.text, "a.pem||b.pem|");

    /* The first error stops the walk and is returned. */
    struct seen f = {"", 0, 2};
    assert_int_equal(ss_for_each_file("a,b,c", collect, &f), SS_ERR_IO);
    assert_int_equal(f.calls, 2);
    assert_string_equal(f.text, "a|b");
}

static void test_compat_mode_frozen_at_first_read(void **state)
{
    (void)state;
    setenv("GCTI_SECPACK_COMPAT_MODE", "1", 1);
    assert_true(ss_compat_mode());
    unsetenv("GCTI_SECPACK_COMPAT_MODE");
    assert_true(ss_compat_mode());
    setenv("GCTI_SECPACK_COMPAT_MODE", "0", 1);
    assert_true(ss_compat_mode());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_fail_formats_and_returns_code),
        cmocka_unit_test(test_openssl_queue_as_one_sentence),
        cmocka_unit_test(test_for_each_file),
        cmocka_unit_test(test_compat_mode_frozen_at_first_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
