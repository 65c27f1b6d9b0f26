/*
 * compat_libc.h - the libc declarations the shim needs that older glibc
 * headers lack, in one place (STYLE.md: "Few #ifdefs").
 *
 * The shim builds against glibc 2.28's headers and runs on glibc 2.28 or
 * later (README, "Supported platforms"). The functions declared here came
 * later; they are the optional symbols of real.c, looked up at first use
 * (docs/shim.md, "Required and optional symbols"). Each prototype is the
 * one newer headers have (C allows an identical redeclaration), so the
 * shim's exported definitions are checked against it on every system, and
 * no source file relies on the system header declaring them. Constants are
 * defined only where the headers lack them, with the kernel's values.
 * `make check-old-headers` compiles the shim with these declarations
 * hidden from the system headers (docs/testing.md).
 */
#ifndef SECSHIM_COMPAT_LIBC_H
#define SECSHIM_COMPAT_LIBC_H

/* Included first, so that the #ifndefs below see the headers' own
 * definitions (several are enumerators with a #define of the same name). */
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* glibc 2.35 (Linux 5.11). */
int epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                 const struct timespec *timeout, const sigset_t *sigmask);

/* glibc 2.34 (close_range: Linux 5.9). */
int close_range(unsigned int first, unsigned int last, int flags);
void closefrom(int lowfd);

/* glibc 2.34's <unistd.h>, or the kernel's <linux/close_range.h> (5.9);
 * the same tokens as both, so a later include of either is no conflict. */
#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Kernel flags older than glibc 2.28 but newer than some distributions'
 * headers; the tokens are glibc's (<bits/uio-ext.h>, <sys/epoll.h>,
 * <bits/socket.h>). */
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008 /* Linux 4.14 */
#endif
#ifndef RWF_APPEND
#define RWF_APPEND 0x00000010 /* Linux 4.16 */
#endif
#ifndef EPOLLEXCLUSIVE
#define EPOLLEXCLUSIVE (1u << 28) /* Linux 4.5 */
#endif
#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000 /* Linux 3.7 */
#endif

#endif
