/*
 * The self-test of `make check-old-headers` (docs/testing.md): with one
 * PROBE_ switch, this compiles against the system headers and must fail
 * to compile through test/oldlibc; otherwise the shadow headers hide
 * nothing and the check of the shim proves nothing. With no switch it
 * must compile through both.
 */
#include <signal.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int probe(void);

int probe(void)
{
    int r = 0;
#ifdef PROBE_close_range
    r += close_range(3, 3, 0);
#endif
#ifdef PROBE_closefrom
    closefrom(3);
#endif
#ifdef PROBE_epoll_pwait2
    r += epoll_pwait2(-1, NULL, 1, NULL, NULL);
#endif
#ifdef PROBE_CLOSE_RANGE_UNSHARE
    r += (int)CLOSE_RANGE_UNSHARE;
#endif
#ifdef PROBE_CLOSE_RANGE_CLOEXEC
    r += (int)CLOSE_RANGE_CLOEXEC;
#endif
    return r;
}
