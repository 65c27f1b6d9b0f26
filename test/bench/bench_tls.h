/*
 * bench_tls.h - the TLS settings of secshim's endpoints
 * (src/engine/tlsctx.c) as the bench programs that link OpenSSL (hsloop,
 * tlsloop) make them, so that the library's bounds are measured with
 * what the shim negotiates:
 *
 *   both:   TLS 1.3 only, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION,
 *           SSL_MODE_ENABLE_PARTIAL_WRITE | ACCEPT_MOVING_WRITE_BUFFER (no
 *           RELEASE_BUFFERS: the shim gives the buffers back only when a
 *           connection goes idle), read-ahead on (one read takes a
 *           record's header and body), OpenSSL's default groups and TLS
 *           1.3 suites
 *   server: SSL_OP_CIPHER_SERVER_PREFERENCE, CERT (leaf + chain) and KEY,
 *           verifies nothing (no tls-mutual); a session id context; with
 *           resume, a server session cache and OpenSSL's two tickets,
 *           without, neither
 *   client: verifies the server chain against CA (the caller sets the
 *           host name: SSL_set1_host, and the same name as SNI)
 *
 * One translation unit each, which defines BENCH_PROGRAM (its name, for
 * messages) first: everything here is static.
 */
#ifndef SECSHIM_BENCH_TLS_H
#define SECSHIM_BENCH_TLS_H

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void fail(const char *what)
{
    fprintf(stderr, BENCH_PROGRAM ": %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static SSL_CTX *new_ctx(int server, int resume, const char *cert,
                        const char *key, const char *ca)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method()
                                      : TLS_client_method());
    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
        fail("cannot create an SSL_CTX");
    uint64_t options = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
    if (server)
        options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    SSL_CTX_set_options(ctx, options);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    if (!server) {
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
            fail("cannot load the CA");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        return ctx;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        fail("cannot load the certificate and key");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    static const unsigned char sid_ctx[] = "secshim-bench";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    if (resume) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
    return ctx;
}

#endif
