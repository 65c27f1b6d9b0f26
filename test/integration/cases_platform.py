# Cases for older glibc (docs/shim.md, "Required and optional symbols"): a
# libc without the optional symbols (epoll_pwait2, close_range) is played
# by SECSHIM_TEST_HIDE_SYMBOLS, which makes the shim's own lookup of those
# names fail. Run by test/integration/run, in its namespace: Case, check,
# echo_server, client_ep, server_ep ...

HIDE = "SECSHIM_TEST_HIDE_SYMBOLS"

# What platform_calls prints on this machine's glibc, where every call
# exists: the plain run (no shim) must say exactly this, and so must the
# shim without the switch.
LOCAL_REAL = ["main", "epoll_pwait2 1", "epoll_wait 1",
              "close_range 0 closed", "closefrom closed"]
# The same calls where libc lacks epoll_pwait2 and close_range: those two
# answer ENOSYS and change nothing; the rest work, and closefrom (which the
# shim implements itself) still closes.
LOCAL_HIDDEN = ["main", "epoll_pwait2 -1 ENOSYS", "epoll_wait 1",
                "close_range -1 ENOSYS open", "closefrom closed"]


def platform_env(c, policy, hide=None):
    env = c.env(policy)
    env.pop(HIDE, None)
    if hide is not None:
        env[HIDE] = hide
    return env


def lines(proc):
    return proc.out().splitlines()


@case
def optional_symbol_missing_answers_enosys(c):
    """A libc without epoll_pwait2 and close_range (hidden from the shim's
    lookup): the program starts, those two calls answer -1 ENOSYS and leave
    every descriptor as it was, epoll_wait and closefrom still work. Without
    the switch the shim gives the real results, the same as plain. (Before,
    every symbol was bound at start and a missing one ended the process.)"""
    app = c.suite.app("platform_calls")
    policy = c.policy(client_ep(c.suite, free_port()))
    plain = c.run("plain", [app, "local"], c.env(preload=False))
    check(plain.p.returncode == 0 and lines(plain) == LOCAL_REAL,
          "the plain run printed %r" % lines(plain))
    real = c.run("shim", [app, "local"], platform_env(c, policy))
    check(real.p.returncode == 0 and lines(real) == LOCAL_REAL,
          "under the shim, with every symbol there: %r" % lines(real))
    hidden = c.run("hidden", [app, "local"],
                   platform_env(c, policy, "epoll_pwait2,close_range"))
    check(hidden.p.returncode == 0,
          "the process did not run to its end (exit %s)"
          % hidden.p.returncode)
    check(lines(hidden) == LOCAL_HIDDEN,
          "with the symbols missing: %r, expected %r"
          % (lines(hidden), LOCAL_HIDDEN))


@case
def optional_symbol_missing_keeps_tls_connection(c):
    """On a TLS connection, with epoll_pwait2 and close_range missing from
    libc: epoll_pwait2 on a set holding the managed socket answers ENOSYS
    as on any other set, close_range of the socket answers ENOSYS without
    detaching it (before, the shim dropped its entry and then the call
    failed, leaving the program a dead stand-in), and the echo arrives
    through TLS. With the symbols there, both are real."""
    s = c.suite
    app = s.app("platform_calls")
    port = free_port()
    echo_server(c, c.policy(server_ep(s, port)), port=port)
    policy = c.policy(client_ep(s, port), name="client.cfg")
    hidden = c.run("hidden", [app, "connect", "localhost", str(port)],
                   platform_env(c, policy, "epoll_pwait2,close_range"))
    want = ["main", "epoll_pwait2 -1 ENOSYS", "close_range -1 ENOSYS open",
            "epoll_wait 1", "echo ping"]
    check(hidden.p.returncode == 0 and lines(hidden) == want,
          "with the symbols missing: %r (exit %s), expected %r"
          % (lines(hidden), hidden.p.returncode, want))
    check(established(hidden, "cli"), "the client's shim logged no TLS "
          "connection")
    real = c.run("real", [app, "connect", "localhost", str(port)],
                 platform_env(c, policy))
    want = ["main", "epoll_pwait2 1", "close_range 0 closed"]
    check(real.p.returncode == 0 and lines(real) == want,
          "with every symbol there: %r (exit %s), expected %r"
          % (lines(real), real.p.returncode, want))


@case
def required_symbol_missing_stops_before_main(c):
    """A libc without a required symbol (connect hidden): the process ends
    before main with exit 127 and one line naming the symbol, never runs
    with a shim that cannot work."""
    app = c.suite.app("platform_calls")
    policy = c.policy(client_ep(c.suite, free_port()))
    proc = c.run("hidden", [app, "local"], platform_env(c, policy, "connect"))
    check(proc.p.returncode == 127, "exit %s, expected 127"
          % proc.p.returncode)
    check("main" not in lines(proc), "main ran: %r" % lines(proc))
    check("secshim: cannot bind the real connect(): the shim cannot run"
          in proc.err(), "no message naming the symbol on stderr")
