/*
 * status.h - what this process publishes for `secshim status`: its status
 * file, mapped shared, and the counters the connection path adds to
 * (status.c; include/secshim/status.h; docs/design.md, "Status
 * publishing").
 */
#ifndef SECSHIM_SHIM_STATUS_H
#define SECSHIM_SHIM_STATUS_H

#include <stdbool.h>

#include "secshim/policy.h"
#include "secshim/status.h"

/*
 * Publishes this process: creates (or, after an exec, rewrites in place)
 * its file in the status directory, maps it, and fills in the policy's
 * path, compatibility mode and endpoints. Called once by the constructor
 * of an active shim. A directory or file that cannot be used is one
 * warning; the process then runs unpublished, its counters going to
 * private memory. Keeps errno.
 */
void shim_status_start(const struct ss_policy *p, const char *policy_path,
                       bool compat);

/* A reload published p: slots for endpoints of new names, and the
 * certificate expiry of every endpoint whose context p has built. */
void shim_status_policy(const struct ss_policy *p);

/* ep's context was built (shim_endpoint_ready): its certificate's expiry
 * is known now. */
void shim_status_built(const struct ss_endpoint *ep);

/* The slot of ep (by name) for a new connection's counters; never NULL:
 * a private one when the endpoint has none (not published, or more than
 * SS_STATUS_MAX_ENDPOINTS names). */
struct ss_status_endpoint *shim_status_endpoint(const struct ss_endpoint *ep);

/* Records why a use of ep failed (a TLS context that cannot be built...). */
void shim_status_fail(struct ss_status_endpoint *e, const char *why);

/* exec: the file says the image is leaving (EXECED), before the exec;
 * back to RUNNING when the exec failed. Not in a vfork child, whose
 * memory (and mapping) is its parent's. */
void shim_status_exec_begin(void);
void shim_status_exec_failed(void);

/*
 * fork child: private memory in place of the parent's mapping, at the same
 * address, so no count of the child reaches the parent's file; the child's
 * own file (its pid and start time) is made at its first use of TLS
 * (shim_status_touch). A child that never uses it (a shell's, one that
 * only execs, sshd's privilege-separated child that confines its system
 * calls with seccomp and would be killed by the unlink at its exit) makes
 * no file.
 */
void shim_status_fork_child(void);

/* A use of TLS by this process (a connection made or accepted, a
 * connection inherited over fork used for the first time, a context
 * built): in a fork child that has not published yet, publishes now.
 * Otherwise one relaxed load. Keeps errno. */
void shim_status_touch(void);

/* Normal exit: the file is removed. */
void shim_status_exit(void);

#endif
