/*
 * tlslib.c - the engine's TLS half, loaded at its first need.
 *
 * libsecshim.so links no OpenSSL (include/secshim/tlsapi.h says why and
 * how): shim_tls_load() dlopens libsecshim-tls.so from the directory this
 * library was loaded from (shim_tls_locate), once, before the first TLS
 * context is built, and keeps the table it returns. Every engine function of SS_TLS_CALLS is
 * defined here, under its own name, as a one-line trampoline through that
 * table, so the shim and policy.c call the engine as if it were linked in.
 * No trampoline is reached before the load: contexts and connections are
 * only made after it succeeded.
 */
#include "tlslib.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secshim/tlsapi.h"

/* The table, published with release once the library started; read with
 * acquire by every trampoline. */
static const struct ss_tls_api *_Atomic api;

/* libsecshim-tls.so beside this library, as an absolute path: set by
 * shim_tls_locate at start, read by shim_tls_load. */
static char tls_path[PATH_MAX];

/*
 * The directory is this library's own, as the dynamic linker named it
 * (dladdr): absolute when LD_PRELOAD gave an absolute path, and then
 * nothing more is done; a relative one is made absolute against the
 * working directory now, before the program can change it. Not $ORIGIN
 * in dlopen: that is the directory of dlopen's caller, which is not this
 * library when another preloaded one interposes dlopen (AddressSanitizer
 * does).
 */
void shim_tls_locate(void)
{
    Dl_info self;
    if (dladdr((void *)&tls_path, &self) == 0 || self.dli_fname == NULL)
        return; /* shim_tls_load then says the library cannot be found */
    const char *slash = strrchr(self.dli_fname, '/');
    size_t dir_len = slash != NULL ? (size_t)(slash - self.dli_fname) : 0;
    char cwd[PATH_MAX] = "";
    if (self.dli_fname[0] != '/' && getcwd(cwd, sizeof(cwd)) == NULL)
        return;
    int n = snprintf(tls_path, sizeof(tls_path), "%s%s%.*s%s" SS_TLS_LIBRARY,
                     cwd, cwd[0] != '\0' ? "/" : "", (int)dir_len,
                     self.dli_fname, dir_len > 0 ? "/" : "");
    if (n < 0 || (size_t)n >= sizeof(tls_path))
        tls_path[0] = '\0';
}

/* dlsym returns an object pointer; the union converts it to a function
 * pointer without a cast ISO C leaves undefined (as in real.c). */
union start_sym {
    void *p;
    ss_tls_start_fn *f;
};

int shim_tls_load(void (*before_openssl_cleanup)(void),
                  struct ss_errbuf *err)
{
    static struct ss_tls_host host = {
        .abi = SS_TLS_ABI,
        .log = ss_log,
        .log_enabled = ss_log_enabled,
        .policy_ref = ss_policy_ref,
        .policy_unref = ss_policy_unref,
        .endpoint_fail = ss_endpoint_fail,
    };
    host.before_openssl_cleanup = before_openssl_cleanup;
    if (tls_path[0] == '\0') {
        (void)ss_fail(err, SS_ERR_TLS, "cannot find %s: the directory of "
                      "libsecshim.so is unknown", SS_TLS_LIBRARY);
        return -1;
    }
    void *lib = dlopen(tls_path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        (void)ss_fail(err, SS_ERR_TLS, "cannot load %s: %s", SS_TLS_LIBRARY,
                      dlerror());
        return -1;
    }
    union start_sym start = {.p = dlsym(lib, SS_TLS_START)};
    const struct ss_tls_api *table = start.f != NULL ? start.f(&host) : NULL;
    if (table == NULL || table->abi != SS_TLS_ABI) {
        (void)ss_fail(err, SS_ERR_TLS, "%s is not of this build of "
                      "libsecshim.so", SS_TLS_LIBRARY);
        return -1; /* kept loaded: OpenSSL may have been started */
    }
    atomic_store_explicit(&api, table, memory_order_release);
    return 0;
}

/* The table, or the end of the process: reaching the engine before it was
 * loaded is a bug, and nothing may go on half-made. */
static const struct ss_tls_api *tls(void)
{
    const struct ss_tls_api *t = atomic_load_explicit(&api,
                                                      memory_order_acquire);
    if (t == NULL) {
        ss_log(SS_LOG_ERROR, "internal error: the TLS engine was used "
               "before it was loaded");
        abort();
    }
    return t;
}

#define SS_TLS_TRAMPOLINE(ret, name, params, args)                           \
    ret name params                                                          \
    {                                                                        \
        return tls()->name args;                                             \
    }
#define SS_TLS_VTRAMPOLINE(name, params, args)                               \
    void name params                                                         \
    {                                                                        \
        tls()->name args;                                                    \
    }

SS_TLS_CALLS(SS_TLS_TRAMPOLINE, SS_TLS_VTRAMPOLINE)
