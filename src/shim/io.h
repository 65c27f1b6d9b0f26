/*
 * io.h - the data calls as the program sees them (io.c).
 */
#ifndef SECSHIM_SHIM_IO_H
#define SECSHIM_SHIM_IO_H

#include <sys/socket.h>
#include <sys/types.h>

/* read()/write() as the program sees them (managed or not); for the
 * shim's own stdio streams, which must not call the interposed names. */
ssize_t shim_read(int fd, void *buf, size_t len);
ssize_t shim_write(int fd, const void *buf, size_t len);

/* sendto(), sendmsg() and sendmmsg() as the program sees them, Fast Open
 * included (also for the syscall guard's trapped calls, guard.c). */
ssize_t shim_sendto_any(int fd, const void *buf, size_t len, int flags,
                        const struct sockaddr *addr, socklen_t addr_len);
ssize_t shim_sendmsg_any(int fd, const struct msghdr *msg, int flags);
int shim_sendmmsg_any(int fd, struct mmsghdr *vec, unsigned int vlen,
                      int flags);

#endif
