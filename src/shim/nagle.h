/*
 * No record waits behind Nagle's algorithm (docs/design.md, "No record
 * waits behind Nagle's algorithm").
 *
 * A TLS 1.3 client's Finished is a segment plain TCP never sends: when the
 * server answers it with nothing (no session tickets), Nagle holds the
 * program's first write behind it until the server's delayed ACK, 40 ms
 * later. So a managed socket carries TCP_NODELAY from the swap until the
 * program's first write past the handshake has reached the kernel; then the
 * program's own value is set back, and later writes are held exactly when
 * plain TCP would hold them (behind the program's own unacknowledged
 * data). While the window is open, getsockopt(TCP_NODELAY) reads the
 * program's value and setsockopt(TCP_NODELAY) records it.
 */
#ifndef SECSHIM_SHIM_NAGLE_H
#define SECSHIM_SHIM_NAGLE_H

#include <stdbool.h>
#include <sys/socket.h>

struct shim_sock;

/* Opens the window on a socket just made managed (not yet shared): reads
 * the program's TCP_NODELAY (set before connect, or inherited from the
 * listener) and turns it on when it is off. Keeps errno. */
void shim_nagle_open(struct shim_sock *s);

/* After a program write that the engine accepted, with s locked: closes
 * the window once the handshake is over and nothing of the write waits in
 * the engine (it is all in the kernel). Keeps errno. */
void shim_nagle_after_write(struct shim_sock *s);

/* getsockopt/setsockopt(IPPROTO_TCP, TCP_NODELAY) on managed socket s:
 * false when level/name is another option (the caller does the real
 * call); true when handled, with *rc the call's result (0, or -1 and
 * errno as the kernel gives them). */
bool shim_nagle_getsockopt(struct shim_sock *s, int level, int name,
                           void *val, socklen_t *len, int *rc);
bool shim_nagle_setsockopt(struct shim_sock *s, int level, int name,
                           const void *val, socklen_t len, int *rc);

#endif
