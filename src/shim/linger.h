/*
 * linger.h - close and exit deliver what was accepted (linger.c).
 */
#ifndef SECSHIM_SHIM_LINGER_H
#define SECSHIM_SHIM_LINGER_H

#include "sock.h"

/*
 * The last close of s in the process that owns it, with s locked: queues
 * close_notify behind what the program wrote (unless SO_LINGER asks for
 * an abortive close, or the handshake never started) and, when bytes are
 * still unsent, hands s to the linger thread, which delivers them without
 * blocking the caller (docs/design.md, "Close without loss"). Keeps errno.
 */
void linger_last_close(struct shim_sock *s);

/* close() of the program's last descriptor of s: with SO_LINGER l_linger
 * > 0, waits (no lock held) until the linger delivered everything or that
 * time passed, as the kernel's close does. Keeps errno. */
void linger_close_wait(struct shim_sock *s);

/* Process exit: every open connection this process owns is closed as the
 * kernel closes a dying process's sockets (its bytes and close_notify
 * delivered), and the linger is waited for, in all at most
 * LINGER_EXIT_MS. Not in a vfork child. */
#define LINGER_EXIT_MS 5000
void linger_at_exit(void);

void linger_fork_prepare(void);
void linger_fork_parent(void);
void linger_fork_child(void);

#endif
