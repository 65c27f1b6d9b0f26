/*
 * ev_daemon - a daemon's start: close every descriptor above 2, then open
 * files of its own on the freed numbers, and keep using them across a
 * policy reload (sshd does all of this).
 *
 *   ev_daemon HOST PORT DATAFILE
 *
 * closefrom(3) and a close() loop over 3..255, then DATAFILE is opened
 * (it gets number 3). A connection to HOST PORT echoes a line and joins an
 * epoll set; then the program dup2()s DATAFILE onto every other number
 * open in the process (it did not open them: they are whatever a
 * preloaded library holds) and closes them again, as a daemon moving
 * descriptors to fixed numbers would, and the same connection echoes
 * another line, its readiness reported by the epoll set; once the set and
 * the connection are closed, every number it took must still be its own.
 * "phase1" on stdout;
 * then it waits for a line on stdin (the test changes the policy file
 * meanwhile); a new connection echoes; finally "daemon-data" is written to
 * DATAFILE through its descriptor. Prints "ok" when every step worked;
 * exit 1 otherwise, 2 on the time bound.
 */
#include "ev_common.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/epoll.h>

/* Sends word on fd and expects it back. */
static int echo_rest(int fd, const char *word);

static int echo(int fd, const char *word)
{
    if (ev_write_all(fd, word, strlen(word)) != 0)
        return -1;
    return echo_rest(fd, word);
}

/* Expects word back on fd (already sent). */
static int echo_rest(int fd, const char *word)
{
    char buf[32];
    size_t len = strlen(word), got = 0;
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

/* The numbers take_other_numbers took. */
static int taken[64];

/* dup2()s data onto every open number above 2 but data, keep and keep2
 * (they stay open, the program's now). Returns how many it took. */
static int take_other_numbers(int data, int keep, int keep2)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && n < 64) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != data && fd != keep && fd != keep2 &&
            fd != dirfd(d))
            taken[n++] = fd;
    }
    if (d != NULL)
        closedir(d);
    for (int i = 0; i < n; i++)
        if (dup2(data, taken[i]) != taken[i])
            return -1;
    return n;
}

/* Whether each taken number is still open on data's file (no one closed
 * or replaced them), then closes them. */
static int taken_intact(int data, int n)
{
    struct stat want, st;
    int ok = fstat(data, &want) == 0;
    for (int i = 0; i < n; i++) {
        ok = ok && fstat(taken[i], &st) == 0 && st.st_ino == want.st_ino;
        close(taken[i]);
    }
    return ok;
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
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event reg = {.events = EPOLLIN, .data.u64 = 7};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, first, &reg) != 0) {
        perror("ev_daemon: epoll");
        return 1;
    }
    int ntaken = take_other_numbers(data, first, ep);
    int rounds = 0;
    struct epoll_event got;
    /* Three rounds: a level-triggered registration is re-armed in the
     * kernel after each report. */
    while (ntaken >= 0 && rounds < 3 && ev_write_all(first, "more\n", 5) == 0 &&
           epoll_wait(ep, &got, 1, 5000) == 1 && got.data.u64 == 7 &&
           echo_rest(first, "more\n") == 0)
        rounds++;
    if (rounds < 3) {
        fprintf(stderr, "ev_daemon: the connection did not survive dup2 "
                "onto %d other numbers (round %d)\n", ntaken, rounds + 1);
        return 1;
    }
    close(ep);
    close(first);
    if (!taken_intact(data, ntaken)) {
        fprintf(stderr, "ev_daemon: a number the program took was closed "
                "or replaced behind its back\n");
        return 1;
    }
    printf("took %d numbers\n", ntaken);
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
