/*
 * epoll.h - the epoll sets the shim tracks (epoll.c), for the other families.
 */
#ifndef SECSHIM_SHIM_EPOLL_H
#define SECSHIM_SHIM_EPOLL_H

#include "sock.h"

/* forgets fd in every epoll set the shim tracks, and the set
 * itself when fd is an epoll descriptor. Called by close() before the
 * kernel closes fd. Keeps errno. */
void events_fd_closing(int fd);

/* after I/O on s by any thread (called with s unlocked): wakes
 * the threads sleeping in epoll_wait on a set that holds s, so readiness
 * left in the engine (plaintext, the handshake's end) is seen at once.
 * One load when s is in no epoll set. Keeps errno. */
void events_sock_progress(struct shim_sock *s);

/* the move of a private descriptor (sock.c, the program dup2()s onto its
 * number). hold takes every epoll lock (ep_lock, then each tracked set's
 * lock), so that no registration is made, changed or removed until
 * release; then, with s locked, move re-keys every kernel registration
 * that watches s's private descriptor old itself onto fresh, in every
 * set. move returns 0 (old may then be closed), or -1 with errno when
 * a set refused the new registration (nothing has moved then, and fresh
 * may be closed). */
void events_hold(void);
void events_release(void);
int events_private_move(struct shim_sock *s, int old, int fresh);

/* epoll registrations made on a TCP socket before connect()
 * (nginx registers upstream sockets so) move with the connection when it
 * becomes managed. socket() notes new TCP sockets; connect() settles them
 * (managed or not); in between, the registrations made on them are kept.
 * take removes them from the kernel (call while fd is still the real
 * socket); restore registers them again for the managed fd (after it is
 * in the fdtab); free drops them. Keep errno. */
struct events_moved;
void events_socket_created(int fd);
void events_socket_settled(int fd);
struct events_moved *events_take_registrations(int fd);
void events_restore_registrations(struct events_moved *m, int fd);
void events_moved_free(struct events_moved *m);

#endif
