/*
 * conn.h - one TLS connection over a socket the engine does not own.
 *
 * A non-blocking state machine (docs/design.md, "The engine owns no
 * descriptor and no blocking"). The engine never blocks, never changes the socket's flags and never closes it: it does its
 * I/O through its own BIO with MSG_DONTWAIT|MSG_NOSIGNAL, via the ss_io_ops
 * it is given (the shim passes the real libc functions). Ciphertext the
 * socket would not take is kept in a bounded outbound buffer, so a record
 * OpenSSL produced is never "half written" from the caller's point of view:
 * ss_conn_write either accepts bytes or asks to wait.
 *
 * Results: SS_OK, SS_WANT_READ / SS_WANT_WRITE (call again when the socket
 * is readable / writable), SS_EOF, or a negative ss_err. A conn is not
 * thread-safe; the shim serialises calls with its own per-connection lock
 * and never holds it across a wait.
 *
 * Waiting: a call answers with what IT waits for, but ciphertext may sit
 * unsent at the same time (ss_conn_unsent() > 0, e.g. a handshake flight
 * or a reply OpenSSL queued while reading). A caller that blocks should
 * wait for ss_conn_wants() (READ and/or WRITE) and call ss_conn_flush()
 * when the socket turns writable; waiting for readability alone can
 * deadlock when the peer needs those bytes before it answers.
 * docs/protocols.md describes the states and messages.
 */
#ifndef SECSHIM_CONN_H
#define SECSHIM_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "secshim/common.h"
#include "secshim/policy.h"
#include "secshim/tlsctx.h"

/* The OS calls the engine's BIO uses. */
struct ss_io_ops {
    ssize_t (*recv)(int fd, void *buf, size_t len, int flags);
    ssize_t (*send)(int fd, const void *buf, size_t len, int flags);
};

/* libc's recv/send; for unit tests and the CLI (not for the shim). */
extern const struct ss_io_ops ss_io_libc;

enum ss_conn_state {
    SS_CONN_HANDSHAKING, /* handshake not finished */
    SS_CONN_OPEN,        /* application data both ways */
    SS_CONN_READ_CLOSED, /* peer sent close_notify (or closed the TCP) */
    SS_CONN_WRITE_CLOSED,/* we sent close_notify; reading still allowed */
    SS_CONN_CLOSED,      /* both directions closed */
    SS_CONN_FAILED       /* handshake, verification or I/O failed */
};

/* Bounds of the two buffers the conn keeps (bytes). */
#define SS_CONN_EARLY_WRITE_MAX (64 * 1024)
#define SS_CONN_OUTBUF_MAX (64 * 1024)

struct ss_conn;

/*
 * Creates a connection for ep (which must be enabled) over fd, taking a
 * reference on policy. For a connect endpoint, peer_host is the name the
 * program resolved or the peer's address as text: it is sent as SNI (when
 * a name) and checked per tls-target-name-check; ep->target_name overrides
 * it. For a listen endpoint peer_host is only used in messages. Returns
 * SS_OK with *out, SS_ERR_NOMEM or SS_ERR_TLS; SS_ERR_INVAL when ep has no
 * TLS context or a connect endpoint has neither peer_host nor
 * tls-target-name. policy may be NULL (the caller then keeps ep alive).
 */
int ss_conn_new(struct ss_policy *policy, const struct ss_endpoint *ep,
                int fd, const struct ss_io_ops *io, const char *peer_host,
                struct ss_conn **out, struct ss_errbuf *err);

/* Moves the connection to another descriptor of the same socket (the
 * caller made it with dup and retires the old one). */
void ss_conn_set_fd(struct ss_conn *c, int fd);

/* Frees everything; sends nothing (see ss_conn_shutdown). NULL allowed. */
void ss_conn_free(struct ss_conn *c);

/*
 * Advances the handshake and flushes buffered output. SS_OK when the
 * handshake is complete (early writes flushed into the outbound buffer),
 * SS_WANT_READ/SS_WANT_WRITE, or SS_ERR_VERIFY / SS_ERR_PROTOCOL /
 * SS_ERR_TLS / SS_ERR_SYSCALL / SS_ERR_CLOSED; ss_conn_error() then says
 * why in one sentence.
 */
int ss_conn_handshake(struct ss_conn *c);

/*
 * Reads up to len plaintext bytes (peek: leave them buffered). SS_OK with
 * *nread > 0, SS_EOF (peer closed; *nread = 0), SS_WANT_*, or an error
 * (SS_ERR_TRUNCATED: TCP EOF without close_notify and the endpoint's
 * tls-unexpected-eof is "error").
 * Drives the handshake first when needed.
 */
int ss_conn_read(struct ss_conn *c, void *buf, size_t len, bool peek,
                 size_t *nread);

/*
 * Accepts up to len plaintext bytes. SS_OK with 0 < *nwritten <= len, or
 * SS_WANT_* when nothing could be accepted, or an error (SS_ERR_CLOSED after
 * our close_notify or the peer's reset). Before the handshake ends, bytes
 * go to the early-write buffer (at most SS_CONN_EARLY_WRITE_MAX). Accepted
 * bytes may still sit in the outbound buffer: see ss_conn_flush.
 */
int ss_conn_write(struct ss_conn *c, const void *buf, size_t len,
                  size_t *nwritten);

/* Sends buffered ciphertext: SS_OK when none is left, SS_WANT_WRITE, or
 * an error. */
int ss_conn_flush(struct ss_conn *c);

/* Queues close_notify and flushes: SS_OK, SS_WANT_WRITE, or an error. */
int ss_conn_shutdown(struct ss_conn *c);

/* Plaintext bytes readable now without touching the socket. */
size_t ss_conn_pending(const struct ss_conn *c);

/*
 * Ciphertext OpenSSL has read from the socket and not yet opened, beyond
 * the record it is on (read-ahead: one recv can take several records);
 * with no plaintext pending, the unread rest of a record counts as 1. Such
 * bytes are in no kernel queue, so a caller deciding readiness must
 * make the engine look (a read or a one-byte peek) instead of waiting for
 * the socket; a look that answers SS_WANT_READ (a partial record) means
 * waiting for the socket is right.
 */
size_t ss_conn_buffered_input(const struct ss_conn *c);

/* Ciphertext bytes taken from the socket so far. A caller that saw a
 * value and sees it again knows the engine has read nothing the kernel
 * queued in between (epoll's edge accounting, docs/shim.md "epoll"). */
unsigned long long ss_conn_received(const struct ss_conn *c);

/*
 * Whether nothing is left to read without the peer sending more: OpenSSL
 * holds no plaintext or ciphertext and its last recv found the kernel's
 * queue empty (it returned less than asked, or EAGAIN). A read that has
 * data may then return it without another recv, if that last recv was
 * its own (ss_conn_received moved during the read): an older one may
 * predate bytes that came since. A blocking read with none may wait for
 * the socket first: plain TCP's read sees the same queue at the same
 * moment.
 */
bool ss_conn_input_drained(const struct ss_conn *c);

/*
 * The caller is about to wait for the peer (nothing to read): OpenSSL's
 * record buffers (some 17 KiB each way) go back to the allocator, unless
 * they hold bytes; OpenSSL allocates them again for the next record. So
 * an idle connection holds none, and bulk transfer does not pay an
 * allocation per record (docs/design.md, "Memory and copies"). A read
 * that finds nothing does it itself.
 */
void ss_conn_idle(struct ss_conn *c);

/* Ciphertext bytes waiting in the outbound buffer to be sent; 0 once a
 * send failed (the peer is gone: they never will be). */
size_t ss_conn_unsent(const struct ss_conn *c);

/* Plaintext bytes accepted before the end of the handshake and not yet
 * encrypted (the early-write buffer): a close must still deliver them. */
size_t ss_conn_early_unsent(const struct ss_conn *c);

enum ss_conn_state ss_conn_state(const struct ss_conn *c);

/*
 * What the connection needs from the OS before the next call can progress
 * (SS_WANT_READ | SS_WANT_WRITE as a bit set, 0 for nothing).
 */
int ss_conn_wants(const struct ss_conn *c);

/* The last failure as one sentence, "" when none. */
const char *ss_conn_error(const struct ss_conn *c);

/* errno of the last SS_ERR_SYSCALL. */
int ss_conn_sys_errno(const struct ss_conn *c);

/*
 * True when the peer closed the TCP connection without sending
 * close_notify first (the stream may have been cut short): after SS_EOF
 * with tls-unexpected-eof = "eof", after SS_ERR_TRUNCATED otherwise.
 */
bool ss_conn_truncated(const struct ss_conn *c);

/* Negotiated version and cipher, e.g. "TLSv1.3 TLS_AES_128_GCM_SHA256". */
const char *ss_conn_describe(const struct ss_conn *c, char *buf, size_t len);

/* The peer's certificate's subject in RFC 2253's one-line form
 * ("CN=client,O=Example"), control bytes escaped. Returns buf, or NULL
 * when the peer sent none (or before the handshake's end). */
const char *ss_conn_peer_subject(const struct ss_conn *c, char *buf,
                                 size_t len);

const struct ss_endpoint *ss_conn_endpoint(const struct ss_conn *c);

/* Verification outcome of the handshake (relaxations used included; for
 * a resumed handshake, those of the session's, and resumed set). */
const struct ss_verify_result *ss_conn_verify_result(const struct ss_conn *c);

/* Whether the handshake resumed a session (false before its end and after
 * a failure). */
bool ss_conn_resumed(const struct ss_conn *c);

int ss_conn_handshake_timeout_ms(const struct ss_conn *c);

/*
 * The connection's SSL, for a tool that reports what a handshake
 * negotiated and what the peer presented (`secshim probe`: version,
 * cipher, the peer's chain, what the client offered). Read-only: the
 * caller reads through OpenSSL's getters and never drives it (no read,
 * write or shutdown of its own); the conn owns it. Never NULL for a conn
 * ss_conn_new returned.
 */
SSL *ss_conn_ssl(const struct ss_conn *c);

#endif
