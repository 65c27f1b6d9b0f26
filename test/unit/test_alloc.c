/*
 * test_alloc.c - allocation failure in the engine (issue 12): for each
 * operation below, every allocation it makes is failed in turn, one per
 * run, and the call must fail cleanly (a negative SS_ERR_* with a
 * sentence, or success when the failure was absorbed), never crash, and
 * leave the process serving: a fresh connection, hook off, handshakes
 * and carries bytes.
 *
 * The hook is this program's own, none is in the library: it defines
 * ss_malloc/ss_calloc/ss_realloc/ss_strdup (alloc.h), which the linker
 * then takes instead of the archive's alloc.o, and gives OpenSSL its
 * allocator with CRYPTO_set_mem_functions before OpenSSL's first
 * allocation. What neither reaches (libconfig's and libc's own
 * allocations) is not failed. docs/testing.md, "Unit tests", says what
 * is covered.
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
#include <unistd.h>

#include <openssl/crypto.h>

#include "secshim/alloc.h"
#include "secshim/conn.h"
#include "secshim/log.h"
#include "secshim/policy.h"
#include "secshim/session.h"
#include "secshim/tlsctx.h"
#include "testutil.h"

/* ------------------------------------------------------------------ */
/* The hook                                                             */

/* While armed, every allocation is counted; the fail_at-th (1-based)
 * returns NULL, once. The program is single-threaded. */
static struct {
    bool armed;
    unsigned long fail_at;   /* 0: count only */
    unsigned long calls;     /* allocations since arming */
    unsigned long engine;    /* of which the engine's own (alloc.h) */
    bool injected;           /* the fail_at-th came and was failed */
} hook;

/* In the counting run (fail_at 0): which allocations are the engine's,
 * so that each of those is failed even when OpenSSL's are sampled. */
#define COUNT_MAX 65536
static bool engine_at[COUNT_MAX + 1];

static void hook_arm(unsigned long fail_at)
{
    if (fail_at == 0)
        memset(engine_at, 0, sizeof(engine_at));
    hook.armed = true;
    hook.fail_at = fail_at;
    hook.calls = 0;
    hook.engine = 0;
    hook.injected = false;
}

static void hook_disarm(void)
{
    hook.armed = false;
}

/* Counts one allocation; whether it is the one to fail. */
static bool hook_fails(bool engine)
{
    if (!hook.armed)
        return false;
    hook.calls++;
    if (engine)
        hook.engine++;
    if (hook.fail_at == 0 && hook.calls <= COUNT_MAX)
        engine_at[hook.calls] = engine;
    if (hook.calls != hook.fail_at)
        return false;
    hook.injected = true;
    errno = ENOMEM;
    return true;
}

void *ss_malloc(size_t n)
{
    return hook_fails(true) ? NULL : malloc(n);
}

void *ss_calloc(size_t count, size_t size)
{
    return hook_fails(true) ? NULL : calloc(count, size);
}

void *ss_realloc(void *p, size_t n)
{
    return hook_fails(true) ? NULL : realloc(p, n);
}

char *ss_strdup(const char *s)
{
    return hook_fails(true) ? NULL : strdup(s);
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return hook_fails(false) ? NULL : malloc(n);
}

/* As OpenSSL's own CRYPTO_realloc: size 0 frees. */
static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    if (n == 0) {
        free(p);
        return NULL;
    }
    return hook_fails(false) ? NULL : realloc(p, n);
}

static void ossl_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    free(p);
}

/* ------------------------------------------------------------------ */
/* Policies and pairs                                                   */

/* Mutual TLS with allow-peer on both sides (so the peer identities, the
 * client's certificate and the server's verification all allocate),
 * session resumption on (the default). */
static const char *mutual_cfg;
/* The client trusts another root: the server must never be accepted. */
static const char *untrusted_cfg;
/* The policy the fresh connections after each failure use: loaded once,
 * like the shim's snapshot, and the one the connection operations use. */
static struct ss_policy *serving;

/*
 * The keys of mutual_cfg are ECDSA (test/unit/ec-pki.sh), not the PKI's
 * RSA: OpenSSL 3.0 refreshes an RSA key's blinding every 32 private-key
 * operations (BN_BLINDING_update), and when an allocation fails in
 * BN_BLINDING_create_param after the new blinding value is drawn, it
 * reports success with A and Ai no longer a pair: the key then makes bad
 * signatures ("bad signature" at the peer) until the next refresh, 32
 * operations later. That is OpenSSL's to fix, not the engine's;
 * --rsa runs this program with the RSA keys and shows it.
 */
static bool use_rsa;

static void write_policies(void)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "test/unit/ec-pki.sh %s", tu_pki());
    if (system(cmd) != 0)
        fail_msg("%s failed", cmd);
    const char *ca = use_rsa ? "ca.pem" : "ec-ca.pem";
    const char *pre = use_rsa ? "" : "ec-";
    char cert[2][64], key[2][64];
    snprintf(cert[0], sizeof(cert[0]), "%sclient.pem", pre);
    snprintf(key[0], sizeof(key[0]), "%sclient.key", pre);
    snprintf(cert[1], sizeof(cert[1]), "%sserver.pem", pre);
    snprintf(key[1], sizeof(key[1]), "%sserver.key", pre);
    char client[1200], server[1200];
    snprintf(client, sizeof(client),
             "tls-mutual = true; certificate = \"%s\";\n"
             "    certificate-key = \"%s\"; trusted-ca = \"%s\";\n"
             "    allow-peer = ( \"DNS:localhost\" );",
             tu_pki_file(cert[0]), tu_pki_file(key[0]), tu_pki_file(ca));
    snprintf(server, sizeof(server),
             "tls-mutual = true; trusted-ca = \"%s\";\n"
             "    certificate = \"%s\"; certificate-key = \"%s\";\n"
             "    allow-peer = ( \"CN=secshim-client\" );",
             tu_pki_file(ca), tu_pki_file(cert[1]), tu_pki_file(key[1]));
    const char *fmt = "version = 1;\n"
                      "endpoints = (\n"
                      "  { name = \"c\"; connect = \"localhost:1\";\n"
                      "    %s },\n"
                      "  { name = \"s\"; listen = \"127.0.0.1:1\";\n"
                      "    %s }\n"
                      ");\n";
    mutual_cfg = strdup(tu_write_file("mutual.cfg", fmt, client, server));
    snprintf(client, sizeof(client), "trusted-ca = \"%s\";",
             tu_pki_file("other-root.pem"));
    snprintf(server, sizeof(server),
             "certificate = \"%s\"; certificate-key = \"%s\";",
             tu_pki_file("server.pem"), tu_pki_file("server.key"));
    untrusted_cfg =
        strdup(tu_write_file("untrusted.cfg", fmt, client, server));
    assert_non_null(mutual_cfg);
    assert_non_null(untrusted_cfg);
}

static struct ss_policy *load_or_fail(const char *path)
{
    struct ss_policy *p = NULL;
    struct ss_errbuf err = {{0}};
    int rc = ss_policy_load(path, false, &p, &err);
    if (rc != SS_OK)
        fail_msg("ss_policy_load %s: %s: %s", path, ss_strerror(rc),
                 err.msg);
    return p;
}

struct pair {
    int fd[2];               /* [0] client, [1] server */
    struct ss_conn *conn[2];
};

/* Both conns over a fresh socketpair; SS_OK or the first failure (the
 * pair is then still freed by pair_free). */
static int pair_new(struct pair *pr, struct ss_policy *p,
                    struct ss_errbuf *err)
{
    memset(pr, 0, sizeof(*pr));
    tu_socketpair_nonblock(pr->fd);
    int rc = ss_conn_new(p, tu_endpoint(p, "c"), pr->fd[0], &ss_io_libc,
                         "localhost", &pr->conn[0], err);
    if (rc < 0)
        return rc;
    return ss_conn_new(p, tu_endpoint(p, "s"), pr->fd[1], &ss_io_libc,
                       "127.0.0.1", &pr->conn[1], err);
}

static void pair_free(struct pair *pr)
{
    for (int i = 0; i < 2; i++) {
        ss_conn_free(pr->conn[i]);
        pr->conn[i] = NULL;
        close(pr->fd[i]);
    }
}

/* Waits (bounded) for what the conns want; a wait that times out is a
 * hang, which an allocation failure must never cause. */
static void wait_for_wants(const struct pair *pr)
{
    struct pollfd pfd[2];
    for (int i = 0; i < 2; i++) {
        int want = ss_conn_wants(pr->conn[i]);
        pfd[i].fd = want ? pr->fd[i] : -1;
        pfd[i].events = (short)(((want & SS_WANT_READ) ? POLLIN : 0) |
                                ((want & SS_WANT_WRITE) ? POLLOUT : 0));
        pfd[i].revents = 0;
    }
    if (poll(pfd, 2, 3000) <= 0)
        fail_msg("hang: client wants %d, server wants %d (allocation %lu)",
                 ss_conn_wants(pr->conn[0]), ss_conn_wants(pr->conn[1]),
                 hook.fail_at);
}

/* Drives both handshakes: SS_OK when both ended, or the first negative
 * result with that side's sentence in *msg. */
static int drive_handshake(struct pair *pr, const char **msg)
{
    for (int round = 0; round < 1000; round++) {
        int done = 0;
        for (int i = 0; i < 2; i++) {
            int rc = ss_conn_handshake(pr->conn[i]);
            if (rc < 0) {
                *msg = ss_conn_error(pr->conn[i]);
                return rc;
            }
            done += rc == SS_OK;
        }
        if (done == 2)
            return SS_OK;
        wait_for_wants(pr);
    }
    fail_msg("the handshake did not end in 1000 rounds");
    return SS_ERR_STATE; /* not reached: fail_msg does not return */
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31 + seed);
}

#define TRANSFER_MAX (48 * 1024)

/* Sends len bytes from one side to the other and checks they arrive
 * whole: SS_OK, or the first negative result with its sentence. */
static int transfer(struct pair *pr, int from, size_t len, const char **msg)
{
    static unsigned char out[TRANSFER_MAX], in[TRANSFER_MAX];
    assert_true(len <= TRANSFER_MAX);
    fill_pattern(out, len, (unsigned)from + 7);
    struct ss_conn *w = pr->conn[from], *r = pr->conn[1 - from];
    size_t sent = 0, got = 0;
    for (int round = 0; round < 10000 && got < len; round++) {
        size_t n = 0;
        int rc = sent < len ? ss_conn_write(w, out + sent, len - sent, &n)
                            : ss_conn_flush(w);
        if (rc < 0) {
            *msg = ss_conn_error(w);
            return rc;
        }
        sent += rc == SS_OK ? n : 0;
        rc = ss_conn_flush(w);
        if (rc < 0) {
            *msg = ss_conn_error(w);
            return rc;
        }
        size_t m = 0;
        rc = ss_conn_read(r, in + got, len - got, false, &m);
        if (rc < 0) {
            *msg = ss_conn_error(r);
            return rc;
        }
        if (rc == SS_EOF)
            fail_msg("EOF after %zu of %zu bytes", got, len);
        got += rc == SS_OK ? m : 0;
        if (n == 0 && m == 0)
            wait_for_wants(pr);
    }
    assert_int_equal(got, len);
    assert_memory_equal(in, out, len);
    return SS_OK;
}

/* ------------------------------------------------------------------ */
/* The operations                                                       */

/* What one run of an operation made, for its cleanup. */
struct run {
    struct ss_policy *policy;
    struct ss_tlsctx *tls;
    struct pair pr;
    bool have_pair;
    struct ss_errbuf err;
    const char *msg;         /* the failure's sentence */
};

struct op {
    const char *name;
    /* Unarmed: what the operation starts from. May be NULL. */
    void (*prepare)(struct run *r);
    /* Armed: the operation; SS_OK or a negative ss_err, with r->msg. */
    int (*run)(struct run *r);
    /* Whether the operation, unarmed, is refused (the untrusted
     * server): then no failure may ever turn it into SS_OK. */
    bool refused;
    /* Unarmed, after the run (rc its result): what the operation made
     * must work as if nothing had failed. May be NULL. */
    void (*check)(struct run *r, int rc);
};

static void run_free(struct run *r)
{
    if (r->have_pair)
        pair_free(&r->pr);
    ss_tlsctx_free(r->tls);
    ss_policy_unref(r->policy);
    memset(r, 0, sizeof(*r));
}

static void serve_or_fail(struct ss_policy *p, const char *what);

/* The operation being judged, for messages (hook.fail_at: which of its
 * allocations failed). */
static const char *current_op;

/* The snapshot a load returned serves a connection (it is published
 * whole). */
static void check_loaded_serves(struct run *r, int rc)
{
    if (rc == SS_OK)
        serve_or_fail(r->policy, "the snapshot it returned");
}

/* An endpoint's context build, at its first need (ss_policy_tls), as
 * the shim makes it. */
static int op_policy_tls(struct run *r)
{
    bool built_here = false;
    r->msg = r->err.msg;
    return ss_policy_tls(r->policy, tu_endpoint(r->policy, "s"),
                         &built_here, &r->err);
}

/* A failed allocation is not the endpoint's fault: the next need builds
 * the context, and the snapshot serves. */
static void check_built_again(struct run *r, int rc)
{
    (void)rc;
    struct ss_errbuf err = {{0}};
    int again = ss_policy_build_all(r->policy, &err);
    if (again != SS_OK)
        fail_msg("%s, allocation %lu failed: then the build again: %s: %s",
                 current_op, hook.fail_at, ss_strerror(again), err.msg);
    serve_or_fail(r->policy, "the snapshot");
}

static int op_policy_parse(struct run *r)
{
    r->msg = r->err.msg;
    return ss_policy_parse(mutual_cfg, false, &r->policy, &r->err);
}

static int op_policy_load(struct run *r)
{
    r->msg = r->err.msg;
    return ss_policy_load(mutual_cfg, false, &r->policy, &r->err);
}

static void prepare_parsed(struct run *r)
{
    struct ss_errbuf err = {{0}};
    if (ss_policy_parse(mutual_cfg, false, &r->policy, &err) != SS_OK)
        fail_msg("ss_policy_parse: %s", err.msg);
}

static int tlsctx_of(struct run *r, const char *name)
{
    r->msg = r->err.msg;
    return ss_tlsctx_new(mutual_cfg, tu_endpoint(r->policy, name), false,
                         &r->tls, &r->err);
}

static int op_tlsctx_client(struct run *r)
{
    return tlsctx_of(r, "c");
}

static int op_tlsctx_server(struct run *r)
{
    return tlsctx_of(r, "s");
}

static void prepare_serving(struct run *r)
{
    ss_policy_ref(serving);
    r->policy = serving;
    ss_session_cache_clear();
}

static int op_conn_new(struct run *r)
{
    r->have_pair = true;
    r->msg = r->err.msg;
    return pair_new(&r->pr, r->policy, &r->err);
}

static void prepare_pair(struct run *r)
{
    prepare_serving(r);
    r->have_pair = true;
    if (pair_new(&r->pr, r->policy, &r->err) != SS_OK)
        fail_msg("ss_conn_new: %s", r->err.msg);
}

/* The handshake, then one byte from the server: in TLS 1.3 the session
 * ticket comes with it and goes into the client's cache. */
static int handshake_and_ticket(struct run *r)
{
    int rc = drive_handshake(&r->pr, &r->msg);
    if (rc < 0)
        return rc;
    rc = transfer(&r->pr, 1, 1, &r->msg);
    if (rc < 0)
        return rc;
    /* A failure the engine absorbed must not change the verdict. */
    for (int i = 0; i < 2; i++)
        if (!ss_conn_verify_result(r->pr.conn[i])->ok)
            fail_msg("side %d accepted without a verified peer", i);
    return SS_OK;
}

static int op_full_handshake(struct run *r)
{
    return handshake_and_ticket(r);
}

/* One whole connection (not armed) leaves a session in the cache. */
static void prepare_cached_session(struct run *r)
{
    prepare_serving(r);
    struct pair pr;
    const char *msg = "";
    if (pair_new(&pr, r->policy, &r->err) != SS_OK ||
        drive_handshake(&pr, &msg) != SS_OK ||
        transfer(&pr, 1, 1, &msg) != SS_OK)
        fail_msg("the first connection: %s %s", r->err.msg, msg);
    assert_false(ss_conn_resumed(pr.conn[0]));
    pair_free(&pr);
    assert_int_equal(ss_session_cache_count(), 1);
}

/* The client takes the cached session (ss_conn_new), both resume, and
 * the new ticket replaces it in the cache. */
static int op_resumed_handshake(struct run *r)
{
    int rc = op_conn_new(r);
    if (rc < 0)
        return rc;
    rc = handshake_and_ticket(r);
    if (rc < 0)
        return rc;
    if (!hook.injected && !ss_conn_resumed(r->pr.conn[0]))
        fail_msg("the handshake did not resume");
    return SS_OK;
}

static void prepare_open_pair(struct run *r)
{
    prepare_pair(r);
    const char *msg = "";
    if (drive_handshake(&r->pr, &msg) != SS_OK)
        fail_msg("handshake: %s", msg);
}

/* Three records each way (the record buffers are given back when idle,
 * so reading allocates them again). */
static int op_read_write(struct run *r)
{
    int rc = transfer(&r->pr, 0, 40000, &r->msg);
    if (rc < 0)
        return rc;
    return transfer(&r->pr, 1, 40000, &r->msg);
}

static void prepare_untrusted_pair(struct run *r)
{
    ss_session_cache_clear();
    struct ss_errbuf err = {{0}};
    if (ss_policy_load(untrusted_cfg, false, &r->policy, &err) != SS_OK)
        fail_msg("ss_policy_load: %s", err.msg);
    r->have_pair = true;
    if (pair_new(&r->pr, r->policy, &r->err) != SS_OK)
        fail_msg("ss_conn_new: %s", r->err.msg);
}

/* Fail closed: whatever fails, the client never accepts the server. It
 * is driven to its own end even when the server failed first. */
static int op_untrusted_handshake(struct run *r)
{
    bool server_failed = false;
    for (int round = 0; round < 1000; round++) {
        int rc = ss_conn_handshake(r->pr.conn[0]);
        if (rc <= 0) {
            r->msg = ss_conn_error(r->pr.conn[0]);
            return rc;
        }
        if (!server_failed && ss_conn_handshake(r->pr.conn[1]) < 0) {
            /* As the shim does with a failed connection: closed. */
            server_failed = true;
            shutdown(r->pr.fd[1], SHUT_RDWR);
        }
        wait_for_wants(&r->pr);
    }
    fail_msg("the handshake did not end in 1000 rounds");
    return SS_ERR_STATE; /* not reached: fail_msg does not return */
}

/* ------------------------------------------------------------------ */
/* The driver                                                           */

struct tally {
    unsigned long total, engine;  /* allocations of the counting run */
    unsigned long refused;        /* failed cleanly */
    unsigned long absorbed;       /* the call succeeded all the same */
    unsigned long not_reached;    /* the run made fewer allocations */
    unsigned long by_code[16];    /* refusals by -ss_err */
};

/* "SS_ERR_NOMEM 20, SS_ERR_TLS 18" into buf. */
static const char *codes_text(const struct tally *t, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int code = 1; code < 16 && used < len; code++)
        if (t->by_code[code] > 0)
            used += (size_t)snprintf(buf + used, len - used, "%s%s %lu",
                                     used ? ", " : "",
                                     ss_strerror(-code), t->by_code[code]);
    return buf;
}

/* A fresh connection over p, hook off, handshakes and carries bytes
 * both ways; what names p in the message. */
static void serve_or_fail(struct ss_policy *p, const char *what)
{
    struct run r = {0};
    ss_policy_ref(p);
    r.policy = p;
    r.have_pair = true;
    const char *msg = "";
    int rc = pair_new(&r.pr, r.policy, &r.err);
    if (rc != SS_OK)
        fail_msg("%s, allocation %lu failed: then ss_conn_new over %s: %s",
                 current_op, hook.fail_at, what, r.err.msg);
    rc = drive_handshake(&r.pr, &msg);
    if (rc == SS_OK)
        rc = transfer(&r.pr, 0, 1000, &msg);
    if (rc == SS_OK)
        rc = transfer(&r.pr, 1, 1000, &msg);
    if (rc != SS_OK)
        fail_msg("%s, allocation %lu failed: then a fresh connection over "
                 "%s: %s: %s", current_op, hook.fail_at, what,
                 ss_strerror(rc), msg);
    run_free(&r);
}

/* After a run: the process still serves. */
static void check_still_serving(void)
{
    serve_or_fail(serving, "the serving policy");
}

/* Runs op once with allocation fail_at failed (0: none); returns its
 * result, having judged it. */
static int run_once(const struct op *op, unsigned long fail_at,
                    struct tally *t)
{
    struct run r = {0};
    r.msg = "";
    if (op->prepare != NULL)
        op->prepare(&r);
    /* A sentence left from the preparation must not pass for the
     * failure's. */
    memset(&r.err, 0, sizeof(r.err));
    hook_arm(fail_at);
    int rc = op->run(&r);
    hook_disarm();
    bool injected = hook.injected;
    if (fail_at == 0) {
        t->total = hook.calls;
        t->engine = hook.engine;
    }
    if (rc > 0)
        fail_msg("%s: allocation %lu: unfinished result %d", op->name,
                 fail_at, rc);
    if (rc == SS_OK && op->refused)
        fail_msg("%s: allocation %lu failed, and the untrusted peer was "
                 "accepted", op->name, fail_at);
    if (rc < 0 && strcmp(ss_strerror(rc), "SS_ERR_UNKNOWN") == 0)
        fail_msg("%s: allocation %lu: not an engine error: %d", op->name,
                 fail_at, rc);
    if (rc < 0 && (r.msg == NULL || r.msg[0] == '\0'))
        fail_msg("%s: allocation %lu: %s without a sentence", op->name,
                 fail_at, ss_strerror(rc));
    if (!injected && (rc < 0) != op->refused)
        fail_msg("%s: with allocation %lu (not reached) failed: %s: %s",
                 op->name, fail_at, ss_strerror(rc), r.msg);
    if (op->check != NULL)
        op->check(&r, rc);
    if (!injected) {
        t->not_reached += fail_at > 0;
    } else if (rc < 0) {
        t->refused++;
        t->by_code[-rc < 16 ? -rc : 0]++;
    } else {
        t->absorbed++;
    }
    run_free(&r);
    return rc;
}

/* How many of an operation's OpenSSL allocations are failed, evenly
 * spread (every engine allocation is failed regardless); --all fails
 * every one, which takes minutes (docs/testing.md). */
#define OSSL_SAMPLE 150
static bool all_allocations;

/* Whether allocation n of an operation that made total is failed. */
static bool selected(unsigned long n, unsigned long total)
{
    if (all_allocations || engine_at[n] || total <= OSSL_SAMPLE)
        return true;
    unsigned long stride = (total + OSSL_SAMPLE - 1) / OSSL_SAMPLE;
    return n % stride == 1 % stride;
}

/* Counts op's allocations (after a warm-up run: OpenSSL initialises
 * itself once, and a failure there is permanent by its design), then
 * fails each selected one in turn, checking after each that the process
 * still serves. */
static void fail_each_allocation(const struct op *op)
{
    struct tally t = {0};
    current_op = op->name;
    run_once(op, 0, &t);
    run_once(op, 0, &t);
    if (t.total == 0)
        fail_msg("%s: no allocation counted (the hook is not in place)",
                 op->name);
    if (t.total > COUNT_MAX)
        fail_msg("%s: %lu allocations, more than the %d counted",
                 op->name, t.total, COUNT_MAX);
    unsigned long tried = 0;
    for (unsigned long n = 1; n <= t.total; n++) {
        if (!selected(n, t.total))
            continue;
        tried++;
        run_once(op, n, &t);
        check_still_serving();
    }
    char codes[256];
    print_message("%s: %lu allocations (%lu the engine's), %lu failed in "
                  "turn: %lu refused cleanly (%s), %lu absorbed, %lu not "
                  "reached\n",
                  op->name, t.total, t.engine, tried, t.refused,
                  codes_text(&t, codes, sizeof(codes)), t.absorbed,
                  t.not_reached);
    /* The counting run is the measure: most runs must have met their
     * failure, or the loop tested little. */
    assert_true(t.not_reached * 10 <= tried);
}

#define OP_TEST(fn, ...)                                    \
    static void fn(void **state)                            \
    {                                                       \
        (void)state;                                        \
        static const struct op op = {__VA_ARGS__};          \
        fail_each_allocation(&op);                          \
    }

OP_TEST(test_policy_parse, .name = "ss_policy_parse",
        .run = op_policy_parse)
OP_TEST(test_policy_load, .name = "ss_policy_load", .run = op_policy_load,
        .check = check_loaded_serves)
OP_TEST(test_tlsctx_client, .name = "ss_tlsctx_new (connect, mutual)",
        .prepare = prepare_parsed, .run = op_tlsctx_client)
OP_TEST(test_tlsctx_server, .name = "ss_tlsctx_new (listen, mutual)",
        .prepare = prepare_parsed, .run = op_tlsctx_server)
OP_TEST(test_policy_tls, .name = "ss_policy_tls (listen, mutual)",
        .prepare = prepare_parsed, .run = op_policy_tls,
        .check = check_built_again)
OP_TEST(test_conn_new, .name = "ss_conn_new (both sides)",
        .prepare = prepare_serving, .run = op_conn_new)
OP_TEST(test_full_handshake, .name = "full handshake",
        .prepare = prepare_pair, .run = op_full_handshake)
OP_TEST(test_resumed_handshake, .name = "resumed handshake",
        .prepare = prepare_cached_session, .run = op_resumed_handshake)
OP_TEST(test_read_write, .name = "read and write",
        .prepare = prepare_open_pair, .run = op_read_write)
OP_TEST(test_untrusted_never_accepted, .name = "untrusted server",
        .prepare = prepare_untrusted_pair, .run = op_untrusted_handshake,
        .refused = true)

static int group_setup(void **state)
{
    (void)state;
    tu_pki();
    struct ss_errbuf err;
    /* Quiet: the failures are expected here. */
    ss_log_configure(SS_LOG_ERROR, "stderr", &err);
    write_policies();
    serving = load_or_fail(mutual_cfg);
    return 0;
}

static int group_teardown(void **state)
{
    ss_policy_unref(serving);
    ss_session_cache_clear();
    free((void *)mutual_cfg);
    free((void *)untrusted_cfg);
    return tu_group_teardown(state);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--all") == 0) {
            all_allocations = true;
        } else if (strcmp(argv[i], "--rsa") == 0) {
            use_rsa = true;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            cmocka_set_test_filter(argv[++i]);
        } else {
            fprintf(stderr, "usage: test_alloc [--all] [--rsa] "
                            "[--only TEST-PATTERN]\n");
            return 2;
        }
    }
    /* Before OpenSSL's first allocation, or it keeps its own. */
    if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free)) {
        fprintf(stderr, "test_alloc: cannot give OpenSSL our allocator\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_parse),
        cmocka_unit_test(test_policy_load),
        cmocka_unit_test(test_tlsctx_client),
        cmocka_unit_test(test_tlsctx_server),
        cmocka_unit_test(test_policy_tls),
        cmocka_unit_test(test_conn_new),
        cmocka_unit_test(test_full_handshake),
        cmocka_unit_test(test_resumed_handshake),
        cmocka_unit_test(test_read_write),
        cmocka_unit_test(test_untrusted_never_accepted),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
