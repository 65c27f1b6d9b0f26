/*
 * conn.c - one TLS connection over a socket the engine does not own (see
 * conn.h for the contract; docs/design.md, "The engine owns no descriptor
 * and no blocking" and "Where the handshake happens", for the why).
 *
 * OpenSSL talks to the socket only through this file's BIO:
 *   read   recv(MSG_DONTWAIT) straight into OpenSSL's one-record buffer,
 *          with read-ahead: one recv takes a record's header and body and
 *          what follows; a short one (or EAGAIN) says the kernel's queue
 *          is empty (ss_conn_input_drained), and the ciphertext left
 *          inside OpenSSL is counted for every readiness answer
 *          (ss_conn_buffered_input; docs/design.md "Memory and copies").
 *          EAGAIN is a retry, 0 is EOF, anything else is recorded in the
 *          conn and reported after the SSL call.
 *   write  never refuses: bytes are appended to the outbound buffer, and
 *          every public call sends what it produced in one send() at its
 *          end. So a flight of records (a handshake message, the records
 *          of one large write) leaves as one write() of the program's
 *          would, instead of small sends that Nagle's algorithm holds back
 *          behind the peer's delayed ACK (40 ms a handshake). The copy this
 *          costs is cheaper than the send() per record that avoiding it
 *          takes (measured: docs/design.md, "Memory and copies"). OpenSSL
 *          never sees a write retry, so SSL_write's "retry with the same
 *          arguments" rule can never bind the caller; the bound on
 *          buffered ciphertext is kept by ss_conn_write accepting no new
 *          plaintext while the buffer is full. A send error is recorded
 *          (the peer is gone) and reported after the SSL call.
 * OpenSSL's record buffers are kept while data flows and given back when
 * the connection goes idle (ss_conn_idle), not per record.
 * No locks: the shim serialises calls on one conn.
 */
#include "secshim/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "secshim/alloc.h"
#include "secshim/log.h"
#include "secshim/protocol.h"
#include "secshim/session.h"
#include "secshim/verify.h"

const struct ss_io_ops ss_io_libc = {recv, send};

/* How many of the peer's first bytes are kept for messages. */
#define SS_CONN_FIRST_BYTES 16

/* A growable byte buffer consumed from the front. */
struct bytebuf {
    unsigned char *data;
    size_t off; /* first unconsumed byte */
    size_t len; /* end of the stored bytes */
    size_t cap;
};

struct ss_conn {
    struct ss_policy *policy;      /* referenced; owns ep and ep->tls */
    const struct ss_endpoint *ep;
    int fd;                        /* not owned: never closed here */
    struct ss_io_ops io;
    SSL *ssl;
    enum ss_conn_state state;

    struct bytebuf out;            /* ciphertext the socket did not take */
    struct bytebuf early;          /* plaintext written before the end of
                                      the handshake */
    int hs_want;                   /* SS_WANT_* of the last handshake step */

    /* Set by the BIO, read after each SSL call. */
    int read_err;                  /* 0 or SS_ERR_SYSCALL */
    int write_err;                 /* 0, SS_ERR_CLOSED or SS_ERR_SYSCALL */
    bool tcp_eof;                  /* recv() returned 0 */
    /* The last recv found the kernel's queue empty: it returned less than
     * OpenSSL asked for, or EAGAIN (ss_conn_input_drained). */
    bool rx_drained;
    /* Ciphertext accounting for read-ahead: bytes handed to OpenSSL, and
     * the bytes of the records whose headers it has parsed (msg_seen):
     * the difference is what sits in its buffer beyond the record it is
     * on (ss_conn_buffered_input). */
    unsigned long long rx_total;
    unsigned long long rx_framed;
    bool bio_nomem;                /* the outbound buffer could not grow */
    /* The record buffers were given back (ss_conn_idle) and no SSL call
     * has run since: a second give-back would only cost time. */
    bool buffers_released;

    bool truncated;                /* EOF without close_notify */
    /* The first bytes the peer sent, kept so that a peer that does not
     * speak TLS at all can be named as such (not by OpenSSL's record
     * layer reason, "wrong version number"). */
    unsigned char first[SS_CONN_FIRST_BYTES];
    size_t n_first;
    int fail_code;                 /* the error of SS_CONN_FAILED */
    int sys_errno;
    /* The last failure's sentence, allocated when there is one: most
     * connections never fail, and a server holds thousands (issue 9). */
    char *error;
    /* Where the handshake's verification is recorded: allocated with the
     * conn, given back when the handshake ends (drop_handshake_state),
     * which keeps only the outcome (verified, resumed). */
    struct ss_verify_result *verify_result;
    bool verified;
    bool resumed;
    struct ss_session_link session; /* resumption's view of this conn */
    char peer_host[];              /* for messages, SNI and name checks */
};

/* ---- byte buffers ------------------------------------------------------ */

static size_t buf_used(const struct bytebuf *b)
{
    return b->len - b->off;
}

static int buf_append(struct bytebuf *b, const void *p, size_t n)
{
    if (b->off > 0 && b->off == b->len)
        b->off = b->len = 0;
    if (b->len + n > b->cap && b->off > 0) {
        /* Reuse the consumed front before growing. */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 16 * 1024;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *grown = ss_realloc(b->data, cap);
        if (grown == NULL)
            return SS_ERR_NOMEM;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return SS_OK;
}

/* An emptied buffer gives its memory back: most connections sit idle
 * most of the time, and make bench measured 14 KiB less per held
 * connection (with SSL_MODE_RELEASE_BUFFERS) at no throughput cost
 * beyond the noise of the run. */
static void buf_consume(struct bytebuf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len) {
        free(b->data);
        memset(b, 0, sizeof(*b));
    }
}

static void buf_free(struct bytebuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- errors ------------------------------------------------------------ */

static void set_error(struct ss_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* What ss_conn_error says when the sentence itself could not be kept. */
static const char error_nomem[] = "out of memory recording the error";

static void set_error(struct ss_conn *c, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (c->error != error_nomem)
        free(c->error);
    c->error = ss_strdup(text);
    if (c->error == NULL)
        c->error = (char *)error_nomem;
}

/* Enters SS_CONN_FAILED with code; the message is already in c->error. */
static int conn_failed(struct ss_conn *c, int code)
{
    /* A client handshake that failed may have failed on the session it
     * offered: the next connection starts afresh (docs/protocols.md,
     * "Sessions"). */
    if (c->state == SS_CONN_HANDSHAKING && c->ep->tls->resume &&
        c->ep->tls->role == SS_ROLE_CLIENT)
        ss_session_cache_drop(&c->session.key);
    c->state = SS_CONN_FAILED;
    c->fail_code = code;
    return code;
}

/* Maps a send() errno to the conn's error: a dead peer is SS_ERR_CLOSED. */
static int send_errno_code(int e)
{
    return (e == EPIPE || e == ECONNRESET) ? SS_ERR_CLOSED : SS_ERR_SYSCALL;
}

/* ---- the socket BIO ---------------------------------------------------- */

static BIO_METHOD *sock_method;
static pthread_once_t sock_method_once = PTHREAD_ONCE_INIT;

static ssize_t io_send(struct ss_conn *c, const void *p, size_t n)
{
    ssize_t r;
    do
        r = c->io.send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r;
}

static int bio_sock_write(BIO *bio, const char *data, int len)
{
    struct ss_conn *c = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (len <= 0)
        return 0;
    if (c->write_err != 0)
        return len; /* the peer is gone; the error is already recorded */
    if (buf_append(&c->out, data, (size_t)len) < 0) {
        c->bio_nomem = true;
        return -1;
    }
    return len;
}

static void keep_first_bytes(struct ss_conn *c, const char *data, size_t n)
{
    size_t room = sizeof(c->first) - c->n_first;
    if (room == 0)
        return;
    size_t take = n < room ? n : room;
    memcpy(c->first + c->n_first, data, take);
    c->n_first += take;
}

static int bio_sock_read(BIO *bio, char *data, int len)
{
    struct ss_conn *c = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (len <= 0)
        return 0;
    /* A handshake flight still waiting to go out: the peer's answer to it
     * cannot have come, and a recv would only say EAGAIN. "Retry" at once;
     * handshake_step sends the flight, then the caller waits for the
     * answer (one system call less per flight, issue 9). */
    if (c->state == SS_CONN_HANDSHAKING && buf_used(&c->out) > 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    ssize_t r;
    do
        r = c->io.recv(c->fd, data, (size_t)len, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    c->rx_drained = false;
    if (r > 0) {
        keep_first_bytes(c, data, (size_t)r);
        c->rx_total += (unsigned long long)r;
        c->rx_drained = r < len;
        return (int)r;
    }
    if (r == 0) {
        c->tcp_eof = true;
        return 0;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->rx_drained = true;
        BIO_set_retry_read(bio);
        return -1;
    }
    c->sys_errno = errno;
    c->read_err = SS_ERR_SYSCALL;
    return -1;
}

static long bio_sock_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    const struct ss_conn *c = BIO_get_data(bio);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        /* Buffered ciphertext is flushed by the conn, not by OpenSSL. */
        return 1;
    case BIO_CTRL_EOF:
        /* OpenSSL asks after a read of 0 whether it was the end. */
        return c != NULL && c->tcp_eof;
    default:
        return 0;
    }
}

/* OpenSSL's report of each record header it parses (SSL_set_msg_callback):
 * the record's bytes count as framed, for ss_conn_buffered_input. */
static void msg_seen(int write_p, int version, int content_type,
                     const void *buf, size_t len, SSL *ssl, void *arg)
{
    (void)version;
    (void)ssl;
    if (write_p || content_type != SSL3_RT_HEADER ||
        len < SSL3_RT_HEADER_LENGTH)
        return;
    const unsigned char *h = buf;
    struct ss_conn *c = arg;
    c->rx_framed += SSL3_RT_HEADER_LENGTH + ((unsigned)h[3] << 8 | h[4]);
}

static int bio_sock_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

static void sock_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "secshim socket");
    if (m == NULL)
        return;
    if (BIO_meth_set_write(m, bio_sock_write) != 1 ||
        BIO_meth_set_read(m, bio_sock_read) != 1 ||
        BIO_meth_set_ctrl(m, bio_sock_ctrl) != 1 ||
        BIO_meth_set_create(m, bio_sock_create) != 1) {
        BIO_meth_free(m);
        return;
    }
    sock_method = m;
}

/* ---- outbound buffer --------------------------------------------------- */

/* Sends buffered ciphertext: SS_OK when none is left, SS_WANT_WRITE, or
 * the recorded send error; the conn's message is left alone, so failure
 * paths use it to deliver their alert without losing their reason. */
static int send_out(struct ss_conn *c)
{
    while (c->write_err == 0 && buf_used(&c->out) > 0) {
        ssize_t r = io_send(c, c->out.data + c->out.off, buf_used(&c->out));
        if (r >= 0) {
            buf_consume(&c->out, (size_t)r);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return SS_WANT_WRITE;
        c->sys_errno = errno;
        c->write_err = send_errno_code(errno);
    }
    return c->write_err != 0 ? c->write_err : SS_OK;
}

/* send_out, with a message when the peer is gone. */
static int flush_out(struct ss_conn *c)
{
    int rc = send_out(c);
    if (rc < 0)
        set_error(c, "cannot send to %s: %s", c->peer_host,
                  strerror(c->sys_errno));
    return rc;
}

/* Enters SS_CONN_FAILED after delivering what the failure queued (the
 * alert that tells the peer why), best effort. */
static int fail_after_alert(struct ss_conn *c, int code)
{
    (void)send_out(c);
    return conn_failed(c, code);
}

/* What a read produced (a key update reply, an alert) leaves with it. */
static int read_result(struct ss_conn *c, int rc)
{
    (void)send_out(c);
    return rc;
}

/* ---- failure messages -------------------------------------------------- */

/* The alerts by which a peer says it rejected our certificate. */
static bool is_peer_cert_rejection(int reason)
{
    switch (reason) {
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
        return true;
    default:
        return false;
    }
}

static bool is_version_mismatch(int reason)
{
    switch (reason) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_WRONG_SSL_VERSION:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_UNSUPPORTED_SSL_VERSION:
    case SSL_R_WRONG_VERSION_NUMBER:
        return true;
    default:
        return false;
    }
}

static bool is_cipher_mismatch(int reason)
{
    return reason == SSL_R_NO_SHARED_CIPHER ||
           reason == SSL_R_NO_CIPHERS_AVAILABLE ||
           reason == SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM;
}

/* No key exchange group both sides allow (a FIPS endpoint allows fewer:
 * docs/fips.md). */
static bool is_group_mismatch(int reason)
{
    return reason == SSL_R_NO_SUITABLE_KEY_SHARE ||
           reason == SSL_R_NO_SHARED_GROUPS ||
           reason == SSL_R_BAD_KEY_SHARE;
}

/* What a FIPS endpoint adds to a mismatch: why it offers less. */
static const char *fips_note(const struct ss_conn *c, const char *what)
{
    if (!c->ep->fips140_enabled)
        return "";
    return strcmp(what, "group") == 0
               ? " (fips140-enabled: only P-256, P-384, P-521 and the "
                 "ffdhe groups)"
               : " (fips140-enabled: only the FIPS provider's suites)";
}

/*
 * The failure of a verification we ran, or 0 when ours did not fail. The
 * verifier's own record decides (SSL_get_verify_result keeps an error the
 * compat relaxations overrode); OpenSSL's result is the fallback when the
 * handshake says verification failed but the verifier recorded nothing.
 */
static int our_verification_failed(struct ss_conn *c, int ssl_reason)
{
    const struct ss_verify_result *vr = ss_conn_verify_result(c);
    int e = vr->x509_error;
    if (e == X509_V_OK && ssl_reason != SSL_R_CERTIFICATE_VERIFY_FAILED)
        return 0;
    if (e == X509_V_OK)
        e = (int)SSL_get_verify_result(c->ssl);
    const char *reason = vr->reason[0] != '\0'
                             ? vr->reason
                             : X509_verify_cert_error_string(e);
    set_error(c, "certificate verify failed: %s", reason);
    return SS_ERR_VERIFY;
}

/*
 * Whether the peer's first bytes cannot be a TLS record: a record starts
 * with a content type (20..24) and the major version 3; an SSLv2-style
 * ClientHello has the top bit of its first byte set. Plaintext (an HTTP
 * request, a banner, a protocol greeting) is neither.
 */
static bool first_bytes_not_tls(const struct ss_conn *c)
{
    if (c->n_first == 0)
        return false;
    if ((c->first[0] & 0x80) != 0)
        return false;
    if (c->first[0] < 20 || c->first[0] > 24)
        return true;
    return c->n_first >= 2 && c->first[1] != 3;
}

/* Up to len bytes of p as C-escaped text ("GET / HTTP/1.1\r\n"). */
static void escape_bytes(const unsigned char *p, size_t n, char *out,
                         size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < len; i++) {
        unsigned char b = p[i];
        const char *esc = b == '\r' ? "\\r" : b == '\n' ? "\\n"
                        : b == '\t' ? "\\t" : b == '"' ? "\\\""
                        : b == '\\' ? "\\\\" : NULL;
        if (esc != NULL)
            o += (size_t)snprintf(out + o, len - o, "%s", esc);
        else if (b >= 0x20 && b < 0x7f)
            out[o++] = (char)b;
        else
            o += (size_t)snprintf(out + o, len - o, "\\x%02x", b);
    }
    out[o < len ? o : len - 1] = '\0';
}

/* The sentence for a peer whose first bytes are not TLS. OpenSSL stops
 * after a record header (5 bytes): the bytes after it are peeked, never
 * consumed, so the sentence can quote a whole request line. */
static int not_tls(struct ss_conn *c)
{
    size_t room = sizeof(c->first) - c->n_first;
    if (room > 0) {
        ssize_t r = c->io.recv(c->fd, c->first + c->n_first, room,
                               MSG_PEEK | MSG_DONTWAIT);
        if (r > 0)
            c->n_first += (size_t)r;
    }
    char text[SS_CONN_FIRST_BYTES * 4 + 8];
    escape_bytes(c->first, c->n_first, text, sizeof(text));
    set_error(c, "the peer is not speaking TLS (it sent \"%s\"%s)", text,
              c->n_first == sizeof(c->first) ? " ..." : "");
    return SS_ERR_PROTOCOL;
}

/*
 * Turns a failed SSL call (SSL_ERROR_SSL or SSL_ERROR_SYSCALL) into one
 * sentence and an error code, draining OpenSSL's queue. during_handshake
 * only changes the wording. The sentence is the reason alone: the caller
 * (the shim) says which endpoint, which peer and whether the handshake or
 * the connection failed (docs/shim.md, "Connections").
 */
static int classify_failure(struct ss_conn *c, int ssl_error,
                            bool during_handshake)
{
    if (c->bio_nomem) {
        ERR_clear_error();
        set_error(c, "out of memory buffering output to %s", c->peer_host);
        return SS_ERR_NOMEM;
    }
    if (c->read_err != 0 || c->write_err != 0) {
        ERR_clear_error();
        set_error(c, "%s", strerror(c->sys_errno));
        return c->read_err != 0 ? c->read_err : c->write_err;
    }
    if (during_handshake && first_bytes_not_tls(c)) {
        ERR_clear_error();
        return not_tls(c);
    }
    unsigned long first = ERR_peek_error();
    int reason = ERR_GET_LIB(first) == ERR_LIB_SSL ? ERR_GET_REASON(first)
                                                   : 0;
    int verify_rc = our_verification_failed(c, reason);
    if (verify_rc != 0) {
        ERR_clear_error();
        return verify_rc;
    }
    char queue[512];
    ss_openssl_errors(queue, sizeof(queue));
    if (ssl_error == SSL_ERROR_SYSCALL || first == 0) {
        set_error(c, "the peer closed the connection%s",
                  during_handshake ? " during the handshake" : "");
        return SS_ERR_CLOSED;
    }
    char allowed[96];
    ss_protocol_describe(&c->ep->proto, allowed, sizeof(allowed));
    if (is_version_mismatch(reason)) {
        set_error(c, "no protocol version in common with %s: %s (we allow "
                  "%s)", c->peer_host, queue, allowed);
        return SS_ERR_PROTOCOL;
    }
    if (is_cipher_mismatch(reason)) {
        set_error(c, "no cipher suite in common with %s: %s%s", c->peer_host,
                  queue, fips_note(c, "suite"));
        return SS_ERR_PROTOCOL;
    }
    if (is_group_mismatch(reason)) {
        set_error(c, "no key exchange group in common with %s: %s%s",
                  c->peer_host, queue, fips_note(c, "group"));
        return SS_ERR_PROTOCOL;
    }
    if (is_peer_cert_rejection(reason)) {
        set_error(c, "%s rejected our certificate: %s", c->peer_host,
                  queue);
        return SS_ERR_VERIFY;
    }
    if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        set_error(c, "certificate verify failed: %s sent no client "
                  "certificate and tls-mutual requires one", c->peer_host);
        return SS_ERR_VERIFY;
    }
    set_error(c, "%s", queue);
    return SS_ERR_TLS;
}

/* ---- creation ---------------------------------------------------------- */

static bool is_ip_literal(const char *host)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, host, addr) == 1 ||
           inet_pton(AF_INET6, host, addr) == 1;
}

/* Resumption (session.h): the link names this conn's sessions and
 * verification result; a client is offered its cached session. */
static int setup_session(struct ss_conn *c, struct ss_errbuf *err)
{
    if (!c->ep->tls->resume)
        return SS_OK;
    c->session.key.endpoint = c->ep->name != NULL ? c->ep->name : "";
    c->session.key.digest = c->ep->tls->trust_digest;
    c->session.verified = c->verify_result;
    return ss_session_attach(c->ssl, &c->session, err);
}

static int setup_ssl(struct ss_conn *c, struct ss_errbuf *err)
{
    ERR_clear_error();
    c->ssl = SSL_new(c->ep->tls->ctx);
    if (c->ssl == NULL)
        return ss_fail_openssl(err, SS_ERR_TLS, "cannot create an SSL");
    BIO *bio = BIO_new(sock_method);
    if (bio == NULL)
        return ss_fail_openssl(err, SS_ERR_TLS, "cannot create a BIO");
    BIO_set_data(bio, c);
    SSL_set_bio(c->ssl, bio, bio); /* the SSL owns the BIO now */
    SSL_set_msg_callback(c->ssl, msg_seen);
    SSL_set_msg_callback_arg(c->ssl, c);
    /* OpenSSL sees a TCP EOF without close_notify as EOF; read_closed
     * then applies the endpoint's tls-unexpected-eof (only our BIO knows
     * whether the EOF came without close_notify), so both choices are
     * made in one place. */
    SSL_set_options(c->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);

    bool client = c->ep->tls->role == SS_ROLE_CLIENT;
    const char *host = NULL;
    if (client) {
        host = c->ep->target_name != NULL ? c->ep->target_name
                                          : c->peer_host;
        SSL_set_connect_state(c->ssl);
        if (!is_ip_literal(host) &&
            SSL_set_tlsext_host_name(c->ssl, host) != 1)
            return ss_fail_openssl(err, SS_ERR_TLS,
                                   "cannot set the SNI name %s", host);
        /* Sessions are filed under the name sent and checked. */
        c->session.key.host = host;
        if (!c->ep->target_name_check)
            host = NULL;
    } else {
        SSL_set_accept_state(c->ssl);
    }
    /* Always: the verify result is recorded even without a name check. */
    c->verify_result = ss_malloc(sizeof(*c->verify_result));
    if (c->verify_result == NULL)
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    SS_GUARD(ss_verify_prepare_ssl(c->ssl, host, c->verify_result, err));
    return setup_session(c, err);
}

int ss_conn_new(struct ss_policy *policy, const struct ss_endpoint *ep,
                int fd, const struct ss_io_ops *io, const char *peer_host,
                struct ss_conn **out, struct ss_errbuf *err)
{
    *out = NULL;
    if (ep == NULL || ep->tls == NULL || io == NULL)
        return ss_fail(err, SS_ERR_INVAL,
                       "a connection needs an enabled endpoint and I/O");
    bool client = ep->tls->role == SS_ROLE_CLIENT;
    if (peer_host == NULL && client && ep->target_name == NULL)
        return ss_fail(err, SS_ERR_INVAL,
                       "a connect endpoint needs the peer's host name or "
                       "address");
    if (peer_host == NULL)
        peer_host = client ? ep->target_name : "unknown peer";
    pthread_once(&sock_method_once, sock_method_make);
    if (sock_method == NULL)
        return ss_fail(err, SS_ERR_NOMEM, "cannot create the BIO method");
    size_t host_len = strlen(peer_host);
    /* One allocation for the conn and its copy of the name. */
    struct ss_conn *c = ss_calloc(1, sizeof(*c) + host_len + 1);
    if (c == NULL)
        return ss_fail(err, SS_ERR_NOMEM, "out of memory");
    c->ep = ep;
    c->fd = fd;
    c->io = *io;
    c->state = SS_CONN_HANDSHAKING;
    c->hs_want = ep->tls->role == SS_ROLE_CLIENT ? SS_WANT_WRITE
                                                 : SS_WANT_READ;
    memcpy(c->peer_host, peer_host, host_len + 1);
    int rc = setup_ssl(c, err);
    if (rc < 0) {
        ss_conn_free(c);
        return rc;
    }
    /* Last, so a failed creation never drops a reference it did not
     * take. */
    if (policy != NULL)
        ss_policy_ref(policy);
    c->policy = policy;
    *out = c;
    return SS_OK;
}

void ss_conn_free(struct ss_conn *c)
{
    if (c == NULL)
        return;
    /* SSL_free sends nothing: close_notify is ss_conn_shutdown's job. But
     * it marks the session not resumable when close_notify was not sent
     * (a forked child's close, a conn dropped at exit), and the session
     * is shared through the cache: only a failure should do that (OpenSSL
     * already did, at the alert). TLS 1.1 on no longer requires it. */
    if (c->ssl != NULL && c->state != SS_CONN_FAILED &&
        c->state != SS_CONN_HANDSHAKING)
        SSL_set_shutdown(c->ssl, SSL_get_shutdown(c->ssl) |
                                     SSL_SENT_SHUTDOWN);
    SSL_free(c->ssl);
    buf_free(&c->out);
    buf_free(&c->early);
    free(c->verify_result); /* the SSL that recorded into it is gone */
    if (c->error != error_nomem)
        free(c->error);
    ss_policy_unref(c->policy);
    free(c);
}

void ss_conn_set_fd(struct ss_conn *c, int fd)
{
    c->fd = fd;
}

/* ---- handshake --------------------------------------------------------- */

/*
 * What ss_conn_verify_result answers after the handshake when no
 * relaxation was used: the outcome alone, the recorded detail (two reason
 * texts, a KiB) having been given back.
 */
static const struct ss_verify_result verify_outcome[2][2] = {
    [false][false] = {.ok = false},
    [false][true] = {.ok = false, .resumed = true},
    [true][false] = {.ok = true},
    [true][true] = {.ok = true, .resumed = true},
};

/* The handshake is over: what only it needed goes, as a server holds
 * thousands of idle connections (issue 9). The verification detail stays
 * when a compat relaxation was used: the established line names it. */
static void drop_handshake_state(struct ss_conn *c)
{
    if (c->verify_result == NULL || c->verify_result->relaxations != 0)
        return;
    c->verified = c->verify_result->ok;
    c->resumed = c->verify_result->resumed;
    ss_verify_forget_ssl(c->ssl);
    free(c->verify_result);
    c->verify_result = NULL;
    /* Sessions made from now on (TLS 1.3 tickets arrive after the
     * handshake) take their verdict from the outcome. */
    c->session.verified = &verify_outcome[c->verified][c->resumed];
}

/* Pushes plaintext written during the handshake through SSL_write. */
static int flush_early(struct ss_conn *c)
{
    while (buf_used(&c->early) > 0) {
        size_t written = 0;
        ERR_clear_error();
        c->buffers_released = false;
        int r = SSL_write_ex(c->ssl, c->early.data + c->early.off,
                             buf_used(&c->early), &written);
        if (r != 1)
            return conn_failed(c, classify_failure(
                                      c, SSL_get_error(c->ssl, r), false));
        buf_consume(&c->early, written);
    }
    buf_free(&c->early);
    return SS_OK;
}

static int handshake_done(struct ss_conn *c)
{
    c->state = SS_CONN_OPEN;
    c->hs_want = 0;
    /* A resumed handshake ran no verification: its result is the one
     * the session was made with. */
    if (c->ep->tls->resume)
        ss_session_handshake_done(c->ssl, c->verify_result);
    drop_handshake_state(c);
    if (ss_log_enabled(SS_LOG_DEBUG)) {
        char desc[128];
        ss_log(SS_LOG_DEBUG, "endpoint '%s': TLS with %s: %s",
               c->ep->name != NULL ? c->ep->name : "?", c->peer_host,
               ss_conn_describe(c, desc, sizeof(desc)));
    }
    SS_GUARD(flush_early(c));
    /* Unsent bytes do not hold the handshake up: the caller sees them in
     * ss_conn_wants and flushes them with its next write or poll. */
    int rc = flush_out(c);
    return rc == SS_WANT_WRITE ? SS_OK : rc;
}

static int handshake_step(struct ss_conn *c)
{
    int rc = flush_out(c);
    if (rc < 0)
        return conn_failed(c, rc);
    if (rc == SS_WANT_WRITE) {
        c->hs_want = SS_WANT_WRITE;
        return rc;
    }
    ERR_clear_error();
    c->buffers_released = false;
    int r = SSL_do_handshake(c->ssl);
    if (r == 1)
        return handshake_done(c);
    int e = SSL_get_error(c->ssl, r);
    if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
        c->write_err == 0 && !c->bio_nomem) {
        /* What this step produced must reach the peer before its answer
         * can come. */
        rc = flush_out(c);
        if (rc < 0)
            return conn_failed(c, rc);
        c->hs_want = rc == SS_WANT_WRITE || e == SSL_ERROR_WANT_WRITE
                         ? SS_WANT_WRITE
                         : SS_WANT_READ;
        return c->hs_want;
    }
    return fail_after_alert(c, classify_failure(c, e, true));
}

int ss_conn_handshake(struct ss_conn *c)
{
    int rc;
    switch (c->state) {
    case SS_CONN_HANDSHAKING:
        return handshake_step(c);
    case SS_CONN_OPEN:
    case SS_CONN_READ_CLOSED:
    case SS_CONN_WRITE_CLOSED:
    case SS_CONN_CLOSED:
        rc = flush_out(c);
        return rc == SS_WANT_WRITE ? SS_OK : rc;
    case SS_CONN_FAILED:
        return c->fail_code;
    default:
        set_error(c, "connection in an unknown state");
        return SS_ERR_STATE;
    }
}

/* ---- read -------------------------------------------------------------- */

/*
 * The peer's close_notify, or its TCP EOF. OpenSSL reports a bare TCP EOF
 * like close_notify (the option SSL_OP_IGNORE_UNEXPECTED_EOF); only our
 * BIO knows better: after a real close_notify OpenSSL stops reading before
 * the TCP EOF. A bare EOF may be an attacker cutting the stream short, so
 * by default (tls-unexpected-eof = "error", OpenSSL's own default) it is
 * a failure, reported after every byte that arrived was read; "eof" reads
 * it as the end of the stream, as a legacy peer that never sends
 * close_notify needs.
 */
static int read_closed(struct ss_conn *c)
{
    if (c->tcp_eof && !c->ep->unexpected_eof_is_eof) {
        c->truncated = true;
        set_error(c, "%s closed the connection without close_notify (the "
                  "stream may be truncated)", c->peer_host);
        return conn_failed(c, SS_ERR_TRUNCATED);
    }
    c->state = c->state == SS_CONN_WRITE_CLOSED ? SS_CONN_CLOSED
                                                : SS_CONN_READ_CLOSED;
    if (c->tcp_eof) {
        c->truncated = true;
        ss_log(SS_LOG_INFO,
               "endpoint '%s': %s closed the connection without "
               "close_notify (the stream may be truncated)",
               c->ep->name != NULL ? c->ep->name : "?", c->peer_host);
    }
    return SS_EOF;
}

int ss_conn_read(struct ss_conn *c, void *buf, size_t len, bool peek,
                 size_t *nread)
{
    *nread = 0;
    switch (c->state) {
    case SS_CONN_HANDSHAKING:
        SS_GUARD(ss_conn_handshake(c));
        if (c->state != SS_CONN_OPEN)
            return c->hs_want;
        break;
    case SS_CONN_OPEN:
    case SS_CONN_WRITE_CLOSED:
        break;
    case SS_CONN_READ_CLOSED:
    case SS_CONN_CLOSED:
        return SS_EOF;
    case SS_CONN_FAILED:
        return c->fail_code;
    default:
        set_error(c, "connection in an unknown state");
        return SS_ERR_STATE;
    }
    if (len == 0)
        return SS_OK;
    /* Opportunistic: replies OpenSSL queued (alerts, key updates) leave
     * early; a full socket is no reason not to read. */
    (void)flush_out(c);
    ERR_clear_error();
    c->buffers_released = false;
    int r = peek ? SSL_peek_ex(c->ssl, buf, len, nread)
                 : SSL_read_ex(c->ssl, buf, len, nread);
    if (r == 1)
        return read_result(c, SS_OK);
    int e = SSL_get_error(c->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        /* Also after a record that carried no application data (a
         * session ticket, a warning alert): nothing to return yet. The
         * caller waits for the peer now: the connection is idle. */
        if (c->read_err == 0) {
            int rc = read_result(c, SS_WANT_READ);
            ss_conn_idle(c);
            return rc;
        }
        break;
    case SSL_ERROR_WANT_WRITE:
        return read_result(c, SS_WANT_WRITE);
    case SSL_ERROR_ZERO_RETURN:
        return read_result(c, read_closed(c));
    default:
        break;
    }
    return fail_after_alert(c, classify_failure(c, e, false));
}

/* ---- write ------------------------------------------------------------- */

static int early_write(struct ss_conn *c, const void *buf, size_t len,
                       size_t *nwritten, int want)
{
    size_t room = SS_CONN_EARLY_WRITE_MAX - buf_used(&c->early);
    if (room == 0)
        return want; /* the handshake must progress first */
    size_t n = len < room ? len : room;
    if (buf_append(&c->early, buf, n) < 0) {
        set_error(c, "out of memory buffering early writes");
        return SS_ERR_NOMEM;
    }
    *nwritten = n;
    return SS_OK;
}

/*
 * A failed SSL_write after done bytes were taken: like send(), report the
 * bytes taken and let the next call return the error. A dead peer
 * (SS_ERR_CLOSED / SS_ERR_SYSCALL) ends writing, not the conn: buffered
 * plaintext and the peer's last bytes may still be read.
 */
static int write_failed(struct ss_conn *c, int r, size_t done,
                        size_t *nwritten)
{
    int code = classify_failure(c, SSL_get_error(c->ssl, r), false);
    if (code != SS_ERR_CLOSED && code != SS_ERR_SYSCALL)
        fail_after_alert(c, code);
    else
        (void)send_out(c); /* the records taken before the failure */
    *nwritten = done;
    return done > 0 ? SS_OK : code;
}

int ss_conn_write(struct ss_conn *c, const void *buf, size_t len,
                  size_t *nwritten)
{
    *nwritten = 0;
    int rc;
    switch (c->state) {
    case SS_CONN_HANDSHAKING:
        rc = ss_conn_handshake(c);
        if (rc < 0)
            return rc;
        if (c->state != SS_CONN_OPEN)
            return len == 0 ? SS_OK
                            : early_write(c, buf, len, nwritten, rc);
        break;
    case SS_CONN_OPEN:
    case SS_CONN_READ_CLOSED:
        break;
    case SS_CONN_WRITE_CLOSED:
    case SS_CONN_CLOSED:
        set_error(c, "write after close_notify was sent to %s",
                  c->peer_host);
        return SS_ERR_CLOSED;
    case SS_CONN_FAILED:
        return c->fail_code;
    default:
        set_error(c, "connection in an unknown state");
        return SS_ERR_STATE;
    }
    rc = flush_out(c);
    if (rc < 0)
        return rc;
    size_t unsent = buf_used(&c->out);
    if (unsent >= SS_CONN_OUTBUF_MAX)
        return SS_WANT_WRITE;
    if (len == 0)
        return SS_OK;
    /* Accept no more than fits, so the buffer stays near its bound. */
    size_t room = SS_CONN_OUTBUF_MAX - unsent;
    size_t n = len < room ? len : room;
    /* With partial writes on, each SSL_write_ex takes one record. */
    size_t done = 0;
    while (done < n) {
        size_t w = 0;
        ERR_clear_error();
        c->buffers_released = false;
        int r = SSL_write_ex(c->ssl, (const char *)buf + done, n - done, &w);
        if (r != 1 || c->write_err != 0)
            return write_failed(c, r, done, nwritten);
        done += w;
    }
    *nwritten = done;
    (void)flush_out(c); /* errors surface on the next call */
    return SS_OK;
}

int ss_conn_flush(struct ss_conn *c)
{
    if (c->state == SS_CONN_FAILED && c->write_err == 0)
        return c->fail_code;
    return flush_out(c);
}

/* ---- shutdown ---------------------------------------------------------- */

int ss_conn_shutdown(struct ss_conn *c)
{
    int rc;
    switch (c->state) {
    case SS_CONN_HANDSHAKING:
        /* close_notify needs keys: finish the handshake (and deliver the
         * early writes) first. */
        rc = ss_conn_handshake(c);
        if (rc != SS_OK)
            return rc;
        return ss_conn_shutdown(c);
    case SS_CONN_OPEN:
    case SS_CONN_READ_CLOSED:
        break;
    case SS_CONN_WRITE_CLOSED:
    case SS_CONN_CLOSED:
        return flush_out(c);
    case SS_CONN_FAILED:
        return c->fail_code;
    default:
        set_error(c, "connection in an unknown state");
        return SS_ERR_STATE;
    }
    ERR_clear_error();
    /* Once: 0 means sent and not yet received, 1 both; the peer's
     * close_notify is never waited for. */
    c->buffers_released = false;
    int r = SSL_shutdown(c->ssl);
    if (r < 0 || c->bio_nomem) {
        int code = classify_failure(c, SSL_get_error(c->ssl, r), false);
        if (code != SS_ERR_CLOSED && code != SS_ERR_SYSCALL)
            return fail_after_alert(c, code);
        return code;
    }
    c->state = c->state == SS_CONN_READ_CLOSED ? SS_CONN_CLOSED
                                               : SS_CONN_WRITE_CLOSED;
    return flush_out(c);
}

/* ---- accessors --------------------------------------------------------- */

size_t ss_conn_pending(const struct ss_conn *c)
{
    if (c->state == SS_CONN_HANDSHAKING || c->state == SS_CONN_FAILED)
        return 0;
    int n = SSL_pending(c->ssl);
    return n > 0 ? (size_t)n : 0;
}

size_t ss_conn_buffered_input(const struct ss_conn *c)
{
    if (c->state == SS_CONN_HANDSHAKING || c->state == SS_CONN_FAILED)
        return 0;
    unsigned long long beyond = c->rx_total > c->rx_framed
                                    ? c->rx_total - c->rx_framed : 0;
    if (beyond > 0)
        return (size_t)beyond;
    /* The rest of a record whose header was parsed: its start counts,
     * so that the caller looks (and then waits for the socket). */
    return SSL_pending(c->ssl) == 0 && SSL_has_pending(c->ssl) ? 1 : 0;
}

unsigned long long ss_conn_received(const struct ss_conn *c)
{
    return c->rx_total;
}

bool ss_conn_input_drained(const struct ss_conn *c)
{
    return c->rx_drained && !c->tcp_eof && c->state == SS_CONN_OPEN &&
           !SSL_has_pending(c->ssl);
}

void ss_conn_idle(struct ss_conn *c)
{
    if (c->buffers_released || c->state == SS_CONN_HANDSHAKING ||
        c->state == SS_CONN_FAILED)
        return;
    /* OpenSSL refuses (0) while a buffer holds bytes, a partial record
     * among them; then they stay until the next idle moment. */
    if (SSL_free_buffers(c->ssl) == 1)
        c->buffers_released = true;
}

size_t ss_conn_unsent(const struct ss_conn *c)
{
    /* What a dead write side holds (the peer reset, or is gone) will
     * never go: none of it is waiting. Counted, it would make a reader
     * wait for the socket to be writable as well, which a reset socket
     * is at once, and go round again without reading (a busy loop). */
    return c->write_err != 0 ? 0 : buf_used(&c->out);
}

size_t ss_conn_early_unsent(const struct ss_conn *c)
{
    return buf_used(&c->early);
}

enum ss_conn_state ss_conn_state(const struct ss_conn *c)
{
    return c->state;
}

int ss_conn_wants(const struct ss_conn *c)
{
    int wants = buf_used(&c->out) > 0 && c->write_err == 0 ? SS_WANT_WRITE
                                                           : 0;
    switch (c->state) {
    case SS_CONN_HANDSHAKING:
        return wants | c->hs_want;
    case SS_CONN_OPEN:
    case SS_CONN_WRITE_CLOSED:
        /* Buffered plaintext is readable without the OS. */
        if (ss_conn_pending(c) == 0)
            wants |= SS_WANT_READ;
        return wants;
    case SS_CONN_READ_CLOSED:
    case SS_CONN_CLOSED:
        return wants;
    case SS_CONN_FAILED:
    default:
        return 0;
    }
}

const char *ss_conn_error(const struct ss_conn *c)
{
    return c->error != NULL ? c->error : "";
}

int ss_conn_sys_errno(const struct ss_conn *c)
{
    return c->sys_errno;
}

bool ss_conn_truncated(const struct ss_conn *c)
{
    return c->truncated;
}

const char *ss_conn_describe(const struct ss_conn *c, char *buf, size_t len)
{
    if (c->state == SS_CONN_HANDSHAKING || c->state == SS_CONN_FAILED) {
        snprintf(buf, len, "no TLS session yet");
        return buf;
    }
    const char *cipher = SSL_get_cipher_name(c->ssl);
    snprintf(buf, len, "%s %s", SSL_get_version(c->ssl),
             cipher != NULL ? cipher : "(none)");
    return buf;
}

const char *ss_conn_peer_subject(const struct ss_conn *c, char *buf,
                                 size_t len)
{
    if (c->state == SS_CONN_HANDSHAKING || c->state == SS_CONN_FAILED ||
        len == 0)
        return NULL;
    /* From the session: a resumed handshake has it too. */
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    BIO *mem = peer != NULL ? BIO_new(BIO_s_mem()) : NULL;
    if (mem == NULL)
        return NULL;
    const char *out = NULL;
    /* RFC 2253's order and escapes; UTF-8 kept, control bytes escaped. */
    if (X509_NAME_print_ex(mem, X509_get_subject_name(peer), 0,
                           XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        int n = BIO_read(mem, buf, (int)(len - 1 > 0x7fffffff ? 0x7fffffff
                                                               : len - 1));
        buf[n > 0 ? n : 0] = '\0';
        out = buf;
    }
    BIO_free(mem);
    return out;
}

const struct ss_endpoint *ss_conn_endpoint(const struct ss_conn *c)
{
    return c->ep;
}

const struct ss_verify_result *ss_conn_verify_result(const struct ss_conn *c)
{
    if (c->verify_result != NULL)
        return c->verify_result;
    return &verify_outcome[c->verified][c->resumed];
}

bool ss_conn_resumed(const struct ss_conn *c)
{
    return c->state != SS_CONN_HANDSHAKING && c->state != SS_CONN_FAILED &&
           SSL_session_reused(c->ssl) == 1;
}

int ss_conn_handshake_timeout_ms(const struct ss_conn *c)
{
    return c->ep->handshake_timeout_ms;
}

SSL *ss_conn_ssl(const struct ss_conn *c)
{
    return c->ssl;
}
