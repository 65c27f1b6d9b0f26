/*
 * test_session.c - session resumption: the client cache (keys, the bound
 * and LRU eviction, expiry, trust digests, fork), the ticket keys
 * (rotation, sharing, the ratchet across fork), the trust digest of a
 * context, and resumption through real conns over socketpairs: client and
 * server, TLS 1.3 and 1.2, policy reloads, session-resumption = false,
 * verdicts (compatibility relaxations, the age limit).
 *
 * The cache and the ticket clock are process-global: every test starts
 * with an empty cache and no clock skew (per_test_setup).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <openssl/x509.h>

#include "secshim/conn.h"
#include "secshim/log.h"
#include "secshim/policy.h"
#include "secshim/session.h"
#include "secshim/tlsctx.h"
#include "testutil.h"

static const unsigned char digest_a[SS_TRUST_DIGEST_LEN] = {1};
static const unsigned char digest_b[SS_TRUST_DIGEST_LEN] = {2};

static int per_test_setup(void **state)
{
    (void)state;
    ss_session_cache_clear();
    ss_ticket_clock_skew(0);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Hand-made sessions                                                   */

/* A resumable TLS 1.2 session made at t, living timeout seconds, whose
 * verdict (ok) is from verified_at. */
static SSL_SESSION *made_session(time_t t, long timeout, time_t verified_at)
{
    static unsigned counter;
    SSL_SESSION *s = SSL_SESSION_new();
    assert_non_null(s);
    unsigned char id[32] = {0};
    counter++;
    memcpy(id, &counter, sizeof(counter));
    assert_int_equal(SSL_SESSION_set1_id(s, id, sizeof(id)), 1);
    assert_int_equal(SSL_SESSION_set_protocol_version(s, TLS1_2_VERSION), 1);
    SSL_SESSION_set_time(s, (long)t);
    SSL_SESSION_set_timeout(s, timeout);
    struct ss_verify_result ok = {.ok = true};
    assert_int_equal(ss_session_set_verdict(s, &ok, verified_at), SS_OK);
    return s;
}

static struct ss_session_key key_of(const char *endpoint, const char *host,
                                    const unsigned char *digest)
{
    struct ss_session_key k = {endpoint, host, digest};
    return k;
}

/* put, then drop the test's own reference. */
static int put(const char *endpoint, const char *host,
               const unsigned char *digest, SSL_SESSION *s, time_t now)
{
    struct ss_session_key k = key_of(endpoint, host, digest);
    int rc = ss_session_cache_put(&k, s, now);
    SSL_SESSION_free(s);
    return rc;
}

/* get, compared with want (NULL: a miss), the reference dropped. */
static void expect_get(const char *endpoint, const char *host,
                       const unsigned char *digest, time_t now,
                       const SSL_SESSION *want)
{
    struct ss_session_key k = key_of(endpoint, host, digest);
    SSL_SESSION *got = ss_session_cache_get(&k, now);
    if (got != want)
        fail_msg("get(%s, %s) at %ld: got %p, want %p", endpoint, host,
                 (long)now, (void *)got, (const void *)want);
    SSL_SESSION_free(got);
}

/* ------------------------------------------------------------------ */
/* The cache                                                            */

static void test_cache_key_is_endpoint_and_host(void **state)
{
    (void)state;
    time_t now = time(NULL);
    SSL_SESSION *s1 = made_session(now, 600, now);
    SSL_SESSION *s2 = made_session(now, 600, now);
    SSL_SESSION *s3 = made_session(now, 600, now);
    assert_int_equal(put("ab", "c", digest_a, s1, now), SS_OK);
    assert_int_equal(put("a", "bc", digest_a, s2, now), SS_OK);
    assert_int_equal(put("ab", "d", digest_a, s3, now), SS_OK);
    assert_int_equal(ss_session_cache_count(), 3);
    expect_get("ab", "c", digest_a, now, s1);
    expect_get("a", "bc", digest_a, now, s2);
    expect_get("ab", "d", digest_a, now, s3);
    expect_get("ab", "x", digest_a, now, NULL);
    expect_get("x", "c", digest_a, now, NULL);
    assert_int_equal(ss_session_cache_count(), 3);
}

static void test_cache_keeps_the_newest(void **state)
{
    (void)state;
    time_t now = time(NULL);
    SSL_SESSION *old = made_session(now, 600, now);
    SSL_SESSION *newer = made_session(now, 600, now);
    assert_int_equal(put("e", "h", digest_a, old, now), SS_OK);
    assert_int_equal(put("e", "h", digest_a, newer, now), SS_OK);
    assert_int_equal(ss_session_cache_count(), 1);
    expect_get("e", "h", digest_a, now, newer);
    /* The same session again (a TLS 1.2 resumption keeps it anew). */
    SSL_SESSION_up_ref(newer);
    assert_int_equal(put("e", "h", digest_a, newer, now), SS_OK);
    expect_get("e", "h", digest_a, now, newer);
}

static void test_cache_bound_evicts_least_recent(void **state)
{
    (void)state;
    time_t now = time(NULL);
    char host[32];
    SSL_SESSION *kept[3] = {NULL};
    for (int i = 0; i < SS_SESSION_CACHE_MAX; i++) {
        SSL_SESSION *s = made_session(now, 600, now);
        if (i < 3)
            kept[i] = s;
        snprintf(host, sizeof(host), "h%d", i);
        assert_int_equal(put("e", host, digest_a, s, now), SS_OK);
    }
    assert_int_equal(ss_session_cache_count(), SS_SESSION_CACHE_MAX);
    /* h0 is used, so h1 is now the least recently used. */
    expect_get("e", "h0", digest_a, now, kept[0]);
    assert_int_equal(put("e", "new", digest_a, made_session(now, 600, now),
                         now), SS_OK);
    assert_int_equal(ss_session_cache_count(), SS_SESSION_CACHE_MAX);
    expect_get("e", "h1", digest_a, now, NULL);
    expect_get("e", "h0", digest_a, now, kept[0]);
    expect_get("e", "h2", digest_a, now, kept[2]);
}

static void test_cache_expires_at_timeout(void **state)
{
    (void)state;
    time_t now = time(NULL);
    SSL_SESSION *s = made_session(now, 100, now);
    assert_int_equal(put("e", "h", digest_a, s, now), SS_OK);
    expect_get("e", "h", digest_a, now + 99, s);
    expect_get("e", "h", digest_a, now + 100, NULL);
    /* An expired entry is dropped, not kept for later. */
    assert_int_equal(ss_session_cache_count(), 0);
}

static void test_cache_verdict_age_limit(void **state)
{
    (void)state;
    time_t now = time(NULL);
    /* A session that would live ten days, from a verification made an
     * hour before it: usable only until that verification is a day old. */
    time_t verified = now - 3600;
    SSL_SESSION *s = made_session(now, 10 * 86400L, verified);
    assert_int_equal(put("e", "h", digest_a, s, now), SS_OK);
    expect_get("e", "h", digest_a, verified + SS_SESSION_REVERIFY_S - 1, s);
    expect_get("e", "h", digest_a, verified + SS_SESSION_REVERIFY_S, NULL);
}

static void test_cache_digest_mismatch_drops(void **state)
{
    (void)state;
    time_t now = time(NULL);
    SSL_SESSION *s = made_session(now, 600, now);
    assert_int_equal(put("e", "h", digest_a, s, now), SS_OK);
    expect_get("e", "h", digest_b, now, NULL);
    assert_int_equal(ss_session_cache_count(), 0);
    expect_get("e", "h", digest_a, now, NULL);
}

static void test_cache_refuses_unusable_sessions(void **state)
{
    (void)state;
    time_t now = time(NULL);
    /* No id and no ticket: not resumable. */
    SSL_SESSION *bare = SSL_SESSION_new();
    assert_int_equal(put("e", "h", digest_a, bare, now), SS_ERR_INVAL);
    /* No verdict: nobody knows how its peer was verified. */
    SSL_SESSION *s = made_session(now, 600, now);
    assert_int_equal(SSL_SESSION_set1_ticket_appdata(s, NULL, 0), 1);
    assert_int_equal(put("e", "h", digest_a, s, now), SS_ERR_INVAL);
    /* Already expired. */
    assert_int_equal(put("e", "h", digest_a, made_session(now - 700, 600,
                                                          now), now),
                     SS_ERR_INVAL);
    /* Marked not resumable by OpenSSL (its connection failed). */
    SSL_SESSION *failed = made_session(now, 600, now);
    SSL_SESSION_up_ref(failed);
    assert_int_equal(put("e", "h", digest_a, failed, now), SS_OK);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_remove_session(ctx, failed); /* marks it, as a fatal alert */
    SSL_CTX_free(ctx);
    SSL_SESSION_free(failed);
    expect_get("e", "h", digest_a, now, NULL);
    assert_int_equal(ss_session_cache_count(), 0);
}

static void test_verdict_round_trip(void **state)
{
    (void)state;
    SSL_SESSION *s = SSL_SESSION_new();
    struct ss_session_verdict v;
    assert_false(ss_session_get_verdict(s, &v));
    struct ss_verify_result res = {.ok = true,
                                   .relaxations = SS_RELAX_KEY_USAGE};
    assert_int_equal(ss_session_set_verdict(s, &res, 1234567890), SS_OK);
    assert_true(ss_session_get_verdict(s, &v));
    assert_true(v.ok);
    assert_int_equal(v.relaxations, SS_RELAX_KEY_USAGE);
    assert_int_equal(v.verified_at, 1234567890);
    assert_int_equal(ss_session_set_verdict(s, NULL, 5), SS_OK);
    assert_true(ss_session_get_verdict(s, &v));
    assert_false(v.ok);
    assert_int_equal(v.relaxations, 0);
    /* Other application data is no verdict. */
    assert_int_equal(SSL_SESSION_set1_ticket_appdata(s, "something", 9), 1);
    assert_false(ss_session_get_verdict(s, &v));
    SSL_SESSION_free(s);
}

/* The child of a fork made while another thread could hold the cache's
 * lock (ss_session_fork_prepare takes it, as the shim's atfork handler
 * does) can use the cache, and finds its parent's sessions. */
static void test_cache_fork_child_keeps_entries(void **state)
{
    (void)state;
    time_t now = time(NULL);
    SSL_SESSION *s = made_session(now, 600, now);
    assert_int_equal(put("e", "h", digest_a, s, now), SS_OK);
    ss_session_fork_prepare();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ss_session_fork_child();
        alarm(5); /* a lock left held would hang here */
        struct ss_session_key k = key_of("e", "h", digest_a);
        SSL_SESSION *got = ss_session_cache_get(&k, now);
        _exit(got == s ? 0 : 1);
    }
    ss_session_fork_parent();
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    expect_get("e", "h", digest_a, now, s); /* the parent's lock is free */
}

/* ------------------------------------------------------------------ */
/* Ticket keys                                                          */

/* A time 10 s into an epoch. */
static time_t epoch_start(void)
{
    time_t now = time(NULL);
    return now - now % SS_TICKET_ROTATE_S + 10;
}

static void test_ticket_keys_rotate(void **state)
{
    (void)state;
    const time_t t = epoch_start(), I = SS_TICKET_ROTATE_S;
    struct ss_ticket_keys *k = NULL;
    assert_int_equal(ss_ticket_keys_get("rotating", digest_a, NULL, &k,
                                        NULL), SS_OK);
    unsigned char n0[16], n1[16], n2[16], other[16] = {0};
    ss_ticket_keys_name(k, t, n0);
    ss_ticket_keys_name(k, t + I - 11, n1);
    assert_memory_equal(n0, n1, 16); /* the same epoch, the same key */
    assert_int_equal(ss_ticket_keys_find(k, n0, t), 1);
    assert_int_equal(ss_ticket_keys_find(k, other, t), 0);
    ss_ticket_keys_name(k, t + I, n1);
    assert_memory_not_equal(n0, n1, 16);
    assert_int_equal(ss_ticket_keys_find(k, n1, t + I), 1);
    assert_int_equal(ss_ticket_keys_find(k, n0, t + I), 2); /* renew */
    /* A clock that goes back keeps the keys. */
    assert_int_equal(ss_ticket_keys_find(k, n1, t), 1);
    ss_ticket_keys_name(k, t + 2 * I, n2);
    assert_int_equal(ss_ticket_keys_find(k, n0, t + 2 * I), 0);
    assert_int_equal(ss_ticket_keys_find(k, n1, t + 2 * I), 2);
    assert_int_equal(ss_ticket_keys_find(k, n2, t + 2 * I), 1);
    /* Several epochs at once: nothing older survives. */
    assert_int_equal(ss_ticket_keys_find(k, n2, t + 5 * I), 0);
    ss_ticket_keys_put(k);
}

static void test_ticket_keys_shared_per_endpoint_and_digest(void **state)
{
    (void)state;
    struct ss_ticket_keys *a1, *a2, *b, *other;
    assert_int_equal(ss_ticket_keys_get("ep", digest_a, NULL, &a1, NULL),
                     SS_OK);
    assert_int_equal(ss_ticket_keys_get("ep", digest_a, NULL, &a2, NULL),
                     SS_OK);
    assert_int_equal(ss_ticket_keys_get("ep", digest_b, NULL, &b, NULL),
                     SS_OK);
    assert_int_equal(ss_ticket_keys_get("other", digest_a, NULL, &other,
                                        NULL), SS_OK);
    assert_ptr_equal(a1, a2);
    assert_ptr_not_equal(a1, b);
    assert_ptr_not_equal(a1, other);
    time_t t = time(NULL);
    unsigned char na[16], nb[16];
    ss_ticket_keys_name(a1, t, na);
    ss_ticket_keys_name(b, t, nb);
    assert_memory_not_equal(na, nb, 16);
    assert_int_equal(ss_ticket_keys_find(b, na, t), 0);
    /* Nobody holds a1 for a moment (a reload between two contexts): it is
     * taken up again with its keys. */
    ss_ticket_keys_put(a1);
    ss_ticket_keys_put(a2);
    assert_int_equal(ss_ticket_keys_get("ep", digest_a, NULL, &a2, NULL),
                     SS_OK);
    assert_int_equal(ss_ticket_keys_find(a2, na, t), 1);
    ss_ticket_keys_put(a2);
    ss_ticket_keys_put(b);
    ss_ticket_keys_put(other);
}

/* Forked workers rotate to the same keys: the ratchet is deterministic,
 * and one jump of several epochs equals the steps one by one. */
static void test_ticket_keys_ratchet_agrees_after_fork(void **state)
{
    (void)state;
    const time_t t = epoch_start(), I = SS_TICKET_ROTATE_S;
    struct ss_ticket_keys *k = NULL;
    assert_int_equal(ss_ticket_keys_get("forked", digest_a, NULL, &k, NULL),
                     SS_OK);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    ss_session_fork_prepare();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ss_session_fork_child();
        alarm(5);
        unsigned char n[16];
        ss_ticket_keys_name(k, t + 3 * I, n);
        _exit(write(fds[1], n, sizeof(n)) == (ssize_t)sizeof(n) ? 0 : 1);
    }
    ss_session_fork_parent();
    unsigned char mine[16], theirs[16];
    for (int e = 1; e <= 3; e++)
        ss_ticket_keys_name(k, t + e * I, mine);
    assert_int_equal(read(fds[0], theirs, sizeof(theirs)), sizeof(theirs));
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_memory_equal(mine, theirs, 16);
    close(fds[0]);
    close(fds[1]);
    ss_ticket_keys_put(k);
}

/* ------------------------------------------------------------------ */
/* Conns over socketpairs                                               */

static char policy_text[8192];

/* A connect endpoint "c", a listen endpoint "s", and a second listen
 * endpoint "s2" with the same settings; extras are pasted into each. */
static const char *write_policy(const char *name, const char *client_extra,
                                const char *server_extra)
{
    snprintf(policy_text, sizeof(policy_text),
             "version = 1;\n"
             "endpoints = (\n"
             "  { name = \"c\"; connect = \"localhost:1\";\n"
             "    trusted-ca = \"%s\";\n"
             "    %s },\n"
             "  { name = \"s\"; listen = \"127.0.0.1:1\";\n"
             "    certificate = \"%s\"; certificate-key = \"%s\";\n"
             "    %s },\n"
             "  { name = \"s2\"; listen = \"127.0.0.1:2\";\n"
             "    certificate = \"%s\"; certificate-key = \"%s\";\n"
             "    %s }\n"
             ");\n",
             tu_pki_file("trust.pem"), client_extra,
             tu_pki_file("server.pem"), tu_pki_file("server.key"),
             server_extra, tu_pki_file("server.pem"),
             tu_pki_file("server.key"), server_extra);
    return tu_write_file(name, "%s", policy_text);
}

/* trust.pem: the test root, optionally followed by another CA (the
 * same trust for these handshakes, a different file content). */
static void write_trust(bool with_other)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "cat %s %s > %s", tu_pki_file("ca.pem"),
             with_other ? tu_pki_file("other-root.pem") : "",
             tu_pki_file("trust.pem"));
    assert_int_equal(system(cmd), 0);
}

static struct ss_policy *load(const char *path, bool compat)
{
    struct ss_policy *p = NULL;
    struct ss_errbuf err = {{0}};
    int rc = ss_policy_load(path, compat, &p, &err);
    if (rc != SS_OK)
        fail_msg("ss_policy_load: %s: %s", ss_strerror(rc), err.msg);
    return p;
}

static struct ss_policy *load_policy(const char *client_extra,
                                     const char *server_extra)
{
    write_trust(false);
    return load(write_policy("session.cfg", client_extra, server_extra),
                false);
}

struct pair {
    int fd[2];
    struct ss_conn *conn[2]; /* client, server */
};

static void pair_open(struct pair *pr, struct ss_policy *p,
                      const char *server)
{
    tu_socketpair_nonblock(pr->fd);
    struct ss_errbuf err = {{0}};
    if (ss_conn_new(p, tu_endpoint(p, "c"), pr->fd[0], &ss_io_libc,
                    "localhost", &pr->conn[0], &err) != SS_OK ||
        ss_conn_new(p, tu_endpoint(p, server), pr->fd[1], &ss_io_libc,
                    "127.0.0.1", &pr->conn[1], &err) != SS_OK)
        fail_msg("ss_conn_new: %s", err.msg);
}

static void wait_for(struct pair *pr, const int want[2])
{
    struct pollfd pfd[2];
    for (int i = 0; i < 2; i++) {
        pfd[i].fd = want[i] ? pr->fd[i] : -1;
        pfd[i].events = (short)(((want[i] & SS_WANT_READ) ? POLLIN : 0) |
                                ((want[i] & SS_WANT_WRITE) ? POLLOUT : 0));
        pfd[i].revents = 0;
    }
    if (poll(pfd, 2, 5000) <= 0)
        fail_msg("deadlock: client wants %d, server wants %d", want[0],
                 want[1]);
}

static void handshake(struct pair *pr)
{
    for (int round = 0; round < 1000; round++) {
        int rc[2], want[2] = {0, 0};
        for (int i = 0; i < 2; i++) {
            rc[i] = ss_conn_handshake(pr->conn[i]);
            if (rc[i] < 0)
                fail_msg("handshake side %d: %s: %s", i, ss_strerror(rc[i]),
                         ss_conn_error(pr->conn[i]));
            if (rc[i] == SS_WANT_READ || rc[i] == SS_WANT_WRITE)
                want[i] = rc[i];
        }
        if (rc[0] == SS_OK && rc[1] == SS_OK)
            return;
        wait_for(pr, want);
    }
    fail_msg("handshake did not finish");
}

/* The server sends one byte and the client reads it: a TLS 1.3 ticket,
 * sent after the handshake, arrives before it. */
static void server_to_client_byte(struct pair *pr)
{
    size_t n = 0;
    assert_int_equal(ss_conn_write(pr->conn[1], "x", 1, &n), SS_OK);
    (void)ss_conn_flush(pr->conn[1]);
    char c;
    for (int round = 0; round < 100; round++) {
        int rc = ss_conn_read(pr->conn[0], &c, 1, false, &n);
        if (rc == SS_OK && n == 1)
            return;
        if (rc != SS_WANT_READ)
            fail_msg("read: %s: %s", ss_strerror(rc),
                     ss_conn_error(pr->conn[0]));
        int want[2] = {SS_WANT_READ, 0};
        wait_for(pr, want);
    }
    fail_msg("the byte never came");
}

/* close_notify both ways unless abandon (then freed as a forked child
 * would: nothing sent). */
static void pair_close(struct pair *pr, bool abandon)
{
    for (int i = 0; i < 2 && !abandon; i++)
        (void)ss_conn_shutdown(pr->conn[i]);
    for (int i = 0; i < 2; i++) {
        ss_conn_free(pr->conn[i]);
        close(pr->fd[i]);
    }
}

/* One whole connection; returns whether client and server resumed (both
 * must agree). */
static bool connect_once(struct ss_policy *p, const char *server,
                         struct ss_verify_result *client_result,
                         struct ss_verify_result *server_result)
{
    struct pair pr;
    pair_open(&pr, p, server);
    handshake(&pr);
    server_to_client_byte(&pr);
    bool resumed = ss_conn_resumed(pr.conn[0]);
    if (resumed != ss_conn_resumed(pr.conn[1]))
        fail_msg("client resumed: %d, server resumed: %d", resumed,
                 !resumed);
    if (client_result != NULL)
        *client_result = *ss_conn_verify_result(pr.conn[0]);
    if (server_result != NULL)
        *server_result = *ss_conn_verify_result(pr.conn[1]);
    pair_close(&pr, false);
    return resumed;
}

static void test_conn_resumes_tls13_and_tls12(void **state)
{
    (void)state;
    const char *versions[] = {"", "sec-protocol = \"TLSv12\";"};
    for (int v = 0; v < 2; v++) {
        ss_session_cache_clear();
        struct ss_policy *p = load_policy(versions[v], versions[v]);
        struct ss_verify_result cr, sr;
        assert_false(connect_once(p, "s", &cr, &sr));
        assert_false(cr.resumed);
        assert_true(cr.ok);
        assert_int_equal(ss_session_cache_count(), 1);
        assert_true(connect_once(p, "s", &cr, &sr));
        /* The result of a resumed handshake: accepted when the session
         * was made, and saying it was resumed. */
        assert_true(cr.resumed);
        assert_true(cr.ok);
        assert_int_equal(cr.x509_error, X509_V_OK);
        assert_true(sr.resumed);
        assert_false(sr.ok); /* no client certificate was asked for */
        /* TLS 1.3 tickets are used once: the resumption brought a new one,
         * which the third connection uses. */
        assert_true(connect_once(p, "s", NULL, NULL));
        /* Tickets only: the server keeps no session of its own. */
        assert_int_equal(
            SSL_CTX_sess_number(tu_endpoint(p, "s")->tls->ctx), 0);
        ss_policy_unref(p);
    }
}

/* A connection that resumed, and has not read its new ticket yet, does
 * not take the cached session from one that starts meanwhile: each
 * resumes with its own copy (before, OpenSSL's "used" mark on the shared
 * TLS 1.3 session dropped it, and the second connection was full). */
static void test_conn_concurrent_resumptions_share(void **state)
{
    (void)state;
    ss_session_cache_clear();
    struct ss_policy *p = load_policy("", "");
    assert_false(connect_once(p, "s", NULL, NULL));
    struct pair first;
    pair_open(&first, p, "s");
    handshake(&first);
    assert_true(ss_conn_resumed(first.conn[0]));
    assert_true(connect_once(p, "s", NULL, NULL));
    pair_close(&first, false);
    ss_policy_unref(p);
}

static void test_conn_context_settings(void **state)
{
    (void)state;
    struct ss_policy *p = load_policy("", "");
    SSL_CTX *client = tu_endpoint(p, "c")->tls->ctx;
    SSL_CTX *server = tu_endpoint(p, "s")->tls->ctx;
    assert_int_equal(SSL_CTX_get_session_cache_mode(client),
                     SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    assert_int_equal(SSL_CTX_get_session_cache_mode(server),
                     SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    assert_int_equal(SSL_CTX_get_num_tickets(server), 1);
    assert_int_equal(SSL_CTX_get_timeout(server), SS_TICKET_ROTATE_S);
    assert_int_equal(SSL_CTX_get_options(server) & SSL_OP_NO_TICKET, 0);
    ss_policy_unref(p);

    p = load_policy("session-resumption = false;",
                    "session-resumption = false;");
    client = tu_endpoint(p, "c")->tls->ctx;
    server = tu_endpoint(p, "s")->tls->ctx;
    assert_int_equal(SSL_CTX_get_session_cache_mode(client),
                     SSL_SESS_CACHE_OFF);
    assert_int_equal(SSL_CTX_get_session_cache_mode(server),
                     SSL_SESS_CACHE_OFF);
    assert_int_equal(SSL_CTX_get_num_tickets(server), 0);
    assert_int_not_equal(SSL_CTX_get_options(server) & SSL_OP_NO_TICKET, 0);
    assert_int_not_equal(SSL_CTX_get_options(client) & SSL_OP_NO_TICKET, 0);
    assert_null(tu_endpoint(p, "s")->tls->tickets);
    ss_policy_unref(p);
}

static void test_conn_resumption_off(void **state)
{
    (void)state;
    /* Off on the client: nothing kept, nothing offered. */
    struct ss_policy *p = load_policy("session-resumption = false;", "");
    assert_false(connect_once(p, "s", NULL, NULL));
    assert_int_equal(ss_session_cache_count(), 0);
    assert_false(connect_once(p, "s", NULL, NULL));
    ss_policy_unref(p);
    /* Off on the server: no ticket (TLS 1.3) or none accepted. */
    const char *versions[] = {"", "sec-protocol = \"TLSv12\";"};
    for (int v = 0; v < 2; v++) {
        ss_session_cache_clear();
        char server[128];
        snprintf(server, sizeof(server), "session-resumption = false; %s",
                 versions[v]);
        p = load_policy(versions[v], server);
        assert_false(connect_once(p, "s", NULL, NULL));
        assert_false(connect_once(p, "s", NULL, NULL));
        ss_policy_unref(p);
    }
}

/* A freed conn that sent no close_notify (a forked child's copy, a conn
 * dropped at exit) leaves its session resumable. */
static void test_conn_free_without_close_notify_keeps_session(void **state)
{
    (void)state;
    struct ss_policy *p = load_policy("", "");
    struct pair pr;
    pair_open(&pr, p, "s");
    handshake(&pr);
    server_to_client_byte(&pr);
    pair_close(&pr, true);
    assert_true(connect_once(p, "s", NULL, NULL));
    ss_policy_unref(p);
}

/* A reload that builds new contexts with the same trust resumes: the
 * cache is the process's and the ticket keys are the endpoint's. Both
 * hold even when the old snapshot is gone before the new one is built
 * (contexts built at first use). */
static void test_conn_reload_same_trust_resumes(void **state)
{
    (void)state;
    struct ss_policy *p1 = load_policy("", "");
    assert_false(connect_once(p1, "s", NULL, NULL));
    unsigned char d1[SS_TRUST_DIGEST_LEN];
    memcpy(d1, tu_endpoint(p1, "c")->tls->trust_digest, sizeof(d1));
    /* Its contexts and ticket keys' last holder goes. */
    ss_policy_unref(p1);
    /* Only the log level changes. */
    char text[sizeof(policy_text)];
    snprintf(text, sizeof(text), "%s", policy_text);
    const char *path = tu_write_file(
        "session.cfg", "log = { level = \"error\"; };\n%s", text);
    struct ss_policy *p2 = load(path, false);
    assert_memory_equal(tu_endpoint(p2, "c")->tls->trust_digest, d1,
                        SS_TRUST_DIGEST_LEN);
    assert_true(connect_once(p2, "s", NULL, NULL));
    ss_policy_unref(p2);
}

/* trusted-ca rewritten in place (same path, other content): the client's
 * sessions are not offered any more, and the server's old tickets (its
 * own trusted-ca changed too) do not decrypt. */
static void test_conn_reload_trust_change_is_full(void **state)
{
    (void)state;
    const char *both = "trusted-ca = \"%s\";";
    char server[600];
    snprintf(server, sizeof(server), both, tu_pki_file("trust.pem"));
    struct ss_policy *p1 = load_policy("", server);
    assert_false(connect_once(p1, "s", NULL, NULL));
    assert_true(connect_once(p1, "s", NULL, NULL));
    write_trust(true);
    struct ss_policy *p2 = load(tu_pki_file("session.cfg"), false);
    assert_memory_not_equal(tu_endpoint(p1, "c")->tls->trust_digest,
                            tu_endpoint(p2, "c")->tls->trust_digest,
                            SS_TRUST_DIGEST_LEN);
    assert_false(connect_once(p2, "s", NULL, NULL));
    assert_true(connect_once(p2, "s", NULL, NULL));
    /* The client's new session is not for the old trust either. */
    assert_false(connect_once(p1, "s", NULL, NULL));
    ss_policy_unref(p1);
    ss_policy_unref(p2);
    write_trust(false);
}

/* What goes into the digest changes it; what does not, does not. */
static void test_trust_digest_fields(void **state)
{
    (void)state;
    write_trust(false);
    struct ss_policy *base = load(write_policy("d0.cfg", "", ""), false);
    const unsigned char *d0 = tu_endpoint(base, "c")->tls->trust_digest;
    const char *changes[] = {
        "tls-target-name = \"localhost\";",
        "tls-target-name-check = \"no\";",
        "sec-protocol = \"TLSv13\";",
        "cipher-list = \"ECDHE-RSA-AES128-GCM-SHA256\";",
        "cipher-suites = \"TLS_AES_128_GCM_SHA256\";",
        "allow-peer = ( \"CN=secshim-server\" );",
        "x509-strict = false;",
        NULL,
    };
    char extra[1200];
    for (int i = 0; changes[i] != NULL; i++) {
        struct ss_policy *p = load(write_policy("d1.cfg", changes[i], ""),
                                   false);
        if (memcmp(d0, tu_endpoint(p, "c")->tls->trust_digest,
                   SS_TRUST_DIGEST_LEN) == 0)
            fail_msg("'%s' does not change the digest", changes[i]);
        ss_policy_unref(p);
    }
    snprintf(extra, sizeof(extra), "tls-crl = \"%s\";",
             tu_pki_file("crl.pem"));
    struct ss_policy *p = load(write_policy("d1.cfg", extra, ""), false);
    assert_memory_not_equal(d0, tu_endpoint(p, "c")->tls->trust_digest,
                            SS_TRUST_DIGEST_LEN);
    ss_policy_unref(p);
    snprintf(extra, sizeof(extra), "tls-mutual = true; certificate = \"%s\";"
             " certificate-key = \"%s\";", tu_pki_file("client.pem"),
             tu_pki_file("client.key"));
    p = load(write_policy("d1.cfg", extra, ""), false);
    assert_memory_not_equal(d0, tu_endpoint(p, "c")->tls->trust_digest,
                            SS_TRUST_DIGEST_LEN);
    ss_policy_unref(p);
    /* Asking for client certificates, on a listen endpoint that already
     * trusts a CA. */
    snprintf(extra, sizeof(extra), "trusted-ca = \"%s\";",
             tu_pki_file("ca.pem"));
    struct ss_policy *one_way = load(write_policy("d1.cfg", "", extra),
                                     false);
    snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
             " tls-mutual = true;");
    struct ss_policy *mutual = load(write_policy("d2.cfg", "", extra),
                                    false);
    assert_memory_not_equal(tu_endpoint(one_way, "s")->tls->trust_digest,
                            tu_endpoint(mutual, "s")->tls->trust_digest,
                            SS_TRUST_DIGEST_LEN);
    ss_policy_unref(one_way);
    ss_policy_unref(mutual);
    /* The compatibility mode, the same file otherwise. */
    p = load(tu_pki_file("d0.cfg"), true);
    assert_memory_not_equal(d0, tu_endpoint(p, "c")->tls->trust_digest,
                            SS_TRUST_DIGEST_LEN);
    ss_policy_unref(p);
    /* allow-peer narrowed by one entry: another digest again, so the
     * sessions accepted under the wider list are not resumed. */
    struct ss_policy *wide = load(write_policy(
        "d1.cfg", "allow-peer = ( \"CN=secshim-server\", \"DNS:x.example\" );",
        ""), false);
    struct ss_policy *narrow = load(write_policy(
        "d2.cfg", "allow-peer = ( \"CN=secshim-server\" );", ""), false);
    assert_memory_not_equal(tu_endpoint(wide, "c")->tls->trust_digest,
                            tu_endpoint(narrow, "c")->tls->trust_digest,
                            SS_TRUST_DIGEST_LEN);
    ss_policy_unref(wide);
    ss_policy_unref(narrow);
    /* Neither the timeout nor the EOF rule decides whom to trust. */
    p = load(write_policy("d1.cfg", "handshake-timeout = 3; "
                          "tls-unexpected-eof = \"eof\";", ""), false);
    assert_memory_equal(d0, tu_endpoint(p, "c")->tls->trust_digest,
                        SS_TRUST_DIGEST_LEN);
    ss_policy_unref(p);
    ss_policy_unref(base);
}

/* A session is never used past its peer certificate's notAfter, however
 * long its timeout, ticket lifetime and verdict would allow (the client's
 * cache, and the limit a server applies to a ticket's session). */
static void test_cache_stops_at_peer_not_after(void **state)
{
    (void)state;
    struct ss_policy *p = load_policy("", "");
    assert_false(connect_once(p, "s", NULL, NULL));
    struct ss_session_key k = key_of("c", "localhost",
                                     tu_endpoint(p, "c")->tls->trust_digest);
    SSL_SESSION *real = ss_session_cache_get(&k, time(NULL));
    assert_non_null(real);
    SSL_SESSION *s = SSL_SESSION_dup(real);
    SSL_SESSION_free(real);
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(
                         SSL_SESSION_get0_peer(s)), &tm), 1);
    time_t not_after = timegm(&tm);
    /* Made and verified 100 s before the certificate expires. */
    SSL_SESSION_set_time(s, (long)(not_after - 100));
    struct ss_verify_result ok = {.ok = true};
    assert_int_equal(ss_session_set_verdict(s, &ok, not_after - 100), SS_OK);
    /* What the server checks a decrypted ticket against, too. */
    assert_int_equal(ss_session_trusted_until(s), not_after);
    assert_int_equal(put("c", "other", k.digest, s, not_after - 100), SS_OK);
    expect_get("c", "other", k.digest, not_after - 1, s);
    expect_get("c", "other", k.digest, not_after, NULL);
    ss_policy_unref(p);
}

/* The server's tickets are sealed with the endpoint's keys (the client's
 * cached ticket starts with their name), so each listen endpoint accepts
 * only its own. */
static void test_conn_tickets_use_endpoint_keys(void **state)
{
    (void)state;
    struct ss_policy *p = load_policy("", "");
    assert_false(connect_once(p, "s", NULL, NULL));
    struct ss_session_key k = key_of("c", "localhost",
                                     tu_endpoint(p, "c")->tls->trust_digest);
    SSL_SESSION *sess = ss_session_cache_get(&k, time(NULL));
    assert_non_null(sess);
    const unsigned char *tick = NULL;
    size_t len = 0;
    SSL_SESSION_get0_ticket(sess, &tick, &len);
    assert_true(len > SS_TICKET_KEY_NAME_LEN);
    unsigned char name[SS_TICKET_KEY_NAME_LEN];
    ss_ticket_keys_name(tu_endpoint(p, "s")->tls->tickets, time(NULL), name);
    assert_memory_equal(tick, name, SS_TICKET_KEY_NAME_LEN);
    SSL_SESSION_free(sess);
    assert_ptr_not_equal(tu_endpoint(p, "s")->tls->tickets,
                         tu_endpoint(p, "s2")->tls->tickets);
    /* s's ticket offered to s2: a full handshake. */
    assert_false(connect_once(p, "s2", NULL, NULL));
    ss_policy_unref(p);
}

/* A ticket of the previous epoch still resumes and is renewed (TLS 1.2:
 * the renewed session is kept again); two epochs on it is refused. */
static void test_conn_ticket_rotation_renews(void **state)
{
    (void)state;
    struct ss_policy *p = load_policy("sec-protocol = \"TLSv12\";",
                                      "sec-protocol = \"TLSv12\";");
    struct ss_ticket_keys *keys = tu_endpoint(p, "s")->tls->tickets;
    struct ss_session_key k = key_of("c", "localhost",
                                     tu_endpoint(p, "c")->tls->trust_digest);
    const time_t I = SS_TICKET_ROTATE_S;
    /* Start at the beginning of an epoch, whatever the time is. */
    time_t now = time(NULL);
    long skew = (long)(I - now % I) + 1;
    ss_ticket_clock_skew(skew);
    assert_false(connect_once(p, "s", NULL, NULL));
    SSL_SESSION *first = ss_session_cache_get(&k, time(NULL));
    ss_ticket_clock_skew(skew + I);
    assert_true(connect_once(p, "s", NULL, NULL));
    SSL_SESSION *renewed = ss_session_cache_get(&k, time(NULL));
    assert_ptr_not_equal(first, renewed);
    const unsigned char *tick = NULL;
    size_t len = 0;
    SSL_SESSION_get0_ticket(renewed, &tick, &len);
    unsigned char name[SS_TICKET_KEY_NAME_LEN];
    ss_ticket_keys_name(keys, time(NULL) + skew + I, name);
    assert_true(len > SS_TICKET_KEY_NAME_LEN);
    assert_memory_equal(tick, name, SS_TICKET_KEY_NAME_LEN);
    /* The renewed ticket is from this epoch: it outlives the next. */
    ss_ticket_clock_skew(skew + 2 * I);
    assert_true(connect_once(p, "s", NULL, NULL));
    ss_ticket_clock_skew(skew + 4 * I);
    assert_false(connect_once(p, "s", NULL, NULL));
    SSL_SESSION_free(first);
    SSL_SESSION_free(renewed);
    ss_ticket_clock_skew(0);
    ss_policy_unref(p);
}

/* However long a chain of resumptions renews its tickets, the server
 * verifies in full again once the verification is a day old. */
static void test_conn_server_refuses_old_verdict(void **state)
{
    (void)state;
    struct ss_policy *p = load_policy("", "");
    const time_t I = SS_TICKET_ROTATE_S;
    /* Start at the beginning of an epoch, so that each step below is one
     * epoch on: the ticket of the step before always decrypts. */
    time_t now = time(NULL);
    long skew = (long)(I - now % I) + 1;
    ss_ticket_clock_skew(skew);
    assert_false(connect_once(p, "s", NULL, NULL));
    int resumed = 0, steps = SS_SESSION_REVERIFY_S / I;
    for (int i = 1; i < steps; i++) {
        ss_ticket_clock_skew(skew + i * I);
        resumed += connect_once(p, "s", NULL, NULL);
    }
    assert_int_equal(resumed, steps - 1);
    /* A day after the full handshake, one epoch after the last ticket. */
    ss_ticket_clock_skew(skew + steps * I);
    assert_false(connect_once(p, "s", NULL, NULL));
    assert_true(connect_once(p, "s", NULL, NULL));
    ss_ticket_clock_skew(0);
    ss_policy_unref(p);
}

/* Compatibility mode: a relaxation used in the full handshake is in the
 * result of every handshake that resumes its session, on both sides. */
static void test_conn_resumed_result_keeps_relaxations(void **state)
{
    (void)state;
    write_trust(false);
    char client[600];
    snprintf(client, sizeof(client), "tls-mutual = true; certificate = "
             "\"%s\"; certificate-key = \"%s\";",
             tu_pki_file("client-no-clientauth.pem"),
             tu_pki_file("client-no-clientauth.key"));
    char server[600];
    snprintf(server, sizeof(server), "tls-mutual = true; trusted-ca = "
             "\"%s\";", tu_pki_file("ca.pem"));
    struct ss_policy *p = load(write_policy("compat.cfg", client, server),
                               true);
    struct ss_verify_result cr, sr;
    assert_false(connect_once(p, "s", &cr, &sr));
    assert_true(sr.ok);
    assert_int_equal(sr.relaxations, SS_RELAX_KEY_USAGE);
    assert_true(connect_once(p, "s", &cr, &sr));
    assert_true(sr.resumed);
    assert_true(sr.ok);
    assert_int_equal(sr.relaxations, SS_RELAX_KEY_USAGE);
    assert_true(cr.resumed && cr.ok);
    assert_int_equal(cr.relaxations, 0);
    ss_policy_unref(p);
}

static int group_setup(void **state)
{
    (void)state;
    tu_pki();
    struct ss_errbuf err;
    ss_log_configure(SS_LOG_ERROR, "stderr", &err);
    return 0;
}

static int group_teardown(void **state)
{
    ss_session_cache_clear();
    return tu_group_teardown(state);
}

#define T(fn) cmocka_unit_test_setup(fn, per_test_setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_cache_key_is_endpoint_and_host),
        T(test_cache_keeps_the_newest),
        T(test_cache_bound_evicts_least_recent),
        T(test_cache_expires_at_timeout),
        T(test_cache_verdict_age_limit),
        T(test_cache_digest_mismatch_drops),
        T(test_cache_refuses_unusable_sessions),
        T(test_verdict_round_trip),
        T(test_cache_fork_child_keeps_entries),
        T(test_ticket_keys_rotate),
        T(test_ticket_keys_shared_per_endpoint_and_digest),
        T(test_ticket_keys_ratchet_agrees_after_fork),
        T(test_conn_resumes_tls13_and_tls12),
        T(test_conn_concurrent_resumptions_share),
    T(test_conn_context_settings),
        T(test_conn_resumption_off),
        T(test_conn_free_without_close_notify_keeps_session),
        T(test_conn_reload_same_trust_resumes),
        T(test_conn_reload_trust_change_is_full),
        T(test_trust_digest_fields),
        T(test_cache_stops_at_peer_not_after),
        T(test_conn_tickets_use_endpoint_keys),
        T(test_conn_ticket_rotation_renews),
        T(test_conn_server_refuses_old_verdict),
        T(test_conn_resumed_result_keeps_relaxations),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
