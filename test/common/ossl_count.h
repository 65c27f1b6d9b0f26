/*
 * ossl_count.h - counts what OpenSSL holds: allocation functions for
 * CRYPTO_set_mem_functions (installed before OpenSSL's first allocation)
 * that keep the live bytes and blocks in ossl_live_bytes/ossl_live_blocks.
 * Each block carries its size in a 16-byte prefix (keeping malloc's
 * alignment). For test and bench programs, one translation unit each:
 * everything here is static.
 */
#ifndef SECSHIM_TEST_OSSL_COUNT_H
#define SECSHIM_TEST_OSSL_COUNT_H

#include <stdlib.h>

static size_t ossl_live_bytes, ossl_live_blocks;

static void *ossl_count_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    size_t *p = malloc(n + 16);
    if (p == NULL)
        return NULL;
    p[0] = n;
    ossl_live_bytes += n;
    ossl_live_blocks++;
    return (char *)p + 16;
}

static void *ossl_count_realloc(void *q, size_t n, const char *file, int line)
{
    if (q == NULL)
        return ossl_count_malloc(n, file, line);
    size_t *p = (size_t *)(void *)((char *)q - 16);
    size_t old = p[0];
    size_t *grown = realloc(p, n + 16);
    if (grown == NULL)
        return NULL;
    grown[0] = n;
    ossl_live_bytes = ossl_live_bytes - old + n;
    return (char *)grown + 16;
}

static void ossl_count_free(void *q, const char *file, int line)
{
    (void)file;
    (void)line;
    if (q == NULL)
        return;
    size_t *p = (size_t *)(void *)((char *)q - 16);
    ossl_live_bytes -= p[0];
    ossl_live_blocks--;
    free(p);
}

#endif
