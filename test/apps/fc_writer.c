/*
 * fc_writer - writes a secret to a TCP connection through ONE chosen path,
 * for the fail-closed cases (test/integration/cases_failclosed.py). Plain
 * C, libc and kernel headers only, no TLS code: under the shim, with a
 * connect endpoint for HOST:PORT, the secret must either reach the peer
 * as TLS application data or the call must fail; it must never be on the
 * wire in clear.
 *
 *   fc_writer HOST PORT PATH SECRET
 *
 * PATH is one of: write, dprintf, vdprintf, dprintf_chk, pwritev2,
 * pwritev, syscall, aio_write, io_uring, dup2_exec, scm_rights, fastopen,
 * fastopen_nb, sendmsg_fastopen, sendmmsg_fastopen.
 *
 * Prints "result PATH: sent N" or "result PATH: failed ERRNONAME (text)",
 * then, when sent, waits (bounded) for the peer's echo of the secret and
 * prints "echo ok" or "echo: N bytes". Exit status: 0 sent, 1 failed,
 * 2 usage or setup error, 5 io_uring refused by the kernel (the case
 * reports that as a failure, never as a skip). dup2_exec replaces the
 * process with /bin/echo writing the secret on the socket (its exit
 * status is echo's). Every wait is bounded; alarm(30) ends the rest.
 */
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* glibc's fortified dprintf, as -D_FORTIFY_SOURCE=2 would call it. */
extern int __dprintf_chk(int fd, int flag, const char *fmt, ...);

#define WAIT_MS 5000

static struct addrinfo *resolve(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        fprintf(stderr, "fc_writer: cannot resolve %s\n", host);
        exit(2);
    }
    return res;
}

static int connect_to(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        printf("connect: %s\n", strerror(errno));
        exit(2);
    }
    return fd;
}

static int vdprintf_wrapper(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vdprintf(fd, fmt, ap);
    va_end(ap);
    return r;
}

/* aio_write and a bounded wait for it. */
static ssize_t path_aio(int fd, const char *buf, size_t len)
{
    struct aiocb cb;
    memset(&cb, 0, sizeof(cb));
    cb.aio_fildes = fd;
    cb.aio_buf = (void *)buf;
    cb.aio_nbytes = len;
    if (aio_write(&cb) != 0)
        return -1;
    const struct aiocb *list[1] = {&cb};
    struct timespec t = {1, 0};
    for (int i = 0; i < 10 && aio_error(&cb) == EINPROGRESS; i++)
        (void)aio_suspend(list, 1, &t);
    int e = aio_error(&cb);
    if (e == EINPROGRESS) {
        errno = ETIMEDOUT;
        return -1;
    }
    ssize_t r = aio_return(&cb);
    if (r < 0)
        errno = e;
    return r;
}

/* One IORING_OP_WRITE through the raw syscalls (no liburing). Returns
 * the completion's result, -1 with errno, or -2 when the kernel refuses
 * io_uring itself. */
static ssize_t path_io_uring(int fd, const char *buf, size_t len)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    int ring = (int)syscall(__NR_io_uring_setup, 4, &p);
    if (ring < 0) {
        printf("io_uring refused by the kernel: %s\n", strerror(errno));
        return -2;
    }
    size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP)
        sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
    char *sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
    char *cq = (p.features & IORING_FEAT_SINGLE_MMAP)
                   ? sq
                   : mmap(NULL, cq_len, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
    struct io_uring_sqe *sqes =
        mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe),
             PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring,
             IORING_OFF_SQES);
    if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
        return -1;
    unsigned *sq_tail = (unsigned *)(sq + p.sq_off.tail);
    unsigned mask = *(unsigned *)(sq + p.sq_off.ring_mask);
    unsigned *sq_array = (unsigned *)(sq + p.sq_off.array);
    unsigned tail = *sq_tail;
    unsigned idx = tail & mask;
    struct io_uring_sqe *e = &sqes[idx];
    memset(e, 0, sizeof(*e));
    e->opcode = IORING_OP_WRITE;
    e->fd = fd;
    e->addr = (uint64_t)(uintptr_t)buf;
    e->len = (unsigned)len;
    e->off = (uint64_t)-1; /* the current position, as write() */
    sq_array[idx] = idx;
    __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
    if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS,
                NULL, 0) < 0)
        return -1;
    unsigned *cq_head = (unsigned *)(cq + p.cq_off.head);
    unsigned *cq_tail = (unsigned *)(cq + p.cq_off.tail);
    unsigned cmask = *(unsigned *)(cq + p.cq_off.ring_mask);
    struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    unsigned head = *cq_head;
    if (head == __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE)) {
        errno = EIO;
        return -1;
    }
    int res = cqes[head & cmask].res;
    __atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
    close(ring);
    if (res < 0) {
        errno = -res;
        return -1;
    }
    return res;
}

/*
 * The descriptor goes to a process that never had the connection: the
 * child is forked before the connect, receives the socket over
 * SCM_RIGHTS and writes the secret with write(). Its result comes back
 * as one int over the same unix socket.
 */
static ssize_t path_scm_rights(const struct addrinfo *ai, const char *buf,
                               size_t len)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(sp[0]);
        char byte;
        union {
            char b[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {&byte, 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                           .msg_control = ctl.b,
                           .msg_controllen = sizeof(ctl.b)};
        struct pollfd pfd = {.fd = sp[1], .events = POLLIN};
        if (poll(&pfd, 1, WAIT_MS) != 1 || recvmsg(sp[1], &m, 0) != 1)
            _exit(2);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        if (c == NULL || c->cmsg_type != SCM_RIGHTS)
            _exit(2);
        int fd;
        memcpy(&fd, CMSG_DATA(c), sizeof(fd));
        ssize_t r = write(fd, buf, len);
        int answer[2] = {(int)r, r < 0 ? errno : 0};
        (void)!write(sp[1], answer, sizeof(answer));
        _exit(0);
    }
    close(sp[1]);
    int fd = connect_to(ai);
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct iovec iov = {"F", 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(fd));
    if (sendmsg(sp[0], &m, 0) != 1)
        return -1;
    int answer[2] = {-1, EIO};
    struct pollfd pfd = {.fd = sp[0], .events = POLLIN};
    if (poll(&pfd, 1, WAIT_MS) != 1 ||
        read(sp[0], answer, sizeof(answer)) != sizeof(answer))
        answer[1] = ETIMEDOUT;
    int status;
    (void)waitpid(pid, &status, 0);
    close(fd);
    if (answer[0] < 0)
        errno = answer[1];
    return answer[0];
}

/* MSG_FASTOPEN on a fresh socket; non-blocking: EINPROGRESS expected,
 * then the data goes with a plain send once the socket is writable. */
/* Which call makes the Fast Open connect. */
enum fastopen_call { FO_SENDTO, FO_SENDMSG, FO_SENDMMSG };

static ssize_t path_fastopen(const struct addrinfo *ai, const char *buf,
                             size_t len, bool nonblocking,
                             enum fastopen_call call, int *out_fd)
{
    int fd = socket(ai->ai_family, SOCK_STREAM |
                                       (nonblocking ? SOCK_NONBLOCK : 0), 0);
    *out_fd = fd;
    if (fd < 0)
        return -1;
    struct iovec iov = {(void *)buf, len};
    struct msghdr m = {.msg_name = ai->ai_addr,
                       .msg_namelen = ai->ai_addrlen,
                       .msg_iov = &iov, .msg_iovlen = 1};
    struct mmsghdr mm = {.msg_hdr = m};
    ssize_t r;
    if (call == FO_SENDMMSG) {
        r = sendmmsg(fd, &mm, 1, MSG_FASTOPEN);
        if (r == 1)
            r = mm.msg_len;
    } else if (call == FO_SENDMSG) {
        r = sendmsg(fd, &m, MSG_FASTOPEN);
    } else {
        r = sendto(fd, buf, len, MSG_FASTOPEN, ai->ai_addr, ai->ai_addrlen);
    }
    if (!nonblocking || r >= 0 || errno != EINPROGRESS)
        return r;
    printf("fastopen: -1 EINPROGRESS, nothing sent\n");
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    if (poll(&pfd, 1, WAIT_MS) != 1)
        return -1;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return send(fd, buf, len, 0);
}

/* Waits for the echo of the secret (the peer echoes what it decrypted). */
static void read_echo(int fd, size_t len)
{
    char buf[512];
    size_t got = 0;
    while (got < len && got < sizeof(buf)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, WAIT_MS) != 1)
            break;
        ssize_t n = read(fd, buf + got, sizeof(buf) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == len)
        printf("echo ok\n");
    else
        printf("echo: %zu bytes\n", got);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: fc_writer HOST PORT PATH SECRET\n");
        return 2;
    }
    alarm(30);
    signal(SIGPIPE, SIG_IGN); /* EPIPE is an answer, not a death */
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *path = argv[3], *secret = argv[4];
    size_t len = strlen(secret);
    struct addrinfo *ai = resolve(argv[1], argv[2]);
    int fd = -1;
    ssize_t r;
    if (strcmp(path, "scm_rights") == 0) {
        r = path_scm_rights(ai, secret, len);
    } else if (strcmp(path, "fastopen") == 0 ||
               strcmp(path, "fastopen_nb") == 0 ||
               strcmp(path, "sendmsg_fastopen") == 0 ||
               strcmp(path, "sendmmsg_fastopen") == 0) {
        enum fastopen_call call =
            strcmp(path, "sendmsg_fastopen") == 0    ? FO_SENDMSG
            : strcmp(path, "sendmmsg_fastopen") == 0 ? FO_SENDMMSG
                                                     : FO_SENDTO;
        r = path_fastopen(ai, secret, len, strcmp(path, "fastopen_nb") == 0,
                          call, &fd);
    } else {
        fd = connect_to(ai);
        struct iovec iov[2] = {{(void *)secret, len / 2},
                               {(void *)(secret + len / 2), len - len / 2}};
        if (strcmp(path, "write") == 0) {
            r = write(fd, secret, len);
        } else if (strcmp(path, "dprintf") == 0) {
            r = dprintf(fd, "%s", secret);
        } else if (strcmp(path, "vdprintf") == 0) {
            r = vdprintf_wrapper(fd, "%.*s%s", (int)(len / 2), secret,
                                 secret + len / 2);
        } else if (strcmp(path, "dprintf_chk") == 0) {
            r = __dprintf_chk(fd, 1, "%s", secret);
        } else if (strcmp(path, "pwritev2") == 0) {
            r = pwritev2(fd, iov, 2, -1, 0);
        } else if (strcmp(path, "pwritev") == 0) {
            r = pwritev(fd, iov, 2, 0);
        } else if (strcmp(path, "syscall") == 0) {
            r = syscall(SYS_write, fd, secret, len);
        } else if (strcmp(path, "aio_write") == 0) {
            r = path_aio(fd, secret, len);
        } else if (strcmp(path, "io_uring") == 0) {
            r = path_io_uring(fd, secret, len);
            if (r == -2)
                return 5;
        } else if (strcmp(path, "dup2_exec") == 0) {
            if (dup2(fd, 1) != 1)
                return 2;
            close(fd);
            /* echo -n: exactly the secret, as the other paths send it. */
            execl("/bin/echo", "echo", "-n", secret, (char *)NULL);
            return 2;
        } else {
            fprintf(stderr, "fc_writer: unknown path %s\n", path);
            return 2;
        }
    }
    if (r < 0) {
        printf("result %s: failed %s (%s)\n", path, strerrorname_np(errno),
               strerror(errno));
        return 1;
    }
    printf("result %s: sent %zd\n", path, r);
    if (fd >= 0)
        read_echo(fd, (size_t)r);
    freeaddrinfo(ai);
    return 0;
}
