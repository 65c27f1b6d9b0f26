/* compat.c - the process-wide, frozen compatibility-mode switch, and what
 * the CPU can do. */
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

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

bool ss_cpu_has_aes(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#elif defined(__aarch64__)
    unsigned long hw = getauxval(AT_HWCAP);
    return (hw & HWCAP_AES) != 0 && (hw & HWCAP_PMULL) != 0;
#else
    return false;
#endif
}
