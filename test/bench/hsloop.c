/*
 * hsloop - the library's own handshake rate, the bound that test/bench/run
 * sets secshim's new-connection figures against: a client and a server
 * SSL object in one thread, over an in-memory BIO pair (no kernel, no
 * sockets), handshaking again and again with the certificates and the
 * settings of secshim's endpoints (bench_tls.h):
 *
 * Each connection is what one bench_client connection is: the handshake,
 * a 1-byte round trip (which also hands the client the server's session
 * tickets), and close_notify both ways.
 *
 *   hsloop full|resumed SECONDS PROCS CERT KEY CA HOST [THREADS]
 *
 * full:    every handshake is a full one: the server issues no tickets and
 *          keeps no session cache, the client offers no session.
 * resumed: the client offers the session from the last connection's
 *          ticket; the first handshake of each process is full.
 * PROCS processes (one per core) run the loop at once for SECONDS each;
 * with THREADS (default 1), each process runs the loop in that many
 * threads sharing its two SSL_CTXs, as a threaded program's connections
 * share its endpoint's context (contended look-ups inside OpenSSL show
 * there and nowhere else);
 * the parent prints "handshakes_per_s R procs P connections N reused U"
 * (R the sum of the processes' rates, U how many handshakes resumed).
 *
 *   hsloop idle COUNT CERT KEY CA HOST
 *
 * idle: the memory floor of an idle server connection, which secshim's
 *       per-connection figure is set against. COUNT connections as above
 *       (the server issuing one session ticket, as a secshim listen
 *       endpoint does, and keeping no session cache), each left open
 *       after its round trip with its record buffers given back
 *       (SSL_free_buffers, as secshim's idle connections) and its BIO
 *       pair replaced by an empty memory BIO; the client side is freed.
 *       OpenSSL's allocations are counted (CRYPTO_set_mem_functions); it
 *       prints "idle_server_bytes B allocations A" per connection: B the
 *       bytes OpenSSL holds for it, A how many blocks (malloc adds its own
 *       header and rounding to each).
 *
 *   hsloop idle-sites CERT KEY CA HOST
 *
 * idle-sites: where that floor is. One idle server connection as in idle
 *       mode (after a first one, freed, so that what OpenSSL builds once
 *       is not counted); prints, for each place in OpenSSL's source that
 *       allocated a block the connection still holds, "BYTES BLOCKS
 *       FILE:LINE", largest first, then "total BYTES BLOCKS".
 *
 *   hsloop records COUNT CERT KEY CA HOST
 *
 * records: the cost TLS adds to one 64-byte round trip, without a kernel:
 *       on one connection, COUNT times a 64-byte SSL_write on the client
 *       and SSL_read on the server, then the same back; prints
 *       "round_trip_ns N" (the median of 100 batches of COUNT/100). Each
 *       round trip is four records' work: two sealed, two opened, with
 *       TLS_AES_128_GCM_SHA256 (secshim's first suite where the CPU has
 *       AES instructions).
 * Exit 0, or 1 after a message (any handshake that fails ends the run).
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/ossl_count.h"
#include "../common/samples.h"
#include "../common/ossl_sites.h"
#define BENCH_PROGRAM "hsloop"
#include "bench_tls.h"

static const char *host;

/* Steps both ends until each handshake is done. */
static void handshake(SSL *c, SSL *s)
{
    int cdone = 0, sdone = 0;
    for (int steps = 0; !(cdone && sdone); steps++) {
        if (steps > 100)
            fail("the handshake does not finish");
        if (!cdone) {
            int rc = SSL_do_handshake(c);
            cdone = rc == 1;
            if (rc <= 0 && SSL_get_error(c, rc) != SSL_ERROR_WANT_READ)
                fail("client handshake failed");
        }
        if (!sdone) {
            int rc = SSL_do_handshake(s);
            sdone = rc == 1;
            if (rc <= 0 && SSL_get_error(s, rc) != SSL_ERROR_WANT_READ)
                fail("server handshake failed");
        }
    }
}

/* One byte from `from` to `to`, read on `to`. */
static void one_byte(SSL *from, SSL *to)
{
    char b = 'x';
    size_t n;
    if (SSL_write_ex(from, &b, 1, &n) != 1)
        fail("SSL_write failed");
    if (SSL_read_ex(to, &b, 1, &n) != 1)
        fail("SSL_read failed");
}

/* A client and a server SSL over a fresh BIO pair, the client with the
 * host name set. */
static void pair_new(SSL_CTX *cctx, SSL_CTX *sctx, SSL **c, SSL **s)
{
    BIO *cb, *sb;
    *c = SSL_new(cctx);
    *s = SSL_new(sctx);
    if (*c == NULL || *s == NULL || BIO_new_bio_pair(&cb, 0, &sb, 0) != 1)
        fail("cannot create the SSL objects");
    SSL_set_bio(*c, cb, cb);
    SSL_set_bio(*s, sb, sb);
    SSL_set_connect_state(*c);
    SSL_set_accept_state(*s);
    if (SSL_set_tlsext_host_name(*c, host) != 1 || SSL_set1_host(*c, host) != 1)
        fail("cannot set the host name");
}

/* One connection; returns whether its handshake resumed. *sess is the
 * session to offer (resumed mode) and gets the new one. */
static int one_connection(SSL_CTX *cctx, SSL_CTX *sctx, SSL_SESSION **sess)
{
    SSL *c, *s;
    pair_new(cctx, sctx, &c, &s);
    if (sess != NULL && *sess != NULL && SSL_set_session(c, *sess) != 1)
        fail("cannot offer the session");
    handshake(c, s);
    one_byte(c, s);
    one_byte(s, c); /* the client reads the tickets before this byte */
    int reused = SSL_session_reused(c);
    if (sess != NULL) {
        SSL_SESSION *next = SSL_get1_session(c);
        SSL_SESSION_free(*sess);
        *sess = next;
    }
    /* close_notify both ways, as a closing secshim connection sends. */
    char b;
    size_t n;
    SSL_shutdown(c);
    if (SSL_read_ex(s, &b, 1, &n) == 1 ||
        SSL_get_error(s, 0) != SSL_ERROR_ZERO_RETURN)
        fail("the server did not see close_notify");
    SSL_shutdown(s);
    SSL_free(c);
    SSL_free(s);
    return reused;
}

struct loop {
    SSL_CTX *cctx, *sctx;
    int resume;
    double seconds;
    long count, reused;
    double elapsed;
};

static void *loop_main(void *arg)
{
    struct loop *l = arg;
    SSL_SESSION *sess = NULL;
    double start = now_seconds(), end = start;
    while (end - start < l->seconds) {
        l->reused += one_connection(l->cctx, l->sctx, l->resume ? &sess : NULL);
        l->count++;
        end = now_seconds();
    }
    l->elapsed = end - start;
    SSL_SESSION_free(sess);
    return NULL;
}

/* The loops of one process, in `threads` threads: writes "connections
 * reused seconds" to out, seconds the longest thread's. */
static void run(int resume, double seconds, int threads, char **paths, int out)
{
    SSL_CTX *sctx = new_ctx(1, resume, paths[0], paths[1], paths[2]);
    SSL_CTX *cctx = new_ctx(0, resume, paths[0], paths[1], paths[2]);
    struct loop loops[256];
    pthread_t tids[256];
    for (int i = 0; i < threads; i++) {
        loops[i] = (struct loop){cctx, sctx, resume, seconds, 0, 0, 0};
        if (pthread_create(&tids[i], NULL, loop_main, &loops[i]) != 0)
            fail("pthread_create");
    }
    long count = 0, reused = 0;
    double elapsed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        count += loops[i].count;
        reused += loops[i].reused;
        if (loops[i].elapsed > elapsed)
            elapsed = loops[i].elapsed;
    }
    char line[128];
    int len = snprintf(line, sizeof(line), "%ld %ld %.6f\n", count, reused,
                       elapsed);
    if (write(out, line, (size_t)len) != len)
        exit(1);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
}

/* 64 bytes from `from` to `to`, read whole on `to`. */
static void record64(SSL *from, SSL *to)
{
    char buf[64] = {0};
    size_t n;
    if (SSL_write_ex(from, buf, sizeof(buf), &n) != 1 || n != sizeof(buf))
        fail("SSL_write failed");
    if (SSL_read_ex(to, buf, sizeof(buf), &n) != 1 || n != sizeof(buf))
        fail("SSL_read failed");
}

/* records mode: see the header. The record buffers stay (bench_tls.h
 * sets no RELEASE_BUFFERS), as a busy secshim connection keeps them. */
static int records(long count, char **paths)
{
    SSL_CTX *sctx = new_ctx(1, 0, paths[0], paths[1], paths[2]);
    SSL_CTX *cctx = new_ctx(0, 0, paths[0], paths[1], paths[2]);
    if (SSL_CTX_set_ciphersuites(sctx, "TLS_AES_128_GCM_SHA256") != 1)
        fail("cannot set the suite");
    SSL *c, *s;
    pair_new(cctx, sctx, &c, &s);
    handshake(c, s);
    enum { BATCHES = 100 };
    long per = count / BATCHES > 0 ? count / BATCHES : 1;
    double ns[BATCHES];
    for (int b = 0; b < BATCHES; b++) {
        double t0 = now_seconds();
        for (long i = 0; i < per; i++) {
            record64(c, s);
            record64(s, c);
        }
        ns[b] = (now_seconds() - t0) * 1e9 / (double)per;
    }
    qsort(ns, BATCHES, sizeof(ns[0]), compare_double);
    printf("round_trip_ns %.0f\n", ns[BATCHES / 2]);
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return 0;
}

/* One idle server connection as idle mode leaves it: handshake and round
 * trip with a client that is then freed, record buffers given back, the
 * BIO pair replaced by an empty memory BIO. */
static SSL *idle_server(SSL_CTX *cctx, SSL_CTX *sctx)
{
    SSL *c, *s;
    pair_new(cctx, sctx, &c, &s);
    handshake(c, s);
    one_byte(c, s);
    one_byte(s, c);
    SSL_free(c);
    if (SSL_free_buffers(s) != 1)
        fail("SSL_free_buffers refused");
    BIO *empty = BIO_new(BIO_s_mem());
    if (empty == NULL)
        fail("out of memory");
    SSL_set_bio(s, empty, empty); /* frees the pair's half */
    return s;
}

/* The contexts of idle mode. Sessions as a secshim listen endpoint:
 * one ticket issued, no server cache. */
static void idle_contexts(char **paths, SSL_CTX **cctx, SSL_CTX **sctx)
{
    *sctx = new_ctx(1, 1, paths[0], paths[1], paths[2]);
    SSL_CTX_set_session_cache_mode(*sctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_num_tickets(*sctx, 1) != 1)
        fail("cannot set the number of tickets");
    *cctx = new_ctx(0, 1, paths[0], paths[1], paths[2]);
}

/* idle mode: see the header. */
static int idle(long count, char **paths)
{
    SSL_CTX *cctx, *sctx;
    idle_contexts(paths, &cctx, &sctx);
    SSL **servers = calloc((size_t)count, sizeof(*servers));
    if (servers == NULL)
        fail("out of memory");
    size_t bytes0 = ossl_live_bytes, blocks0 = ossl_live_blocks;
    for (long i = 0; i < count; i++)
        servers[i] = idle_server(cctx, sctx);
    printf("idle_server_bytes %.0f allocations %.1f\n",
           (double)(ossl_live_bytes - bytes0) / (double)count,
           (double)(ossl_live_blocks - blocks0) / (double)count);
    for (long i = 0; i < count; i++)
        SSL_free(servers[i]);
    free(servers);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return 0;
}

/* idle-sites mode: see the header. One warm-up connection first, so that
 * what OpenSSL builds once (caches, fetched algorithms) is not counted. */
static int idle_sites(char **paths)
{
    SSL_CTX *cctx, *sctx;
    idle_contexts(paths, &cctx, &sctx);
    SSL_free(idle_server(cctx, sctx));
    ossl_sites_recording = 1;
    SSL *s = idle_server(cctx, sctx);
    ossl_sites_recording = 0;
    ossl_sites_print(stdout);
    SSL_free(s);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "idle") == 0) {
        if (!CRYPTO_set_mem_functions(ossl_count_malloc, ossl_count_realloc,
                                      ossl_count_free))
            fail("cannot count OpenSSL's allocations");
        host = argv[6];
        long count = atol(argv[2]);
        if (count < 1)
            return 2;
        return idle(count, &argv[3]);
    }
    if (argc == 6 && strcmp(argv[1], "idle-sites") == 0) {
        if (!CRYPTO_set_mem_functions(ossl_sites_malloc, ossl_sites_realloc,
                                      ossl_sites_free))
            fail("cannot follow OpenSSL's allocations");
        host = argv[5];
        return idle_sites(&argv[2]);
    }
    if (argc == 7 && strcmp(argv[1], "records") == 0) {
        host = argv[6];
        long count = atol(argv[2]);
        if (count < 1)
            return 2;
        return records(count, &argv[3]);
    }
    if ((argc != 8 && argc != 9) || (strcmp(argv[1], "full") != 0 &&
                      strcmp(argv[1], "resumed") != 0)) {
        fprintf(stderr, "usage: hsloop full|resumed SECONDS PROCS CERT KEY "
                        "CA HOST [THREADS]\n       hsloop idle|records COUNT CERT KEY "
                        "CA HOST\n       hsloop idle-sites CERT KEY CA HOST\n");
        return 2;
    }
    int resume = strcmp(argv[1], "resumed") == 0;
    double seconds = atof(argv[2]);
    int procs = atoi(argv[3]);
    int threads = argc == 9 ? atoi(argv[8]) : 1;
    host = argv[7];
    if (seconds <= 0 || procs < 1 || procs > 256 || threads < 1 ||
        threads > 256) {
        fprintf(stderr, "hsloop: SECONDS > 0, 1 <= PROCS, THREADS <= 256\n");
        return 2;
    }
    alarm((unsigned)seconds + 60);
    int pipefd[2];
    if (pipe(pipefd) != 0)
        fail("pipe");
    for (int i = 0; i < procs; i++) {
        pid_t pid = fork();
        if (pid < 0)
            fail("fork");
        if (pid == 0) {
            close(pipefd[0]);
            alarm((unsigned)seconds + 60);
            run(resume, seconds, threads, &argv[4], pipefd[1]);
            _exit(0);
        }
    }
    close(pipefd[1]);
    FILE *in = fdopen(pipefd[0], "r");
    double rate = 0;
    long total = 0, total_reused = 0;
    int got = 0;
    long count, reused;
    double secs;
    while (in != NULL && fscanf(in, "%ld %ld %lf", &count, &reused, &secs) == 3) {
        rate += (double)count / secs;
        total += count;
        total_reused += reused;
        got++;
    }
    int failed = got != procs;
    for (int i = 0; i < procs; i++) {
        int st;
        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failed = 1;
    }
    if (failed) {
        fprintf(stderr, "hsloop: a loop failed\n");
        return 1;
    }
    printf("handshakes_per_s %.1f procs %d connections %ld reused %ld\n", rate,
           procs, total, total_reused);
    return 0;
}
