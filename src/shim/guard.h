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
 * for them, and the SIGSYS handler that answers them through the shim;
 * with SECSHIM_SYSCALL_GUARD=strict, code the loader maps later gets a
 * filter of its own as it is mapped.
 * Does nothing when SECSHIM_SYSCALL_GUARD=off, on a second call, or
 * under valgrind. Logs one line either way; a guard that cannot be
 * installed leaves the process running without it (a warning says why).
 */
void guard_start(void);

/*
 * Brackets the shim's load of its own TLS half (libsecshim-tls.so and
 * what it needs: libssl, libcrypto) on this thread: code the loader maps
 * meanwhile is trusted like libc's and gets no filter of its own (strict
 * guard).
 */
void guard_own_load_begin(void);
void guard_own_load_end(void);

/* fork: the guard's lock (a leaf) is taken last and let go in both. */
void guard_fork_prepare(void);
void guard_fork_parent(void);
void guard_fork_child(void);

#endif
