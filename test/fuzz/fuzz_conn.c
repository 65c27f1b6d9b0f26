/*
 * fuzz_conn.c - libFuzzer harness for the connection state machine
 * (src/engine/conn.c; docs/testing.md, "Fuzzing").
 *
 * One secshim conn, client or server, runs against a real OpenSSL peer
 * in memory (memory BIOs, no socket): the conn's I/O ops (struct
 * ss_io_ops) read from a byte queue the harness fills and write into one
 * the peer reads. The input is an endpoint byte and then a list of
 * operations, each deciding what happens to the bytes the peer has
 * produced (its records) before the conn sees them: delivered whole or
 * in part, one byte changed, raw bytes of the input injected as if the
 * peer had sent them, a TCP EOF or reset, a socket that takes only some
 * bytes or none; or the program's side: plaintext written by either end,
 * a close_notify from either end. So the fuzzer starts from real
 * handshakes (every unmutated input completes one) and goes deep by
 * mutating them: ServerHello, certificates, Finished, application data,
 * alerts, close_notify, all in both roles.
 *
 * OpenSSL's random numbers come from a stream reset for every input
 * (RAND_set_rand_method, the test-only hook OpenSSL 3.0 still has), so
 * that an input replays the same handshake bytes and a crash found can be
 * reproduced; for the same reason the harness makes its own PKI from that
 * stream (make_pki), sessions are not resumed across inputs (both sides
 * have resumption off) and the peer server issues no session tickets
 * (they are not the same from one run to the next).
 *
 * Besides the sanitizers (crash, overflow, leak, undefined behaviour) and
 * libFuzzer's timeout (a hang), the harness aborts when the conn breaks a
 * promise of include/secshim/conn.h: plaintext handed to the program
 * before the handshake's end or after it failed, plaintext that is not
 * exactly what the peer wrote, or the peer receiving anything but what
 * the program wrote. Every loop is bounded.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* RAND_METHOD: see above */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "secshim/common.h"
#include "secshim/conn.h"
#include "secshim/policy.h"
#include "fuzzutil.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OPS 64
#define SETTLE_ROUNDS 8
#define QUEUE_MAX (256 * 1024)

/* ---- deterministic randomness ---------------------------------------- */

static uint64_t rand_state;

static int det_bytes(unsigned char *buf, int num)
{
    for (int i = 0; i < num; i++) {
        /* splitmix64: any fixed stream will do; it need not be good. */
        uint64_t z = (rand_state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        buf[i] = (unsigned char)(z ^ (z >> 31));
    }
    return 1;
}

static int det_status(void)
{
    return 1;
}

static const RAND_METHOD det_rand = {
    .bytes = det_bytes,
    .pseudorand = det_bytes,
    .status = det_status,
};

/* ---- byte queues ------------------------------------------------------ */

struct queue {
    unsigned char *data;
    size_t len;
};

static void queue_add(struct queue *q, const void *p, size_t n)
{
    if (n == 0 || q->len + n > QUEUE_MAX)
        return; /* a peer that floods is cut off; bounded memory */
    unsigned char *grown = realloc(q->data, q->len + n);
    if (grown == NULL)
        abort();
    memcpy(grown + q->len, p, n);
    q->data = grown;
    q->len += n;
}

static void queue_drop(struct queue *q, size_t n)
{
    if (n > q->len)
        n = q->len;
    memmove(q->data, q->data + n, q->len - n);
    q->len -= n;
}

static void queue_free(struct queue *q)
{
    free(q->data);
    q->data = NULL;
    q->len = 0;
}

/* ---- the conn's side of the wire -------------------------------------- */

/* What the conn's recv and send see; one conn per input, one thread. */
static struct wire {
    struct queue to_conn;   /* bytes "from the peer", not yet received */
    struct queue from_conn; /* bytes the conn sent, not yet at the peer */
    bool eof;               /* after to_conn: TCP EOF */
    int recv_errno;         /* after to_conn: this error (0: none) */
    int send_errno;         /* every send fails with it (0: none) */
    size_t send_room;       /* bytes send takes until the next op */
} wire;

static ssize_t fz_recv(int fd, void *buf, size_t len, int flags)
{
    (void)fd;
    if (wire.to_conn.len > 0) {
        size_t n = len < wire.to_conn.len ? len : wire.to_conn.len;
        memcpy(buf, wire.to_conn.data, n);
        if (!(flags & MSG_PEEK))
            queue_drop(&wire.to_conn, n);
        return (ssize_t)n;
    }
    if (wire.recv_errno != 0) {
        errno = wire.recv_errno;
        return -1;
    }
    if (wire.eof)
        return 0;
    errno = EAGAIN;
    return -1;
}

static ssize_t fz_send(int fd, const void *buf, size_t len, int flags)
{
    (void)fd;
    (void)flags;
    if (wire.send_errno != 0) {
        errno = wire.send_errno;
        return -1;
    }
    size_t n = len < wire.send_room ? len : wire.send_room;
    if (n == 0) {
        errno = EAGAIN;
        return -1;
    }
    wire.send_room -= n;
    queue_add(&wire.from_conn, buf, n);
    return (ssize_t)n;
}

static const struct ss_io_ops fz_io = {fz_recv, fz_send};

/* ---- a PKI of fixed bytes --------------------------------------------- */

/*
 * The CA, the server leaf and the client leaf are made here, from the
 * reset random stream and with fixed validity dates, rather than by
 * tools/secshim-pki: its keys are new at every run, and every handshake
 * byte after the certificates would differ between runs, so that an input
 * would not replay what it did when it was found. P-256 keys (fast to
 * make); the extensions of docs/pki.md's profile (x509-strict accepts
 * them). Written as fz-*.pem beside the policy.
 */
static EVP_PKEY *new_key(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (key == NULL)
        abort();
    return key;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL || X509_add_ext(cert, ext, -1) != 1)
        abort();
    X509_EXTENSION_free(ext);
}

/* A certificate for key, signed by issuer_key (itself when issuer is
 * NULL), with the extensions given as NID/value pairs. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, long serial,
                      X509 *issuer, EVP_PKEY *issuer_key,
                      const char *const *exts, const int *nids, size_t n)
{
    X509 *cert = X509_new();
    if (cert == NULL || X509_set_version(cert, 2) != 1)
        abort();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer)
                                              : name);
    if (ASN1_TIME_set_string_X509(X509_getm_notBefore(cert),
                                  "20200101000000Z") != 1 ||
        ASN1_TIME_set_string_X509(X509_getm_notAfter(cert),
                                  "20991231000000Z") != 1 ||
        X509_set_pubkey(cert, key) != 1)
        abort();
    for (size_t i = 0; i < n; i++)
        add_ext(cert, issuer != NULL ? issuer : cert, nids[i], exts[i]);
    if (X509_sign(cert, issuer_key, EVP_sha256()) <= 0)
        abort();
    return cert;
}

static void write_pem(const char *name, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(fz_file(name), "w");
    if (f == NULL || (cert != NULL && PEM_write_X509(f, cert) != 1) ||
        (key != NULL &&
         PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1) ||
        fclose(f) != 0)
        abort();
}

static void make_pki(void)
{
    static const int ca_nids[] = {NID_basic_constraints, NID_key_usage,
                                  NID_subject_key_identifier};
    static const char *const ca_exts[] = {"critical,CA:TRUE",
                                          "critical,keyCertSign,cRLSign",
                                          "hash"};
    static const int leaf_nids[] = {
        NID_basic_constraints, NID_key_usage, NID_ext_key_usage,
        NID_subject_alt_name, NID_subject_key_identifier,
        NID_authority_key_identifier};
    static const char *const server_exts[] = {
        "critical,CA:FALSE", "critical,digitalSignature", "serverAuth",
        "DNS:localhost,IP:127.0.0.1", "hash", "keyid:always"};
    static const char *const client_exts[] = {
        "critical,CA:FALSE", "critical,digitalSignature", "clientAuth",
        "DNS:secshim-client", "hash", "keyid:always"};
    EVP_PKEY *ca_key = new_key();
    X509 *ca = new_cert(ca_key, "secshim fuzz CA", 1, NULL, ca_key, ca_exts,
                        ca_nids, 3);
    write_pem("fz-ca.pem", ca, NULL);
    struct {
        const char *cn, *cert, *key;
        const char *const *exts;
    } leaves[] = {{"localhost", "fz-server.pem", "fz-server.key", server_exts},
                  {"secshim-client", "fz-client.pem", "fz-client.key",
                   client_exts}};
    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY *key = new_key();
        X509 *cert = new_cert(key, leaves[i].cn, (long)i + 2, ca, ca_key,
                              leaves[i].exts, leaf_nids, 6);
        write_pem(leaves[i].cert, cert, NULL);
        write_pem(leaves[i].key, NULL, key);
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    X509_free(ca);
    EVP_PKEY_free(ca_key);
}

/* ---- endpoints and the peer ------------------------------------------- */

/* The conn's endpoints; the peer takes the other role. */
static const struct {
    const char *name;
    bool server;         /* the conn is the server */
    bool peer_cert;      /* the peer presents a certificate */
} endpoints[] = {
    {"c", false, false},   {"c12", false, false}, {"cm", false, false},
    {"c-eof", false, false}, {"s", true, false},  {"s12", true, false},
    {"sm", true, true},    {"s-eof", true, false},
};
#define N_ENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

static struct ss_policy *policy;
static SSL_CTX *peer_server_ctx, *peer_client_ctx, *peer_mutual_ctx;

static void load_policy(void)
{
    static const char text[] =
        "version = 1;\n"
        "defaults = { trusted-ca = \"fz-ca.pem\"; session-resumption = false; };\n"
        "endpoints = (\n"
        "  { name = \"c\"; connect = \"localhost:1\"; },\n"
        "  { name = \"c12\"; connect = \"localhost:2\"; tls-version = \"TLSv1.2\"; },\n"
        "  { name = \"cm\"; connect = \"localhost:3\"; tls-mutual = true;\n"
        "    certificate = \"fz-client.pem\"; certificate-key = \"fz-client.key\"; },\n"
        "  { name = \"c-eof\"; connect = \"localhost:4\"; tls-unexpected-eof = \"eof\"; },\n"
        "  { name = \"s\"; listen = \"127.0.0.1:1\";\n"
        "    certificate = \"fz-server.pem\"; certificate-key = \"fz-server.key\"; },\n"
        "  { name = \"s12\"; listen = \"127.0.0.1:2\"; tls-version = \"TLSv1.2\";\n"
        "    certificate = \"fz-server.pem\"; certificate-key = \"fz-server.key\"; },\n"
        "  { name = \"sm\"; listen = \"127.0.0.1:3\"; tls-mutual = true;\n"
        "    certificate = \"fz-server.pem\"; certificate-key = \"fz-server.key\"; },\n"
        "  { name = \"s-eof\"; listen = \"127.0.0.1:4\"; tls-unexpected-eof = \"eof\";\n"
        "    certificate = \"fz-server.pem\"; certificate-key = \"fz-server.key\"; }\n"
        ");\n";
    const char *path = fz_write("conn.cfg", text, sizeof(text) - 1);
    struct ss_errbuf err = {{0}};
    if (ss_policy_load(path, false, &policy, &err) != SS_OK) {
        fprintf(stderr, "fuzz_conn: %s\n", err.msg);
        abort();
    }
}

static SSL_CTX *peer_ctx(bool server, const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method()
                                      : TLS_client_method());
    if (ctx == NULL)
        abort();
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (cert != NULL &&
        (SSL_CTX_use_certificate_chain_file(ctx, fz_file(cert)) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx, fz_file(key), SSL_FILETYPE_PEM) !=
             1)) {
        ERR_print_errors_fp(stderr);
        abort();
    }
    /* The peer trusts the test CA but does not insist: it is there to
     * produce records, and the conn's own verification is what counts. */
    if (SSL_CTX_load_verify_locations(ctx, fz_file("fz-ca.pem"), NULL) != 1)
        abort();
    return ctx;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_empty_dir();
    fz_quiet_log();
    /* First: the PKI and the contexts' own secrets come from it too. */
    if (RAND_set_rand_method(&det_rand) != 1)
        abort();
    make_pki();
    load_policy();
    peer_server_ctx = peer_ctx(true, "fz-server.pem", "fz-server.key");
    peer_client_ctx = peer_ctx(false, NULL, NULL);
    peer_mutual_ctx = peer_ctx(false, "fz-client.pem", "fz-client.key");
    /* A verify callback-free server that asks for a certificate, so that
     * a mutual client conn sends its own. */
    SSL_CTX_set_verify(peer_server_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_num_tickets(peer_server_ctx, 0);
    return 0;
}

/* ---- one input ---------------------------------------------------------- */

/* Plaintext streams: byte i of each is a function of i, so either side
 * can check what it received without keeping what was sent. */
static unsigned char peer_byte(size_t i) { return (unsigned char)(i * 7 + 3); }
static unsigned char conn_byte(size_t i) { return (unsigned char)(i * 13 + 1); }

struct run {
    struct ss_conn *conn;
    SSL *peer;
    BIO *peer_in, *peer_out; /* the peer's memory BIOs (owned by peer) */
    struct queue peer_flight; /* what the peer produced, not yet delivered */
    bool peer_dead;          /* the peer failed: drive it no more */
    size_t peer_unwritten;   /* plaintext the peer is still to write */
    size_t peer_written;     /* plaintext the peer wrote (stream offset) */
    size_t peer_read;        /* plaintext the peer read from the conn */
    size_t conn_written;     /* plaintext the conn accepted */
    size_t conn_read;        /* plaintext the program read */
    bool handshake_failed;
};

/* Peeked bytes are checked as read ones, and stay unread. */
static void check_conn_plaintext(struct run *r, const unsigned char *buf,
                                 size_t n, bool peek)
{
    enum ss_conn_state st = ss_conn_state(r->conn);
    /* Fail closed: no byte before the handshake's end or after it
     * failed; and only the bytes the peer wrote, in order. */
    if (r->handshake_failed || st == SS_CONN_HANDSHAKING) {
        fprintf(stderr, "fuzz_conn: %zu plaintext bytes in state %d "
                "(handshake failed: %d)\n", n, (int)st, r->handshake_failed);
        abort();
    }
    for (size_t i = 0; i < n; i++)
        if (buf[i] != peer_byte(r->conn_read + i) ||
            r->conn_read + i >= r->peer_written) {
            fprintf(stderr, "fuzz_conn: plaintext byte %zu is not the "
                    "peer's\n", r->conn_read + i);
            abort();
        }
    if (!peek)
        r->conn_read += n;
}

/* The program's side: the handshake, then reads, a bounded few. */
static void conn_step(struct run *r, bool peek)
{
    for (int i = 0; i < 4; i++) {
        if (ss_conn_state(r->conn) == SS_CONN_HANDSHAKING) {
            int rc = ss_conn_handshake(r->conn);
            /* A handshake that ended and whose last flight could not
             * be sent (the peer reset) is not a failed one: the state
             * says which (an open conn's handshake call is a flush). */
            enum ss_conn_state st = ss_conn_state(r->conn);
            if (rc < 0 && (st == SS_CONN_HANDSHAKING || st == SS_CONN_FAILED)) {
                r->handshake_failed = true;
                if (getenv("SECSHIM_FUZZ_TRACE") != NULL)
                    fprintf(stderr, "fuzz_conn: handshake: %s, state %d: "
                            "%s\n", ss_strerror(rc),
                            (int)ss_conn_state(r->conn),
                            ss_conn_error(r->conn));
                if (ss_conn_error(r->conn)[0] == '\0')
                    abort(); /* every failure says why */
            }
            if (rc != SS_OK)
                break;
            continue;
        }
        unsigned char buf[4096];
        size_t n = 0;
        int rc = ss_conn_read(r->conn, buf, sizeof(buf), peek, &n);
        if (rc == SS_OK && n > 0)
            check_conn_plaintext(r, buf, n, peek);
        if (rc == SS_WANT_READ && ss_conn_input_drained(r->conn))
            ss_conn_idle(r->conn); /* what the shim does before a wait */
        if (rc != SS_OK || peek)
            break;
    }
    /* What the shim and the CLI ask of a conn in any state. */
    char text[256];
    (void)ss_conn_pending(r->conn);
    (void)ss_conn_buffered_input(r->conn);
    (void)ss_conn_unsent(r->conn);
    (void)ss_conn_early_unsent(r->conn);
    (void)ss_conn_wants(r->conn);
    (void)ss_conn_truncated(r->conn);
    (void)ss_conn_resumed(r->conn);
    (void)ss_conn_describe(r->conn, text, sizeof(text));
    (void)ss_conn_peer_subject(r->conn, text, sizeof(text));
    (void)ss_conn_flush(r->conn);
}

static void check_peer_plaintext(struct run *r, const unsigned char *buf,
                                 size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != conn_byte(r->peer_read + i) ||
            r->peer_read + i >= r->conn_written) {
            fprintf(stderr, "fuzz_conn: the peer got byte %zu wrong\n",
                    r->peer_read + i);
            abort();
        }
    r->peer_read += n;
}

/* The peer's side: take what the conn sent, advance, collect records. */
static void peer_step(struct run *r)
{
    if (wire.from_conn.len > 0) {
        BIO_write(r->peer_in, wire.from_conn.data, (int)wire.from_conn.len);
        queue_drop(&wire.from_conn, wire.from_conn.len);
    }
    for (int i = 0; i < 8 && !r->peer_dead; i++) {
        if (!SSL_is_init_finished(r->peer)) {
            int rc = SSL_do_handshake(r->peer);
            if (rc <= 0) {
                int e = SSL_get_error(r->peer, rc);
                r->peer_dead = e != SSL_ERROR_WANT_READ &&
                               e != SSL_ERROR_WANT_WRITE;
                break;
            }
            continue;
        }
        if (r->peer_unwritten > 0) {
            unsigned char chunk[2048];
            size_t n = r->peer_unwritten < sizeof(chunk) ? r->peer_unwritten
                                                         : sizeof(chunk);
            for (size_t k = 0; k < n; k++)
                chunk[k] = peer_byte(r->peer_written + k);
            int w = SSL_write(r->peer, chunk, (int)n);
            if (w > 0) {
                r->peer_written += (size_t)w;
                r->peer_unwritten -= (size_t)w;
            }
        }
        unsigned char buf[4096];
        int got = SSL_read(r->peer, buf, sizeof(buf));
        if (got > 0) {
            check_peer_plaintext(r, buf, (size_t)got);
            continue;
        }
        int e = SSL_get_error(r->peer, got);
        r->peer_dead = e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE;
        break;
    }
    ERR_clear_error();
    unsigned char out[4096];
    int n;
    while ((n = BIO_read(r->peer_out, out, sizeof(out))) > 0)
        queue_add(&r->peer_flight, out, (size_t)n);
}

static void pump(struct run *r, bool peek)
{
    conn_step(r, peek);
    peer_step(r);
}

/* A checksum of every byte delivered, for SECSHIM_FUZZ_TRACE: the same
 * input must give the same bytes (the random stream is reset). */
static uint32_t delivered_sum;

static void deliver(struct run *r, size_t n)
{
    if (n > r->peer_flight.len)
        n = r->peer_flight.len;
    for (size_t i = 0; i < n; i++)
        delivered_sum = delivered_sum * 31 + r->peer_flight.data[i];
    queue_add(&wire.to_conn, r->peer_flight.data, n);
    queue_drop(&r->peer_flight, n);
}

/* A reader over the input that yields zeros once it is used up. */
struct reader {
    const uint8_t *p;
    size_t left;
};

static uint8_t take(struct reader *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

enum op {
    OP_DELIVER,       /* every byte the peer produced */
    OP_DELIVER_SOME,  /* a first part of them (a record cut short) */
    OP_FLIP,          /* one byte changed, then all delivered */
    OP_INJECT,        /* raw input bytes, as if the peer sent them */
    OP_WRITE,         /* plaintext: the program writes, the peer writes */
    OP_CLOSE,         /* TCP EOF, a reset, or a send that fails */
    OP_SHUTDOWN,      /* close_notify from the conn or the peer */
    OP_SEND_ROOM,     /* how much the conn's socket takes */
    OP_COUNT
};

static void run_op(struct run *r, struct reader *in)
{
    uint8_t op = take(in);
    switch (op % OP_COUNT) {
    case OP_DELIVER:
        deliver(r, r->peer_flight.len);
        break;
    case OP_DELIVER_SOME:
        deliver(r, (size_t)take(in) * 4 + (op >> 4));
        break;
    case OP_FLIP: {
        size_t at = (size_t)take(in) << 8 | take(in);
        uint8_t x = take(in);
        if (r->peer_flight.len > 0)
            r->peer_flight.data[at % r->peer_flight.len] ^= x ? x : 1;
        deliver(r, r->peer_flight.len);
        break;
    }
    case OP_INJECT: {
        size_t n = take(in);
        size_t avail = n < in->left ? n : in->left;
        queue_add(&wire.to_conn, in->p, avail);
        in->p += avail;
        in->left -= avail;
        break;
    }
    case OP_WRITE: {
        size_t n = (size_t)take(in) * 64;
        unsigned char buf[255 * 64];
        for (size_t k = 0; k < n; k++)
            buf[k] = conn_byte(r->conn_written + k);
        size_t done = 0;
        if (n > 0 && ss_conn_write(r->conn, buf, n, &done) == SS_OK)
            r->conn_written += done;
        r->peer_unwritten += (size_t)take(in) * 64;
        break;
    }
    case OP_CLOSE:
        if (op & 0x10)
            wire.recv_errno = ECONNRESET;
        else if (op & 0x20)
            wire.send_errno = EPIPE;
        else
            wire.eof = true;
        break;
    case OP_SHUTDOWN:
        if (op & 0x10)
            (void)ss_conn_shutdown(r->conn);
        else if (SSL_is_init_finished(r->peer))
            (void)SSL_shutdown(r->peer); /* refused after a fatal error */
        break;
    case OP_SEND_ROOM:
    default: {
        uint8_t room = take(in);
        wire.send_room = room == 255 ? SIZE_MAX : (size_t)room * 16;
        break;
    }
    }
    pump(r, op & 0x40);
}

static SSL *new_peer(bool conn_is_server, bool peer_cert, BIO **in,
                     BIO **out)
{
    SSL_CTX *ctx = !conn_is_server ? peer_server_ctx
                   : peer_cert     ? peer_mutual_ctx
                                   : peer_client_ctx;
    SSL *ssl = SSL_new(ctx);
    *in = BIO_new(BIO_s_mem());
    *out = BIO_new(BIO_s_mem());
    if (ssl == NULL || *in == NULL || *out == NULL)
        abort();
    SSL_set_bio(ssl, *in, *out);
    if (conn_is_server) {
        SSL_set_connect_state(ssl);
        SSL_set_tlsext_host_name(ssl, "localhost");
    } else {
        SSL_set_accept_state(ssl);
    }
    return ssl;
}

static const struct ss_endpoint *endpoint_named(const char *name)
{
    for (size_t i = 0; i < policy->n_endpoints; i++)
        if (strcmp(policy->endpoints[i].name, name) == 0)
            return &policy->endpoints[i];
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader in = {data, size};
    rand_state = 0;
    delivered_sum = 0;
    memset(&wire, 0, sizeof(wire));
    wire.send_room = SIZE_MAX;
    size_t which = take(&in) % N_ENDPOINTS;
    struct run r;
    memset(&r, 0, sizeof(r));
    struct ss_errbuf err = {{0}};
    bool server = endpoints[which].server;
    if (ss_conn_new(policy, endpoint_named(endpoints[which].name), 3,
                    &fz_io, server ? "127.0.0.1" : "localhost", &r.conn,
                    &err) != SS_OK) {
        fprintf(stderr, "fuzz_conn: ss_conn_new: %s\n", err.msg);
        abort();
    }
    r.peer = new_peer(server, endpoints[which].peer_cert, &r.peer_in,
                      &r.peer_out);
    pump(&r, false);
    for (int i = 0; i < MAX_OPS && in.left > 0; i++)
        run_op(&r, &in);
    /* Then the peer's records go through as they are, and the socket
     * takes everything: an input of nothing but writes still completes. */
    wire.send_room = SIZE_MAX;
    for (int i = 0; i < SETTLE_ROUNDS; i++) {
        deliver(&r, r.peer_flight.len);
        pump(&r, false);
    }
    if (getenv("SECSHIM_FUZZ_TRACE") != NULL)
        fprintf(stderr, "fuzz_conn: endpoint %s: state %d, %zu/%zu bytes "
                "to the program, %zu/%zu to the peer, wire sum %08x; %s\n",
                endpoints[which].name, (int)ss_conn_state(r.conn), r.conn_read,
                r.peer_written, r.peer_read, r.conn_written,
                (unsigned)delivered_sum, ss_conn_error(r.conn));
    ss_conn_free(r.conn);
    SSL_free(r.peer);
    queue_free(&r.peer_flight);
    queue_free(&wire.to_conn);
    queue_free(&wire.from_conn);
    ERR_clear_error();
    return 0;
}
