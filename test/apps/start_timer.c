/*
 * start_timer - what a process start costs under each of a few
 * environments (issue 9, "Process start"). A measurement, not a test:
 * nothing here asserts a time.
 *
 *   start_timer RUNS BATCHES PROGRAM LABEL=PRELOAD,CONFIG ...
 *
 * Each batch starts PROGRAM (no arguments) RUNS times under each
 * configuration in turn, so that drift in the machine's load falls on
 * every configuration alike; LD_PRELOAD is PRELOAD and SECSHIM_CONFIG is
 * CONFIG, "-" meaning unset (the rest of the environment is the
 * caller's). A run is posix_spawn + waitpid; one that does not exit 0
 * stops everything. Prints, per configuration, the median over the
 * batches of the wall time per run and of the CPU time per run (user +
 * system of the children), in milliseconds, and the wall time of the
 * fastest and slowest batch. Example (docs/design.md, "When TLS contexts
 * are built"):
 *
 *   build/apps/start_timer 200 9 /bin/true none=-,- \
 *       listen=$PWD/build/libsecshim.so,/tmp/listen.cfg
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "../common/samples.h"

#define MAX_CONFIGS 16
#define MAX_BATCHES 64

extern char **environ;

struct config {
    const char *label;
    char **env;
    double wall[MAX_BATCHES]; /* ms per run, per batch */
    double cpu[MAX_BATCHES];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double children_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* "NAME=VALUE" in a new string, or NULL for "-". */
static char *setting(const char *name, const char *value)
{
    if (strcmp(value, "-") == 0)
        return NULL;
    size_t len = strlen(name) + strlen(value) + 2;
    char *s = malloc(len);
    if (s == NULL) {
        perror("start_timer");
        exit(2);
    }
    snprintf(s, len, "%s=%s", name, value);
    return s;
}

/* The caller's environment without LD_PRELOAD and SECSHIM_CONFIG, plus
 * the configuration's. */
static char **environment_for(const char *preload, const char *config)
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = calloc(n + 3, sizeof(*env));
    if (env == NULL) {
        perror("start_timer");
        exit(2);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 &&
            strncmp(environ[i], "SECSHIM_CONFIG=", 15) != 0)
            env[k++] = environ[i];
    char *p = setting("LD_PRELOAD", preload);
    char *c = setting("SECSHIM_CONFIG", config);
    if (p != NULL)
        env[k++] = p;
    if (c != NULL)
        env[k++] = c;
    return env;
}

/* LABEL=PRELOAD,CONFIG into cfg; exits on a malformed one. */
static void parse_config(char *arg, struct config *cfg)
{
    char *eq = strchr(arg, '=');
    char *comma = eq != NULL ? strchr(eq, ',') : NULL;
    if (comma == NULL) {
        fprintf(stderr, "start_timer: %s: want LABEL=PRELOAD,CONFIG\n", arg);
        exit(2);
    }
    *eq = '\0';
    *comma = '\0';
    cfg->label = arg;
    cfg->env = environment_for(eq + 1, comma + 1);
}

/* RUNS starts of program under cfg; fills batch b. */
static void run_batch(const char *program, struct config *cfg, int runs,
                      int b)
{
    char *argv[] = {(char *)program, NULL};
    double t0 = now_s(), c0 = children_cpu_s();
    for (int i = 0; i < runs; i++) {
        pid_t pid;
        int status;
        if (posix_spawn(&pid, program, NULL, NULL, argv, cfg->env) != 0 ||
            waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "start_timer: %s: %s did not exit 0\n",
                    cfg->label, program);
            exit(1);
        }
    }
    cfg->wall[b] = (now_s() - t0) / runs * 1000;
    cfg->cpu[b] = (children_cpu_s() - c0) / runs * 1000;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: start_timer RUNS BATCHES PROGRAM "
                        "LABEL=PRELOAD,CONFIG ...\n");
        return 2;
    }
    int runs = atoi(argv[1]), batches = atoi(argv[2]);
    int n = argc - 4;
    if (runs < 1 || batches < 1 || batches > MAX_BATCHES || n > MAX_CONFIGS) {
        fprintf(stderr, "start_timer: RUNS >= 1, 1 <= BATCHES <= %d, at "
                        "most %d configurations\n", MAX_BATCHES, MAX_CONFIGS);
        return 2;
    }
    static struct config cfgs[MAX_CONFIGS];
    for (int c = 0; c < n; c++)
        parse_config(argv[4 + c], &cfgs[c]);
    for (int b = 0; b < batches; b++)
        for (int c = 0; c < n; c++)
            run_batch(argv[3], &cfgs[c], runs, b);
    printf("%-26s %9s %9s   (%s: %d batches x %d runs, interleaved)\n",
           "configuration", "wall ms", "cpu ms", argv[3], batches, runs);
    for (int c = 0; c < n; c++) {
        struct config *cfg = &cfgs[c];
        qsort(cfg->wall, (size_t)batches, sizeof(double), compare_double);
        qsort(cfg->cpu, (size_t)batches, sizeof(double), compare_double);
        printf("%-26s %9.3f %9.3f   (batches %.3f .. %.3f)\n", cfg->label,
               cfg->wall[batches / 2], cfg->cpu[batches / 2], cfg->wall[0],
               cfg->wall[batches - 1]);
    }
    return 0;
}
