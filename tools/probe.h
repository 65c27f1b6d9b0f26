/*
 * probe.h - `secshim probe` (tools/probe.c; docs/probe.md).
 */
#ifndef SECSHIM_PROBE_H
#define SECSHIM_PROBE_H

/*
 * Runs `secshim probe ARGS` (argv[0] is "probe"): one connection to
 * HOST:PORT, or with --serve one client answered, exactly as the shim
 * would for the endpoint, with a report on stdout. Returns the exit
 * code: 0 a shimmed connection would succeed (the shim would accept the
 * client), 1 it would not (the reason printed), 2 usage or policy errors.
 */
int cmd_probe(int argc, char **argv);

#endif
