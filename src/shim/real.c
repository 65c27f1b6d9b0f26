/*
 * real.c - the real libc functions behind every interposed name, found
 * with dlsym(RTLD_NEXT).
 *
 * Required symbols (glibc 2.28 has them all) are bound together, once
 * (pthread_once), in the constructor or at the first call that comes
 * before it: other libraries' constructors, and the dynamic loader's own
 * users, may call connect/read/close before ours has run. After that,
 * REAL() is a load of a slot that is never NULL again (real.h), so the
 * once-check costs nothing per call. A missing one ends the process with
 * a message. Optional symbols (newer than glibc 2.28) are
 * looked up each at its first use, and a missing one answers that call
 * with ENOSYS (docs/shim.md, "Required and optional symbols").
 */
#include "real.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct real_fns real;

static pthread_once_t real_once = PTHREAD_ONCE_INIT;

/* dlsym returns an object pointer; the union converts it to a function
 * pointer without a cast ISO C leaves undefined. */
union sym {
    void *p;
    void (*f)(void);
};

/* stdio writes through libc's internal write, never an interposed name. */
static void die_missing(const char *name)
{
    fprintf(stderr, "secshim: cannot bind the real %s(): the shim cannot "
                    "run\n", name);
    _exit(127);
}

/*
 * SECSHIM_TEST_HIDE_SYMBOLS=NAME,NAME...: a test switch (docs/testing.md)
 * that makes the lookup of those names fail, as on a glibc without them,
 * so the tests exercise the real missing-symbol paths. Read once, before
 * the first lookup. It can only take functions away: a hidden required
 * symbol stops the process, a hidden optional one answers ENOSYS. A list
 * longer than the buffer hides nothing (no test needs one).
 */
static char hidden[512];

static void read_hidden(void)
{
    const char *env = getenv("SECSHIM_TEST_HIDE_SYMBOLS");
    if (env != NULL && strlen(env) < sizeof(hidden) - 2)
        snprintf(hidden, sizeof(hidden), ",%s,", env);
}

static bool is_hidden(const char *name)
{
    char key[64];
    if (hidden[0] == '\0' ||
        (size_t)snprintf(key, sizeof(key), ",%s,", name) >= sizeof(key))
        return false;
    return strstr(hidden, key) != NULL;
}

static void *lookup(const char *name)
{
    return is_hidden(name) ? NULL : dlsym(RTLD_NEXT, name);
}

static void (*bind_one(const char *name))(void)
{
    union sym s = {.p = lookup(name)};
    if (s.p == NULL)
        die_missing(name);
    return s.f;
}

/* Assigns through the union's function member: every slot of real_fns is a
 * function pointer, converted from the generic one. */
#define BIND(field, name)                                              \
    __atomic_store_n(&real.field, (__typeof__(real.field))bind_one(name), \
                     __ATOMIC_RELAXED)

static void real_bind_all(void)
{
    read_hidden();
    BIND(connect, "connect");
    BIND(accept, "accept");
    BIND(accept4, "accept4");
    BIND(close, "close");
    BIND(shutdown, "shutdown");
    BIND(read, "read");
    BIND(write, "write");
    BIND(recv, "recv");
    BIND(send, "send");
    BIND(recvfrom, "recvfrom");
    BIND(sendto, "sendto");
    BIND(readv, "readv");
    BIND(writev, "writev");
    BIND(recvmsg, "recvmsg");
    BIND(sendmsg, "sendmsg");
    BIND(getaddrinfo, "getaddrinfo");
    BIND(dup, "dup");
    BIND(dup2, "dup2");
    BIND(dup3, "dup3");
    BIND(fcntl, "fcntl");
    BIND(fcntl64, "fcntl64");
    BIND(poll, "poll");
    BIND(getsockopt, "getsockopt");
    BIND(getsockname, "getsockname");
    BIND(getpeername, "getpeername");
    BIND(setsockopt, "setsockopt");
    BIND(socket, "socket");
    BIND(bind, "bind");
    BIND(listen, "listen");
    BIND(ppoll, "ppoll");
    BIND(select, "select");
    BIND(pselect, "pselect");
    BIND(epoll_create, "epoll_create");
    BIND(epoll_create1, "epoll_create1");
    BIND(epoll_ctl, "epoll_ctl");
    BIND(epoll_wait, "epoll_wait");
    BIND(epoll_pwait, "epoll_pwait");
    BIND(ioctl, "ioctl");
    BIND(sendfile, "sendfile");
    BIND(splice, "splice");
    BIND(recvmmsg, "recvmmsg");
    BIND(sendmmsg, "sendmmsg");
    BIND(execve, "execve");
    BIND(execv, "execv");
    BIND(execvp, "execvp");
    BIND(execvpe, "execvpe");
    BIND(fexecve, "fexecve");
    BIND(posix_spawn, "posix_spawn");
    BIND(posix_spawnp, "posix_spawnp");
    BIND(fdopen, "fdopen");
    BIND(gethostbyname2, "gethostbyname2");
    BIND(gethostbyname2_r, "gethostbyname2_r");
    BIND(rcmd_af, "rcmd_af");
    BIND(rexec_af, "rexec_af");
    BIND(vdprintf, "vdprintf");
    BIND(__vdprintf_chk, "__vdprintf_chk");
    BIND(preadv, "preadv");
    BIND(pwritev, "pwritev");
    BIND(preadv2, "preadv2");
    BIND(pwritev2, "pwritev2");
}

void shim_real_bind(void)
{
    pthread_once(&real_once, real_bind_all);
}

const struct real_fns *shim_real_bound(void)
{
    shim_real_bind();
    return &real;
}

/* --- optional symbols ---------------------------------------------------- */

/* The answer of an optional function libc does not have: the call is not
 * available here, as the kernel says of a system call it lacks. */
static int missing_epoll_pwait2(int epfd, struct epoll_event *ev, int max,
                                const struct timespec *tmo,
                                const sigset_t *mask)
{
    (void)epfd, (void)ev, (void)max, (void)tmo, (void)mask;
    errno = ENOSYS;
    return -1;
}

static int missing_close_range(unsigned int first, unsigned int last,
                               int flags)
{
    (void)first, (void)last, (void)flags;
    errno = ENOSYS;
    return -1;
}

const struct real_optional_fns real_missing = {
    .epoll_pwait2 = missing_epoll_pwait2,
    .close_range = missing_close_range,
};

/* Each optional symbol's name and stand-in, by enum real_optional. The
 * casts go to void (*)(void), the one function type that converts back to
 * every other without a warning or undefined behaviour. */
static const struct {
    const char *name;
    void (*missing)(void);
} optional[REAL_OPT_COUNT] = {
    [REAL_OPT_epoll_pwait2] = {"epoll_pwait2",
                               (void (*)(void))missing_epoll_pwait2},
    [REAL_OPT_close_range] = {"close_range",
                              (void (*)(void))missing_close_range},
};

/* NULL until looked up, then the function or its stand-in (the "looked
 * up, missing" mark). Two threads may both look up at first; they find
 * the same answer, so the second store changes nothing. */
static _Atomic(void (*)(void)) optional_slot[REAL_OPT_COUNT];

void (*shim_real_optional(enum real_optional which))(void)
{
    void (*f)(void) =
        atomic_load_explicit(&optional_slot[which], memory_order_acquire);
    if (f != NULL)
        return f;
    shim_real_bind(); /* the hidden list is read there */
    union sym s = {.p = lookup(optional[which].name)};
    f = s.p != NULL ? s.f : optional[which].missing;
    atomic_store_explicit(&optional_slot[which], f, memory_order_release);
    return f;
}

bool shim_real_present(enum real_optional which)
{
    return shim_real_optional(which) != optional[which].missing;
}
