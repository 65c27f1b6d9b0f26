/*
 * raw_connect.h - connect(2) with the caller's own syscall instruction:
 * no libc function at all between the code and the kernel. For raw_calls
 * and the library it loads later (plugins/raw_connect.c): the syscall
 * guard's cases (test/integration/cases_guard.py).
 */
#ifndef SECSHIM_TEST_RAW_CONNECT_H
#define SECSHIM_TEST_RAW_CONNECT_H

#include <errno.h>
#include <sys/socket.h>
#include <sys/syscall.h>

/* 0, or -1 and errno, as connect(2). */
static inline int raw_connect(int fd, const struct sockaddr *addr,
                              socklen_t len)
{
    long rc;
    __asm__ volatile("syscall"
                     : "=a"(rc)
                     : "a"((long)SYS_connect), "D"((long)fd), "S"(addr),
                       "d"((long)len)
                     : "rcx", "r11", "memory");
    if (rc < 0) {
        errno = (int)-rc;
        return -1;
    }
    return 0;
}

#endif
