/*
 * test_fips.c - the FIPS library context (fips.c): the reasons a provider
 * that does not load is refused with, that a failure is tried again, that
 * OpenSSL's default context is left alone, and, when the FIPS provider
 * tools/build-fips built is named by SECSHIM_TEST_FIPS_DIR (test/fips/run
 * does that), what the context holds. Without it that last test is
 * skipped, never passed.
 *
 * The context is process-global and kept once made: the test that makes
 * one runs last.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/provider.h>

#include "secshim/fips.h"
#include "testutil.h"

/* A directory that holds no fips.so. */
static const char *no_module_dir(void)
{
    static char dir[512];
    snprintf(dir, sizeof(dir), "%s", tu_write_file("not-a-module", "x\n"));
    return dirname(dir);
}

static void expect_refused(const char *needle)
{
    OSSL_LIB_CTX *ctx = (OSSL_LIB_CTX *)1;
    struct ss_errbuf err = {{0}};
    int rc = ss_fips_libctx(&ctx, &err);
    assert_null(ctx);
    if (rc != SS_ERR_UNSUPPORTED || strstr(err.msg, needle) == NULL)
        fail_msg("got %s: %s (expected '%s')", ss_strerror(rc), err.msg,
                 needle);
}

/* OpenSSL's default context still offers what only the default provider
 * has. */
static void expect_default_context_intact(void)
{
    EVP_MD *md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    EVP_CIPHER *chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    assert_non_null(md5);
    assert_non_null(chacha);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_MD_get0_provider(md5)),
                        "default");
    EVP_MD_free(md5);
    EVP_CIPHER_free(chacha);
}

static void test_missing_module_is_named(void **state)
{
    (void)state;
    unsetenv(SS_FIPS_CONF_ENV);
    const char *dir = no_module_dir();
    setenv("OPENSSL_MODULES", dir, 1);
    char needle[700];
    snprintf(needle, sizeof(needle), "the OpenSSL FIPS provider is not "
             "usable: the provider does not load: the module cannot be "
             "loaded (filename(%s/fips.so)", dir);
    expect_refused(needle);
    expect_refused("(OpenSSL's default), modules from ");
    snprintf(needle, sizeof(needle), "modules from %s (OPENSSL_MODULES)",
             dir);
    expect_refused(needle);
    expect_default_context_intact();
}

static void test_missing_configuration_is_named(void **state)
{
    (void)state;
    setenv(SS_FIPS_CONF_ENV, "/nonexistent/secshim-fips.cnf", 1);
    setenv("OPENSSL_MODULES", no_module_dir(), 1);
    expect_refused("the OpenSSL FIPS provider is not usable: its "
                   "configuration does not load: ");
    expect_refused("; configuration /nonexistent/secshim-fips.cnf "
                   "(SECSHIM_FIPS_CONF), modules from ");
    expect_default_context_intact();
}

/* A failure is not remembered: the module appears, the next call loads
 * it (the last test shows that with a real one); here: each call tries
 * again and reports the cause of its own attempt. */
static void test_failure_is_tried_again(void **state)
{
    (void)state;
    setenv(SS_FIPS_CONF_ENV, "/nonexistent/a.cnf", 1);
    expect_refused("/nonexistent/a.cnf (SECSHIM_FIPS_CONF)");
    setenv(SS_FIPS_CONF_ENV, "/nonexistent/b.cnf", 1);
    expect_refused("/nonexistent/b.cnf (SECSHIM_FIPS_CONF)");
}

static void test_context_holds_fips_and_base_only(void **state)
{
    (void)state;
    const char *dir = getenv("SECSHIM_TEST_FIPS_DIR");
    if (dir == NULL || dir[0] == '\0') {
        print_message("SKIP: SECSHIM_TEST_FIPS_DIR names no FIPS provider "
                      "build (test/fips/run sets it)\n");
        skip();
    }
    char conf[600], modules[600];
    snprintf(conf, sizeof(conf), "%s/openssl-fips.cnf", dir);
    snprintf(modules, sizeof(modules), "%s/modules", dir);
    setenv(SS_FIPS_CONF_ENV, conf, 1);
    setenv("OPENSSL_MODULES", modules, 1);
    OSSL_LIB_CTX *ctx = NULL, *again = NULL;
    struct ss_errbuf err = {{0}};
    if (ss_fips_libctx(&ctx, &err) != SS_OK)
        fail_msg("%s", err.msg);
    assert_non_null(ctx);
    assert_int_equal(ss_fips_libctx(&again, &err), SS_OK);
    assert_ptr_equal(ctx, again);
    assert_int_equal(OSSL_PROVIDER_available(ctx, "fips"), 1);
    assert_int_equal(OSSL_PROVIDER_available(ctx, "base"), 1);
    assert_int_equal(OSSL_PROVIDER_available(ctx, "default"), 0);
    assert_int_equal(EVP_default_properties_is_fips_enabled(ctx), 1);
    EVP_MD *sha = EVP_MD_fetch(ctx, "SHA2-256", NULL);
    assert_non_null(sha);
    assert_string_equal(OSSL_PROVIDER_get0_name(EVP_MD_get0_provider(sha)),
                        "fips");
    EVP_MD_free(sha);
    assert_null(EVP_MD_fetch(ctx, "MD5", NULL));
    assert_null(EVP_CIPHER_fetch(ctx, "ChaCha20-Poly1305", NULL));
    /* And the process's default context is still OpenSSL's default. */
    assert_int_equal(OSSL_PROVIDER_available(NULL, "fips"), 0);
    assert_int_equal(EVP_default_properties_is_fips_enabled(NULL), 0);
    expect_default_context_intact();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_module_is_named),
        cmocka_unit_test(test_missing_configuration_is_named),
        cmocka_unit_test(test_failure_is_tried_again),
        cmocka_unit_test(test_context_holds_fips_and_base_only),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
