/*
 * real.c - the real libc functions behind every interposed name, bound
 * once with dlsym(RTLD_NEXT).
 *
 * Binding is lazy (pthread_once) rather than done in the constructor,
 * because other libraries' constructors, and the dynamic loader's own
 * users, may call connect/read/close before ours has run.
 */
#include "shim.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
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

static void (*bind_one(const char *name))(void)
{
    union sym s = {.p = dlsym(RTLD_NEXT, name)};
    if (s.p == NULL)
        die_missing(name);
    return s.f;
}

/* Assigns through the union's function member: every slot of real_fns is a
 * function pointer, converted from the generic one. */
#define BIND(field, name) \
    (real.field = (__typeof__(real.field))bind_one(name))

static void real_bind_all(void)
{
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
    BIND(epoll_pwait2, "epoll_pwait2");
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
    BIND(close_range, "close_range");
    BIND(closefrom, "closefrom");
    BIND(fdopen, "fdopen");
    BIND(gethostbyname2, "gethostbyname2");
    BIND(gethostbyname2_r, "gethostbyname2_r");
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
