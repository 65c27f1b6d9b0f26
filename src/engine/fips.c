/*
 * fips.c - the private library context of fips140-enabled endpoints
 * (see fips.h; docs/fips.md says what it proves and how an operator
 * points it at a validated provider).
 */
#include "secshim/fips.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/proverr.h>
#include <openssl/provider.h>

/*
 * Guards fips_ctx while it is made: a leaf, nothing else is taken under
 * it (OpenSSL takes its own locks inside). Once set, fips_ctx never
 * changes, and its providers stay loaded for the life of the process.
 * Only taken inside a context build, which holds the policy's build lock:
 * fork waits for that one (src/shim/sock.h), so this is never held at a
 * fork.
 */
static pthread_mutex_t fips_lock = PTHREAD_MUTEX_INITIALIZER;
static OSSL_LIB_CTX *fips_ctx;
/* The loaded provider's name and version ("OpenSSL FIPS Provider
 * 3.0.22"), for `secshim check`; set with fips_ctx, never changed. */
static char fips_description[128];

/* Where the configuration and the module come from, for messages: a
 * wrong path in one of them is the usual cause of a load failure. */
struct fips_source {
    char *conf;              /* OPENSSL_free */
    const char *conf_from;   /* SECSHIM_FIPS_CONF or OpenSSL's default */
    const char *modules;     /* the directory fips.so is looked up in */
    const char *modules_from;
};

static int source_init(struct fips_source *src, struct ss_errbuf *err)
{
    const char *env = secure_getenv(SS_FIPS_CONF_ENV);
    bool named = env != NULL && env[0] != '\0';
    src->conf = named ? OPENSSL_strdup(env) : CONF_get1_default_config_file();
    src->conf_from = named ? SS_FIPS_CONF_ENV : "OpenSSL's default";
    if (src->conf == NULL)
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    src->modules = secure_getenv("OPENSSL_MODULES");
    src->modules_from = "OPENSSL_MODULES";
    if (src->modules == NULL || src->modules[0] == '\0') {
        src->modules = OPENSSL_info(OPENSSL_INFO_MODULES_DIR);
        src->modules_from = "OpenSSL's default";
    }
    if (src->modules == NULL)
        src->modules = "?";
    return SS_OK;
}

/*
 * OpenSSL's queue after a failed step, as words an operator can act on:
 * the module that cannot be opened (with the path dlopen tried, from the
 * error's data), a configuration without the module's fips section, or a
 * self-test that failed (a module changed since fipsinstall, or a
 * module-mac that is not its own), else OpenSSL's first reason. Empties
 * the queue.
 */
static void describe_queue(char *buf, size_t len)
{
    char dso_data[300] = "";
    bool dso = false, self_test = false, no_config = false;
    const char *first = NULL;
    const char *data = NULL;
    int flags = 0;
    unsigned long e;
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        if (first == NULL)
            first = ERR_reason_error_string(e);
        if (ERR_GET_LIB(e) == ERR_LIB_DSO && !dso) {
            dso = true;
            if ((flags & ERR_TXT_STRING) && data != NULL)
                snprintf(dso_data, sizeof(dso_data), "%s", data);
        }
        if (ERR_GET_LIB(e) == ERR_LIB_PROV &&
            ERR_GET_REASON(e) == PROV_R_SELF_TEST_POST_FAILURE)
            self_test = true;
        if (ERR_GET_LIB(e) == ERR_LIB_PROV &&
            ERR_GET_REASON(e) == PROV_R_MISSING_CONFIG_DATA)
            no_config = true;
    }
    if (dso)
        snprintf(buf, len, "the module cannot be loaded (%s)",
                 dso_data[0] != '\0' ? dso_data : "no detail");
    else if (no_config)
        snprintf(buf, len, "the configuration holds no fips section (the "
                 "module-mac that openssl fipsinstall writes into "
                 "fipsmodule.cnf; missing config data)");
    else if (self_test)
        snprintf(buf, len, "its self-test failed: the module is corrupted "
                 "or is not the one its configuration's module-mac was "
                 "made for (self test post failure)");
    else
        snprintf(buf, len, "%s", first != NULL ? first
                                               : "no error reported by "
                                                 "OpenSSL");
}

/* One sentence for a failed step: what, why, and where it looked. */
static int fips_fail(struct ss_errbuf *err, const struct fips_source *src,
                     const char *what)
{
    char why[512];
    describe_queue(why, sizeof(why));
    return ss_fail(err, SS_ERR_UNSUPPORTED,
                   "the OpenSSL FIPS provider is not usable: %s: %s; "
                   "configuration %s (%s), modules from %s (%s)",
                   what, why, src->conf, src->conf_from, src->modules,
                   src->modules_from);
}

/*
 * The context, made whole or not at all. The configuration may activate
 * fips and base itself (fipsmodule.cnf sets activate = 1); loading them
 * again by name only takes another reference, and makes a configuration
 * that merely declares the fips section work too. Nothing here loads
 * the default provider, and "fips=yes" as the context's default property
 * keeps any provider the configuration activated besides them from being
 * fetched.
 */
/* What the provider says it is (OSSL_PROV_PARAM_NAME and _VERSION). */
static void describe_provider(OSSL_PROVIDER *prov, char *buf, size_t len)
{
    const char *name = NULL, *version = NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, &name, 0),
        OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, &version, 0),
        OSSL_PARAM_END,
    };
    if (OSSL_PROVIDER_get_params(prov, params) != 1)
        name = version = NULL;
    snprintf(buf, len, "%s %s", name != NULL ? name : "fips",
             version != NULL ? version : "(version unknown)");
}

static int fips_ctx_new(OSSL_LIB_CTX **out, struct ss_errbuf *err)
{
    struct fips_source src = {NULL, NULL, NULL, NULL};
    SS_GUARD(source_init(&src, err));
    int rc = SS_OK;
    OSSL_PROVIDER *fips = NULL;
    ERR_clear_error();
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    if (ctx == NULL) {
        rc = ss_fail(err, SS_ERR_NOMEM, "out of memory");
    } else if (OSSL_LIB_CTX_load_config(ctx, src.conf) != 1) {
        rc = fips_fail(err, &src, "its configuration does not load");
    } else if ((fips = OSSL_PROVIDER_load(ctx, "fips")) == NULL) {
        rc = fips_fail(err, &src, "the provider does not load");
    } else if (OSSL_PROVIDER_load(ctx, "base") == NULL) {
        rc = fips_fail(err, &src, "the base provider does not load");
    } else if (EVP_default_properties_enable_fips(ctx, 1) != 1) {
        rc = fips_fail(err, &src, "fips=yes cannot be made the default");
    }
    OPENSSL_free(src.conf);
    if (rc < 0) {
        /* Frees the providers loaded into it as well. */
        OSSL_LIB_CTX_free(ctx);
        return rc;
    }
    describe_provider(fips, fips_description, sizeof(fips_description));
    *out = ctx;
    return SS_OK;
}

const char *ss_fips_provider(void)
{
    pthread_mutex_lock(&fips_lock);
    const char *d = fips_ctx != NULL ? fips_description : NULL;
    pthread_mutex_unlock(&fips_lock);
    return d;
}

int ss_fips_libctx(OSSL_LIB_CTX **out, struct ss_errbuf *err)
{
    *out = NULL;
    pthread_mutex_lock(&fips_lock);
    int rc = SS_OK;
    if (fips_ctx == NULL)
        rc = fips_ctx_new(&fips_ctx, err);
    *out = fips_ctx;
    pthread_mutex_unlock(&fips_lock);
    return rc;
}
