/*
 * logfd.h - the log's own descriptor (logfd.c).
 */
#ifndef SECSHIM_SHIM_LOGFD_H
#define SECSHIM_SHIM_LOGFD_H



/* Moves the log to a descriptor of the shim's own (call first thing in the
 * constructor). */
void shim_log_start(void);

/* The program wants number fd, which is the log's: the log moves to
 * another. Returns 0 (also when fd is not the log's) or -1 with errno. */
int shim_log_relocate(int fd);

#endif
