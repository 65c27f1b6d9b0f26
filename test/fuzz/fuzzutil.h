/*
 * fuzzutil.h - helpers shared by the libFuzzer harnesses (docs/testing.md,
 * "Fuzzing").
 *
 * Each harness works in one temporary directory of its own, made once per
 * process and removed at exit, holding the throw-away PKI of
 * tools/secshim-pki (docs/pki.md) so that policies can name files that
 * exist and contexts can be built: a copy of $SECSHIM_FUZZ_PKI when set
 * (test/fuzz/run makes one for all), else made by the script.
 */
#ifndef SECSHIM_FUZZUTIL_H
#define SECSHIM_FUZZUTIL_H

#include <stddef.h>

/* The directory, made (with the PKI) at the first call; aborts when it
 * cannot be made, since every input after would test nothing. */
const char *fz_dir(void);

/* The same directory without the PKI (fz_dir adds it later if called). */
const char *fz_empty_dir(void);

/* "<dir>/<name>" in one of a few rotating static buffers. */
const char *fz_file(const char *name);

/* Writes len bytes to <dir>/<name> (replacing it) and returns its path,
 * or aborts. */
const char *fz_write(const char *name, const void *data, size_t len);

/* Sends the engine's log nowhere below error level, so that the
 * warnings valid inputs earn do not drown libFuzzer's own output. */
void fz_quiet_log(void);

#endif
