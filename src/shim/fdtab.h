/*
 * fdtab.h - program descriptor -> managed socket, and the descriptors the
 * shim owns (fdtab.c).
 */
#ifndef SECSHIM_SHIM_FDTAB_H
#define SECSHIM_SHIM_FDTAB_H

#include <stdbool.h>
#include <stddef.h>

#include "sock.h"

/* The sock behind program descriptor fd with a reference taken, or NULL
 * for an unmanaged fd (one atomic load). */
struct shim_sock *fdtab_get(int fd);

/* Points fd at s (taking a reference and counting the descriptor); a
 * stale entry for fd is detached first. Keeps errno. */
void fdtab_install(int fd, struct shim_sock *s);

/* Forgets fd before the kernel closes it (the sock counts it out). Keeps
 * errno. */
void fdtab_detach(int fd);

/* Forgets every managed descriptor in [first, last] (close_range,
 * closefrom). Keeps errno. */
void fdtab_detach_range(unsigned int first, unsigned int last);

/* Writes up to max managed descriptors into fds and returns how many
 * there are (may exceed max). Takes no lock and no reference, so it is
 * usable between vfork and exec; the answer is a snapshot. */
size_t fdtab_managed_fds(int *fds, size_t max);

/* The shim's own descriptors: private connection descriptors and others
 * such as the log. The interposed close/close_range/closefrom/dup leave
 * them alone while they are still the shim's (fdtab_ours). o must live
 * until fdtab_disown. */
void fdtab_own(int fd, struct shim_owned *o);
void fdtab_disown(int fd);
/* Whether fd is owned and still what the shim made (fstat); an entry whose
 * number was reused behind the shim's back is dropped. One load, no lock
 * and no system call when fd is not owned. */
bool fdtab_ours(int fd);
/* The sock whose private descriptor is fd, with a reference; else NULL. */
struct shim_sock *fdtab_owner_get(int fd);
/* The program wants number fd, which the shim owns: the owner moves its
 * descriptor to another number. Returns 0 (also when fd is not owned) or
 * -1 with errno. */
int fdtab_move_owned(int fd);
/* The first owned descriptor >= from, or -1. */
int fdtab_next_owned(int from);

void fdtab_fork_prepare(void);
void fdtab_fork_parent(void);
void fdtab_fork_child(void);

#endif
