/*
 * testutil.h - helpers shared by the cmocka unit tests.
 *
 * Tests run from the project root (make test-unit does). The PKI is made by
 * tools/secshim-pki into a fresh temporary directory, once per test
 * program; docs/pki.md lists the files it holds.
 */
#ifndef SECSHIM_TESTUTIL_H
#define SECSHIM_TESTUTIL_H

#include <stddef.h>

/*
 * Creates a temporary directory, runs tools/secshim-pki into it, and
 * returns its path (static storage). Aborts the program when the script
 * fails: every test that follows would be meaningless.
 */
const char *tu_pki(void);

/* "<pki dir>/<name>" in one of a few rotating static buffers. */
const char *tu_pki_file(const char *name);

/* Writes text to a new file in the temporary directory; returns its path
 * (static rotating buffer). printf-style. */
const char *tu_write_file(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Removes the temporary directory (call from the group teardown). */
void tu_cleanup(void);

#endif
