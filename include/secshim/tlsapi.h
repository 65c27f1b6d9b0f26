/*
 * tlsapi.h - the engine's TLS half as a library of its own, and the calls
 * between it and the shim's library.
 *
 * libsecshim.so (the shim, with the engine's policy, protocol, log and
 * common modules) links no OpenSSL: a process that never uses an endpoint
 * does not even load libssl and libcrypto, whose loading alone costs about
 * what the whole start of a small program does (docs/design.md, "When TLS
 * contexts are built"). The modules that need OpenSSL (tlsctx, conn,
 * verify, with protocol and common) are built into libsecshim-tls.so,
 * which the shim loads from its own directory before it builds the first
 * context (src/shim/tlslib.c). That library exports one function,
 * SS_TLS_START: it takes the few calls of the shim's library the modules
 * make (struct ss_tls_host), starts OpenSSL, and returns the table of the
 * engine functions listed in SS_TLS_CALLS. In libsecshim.so each of those
 * names is a one-line trampoline through the table, so the shim and
 * policy.c call the engine by its own names. The secshim command and the
 * unit tests link the whole engine (libsecshim-engine.a) and never use
 * this.
 *
 * A function of conn.h, tlsctx.h, verify.h or session.h that the shim or policy.c
 * starts to call is added to SS_TLS_CALLS (libsecshim.so is linked with
 * -z defs: a missing one fails the link); its signature is checked
 * against the module's header on both sides at compile time.
 */
#ifndef SECSHIM_TLSAPI_H
#define SECSHIM_TLSAPI_H

#include <stdbool.h>
#include <stddef.h>

#include "secshim/common.h"
#include "secshim/conn.h"
#include "secshim/log.h"
#include "secshim/policy.h"
#include "secshim/session.h"
#include "secshim/tlsctx.h"
#include "secshim/verify.h"

/* The library's file name, beside libsecshim.so, and its entry point. */
#define SS_TLS_LIBRARY "libsecshim-tls.so"
#define SS_TLS_START "secshim_tls_start"

/* Changed whenever a table below changes shape; a library of another
 * build is refused rather than called through the wrong table. */
#define SS_TLS_ABI 9u

/*
 * Every engine function libsecshim.so reaches in libsecshim-tls.so:
 * X(return type, name, (parameters), (arguments)) for those that return a
 * value, V(name, (parameters), (arguments)) for void ones.
 */
#define SS_TLS_CALLS(X, V)                                                    \
    X(int, ss_tlsctx_new,                                                     \
      (const char *path, const struct ss_endpoint *ep, bool compat,           \
       struct ss_tlsctx **out, struct ss_errbuf *err),                        \
      (path, ep, compat, out, err))                                           \
    V(ss_tlsctx_free, (struct ss_tlsctx *t), (t))                             \
    X(time_t, ss_tlsctx_not_after, (const struct ss_tlsctx *t), (t))          \
    X(int, ss_conn_new,                                                       \
      (struct ss_policy *policy, const struct ss_endpoint *ep, int fd,        \
       const struct ss_io_ops *io, const char *peer_host,                     \
       struct ss_conn **out, struct ss_errbuf *err),                          \
      (policy, ep, fd, io, peer_host, out, err))                              \
    V(ss_conn_set_fd, (struct ss_conn *c, int fd), (c, fd))                   \
    V(ss_conn_free, (struct ss_conn *c), (c))                                 \
    X(int, ss_conn_handshake, (struct ss_conn *c), (c))                       \
    X(int, ss_conn_read,                                                      \
      (struct ss_conn *c, void *buf, size_t len, bool peek, size_t *nread),   \
      (c, buf, len, peek, nread))                                             \
    X(int, ss_conn_write,                                                     \
      (struct ss_conn *c, const void *buf, size_t len, size_t *nwritten),     \
      (c, buf, len, nwritten))                                                \
    X(int, ss_conn_flush, (struct ss_conn *c), (c))                           \
    X(int, ss_conn_shutdown, (struct ss_conn *c), (c))                        \
    X(size_t, ss_conn_pending, (const struct ss_conn *c), (c))                \
    X(size_t, ss_conn_unsent, (const struct ss_conn *c), (c))                 \
    X(size_t, ss_conn_early_unsent, (const struct ss_conn *c), (c))           \
    X(enum ss_conn_state, ss_conn_state, (const struct ss_conn *c), (c))      \
    X(int, ss_conn_wants, (const struct ss_conn *c), (c))                     \
    X(const char *, ss_conn_error, (const struct ss_conn *c), (c))            \
    X(int, ss_conn_sys_errno, (const struct ss_conn *c), (c))                 \
    X(bool, ss_conn_truncated, (const struct ss_conn *c), (c))                \
    X(const char *, ss_conn_describe,                                         \
      (const struct ss_conn *c, char *buf, size_t len), (c, buf, len))        \
    X(const char *, ss_conn_peer_subject,                                     \
      (const struct ss_conn *c, char *buf, size_t len), (c, buf, len))        \
    X(const char *, ss_verify_error_name, (int x509_error), (x509_error))     \
    X(const struct ss_endpoint *, ss_conn_endpoint,                           \
      (const struct ss_conn *c), (c))                                         \
    X(const struct ss_verify_result *, ss_conn_verify_result,                 \
      (const struct ss_conn *c), (c))                                         \
    X(int, ss_conn_handshake_timeout_ms, (const struct ss_conn *c), (c))      \
    X(bool, ss_conn_resumed, (const struct ss_conn *c), (c))                  \
    X(size_t, ss_conn_buffered_input, (const struct ss_conn *c), (c))         \
    X(bool, ss_conn_input_drained, (const struct ss_conn *c), (c))            \
    X(unsigned long long, ss_conn_received, (const struct ss_conn *c), (c))   \
    V(ss_conn_idle, (struct ss_conn *c), (c))                                 \
    X(const char *, ss_relaxation_name, (enum ss_relaxation r), (r))          \
    V(ss_session_fork_prepare, (void), ())                                    \
    V(ss_session_fork_parent, (void), ())                                     \
    V(ss_session_fork_child, (void), ())

#define SS_TLS_FIELD(ret, name, params, args) ret(*name) params;
#define SS_TLS_VFIELD(name, params, args) void(*name) params;

/* What libsecshim-tls.so gives: one pointer per function of the list. */
struct ss_tls_api {
    unsigned abi; /* SS_TLS_ABI */
    SS_TLS_CALLS(SS_TLS_FIELD, SS_TLS_VFIELD)
};

/* What the modules in libsecshim-tls.so call back in libsecshim.so: the
 * log (one state per process), policy references and option messages. */
struct ss_tls_host {
    unsigned abi; /* SS_TLS_ABI */
    void (*log)(enum ss_log_level level, const char *fmt, ...);
    bool (*log_enabled)(enum ss_log_level level);
    void (*policy_ref)(struct ss_policy *p);
    void (*policy_unref)(struct ss_policy *p);
    int (*endpoint_fail)(struct ss_errbuf *err, int code, const char *path,
                         const struct ss_endpoint *ep, enum ss_opt opt,
                         const char *fmt, ...);
    /* Registered with OPENSSL_atexit: runs before OpenSSL cleans up. */
    void (*before_openssl_cleanup)(void);
};

/*
 * SS_TLS_START: keeps host (which must outlive the process's use of the
 * library), starts OpenSSL without an atexit cleanup of its own when this
 * is its first start in the process, registers host's
 * before_openssl_cleanup with OPENSSL_atexit, and returns the table; NULL
 * when host is of another build (its abi differs).
 */
typedef const struct ss_tls_api *ss_tls_start_fn(
    const struct ss_tls_host *host);

/* Defined in libsecshim-tls.so alone (src/tlslib/entry.c); the shim finds
 * it with dlsym(SS_TLS_START), never by linking. */
ss_tls_start_fn secshim_tls_start;

#endif
