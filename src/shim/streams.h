/*
 * streams.h - stdio streams over managed sockets (streams.c).
 */
#ifndef SECSHIM_SHIM_STREAMS_H
#define SECSHIM_SHIM_STREAMS_H



/*
 * Around dup2/dup3 of a managed socket onto newfd: before, flush a standard
 * output stream that stands for newfd into its old target; after, replace
 * stdin/stdout/stderr (newfd 0, 1, 2) with a stream whose I/O goes through
 * the shim (glibc's stdio cannot be interposed). Keep errno.
 */
void shim_stdio_before_dup(int newfd);
void shim_stdio_after_dup(int newfd);

#endif
