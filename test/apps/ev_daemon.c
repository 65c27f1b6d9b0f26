/*
 * ev_daemon - a daemon's start: close every descriptor above 2, then open
 * files of its own on the freed numbers, and keep using them across a
 * policy reload (sshd does all of this).
 *
 *   ev_daemon HOST PORT DATAFILE
 *
 * closefrom(3) and a close() loop over 3..255, then DATAFILE is opened
 * (it gets number 3). A connection to HOST PORT echoes a line; then the
 * program dup2()s DATAFILE onto every other number open in the process
 * (it did not open them: they are whatever a preloaded library holds) and
 * closes them again, as a daemon moving descriptors to fixed numbers
 * would, and the same connection echoes another line. "phase1" on stdout;
 * then it waits for a line on stdin (the test changes the policy file
 * meanwhile); a new connection echoes; finally "daemon-data" is written to
 * DATAFILE through its descriptor. Prints "ok" when every step worked;
 * exit 1 otherwise, 2 on the time bound.
 */
#include "ev_common.h"

#include <dirent.h>

/* Sends word on fd and expects it back. */
static int echo(int fd, const char *word)
{
    char buf[32];
    size_t len = strlen(word), got = 0;
    if (ev_write_all(fd, word, len) != 0)
        return -1;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return memcmp(buf, word, len) == 0 ? 0 : -1;
}

/* One connection: send word, expect it back. */
static int exchange(const struct ev_client_opts *o, const char *word)
{
    int fd = ev_connect(o);
    int rc = echo(fd, word);
    close(fd);
    return rc;
}

/* dup2()s data onto every open number above 2 but data and keep, then
 * closes those numbers. Returns how many it took. */
static int take_other_numbers(int data, int keep)
{
    DIR *d = opendir("/proc/self/fd");
    int taken[64], n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && n < 64) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != data && fd != keep && fd != dirfd(d))
            taken[n++] = fd;
    }
    if (d != NULL)
        closedir(d);
    for (int i = 0; i < n; i++)
        if (dup2(data, taken[i]) != taken[i])
            return -1;
    for (int i = 0; i < n; i++)
        close(taken[i]);
    return n;
}

int main(int argc, char **argv)
{
    ev_prog = "ev_daemon";
    if (argc != 4) {
        fprintf(stderr, "usage: ev_daemon HOST PORT DATAFILE\n");
        return 2;
    }
    struct ev_client_opts o;
    ev_client_opts_init(&o);
    o.host = argv[1];
    o.port = argv[2];
    o.timeout = 20;
    ev_client_start(&o, "");

    closefrom(3);
    for (int fd = 3; fd < 256; fd++)
        close(fd);
    int data = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (data != 3) {
        fprintf(stderr, "ev_daemon: data file got descriptor %d\n", data);
        return 1;
    }
    int first = ev_connect(&o);
    if (echo(first, "one\n") != 0) {
        fprintf(stderr, "ev_daemon: first exchange failed\n");
        return 1;
    }
    int taken = take_other_numbers(data, first);
    if (taken < 0 || echo(first, "more\n") != 0) {
        fprintf(stderr, "ev_daemon: the connection did not survive dup2 "
                "onto %d other numbers\n", taken);
        return 1;
    }
    printf("took %d numbers\n", taken);
    close(first);
    printf("phase1\n");
    fflush(stdout);
    char line[16];
    if (fgets(line, sizeof(line), stdin) == NULL)
        return 1;
    if (exchange(&o, "two\n") != 0) {
        fprintf(stderr, "ev_daemon: second exchange failed\n");
        return 1;
    }
    static const char mine[] = "daemon-data\n";
    if (write(data, mine, sizeof(mine) - 1) != (ssize_t)sizeof(mine) - 1 ||
        close(data) != 0) {
        perror("ev_daemon: data file");
        return 1;
    }
    printf("ok\n");
    return 0;
}
