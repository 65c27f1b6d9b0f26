/*
 * entry.c - libsecshim-tls.so's entry point (include/secshim/tlsapi.h):
 * the table of the engine's TLS functions, OpenSSL's start, and the few
 * calls of the shim's library the modules built in here make (the log,
 * policy references, option messages), forwarded to it.
 *
 * Only secshim_tls_start leaves this library (-fvisibility=hidden); the
 * modules (tlsctx, conn, verify, protocol, common) are the engine's own,
 * unchanged. This file is never part of libsecshim-engine.a, where those
 * calls are the real log.c and policy.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "secshim/tlsapi.h"

/* The shim's calls; set once by secshim_tls_start, before any module of
 * this library runs. */
static const struct ss_tls_host *host;

/* Lines are formatted here and logged whole by the host, so its one log
 * (level, descriptor, lock) takes them; the size is log.c's. */
#define LINE_MAX_LEN 1536

void ss_log(enum ss_log_level level, const char *fmt, ...)
{
    if (!host->log_enabled(level))
        return;
    int saved = errno;
    char line[LINE_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    host->log(level, "%s", line);
    errno = saved;
}

bool ss_log_enabled(enum ss_log_level level)
{
    return host->log_enabled(level);
}

void ss_policy_ref(struct ss_policy *p)
{
    host->policy_ref(p);
}

void ss_policy_unref(struct ss_policy *p)
{
    host->policy_unref(p);
}

int ss_endpoint_fail(struct ss_errbuf *err, int code, const char *path,
                     const struct ss_endpoint *ep, enum ss_opt opt,
                     const char *fmt, ...)
{
    char what[LINE_MAX_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return host->endpoint_fail(err, code, path, ep, opt, "%s", what);
}

#define SS_TLS_ENTRY(ret, name, params, args) .name = name,
#define SS_TLS_VENTRY(name, params, args) .name = name,

static const struct ss_tls_api api = {
    .abi = SS_TLS_ABI,
    SS_TLS_CALLS(SS_TLS_ENTRY, SS_TLS_VENTRY)
};

/*
 * OpenSSL is started here, at the process's first TLS context. The shim's
 * exit flush needs OpenSSL alive, and atexit handlers run in reverse order
 * of registration, after the shim's own (registered by its constructor,
 * before the program's). So: when this is OpenSSL's first start in the
 * process, it registers no atexit cleanup (a process that ends has
 * nothing to free) and the shim's handler keeps its place, after the
 * program's handlers; when the program started OpenSSL earlier, its
 * cleanup would run before the shim's handler, so the flush also runs as
 * OpenSSL's first stop handler (OPENSSL_atexit), while OpenSSL still
 * works. The host's handler does the work once, whichever comes first.
 */
__attribute__((visibility("default"))) const struct ss_tls_api *
secshim_tls_start(const struct ss_tls_host *h)
{
    if (h == NULL || h->abi != SS_TLS_ABI)
        return NULL;
    host = h;
    (void)OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, NULL);
    (void)OPENSSL_atexit(h->before_openssl_cleanup);
    return &api;
}
