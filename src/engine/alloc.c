/*
 * alloc.c - the engine's allocation functions (see alloc.h). Nothing else
 * may live in this file: a test program replaces all of it at link time
 * by defining these four names (test/unit/test_alloc.c), which works only
 * while the archive member holds no other symbol the program needs.
 */
#include "secshim/alloc.h"

#include <stdlib.h>
#include <string.h>

void *ss_malloc(size_t n)
{
    return malloc(n);
}

void *ss_calloc(size_t count, size_t size)
{
    return calloc(count, size);
}

void *ss_realloc(void *p, size_t n)
{
    return realloc(p, n);
}

char *ss_strdup(const char *s)
{
    return strdup(s);
}
