/* The leak scan's Linux layer: /proc/self/maps and /proc/self/task through raw syscalls,
 * fault-free reads (process_vm_readv), and stop-the-world by a signal to every other thread.
 * Everything the scan does to the operating system is here; none of it calls malloc. */
#include <dirent.h>
#include <fcntl.h>
#include <link.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "agent/scan.h"
#include "base/common.h"
#include "base/os.h"

/* ---- /proc/self/maps ------------------------------------------------------------------ */

static int scanos_open(const char *path, int flags)
{
    long fd = syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC);
    return fd < 0 ? -errno : (int)fd;
}

static uintptr_t scanos_hex(const char **pp)
{
    uintptr_t v = 0;
    const char *p = *pp;
    for (;; p++) {
        char c = *p;
        if (c >= '0' && c <= '9') v = v << 4 | (uintptr_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v = v << 4 | (uintptr_t)(c - 'a' + 10);
        else break;
    }
    *pp = p;
    return v;
}

static int scanos_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* One line: "start-end perms offset dev inode   path". Returns 0, or -1 if malformed. */
static int scanos_parse_line(const char *line, htri_scan_map *m, const htri_scan_map *prev)
{
    const char *p = line;
    m->start = scanos_hex(&p);
    if (*p++ != '-') return -1;
    m->end = scanos_hex(&p);
    if (*p++ != ' ' || strlen(p) < 4) return -1;
    m->flags = (p[0] == 'r' ? HTRI_MAP_R : 0) | (p[1] == 'w' ? HTRI_MAP_W : 0) |
               (p[2] == 'x' ? HTRI_MAP_X : 0) | (p[3] == 's' ? HTRI_MAP_SHARED : 0);
    p += 4;
    for (int field = 0; field < 2; field++) {   /* offset, dev */
        while (*p == ' ') p++;
        while (*p && *p != ' ') p++;
    }
    while (*p == ' ') p++;
    m->inode = 0;
    while (*p >= '0' && *p <= '9') m->inode = m->inode * 10 + (uint64_t)(*p++ - '0');
    while (*p == ' ') p++;
    const char *path = p;
    if (m->inode) m->flags |= HTRI_MAP_FILE;
    if (strcmp(path, "[heap]") == 0) {
        m->flags |= HTRI_MAP_HEAP;
    } else if (scanos_starts(path, "[stack")) {
        m->flags |= HTRI_MAP_STACK;
    } else if (path[0] == '[' && !scanos_starts(path, "[anon")) {
        m->flags |= HTRI_MAP_SPECIAL;
    } else if (scanos_starts(path, "/dev/") && !scanos_starts(path, "/dev/zero") &&
               !scanos_starts(path, "/dev/shm/")) {
        /* memcheck does not poke into device mappings either (reads may hang or have
         * side effects) */
        m->flags |= HTRI_MAP_DEVICE;
    } else if (m->inode) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (scanos_starts(base, "libc.so") || scanos_starts(base, "libc-2.")) m->flags |= HTRI_MAP_LIBC;
    } else if (!path[0] && prev && (prev->flags & HTRI_MAP_LIBC) && (prev->flags & HTRI_MAP_W) &&
               prev->end == m->start) {
        m->flags |= HTRI_MAP_LIBC;   /* libc's .bss continues in an anonymous mapping */
    }
    return 0;
}

long htri_scan_maps_read(htri_scan_map *out, size_t cap)
{
    int fd = scanos_open("/proc/self/maps", O_RDONLY);
    if (fd < 0) return fd;
    char buf[8192];
    char line[PATH_MAX + 256];
    size_t line_len = 0, n = 0;
    for (;;) {
        long got = syscall(SYS_read, fd, buf, sizeof buf);
        if (got < 0) {
            if (errno == EINTR) continue;
            int e = -errno;
            syscall(SYS_close, fd);
            return e;
        }
        if (got == 0) break;
        for (long i = 0; i < got; i++) {
            char c = buf[i];
            if (c != '\n') {
                if (line_len + 1 < sizeof line) line[line_len++] = c;
                continue;
            }
            line[line_len] = 0;
            line_len = 0;
            if (n < cap && scanos_parse_line(line, &out[n], n ? &out[n - 1] : NULL) == 0) n++;
        }
    }
    syscall(SYS_close, fd);
    return (long)n;
}

long htri_scan_read_careful(void *dst, uintptr_t src, size_t len)
{
    struct iovec local = { dst, len }, remote = { (void *)src, len };
    long got = syscall(SYS_process_vm_readv, (long)htri_os_getpid(), &local, 1UL, &remote, 1UL, 0UL);
    return got < 0 ? -errno : got;
}

uintptr_t htri_scan_exe_addr(void) { return (uintptr_t)getauxval(AT_PHDR); }

/* ---- Stop the world ------------------------------------------------------------------
 * Each other thread gets HTRI_SCAN_SIGNAL; its handler copies the interrupted registers and
 * stack pointer out of the ucontext into its slot and sleeps on a futex until resumed. The
 * handler keeps its own frame below the interrupted stack pointer's red zone, so scanning
 * from sp - 128 up never sees our frames. */

static struct {
    htri_scan_thread *volatile threads;  /* non-NULL while a stop is in progress */
    volatile int n_threads;
    volatile int resume;                 /* futex word: 1 = run again */
    volatile int in_handler;             /* threads still inside the handler */
    int pid;
    int sig;
    int keep_handler;                    /* a signal may still be pending: never uninstall */
    struct sigaction old_action;
} g_scanos;

static long scanos_futex(volatile int *addr, int op, int val)
{
    return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

/* Architecture: where the interrupted registers are in the ucontext. */
static void scanos_save_context(htri_scan_thread *t, const ucontext_t *uc)
{
#if defined(__x86_64__)
    static const int regs[HTRI_SCAN_NREGS] = {
        REG_RAX, REG_RBX, REG_RCX, REG_RDX, REG_RSI, REG_RDI, REG_RBP, REG_RSP,
        REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15 };
    for (int i = 0; i < HTRI_SCAN_NREGS; i++) t->regs[i] = (uintptr_t)uc->uc_mcontext.gregs[regs[i]];
    t->sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    for (int i = 0; i < HTRI_SCAN_NREGS; i++) t->regs[i] = (uintptr_t)uc->uc_mcontext.regs[i + 15];
    t->sp = (uintptr_t)uc->uc_mcontext.sp;
#else
#error "heaptrail's leak scan: add this architecture's ucontext layout"
#endif
}

static void scanos_on_signal(int sig, siginfo_t *si, void *ucv)
{
    int saved_errno = errno;
    htri_scan_thread *threads = g_scanos.threads;
    if (!threads || si->si_code != SI_TKILL || si->si_pid != g_scanos.pid) {
        errno = saved_errno;
        return;   /* late or foreign: nothing to do */
    }
    int tid = (int)syscall(SYS_gettid);
    htri_scan_thread *me = NULL;
    for (int i = 0; i < g_scanos.n_threads; i++)
        if (threads[i].tid == tid && __atomic_load_n(&threads[i].state, __ATOMIC_ACQUIRE) == HTRI_THREAD_SENT) {
            me = &threads[i];
            break;
        }
    if (!me) {
        errno = saved_errno;
        return;
    }
    scanos_save_context(me, (const ucontext_t *)ucv);
    me->tcb = htri_scan_self_tcb();
    __atomic_add_fetch(&g_scanos.in_handler, 1, __ATOMIC_ACQ_REL);
    int expect = HTRI_THREAD_SENT;
    if (!__atomic_compare_exchange_n(&me->state, &expect, HTRI_THREAD_STOPPED, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        /* the stopper gave up on us (timeout): it scans us conservatively, run on */
        __atomic_sub_fetch(&g_scanos.in_handler, 1, __ATOMIC_ACQ_REL);
        errno = saved_errno;
        return;
    }
    while (!__atomic_load_n(&g_scanos.resume, __ATOMIC_ACQUIRE))
        scanos_futex(&g_scanos.resume, FUTEX_WAIT_PRIVATE, 0);
    __atomic_sub_fetch(&g_scanos.in_handler, 1, __ATOMIC_ACQ_REL);
    errno = saved_errno;
}

static void scanos_sleep_us(long us)
{
    struct timespec ts = { 0, us * 1000 };
    syscall(SYS_nanosleep, &ts, NULL);
}

/* 1 if thread tid blocks sig (SigBlk of /proc/self/task/TID/status): it would never stop,
 * so there is no point waiting for it. 0 if not, or unknown. */
static int scanos_blocks_signal(int tid, int sig)
{
    char path[64], buf[2048];
    int n = 0;
    const char *pre = "/proc/self/task/";
    while (pre[n]) { path[n] = pre[n]; n++; }
    char digits[16];
    int nd = 0;
    for (int v = tid; v > 0 && nd < 15; v /= 10) digits[nd++] = (char)('0' + v % 10);
    while (nd) path[n++] = digits[--nd];
    const char *post = "/status";
    for (int i = 0; post[i]; i++) path[n++] = post[i];
    path[n] = 0;
    int fd = scanos_open(path, O_RDONLY);
    if (fd < 0) return 0;
    long got = syscall(SYS_read, fd, buf, sizeof buf - 1);
    syscall(SYS_close, fd);
    if (got <= 0) return 0;
    buf[got] = 0;
    const char *p = strstr(buf, "SigBlk:");
    if (!p) return 0;
    p += 7;
    while (*p == ' ' || *p == '\t') p++;
    uint64_t mask = (uint64_t)scanos_hex(&p);
    return sig >= 1 && sig <= 64 && ((mask >> (sig - 1)) & 1);
}

/* Signals every task not yet in threads[]; returns how many were added, or -errno. */
static int scanos_signal_new_tasks(htri_scan_thread *threads, int cap, int self)
{
    int fd = scanos_open("/proc/self/task", O_RDONLY | O_DIRECTORY);
    if (fd < 0) return fd;
    char buf[4096];
    int added = 0;
    for (;;) {
        long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (got <= 0) break;
        for (long off = 0; off < got;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            int tid = 0;
            const char *c = d->d_name;
            if (*c < '0' || *c > '9') continue;
            while (*c >= '0' && *c <= '9') tid = tid * 10 + (*c++ - '0');
            if (tid == self) continue;
            int known = 0;
            for (int i = 0; i < g_scanos.n_threads; i++)
                if (threads[i].tid == tid) { known = 1; break; }
            if (known || g_scanos.n_threads >= cap) continue;
            htri_scan_thread *t = &threads[g_scanos.n_threads];
            memset(t, 0, sizeof *t);
            t->tid = tid;
            __atomic_store_n(&t->state, HTRI_THREAD_SENT, __ATOMIC_RELEASE);
            __atomic_store_n(&g_scanos.n_threads, g_scanos.n_threads + 1, __ATOMIC_RELEASE);
            if (scanos_blocks_signal(tid, g_scanos.sig))
                t->state = HTRI_THREAD_TIMEOUT;   /* cannot stop it: scanned conservatively */
            else if (syscall(SYS_tgkill, g_scanos.pid, tid, g_scanos.sig) != 0)
                t->state = HTRI_THREAD_GONE;
            added++;
        }
    }
    syscall(SYS_close, fd);
    return added;
}

int htri_scan_stop_world(htri_scan_thread *threads, int cap)
{
    if (!threads || cap <= 0) return -EINVAL;
    g_scanos.pid = htri_os_getpid();
    g_scanos.sig = HTRI_SCAN_SIGNAL;
    g_scanos.n_threads = 0;
    g_scanos.resume = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = scanos_on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);   /* nothing may interrupt a thread parked in the handler */
    struct sigaction old;
    if (sigaction(g_scanos.sig, &sa, &old) != 0) return -errno;
    if (old.sa_sigaction != scanos_on_signal) g_scanos.old_action = old;
    __atomic_store_n(&g_scanos.threads, threads, __ATOMIC_RELEASE);

    int self = htri_os_gettid();
    uint64_t deadline = htri_os_now_ns() + (uint64_t)HTRI_SCAN_STOP_TIMEOUT_MS * 1000000u;
    /* a thread being created while we list may show up late: list again until a pass after
     * every known thread stopped finds nobody new */
    for (;;) {
        int added = scanos_signal_new_tasks(threads, cap, self);
        if (added < 0 && g_scanos.n_threads == 0) {
            __atomic_store_n(&g_scanos.threads, NULL, __ATOMIC_RELEASE);
            sigaction(g_scanos.sig, &g_scanos.old_action, NULL);
            return added;
        }
        int waiting;
        long spins = 0;
        do {
            waiting = 0;
            for (int i = 0; i < g_scanos.n_threads; i++) {
                htri_scan_thread *t = &threads[i];
                if (__atomic_load_n(&t->state, __ATOMIC_ACQUIRE) != HTRI_THREAD_SENT) continue;
                if (syscall(SYS_tgkill, g_scanos.pid, t->tid, 0) != 0) {
                    /* exited; claim the slot so a late handler does not stop in it */
                    int expect = HTRI_THREAD_SENT;
                    __atomic_compare_exchange_n(&t->state, &expect, HTRI_THREAD_GONE, 0,
                                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
                    continue;
                }
                waiting++;
            }
            if (waiting) {
                if (htri_os_now_ns() > deadline) break;
                if (++spins < 100) syscall(SYS_sched_yield);
                else scanos_sleep_us(100);
            }
        } while (waiting);
        if (waiting) {
            for (int i = 0; i < g_scanos.n_threads; i++) {
                int expect = HTRI_THREAD_SENT;
                if (__atomic_compare_exchange_n(&threads[i].state, &expect, HTRI_THREAD_TIMEOUT,
                                                0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                    g_scanos.keep_handler = 1;   /* its signal is still pending */
            }
            break;
        }
        if (added == 0) break;
    }
    return g_scanos.n_threads;
}

void htri_scan_resume_world(void)
{
    __atomic_store_n(&g_scanos.resume, 1, __ATOMIC_RELEASE);
    scanos_futex(&g_scanos.resume, FUTEX_WAKE_PRIVATE, 0x7fffffff);
    while (__atomic_load_n(&g_scanos.in_handler, __ATOMIC_ACQUIRE) > 0) syscall(SYS_sched_yield);
    __atomic_store_n(&g_scanos.threads, NULL, __ATOMIC_RELEASE);
    g_scanos.n_threads = 0;
    if (!g_scanos.keep_handler) sigaction(g_scanos.sig, &g_scanos.old_action, NULL);
}

HTRI_NOINLINE int htri_scan_self_regs(uintptr_t *out)
{
#if defined(__x86_64__)
    __asm__ volatile("movq %%rbx, 0(%0)\n\tmovq %%rbp, 8(%0)\n\tmovq %%r12, 16(%0)\n\t"
                     "movq %%r13, 24(%0)\n\tmovq %%r14, 32(%0)\n\tmovq %%r15, 40(%0)"
                     : : "r"(out) : "memory");
    return 6;
#elif defined(__aarch64__)
    __asm__ volatile("stp x19, x20, [%0, #0]\n\tstp x21, x22, [%0, #16]\n\t"
                     "stp x23, x24, [%0, #32]\n\tstp x25, x26, [%0, #48]\n\t"
                     "stp x27, x28, [%0, #64]\n\tstp x29, x30, [%0, #80]"
                     : : "r"(out) : "memory");
    return 12;
#else
    (void)out;
    return 0;
#endif
}

uintptr_t htri_scan_self_tcb(void)
{
#if defined(__x86_64__)
    uintptr_t tcb;
    __asm__("movq %%fs:0, %0" : "=r"(tcb));
    return tcb;
#else
    return (uintptr_t)__builtin_thread_pointer();
#endif
}

/* dl_iterate_phdr takes the loader's lock and never allocates: call it before the world
 * stops (a stopped thread could hold that lock). */
static int scanos_tls_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    size_t *sum = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_TLS) continue;
        size_t align = ph->p_align ? ph->p_align : 1;
        *sum += (ph->p_memsz + align - 1) / align * align;
    }
    return 0;
}

size_t htri_scan_static_tls_bytes(void)
{
    size_t sum = 0;
    dl_iterate_phdr(scanos_tls_cb, &sum);
    return sum;
}
