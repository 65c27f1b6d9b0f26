/*
 * logfd.c - the shim's log descriptor: a copy of the log target (stderr or
 * the log file) in the private range, owned by the shim (docs/design.md,
 * "The shim never writes through the program").
 *
 * A program may dup2 a TLS socket onto descriptor 2, close every number
 * above 2 and reuse it (daemons do), or hand the numbers to children. The
 * log therefore never writes to a number the program can name: it keeps
 * its own copy, protected by the interposed close/close_range/closefrom/
 * dup2, and checks before each line that the number is still that copy
 * (device and inode), so a line can never land in a descriptor that was
 * taken from the shim by a raw syscall and reused.
 */
#include "fdtab.h"
#include "logfd.h"
#include "real.h"
#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "secshim/log.h"

/* What the kept descriptor is. Guarded by the engine's log lock (every
 * ss_log_io call is made under it). */
static struct shim_owned log_own;
static int log_kept = -1;

/* Forgets the kept descriptor, closing it only while it is still ours. */
static void log_drop(int fd)
{
    if (fd < 0 || fd != log_kept)
        return;
    fdtab_disown(fd);
    if (shim_owned_still(&log_own, fd))
        REAL(close)(fd);
    log_kept = -1;
}

static int log_take(int fd)
{
    if (fd < 0)
        return -1;
    int copy = shim_own_private(fd, &log_own, NULL, shim_log_relocate, false);
    if (copy < 0)
        return fd == log_kept ? fd : -1; /* keep what we had, or nothing */
    int old = log_kept;
    log_kept = copy;
    if (old >= 0 && old == fd) {
        fdtab_disown(old);
        REAL(close)(old);
    } else if (fd > STDERR_FILENO) {
        REAL(close)(fd); /* a log file just opened: the copy is kept */
    }
    return copy;
}

static ssize_t log_write(int fd, const void *buf, size_t len)
{
    if (fd != log_kept || !shim_owned_still(&log_own, fd)) {
        errno = EBADF;
        return -1;
    }
    return REAL(write)(fd, buf, len);
}

static const struct ss_log_io shim_log_io = {log_take, log_drop, log_write};

void shim_log_start(void)
{
    ss_log_set_io(&shim_log_io);
}

int shim_log_relocate(int fd)
{
    if (fd != ss_log_fd())
        return 0;
    if (ss_log_move() != SS_OK) {
        errno = EMFILE;
        return -1;
    }
    return 0;
}
