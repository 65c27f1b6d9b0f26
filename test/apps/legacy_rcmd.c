/*
 * legacy_rcmd - the BSD remote-command calls, which glibc connects with
 * its internal connect (no preloaded library sees it).
 *
 *   legacy_rcmd rcmd|rexec HOST PORT SECRET
 *
 * Calls rcmd() (as root, from a reserved port) or rexec() to HOST:PORT
 * with SECRET as the command, and prints "call: -1 ERRNO-TEXT" or
 * "call: FD". Exit 0 either way; 2 on the time bound.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: legacy_rcmd rcmd|rexec HOST PORT SECRET\n");
        return 2;
    }
    alarm(20);
    char *host = argv[2];
    int port = atoi(argv[3]);
    int fd;
    if (strcmp(argv[1], "rcmd") == 0)
        fd = rcmd(&host, htons((unsigned short)port), "root", "root",
                  argv[4], NULL);
    else
        fd = rexec(&host, htons((unsigned short)port), "root", "password",
                   argv[4], NULL);
    if (fd < 0)
        printf("call: -1 %s\n", strerror(errno));
    else
        printf("call: %d\n", fd);
    return 0;
}
