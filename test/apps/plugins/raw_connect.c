/*
 * raw_connect.so - a library that raw_calls loads with dlopen after start
 * (raw_calls connect --via plugin) and whose one function connects with
 * its own syscall instruction: code the syscall guard did not see when it
 * started (src/shim/guard.c, "code mapped later"). libc only.
 */
#include "../raw_connect.h"

__attribute__((visibility("default"))) int
raw_plugin_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return raw_connect(fd, addr, len);
}
