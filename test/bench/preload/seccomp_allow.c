/*
 * seccomp_allow.so - the floor under the syscall guard's cost: preloaded
 * without the shim, it installs a seccomp filter of one instruction that
 * allows every system call (the "seccomp" column of the untouched-
 * descriptor scenario, test/bench/benchlib/scenarios.py). What a process
 * pays with it is what the kernel charges for any filter at all, before
 * the guard's own program. libc only.
 */
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((constructor)) static void allow_everything(void)
{
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    /* The same flags as the guard's (src/shim/guard.c). */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                &prog) != 0)
        perror("seccomp_allow: seccomp");
}
