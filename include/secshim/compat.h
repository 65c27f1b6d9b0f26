/*
 * compat.h - the Security Pack compatibility mode switch, and the few
 * OpenSSL build differences the engine has to know about.
 */
#ifndef SECSHIM_COMPAT_H
#define SECSHIM_COMPAT_H

#include <stdbool.h>

#include <openssl/opensslconf.h>

/*
 * True when GCTI_SECPACK_COMPAT_MODE was exactly "1" the first time this was
 * called (the shim calls it from its constructor). The answer is frozen for
 * the life of the process: later changes to the environment are ignored.
 */
bool ss_compat_mode(void);

/*
 * Whether this CPU has AES and carry-less multiply instructions (x86
 * AES-NI and PCLMULQDQ, the ARMv8 AES and PMULL extensions), with which
 * AES-GCM is faster than ChaCha20-Poly1305; false where it cannot tell.
 * The one place that knows CPUs (compat.c).
 */
bool ss_cpu_has_aes(void);

/* Whether the linked OpenSSL was built with SSLv3 at all. */
#if defined(OPENSSL_NO_SSL3) || defined(OPENSSL_NO_SSL3_METHOD)
#define SS_HAVE_SSL3 0
#else
#define SS_HAVE_SSL3 1
#endif

#endif
