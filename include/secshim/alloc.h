/*
 * alloc.h - the engine's own allocations, in one place.
 *
 * Every malloc/calloc/realloc/strdup of src/engine/ goes through these, so
 * a test can make the Nth one fail (test/unit/test_alloc.c) without any
 * switch in the library: the functions live alone in src/engine/alloc.c,
 * and a test program that defines them itself is linked with its own
 * definitions instead, the archive's alloc.o never being pulled in
 * (docs/design.md, "Allocation failure"). They behave exactly as the libc
 * functions they call: NULL (errno ENOMEM) on failure; memory is released
 * with free().
 */
#ifndef SECSHIM_ALLOC_H
#define SECSHIM_ALLOC_H

#include <stddef.h>

void *ss_malloc(size_t n);
void *ss_calloc(size_t count, size_t size);
void *ss_realloc(void *p, size_t n);
char *ss_strdup(const char *s);

#endif
