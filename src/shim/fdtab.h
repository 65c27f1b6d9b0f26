/*
 * fdtab.h - program descriptor -> managed socket, and the descriptors the
 * shim owns (fdtab.c).
 */
#ifndef SECSHIM_SHIM_FDTAB_H
#define SECSHIM_SHIM_FDTAB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "sock.h"

/*
 * Descriptors below FDTAB_LOW have their slots in two flat arrays, the
 * program's (fd -> struct shim_sock *) and the shim's own (fd -> struct
 * shim_owned *), so that the question every interposed call asks first,
 * "is this descriptor the shim's business?", is answered inline by one
 * load of a NULL slot and a branch (issue 9: an untouched descriptor pays
 * nothing else). Above FDTAB_LOW, and for a slot that is set, the
 * functions in fdtab.c decide. Only fdtab.c writes these arrays; hidden,
 * so the load is PC-relative.
 */
#define FDTAB_LOW 4096
typedef _Atomic(void *) fdtab_slot_t;
extern fdtab_slot_t fdtab_program_low[FDTAB_LOW]
    __attribute__((visibility("hidden")));
extern fdtab_slot_t fdtab_owned_low[FDTAB_LOW]
    __attribute__((visibility("hidden")));

/* Whether slot fd of a low array is certainly empty (fd below FDTAB_LOW
 * and its slot NULL): the fast "not ours" answer. */
static inline bool fdtab_low_empty(fdtab_slot_t *low, int fd)
{
    return (unsigned int)fd < FDTAB_LOW &&
           atomic_load_explicit(&low[fd], memory_order_relaxed) == NULL;
}

/* fdtab_get's answer for a descriptor the fast check does not settle. */
struct shim_sock *fdtab_get_slow(int fd);

/* The sock behind program descriptor fd with a reference taken, or NULL
 * for an unmanaged fd (one load below FDTAB_LOW). */
static inline struct shim_sock *fdtab_get(int fd)
{
    if (fdtab_low_empty(fdtab_program_low, fd))
        return NULL;
    return fdtab_get_slow(fd);
}

/* Points fd at s (taking a reference and counting the descriptor); a
 * stale entry for fd is detached first. Keeps errno. */
void fdtab_install(int fd, struct shim_sock *s);

void fdtab_detach_slow(int fd);

/* Forgets fd before the kernel closes it (the sock counts it out). Keeps
 * errno. */
static inline void fdtab_detach(int fd)
{
    if (!fdtab_low_empty(fdtab_program_low, fd))
        fdtab_detach_slow(fd);
}

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
bool fdtab_ours_slow(int fd);

/* Whether fd is owned and still what the shim made (fstat); an entry whose
 * number was reused behind the shim's back is dropped. One load, no lock
 * and no system call when fd is not owned. */
static inline bool fdtab_ours(int fd)
{
    return !fdtab_low_empty(fdtab_owned_low, fd) && fdtab_ours_slow(fd);
}
/* The sock whose private descriptor is fd, with a reference; else NULL. */
struct shim_sock *fdtab_owner_get(int fd);
/* The program wants number fd, which the shim owns: the owner moves its
 * descriptor to another number. Returns 0 (also when fd is not owned) or
 * -1 with errno. */
int fdtab_move_owned(int fd);
/* The first owned descriptor >= from, or -1. */
int fdtab_next_owned(int from);

#endif
