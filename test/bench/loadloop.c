/*
 * loadloop - what the strict syscall guard's later filters cost
 * (docs/benchmarks.md, "The syscall guard's cost"): loads COUNT copies of
 * a library with dlopen (DIR/lib-0.so ... DIR/lib-(COUNT-1).so), timing
 * the loads, then times CALLS 1-byte send()+recv() pairs on an AF_UNIX
 * datagram socketpair. send is a system call the kernel's per-number
 * cache of seccomp answers cannot hold (the guard looks at its flags), so
 * every filter of the process runs for it. Links nothing but libc.
 *
 *   loadloop DIR COUNT CALLS
 *
 * Prints "loaded N us_per_load X ns_per_pair Y". Exit 0, or 1 after a
 * message.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: loadloop DIR COUNT CALLS\n");
        return 1;
    }
    long count = strtol(argv[2], NULL, 10), calls = strtol(argv[3], NULL, 10);
    double start = now_ns();
    long loaded = 0;
    for (; loaded < count; loaded++) {
        char lib[4096];
        snprintf(lib, sizeof(lib), "%s/lib-%ld.so", argv[1], loaded);
        if (dlopen(lib, RTLD_NOW | RTLD_LOCAL) == NULL) {
            fprintf(stderr, "loadloop: %s\n", dlerror());
            return 1;
        }
    }
    double loads_ns = now_ns() - start;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) {
        perror("loadloop: socketpair");
        return 1;
    }
    char byte = 'x', buf[8];
    start = now_ns();
    for (long i = 0; i < calls; i++) {
        if (send(sv[0], &byte, 1, 0) != 1 || recv(sv[1], buf, sizeof(buf), 0) != 1) {
            perror("loadloop: send/recv");
            return 1;
        }
    }
    double pairs_ns = now_ns() - start;
    printf("loaded %ld us_per_load %.1f ns_per_pair %.1f\n", loaded,
           count > 0 ? loads_ns / 1e3 / (double)count : 0.0,
           pairs_ns / (double)calls);
    return 0;
}
