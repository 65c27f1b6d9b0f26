"""The modules of test/bench/run: procs (processes, /proc), setups (plain,
secshim, stunnel, socat and their certificates), scenarios (one round of
each measurement), report (tables, bench.json, bench.svg)."""
