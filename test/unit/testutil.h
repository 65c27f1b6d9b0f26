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

/* cmocka group setup that makes the PKI (tu_pki) and teardown that
 * removes it (tu_cleanup), for programs that need nothing else; both
 * return 0. */
int tu_group_setup(void **state);
int tu_group_teardown(void **state);

struct ss_policy;
struct ss_endpoint;

/* The endpoint named name in p. Fails the running test when p has none,
 * so it never returns NULL to the test. */
const struct ss_endpoint *tu_endpoint(const struct ss_policy *p,
                                      const char *name);

/* Makes sv a connected AF_UNIX stream socketpair with both ends
 * non-blocking; a failure fails the running test. */
void tu_socketpair_nonblock(int sv[2]);

#endif
