/*
 * TCP_NODELAY while the shim's own records lead the stream: see nagle.h
 * and docs/design.md, "No record waits behind Nagle's algorithm".
 */
#include "nagle.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "real.h"
#include "sock.h"

static int set_nodelay(int fd, int on)
{
    return REAL(setsockopt)(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

void shim_nagle_open(struct shim_sock *s)
{
    int saved = errno;
    int on = 0;
    socklen_t len = sizeof(on);
    if (REAL(getsockopt)(s->priv_fd, IPPROTO_TCP, TCP_NODELAY, &on,
                         &len) == 0 &&
        on == 0 && set_nodelay(s->priv_fd, 1) == 0)
        s->nagle_window = true;
    errno = saved;
}

void shim_nagle_after_write(struct shim_sock *s)
{
    if (!s->nagle_window ||
        ss_conn_state(s->conn) == SS_CONN_HANDSHAKING ||
        ss_conn_unsent(s->conn) > 0)
        return;
    int saved = errno;
    /* Only a program that turned it on while the window was open wants it
     * kept; otherwise its value is off, as before the swap. */
    if (!s->nodelay_program)
        (void)set_nodelay(s->priv_fd, 0);
    s->nagle_window = false;
    errno = saved;
}

static bool is_nodelay(int level, int name)
{
    return level == IPPROTO_TCP && name == TCP_NODELAY;
}

bool shim_nagle_getsockopt(struct shim_sock *s, int level, int name,
                           void *val, socklen_t *len, int *rc)
{
    if (!is_nodelay(level, name))
        return false;
    shim_sock_lock(s);
    /* The real call gives the kernel's errors and length rules; only the
     * value is the program's while the window is open. */
    *rc = REAL(getsockopt)(s->priv_fd, level, name, val, len);
    if (*rc == 0 && s->nagle_window) {
        int program = s->nodelay_program;
        memcpy(val, &program, *len < sizeof(program) ? *len : sizeof(program));
    }
    shim_sock_unlock(s);
    return true;
}

bool shim_nagle_setsockopt(struct shim_sock *s, int level, int name,
                           const void *val, socklen_t len, int *rc)
{
    if (!is_nodelay(level, name))
        return false;
    shim_sock_lock(s);
    *rc = REAL(setsockopt)(s->priv_fd, level, name, val, len);
    if (*rc == 0 && s->nagle_window) {
        int on;
        memcpy(&on, val, sizeof(on)); /* the kernel read an int: len fits */
        s->nodelay_program = on != 0;
        int saved = errno;
        if (on == 0)
            (void)set_nodelay(s->priv_fd, 1); /* the window stays open */
        errno = saved;
    }
    shim_sock_unlock(s);
    return true;
}
