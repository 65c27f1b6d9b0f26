/*
 * process.h - the shim's life in a process: the policy snapshot and the
 * endpoints' TLS contexts (process.c).
 */
#ifndef SECSHIM_SHIM_PROCESS_H
#define SECSHIM_SHIM_PROCESS_H

#include "secshim/policy.h"

/* The current policy snapshot with a reference (release with
 * ss_policy_unref), or NULL while inert. Checks, at most once a second,
 * whether the policy or its files changed and reloads them. */
struct ss_policy *shim_policy_get(void);

/*
 * Makes sure ep, an enabled endpoint of p, has its TLS context, building
 * it at the first need (ss_policy_tls: once per snapshot, shared by every
 * thread; one acquire load once built). A build that fails logs one error
 * line naming file, line and option, and is remembered until the next
 * reload: every call meanwhile fails without a word. Keeps errno on
 * success. Returns 0, or -1 with errno EPROTO (ENOMEM when out of memory),
 * which the caller turns into its own call's errno.
 */
int shim_endpoint_ready(struct ss_policy *p, const struct ss_endpoint *ep);

#endif
