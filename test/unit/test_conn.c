/*
 * test_conn.c - the connection state machine, and the TLS contexts it runs
 * on, over non-blocking socketpairs in one thread.
 *
 * Endpoints come from real policy files (ss_policy_load), so the contexts
 * are exactly those the shim would use. Every loop that drives two conns
 * against each other acts only on their SS_WANT_* answers and waits (poll,
 * bounded) only for what they asked for; a wait that times out is a
 * deadlock and fails the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "secshim/compat.h"
#include "secshim/conn.h"
#include "secshim/cpu.h"
#include "secshim/log.h"
#include "secshim/policy.h"
#include "secshim/tlsctx.h"
#include "testutil.h"
#include "../common/ossl_count.h"

/* ------------------------------------------------------------------ */
/* Policies and pairs                                                   */

/* A connect endpoint "c" and a listen endpoint "s"; extra settings for
 * each are pasted into its group. */
static struct ss_policy *load_pair_policy(const char *client_extra,
                                          const char *server_extra)
{
    const char *path = tu_write_file(
        "conn.cfg",
        "version = 1;\n"
        "endpoints = (\n"
        "  { name = \"c\"; connect = \"localhost:1\";\n"
        "    trusted-ca = \"%s\";\n"
        "    %s },\n"
        "  { name = \"s\"; listen = \"127.0.0.1:1\";\n"
        "    certificate = \"%s\"; certificate-key = \"%s\";\n"
        "    %s }\n"
        ");\n",
        tu_pki_file("ca.pem"), client_extra, tu_pki_file("server.pem"),
        tu_pki_file("server.key"), server_extra);
    struct ss_policy *p = NULL;
    struct ss_errbuf err = {{0}};
    int rc = ss_policy_load(path, false, &p, &err);
    if (rc != SS_OK)
        fail_msg("ss_policy_load: %s: %s", ss_strerror(rc), err.msg);
    return p;
}

struct pair {
    struct ss_policy *policy;
    int fd[2];              /* [0] client, [1] server */
    struct ss_conn *conn[2];
};

/* A connected pair whose sides make their socket calls through
 * client_io and server_io. */
static void pair_open_io(struct pair *pr, struct ss_policy *p,
                         const char *client_host,
                         const struct ss_io_ops *client_io,
                         const struct ss_io_ops *server_io)
{
    memset(pr, 0, sizeof(*pr));
    pr->policy = p;
    tu_socketpair_nonblock(pr->fd);
    struct ss_errbuf err = {{0}};
    int rc = ss_conn_new(p, tu_endpoint(p, "c"), pr->fd[0], client_io,
                         client_host, &pr->conn[0], &err);
    if (rc != SS_OK)
        fail_msg("client ss_conn_new: %s", err.msg);
    rc = ss_conn_new(p, tu_endpoint(p, "s"), pr->fd[1], server_io,
                     "127.0.0.1", &pr->conn[1], &err);
    if (rc != SS_OK)
        fail_msg("server ss_conn_new: %s", err.msg);
    /* The conns hold their own references now. */
    ss_policy_unref(p);
}

static void pair_open_with(struct pair *pr, struct ss_policy *p,
                           const char *client_host)
{
    pair_open_io(pr, p, client_host, &ss_io_libc, &ss_io_libc);
}

static void pair_open(struct pair *pr, const char *client_extra,
                      const char *server_extra)
{
    pair_open_with(pr, load_pair_policy(client_extra, server_extra),
                   "localhost");
}

static void pair_close(struct pair *pr)
{
    for (int i = 0; i < 2; i++) {
        ss_conn_free(pr->conn[i]);
        if (pr->fd[i] >= 0)
            close(pr->fd[i]);
    }
}

/* Waits (bounded) until one side's socket can serve what it wants. */
static void wait_for_wants(struct pair *pr, const int want[2])
{
    struct pollfd pfd[2];
    for (int i = 0; i < 2; i++) {
        pfd[i].fd = want[i] ? pr->fd[i] : -1;
        pfd[i].events = (short)(((want[i] & SS_WANT_READ) ? POLLIN : 0) |
                                ((want[i] & SS_WANT_WRITE) ? POLLOUT : 0));
        pfd[i].revents = 0;
    }
    int n = poll(pfd, 2, 5000);
    if (n <= 0)
        fail_msg("deadlock: client wants %d, server wants %d", want[0],
                 want[1]);
}

/* Drives both handshakes to the end; returns each side's last result. */
static void handshake_both(struct pair *pr, int rc[2])
{
    for (int round = 0; round < 1000; round++) {
        int want[2] = {0, 0};
        for (int i = 0; i < 2; i++) {
            rc[i] = ss_conn_handshake(pr->conn[i]);
            if (rc[i] == SS_WANT_READ || rc[i] == SS_WANT_WRITE)
                want[i] = rc[i];
        }
        if (rc[0] < 0 || rc[1] < 0)
            return;
        if (rc[0] == SS_OK && rc[1] == SS_OK)
            return;
        /* A side that is done waits for nothing; the other must be
         * able to progress. */
        wait_for_wants(pr, want);
    }
    fail_msg("handshake did not finish in 1000 rounds");
}

static void handshake_ok(struct pair *pr)
{
    int rc[2];
    handshake_both(pr, rc);
    if (rc[0] != SS_OK || rc[1] != SS_OK)
        fail_msg("handshake: client %s (%s), server %s (%s)",
                 ss_strerror(rc[0]), ss_conn_error(pr->conn[0]),
                 ss_strerror(rc[1]), ss_conn_error(pr->conn[1]));
}

/* Reads from one conn until len bytes came or the bound ran out. */
static size_t read_some(struct pair *pr, int side, void *buf, size_t len)
{
    size_t got = 0;
    for (int round = 0; round < 100 && got < len; round++) {
        size_t n = 0;
        int rc = ss_conn_read(pr->conn[side], (char *)buf + got, len - got,
                              false, &n);
        if (rc == SS_OK) {
            got += n;
            continue;
        }
        if (rc != SS_WANT_READ && rc != SS_WANT_WRITE)
            fail_msg("read: %s: %s", ss_strerror(rc),
                     ss_conn_error(pr->conn[side]));
        int want[2] = {0, 0};
        want[side] = rc;
        /* The writer may hold unsent ciphertext. */
        int other = 1 - side;
        if (ss_conn_unsent(pr->conn[other]) > 0) {
            ss_conn_flush(pr->conn[other]);
            continue;
        }
        wait_for_wants(pr, want);
    }
    return got;
}

static void write_all(struct pair *pr, int side, const void *buf,
                      size_t len)
{
    size_t n = 0;
    assert_int_equal(ss_conn_write(pr->conn[side], buf, len, &n), SS_OK);
    assert_int_equal(n, len);
}

/* ------------------------------------------------------------------ */
/* Data both ways                                                       */

#define BULK (1024 * 1024)

struct flow {
    unsigned char *src, *dst;
    size_t sent, received;
};

static void fill_pattern(unsigned char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (unsigned char)(seed >> 16);
    }
}

/* One step of one side: write what it can, read what it can. Returns
 * what it waits for (0 when it made progress) . */
static int bulk_step(struct ss_conn *c, struct flow *f, bool *progress)
{
    int want = 0;
    size_t n = 0;
    if (f->sent < BULK) {
        int rc = ss_conn_write(c, f->src + f->sent, BULK - f->sent, &n);
        if (rc == SS_OK && n > 0) {
            f->sent += n;
            *progress = true;
        } else if (rc == SS_WANT_READ || rc == SS_WANT_WRITE) {
            want |= rc;
        } else {
            fail_msg("write: %s: %s", ss_strerror(rc), ss_conn_error(c));
        }
    } else if (ss_conn_unsent(c) > 0) {
        int rc = ss_conn_flush(c);
        if (rc == SS_WANT_WRITE)
            want |= rc;
        else if (rc != SS_OK)
            fail_msg("flush: %s: %s", ss_strerror(rc), ss_conn_error(c));
    }
    if (f->received < BULK) {
        size_t room = BULK - f->received;
        int rc = ss_conn_read(c, f->dst + f->received,
                              room < 20000 ? room : 20000, false, &n);
        if (rc == SS_OK) {
            f->received += n;
            *progress = true;
        } else if (rc == SS_WANT_READ || rc == SS_WANT_WRITE) {
            want |= rc;
        } else {
            fail_msg("read: %s: %s", ss_strerror(rc), ss_conn_error(c));
        }
    }
    return want;
}

static void test_handshake_and_bulk_both_ways(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "", "");
    assert_int_equal(ss_conn_state(pr.conn[0]), SS_CONN_HANDSHAKING);
    assert_int_equal(ss_conn_handshake_timeout_ms(pr.conn[0]), 10000);
    /* Before any call: the client has a hello to send, the server waits
     * for it. */
    assert_int_equal(ss_conn_wants(pr.conn[0]), SS_WANT_WRITE);
    assert_int_equal(ss_conn_wants(pr.conn[1]), SS_WANT_READ);
    char desc0[64];
    assert_string_equal(ss_conn_describe(pr.conn[0], desc0, sizeof(desc0)),
                        "no TLS session yet");
    handshake_ok(&pr);
    assert_int_equal(ss_conn_state(pr.conn[0]), SS_CONN_OPEN);
    assert_int_equal(ss_conn_state(pr.conn[1]), SS_CONN_OPEN);
    assert_true(ss_conn_verify_result(pr.conn[0])->ok);
    /* The handshake's record is given back; the outcome stays: a server
     * without tls-mutual never verified, and no conn has an error. */
    assert_false(ss_conn_verify_result(pr.conn[1])->ok);
    assert_int_equal(ss_conn_verify_result(pr.conn[0])->relaxations, 0);
    assert_string_equal(ss_conn_error(pr.conn[0]), "");
    assert_string_equal(ss_conn_error(pr.conn[1]), "");
    assert_ptr_equal(ss_conn_endpoint(pr.conn[1]), tu_endpoint(pr.policy, "s"));

    char desc[128];
    ss_conn_describe(pr.conn[0], desc, sizeof(desc));
    assert_true(strncmp(desc, "TLSv1.3 TLS_", 12) == 0);
    /* Without cipher-suites, the fastest suite first (docs/protocols.md). */
    assert_string_equal(desc + 8, ss_cpu_has_aes()
                                      ? "TLS_AES_128_GCM_SHA256"
                                      : "TLS_CHACHA20_POLY1305_SHA256");

    struct flow f[2];
    unsigned char *mem = malloc(4 * BULK);
    assert_non_null(mem);
    for (int i = 0; i < 2; i++) {
        f[i].src = mem + (size_t)i * 2 * BULK;
        f[i].dst = f[i].src + BULK;
        f[i].sent = f[i].received = 0;
        fill_pattern(f[i].src, BULK, (uint32_t)(i + 7));
    }
    int rounds = 0;
    while (f[0].received < BULK || f[1].received < BULK ||
           ss_conn_unsent(pr.conn[0]) > 0 || ss_conn_unsent(pr.conn[1]) > 0) {
        assert_true(++rounds < 100000);
        bool progress = false;
        int want[2];
        for (int i = 0; i < 2; i++)
            want[i] = bulk_step(pr.conn[i], &f[i], &progress);
        if (!progress)
            wait_for_wants(&pr, want);
    }
    assert_int_equal(f[0].sent, BULK);
    assert_int_equal(f[1].sent, BULK);
    assert_memory_equal(f[0].src, f[1].dst, BULK);
    assert_memory_equal(f[1].src, f[0].dst, BULK);
    free(mem);
    pair_close(&pr);
}

/* ------------------------------------------------------------------ */
/* Closing                                                              */

/* ss_conn_ssl: what `secshim probe` reads the negotiated version, the
 * cipher and the peer's chain from. */
static void test_conn_ssl_is_the_connections(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "", "");
    SSL *client = ss_conn_ssl(pr.conn[0]);
    SSL *server = ss_conn_ssl(pr.conn[1]);
    assert_non_null(client);
    assert_non_null(server);
    assert_false(SSL_is_server(client));
    assert_true(SSL_is_server(server));
    handshake_ok(&pr);
    assert_int_equal(SSL_version(client), TLS1_3_VERSION);
    char desc[128], expect[160];
    snprintf(expect, sizeof(expect), "%s %s", SSL_get_version(client),
             SSL_CIPHER_get_name(SSL_get_current_cipher(client)));
    assert_string_equal(ss_conn_describe(pr.conn[0], desc, sizeof(desc)),
                        expect);
    /* The client's peer chain holds the server's leaf and intermediate. */
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(client);
    assert_non_null(chain);
    assert_int_equal(sk_X509_num(chain), 2);
    char cn[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(sk_X509_value(chain, 0)),
                              NID_commonName, cn, sizeof(cn));
    assert_string_equal(cn, "secshim-server");
    pair_close(&pr);
}

static void test_close_notify_both_ways(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "", "");
    handshake_ok(&pr);
    write_all(&pr, 0, "last", 4);
    assert_int_equal(ss_conn_shutdown(pr.conn[0]), SS_OK);
    assert_int_equal(ss_conn_state(pr.conn[0]), SS_CONN_WRITE_CLOSED);
    /* Idempotent. */
    assert_int_equal(ss_conn_shutdown(pr.conn[0]), SS_OK);

    size_t n = 0;
    assert_int_equal(ss_conn_write(pr.conn[0], "x", 1, &n), SS_ERR_CLOSED);
    assert_int_equal(n, 0);
    assert_string_equal(ss_conn_error(pr.conn[0]),
                        "write after close_notify was sent to localhost");

    char buf[16];
    assert_int_equal(read_some(&pr, 1, buf, 4), 4);
    assert_memory_equal(buf, "last", 4);
    assert_int_equal(ss_conn_read(pr.conn[1], buf, sizeof(buf), false, &n),
                     SS_EOF);
    assert_int_equal(n, 0);
    assert_false(ss_conn_truncated(pr.conn[1]));
    assert_int_equal(ss_conn_state(pr.conn[1]), SS_CONN_READ_CLOSED);
    /* EOF stays EOF. */
    assert_int_equal(ss_conn_read(pr.conn[1], buf, sizeof(buf), false, &n),
                     SS_EOF);

    /* The server may still answer after the client's close_notify. */
    write_all(&pr, 1, "bye", 3);
    assert_int_equal(ss_conn_shutdown(pr.conn[1]), SS_OK);
    assert_int_equal(ss_conn_state(pr.conn[1]), SS_CONN_CLOSED);
    assert_int_equal(read_some(&pr, 0, buf, 3), 3);
    assert_memory_equal(buf, "bye", 3);
    assert_int_equal(ss_conn_read(pr.conn[0], buf, sizeof(buf), false, &n),
                     SS_EOF);
    assert_int_equal(ss_conn_state(pr.conn[0]), SS_CONN_CLOSED);
    assert_int_equal(ss_conn_wants(pr.conn[0]), 0);
    pair_close(&pr);
}

/* tls-unexpected-eof = "error" (the default): the bytes that arrived are
 * read, then the read fails; the sentence names the peer and says why. */
static void test_eof_without_close_notify_is_an_error(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "", "");
    handshake_ok(&pr);
    write_all(&pr, 0, "cut", 3);
    assert_int_equal(shutdown(pr.fd[0], SHUT_WR), 0);
    char buf[8];
    assert_int_equal(read_some(&pr, 1, buf, 3), 3);
    assert_memory_equal(buf, "cut", 3);
    size_t n = 0;
    assert_int_equal(ss_conn_read(pr.conn[1], buf, sizeof(buf), false, &n),
                     SS_ERR_TRUNCATED);
    assert_int_equal(n, 0);
    assert_true(ss_conn_truncated(pr.conn[1]));
    assert_int_equal(ss_conn_state(pr.conn[1]), SS_CONN_FAILED);
    assert_string_equal(ss_conn_error(pr.conn[1]),
                        "127.0.0.1 closed the connection without "
                        "close_notify (the stream may be truncated)");
    /* It stays an error. */
    assert_int_equal(ss_conn_read(pr.conn[1], buf, sizeof(buf), false, &n),
                     SS_ERR_TRUNCATED);
    pair_close(&pr);

    /* The other way: the server cuts, the client sees it. */
    pair_open(&pr, "", "");
    handshake_ok(&pr);
    write_all(&pr, 1, "served", 6);
    assert_int_equal(shutdown(pr.fd[1], SHUT_WR), 0);
    assert_int_equal(read_some(&pr, 0, buf, 6), 6);
    assert_int_equal(ss_conn_read(pr.conn[0], buf, sizeof(buf), true, &n),
                     SS_ERR_TRUNCATED);
    assert_string_equal(ss_conn_error(pr.conn[0]),
                        "localhost closed the connection without "
                        "close_notify (the stream may be truncated)");
    pair_close(&pr);
}

/* tls-unexpected-eof = "eof": the same EOF is the end of the stream. */
static void test_eof_without_close_notify_eof_option(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "tls-unexpected-eof = \"eof\";",
              "tls-unexpected-eof = \"eof\";");
    handshake_ok(&pr);
    write_all(&pr, 0, "cut", 3);
    assert_int_equal(shutdown(pr.fd[0], SHUT_WR), 0);
    char buf[8];
    assert_int_equal(read_some(&pr, 1, buf, 3), 3);
    size_t n = 0;
    assert_int_equal(ss_conn_read(pr.conn[1], buf, sizeof(buf), false, &n),
                     SS_EOF);
    assert_true(ss_conn_truncated(pr.conn[1]));
    assert_int_equal(ss_conn_state(pr.conn[1]), SS_CONN_READ_CLOSED);
    assert_string_equal(ss_conn_error(pr.conn[1]), "");
    pair_close(&pr);
}

/* Steps one side's handshake against whatever the other socket holds,
 * until it ends (bounded); returns its last result. */
static int handshake_alone(struct pair *pr, int side)
{
    int rc = SS_WANT_READ;
    for (int round = 0; round < 100 && rc > 0; round++) {
        rc = ss_conn_handshake(pr->conn[side]);
        if (rc > 0) {
            struct pollfd pfd = {pr->fd[side],
                                 rc == SS_WANT_READ ? POLLIN : POLLOUT, 0};
            if (poll(&pfd, 1, 5000) != 1)
                fail_msg("handshake waits for a peer that said nothing");
        }
    }
    return rc;
}

/* A peer that answers in plaintext is named as such, with what it sent,
 * escaped (not "wrong version number"), in both directions. */
static void test_plaintext_peer_is_named(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "", "");
    static const char reply[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    assert_int_equal(write(pr.fd[1], reply, sizeof(reply) - 1),
                     (ssize_t)sizeof(reply) - 1);
    assert_int_equal(handshake_alone(&pr, 0), SS_ERR_PROTOCOL);
    assert_string_equal(ss_conn_error(pr.conn[0]),
                        "the peer is not speaking TLS (it sent "
                        "\"HTTP/1.1 400 Bad\" ...)");
    pair_close(&pr);

    pair_open(&pr, "", "");
    static const char request[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(pr.fd[0], request, sizeof(request) - 1),
                     (ssize_t)sizeof(request) - 1);
    assert_int_equal(handshake_alone(&pr, 1), SS_ERR_PROTOCOL);
    assert_string_equal(ss_conn_error(pr.conn[1]),
                        "the peer is not speaking TLS (it sent "
                        "\"GET / HTTP/1.1\\r\\n\" ...)");
    pair_close(&pr);

    /* A short banner with a control byte: all of it, escaped. */
    pair_open(&pr, "", "");
    assert_int_equal(write(pr.fd[1], "+OK\x01\"hi\"\n", 9), 9);
    assert_int_equal(shutdown(pr.fd[1], SHUT_WR), 0);
    assert_int_equal(handshake_alone(&pr, 0), SS_ERR_PROTOCOL);
    assert_string_equal(ss_conn_error(pr.conn[0]),
                        "the peer is not speaking TLS (it sent "
                        "\"+OK\\x01\\\"hi\\\"\\n\")");
    pair_close(&pr);
}

/* The sentence is the reason alone: the shim adds "TLS handshake with
 * PEER failed: " (docs/shim.md, "Connections"), so the engine's sentence
 * must not say it again. */
static void test_peer_closed_during_handshake_sentence(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "", "");
    assert_int_equal(shutdown(pr.fd[1], SHUT_WR), 0);
    assert_int_equal(handshake_alone(&pr, 0), SS_ERR_CLOSED);
    assert_string_equal(ss_conn_error(pr.conn[0]),
                        "the peer closed the connection during the "
                        "handshake");
    pair_close(&pr);
}

static void test_write_to_dead_peer(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "", "");
    handshake_ok(&pr);
    close(pr.fd[1]);
    pr.fd[1] = -1;
    size_t n = 0;
    int rc = ss_conn_write(pr.conn[0], "gone", 4, &n);
    if (rc == SS_OK) /* the send went to the BIO; the error comes next */
        rc = ss_conn_write(pr.conn[0], "gone", 4, &n);
    assert_int_equal(rc, SS_ERR_CLOSED);
    assert_int_equal(ss_conn_sys_errno(pr.conn[0]), EPIPE);
    assert_non_null(strstr(ss_conn_error(pr.conn[0]), "Broken pipe"));
    pair_close(&pr);
}

/* ------------------------------------------------------------------ */
/* Early writes and partial reads                                       */

static void test_early_writes_delivered_after_handshake(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "", "");
    size_t n = 0;
    /* The client has sent its hello and waits for the server, which has
     * not run yet: everything is buffered. */
    assert_int_equal(ss_conn_write(pr.conn[0], "hello", 5, &n), SS_OK);
    assert_int_equal(n, 5);
    assert_int_equal(ss_conn_state(pr.conn[0]), SS_CONN_HANDSHAKING);
    assert_int_equal(ss_conn_wants(pr.conn[0]), SS_WANT_READ);
    assert_int_equal(ss_conn_pending(pr.conn[0]), 0);
    /* The early-write buffer is bounded. */
    static unsigned char big[SS_CONN_EARLY_WRITE_MAX];
    fill_pattern(big, sizeof(big), 3);
    assert_int_equal(ss_conn_write(pr.conn[0], big, sizeof(big), &n),
                     SS_OK);
    assert_int_equal(n, SS_CONN_EARLY_WRITE_MAX - 5);
    assert_int_equal(ss_conn_write(pr.conn[0], "x", 1, &n), SS_WANT_READ);
    assert_int_equal(n, 0);
    /* The server buffers too: it still waits for the client's Finished. */
    assert_int_equal(ss_conn_write(pr.conn[1], "world", 5, &n), SS_OK);
    assert_int_equal(ss_conn_state(pr.conn[1]), SS_CONN_HANDSHAKING);

    handshake_ok(&pr);
    static unsigned char got[SS_CONN_EARLY_WRITE_MAX];
    assert_int_equal(read_some(&pr, 1, got, sizeof(got)), sizeof(got));
    assert_memory_equal(got, "hello", 5);
    assert_memory_equal(got + 5, big, sizeof(got) - 5);
    char buf[8];
    assert_int_equal(read_some(&pr, 0, buf, 5), 5);
    assert_memory_equal(buf, "world", 5);
    pair_close(&pr);
}

static void test_outbound_buffer_is_bounded(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "", "");
    handshake_ok(&pr);
    /* The server does not read: the socket fills, then the conn's own
     * buffer, then the conn asks to wait. */
    static unsigned char chunk[32 * 1024];
    fill_pattern(chunk, sizeof(chunk), 11);
    size_t total = 0;
    int rc = SS_OK;
    for (int i = 0; i < 1000 && rc == SS_OK; i++) {
        size_t n = 0;
        rc = ss_conn_write(pr.conn[0], chunk, sizeof(chunk), &n);
        total += n;
    }
    assert_int_equal(rc, SS_WANT_WRITE);
    assert_true(ss_conn_unsent(pr.conn[0]) >= SS_CONN_OUTBUF_MAX);
    assert_true(ss_conn_unsent(pr.conn[0]) < SS_CONN_OUTBUF_MAX + 4096);
    assert_true(ss_conn_wants(pr.conn[0]) & SS_WANT_WRITE);
    assert_int_equal(ss_conn_flush(pr.conn[0]), SS_WANT_WRITE);
    /* Everything accepted arrives, in order, once the server reads. */
    static unsigned char got[32 * 1024];
    size_t received = 0;
    for (int i = 0; i < 100000 && received < total; i++) {
        size_t want = total - received < sizeof(got) ? total - received
                                                     : sizeof(got);
        size_t n = read_some(&pr, 1, got, want);
        size_t off = received % sizeof(chunk);
        size_t first = n < sizeof(chunk) - off ? n : sizeof(chunk) - off;
        assert_memory_equal(got, chunk + off, first);
        assert_memory_equal(got + first, chunk, n - first);
        received += n;
    }
    assert_int_equal(received, total);
    assert_int_equal(ss_conn_unsent(pr.conn[0]), 0);
    assert_int_equal(ss_conn_flush(pr.conn[0]), SS_OK);
    pair_close(&pr);
}

static void test_small_reads_leave_pending(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "", "");
    handshake_ok(&pr);
    write_all(&pr, 0, "abc", 3);
    char c = 0;
    assert_int_equal(read_some(&pr, 1, &c, 1), 1);
    assert_int_equal(c, 'a');
    /* The rest of the record is plaintext ready without the socket. */
    assert_int_equal(ss_conn_pending(pr.conn[1]), 2);
    assert_int_equal(ss_conn_wants(pr.conn[1]) & SS_WANT_READ, 0);
    size_t n = 0;
    assert_int_equal(ss_conn_read(pr.conn[1], &c, 1, true, &n), SS_OK);
    assert_int_equal(c, 'b');
    assert_int_equal(ss_conn_pending(pr.conn[1]), 2);
    assert_int_equal(ss_conn_read(pr.conn[1], &c, 1, false, &n), SS_OK);
    assert_int_equal(c, 'b');
    assert_int_equal(ss_conn_read(pr.conn[1], &c, 1, false, &n), SS_OK);
    assert_int_equal(c, 'c');
    assert_int_equal(ss_conn_pending(pr.conn[1]), 0);
    assert_int_equal(ss_conn_read(pr.conn[1], &c, 1, false, &n),
                     SS_WANT_READ);
    assert_true(ss_conn_wants(pr.conn[1]) & SS_WANT_READ);
    pair_close(&pr);
}

/* ------------------------------------------------------------------ */
/* Records on the wire, idle buffers (issue 9)                          */

/* A TLS 1.3 record of n plaintext bytes on the wire: header, content
 * type byte, AEAD tag. */
#define RECORD_WIRE(n) (5 + (n) + 1 + 16)

static bool fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    return poll(&p, 1, 0) == 1;
}

/* Moves the ciphertext the client's conn writes to a second socketpair,
 * from which the test forwards it by hand (q[1] end). */
static void divert_client(struct pair *pr, int q[2])
{
    tu_socketpair_nonblock(q);
    ss_conn_set_fd(pr->conn[0], q[0]);
}

/* A record that arrived in part is no readable data: the read asks for
 * the socket again (and readiness then waits for it: no spin), and the
 * rest makes it whole. */
static void test_partial_record_waits_for_the_socket(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "", "");
    handshake_ok(&pr);
    int q[2];
    divert_client(&pr, q);
    char msg[100];
    memset(msg, 'p', sizeof(msg));
    write_all(&pr, 0, msg, sizeof(msg));
    unsigned char wire[RECORD_WIRE(sizeof(msg))];
    assert_int_equal(read(q[1], wire, sizeof(wire)), sizeof(wire));
    assert_int_equal(write(pr.fd[0], wire, 60), 60);
    char got[sizeof(msg)];
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ss_conn_read(pr.conn[1], got, sizeof(got), false,
                                      &n), SS_WANT_READ);
        assert_int_equal(ss_conn_pending(pr.conn[1]), 0);
    }
    assert_false(fd_readable(pr.fd[1]));
    assert_int_equal(write(pr.fd[0], wire + 60, sizeof(wire) - 60),
                     (ssize_t)(sizeof(wire) - 60));
    assert_int_equal(ss_conn_read(pr.conn[1], got, sizeof(got), false, &n),
                     SS_OK);
    assert_int_equal(n, sizeof(msg));
    assert_memory_equal(got, msg, sizeof(msg));
    ss_conn_set_fd(pr.conn[0], pr.fd[0]);
    close(q[0]);
    close(q[1]);
    pair_close(&pr);
}

/* The sends an engine made: length and whether MSG_MORE was set. */
static struct sent {
    size_t len;
    bool more;
} sends[64];
static size_t n_sends;

static ssize_t recording_send(int fd, const void *buf, size_t len, int flags)
{
    ssize_t r = send(fd, buf, len, flags);
    if (r > 0 && n_sends < sizeof(sends) / sizeof(sends[0]))
        sends[n_sends++] = (struct sent){(size_t)r, (flags & MSG_MORE) != 0};
    return r;
}

static const struct ss_io_ops recording_io = {recv, recording_send};

/*
 * A 64 KiB write is four records and leaves in one send (no record waits
 * behind Nagle's algorithm for the peer's ACK of the one before, and one
 * system call costs more than the copy that gathers them), as does each
 * handshake flight; nothing carries MSG_MORE.
 */
static void test_write_leaves_in_one_send(void **state)
{
    (void)state;
    struct pair pr;
    pair_open_io(&pr, load_pair_policy("", ""), "localhost", &recording_io,
                 &ss_io_libc);
    int big = 1 << 20;
    setsockopt(pr.fd[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(pr.fd[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    n_sends = 0;
    handshake_ok(&pr);
    /* The client's flights: its hello, then its Finished. */
    assert_int_equal(n_sends, 2);
    for (size_t i = 0; i < n_sends; i++)
        assert_false(sends[i].more);
    n_sends = 0;
    enum { LEN = 4 * 16384 };
    static unsigned char buf[LEN];
    fill_pattern(buf, LEN, 3);
    write_all(&pr, 0, buf, LEN);
    assert_int_equal(n_sends, 1);
    assert_int_equal(sends[0].len, 4 * RECORD_WIRE(16384));
    assert_false(sends[0].more);
    static unsigned char got[LEN];
    assert_int_equal(read_some(&pr, 1, got, LEN), LEN);
    assert_memory_equal(got, buf, LEN);
    pair_close(&pr);
}

/* Each side's socket calls in order: 'R' a recv that read, 'e' one that
 * found nothing (EAGAIN), 'S' a send. */
static char ops_log[2][64];
static size_t n_ops[2];

static void log_op(int side, char op)
{
    if (n_ops[side] + 1 < sizeof(ops_log[side]))
        ops_log[side][n_ops[side]++] = op;
}

static ssize_t logged_recv(int side, int fd, void *buf, size_t len,
                           int flags)
{
    ssize_t r = recv(fd, buf, len, flags);
    log_op(side, r > 0 ? 'R' : (r < 0 && errno == EAGAIN) ? 'e' : '?');
    return r;
}

static ssize_t logged_send(int side, int fd, const void *buf, size_t len,
                           int flags)
{
    ssize_t r = send(fd, buf, len, flags);
    log_op(side, r > 0 ? 'S' : '?');
    return r;
}

static ssize_t client_recv(int fd, void *b, size_t n, int f)
{
    return logged_recv(0, fd, b, n, f);
}
static ssize_t client_send(int fd, const void *b, size_t n, int f)
{
    return logged_send(0, fd, b, n, f);
}
static ssize_t server_recv(int fd, void *b, size_t n, int f)
{
    return logged_recv(1, fd, b, n, f);
}
static ssize_t server_send(int fd, const void *b, size_t n, int f)
{
    return logged_send(1, fd, b, n, f);
}

/*
 * A flight leaves before the step looks for the peer's answer to it: a
 * recv while the flight is still unsent could only say EAGAIN (the answer
 * cannot have come), so none is made. The client's first call is the
 * send of its hello; the server's call after reading the hello is the
 * send of its flight.
 */
static void test_handshake_sends_before_it_reads(void **state)
{
    (void)state;
    static const struct ss_io_ops client_io = {client_recv, client_send};
    static const struct ss_io_ops server_io = {server_recv, server_send};
    struct pair pr;
    pair_open_io(&pr, load_pair_policy("", ""), "localhost", &client_io,
                 &server_io);
    memset(ops_log, 0, sizeof(ops_log));
    n_ops[0] = n_ops[1] = 0;
    handshake_ok(&pr);
    print_message("client %s, server %s\n", ops_log[0], ops_log[1]);
    assert_true(n_ops[0] > 0 && ops_log[0][0] == 'S');
    const char *hello = strchr(ops_log[1], 'R');
    assert_non_null(hello);
    assert_int_equal(hello[1], 'S');
    pair_close(&pr);
}

/*
 * OpenSSL's record buffers stay while data flows (no allocation per
 * record) and go back when the connection is idle: a read that finds
 * nothing, or ss_conn_idle. Between a read that returned a record and the
 * idle moment, the read buffer (tens of KiB) is still held.
 */
static void test_record_buffers_go_back_when_idle(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "", "");
    handshake_ok(&pr);
    char got[64];
    size_t n = 0;
    assert_int_equal(ss_conn_read(pr.conn[1], got, sizeof(got), false, &n),
                     SS_WANT_READ);
    size_t idle = ossl_live_bytes;
    for (int round = 0; round < 3; round++) {
        write_all(&pr, 0, "ping", 4);
        assert_int_equal(read_some(&pr, 1, got, 4), 4);
        write_all(&pr, 1, "pong", 4);
        assert_int_equal(read_some(&pr, 0, got, 4), 4);
        /* Record buffers held after the record (SSL_MODE_RELEASE_BUFFERS
         * would have given each back at once): not freed per record. */
        assert_true(ossl_live_bytes >= idle + 16384);
        size_t busy = ossl_live_bytes;
        /* The server waits for the peer: its buffers go back. */
        assert_int_equal(ss_conn_read(pr.conn[1], got, sizeof(got), false,
                                      &n), SS_WANT_READ);
        assert_true(ossl_live_bytes + 2 * 16384 <= busy);
        ss_conn_idle(pr.conn[0]);
        assert_true(ossl_live_bytes <= idle + 256);
        ss_conn_idle(pr.conn[0]); /* again: nothing more to give */
    }
    pair_close(&pr);
}

/* ------------------------------------------------------------------ */
/* Failures                                                             */

static void test_conn_new_errors(void **state)
{
    (void)state;
    struct ss_endpoint ep;
    memset(&ep, 0, sizeof(ep));
    ep.name = "disabled";
    struct ss_conn *c = (struct ss_conn *)&ep; /* must be reset to NULL */
    struct ss_errbuf err = {{0}};
    assert_int_equal(ss_conn_new(NULL, &ep, 0, &ss_io_libc, "x", &c, &err),
                     SS_ERR_INVAL);
    assert_null(c);
    assert_string_equal(err.msg, "a connection needs an enabled endpoint "
                                 "and I/O");
    ss_conn_free(NULL);
}

static void test_untrusted_server_fails_verification(void **state)
{
    (void)state;
    char extra[600];
    snprintf(extra, sizeof(extra), "trusted-ca = \"%s\";",
             tu_pki_file("other-root.pem"));
    /* The pair's file sets trusted-ca already: write our own. */
    const char *path = tu_write_file(
        "untrusted.cfg",
        "version = 1;\n"
        "endpoints = (\n"
        "  { name = \"c\"; connect = \"localhost:1\"; %s },\n"
        "  { name = \"s\"; listen = \"127.0.0.1:1\";\n"
        "    certificate = \"%s\"; certificate-key = \"%s\"; }\n"
        ");\n",
        extra, tu_pki_file("server.pem"), tu_pki_file("server.key"));
    struct ss_policy *p = NULL;
    struct ss_errbuf err = {{0}};
    assert_int_equal(ss_policy_load(path, false, &p, &err), SS_OK);
    struct pair pr;
    pair_open_with(&pr, p, "localhost");
    int rc[2];
    handshake_both(&pr, rc);
    assert_int_equal(rc[0], SS_ERR_VERIFY);
    const char *msg = ss_conn_error(pr.conn[0]);
    if (strncmp(msg, "certificate verify failed: ", 27) != 0 ||
        strstr(msg, "issuer") == NULL)
        fail_msg("unexpected message: %s", msg);
    assert_int_equal(ss_conn_state(pr.conn[0]), SS_CONN_FAILED);
    assert_false(ss_conn_verify_result(pr.conn[0])->ok);
    assert_int_equal(ss_conn_wants(pr.conn[0]), 0);
    /* A failed conn keeps failing with the same error. */
    size_t n = 0;
    char buf[4];
    assert_int_equal(ss_conn_read(pr.conn[0], buf, 4, false, &n),
                     SS_ERR_VERIFY);
    assert_int_equal(ss_conn_write(pr.conn[0], buf, 4, &n), SS_ERR_VERIFY);
    /* The server learns from the alert. */
    for (int i = 0; i < 10 && rc[1] > 0; i++)
        rc[1] = ss_conn_handshake(pr.conn[1]);
    assert_int_equal(rc[1], SS_ERR_VERIFY);
    if (strstr(ss_conn_error(pr.conn[1]),
               "127.0.0.1 rejected our certificate: ") == NULL)
        fail_msg("server: %s", ss_conn_error(pr.conn[1]));
    pair_close(&pr);
}

static void test_wrong_name_fails_and_check_off_passes(void **state)
{
    (void)state;
    struct pair pr;
    pair_open_with(&pr, load_pair_policy("", ""), "other.example");
    int rc[2];
    handshake_both(&pr, rc);
    assert_int_equal(rc[0], SS_ERR_VERIFY);
    assert_non_null(strstr(ss_conn_error(pr.conn[0]), "certificate verify "
                                                      "failed: "));
    pair_close(&pr);

    pair_open_with(&pr,
                   load_pair_policy("tls-target-name-check = \"no\";", ""),
                   "other.example");
    handshake_ok(&pr);
    pair_close(&pr);

    /* tls-target-name overrides what the program resolved. */
    pair_open_with(&pr,
                   load_pair_policy("tls-target-name = \"localhost\";", ""),
                   "127.0.0.9");
    handshake_ok(&pr);
    pair_close(&pr);
}

static void test_protocol_mismatch(void **state)
{
    (void)state;
    struct pair pr;
    pair_open(&pr, "sec-protocol = \"TLSv12\";",
              "sec-protocol = \"TLSv13\";");
    int rc[2];
    handshake_both(&pr, rc);
    assert_true(rc[0] == SS_ERR_PROTOCOL || rc[1] == SS_ERR_PROTOCOL);
    int side = rc[1] == SS_ERR_PROTOCOL ? 1 : 0;
    const char *msg = ss_conn_error(pr.conn[side]);
    if (strncmp(msg, "no protocol version in common with ", 35) != 0)
        fail_msg("unexpected message: %s", msg);
    pair_close(&pr);
}

static void test_legacy_versions_through_conn(void **state)
{
    (void)state;
    static const char *const modes[][3] = {
        {"sec-protocol = \"TLSv1\";", "sec-protocol = \"TLSv1\";", "TLSv1 "},
        {"sec-protocol = \"TLSv11\";", "sec-protocol = \"SSLv23\";",
         "TLSv1.1 "},
        {"sec-protocol = \"SSLv23\";", "tls-version = \"TLSv1.2\";",
         "TLSv1.2 "},
    };
    for (size_t i = 0; i < 3; i++) {
        struct pair pr;
        pair_open(&pr, modes[i][0], modes[i][1]);
        handshake_ok(&pr);
        char desc[128];
        ss_conn_describe(pr.conn[1], desc, sizeof(desc));
        if (strncmp(desc, modes[i][2], strlen(modes[i][2])) != 0)
            fail_msg("%s / %s: %s", modes[i][0], modes[i][1], desc);
        write_all(&pr, 0, "legacy", 6);
        char buf[8];
        assert_int_equal(read_some(&pr, 1, buf, 6), 6);
        pair_close(&pr);
    }
}

/* ------------------------------------------------------------------ */
/* Mutual TLS                                                           */

static void test_mutual_tls(void **state)
{
    (void)state;
    char client[800], server[800];
    snprintf(client, sizeof(client),
             "tls-mutual = true; certificate = \"%s\"; "
             "certificate-key = \"%s\";",
             tu_pki_file("client.pem"), tu_pki_file("client.key"));
    snprintf(server, sizeof(server), "tls-mutual = true; trusted-ca = \"%s\";",
             tu_pki_file("ca.pem"));
    struct pair pr;
    pair_open(&pr, client, server);
    handshake_ok(&pr);
    assert_true(ss_conn_verify_result(pr.conn[1])->ok);
    write_all(&pr, 0, "mutual", 6);
    char buf[8];
    assert_int_equal(read_some(&pr, 1, buf, 6), 6);
    pair_close(&pr);

    /* A client without a certificate is refused by the server; in TLS 1.3
     * the client learns it from the alert on its first read. */
    pair_open(&pr, "", server);
    int rc[2];
    handshake_both(&pr, rc);
    assert_int_equal(rc[1], SS_ERR_VERIFY);
    if (strstr(ss_conn_error(pr.conn[1]), "no client certificate") == NULL)
        fail_msg("server: %s", ss_conn_error(pr.conn[1]));
    int crc = rc[0];
    for (int i = 0; i < 10 && crc >= 0 && crc != SS_EOF; i++) {
        size_t n = 0;
        crc = ss_conn_read(pr.conn[0], buf, sizeof(buf), false, &n);
    }
    assert_int_equal(crc, SS_ERR_VERIFY);
    if (strstr(ss_conn_error(pr.conn[0]), "rejected our certificate") ==
        NULL)
        fail_msg("client: %s", ss_conn_error(pr.conn[0]));
    pair_close(&pr);
}

/* ------------------------------------------------------------------ */
/* Context errors (through the policy loader, as the shim meets them)   */

static void expect_load_error(const char *server_extra, const char *cert,
                              const char *key, int code, const char *needle)
{
    const char *path = tu_write_file(
        "bad.cfg",
        "version = 1;\n"
        "endpoints = (\n"
        "  { name = \"s\"; listen = \"127.0.0.1:1\";\n"
        "    certificate = \"%s\"; certificate-key = \"%s\";\n"
        "    %s }\n"
        ");\n",
        tu_pki_file(cert), tu_pki_file(key), server_extra);
    struct ss_policy *p = NULL;
    struct ss_errbuf err = {{0}};
    int rc = ss_policy_load(path, false, &p, &err);
    assert_null(p);
    if (rc != code || strstr(err.msg, needle) == NULL)
        fail_msg("got %s: %s", ss_strerror(rc), err.msg);
    char where[600];
    snprintf(where, sizeof(where), "%s:", path);
    assert_true(strncmp(err.msg, where, strlen(where)) == 0);
}

static void test_tlsctx_errors(void **state)
{
    (void)state;
    expect_load_error("", "server.pem", "client.key", SS_ERR_CONFIG,
                      ":4: endpoint 's': option 'certificate-key': "
                      "certificate-key does not match certificate");
    expect_load_error("cipher-list = \"NO-SUCH-CIPHER\";", "server.pem",
                      "server.key", SS_ERR_CONFIG,
                      ":5: endpoint 's': option 'cipher-list': OpenSSL "
                      "accepts no cipher of this list");
    expect_load_error("cipher-suites = \"TLS_NO_SUCH\";", "server.pem",
                      "server.key", SS_ERR_CONFIG,
                      ":5: endpoint 's': option 'cipher-suites': OpenSSL "
                      "rejects this TLS 1.3 cipher suite list");
    expect_load_error("fips140-enabled = true;", "server.pem", "server.key",
                      SS_ERR_UNSUPPORTED,
                      ":5: endpoint 's': option 'fips140-enabled': the "
                      "OpenSSL FIPS provider is not usable: ");
}

static void test_tlsctx_direct(void **state)
{
    (void)state;
    /* An endpoint made by hand: what ss_tlsctx_new needs and no more. */
    struct ss_endpoint ep;
    memset(&ep, 0, sizeof(ep));
    ep.name = "hand";
    ep.line = 7;
    ep.enabled = true;
    ep.direction = SS_DIR_LISTEN;
    ep.certificate = (char *)tu_pki_file("server.pem");
    char key[512];
    snprintf(key, sizeof(key), "%s", tu_pki_file("server.key"));
    ep.certificate_key = key;
    assert_int_equal(ss_protocol_parse(NULL, NULL, NULL, 0, &ep.proto, NULL),
                     SS_OK);
    struct ss_tlsctx *t = NULL;
    struct ss_errbuf err = {{0}};
    int rc = ss_tlsctx_new("hand.cfg", &ep, false, &t, &err);
    if (rc != SS_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(t->role, SS_ROLE_SERVER);
    assert_non_null(t->own_cert);
    /* The leaf is served with its intermediate. */
    STACK_OF(X509) *chain = NULL;
    assert_int_equal(SSL_CTX_get0_chain_certs(t->ctx, &chain), 1);
    assert_int_equal(sk_X509_num(chain), 1);
    /* One reading of the clock: a second that passes between two would
     * move the day count. */
    time_t now = time(NULL);
    int days = ss_tlsctx_days_left(t, now);
    assert_true(days > 0);
    assert_int_equal(ss_tlsctx_days_left(t, now + 86400 * 2L), days - 2);
    /* The notAfter `secshim status` publishes is the leaf's own. */
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(t->own_cert), &tm),
                     1);
    time_t not_after = ss_tlsctx_not_after(t);
    assert_int_equal(not_after, timegm(&tm));
    /* Whole days left: now + days <= notAfter < now + days + 1. At
     * exactly 3 days before it, 3 (the leaf is signed with -days from the
     * signing second, so a test in that second is at such a boundary). */
    assert_true(not_after >= now + 86400L * days);
    assert_true(not_after < now + 86400L * (days + 1));
    assert_int_equal(ss_tlsctx_days_left(t, not_after - 86400L * 3), 3);
    assert_int_equal(ss_tlsctx_days_left(t, not_after - 86400L * 3 + 1), 2);
    ss_tlsctx_free(t);

    /* A client loads no certificate without tls-mutual. */
    ep.direction = SS_DIR_CONNECT;
    ep.trusted_ca = (char *)tu_pki_file("ca.pem");
    assert_int_equal(ss_tlsctx_new("hand.cfg", &ep, false, &t, &err), SS_OK);
    assert_null(t->own_cert);
    assert_int_equal(ss_tlsctx_days_left(t, time(NULL)), 0);
    assert_int_equal(ss_tlsctx_not_after(t), 0);
    ss_tlsctx_free(t);

    /* The checks the policy loader makes too hold here on their own. */
    ep.direction = SS_DIR_LISTEN;
    ep.tls_mutual = true;
    ep.trusted_ca = NULL;
    assert_int_equal(ss_tlsctx_new("hand.cfg", &ep, false, &t, &err),
                     SS_ERR_CONFIG);
    assert_string_equal(err.msg, "hand.cfg:7: endpoint 'hand': option "
                        "'trusted-ca': tls-mutual on a listen endpoint "
                        "needs trusted-ca to verify clients against");
    ep.tls_mutual = false;
    ep.certificate_key = NULL;
    assert_int_equal(ss_tlsctx_new("hand.cfg", &ep, false, &t, &err),
                     SS_ERR_CONFIG);
    assert_string_equal(err.msg, "hand.cfg:7: endpoint 'hand': option "
                        "'certificate-key': certificate is set but "
                        "certificate-key is not");
    ep.certificate_key = key;

    /* A missing certificate file names the option. */
    ep.direction = SS_DIR_LISTEN;
    ep.certificate = (char *)tu_pki_file("missing.pem");
    assert_int_equal(ss_tlsctx_new("hand.cfg", &ep, false, &t, &err),
                     SS_ERR_IO);
    assert_null(t);
    if (strncmp(err.msg, "hand.cfg:7: endpoint 'hand': option "
                         "'certificate': cannot read ", 55) != 0)
        fail_msg("%s", err.msg);
}

/* Whether ctx offers the TLS 1.2 suite name. */
static bool offers(SSL_CTX *ctx, const char *name)
{
    STACK_OF(SSL_CIPHER) *suites = SSL_CTX_get_ciphers(ctx);
    for (int i = 0; i < sk_SSL_CIPHER_num(suites); i++)
        if (strcmp(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(suites, i)),
                   name) == 0)
            return true;
    return false;
}

/* The TLS 1.2 suites ss_tlsctx_new gives an endpoint without cipher-list
 * (docs/protocols.md, "Defaults and the external scan"): ECDHE with AEAD
 * only, in both directions; OpenSSL's default, CBC included, where TLS
 * 1.0/1.1 are allowed; the operator's cipher-list whenever it is set. */
static void test_tlsctx_default_ciphers(void **state)
{
    (void)state;
    struct ss_endpoint ep;
    memset(&ep, 0, sizeof(ep));
    ep.name = "hand";
    ep.line = 7;
    ep.enabled = true;
    ep.certificate = (char *)tu_pki_file("server.pem");
    char key[512];
    snprintf(key, sizeof(key), "%s", tu_pki_file("server.key"));
    ep.certificate_key = key;
    ep.trusted_ca = (char *)tu_pki_file("ca.pem");
    const char *first = ss_cpu_has_aes() ? "ECDHE-RSA-AES128-GCM-SHA256"
                                         : "ECDHE-RSA-CHACHA20-POLY1305";
    struct ss_errbuf err = {{0}};
    struct ss_tlsctx *t = NULL;
    static const enum ss_direction dirs[] = {SS_DIR_LISTEN, SS_DIR_CONNECT};
    for (size_t i = 0; i < 2; i++) {
        ep.direction = dirs[i];
        assert_int_equal(ss_protocol_parse(NULL, NULL, NULL, 0, &ep.proto,
                                           NULL), SS_OK);
        if (ss_tlsctx_new("hand.cfg", &ep, false, &t, &err) != SS_OK)
            fail_msg("%s", err.msg);
        assert_true(offers(t->ctx, first));
        assert_true(offers(t->ctx, "ECDHE-ECDSA-AES256-GCM-SHA384"));
        assert_false(offers(t->ctx, "ECDHE-RSA-AES128-SHA256"));
        assert_false(offers(t->ctx, "ECDHE-RSA-AES256-SHA"));
        assert_false(offers(t->ctx, "AES128-GCM-SHA256"));
        assert_false(offers(t->ctx, "DHE-RSA-AES128-GCM-SHA256"));
        ss_tlsctx_free(t);

        /* SSLv23 allows TLS 1.0: OpenSSL's SHA-1 CBC suites stay. */
        assert_int_equal(ss_protocol_parse("SSLv23", NULL, NULL, 0,
                                           &ep.proto, NULL), SS_OK);
        assert_int_equal(ss_tlsctx_new("hand.cfg", &ep, false, &t, &err),
                         SS_OK);
        assert_true(offers(t->ctx, "ECDHE-RSA-AES256-SHA"));
        ss_tlsctx_free(t);

        /* The operator's list wins, whatever the protocol mode. */
        assert_int_equal(ss_protocol_parse(NULL, NULL, NULL, 0, &ep.proto,
                                           NULL), SS_OK);
        ep.cipher_list = (char *)"AES128-SHA";
        assert_int_equal(ss_tlsctx_new("hand.cfg", &ep, false, &t, &err),
                         SS_OK);
        assert_true(offers(t->ctx, "AES128-SHA"));
        assert_false(offers(t->ctx, first));
        ss_tlsctx_free(t);
        ep.cipher_list = NULL;
    }
}

static int group_setup(void **state)
{
    (void)state;
    tu_pki();
    struct ss_errbuf err;
    /* Quiet: the legacy-version warnings are expected here. */
    ss_log_configure(SS_LOG_ERROR, "stderr", &err);
    return 0;
}

int main(void)
{
    /* Before OpenSSL allocates anything: its allocations are counted. */
    if (!CRYPTO_set_mem_functions(ossl_count_malloc, ossl_count_realloc,
                                  ossl_count_free)) {
        fprintf(stderr, "test_conn: cannot count OpenSSL's memory\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_bulk_both_ways),
        cmocka_unit_test(test_conn_ssl_is_the_connections),
        cmocka_unit_test(test_close_notify_both_ways),
        cmocka_unit_test(test_eof_without_close_notify_is_an_error),
        cmocka_unit_test(test_eof_without_close_notify_eof_option),
        cmocka_unit_test(test_plaintext_peer_is_named),
        cmocka_unit_test(test_peer_closed_during_handshake_sentence),
        cmocka_unit_test(test_write_to_dead_peer),
        cmocka_unit_test(test_early_writes_delivered_after_handshake),
        cmocka_unit_test(test_outbound_buffer_is_bounded),
        cmocka_unit_test(test_small_reads_leave_pending),
        cmocka_unit_test(test_partial_record_waits_for_the_socket),
        cmocka_unit_test(test_write_leaves_in_one_send),
        cmocka_unit_test(test_handshake_sends_before_it_reads),
        cmocka_unit_test(test_record_buffers_go_back_when_idle),
        cmocka_unit_test(test_conn_new_errors),
        cmocka_unit_test(test_untrusted_server_fails_verification),
        cmocka_unit_test(test_wrong_name_fails_and_check_off_passes),
        cmocka_unit_test(test_protocol_mismatch),
        cmocka_unit_test(test_legacy_versions_through_conn),
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_tlsctx_errors),
        cmocka_unit_test(test_tlsctx_direct),
        cmocka_unit_test(test_tlsctx_default_ciphers),
    };
    return cmocka_run_group_tests(tests, group_setup, tu_group_teardown);
}
