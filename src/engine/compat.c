/* compat.c - the process-wide, frozen compatibility-mode switch. */
#include "secshim/compat.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t compat_once = PTHREAD_ONCE_INIT;
static bool compat_on;

static void compat_read_environment(void)
{
    const char *value = getenv("GCTI_SECPACK_COMPAT_MODE");
    compat_on = value != NULL && strcmp(value, "1") == 0;
}

bool ss_compat_mode(void)
{
    pthread_once(&compat_once, compat_read_environment);
    return compat_on;
}
