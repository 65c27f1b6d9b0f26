/*
 * relay.h - TLS across exec, and the relayed descriptors of an image (relay.c).
 */
#ifndef SECSHIM_SHIM_RELAY_H
#define SECSHIM_SHIM_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Descriptors a relay may stand on: 0, 1 and 2 (the inetd convention). */
#define RELAY_FDS 3

/* What relay_exec_prepare did to the exec'ing process, to undo should
 * the exec fail. Lives on the exec wrapper's stack. */
struct relay_exec {
    unsigned relayed_mask;  /* program descriptors now a relay's socketpair */
    int saved[RELAY_FDS];   /* their stand-ins, close-on-exec, or -1 */
    int commit[RELAY_FDS];  /* write ends of the relays' commit pipes */
    int n_commit;
    char env[768];          /* "SECSHIM_RELAYED=...", or "" */
};

/*
 * Before an exec: each managed connection on descriptor 0, 1 or 2 without
 * FD_CLOEXEC gets a relay process, and those numbers become the relay's
 * socketpair (docs/design.md, "Process life"); rx->env describes them
 * (and descriptors this image was itself given by a relay) for the new
 * image. Nothing in a vfork child. A relay that cannot be made leaves the
 * stand-in with one warning. Keeps errno.
 */
void relay_exec_prepare(struct relay_exec *rx, const char *call);
/* The exec returned: the descriptors get their stand-ins back and the
 * relays leave without touching the connection. Keeps errno. */
void relay_exec_failed(struct relay_exec *rx);
/* envp's entries; relay_env_build writes into out (relay_env_count + 2
 * slots) envp without any SECSHIM_RELAYED entry, plus rx's. */
size_t relay_env_count(char *const envp[]);
void relay_env_build(const struct relay_exec *rx, char *const envp[],
                     char **out);

/* The constructor: reads (and removes) SECSHIM_RELAYED. */
void relay_image_start(void);
/* Whether the socket dev/ino is a relay's socketpair end in this image. */
bool relay_is_relayed(dev_t dev, ino_t ino);
/* getpeername (peer) / getsockname of a relayed descriptor: the original
 * TCP addresses. True when fd is relayed (*rc is then the call's result,
 * with errno), false otherwise. */
bool relay_name(int fd, bool peer, struct sockaddr *addr, socklen_t *len,
                int *rc);
/* getsockopt/setsockopt (set) on a relayed descriptor, for the options
 * that would otherwise tell the socketpair from the TCP socket. True when
 * answered (*rc is the result), false to pass the call through. */
bool relay_sockopt(int fd, int level, int name, bool set, void *val,
                   socklen_t *len, int *rc);

#endif
