/*
 * process.h - the shim's life in a process: the policy snapshot (process.c).
 */
#ifndef SECSHIM_SHIM_PROCESS_H
#define SECSHIM_SHIM_PROCESS_H

#include "secshim/policy.h"

/* The current policy snapshot with a reference (release with
 * ss_policy_unref), or NULL while inert. Checks, at most once a second,
 * whether the policy or its files changed and reloads them. */
struct ss_policy *shim_policy_get(void);

#endif
