/*
 * startloop - the cost of starting a process: runs PROG COUNT times, one
 * after the other, with posix_spawn and waitpid, and prints the mean wall
 * time per run. Links nothing but libc. Its own environment is not the
 * child's: the child gets exactly the NAME=VALUE pairs given with -e (so
 * startloop itself never runs under the preload it measures).
 *
 *   startloop COUNT [-e NAME=VALUE]... -- PROG [ARG...]
 *
 * Prints "ms_per_run X runs N". Exit 0; 1 when a run fails to start or
 * exits non-zero (after a message); 2 on a usage error.
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_ENV = 64 };

int main(int argc, char **argv)
{
    char *env[MAX_ENV + 1];
    int nenv = 0, i = 2;
    long count = argc > 1 ? atol(argv[1]) : 0;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "-e") != 0 || i + 1 >= argc || nenv == MAX_ENV)
            break;
        env[nenv++] = argv[++i];
    }
    env[nenv] = NULL;
    if (count < 1 || i + 1 >= argc || strcmp(argv[i], "--") != 0) {
        fprintf(stderr,
                "usage: startloop COUNT [-e NAME=VALUE]... -- PROG [ARG...]\n");
        return 2;
    }
    char **prog = &argv[i + 1];
    alarm(600);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long n = 0; n < count; n++) {
        pid_t pid;
        int rc = posix_spawn(&pid, prog[0], NULL, NULL, prog, env);
        if (rc != 0) {
            fprintf(stderr, "startloop: %s: %s\n", prog[0], strerror(rc));
            return 1;
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
            if (errno != EINTR) {
                perror("startloop: waitpid");
                return 1;
            }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "startloop: run %ld of %s: status 0x%x\n", n,
                    prog[0], st);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("ms_per_run %.3f runs %ld\n", ms / (double)count, count);
    return 0;
}
