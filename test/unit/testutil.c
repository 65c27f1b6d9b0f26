/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char pki_dir[256];

#define ROTATING 8
static char rotating[ROTATING][512];
static unsigned next_slot;

static char *next_buffer(void)
{
    return rotating[next_slot++ % ROTATING];
}

const char *tu_pki(void)
{
    if (pki_dir[0] != '\0')
        return pki_dir;
    snprintf(pki_dir, sizeof(pki_dir), "/tmp/secshim-unit-XXXXXX");
    if (mkdtemp(pki_dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "tools/secshim-pki %s >%s/pki.log 2>&1",
             pki_dir, pki_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "tools/secshim-pki failed; see %s/pki.log\n",
                pki_dir);
        abort();
    }
    return pki_dir;
}

const char *tu_pki_file(const char *name)
{
    char *buf = next_buffer();
    snprintf(buf, sizeof(rotating[0]), "%s/%s", tu_pki(), name);
    return buf;
}

const char *tu_write_file(const char *name, const char *fmt, ...)
{
    const char *path = tu_pki_file(name);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        abort();
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    return path;
}

void tu_cleanup(void)
{
    if (pki_dir[0] == '\0' || getenv("SECSHIM_KEEP_TMP") != NULL)
        return;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", pki_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", pki_dir);
    pki_dir[0] = '\0';
}
