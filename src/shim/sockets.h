/*
 * sockets.h - the socket life calls (sockets.c), for the other families.
 */
#ifndef SECSHIM_SHIM_SOCKETS_H
#define SECSHIM_SHIM_SOCKETS_H

#include <stdbool.h>
#include <sys/socket.h>

/* connect() as the program sees it: 0, or -1 with errno (also for the
 * syscall guard's trapped calls, guard.c). */
int shim_connect(int fd, const struct sockaddr *addr, socklen_t len);

/* accept() (four false) or accept4() (four true, with flags) as the
 * program sees it: the new descriptor, or -1 with errno. */
int shim_accept(int lfd, struct sockaddr *addr, socklen_t *len, int flags,
                bool four);

/* close() as the program sees it. */
int shim_close(int fd);

/* shutdown() as the program sees it (close_notify for a managed fd). */
int shim_shutdown(int fd, int how);

/*
 * A connected TCP socket the program inherited from a parent that was
 * not under the shim (inetd, systemd Accept=yes): when its local address
 * matches a listen endpoint, fd becomes managed as an accepted socket
 * (server-side TLS, handshake at the first I/O), exactly as accept()
 * would have made it. Returns 1 when managed, 0 when no endpoint matches
 * (fd untouched), -1 with errno when it matched but cannot be managed:
 * fd is then shut down, so nothing passes in clear.
 */
int shim_adopt_accepted(int fd);

/*
 * sendto/sendmsg with MSG_FASTOPEN on a descriptor the shim does not
 * manage (io.c): when fd is a TCP socket and addr (of addr_len bytes) a
 * destination the policy says is TLS, connects fd exactly as connect()
 * would (blocking: TCP and the handshake; non-blocking: -1 EINPROGRESS)
 * and returns connect's 0 or -1 with errno. Returns 1 when the call is
 * none of the shim's business: the caller passes it on unchanged.
 */
int shim_connect_for_fastopen(int fd, const struct sockaddr *addr,
                              socklen_t addr_len);

#endif
