/*
 * cpu.h - what the CPU can do, where it decides a default.
 */
#ifndef SECSHIM_CPU_H
#define SECSHIM_CPU_H

#include <stdbool.h>

/*
 * Whether this CPU has AES and carry-less multiply instructions (x86
 * AES-NI and PCLMULQDQ, the ARMv8 AES and PMULL extensions), with which
 * AES-GCM is faster than ChaCha20-Poly1305; false where it cannot tell.
 * The one place that knows CPUs (cpu.c).
 */
bool ss_cpu_has_aes(void);

#endif
