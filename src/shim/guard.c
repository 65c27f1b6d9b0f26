/*
 * guard.c - the syscall guard: a connect, accept or Fast Open send the
 * program makes with its own system call instruction (syscall(3), inline
 * assembly) never reaches an interposed name, so without the guard a raw
 * connect to a TLS endpoint would carry plain TCP. A seccomp filter traps
 * those calls when they come from the code this image had loaded when
 * the guard started, except from libc's (where the shim's real calls and
 * glibc's internal ones, syslog's and nscd's, are made), whose syscall(3)
 * is trapped all the same; the SIGSYS handler then makes the call through
 * the shim, as if the program had called libc. With
 * SECSHIM_SYSCALL_GUARD=strict, code the loader maps later (a library
 * dlopen'ed by the program or by libc) is covered as it is mapped: the
 * filter traps the loader's executable mappings, and the handler makes
 * each one and adds a filter for its range before the loader can run it.
 * Each such filter costs every uncached system call (sends, mmap) its
 * run, which is why that is not the default. docs/design.md, "The
 * syscall guard", has the decision and its costs.
 */
#include "guard.h"

#include "io.h"
#include "real.h"
#include "sockets.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secshim/log.h"

/* Set by the first guard_start: the guard is installed once a process
 * (a filter cannot be taken back, and children inherit it). */
static atomic_bool guard_installed;
/* Set once the filter is in place: from then on SIGSYS is the guard's. */
static atomic_bool guard_active;

#if defined(__x86_64__)

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* The kernel's si_code of a SIGSYS raised by a seccomp filter (glibc 2.36
 * does not name it). */
#define GUARD_SI_SECCOMP 1
/* SECCOMP_RET_DATA of the guard's traps: the handler's si_errno, which
 * tells its traps from another filter's. */
#define GUARD_TRAP_DATA 0x5353u
/* What the handler puts in r9, an argument register connect, accept,
 * accept4, sendmsg and sendmmsg do not use, when it must make one of them
 * itself (a trap inside its own call, which only happens when libc was
 * not found: guard_depth below). The filter lets it pass. */
#define GUARD_MAGIC 0x5ec5b1a5c0ffee11ull
/* Executable ranges the filter holds: 6 instructions each, under the
 * kernel's 4,096 per filter. The closest are merged beyond that. */
#define GUARD_MAX_RANGES 500
/* Code mapped later that the guard covers, each with a filter of its own
 * (44 instructions). The kernel's limit comes first: 32,768 instructions
 * in all its filters, counted after its own translation (about 66 for
 * one of these): about 490 later filters here. */
#define GUARD_MAX_LATER 1024
/* SECCOMP_RET_DATA of the trap of the loader's executable mappings. */
#define GUARD_MAP_DATA 0x5354u
#define X32_BIT 0x40000000u

struct range {
    uint64_t lo, hi; /* [lo, hi) */
};

struct ranges {
    struct range r[GUARD_MAX_RANGES * 2];
    size_t n;
};

/* The SIGSYS action the program has set (or had at start): the guard's
 * handler passes it every SIGSYS that is not the guard's trap. */
static struct sigaction previous_sigsys;
/* How deep this thread is in the handler. A trap inside the handler's
 * own call means the shim's real call was trapped, which can only be
 * when libc was not found and so not left out of the ranges
 * (libc_untrapped false): only then is a nested trap made directly.
 * Otherwise it is a raw call of the program's (a signal handler's, say),
 * made through the shim. */
static __thread int guard_depth;
static bool libc_untrapped;

/*
 * The next sigaction, sigprocmask and pthread_sigmask (libc's, or a
 * sanitizer's), each looked up at its first call, apart from the real
 * table: AddressSanitizer calls sigaction while it starts, before libc
 * has set up the environment that the table's binding reads
 * (SECSHIM_TEST_HIDE_SYMBOLS, real.c). Two threads may both look one up;
 * they find the same answer.
 */
/* ThreadSanitizer's runtime calls sigaction while it starts, before any
 * instrumented code may run (make tsan): the path of the interposed
 * signal calls is left uninstrumented. */
#define SS_UNINSTRUMENTED __attribute__((no_sanitize("thread")))

union signal_fn {
    void *p;
    int (*action)(int, const struct sigaction *, struct sigaction *);
    int (*mask)(int, const sigset_t *, sigset_t *);
    sighandler_t (*handler)(int, sighandler_t);
};

SS_UNINSTRUMENTED static union signal_fn
next_signal_fn(_Atomic(void *) *slot, const char *name)
{
    union signal_fn f = {atomic_load_explicit(slot, memory_order_acquire)};
    if (f.p == NULL) {
        f.p = dlsym(RTLD_NEXT, name);
        atomic_store_explicit(slot, f.p, memory_order_release);
    }
    return f;
}

static _Atomic(void *) next_sigaction, next_sigprocmask,
    next_pthread_sigmask, next_signal, next_bsd_signal, next_sysv_signal;

/* SIGSYS out of this thread's mask: a trap while it is blocked ends the
 * process. */
static void unblock_sigsys(void)
{
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    (void)next_signal_fn(&next_pthread_sigmask, "pthread_sigmask")
        .mask(SIG_UNBLOCK, &sys, NULL);
}

/* --- the image's executable ranges -------------------------------------- */

static void normalize_to(struct ranges *rs, size_t limit);

/* A range to trap. When the table is full the closest are merged first:
 * a range is never dropped (that would leave its code unguarded). */
static void add_range(struct ranges *rs, uint64_t lo, uint64_t hi)
{
    if (lo >= hi)
        return;
    if (rs->n == sizeof(rs->r) / sizeof(rs->r[0]))
        normalize_to(rs, GUARD_MAX_RANGES);
    rs->r[rs->n++] = (struct range){lo, hi};
}

/* What the walk over the loaded objects needs and finds. */
struct object_walk {
    struct ranges *rs;
    uintptr_t libc_anchor;         /* a function only libc defines */
    uintptr_t libc_base;           /* libc, once found: its load address */
    const ElfW(Dyn) *libc_dynamic; /* and its dynamic section */
    uintptr_t loader_base;         /* the loader's (AT_BASE), or 0 */
    struct range loader[4];        /* and its executable segments */
    size_t loader_n;
    bool valgrind;
};

static bool holds(const struct dl_phdr_info *info, const ElfW(Phdr) *ph,
                  uintptr_t addr)
{
    uintptr_t start = info->dlpi_addr + ph->p_vaddr;
    return ph->p_type == PT_LOAD && addr >= start &&
           addr - start < ph->p_memsz;
}

/* One loaded object (dl_iterate_phdr): its executable segments are
 * added, except libc's, which is noted instead. */
static int add_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct object_walk *w = arg;
    if (info->dlpi_name != NULL && strstr(info->dlpi_name, "vgpreload"))
        w->valgrind = true;
    const ElfW(Dyn) *dynamic = NULL;
    bool is_libc = false;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_DYNAMIC)
            dynamic = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
        is_libc = is_libc || holds(info, ph, w->libc_anchor);
    }
    if (is_libc) {
        w->libc_base = info->dlpi_addr;
        w->libc_dynamic = dynamic;
        return 0;
    }
    bool is_loader = w->loader_base != 0 && info->dlpi_addr == w->loader_base;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_X) == 0)
            continue;
        struct range code = {info->dlpi_addr + ph->p_vaddr,
                             info->dlpi_addr + ph->p_vaddr + ph->p_memsz};
        add_range(w->rs, code.lo, code.hi);
        if (is_loader && w->loader_n < sizeof(w->loader) / sizeof(w->loader[0]))
            w->loader[w->loader_n++] = code;
    }
    return 0;
}

/* A dynamic-section address: the loader has made most of them absolute,
 * but not every loader does. */
static uintptr_t dyn_address(uintptr_t base, ElfW(Addr) ptr)
{
    return ptr < base ? base + ptr : ptr;
}

static uint32_t gnu_hash(const char *name)
{
    uint32_t h = 5381;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = h * 33 + *c;
    return h;
}

/* name in the dynamic symbol table of the object at base, through its
 * GNU hash table (what the loader itself uses, without dladdr's scan of
 * every symbol), or NULL. */
static const ElfW(Sym) *dynamic_symbol(uintptr_t base,
                                       const ElfW(Dyn) *dynamic,
                                       const char *name)
{
    const uint32_t *table = NULL;
    const ElfW(Sym) *symbols = NULL;
    const char *strings = NULL;
    for (const ElfW(Dyn) *d = dynamic; d != NULL && d->d_tag != DT_NULL;
         d++) {
        if (d->d_tag == DT_GNU_HASH)
            table = (const uint32_t *)dyn_address(base, d->d_un.d_ptr);
        else if (d->d_tag == DT_SYMTAB)
            symbols = (const ElfW(Sym) *)dyn_address(base, d->d_un.d_ptr);
        else if (d->d_tag == DT_STRTAB)
            strings = (const char *)dyn_address(base, d->d_un.d_ptr);
    }
    if (table == NULL || symbols == NULL || strings == NULL || table[0] == 0)
        return NULL;
    uint32_t nbuckets = table[0], first = table[1], bloom_words = table[2];
    const uint32_t *buckets =
        table + 4 + bloom_words * (sizeof(ElfW(Addr)) / sizeof(uint32_t));
    const uint32_t *chain = buckets + nbuckets;
    uint32_t h = gnu_hash(name);
    for (uint32_t i = buckets[h % nbuckets]; i >= first; i++) {
        uint32_t link = chain[i - first];
        if ((link | 1) == (h | 1) &&
            strcmp(strings + symbols[i].st_name, name) == 0)
            return &symbols[i];
        if (link & 1)
            break;
    }
    return NULL;
}

/*
 * The ranges the filter traps: the executable segments of every object
 * loaded now (the program, its libraries, the loader, the vDSO), except
 * libc's, where the shim's real calls and glibc's internal ones (syslog's
 * and nscd's connects, the resolver's) are made. libc's syscall(3) is the
 * one way into it that takes any call number: it is trapped too. Reads
 * the loader's list and libc's symbol table in memory, without a system
 * call. Returns false when libc or its syscall(3) is not found: every
 * object is trapped then, libc too, and the shim's own calls are made
 * directly (on_sigsys).
 */
static bool guarded_ranges(struct object_walk *w)
{
    union {
        void *p;
        uintptr_t addr;
    } anchor = {dlsym(RTLD_DEFAULT, "gnu_get_libc_version")};
    w->libc_anchor = anchor.addr;
    dl_iterate_phdr(add_object, w);
    const ElfW(Sym) *sys =
        w->libc_dynamic != NULL
            ? dynamic_symbol(w->libc_base, w->libc_dynamic, "syscall")
            : NULL;
    if (sys == NULL || sys->st_size == 0) {
        /* Trap libc as well: nothing of it may stay unguarded. */
        w->libc_anchor = 0;
        w->rs->n = 0;
        w->loader_n = 0;
        dl_iterate_phdr(add_object, w);
        return false;
    }
    uint64_t lo = w->libc_base + sys->st_value;
    add_range(w->rs, lo, lo + sys->st_size);
    return true;
}

static int by_start(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorted, empty ranges dropped, touching ones joined; then, while there
 * are more than limit, the two with the smallest gap between them are
 * joined (trapping a gap traps nothing the program runs there now). */
static void normalize_to(struct ranges *rs, size_t limit)
{
    qsort(rs->r, rs->n, sizeof(rs->r[0]), by_start);
    size_t out = 0;
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->r[i].lo >= rs->r[i].hi)
            continue;
        if (out > 0 && rs->r[i].lo <= rs->r[out - 1].hi) {
            if (rs->r[i].hi > rs->r[out - 1].hi)
                rs->r[out - 1].hi = rs->r[i].hi;
            continue;
        }
        rs->r[out++] = rs->r[i];
    }
    rs->n = out;
    while (rs->n > limit && rs->n >= 2) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < rs->n; i++)
            if (rs->r[i + 1].lo - rs->r[i].hi <
                rs->r[best + 1].lo - rs->r[best].hi)
                best = i;
        rs->r[best].hi = rs->r[best + 1].hi;
        memmove(&rs->r[best + 1], &rs->r[best + 2],
                (rs->n - best - 2) * sizeof(rs->r[0]));
        rs->n--;
    }
}

/* --- the filter ---------------------------------------------------------- */

#define DATA_NR offsetof(struct seccomp_data, nr)
#define DATA_ARCH offsetof(struct seccomp_data, arch)
#define DATA_IP_LO offsetof(struct seccomp_data, instruction_pointer)
#define DATA_IP_HI (DATA_IP_LO + 4)
#define DATA_ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define DATA_ARG_HI(i) (DATA_ARG_LO(i) + 4)

#define RET_ALLOW SECCOMP_RET_ALLOW
#define RET_TRAP (SECCOMP_RET_TRAP | GUARD_TRAP_DATA)
#define RET_MAP_TRAP (SECCOMP_RET_TRAP | GUARD_MAP_DATA)
#define RET_EPERM (SECCOMP_RET_ERRNO | EPERM)

struct prog {
    struct sock_filter ins[BPF_MAXINSNS];
    size_t n;
    bool full;
};

static void emit(struct prog *p, struct sock_filter f)
{
    if (p->n < BPF_MAXINSNS)
        p->ins[p->n++] = f;
    else
        p->full = true;
}

static void load(struct prog *p, uint32_t offset)
{
    emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset));
}

static void ret(struct prog *p, uint32_t action)
{
    emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action));
}

/* "if A == k, go to a label": the unconditional jump that follows is
 * patched with the label's place once it is known (jt/jf reach only 255
 * instructions; BPF_JA reaches any). Returns the jump's index. */
static size_t jump_if_equal(struct prog *p, uint32_t k)
{
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0));
    return p->n - 1;
}

static size_t jump_if_set(struct prog *p, uint32_t bits)
{
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, bits, 0,
                                         1));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0));
    return p->n - 1;
}

static size_t jump(struct prog *p)
{
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0));
    return p->n - 1;
}

static void land(struct prog *p, size_t at)
{
    if (at < p->n)
        p->ins[at].k = (uint32_t)(p->n - at - 1);
}

/* "return action when the instruction pointer is in [a, b]", a and b in
 * one 4 GiB block (the filter compares 32-bit words): six instructions. */
static void emit_block_check(struct prog *p, uint64_t a, uint64_t b,
                             uint32_t action)
{
    load(p, DATA_IP_HI);
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                         (uint32_t)(a >> 32), 0, 4));
    load(p, DATA_IP_LO);
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K,
                                         (uint32_t)a, 0, 2));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K,
                                         (uint32_t)b, 1, 0));
    ret(p, action);
}

/* "return action when the instruction pointer is in one of the n ranges
 * at r, else allow"; a range that crosses a 4 GiB line is checked block by
 * block. */
static void emit_ip_check(struct prog *p, const struct range *r, size_t n,
                          uint32_t action)
{
    for (size_t i = 0; i < n && !p->full; i++) {
        uint64_t last = r[i].hi - 1;
        for (uint64_t a = r[i].lo; !p->full;) {
            uint64_t block_end = a | 0xffffffffull;
            uint64_t b = block_end < last ? block_end : last;
            emit_block_check(p, a, b, action);
            if (b == last)
                break;
            a = b + 1;
        }
    }
    ret(p, RET_ALLOW);
}

/* The 32-bit ABIs (int 0x80, x32) reach the same kernel calls with other
 * numbers and cannot be answered through the shim: their connect family
 * is refused. */
static void emit_foreign_abis(struct prog *p)
{
    static const uint32_t i386_refused[] = {362, 364, 425}; /* connect,
                                                accept4, io_uring_setup */
    for (size_t i = 0; i < sizeof(i386_refused) / sizeof(i386_refused[0]);
         i++) {
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                             i386_refused[i], 0, 1));
        ret(p, RET_EPERM);
    }
    /* sendto, sendmsg, sendmmsg with MSG_FASTOPEN (flags: argument 3, 2,
     * 3) */
    static const uint32_t i386_sends[][2] = {{369, 3}, {370, 2}, {345, 3}};
    for (size_t i = 0; i < sizeof(i386_sends) / sizeof(i386_sends[0]); i++) {
        /* Not this call: past the four instructions that return. */
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                             i386_sends[i][0], 0, 4));
        load(p, DATA_ARG_LO(i386_sends[i][1]));
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K,
                                             MSG_FASTOPEN, 0, 1));
        ret(p, RET_EPERM);
        ret(p, RET_ALLOW);
    }
    /* socketcall(2): SYS_CONNECT, SYS_ACCEPT, SYS_ACCEPT4 */
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 102, 0, 5));
    load(p, DATA_ARG_LO(0));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 3, 2, 0));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 5, 1, 0));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 18, 0, 1));
    ret(p, RET_EPERM);
    ret(p, RET_ALLOW);
}

static void emit_x32(struct prog *p)
{
    static const uint32_t x32_refused[] = {42, 43, 44, 288, 425, 518, 538};
    for (size_t i = 0; i < sizeof(x32_refused) / sizeof(x32_refused[0]);
         i++) {
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                             X32_BIT | x32_refused[i], 0, 1));
        ret(p, RET_EPERM);
    }
    ret(p, RET_ALLOW);
}

/*
 * What one filter traps. The image's filter (first) traps the six from the
 * image's code, the loader's executable mappings (when loader_n > 0), and
 * refuses io_uring and the 32-bit ABIs. A filter for code mapped later
 * traps the six from its one range and nothing else: the kernel runs every
 * filter and takes the strictest answer, so the first one's refusals hold.
 */
struct filter_spec {
    const struct range *code;
    size_t code_n;
    const struct range *loader;
    size_t loader_n;
    bool first;
};

/* mmap and mprotect with PROT_EXEC from the loader's code: the trap that
 * covers a library as it is mapped (map_code below). */
static void emit_loader_maps(struct prog *p, const struct filter_spec *f)
{
    load(p, DATA_ARG_LO(2)); /* prot, of both calls */
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K,
                                         PROT_EXEC, 1, 0));
    ret(p, RET_ALLOW);
    emit_ip_check(p, f->loader, f->loader_n, RET_MAP_TRAP);
}

/*
 * One filter. Every system call other than the six (and, in the first,
 * io_uring_setup, mmap and mprotect) is allowed on its number and
 * architecture alone, which the kernel caches per number (Linux 5.11+):
 * the filter program does not run for the program's other calls.
 */
static void build_filter(struct prog *p, const struct filter_spec *f)
{
    load(p, DATA_ARCH);
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                         AUDIT_ARCH_X86_64, 1, 0));
    size_t to_foreign = jump(p);
    load(p, DATA_NR);
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_BIT,
                                         0, 1));
    size_t to_x32 = jump(p);
    size_t to_magic[3] = {jump_if_equal(p, SYS_connect),
                          jump_if_equal(p, SYS_accept),
                          jump_if_equal(p, SYS_accept4)};
    size_t to_flags2 = jump_if_equal(p, SYS_sendmsg);
    size_t to_flags3 = jump_if_equal(p, SYS_sendmmsg);
    size_t to_sendto = jump_if_equal(p, SYS_sendto);
    bool maps = f->first && f->loader_n > 0;
    size_t to_maps[2] = {maps ? jump_if_equal(p, SYS_mmap) : SIZE_MAX,
                         maps ? jump_if_equal(p, SYS_mprotect) : SIZE_MAX};
    if (f->first) {
        /* io_uring's connect and accept are made by the kernel, where no
         * filter sees them: io_uring is refused (programs fall back). */
        emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                             SYS_io_uring_setup, 0, 1));
        ret(p, RET_EPERM);
    }
    ret(p, RET_ALLOW);

    /* The 32-bit ABIs: refused in the first filter, left to it in the
     * others. */
    land(p, to_foreign);
    if (f->first) {
        load(p, DATA_NR);
        emit_foreign_abis(p);
        land(p, to_x32);
        emit_x32(p);
    } else {
        land(p, to_x32);
        ret(p, RET_ALLOW);
    }

    if (maps) {
        land(p, to_maps[0]);
        land(p, to_maps[1]);
        emit_loader_maps(p, f);
    }

    /* Sends are the guard's business only with MSG_FASTOPEN (a connect). */
    land(p, to_flags2);
    load(p, DATA_ARG_LO(2));
    size_t fastopen2 = jump_if_set(p, MSG_FASTOPEN);
    ret(p, RET_ALLOW);
    land(p, to_flags3);
    load(p, DATA_ARG_LO(3));
    size_t fastopen3 = jump_if_set(p, MSG_FASTOPEN);
    ret(p, RET_ALLOW);
    land(p, to_sendto);
    load(p, DATA_ARG_LO(3));
    size_t fastopen_sendto = jump_if_set(p, MSG_FASTOPEN);
    ret(p, RET_ALLOW);

    for (size_t i = 0; i < 3; i++)
        land(p, to_magic[i]);
    land(p, fastopen2);
    land(p, fastopen3);
    load(p, DATA_ARG_LO(5));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                         (uint32_t)GUARD_MAGIC, 0, 3));
    load(p, DATA_ARG_HI(5));
    emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                         (uint32_t)(GUARD_MAGIC >> 32), 0, 1));
    ret(p, RET_ALLOW);
    land(p, fastopen_sendto);
    emit_ip_check(p, f->code, f->code_n, RET_TRAP);
}

/* --- the handler --------------------------------------------------------- */

/* The call itself, with the magic in r9: for a trap inside the handler's
 * own call (libc was not found, so its code is trapped too). */
static long magic_syscall(long nr, long a0, long a1, long a2, long a3)
{
    register long r10 __asm__("r10") = a3;
    register long r9 __asm__("r9") = (long)GUARD_MAGIC;
    long rc;
    __asm__ volatile("syscall"
                     : "=a"(rc)
                     : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r9)
                     : "rcx", "r11", "memory");
    return rc;
}

static long direct(long nr, const greg_t *g)
{
    switch (nr) {
    case SYS_connect:
    case SYS_accept:
    case SYS_accept4:
    case SYS_sendmsg:
    case SYS_sendmmsg:
        return magic_syscall(nr, g[REG_RDI], g[REG_RSI], g[REG_RDX],
                             g[REG_R10]);
    default: /* sendto has no spare register: no Fast Open then */
        return -EOPNOTSUPP;
    }
}

/* The call as the program would have made it through libc, under the
 * shim: the raw call's result, or -errno. */
static long through_shim(long nr, const greg_t *g)
{
    long rc;
    switch (nr) {
    case SYS_connect:
        rc = shim_connect((int)g[REG_RDI], (const struct sockaddr *)g[REG_RSI],
                          (socklen_t)g[REG_RDX]);
        break;
    case SYS_accept:
        rc = shim_accept((int)g[REG_RDI], (struct sockaddr *)g[REG_RSI],
                         (socklen_t *)g[REG_RDX], 0, false);
        break;
    case SYS_accept4:
        rc = shim_accept((int)g[REG_RDI], (struct sockaddr *)g[REG_RSI],
                         (socklen_t *)g[REG_RDX], (int)g[REG_R10], true);
        break;
    case SYS_sendto:
        rc = shim_sendto_any((int)g[REG_RDI], (const void *)g[REG_RSI],
                             (size_t)g[REG_RDX], (int)g[REG_R10],
                             (const struct sockaddr *)g[REG_R8],
                             (socklen_t)g[REG_R9]);
        break;
    case SYS_sendmsg:
        rc = shim_sendmsg_any((int)g[REG_RDI], (const struct msghdr *)g[REG_RSI],
                              (int)g[REG_RDX]);
        break;
    case SYS_sendmmsg:
        rc = shim_sendmmsg_any((int)g[REG_RDI], (struct mmsghdr *)g[REG_RSI],
                               (unsigned int)g[REG_RDX], (int)g[REG_R10]);
        break;
    default:
        errno = ENOSYS;
        rc = -1;
    }
    return rc < 0 ? -errno : rc;
}

/* --- code mapped later (SECSHIM_SYSCALL_GUARD=strict) ---------------------- */

/*
 * Code the loader maps after the guard started (a library the program or
 * libc dlopens, and what that library needs) is trapped from the moment
 * it exists: the first filter traps the loader's mmap and mprotect with
 * PROT_EXEC, and map_code makes the call and installs a filter for the
 * new range before the loader can run a byte of it. When that filter
 * cannot be installed, the mapping is taken back and the call fails
 * (ENOMEM), so the loader fails the dlopen and no unguarded code runs.
 */

/* The code ranges the filters trap: the first filter's (set once by
 * guard_start) and one per later filter, with the program of the next.
 * later_lock guards them; it is a leaf (nothing is taken while it is
 * held) and fork takes it last. */
static pthread_mutex_t later_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ranges *first_code;
static struct range later_code[GUARD_MAX_LATER];
static size_t later_n;
static struct prog later_prog;

/* How deep this thread is in the shim's load of its own TLS half:
 * libssl, libcrypto and the shim's code are trusted like libc's, and get
 * no filter (each would cost one at the first connection). */
static __thread int own_load_depth;

static int install_filter(struct prog *p, bool *nnp);

static bool within(const struct range *r, size_t n, uint64_t lo, uint64_t hi)
{
    for (size_t i = 0; i < n; i++)
        if (lo >= r[i].lo && hi <= r[i].hi)
            return true;
    return false;
}

/* Traps the six from [lo, hi) too, unless a filter already does. Returns
 * 0 or an errno (nothing installed then). */
static int cover(uint64_t lo, uint64_t hi)
{
    pthread_mutex_lock(&later_lock);
    int err = 0;
    if (!within(first_code->r, first_code->n, lo, hi) &&
        !within(later_code, later_n, lo, hi)) {
        struct range code = {lo, hi};
        struct filter_spec f = {.code = &code, .code_n = 1};
        later_prog.n = 0;
        later_prog.full = false;
        build_filter(&later_prog, &f);
        bool nnp = false;
        err = later_n == GUARD_MAX_LATER ? ENOSPC
                                         : install_filter(&later_prog, &nnp);
        if (err == 0)
            later_code[later_n++] = code;
    }
    size_t filters = later_n;
    pthread_mutex_unlock(&later_lock);
    if (err == 0)
        ss_log(SS_LOG_DEBUG, "syscall guard: code mapped at %#llx-%#llx is "
               "guarded (%zu later filters)", (unsigned long long)lo,
               (unsigned long long)hi, filters);
    return err;
}

/*
 * The loader's trapped mmap or mprotect with PROT_EXEC: made here, then
 * its range covered. The result as the kernel's would be: the address or
 * 0, or -errno. A range that cannot be covered is taken back (unmapped,
 * or left without any access) and the call answers ENOMEM.
 */
static long map_code(long nr, const greg_t *g)
{
    void *addr = (void *)g[REG_RDI];
    size_t len = (size_t)g[REG_RSI];
    int prot = (int)g[REG_RDX], flags = (int)g[REG_R10];
    long result = 0;
    if (nr == SYS_mmap) {
        addr = mmap(addr, len, prot, flags, (int)g[REG_R8], (off_t)g[REG_R9]);
        if (addr == MAP_FAILED)
            return -errno;
        result = (long)addr;
    } else if (mprotect(addr, len, prot) != 0) {
        return -errno;
    }
    if (own_load_depth > 0)
        return result;
    const uint64_t page = 4096;
    uint64_t lo = (uintptr_t)addr & ~(page - 1);
    uint64_t hi = ((uintptr_t)addr + len + page - 1) & ~(page - 1);
    int err = cover(lo, hi);
    if (err == 0)
        return result;
    if (nr == SYS_mmap && (flags & MAP_FIXED) == 0)
        (void)munmap(addr, len);
    else
        (void)mprotect(addr, len, PROT_NONE);
    ss_log_event(SS_LOG_ERROR, "guard_map_refused", NULL, "syscall guard: "
                 "code mapped at %#llx-%#llx cannot be guarded (%s): its "
                 "mapping is refused, so the load fails",
                 (unsigned long long)lo, (unsigned long long)hi,
                 err == ENOSPC || err == ENOMEM
                     ? "no room for another filter in this process"
                     : strerror(err));
    return -ENOMEM;
}

/* A SIGSYS that is not the guard's goes where it would have gone. */
static void pass_on(int sig, siginfo_t *info, void *uctx)
{
    struct sigaction own = previous_sigsys;
    if (own.sa_flags & SA_RESETHAND) { /* one delivery, as the kernel's */
        memset(&previous_sigsys, 0, sizeof(previous_sigsys));
        previous_sigsys.sa_handler = SIG_DFL;
    }
    if (own.sa_flags & SA_SIGINFO) {
        own.sa_sigaction(sig, info, uctx);
        return;
    }
    if (own.sa_handler == SIG_IGN)
        return;
    if (own.sa_handler != SIG_DFL) {
        own.sa_handler(sig);
        return;
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    (void)next_signal_fn(&next_sigaction, "sigaction").action(SIGSYS, &dfl,
                                                            NULL);
    raise(SIGSYS);
}

/*
 * The trap: the registers hold the call's arguments; its result goes in
 * rax as the kernel's would (-errno on failure). SA_NODEFER: a trap of
 * the handler's own call arrives here again instead of killing the
 * process, and is made directly.
 */
static void on_sigsys(int sig, siginfo_t *info, void *uctx)
{
    if (info->si_code != GUARD_SI_SECCOMP ||
        ((unsigned)info->si_errno != GUARD_TRAP_DATA &&
         (unsigned)info->si_errno != GUARD_MAP_DATA)) {
        pass_on(sig, info, uctx);
        return;
    }
    int saved = errno;
    /* The shim's work here may trap again (its first connection loads
     * its TLS half, whose mappings the loader makes): SIGSYS must be
     * deliverable, also under a wrapper of this handler that blocks every
     * signal (ThreadSanitizer's). sigreturn restores the thread's mask. */
    unblock_sigsys();
    greg_t *g = ((ucontext_t *)uctx)->uc_mcontext.gregs;
    long nr = info->si_syscall;
    if ((unsigned)info->si_errno == GUARD_MAP_DATA) {
        g[REG_RAX] = map_code(nr, g);
    } else if (guard_depth > 0 && !libc_untrapped) {
        g[REG_RAX] = direct(nr, g);
    } else {
        guard_depth++;
        g[REG_RAX] = through_shim(nr, g);
        guard_depth--;
    }
    errno = saved;
}

/* --- installing ---------------------------------------------------------- */

/*
 * Whether an exec'd image's loader lands somewhere else than this one's,
 * as it does unless the personality (setarch -R, a debugger) or the system
 * turned address randomization off. Without it, a child's loader would lie
 * where this one's does, and its first mapping would be trapped before the
 * child has a handler: the loader's mappings are then not trapped.
 */
static bool addresses_random(void)
{
    int persona = personality(0xffffffff);
    if (persona != -1 && (persona & ADDR_NO_RANDOMIZE) != 0)
        return false;
    int fd = open("/proc/sys/kernel/randomize_va_space", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true; /* the kernel's default */
    char level = '2';
    ssize_t n = REAL(read)(fd, &level, 1);
    (void)REAL(close)(fd);
    return n != 1 || level != '0';
}

/* What the guard line says of code mapped later. */
static const char *later_code_note(bool strict, bool loader_found,
                                   bool random)
{
    if (!strict)
        return "code loaded later is not guarded "
               "(SECSHIM_SYSCALL_GUARD=strict guards it)";
    if (!loader_found)
        return "code loaded later is not guarded: the loader was not found";
    return random ? "code loaded later is guarded as it is mapped"
                  : "code loaded later is not guarded: address "
                    "randomization is off";
}

/* The first filter, for this image, into p. With strict, it also traps
 * the loader's mappings of code where that is safe (*later says so).
 * *note is what the guard line says of it. Returns NULL, or why the guard
 * cannot be on here. */
static const char *prepare(struct ranges *rs, struct prog *p, bool strict,
                           bool *later, const char **note)
{
    struct object_walk w = {.rs = rs, .loader_base = getauxval(AT_BASE)};
    libc_untrapped = guarded_ranges(&w);
    if (w.valgrind)
        return "valgrind makes the program's system calls";
    if (!libc_untrapped)
        ss_log(SS_LOG_DEBUG, "syscall guard: libc's syscall(3) not found; "
               "libc is trapped too, and the shim's own calls are made "
               "directly");
    normalize_to(rs, GUARD_MAX_RANGES);
    *later = strict && w.loader_n > 0 && addresses_random();
    *note = later_code_note(strict, w.loader_n > 0, *later);
    struct filter_spec f = {.code = rs->r, .code_n = rs->n,
                            .loader = w.loader,
                            .loader_n = *later ? w.loader_n : 0,
                            .first = true};
    build_filter(p, &f);
    return p->full ? "too many executable mappings for one filter" : NULL;
}

/*
 * seccomp(2) on every thread; unprivileged, after no_new_privs. SPEC_ALLOW:
 * the kernel would otherwise turn on its speculative-store-bypass
 * mitigation for the process (its default for sandboxes), slowing all of
 * its code; the guard confines nothing and must not change that. Returns
 * 0 or an errno; *nnp says whether no_new_privs was set.
 */
static int install_filter(struct prog *p, bool *nnp)
{
    struct sock_fprog fprog = {(unsigned short)p->n, p->ins};
    const unsigned long flags =
        SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog);
    if (rc != 0 && errno == EACCES) {
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            return errno;
        *nnp = true;
        rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &fprog);
    }
    if (rc > 0) /* a thread that could not take it */
        return EAGAIN;
    return rc == 0 ? 0 : errno;
}

/* The handler, then the filter; from then on SIGSYS is the guard's.
 * Returns 0 or an errno (the handler is taken back then). */
static int arm(struct prog *p, bool *nnp)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    union signal_fn action = next_signal_fn(&next_sigaction, "sigaction");
    union signal_fn mask =
        next_signal_fn(&next_pthread_sigmask, "pthread_sigmask");
    if (action.p == NULL || mask.p == NULL) /* unblock_sigsys needs it */
        return ENOSYS;
    if (action.action(SIGSYS, &sa, &previous_sigsys) != 0)
        return errno;
    int err = install_filter(p, nnp);
    if (err != 0) {
        (void)action.action(SIGSYS, &previous_sigsys, NULL);
        return err;
    }
    atomic_store(&guard_active, true);
    /* A mask inherited over exec (posix_spawn's, a blocking parent's) is
     * undone here, and the signal calls below keep SIGSYS out of later
     * ones. */
    unblock_sigsys();
    return 0;
}

static void log_off(const char *why)
{
    ss_log_event(SS_LOG_WARNING, "guard_off", NULL, "syscall guard off (%s): "
                 "a connect or accept system call made without libc is not "
                 "seen by the shim", why);
}

void guard_start(void)
{
    if (atomic_exchange(&guard_installed, true))
        return;
    const char *env = getenv("SECSHIM_SYSCALL_GUARD");
    if (env != NULL && strcmp(env, "off") == 0) {
        log_off("SECSHIM_SYSCALL_GUARD=off");
        return;
    }
    bool strict = env != NULL && strcmp(env, "strict") == 0;
    if (env != NULL && !strict && env[0] != '\0' && strcmp(env, "on") != 0)
        ss_log_event(SS_LOG_WARNING, "guard_setting_unknown", NULL,
                     "syscall guard: SECSHIM_SYSCALL_GUARD=%s is not off, "
                     "on or strict: the guard is on, as by default", env);
    struct ranges *rs = calloc(1, sizeof(*rs));
    struct prog *p = calloc(1, sizeof(*p));
    bool later = false;
    const char *note = "";
    const char *why = rs != NULL && p != NULL
                          ? prepare(rs, p, strict, &later, &note)
                          : "out of memory";
    bool nnp = false;
    if (later)
        first_code = rs; /* the handler's from the moment the filter is in */
    int err = why == NULL ? arm(p, &nnp) : 0;
    char seccomp_why[128];
    if (err != 0) {
        snprintf(seccomp_why, sizeof(seccomp_why), "seccomp: %s",
                 strerror(err));
        why = seccomp_why;
    }
    free(p);
    if (why != NULL) {
        log_off(why);
        first_code = NULL; /* no filter: nothing traps */
        free(rs);
        return;
    }
    ss_log_event(SS_LOG_INFO, "guard_on", NULL, "syscall guard on: connect, "
                 "accept and Fast Open system calls made without libc go "
                 "through the shim (%zu code ranges; %s%s)", rs->n, note,
                 nnp ? "; no_new_privs set" : "");
    if (!later)
        free(rs); /* kept only for the later filters' look-ups */
}

void guard_own_load_begin(void)
{
    own_load_depth++;
}

void guard_own_load_end(void)
{
    own_load_depth--;
}

void guard_fork_prepare(void)
{
    pthread_mutex_lock(&later_lock);
}

void guard_fork_parent(void)
{
    pthread_mutex_unlock(&later_lock);
}

void guard_fork_child(void)
{
    pthread_mutex_unlock(&later_lock);
}

/* --- the program's signal calls ------------------------------------------ */

/*
 * While the guard is on, SIGSYS is never blocked and its handler stays the
 * guard's: the kernel ends a process whose trapped call finds SIGSYS
 * blocked, and a program's own handler would not answer the trap. A
 * program's SIGSYS action is kept as previous_sigsys, which the guard's
 * handler calls for every SIGSYS that is not its trap, and reported back
 * as the action in place; SIGSYS is left out of the masks the program
 * sets, as the kernel leaves out SIGKILL and SIGSTOP.
 */
SS_UNINSTRUMENTED static const sigset_t *without_sigsys(const sigset_t *set,
                                                       sigset_t *copy)
{
    if (set == NULL || !atomic_load_explicit(&guard_active,
                                             memory_order_relaxed) ||
        !sigismember(set, SIGSYS))
        return set;
    *copy = *set;
    sigdelset(copy, SIGSYS);
    return copy;
}

SS_UNINSTRUMENTED static int shim_sigaction(int sig,
                                            const struct sigaction *act,
                                            struct sigaction *old)
{
    union signal_fn next = next_signal_fn(&next_sigaction, "sigaction");
    if (next.p == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!atomic_load_explicit(&guard_active, memory_order_relaxed))
        return next.action(sig, act, old);
    if (sig == SIGSYS) {
        struct sigaction was = previous_sigsys;
        if (act != NULL) {
            previous_sigsys = *act;
            sigdelset(&previous_sigsys.sa_mask, SIGSYS);
        }
        if (old != NULL)
            *old = was;
        return 0;
    }
    if (act == NULL || !sigismember(&act->sa_mask, SIGSYS))
        return next.action(sig, act, old);
    struct sigaction copy = *act;
    sigdelset(&copy.sa_mask, SIGSYS);
    return next.action(sig, &copy, old);
}

SS_UNINSTRUMENTED SS_EXPORT int sigaction(int sig, const struct sigaction *restrict act,
                        struct sigaction *restrict old)
{
    return shim_sigaction(sig, act, old);
}

/* glibc's public alias (GLIBC_2.2.5) of sigaction: the same call. */
SS_UNINSTRUMENTED SS_EXPORT int __sigaction(int sig, const struct sigaction *restrict act,
                          struct sigaction *restrict old)
{
    return shim_sigaction(sig, act, old);
}

SS_UNINSTRUMENTED SS_EXPORT int sigprocmask(int how, const sigset_t *restrict set,
                          sigset_t *restrict old)
{
    union signal_fn next = next_signal_fn(&next_sigprocmask, "sigprocmask");
    if (next.p == NULL) {
        errno = ENOSYS;
        return -1;
    }
    sigset_t copy;
    return next.mask(how, without_sigsys(set, &copy), old);
}

SS_UNINSTRUMENTED SS_EXPORT int pthread_sigmask(int how, const sigset_t *restrict set,
                              sigset_t *restrict old)
{
    union signal_fn next =
        next_signal_fn(&next_pthread_sigmask, "pthread_sigmask");
    sigset_t copy;
    return next.p == NULL ? ENOSYS
                          : next.mask(how, without_sigsys(set, &copy), old);
}

/*
 * signal(), bsd_signal() and sysv_signal() set their action with glibc's
 * internal sigaction, which the interposed one above never sees: for
 * SIGSYS they go through it here instead, with the flags and mask each
 * would have set (BSD: SA_RESTART, the signal itself masked; System V:
 * reset to the default after one delivery, nothing masked), so that a
 * program's own SIGSYS handler is kept and chained rather than put in the
 * guard's place. Other signals go to the next definition untouched.
 */
SS_UNINSTRUMENTED static sighandler_t
signal_through_guard(int sig, sighandler_t handler, int flags,
                     _Atomic(void *) *next, const char *name)
{
    if (sig != SIGSYS ||
        !atomic_load_explicit(&guard_active, memory_order_relaxed)) {
        union signal_fn f = next_signal_fn(next, name);
        if (f.p == NULL) {
            errno = ENOSYS;
            return SIG_ERR;
        }
        return f.handler(sig, handler);
    }
    struct sigaction act, old;
    memset(&act, 0, sizeof(act));
    act.sa_handler = handler;
    act.sa_flags = flags;
    sigemptyset(&act.sa_mask);
    if ((flags & SA_NODEFER) == 0)
        sigaddset(&act.sa_mask, sig);
    if (shim_sigaction(sig, &act, &old) != 0)
        return SIG_ERR;
    return old.sa_handler;
}

SS_UNINSTRUMENTED SS_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    return signal_through_guard(sig, handler, SA_RESTART, &next_signal,
                                "signal");
}

SS_UNINSTRUMENTED SS_EXPORT sighandler_t bsd_signal(int sig,
                                                    sighandler_t handler)
{
    return signal_through_guard(sig, handler, SA_RESTART, &next_bsd_signal,
                                "bsd_signal");
}

SS_UNINSTRUMENTED SS_EXPORT sighandler_t sysv_signal(int sig,
                                                     sighandler_t handler)
{
    return signal_through_guard(sig, handler, SA_RESETHAND | SA_NODEFER,
                                &next_sysv_signal, "sysv_signal");
}

/* glibc's public alias (GLIBC_2.2.5) of sysv_signal: the same call. */
SS_UNINSTRUMENTED SS_EXPORT sighandler_t __sysv_signal(int sig,
                                                       sighandler_t handler)
{
    return signal_through_guard(sig, handler, SA_RESETHAND | SA_NODEFER,
                                &next_sysv_signal, "sysv_signal");
}

#else /* not x86-64 */

void guard_start(void)
{
    if (atomic_exchange(&guard_installed, true))
        return;
    ss_log_event(SS_LOG_WARNING, "guard_off", NULL, "syscall guard off (%s): "
                 "a connect or accept system call made without libc is not "
                 "seen by the shim", "built for x86-64 only");
}

void guard_own_load_begin(void) {}
void guard_own_load_end(void) {}
void guard_fork_prepare(void) {}
void guard_fork_parent(void) {}
void guard_fork_child(void) {}

#endif
