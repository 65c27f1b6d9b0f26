/*
 * guard.h - the syscall guard (guard.c): connect, accept and Fast Open
 * system calls a program makes without libc are trapped and carried out
 * by the shim. docs/design.md, "The syscall guard".
 */
#ifndef SECSHIM_SHIM_GUARD_H
#define SECSHIM_SHIM_GUARD_H

/*
 * Installs the guard for the process, once: a seccomp filter (on every
 * thread, and inherited by every child) that traps those system calls
 * when they come from this image's code other than libc's own functions
 * for them, and the SIGSYS handler that answers them through the shim.
 * Does nothing when SECSHIM_SYSCALL_GUARD=off, on a second call, or
 * under valgrind. Logs one line either way; a guard that cannot be
 * installed leaves the process running without it (a warning says why).
 */
void guard_start(void);

#endif
