/*
 * A glibc 2.28-like <sys/epoll.h> for `make check-old-headers`
 * (docs/testing.md): the system header without epoll_pwait2 (glibc 2.35),
 * whose declaration gets another name.
 */
/* Once only, like the real header: a second pass would take away what
 * the shim's compat_libc.h defined after the first. */
#ifndef SECSHIM_OLDLIBC_SYS_EPOLL_H
#define SECSHIM_OLDLIBC_SYS_EPOLL_H
#define epoll_pwait2 secshim_oldlibc_hidden_epoll_pwait2
#include_next <sys/epoll.h>
#undef epoll_pwait2
#endif
