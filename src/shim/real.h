/*
 * real.h - the real libc functions behind every interposed name (real.c), and
 * SS_EXPORT, which marks the trampolines that leave the library.
 */
#ifndef SECSHIM_SHIM_REAL_H
#define SECSHIM_SHIM_REAL_H

#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "compat_libc.h"

/* Only the trampolines leave the library (-fvisibility=hidden). */
#define SS_EXPORT __attribute__((visibility("default")))


/* The next definition of every libc function the shim interposes or uses
 * for its own I/O that glibc 2.28 has (the required symbols, docs/shim.md
 * "Required and optional symbols"), bound once by shim_real_bind(). */
struct real_fns {
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*close)(int);
    int (*shutdown)(int, int);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *,
                        socklen_t *);
    ssize_t (*sendto)(int, const void *, size_t, int,
                      const struct sockaddr *, socklen_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*getaddrinfo)(const char *, const char *, const struct addrinfo *,
                       struct addrinfo **);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
    int (*poll)(struct pollfd *, nfds_t, int);
    int (*getsockopt)(int, int, int, void *, socklen_t *);
    int (*getsockname)(int, struct sockaddr *, socklen_t *);
    int (*getpeername)(int, struct sockaddr *, socklen_t *);
    int (*setsockopt)(int, int, int, const void *, socklen_t);
    int (*socket)(int, int, int);
    int (*bind)(int, const struct sockaddr *, socklen_t);
    int (*listen)(int, int);
    /* poll.c, epoll.c and sockets.c (issue 4, part A) */
    int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *,
                 const sigset_t *);
    int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    int (*pselect)(int, fd_set *, fd_set *, fd_set *,
                   const struct timespec *, const sigset_t *);
    int (*epoll_create)(int);
    int (*epoll_create1)(int);
    int (*epoll_ctl)(int, int, int, struct epoll_event *);
    int (*epoll_wait)(int, struct epoll_event *, int, int);
    int (*epoll_pwait)(int, struct epoll_event *, int, int,
                       const sigset_t *);
    int (*ioctl)(int, unsigned long, ...);
    /* io.c and process.c (issue 4, part B) */
    ssize_t (*sendfile)(int, int, off_t *, size_t);
    ssize_t (*splice)(int, off_t *, int, off_t *, size_t, unsigned int);
    int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int,
                    struct timespec *);
    int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execv)(const char *, char *const[]);
    int (*execvp)(const char *, char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
    int (*posix_spawn)(pid_t *, const char *, const void *, const void *,
                       char *const[], char *const[]);
    int (*posix_spawnp)(pid_t *, const char *, const void *, const void *,
                        char *const[], char *const[]);
    FILE *(*fdopen)(int, const char *);
    struct hostent *(*gethostbyname2)(const char *, int);
    int (*rcmd_af)(char **, unsigned short, const char *, const char *,
                   const char *, int *, sa_family_t);
    int (*rexec_af)(char **, int, const char *, const char *, const char *,
                    int *, sa_family_t);
    int (*gethostbyname2_r)(const char *, int, struct hostent *, char *,
                            size_t, struct hostent **, int *);
    /* io.c: the remaining ways to send and receive (issue 7, part 3) */
    int (*vdprintf)(int, const char *, va_list);
    int (*__vdprintf_chk)(int, int, const char *, va_list);
    ssize_t (*preadv)(int, const struct iovec *, int, off_t);
    ssize_t (*pwritev)(int, const struct iovec *, int, off_t);
    ssize_t (*preadv2)(int, const struct iovec *, int, off_t, int);
    ssize_t (*pwritev2)(int, const struct iovec *, int, off_t, int);
};

/* Hidden: the trampolines reach it with one PC-relative load, not
 * through the GOT. */
extern struct real_fns real __attribute__((visibility("hidden")));

/* Binds `real` (once, pthread_once); the constructor calls it, and so does
 * REAL() for a call made before that, from another library's constructor.
 * A missing required symbol is fatal with a message. */
void shim_real_bind(void);

/* shim_real_bind(), then the table: the slow path of REAL(). */
const struct real_fns *shim_real_bound(void);

/*
 * The real function: `REAL(read)(fd, buf, len)`. Once the constructor has
 * bound the table this is a load, a predictable branch and the load of
 * the same slot again (no call, no pthread_once: an untouched descriptor
 * pays nothing else, issue 9); a slot still NULL means the call came
 * before the constructor, and binds. The loads are atomic because a slot
 * may be filled by another thread's binding; relaxed suffices, as the
 * caller only needs the pointer itself. (Not a statement expression,
 * which cppcheck cannot read.)
 */
#define REAL(name)                                                      \
    (__builtin_expect(__atomic_load_n(&real.name, __ATOMIC_RELAXED) !=  \
                          NULL,                                         \
                      1)                                                \
         ? __atomic_load_n(&real.name, __ATOMIC_RELAXED)                \
         : shim_real_bound()->name)

/* The slot as it is, NULL before the constructor: for a fast path that
 * hands that case to a slower one using REAL() (io.c). */
#define REAL_IF_BOUND(name) __atomic_load_n(&real.name, __ATOMIC_RELAXED)

/* The optional symbols: interposed or used, but newer than glibc 2.28.
 * Each is looked up at its first use; where libc has none, that call
 * answers -1 ENOSYS and the process keeps running (docs/shim.md).
 * closefrom (2.34) is interposed but never forwarded (process.c). */
enum real_optional {
    REAL_OPT_epoll_pwait2, /* glibc 2.35 */
    REAL_OPT_close_range,  /* glibc 2.34 */
    REAL_OPT_COUNT
};

/* The optional functions' types; real_missing holds their stand-ins, each
 * failing with ENOSYS. */
struct real_optional_fns {
    int (*epoll_pwait2)(int, struct epoll_event *, int,
                        const struct timespec *, const sigset_t *);
    int (*close_range)(unsigned int, unsigned int, int);
};
extern const struct real_optional_fns real_missing;

/* The next definition of an optional symbol, looked up once (thread-safe),
 * or its ENOSYS stand-in: never NULL. */
void (*shim_real_optional(enum real_optional which))(void);
/* Whether libc has the optional symbol (looked up as above). */
bool shim_real_present(enum real_optional which);

/* `REAL_OPTIONAL(close_range)(first, last, flags)`: the real function, or
 * -1 ENOSYS where libc has none. */
#define REAL_OPTIONAL(name) \
    ((__typeof__(real_missing.name))shim_real_optional(REAL_OPT_##name))
#define REAL_PRESENT(name) shim_real_present(REAL_OPT_##name)

#endif
