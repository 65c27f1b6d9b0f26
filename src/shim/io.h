/*
 * io.h - the data calls as the program sees them (io.c).
 */
#ifndef SECSHIM_SHIM_IO_H
#define SECSHIM_SHIM_IO_H

#include <sys/types.h>

/* read()/write() as the program sees them (managed or not); for the
 * shim's own stdio streams, which must not call the interposed names. */
ssize_t shim_read(int fd, void *buf, size_t len);
ssize_t shim_write(int fd, const void *buf, size_t len);

#endif
