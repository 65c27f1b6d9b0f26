/*
 * status.h - `secshim status` (status.c).
 */
#ifndef SECSHIM_TOOLS_STATUS_H
#define SECSHIM_TOOLS_STATUS_H

/* Lists the processes running under the shim (argv[0] is "status").
 * Returns the command's exit code: 0 listed, 1 a status file or
 * directory could not be read, 2 usage. */
int cmd_status(int argc, char **argv);

#endif
