/* common.c - error names and the ss_fail helpers (see common.h). */
#include "secshim/common.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "secshim/alloc.h"

const char *ss_strerror(int err)
{
    switch (err) {
    case SS_OK: return "SS_OK";
    case SS_ERR_NOMEM: return "SS_ERR_NOMEM";
    case SS_ERR_CONFIG: return "SS_ERR_CONFIG";
    case SS_ERR_IO: return "SS_ERR_IO";
    case SS_ERR_TLS: return "SS_ERR_TLS";
    case SS_ERR_VERIFY: return "SS_ERR_VERIFY";
    case SS_ERR_PROTOCOL: return "SS_ERR_PROTOCOL";
    case SS_ERR_STATE: return "SS_ERR_STATE";
    case SS_ERR_CLOSED: return "SS_ERR_CLOSED";
    case SS_ERR_SYSCALL: return "SS_ERR_SYSCALL";
    case SS_ERR_INVAL: return "SS_ERR_INVAL";
    case SS_ERR_TIMEOUT: return "SS_ERR_TIMEOUT";
    case SS_ERR_UNSUPPORTED: return "SS_ERR_UNSUPPORTED";
    case SS_ERR_TRUNCATED: return "SS_ERR_TRUNCATED";
    default: return "SS_ERR_UNKNOWN";
    }
}

static void format_into(struct ss_errbuf *err, const char *fmt, va_list ap)
{
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int ss_fail(struct ss_errbuf *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    format_into(err, fmt, ap);
    va_end(ap);
    return code;
}

int ss_fail_openssl(struct ss_errbuf *err, int code, const char *fmt, ...)
{
    char queue[512];
    bool nomem = false;
    ss_openssl_errors_nomem(queue, sizeof(queue), &nomem);
    /* OpenSSL failed because memory ran out: say so, so that the caller
     * treats it as passing (a context build is then tried again). */
    if (nomem)
        code = SS_ERR_NOMEM;
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    format_into(err, fmt, ap);
    va_end(ap);
    size_t used = strlen(err->msg);
    snprintf(err->msg + used, sizeof(err->msg) - used, ": %s", queue);
    return code;
}

char *ss_openssl_errors(char *buf, size_t len)
{
    bool nomem;
    return ss_openssl_errors_nomem(buf, len, &nomem);
}

char *ss_openssl_errors_nomem(char *buf, size_t len, bool *nomem)
{
    size_t used = 0;
    unsigned long e;
    buf[0] = '\0';
    *nomem = false;
    /* Oldest first: the first entry is usually the root cause. */
    while ((e = ERR_get_error()) != 0) {
        if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
            *nomem = true;
        const char *reason = ERR_reason_error_string(e);
        char fallback[32];
        if (reason == NULL) {
            snprintf(fallback, sizeof(fallback), "error %lx", e);
            reason = fallback;
        }
        if (used < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s",
                                     used ? "; " : "", reason);
    }
    if (buf[0] == '\0')
        snprintf(buf, len, "no error reported by OpenSSL");
    return buf;
}

/* p without its leading and trailing blanks (p is modified). */
static char *trim_blanks(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        p[--n] = '\0';
    return p;
}

int ss_for_each_file(const char *list,
                     int (*fn)(const char *file, size_t index, void *arg),
                     void *arg)
{
    char *copy = ss_strdup(list);
    if (copy == NULL)
        return SS_ERR_NOMEM;
    int rc = SS_OK;
    size_t index = 0;
    for (char *p = copy;;) {
        size_t len = strcspn(p, ",");
        bool last = p[len] == '\0';
        p[len] = '\0';
        rc = fn(trim_blanks(p), index++, arg);
        if (rc < 0 || last)
            break;
        p += len + 1;
    }
    free(copy);
    return rc;
}

static bool is_label_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool ss_dns_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!is_label_char(c) || ++label > 63)
            return false;
    }
    return label > 0;
}
