/*
 * common.h - the engine's one error convention and its guard macros.
 *
 * Every engine function returns SS_OK (0) on success or a negative ss_err on
 * failure, never -1-and-errno. The connection state machine additionally
 * returns the small positive results in ss_progress. Human-readable detail
 * goes into a caller-supplied struct ss_errbuf, so the shim and the CLI can
 * print one sentence without the engine knowing who reads it.
 */
#ifndef SECSHIM_COMMON_H
#define SECSHIM_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum ss_err {
    SS_OK = 0,
    SS_ERR_NOMEM = -1,       /* allocation failed */
    SS_ERR_CONFIG = -2,      /* the policy is invalid */
    SS_ERR_IO = -3,          /* a file is missing or unreadable */
    SS_ERR_TLS = -4,         /* OpenSSL failed (handshake, context setup) */
    SS_ERR_VERIFY = -5,      /* the peer's certificate chain was rejected */
    SS_ERR_PROTOCOL = -6,    /* no protocol version both sides allow */
    SS_ERR_STATE = -7,       /* call not valid in the connection's state */
    SS_ERR_CLOSED = -8,      /* writing after close_notify, or to a dead peer */
    SS_ERR_SYSCALL = -9,     /* the OS refused; see ss_conn_sys_errno() */
    SS_ERR_INVAL = -10,      /* bad argument */
    SS_ERR_TIMEOUT = -11,    /* the handshake ran past handshake-timeout */
    SS_ERR_UNSUPPORTED = -12, /* the linked OpenSSL cannot do what was asked */
    SS_ERR_TRUNCATED = -13   /* TCP EOF without close_notify (the stream may
                                be cut short; tls-unexpected-eof) */
};

/* Positive results of the connection state machine (see conn.h). */
enum ss_progress {
    SS_WANT_READ = 1,  /* call again when the socket is readable */
    SS_WANT_WRITE = 2, /* call again when the socket is writable */
    SS_EOF = 3         /* the peer closed the TLS stream */
};

/* A short static name for an ss_err ("SS_ERR_VERIFY"). */
const char *ss_strerror(int err);

/* One human-readable sentence describing the last failure. */
struct ss_errbuf {
    char msg[1024];
};

/*
 * Formats msg into err (which may be NULL) and returns code, so failure paths
 * read `return ss_fail(err, SS_ERR_IO, "cannot open %s", path);`.
 */
int ss_fail(struct ss_errbuf *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Like ss_fail, then appends ": " and OpenSSL's error queue as one sentence
 * (the queue is consumed). Returns code, or SS_ERR_NOMEM when the queue
 * says an allocation failed (that, not code, is why the call failed).
 */
int ss_fail_openssl(struct ss_errbuf *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Drains OpenSSL's error queue into buf as one sentence ("no error" when the
 * queue is empty). Returns buf.
 */
char *ss_openssl_errors(char *buf, size_t len);

/* ss_openssl_errors, and *nomem set when an entry of the queue was an
 * allocation failure (ERR_R_MALLOC_FAILURE). Returns buf. */
char *ss_openssl_errors_nomem(char *buf, size_t len, bool *nomem);

/*
 * Calls fn(file, index, arg) for each entry of a comma-separated list of
 * file names (certificate, trusted-ca, tls-crl), in order, with the
 * blanks around each entry removed; an empty entry is passed as "" (the
 * callback decides). Returns SS_OK, the first negative result of fn, or
 * SS_ERR_NOMEM.
 */
int ss_for_each_file(const char *list,
                     int (*fn)(const char *file, size_t index, void *arg),
                     void *arg);

/* Return early with the callee's negative error code. */
#define SS_GUARD(expr)                  \
    do {                                \
        int ss_guard_rc_ = (expr);      \
        if (ss_guard_rc_ < 0)           \
            return ss_guard_rc_;        \
    } while (0)

/*
 * Whether name[0..len) is a DNS name as the policy and allow-peer take
 * them: labels of ASCII letters, digits, '-' and '_' (internal names use
 * it), 1..63 characters each, 253 in all, no trailing dot (callers that
 * allow one strip it first).
 */
bool ss_dns_name_valid(const char *name, size_t len);

/* Return code when cond does not hold. */
#define SS_ENSURE(cond, code)  \
    do {                       \
        if (!(cond))           \
            return (code);     \
    } while (0)

/*
 * For OpenSSL calls that return 1 on success: on anything else, fill err
 * with what and OpenSSL's queue, and return code.
 */
#define SS_GUARD_OSSL(call, err, code, ...)                          \
    do {                                                             \
        if ((call) != 1)                                             \
            return ss_fail_openssl((err), (code), __VA_ARGS__);      \
    } while (0)

#endif
