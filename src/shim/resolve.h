/*
 * resolve.h - connect matching by address sets, names the program resolved
 * (resolve.c).
 */
#ifndef SECSHIM_SHIM_RESOLVE_H
#define SECSHIM_SHIM_RESOLVE_H

#include <stddef.h>
#include <sys/socket.h>

#include "secshim/policy.h"

/*
 * The connect endpoint of snapshot p that a connection to addr belongs to,
 * or NULL (no endpoint, or a disabled first match: plain TCP). Name
 * endpoints match by the addresses the shim resolves for their names
 * itself (resolved when a connect first needs them, kept ADDRSET_TTL_S);
 * IPv4-mapped destinations match as IPv4. On a match, host (size
 * host_len) receives the name to send as SNI and check: tls-target-name,
 * a name endpoint's own name, or for address, prefix and `*` endpoints
 * the one name the program resolved to addr, else the address text
 * (docs/shim.md, "Matching a destination"). May look names up: call
 * without any shim lock held. Keeps errno.
 */
const struct ss_endpoint *resolve_match_connect(struct ss_policy *p,
                                                const struct sockaddr *addr,
                                                socklen_t len, char *host,
                                                size_t host_len);

void resolve_fork_prepare(void);
void resolve_fork_parent(void);
void resolve_fork_child(void);

#endif
