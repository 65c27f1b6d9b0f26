/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "secshim/policy.h"

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

int tu_group_setup(void **state)
{
    (void)state;
    tu_pki();
    return 0;
}

int tu_group_teardown(void **state)
{
    (void)state;
    tu_cleanup();
    return 0;
}

const struct ss_endpoint *tu_endpoint(const struct ss_policy *p,
                                      const char *name)
{
    for (size_t i = 0; i < p->n_endpoints; i++)
        if (strcmp(p->endpoints[i].name, name) == 0)
            return &p->endpoints[i];
    fail_msg("no endpoint %s", name);
    return NULL;
}

void tu_socketpair_nonblock(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(fcntl(sv[i], F_SETFL, O_NONBLOCK), 0);
}
