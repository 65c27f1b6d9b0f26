/*
 * ossl_sites.h - where OpenSSL's live blocks were allocated: allocation
 * functions for CRYPTO_set_mem_functions (installed before OpenSSL's
 * first allocation) that, while ossl_sites_recording is set, put each new
 * block on a list with the FILE:LINE OpenSSL passes; freeing takes it off.
 * ossl_sites_print then sums what is still on the list by site. Each
 * block carries the list links and the site in a 48-byte prefix (keeping
 * malloc's 16-byte alignment). Single-threaded use only. For test and
 * bench programs, one translation unit each: everything here is static.
 */
#ifndef SECSHIM_TEST_OSSL_SITES_H
#define SECSHIM_TEST_OSSL_SITES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ossl_site_block {
    struct ossl_site_block *prev, *next; /* on the list, or both NULL */
    size_t size;
    const char *file;
    int line;
    int pad_;
    char align_[8]; /* the prefix is 48 bytes: a multiple of 16 */
};

static struct ossl_site_block ossl_sites_list = {
    .prev = &ossl_sites_list, .next = &ossl_sites_list};
static int ossl_sites_recording;

static void ossl_sites_unlink(struct ossl_site_block *b)
{
    if (b->next == NULL)
        return;
    b->prev->next = b->next;
    b->next->prev = b->prev;
    b->prev = b->next = NULL;
}

static void *ossl_sites_track(struct ossl_site_block *b, size_t n,
                              const char *file, int line)
{
    if (b == NULL)
        return NULL;
    b->size = n;
    b->file = file;
    b->line = line;
    b->prev = b->next = NULL;
    if (ossl_sites_recording) {
        b->next = ossl_sites_list.next;
        b->prev = &ossl_sites_list;
        b->next->prev = b;
        ossl_sites_list.next = b;
    }
    return b + 1;
}

static void *ossl_sites_malloc(size_t n, const char *file, int line)
{
    return ossl_sites_track(malloc(sizeof(struct ossl_site_block) + n), n,
                            file, line);
}

static void *ossl_sites_realloc(void *q, size_t n, const char *file, int line)
{
    if (q == NULL)
        return ossl_sites_malloc(n, file, line);
    struct ossl_site_block *b = (struct ossl_site_block *)q - 1;
    ossl_sites_unlink(b);
    return ossl_sites_track(realloc(b, sizeof(*b) + n), n, file, line);
}

static void ossl_sites_free(void *q, const char *file, int line)
{
    (void)file;
    (void)line;
    if (q == NULL)
        return;
    struct ossl_site_block *b = (struct ossl_site_block *)q - 1;
    ossl_sites_unlink(b);
    free(b);
}

struct ossl_site_sum {
    const char *file;
    int line;
    size_t bytes, blocks;
};

static int ossl_sites_by_bytes(const void *x, const void *y)
{
    const struct ossl_site_sum *a = x, *b = y;
    return (a->bytes < b->bytes) - (a->bytes > b->bytes);
}

/* "BYTES BLOCKS FILE:LINE" per site still on the list, largest first,
 * then "total BYTES BLOCKS". */
static void ossl_sites_print(FILE *out)
{
    enum { MAX_SITES = 512 };
    static struct ossl_site_sum sums[MAX_SITES];
    size_t n = 0, bytes = 0, blocks = 0;
    for (struct ossl_site_block *b = ossl_sites_list.next;
         b != &ossl_sites_list; b = b->next) {
        size_t i = 0;
        while (i < n && !(sums[i].line == b->line &&
                          strcmp(sums[i].file, b->file) == 0))
            i++;
        if (i == n && n == MAX_SITES)
            i = MAX_SITES - 1; /* the last row takes what does not fit */
        else if (i == n)
            sums[n++] = (struct ossl_site_sum){b->file, b->line, 0, 0};
        sums[i].bytes += b->size;
        sums[i].blocks++;
        bytes += b->size;
        blocks++;
    }
    qsort(sums, n, sizeof(sums[0]), ossl_sites_by_bytes);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%zu %zu %s:%d\n", sums[i].bytes, sums[i].blocks,
                sums[i].file, sums[i].line);
    fprintf(out, "total %zu %zu\n", bytes, blocks);
}

#endif
