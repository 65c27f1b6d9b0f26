/*
 * system_server - a server that runs helpers while it holds connections.
 *
 *   system_server --port-file F --port P --conns N
 *
 * Listens on 127.0.0.1:P (0: any; written to F), accepts N connections
 * (descriptors above 2, inherited across exec: no SOCK_CLOEXEC), and on
 * each echoes one line (round 1). Then, holding them all, it runs
 * system("true") and a fork + execl("/bin/true") (a hook script, as
 * servers run them), and prints "children K": how many processes are its
 * children once both have ended. It is a child subreaper
 * (PR_SET_CHILD_SUBREAPER), so a process double-forked by one of the
 * helpers, such as an exec relay, would be counted. Then it echoes one
 * more line on each connection (round 2) and prints "served N".
 * No TLS code. Exit: 0 done, 1 an I/O error, 2 usage.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CONNS 64

/* Echoes one line on fd; false on EOF or an error. */
static bool echo_line(int fd)
{
    char line[1024];
    size_t n = 0;
    while (n < sizeof(line)) {
        ssize_t r = read(fd, line + n, 1);
        if (r <= 0)
            return false;
        if (line[n++] == '\n')
            break;
    }
    return write(fd, line, n) == (ssize_t)n;
}

/* Processes whose parent is this one (from /proc). */
static int children(void)
{
    DIR *d = opendir("/proc");
    int count = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *close_paren = strrchr(buf, ')');
        int ppid = 0;
        char state;
        if (close_paren != NULL &&
            sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 &&
            ppid == getpid())
            count++;
    }
    if (d != NULL)
        closedir(d);
    return count;
}

int main(int argc, char **argv)
{
    const char *port_file = NULL;
    int n = 0, port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port-file") == 0)
            port_file = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--conns") == 0)
            n = atoi(argv[i + 1]);
    }
    if (port_file == NULL || n < 1 || n > MAX_CONNS) {
        fprintf(stderr, "usage: system_server --port-file F --port P "
                        "--conns N\n");
        return 2;
    }
    alarm(60);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((unsigned short)port);
    socklen_t len = sizeof(sin);
    if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(l, MAX_CONNS) != 0 ||
        getsockname(l, (struct sockaddr *)&sin, &len) != 0) {
        perror("listen");
        return 1;
    }
    FILE *pf = fopen(port_file, "w");
    if (pf == NULL)
        return 1;
    fprintf(pf, "%d\n", ntohs(sin.sin_port));
    fclose(pf);
    int conns[MAX_CONNS];
    for (int i = 0; i < n; i++) {
        conns[i] = accept(l, NULL, NULL);
        if (conns[i] < 0) {
            perror("accept");
            return 1;
        }
    }
    for (int i = 0; i < n; i++)
        if (!echo_line(conns[i])) {
            fprintf(stderr, "round 1: connection %d failed\n", i);
            return 1;
        }
    printf("system rc %d\n", system("true"));
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int status = -1;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        perror("fork");
    printf("hook status %d\n", status);
    printf("children %d\n", children());
    fflush(stdout);
    for (int i = 0; i < n; i++)
        if (!echo_line(conns[i])) {
            fprintf(stderr, "round 2: connection %d failed\n", i);
            return 1;
        }
    printf("served %d\n", n);
    return 0;
}
