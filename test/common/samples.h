/*
 * samples.h - timed samples in the test and bench programs: the
 * comparison they sort them with, and how the ping-pong loops
 * (bench_client pingpong under the shim, tlsloop pingpong with TLS
 * written in) report theirs, so that the harness reads both the same
 * way: "rtt_median_us M rtt_p99_us P". Header-only, static inline.
 */
#ifndef SECSHIM_TEST_SAMPLES_H
#define SECSHIM_TEST_SAMPLES_H

#include <stdio.h>
#include <stdlib.h>

/* qsort's comparison of two doubles, ascending. */
static inline int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts rtt[0..count) (microseconds, count >= 1) and prints its median
 * and 99th percentile. */
static inline void print_rtts(double *rtt, long count)
{
    qsort(rtt, (size_t)count, sizeof(double), compare_double);
    printf("rtt_median_us %.1f rtt_p99_us %.1f\n", rtt[count / 2],
           rtt[(count * 99) / 100]);
}

#endif
