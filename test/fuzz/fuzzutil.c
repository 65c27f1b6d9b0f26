/* fuzzutil.c - see fuzzutil.h. */
#include "fuzzutil.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secshim/common.h"
#include "secshim/log.h"

/* Where tools/secshim-pki is: the Makefile passes the project's root, so
 * a harness can be run from any directory. */
#ifndef FZ_ROOT
#define FZ_ROOT "."
#endif

static char dir[256];

#define ROTATING 8
static char rotating[ROTATING][512];
static unsigned next_slot;

static void remove_dir(void)
{
    if (dir[0] == '\0' || getenv("SECSHIM_KEEP_TMP") != NULL)
        return;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", dir);
}

const char *fz_empty_dir(void)
{
    if (dir[0] != '\0')
        return dir;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/secshim-fuzz-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(remove_dir);
    return dir;
}

const char *fz_dir(void)
{
    static bool made;
    if (made)
        return dir;
    made = true;
    fz_empty_dir();
    /* test/fuzz/run makes one PKI for every harness it runs: making it
     * takes seconds, and a harness starts twice (replay, then fuzz). */
    const char *pki = getenv("SECSHIM_FUZZ_PKI");
    char cmd[1024];
    if (pki != NULL && pki[0] != '\0')
        snprintf(cmd, sizeof(cmd), "cp -R '%s'/. '%s' >'%s/pki.log' 2>&1", pki,
                 dir, dir);
    else
        snprintf(cmd, sizeof(cmd),
                 "'%s/tools/secshim-pki' '%s' >'%s/pki.log' 2>&1", FZ_ROOT,
                 dir, dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "fuzz: making the PKI failed; see %s/pki.log\n",
                dir);
        abort();
    }
    return dir;
}

const char *fz_file(const char *name)
{
    char *buf = rotating[next_slot++ % ROTATING];
    snprintf(buf, sizeof(rotating[0]), "%s/%s", fz_empty_dir(), name);
    return buf;
}

const char *fz_write(const char *name, const void *data, size_t len)
{
    const char *path = fz_file(name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) ||
        fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

void fz_quiet_log(void)
{
    struct ss_errbuf err = {{0}};
    if (ss_log_configure(SS_LOG_ERROR, "stderr", &err) != SS_OK)
        fprintf(stderr, "fuzz: %s\n", err.msg);
}
