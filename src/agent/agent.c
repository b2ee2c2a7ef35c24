/* The recording core of the preloaded agent: options, per-thread event buffers, the writer
 * thread and the process lifecycle (fork, exec, exit, fatal signals). hooks.c calls in here
 * after the real allocator call; everything below runs under the hooks' reentrancy guard.
 *
 *   hook -> stack id (stacks.c) -> live table (table.c) -> thread buffer --full/idle-->
 *        queue -> writer thread: MODULE, NODES, THREAD (META) then EVENTS frames -> file */
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/guard.h"
#include "agent/scan.h"
#include "base/common.h"
#include "trace/totals_record.h"
#include "base/fmt.h"
#include "base/os.h"
#include "base/spin.h"
#include "unwind/unwind.h"

extern char **environ;
extern char *program_invocation_short_name;

#define AGENT_PATH_MAX 4096
#define AGENT_OPTS_MAX 4096
#define AGENT_BUFS_PER_SLAB 16
#define AGENT_THREADS_PER_SLAB 64
#define AGENT_MMAP_SLOTS 4096
#define AGENT_SIGNAL_SPINS 2000000     /* bounded lock attempts from a fatal-signal handler */
#define AGENT_FD_MIN 900               /* our descriptors live at or above this */
/* Misuse checks on by default, at the defaults (16-byte redzones, 64 MiB quarantine),
 * as memcheck checks every run. Their price on an allocation churn: about 3-4x plain recording
 * (the quarantine's cold memory), redzones and bad-free checks alone 1.05-1.25x; plain
 * recording is guard=0, or --redzone=0 --quarantine=0. */
#ifndef AGENT_GUARD_DEFAULT
#define AGENT_GUARD_DEFAULT 1
#endif

/*  A thread's event buffer; its data is one EVENTS frame in the making.
 *   +------+-----+-----------+--------+--------+------+---------+------------------------+
 *   | next | tid | n_records | t_first| t_last | used | evstate | data[HTR_TBUF_BYTES]   |
 *   +------+-----+-----------+--------+--------+------+---------+------------------------+ */
typedef struct agent_buf {
    struct agent_buf *next;
    uint32_t tid, n_records;
    uint64_t t_first, t_last;
    size_t used;
    htri_evstate ev;
    uint8_t data[HTR_TBUF_BYTES];
} agent_buf;

/* One per thread that ever recorded; never unmapped. Once its thread is gone (the kernel
 * says so) the writer puts it on a free list and a new thread reuses it, counters and all
 * (they are process totals). The owner takes `lock` per event; the writer thread
 * only try-locks it to steal a partial buffer. */
typedef struct agent_thread {
    volatile int lock;
    int tid;
    int announced;             /* THREAD record written to the current file */
    int end_pending;           /* THREAD_END to write */
    int dead;                  /* exited (or did not survive fork) */
    uint64_t t_end;
    uint64_t t_last_event;     /* its latest event time (agent_stamp) */
    agent_buf *buf;
    uint64_t n_allocs, n_frees, bytes_allocated;   /* memcheck-style, this thread */
    /* HEAP_TOTALS changes not yet added to the shared counters (several threads recording:
     * agent_tot_note) */
    int64_t tot_bytes, tot_blocks;
    uint32_t tot_events;
    /* the number of this thread's next ALLOC/INHERIT record (docs/trace-format.md); only the
     * owner changes it. A slot reused by a new thread keeps counting, and a new slot starts
     * above every slot's count, so a tid the kernel recycles never repeats a number */
    uint64_t next_no;
    int free_listed;           /* its thread is gone: reusable by a new thread */
    struct agent_thread *next;
    struct agent_thread *next_free;
} agent_thread;

typedef struct agent_mmap { uintptr_t addr; size_t len; } agent_mmap;
typedef struct agent_region { uint64_t start, end; } agent_region;

enum { AGENT_FILE_NONE = 0, AGENT_FILE_OPEN = 1, AGENT_FILE_FAILED = 2 };

static struct {
    /* state */
    _Atomic int early_done;
    volatile int early_lock;
    _Atomic int stopped;            /* an error stopped recording for good */
    _Atomic int finished;           /* END written (or exec pending) */
    int late_done;
    int pid, ppid;
    uint64_t start_mono, start_real;
    /* options */
    char out[AGENT_PATH_MAX];
    int main_pid;
    htri_unwind_mode unwind_mode;
    int depth;
    int trace_children;
    char session[AGENT_PATH_MAX];
    int freeres;
    int record_events;
    /* a second thread records: HEAP_TOTALS changes are batched per thread (agent_tot_note).
     * Read per event, written once; kept here with the other read-mostly fields. */
    _Atomic int tot_batched;
    char options_raw[AGENT_OPTS_MAX];
    htri_guard_opts guard_opts;    /* misuse-check options (guard.h) */
    int guard_on;                  /* the hooks run the misuse checks */
    int guard_key;                 /* guard= given: -1 no, else its value */
    int guard_asked;               /* a guard option was given */
    int leak_check;                /* leak_check=no: no leak scan at exit */
    int leak_check_signal;         /* leak_check_signal=N: a check per signal N, 0 = none */
    _Atomic int leak_signal_pending;
    char child_env[AGENT_OPTS_MAX + 64];
    /* threads */
    volatile int reg_lock;
    agent_thread *threads;         /* list, grows only; published with release */
    agent_thread *thread_free;     /* carve pointer of the current slab */
    agent_thread *thread_reuse;    /* states of exited threads, under reg_lock */
    int thread_free_left;
    pthread_key_t key;
    int key_ok;
    /* buffers */
    volatile int pool_lock;
    agent_buf *pool;
    volatile int queue_lock;
    agent_buf *q_head, *q_tail;
    size_t q_bytes;
    _Atomic uint32_t wake;         /* futex the writer sleeps on */
    /* writer */
    volatile int wlock;
    htri_writer w;
    htri_recbuf meta;
    htri_recbuf extra;             /* leak/error records from other parts, after NODES */
    int file_state;
    int fd;
    dev_t fd_dev;                  /* identity of the trace file, to notice a program that */
    ino_t fd_ino;                  /* closed our descriptor and reused the number */
    char path[AGENT_PATH_MAX];
    int file_wanted;               /* parent: after the constructor; child: after 1st event */
    pthread_t writer;
    int writer_running;
    _Atomic int writer_stop;
    _Atomic int writer_in_dl;      /* writer inside dl_iterate_phdr: producers must not wait */
    uint32_t nodes_written;
    int rss_fd;
    uint64_t rss_peak, t_rss;
    _Atomic int modules_dirty;
    _Atomic uint64_t dropped;
    char stop_msg[256];
    _Atomic int stop_msg_pending;
    /* exit */
    int exit_status_known, exit_status;
    /* fork */
    int forked;
    int parent_pid;
    _Atomic int inherit_pending;
    uint64_t fork_t, fork_allocs, fork_frees, fork_bytes;
    /* anonymous mappings */
    volatile int mmap_lock;
    agent_mmap *mmaps;
    /* HEAP_TOTALS (trace/totals_record.h): the run summary's figures, kept as events are
     * recorded, so the CLI need not replay them. Signed: a block allocated by one thread and
     * freed by another may be subtracted before it was added. Own cache lines, since every
     * recording thread adds to live_* once per event. */
    struct {
        _Alignas(64) _Atomic int64_t live_bytes;
        _Atomic int64_t live_blocks;
        _Alignas(64) _Atomic int64_t peak_bytes;  /* written under lock, read relaxed per alloc */
        volatile int lock;
        int64_t peak_blocks;
        uint64_t peak_t;
        _Atomic uint32_t flags;                    /* HTRI_TOTALS_* */
        /* the replay's view of our anonymous mappings, under mmap_lock */
        agent_region *regions;
        size_t n_regions;
        uint64_t mmap_count, mmap_bytes, mmap_live, mmap_peak;
        int n_recorders;          /* thread states handed out (reg_lock): 2+ sets THREADS */
        int final_missed;         /* the final writer pass left a thread's buffer behind */
    } tot;
} g_agent = { .fd = -1, .rss_fd = -1 };

static __thread agent_thread *t_self __attribute__((tls_model("initial-exec")));
__thread int htri_agent_guard __attribute__((tls_model("initial-exec")));

/* ---- small locks ---- */

static inline void agent_spin_lock(volatile int *l) { htri_spin_lock(l); }
static inline int agent_spin_trylock(volatile int *l) { return htri_spin_trylock(l); }
/* Bounded: for the fatal-signal path, which must never deadlock on a lock its own thread
 * was holding when the signal came. */
static int agent_spin_lock_bounded(volatile int *l, long spins)
{
    for (long i = 0; i < spins; i++) {
        if (agent_spin_trylock(l))
            return 1;
        __builtin_ia32_pause();
    }
    return 0;
}
static inline void agent_spin_unlock(volatile int *l) { htri_spin_unlock(l); }

static void agent_futex_wake(_Atomic uint32_t *w)
{
    atomic_fetch_add_explicit(w, 1, memory_order_release);
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---- the event clock ----
 * One clock_gettime per event was 8-12% of a malloc-heavy run: the vDSO orders the TSC read,
 * retries its seqlock and scales. Event times are quantised to 16.4 us anyway, so the hook
 * reads the TSC and scales it by a calibration the writer thread refreshes against
 * CLOCK_MONOTONIC with each RSS sample (clock_calibrate); until the first one, and where the
 * TSC is not invariant, it asks the kernel. The two calibration slots are double-buffered:
 * the writer fills the idle one, then publishes its index. Times go backwards by at most the
 * calibration's error when a new one lands; agent_stamp keeps each thread's times monotonic. */
typedef struct clock_cal {
    uint64_t tsc0, ns0;   /* a (TSC, ns since start_mono) pair */
    uint64_t mult;        /* ns per TSC tick, 32.32 fixed point */
} clock_cal;

static struct {
    _Atomic unsigned cur;      /* 0: uncalibrated; else the slot is cur & 1 */
    int usable;                /* invariant TSC seen in /proc/cpuinfo at start-up */
    uint64_t first_tsc, first_ns;
    clock_cal cal[2];
} g_clock;

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
static inline uint64_t clock_tsc(void) { return __rdtsc(); }
/* CPUID 0x80000007 EDX bit 8: the TSC runs at one rate in every state (the kernel's
 * constant_tsc + nonstop_tsc). */
static int clock_tsc_invariant(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
        return 0;
    __get_cpuid(0x80000007u, &a, &b, &c, &d);
    return (d >> 8) & 1;
}
#else
static inline uint64_t clock_tsc(void) { return 0; }
static int clock_tsc_invariant(void) { return 0; }
#endif

static HTRI_NOINLINE uint64_t htri_agent_now_kernel(void)
{
    return (htri_os_now_ns() - g_agent.start_mono) & ~(((uint64_t)1 << HTR_TIME_QUANTUM_LOG2) - 1);
}

/* Quantised (config.h: HTR_TIME_QUANTUM_LOG2) so event deltas compress; see the reader for ties. */
uint64_t htri_agent_now(void)
{
    unsigned cur = atomic_load_explicit(&g_clock.cur, memory_order_acquire);
    if (htri_unlikely(!cur))
        return htri_agent_now_kernel();
    const clock_cal *c = &g_clock.cal[cur & 1];
    uint64_t tsc0 = c->tsc0, ns0 = c->ns0, mult = c->mult;
    /* The writer refills a slot two calibrations (20 ms) after publishing it: only a hook
     * preempted that long sees it change, and then asks the kernel. */
    atomic_thread_fence(memory_order_acquire);   /* the slot's loads stay before the re-check */
    if (htri_unlikely(atomic_load_explicit(&g_clock.cur, memory_order_relaxed) != cur))
        return htri_agent_now_kernel();
    uint64_t d = clock_tsc() - tsc0;
    /* A TSC read just before tsc0 (another core, the same instant) is "no time". */
    if ((int64_t)d < 0)
        d = 0;
    uint64_t ns = ns0 + (uint64_t)(((unsigned __int128)d * mult) >> 32);
    return ns & ~(((uint64_t)1 << HTR_TIME_QUANTUM_LOG2) - 1);
}

/* A (TSC, ns) pair taken as close together as we can: the TSC read on each side of the clock
 * read, the midpoint kept. */
static void clock_pair(uint64_t *tsc, uint64_t *ns)
{
    uint64_t a = clock_tsc();
    *ns = htri_os_now_ns() - g_agent.start_mono;
    uint64_t b = clock_tsc();
    *tsc = a + (b - a) / 2;
}

/* Start of a time line (start-up, a forked child): hooks use the kernel's clock until the
 * writer has 10 ms of baseline. Only an invariant TSC (constant and nonstop, as the kernel
 * reports it) is trusted. */
static void clock_start(int probe_cpu)
{
    atomic_store_explicit(&g_clock.cur, 0, memory_order_release);
#if defined(__x86_64__)
    if (probe_cpu) {
        /* Also only where the kernel itself keeps time with the TSC: it drops the TSC as
         * clocksource when the cores' counters are not in step (or a hypervisor says so),
         * and so do we. */
        char cs[32];
        g_clock.usable = clock_tsc_invariant() &&
            htri_os_read_small_file("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                                    cs, sizeof cs) >= 3 && !strncmp(cs, "tsc", 3) &&
            (cs[3] == '\n' || cs[3] == 0);
    }
#else
    (void)probe_cpu;
#endif
    if (g_clock.usable)
        clock_pair(&g_clock.first_tsc, &g_clock.first_ns);
}

/* Writer thread, with each RSS sample: the rate from the whole span since clock_start, so it
 * only gets more exact; the new line starts where the old one is now, so times stay monotonic
 * across threads (all hooks map a TSC value through the same line) rather than jumping by
 * the old rate's error at each recalibration. */
static void clock_calibrate(void)
{
    if (!g_clock.usable)
        return;
    uint64_t tsc, ns;
    clock_pair(&tsc, &ns);
    uint64_t dt = tsc - g_clock.first_tsc, dns = ns - g_clock.first_ns;
    if (dns < 5000000u || (int64_t)dt <= 0)
        return;   /* too short a baseline to trust */
    unsigned cur = atomic_load_explicit(&g_clock.cur, memory_order_relaxed);
    unsigned next = cur + 1 ? cur + 1 : 2;   /* 0 means uncalibrated */
    clock_cal *c = &g_clock.cal[next & 1];
    if (cur) {
        const clock_cal *o = &g_clock.cal[cur & 1];
        uint64_t d = tsc - o->tsc0;
        c->ns0 = o->ns0 + (uint64_t)(((unsigned __int128)d * o->mult) >> 32);
    } else {
        c->ns0 = ns;
    }
    c->tsc0 = tsc;
    c->mult = (uint64_t)(((unsigned __int128)dns << 32) / dt);
    atomic_store_explicit(&g_clock.cur, next, memory_order_release);
}

/* ---- options ---- */

static size_t agent_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n = strlen(src);
    size_t c = n < cap - 1 ? n : cap - 1;
    memcpy(dst, src, c);
    dst[c] = 0;
    return n;
}

static long agent_atol(const char *s, int *ok)
{
    long v = 0, sign = 1;
    *ok = 0;
    if (*s == '-') { sign = -1; s++; }
    while (*s >= '0' && *s <= '9') { v = v * 10 + (*s++ - '0'); *ok = 1; }
    if (*s) *ok = 0;
    return v * sign;
}

/* HEAPTRAIL_OPTIONS, read once from `environ` at init: `;`-separated key=value, later keys
 * win (exec with trace_children appends main_pid=-1 this way).
 *   out=PATH          trace of the process whose pid is main_pid (or of the first process
 *                     when main_pid is absent); others: heaptrail.PROG.PID[.N].htr in the
 *                     directory of out, else the cwd (created with O_EXCL, never clobbered)
 *   main_pid=N        see out
 *   unwind=dwarf|cached|fp   stack engine (default dwarf)
 *   depth=N           frames per stack, 0..HTR_MAX_DEPTH (default HTR_DEFAULT_DEPTH)
 *   trace_children=0|1  keep LD_PRELOAD for exec'd children (default 0: stripped at init)
 *   session=PATH      one "PID\tTRACEPATH\n" line appended per trace file created
 *   freeres=0|1       call __libc_freeres / __gnu_cxx::__freeres at exit (default 1)
 *   record=full|none  none: tables and counters only, no events (leak-check-only runs)
 *   guard=0|1         the misuse checks (guard.h) in the hooks (default 1, AGENT_GUARD_DEFAULT:
 *                     at the guard's defaults, 16-byte redzones and a 64 MiB quarantine);
 *                     off also when redzone=0 and quarantine=0 leave the guard nothing to do
 *   redzone=N quarantine=SIZE fill-alloc[=BYTE] fail-after=N fail-every=N fail-rate=P
 *   seed=N fail-in=FUNCTION limit=SIZE limit-action=fail|abort abort-on-error
 *   error-exitcode=N  the guard's options (htri_guard_parse_option)
 *   leak_check=no|summary|full   no: no leak scan at exit (default: scan)
 *   leak_check_signal=N          each signal N runs a leak check (the writer thread runs it)
 *   heuristics=LIST   memcheck's --leak-check-heuristics: all, none, or a comma list of
 *                     stdstring, length64, newarray, multipleinheritance
 * Unknown keys and values: one warning line each, otherwise ignored. */
static int agent_parse_heuristics(const char *val, unsigned *mask)
{
    static const char *const names[] = { "stdstring", "length64", "newarray",
                                         "multipleinheritance" };
    static const int bits[] = { HTRI_HEUR_STDSTRING, HTRI_HEUR_LENGTH64, HTRI_HEUR_NEWARRAY,
                                HTRI_HEUR_MULTIPLEINHERITANCE };
    unsigned m = 0;
    if (strcmp(val, "all") == 0) { *mask = HTRI_HEUR_ALL; return 0; }
    if (strcmp(val, "none") == 0) { *mask = 0; return 0; }
    while (*val) {
        const char *end = strchr(val, ',');
        size_t len = end ? (size_t)(end - val) : strlen(val);
        size_t k = 0;
        for (; k < HTRI_ARRAY_LEN(names); k++)
            if (strlen(names[k]) == len && memcmp(names[k], val, len) == 0)
                break;
        if (k == HTRI_ARRAY_LEN(names))
            return -EINVAL;
        m |= 1u << bits[k];
        val += len + (end ? 1 : 0);
    }
    *mask = m;
    return 0;
}

static void agent_parse_option(const char *key, size_t klen, const char *raw_val)
{
    const char *val = raw_val ? raw_val : "";  /* NULL: the key had no '=' */
    int ok;
#define KEY_IS(k) (klen == sizeof(k) - 1 && memcmp(key, k, klen) == 0)
    if (KEY_IS("out")) {
        agent_strlcpy(g_agent.out, val, sizeof g_agent.out);
    } else if (KEY_IS("main_pid")) {
        g_agent.main_pid = (int)agent_atol(val, &ok);
    } else if (KEY_IS("unwind")) {
        if (htri_unwind_parse_mode(val, &g_agent.unwind_mode) < 0)
            htri_fdprintf(2, "heaptrail: unknown unwind mode '%s' ignored\n", val);
    } else if (KEY_IS("depth")) {
        long d = agent_atol(val, &ok);
        if (ok && d >= 0)
            g_agent.depth = d > HTR_MAX_DEPTH ? HTR_MAX_DEPTH : (int)d;
    } else if (KEY_IS("trace_children")) {
        g_agent.trace_children = val[0] == '1';
    } else if (KEY_IS("session")) {
        agent_strlcpy(g_agent.session, val, sizeof g_agent.session);
    } else if (KEY_IS("freeres")) {
        g_agent.freeres = val[0] != '0';
    } else if (KEY_IS("record")) {
        if (strcmp(val, "none") == 0)
            g_agent.record_events = 0;
        else if (strcmp(val, "full") == 0)
            g_agent.record_events = 1;
        else
            htri_fdprintf(2, "heaptrail: unknown record mode '%s' ignored\n", val);
    } else if (KEY_IS("guard")) {
        g_agent.guard_key = val[0] != '0';
    } else if (KEY_IS("leak_check")) {
        g_agent.leak_check = strcmp(val, "no") != 0;
    } else if (KEY_IS("leak_check_signal")) {
        long sig = agent_atol(val, &ok);
        if (ok && sig > 0 && sig < 65)
            g_agent.leak_check_signal = (int)sig;
        else
            htri_fdprintf(2, "heaptrail: bad leak_check_signal '%s' ignored\n", val);
    } else if (KEY_IS("heuristics")) {
        unsigned mask;
        if (agent_parse_heuristics(val, &mask) == 0)
            htri_scan_set_heuristics(mask);
        else
            htri_fdprintf(2, "heaptrail: bad heuristics '%s' ignored\n", val);
    } else {
        char name[64];
        htri_fmt(name, sizeof name, "%.*s", (int)klen, key);
        int rc = htri_guard_parse_option(&g_agent.guard_opts, name, raw_val);
        if (rc == -ENOENT)
            htri_fdprintf(2, "heaptrail: unknown option '%s' ignored\n", name);
        else if (rc < 0)
            htri_fdprintf(2, "heaptrail: bad value for %s ignored\n", name);
        else
            g_agent.guard_asked = 1;
    }
#undef KEY_IS
}

static void agent_parse_options(const char *s)
{
    char item[AGENT_PATH_MAX + 64];
    while (*s) {
        const char *end = strchr(s, ';');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len > 0 && len < sizeof item) {
            memcpy(item, s, len);
            item[len] = 0;
            char *eq = strchr(item, '=');
            if (eq) {
                *eq = 0;
                agent_parse_option(item, (size_t)(eq - item), eq + 1);
            } else {
                agent_parse_option(item, len, NULL);
            }
        }
        if (!end)
            break;
        s = end + 1;
    }
}

/* Removes every libheaptrail-preload entry from LD_PRELOAD in place, so exec'd children
 * run untraced. The string lives in the initial environment block, which is writable. */
static void agent_strip_preload(char *entry)
{
    char *v = entry + strlen("LD_PRELOAD=");
    char *r = v, *w = v;
    while (*r) {
        while (*r == ':' || *r == ' ')
            r++;
        char *tok = r;
        while (*r && *r != ':' && *r != ' ')
            r++;
        size_t len = (size_t)(r - tok);
        if (!len)
            break;
        int ours = 0;
        for (size_t i = 0; i + 20 <= len; i++)
            if (memcmp(tok + i, "libheaptrail-preload", 20) == 0)
                ours = 1;
        if (ours)
            continue;
        if (w != v)
            *w++ = ':';
        memmove(w, tok, len);
        w += len;
    }
    *w = 0;
}

static void agent_read_environ(void)
{
    char **env = environ;
    const char *opts = NULL;
    char *preload = NULL;
    for (size_t i = 0; env && env[i]; i++) {
        if (strncmp(env[i], "HEAPTRAIL_OPTIONS=", 18) == 0)
            opts = env[i] + 18;
        else if (strncmp(env[i], "LD_PRELOAD=", 11) == 0)
            preload = env[i];
    }
    htri_guard_opts_default(&g_agent.guard_opts);
    if (opts) {
        agent_strlcpy(g_agent.options_raw, opts, sizeof g_agent.options_raw);
        agent_parse_options(g_agent.options_raw);
    }
    g_agent.guard_on = g_agent.guard_key >= 0 ? g_agent.guard_key
                                              : g_agent.guard_asked || AGENT_GUARD_DEFAULT;
    /* --redzone=0 --quarantine=0 and nothing else of the guard's: plain recording, the
     * hooks' fast path. */
    const htri_guard_opts *go = &g_agent.guard_opts;
    if (!go->redzone && !go->quarantine_bytes && !go->fail_after_set && !go->fail_every &&
        !go->fail_rate_ppm && !go->fail_in[0] && !go->limit_bytes && go->fill_alloc < 0 &&
        !go->abort_on_error)
        g_agent.guard_on = 0;
    htri_fmt(g_agent.child_env, sizeof g_agent.child_env, "HEAPTRAIL_OPTIONS=%s;main_pid=-1",
             g_agent.options_raw);
    if (preload && !g_agent.trace_children)
        agent_strip_preload(preload);
}

/* ---- misuse guard: reporter, FAULT/LIMIT records, heap checks (hooks.c runs the rest) ---- */

#define AGENT_LIMIT_RECORDS 16     /* LIMIT records with top holders; later refusals: events only */
#define AGENT_DEFER_MAX 256        /* errors held while table locks are taken (htr_check_heap) */

/* Errors found while this thread holds every table shard lock wait here: the reporter takes
 * the writer's lock, which comes before the shard locks in the world order. */
static __thread htri_error_rec *t_defer __attribute__((tls_model("initial-exec")));
static __thread size_t t_defer_n __attribute__((tls_model("initial-exec")));
static _Atomic int g_limit_records;

static void agent_emit_error(const htri_error_rec *e)
{
    uint8_t rec[HTRI_ERROR_REC_MAX];
    size_t n = htri_error_rec_encode(e, rec);
    (void)htri_agent_meta_record(rec[0], rec + 1, n - 1);
}

/* --abort-on-error, --limit-action=abort: the trace gets its records and END first. */
static HTRI_NOINLINE void agent_guard_abort(const char *why)
{
    htri_fdprintf(2, "heaptrail: %s: aborting\n", why);
    htri_agent_finish(HTRI_END_SIGNAL, SIGABRT);
    abort();
}

/* The guard's reporter (guard.h): stamps time and thread, queues an ERROR record. Runs in the
 * thread that found the error, with no guard lock held. */
static void agent_guard_report(void *user, const htri_error_rec *err)
{
    (void)user;
    htri_error_rec e = *err;
    e.t = htri_agent_now();
    e.tid = (uint32_t)htri_os_gettid();
    if (t_defer) {
        if (t_defer_n < AGENT_DEFER_MAX)
            t_defer[t_defer_n++] = e;
        return;
    }
    agent_emit_error(&e);
    if (g_agent.guard_opts.abort_on_error)
        agent_guard_abort("misuse error and --abort-on-error");
}

static void agent_guard_init(void)
{
    int rc = htri_guard_init(&g_agent.guard_opts, agent_guard_report, NULL);
    if (rc == -ENOENT)
        htri_fdprintf(2, "heaptrail: --fail-in=%s names no function: nothing fails by it\n",
                      g_agent.guard_opts.fail_in);
    else if (rc == -ENOMEM)
        htri_fdprintf(2, "heaptrail: no memory for the quarantine: freed blocks are not held\n");
}

int htri_agent_guard_on(void)
{
    return g_agent.guard_on && htri_agent_tracking();
}

int htri_agent_leak_check(void) { return g_agent.leak_check; }

uint32_t htri_agent_node(const uintptr_t *pcs, int n_pcs)
{
    uint32_t node;
    return htri_stacks_intern(pcs, n_pcs, &node) == 0 ? node : 0;
}

void htri_agent_guard_fault(int why, uint8_t family, size_t size, const uintptr_t *pcs, int n_pcs)
{
    htri_fault_rec f = { htri_agent_now(), (uint32_t)htri_os_gettid(), (uint8_t)why, family,
                         size, htri_agent_node(pcs, n_pcs) };
    uint8_t rec[HTRI_ERROR_REC_MAX];
    size_t n = htri_fault_rec_encode(&f, rec);
    (void)htri_agent_meta_record(rec[0], rec + 1, n - 1);
    htri_agent_on_failed(family, size, pcs, n_pcs);
}

/* A copy of the live table on our own pages (*bytes: its mapping), or NULL. */
static htri_block *agent_table_copy(size_t *n, size_t *bytes)
{
    for (int tries = 0; tries < 4; tries++) {
        size_t cap = htri_table_count() + 4096;
        *bytes = cap * sizeof(htri_block);
        htri_block *blocks = htri_os_pages_alloc(*bytes);
        if (!blocks)
            return NULL;
        htri_table_lock_all();
        size_t got = htri_table_snapshot(blocks, cap);
        htri_table_unlock_all();
        if (got <= cap) {
            *n = got;
            return blocks;
        }
        htri_os_pages_free(blocks, *bytes);
    }
    return NULL;
}

void htri_agent_guard_limit(uint8_t family, size_t size, const uintptr_t *pcs, int n_pcs)
{
    if (atomic_fetch_add(&g_limit_records, 1) < AGENT_LIMIT_RECORDS) {
        htri_limit_rec l;
        memset(&l, 0, sizeof l);
        size_t n = 0, bytes = 0;
        htri_block *blocks = agent_table_copy(&n, &bytes);
        if (blocks) {
            int k = htri_guard_top_holders(blocks, n, l.holders, HTRI_LIMIT_MAX_HOLDERS);
            l.n_holders = k > 0 ? (uint32_t)k : 0;
            htri_os_pages_free(blocks, bytes);
        }
        l.t = htri_agent_now();
        l.tid = (uint32_t)htri_os_gettid();
        l.size = size;
        l.node = htri_agent_node(pcs, n_pcs);
        l.family = family;
        l.live_bytes = htri_guard_live_bytes();
        l.limit_bytes = g_agent.guard_opts.limit_bytes;
        uint8_t rec[HTRI_LIMIT_REC_MAX];
        size_t len = htri_limit_rec_encode(&l, rec);
        (void)htri_agent_meta_record(rec[0], rec + 1, len - 1);
    }
    htri_agent_on_failed(family, size, pcs, n_pcs);
    if (g_agent.guard_opts.limit_action == HTRI_LIMIT_ABORT)
        agent_guard_abort("--limit reached and --limit-action=abort");
}

typedef struct agent_contain_ctx { uintptr_t addr; htri_block *out; int found; } agent_contain_ctx;

static int agent_contain_one(void *user, const htri_block *b)
{
    agent_contain_ctx *c = user;
    if (c->addr > b->addr && c->addr < b->addr + b->size) {
        *c->out = *b;
        c->found = 1;
        return 1;
    }
    return 0;
}

int htri_agent_guard_find_containing(uintptr_t addr, htri_block *out)
{
    agent_contain_ctx c = { addr, out, 0 };
    htri_table_lock_all();
    htri_table_foreach(agent_contain_one, &c);
    htri_table_unlock_all();
    return c.found;
}

typedef struct agent_verify_ctx { uint32_t where; int errors; } agent_verify_ctx;

static int agent_verify_one(void *user, const htri_block *b)
{
    agent_verify_ctx *c = user;
    if (b->tag & HTRI_GUARD_TAG_ON)
        c->errors += htri_guard_verify_block((const void *)b->addr, b->size, b->node, b->family,
                                             c->where, HTRI_NOFAM);
    return 0;
}

int htri_agent_guard_verify_live(uint32_t where_node)
{
    /* Under the shard locks, so no block is freed (and unmapped) while it is read; the
     * errors wait in t_defer and are recorded after the locks are gone. */
    size_t bytes = AGENT_DEFER_MAX * sizeof(htri_error_rec);
    htri_error_rec *defer = htri_os_pages_alloc(bytes);
    if (!defer)
        return -ENOMEM;
    agent_verify_ctx c = { where_node, 0 };
    t_defer = defer;
    t_defer_n = 0;
    htri_table_lock_all();
    htri_table_foreach(agent_verify_one, &c);
    htri_table_unlock_all();
    t_defer = NULL;
    for (size_t i = 0; i < t_defer_n; i++)
        agent_emit_error(&defer[i]);
    size_t n_deferred = t_defer_n;
    t_defer_n = 0;
    htri_os_pages_free(defer, bytes);
    if (n_deferred && g_agent.guard_opts.abort_on_error)
        agent_guard_abort("misuse error and --abort-on-error");
    return c.errors;
}

void htri_agent_guard_summary(void)
{
    uint64_t n_errors, n_contexts;
    htri_guard_error_counts(&n_errors, &n_contexts);
    uint8_t rec[3 + 3 * HTRI_VARINT_MAX];
    size_t n = htri_error_summary_encode(htri_agent_now(), n_errors, n_contexts, rec);
    (void)htri_agent_meta_record(rec[0], rec + 1, n - 1);
}

/* ---- init ---- */

int htri_agent_init_early(void)
{
    if (atomic_load_explicit(&g_agent.early_done, memory_order_acquire))
        return 0;
    agent_spin_lock(&g_agent.early_lock);
    if (atomic_load_explicit(&g_agent.early_done, memory_order_relaxed)) {
        agent_spin_unlock(&g_agent.early_lock);
        return 0;
    }
    g_agent.start_mono = htri_os_now_ns();
    g_agent.start_real = htri_os_realtime_ns();
    clock_start(1);
    g_agent.pid = htri_os_getpid();
    g_agent.ppid = (int)syscall(SYS_getppid);
    g_agent.depth = HTR_DEFAULT_DEPTH;
    /* The cached .eh_frame engine: DWARF rules like libunwind's (which it falls back to for
     * any frame its compact rules cannot express), 3-5x cheaper per capture
     * (bench/results/unwind.md). unwind=dwarf selects plain libunwind. */
    g_agent.unwind_mode = HTRI_UNWIND_CACHED;
    g_agent.freeres = 1;
    g_agent.record_events = 1;
    g_agent.guard_key = -1;
    g_agent.leak_check = 1;
    agent_read_environ();
    int rc = htri_table_init();
    if (rc == 0)
        rc = htri_stacks_init();
    if (rc == 0) {
        g_agent.mmaps = htri_os_pages_alloc(AGENT_MMAP_SLOTS * sizeof(agent_mmap));
        if (!g_agent.mmaps)
            rc = -ENOMEM;
        /* without it the totals say they are inexact (agent_region_add) */
        g_agent.tot.regions = htri_os_pages_alloc(AGENT_MMAP_SLOTS * sizeof(agent_region));
    }
    if (rc == 0 && htri_writer_init(&g_agent.w) < 0)
        rc = -ENOMEM;
    if (rc == 0 && htri_unwind_init(g_agent.unwind_mode) < 0 &&
        htri_unwind_init(HTRI_UNWIND_FP) < 0)
        rc = -EIO;
    if (rc < 0) {
        atomic_store(&g_agent.stopped, 1);
        htri_fdprintf(2, "heaptrail: cannot initialise the agent (%d): stopped recording\n", rc);
    } else if (g_agent.guard_on) {
        agent_guard_init();
    }
    atomic_store_explicit(&g_agent.early_done, 1, memory_order_release);
    agent_spin_unlock(&g_agent.early_lock);
    return rc;
}

int htri_agent_depth(void) { return g_agent.depth; }
int htri_agent_freeres(void) { return g_agent.freeres; }
int htri_agent_trace_children(void) { return g_agent.trace_children; }
const char *htri_agent_child_options_env(void) { return g_agent.child_env; }

int htri_agent_tracking(void)
{
    return atomic_load_explicit(&g_agent.early_done, memory_order_acquire) &&
           !atomic_load_explicit(&g_agent.stopped, memory_order_relaxed) &&
           !atomic_load_explicit(&g_agent.finished, memory_order_relaxed);
}
int htri_agent_recording(void) { return htri_agent_tracking() && g_agent.record_events; }
int htri_agent_active(void) { return htri_agent_tracking(); }

void htri_agent_stop(const char *why)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&g_agent.stopped, &expected, 1))
        return;
    htri_fdprintf(2, "heaptrail: %s: stopped recording\n", why);
    htri_fmt(g_agent.stop_msg, sizeof g_agent.stop_msg, "%s: stopped recording", why);
    atomic_store(&g_agent.stop_msg_pending, 1);
}

/* ---- threads and buffers ---- */

static void agent_thread_exit(void *arg);

static agent_thread *agent_thread_new(void)
{
    agent_spin_lock(&g_agent.reg_lock);
    if (g_agent.tot.n_recorders++ > 0) {
        atomic_fetch_or(&g_agent.tot.flags, HTRI_TOTALS_THREADS);
        atomic_store(&g_agent.tot_batched, 1);
    }
    if (!g_agent.thread_free_left) {
        g_agent.thread_free = htri_os_pages_alloc(AGENT_THREADS_PER_SLAB * sizeof(agent_thread));
        g_agent.thread_free_left = g_agent.thread_free ? AGENT_THREADS_PER_SLAB : 0;
    }
    /* a recycled tid must not name an earlier thread's blocks again: start above them all */
    uint64_t next_no = 0;
    for (agent_thread *o = g_agent.threads; o; o = o->next) {
        uint64_t n = __atomic_load_n(&o->next_no, __ATOMIC_RELAXED);
        if (n > next_no)
            next_no = n;
    }
    agent_thread *t = g_agent.thread_reuse;
    if (t) {
        g_agent.thread_reuse = t->next_free;
        __atomic_store_n(&t->next_no, next_no, __ATOMIC_RELAXED);
        agent_spin_lock(&t->lock);
        t->buf = NULL;
        t->end_pending = 0;
        t->dead = 0;
        t->free_listed = 0;
        __atomic_store_n(&t->tid, htri_os_gettid(), __ATOMIC_RELEASE);
        __atomic_store_n(&t->announced, 0, __ATOMIC_RELEASE);
        agent_spin_unlock(&t->lock);
        agent_spin_unlock(&g_agent.reg_lock);
        return t;
    }
    if (g_agent.thread_free_left) {
        t = g_agent.thread_free++;
        g_agent.thread_free_left--;
        t->tid = htri_os_gettid();
        t->next_no = next_no;
        t->next = g_agent.threads;
        __atomic_store_n(&g_agent.threads, t, __ATOMIC_RELEASE);
    }
    agent_spin_unlock(&g_agent.reg_lock);
    return t;
}

static inline agent_thread *agent_self(void)
{
    agent_thread *t = t_self;
    if (htri_likely(t != NULL))
        return t;
    t = agent_thread_new();
    if (!t) {
        htri_agent_stop("out of memory for thread state");
        return NULL;
    }
    t_self = t;
    /* Keys below PTHREAD_KEY_2NDLEVEL_SIZE need no allocation in setspecific. */
    if (g_agent.key_ok)
        pthread_setspecific(g_agent.key, t);
    return t;
}

/* The thread's ALLOC/INHERIT record took its number. Only the owner writes next_no; a new
 * thread reads every slot's (agent_thread_new), hence the relaxed atomic store. */
static inline void agent_no_taken(agent_thread *t)
{
    __atomic_store_n(&t->next_no, t->next_no + 1, __ATOMIC_RELAXED);
}

/* The reference the thread's next ALLOC/INHERIT record gets. Past 2^42 numbers (days of
 * nothing but allocating) the table could not hold it: recording stops, rather than lie. */
static inline uint64_t agent_ref(agent_thread *t)
{
    if (htri_unlikely(t->next_no > HTRI_BLOCK_NO_MASK)) {
        htri_agent_stop("too many allocations in one thread for the trace's block numbers");
        return 0;
    }
    return HTRI_BLOCK_REF((uint32_t)t->tid, t->next_no);
}

static agent_buf *agent_buf_get(void)
{
    agent_spin_lock(&g_agent.pool_lock);
    if (!g_agent.pool) {
        agent_buf *slab = htri_os_pages_alloc(AGENT_BUFS_PER_SLAB * sizeof(agent_buf));
        if (slab) {
            for (int i = 0; i < AGENT_BUFS_PER_SLAB; i++) {
                slab[i].next = g_agent.pool;
                g_agent.pool = &slab[i];
            }
        }
    }
    agent_buf *b = g_agent.pool;
    if (b)
        g_agent.pool = b->next;
    agent_spin_unlock(&g_agent.pool_lock);
    if (b) {
        b->next = NULL;
        b->n_records = 0;
        b->used = 0;
    }
    return b;
}

static void agent_buf_put(agent_buf *b)
{
    agent_spin_lock(&g_agent.pool_lock);
    b->next = g_agent.pool;
    g_agent.pool = b;
    agent_spin_unlock(&g_agent.pool_lock);
}

static void agent_enqueue(agent_buf *b)
{
    agent_spin_lock(&g_agent.queue_lock);
    b->next = NULL;
    if (g_agent.q_tail)
        g_agent.q_tail->next = b;
    else
        g_agent.q_head = b;
    g_agent.q_tail = b;
    g_agent.q_bytes += b->used;
    agent_spin_unlock(&g_agent.queue_lock);
}

/* Producer back-pressure: never drop, wait for the writer instead (unless it cannot run:
 * not started, stopped, or inside the loader lock the waiting thread may hold). */
static void agent_wait_queue(void)
{
    while (__atomic_load_n(&g_agent.q_bytes, __ATOMIC_RELAXED) > HTR_MAX_QUEUED_BYTES &&
           g_agent.writer_running && !atomic_load(&g_agent.writer_in_dl) &&
           htri_agent_recording()) {
        agent_futex_wake(&g_agent.wake);
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
}

static void agent_emit_inherit(void);

/* Room for `need` bytes in t's buffer (t locked). Returns the buffer or NULL. A full
 * buffer is handed to the writer; the caller must call agent_after_event() after unlock. */
static inline agent_buf *agent_room(agent_thread *t, size_t need, int *handed)
{
    agent_buf *b = t->buf;
    if (htri_likely(b && b->used + need <= HTR_TBUF_BYTES))
        return b;    /* (a fresh buffer also has room for the frame's first_no prefix) */
    if (b) {
        agent_enqueue(b);
        *handed = 1;
    }
    b = t->buf = agent_buf_get();
    if (!b) {
        atomic_fetch_add(&g_agent.dropped, 1);
        htri_agent_stop("out of memory for event buffers");
        return NULL;
    }
    b->tid = (uint32_t)t->tid;
    return b;
}

/* Stamps an event of thread `t` at `now`, returned clamped to the thread's last time: the
 * reader relies on each thread's times never going back (the clock may, by a hair, when it
 * switches from the kernel's to the calibrated TSC). A frame's first record also writes the
 * frame's first_no (the thread's next block number). */
static inline uint64_t agent_stamp(agent_thread *th, agent_buf *b, uint64_t t)
{
    if (htri_unlikely(t < th->t_last_event))
        t = th->t_last_event;
    th->t_last_event = t;
    if (b->n_records == 0) {
        b->t_first = t;
        b->used = (size_t)(htri_ev_put_start(b->data, &b->ev, b->tid, t, th->next_no) - b->data);
    }
    b->t_last = t;
    b->n_records++;
    return t;
}

static void agent_after_handoff(void)
{
    agent_futex_wake(&g_agent.wake);
    agent_wait_queue();
}

/* One event record on the thread's own buffer, t->lock held: room for it (handing a full
 * buffer to the writer sets *handed), then the time, stamped. NULL: no room, the event is
 * dropped (agent_room counts it). */
static inline __attribute__((always_inline)) agent_buf *
agent_event_room(agent_thread *t, size_t bytes, int *handed, uint64_t *now)
{
    agent_buf *b = agent_room(t, bytes, handed);
    if (b) {
        *now = agent_stamp(t, b, htri_agent_now());
    }
    return b;
}

/* Ends an event: releases t->lock, then lets the writer catch up if a buffer was handed over. */
static inline __attribute__((always_inline)) void agent_event_done(agent_thread *t, int handed)
{
    agent_spin_unlock(&t->lock);
    if (handed)
        agent_after_handoff();
}

/* ---- HEAP_TOTALS: the live heap and its peak, as the events recorded so far say ---- */

static HTRI_NOINLINE void agent_tot_peak(int64_t bytes, int64_t blocks, uint64_t now)
{
    agent_spin_lock(&g_agent.tot.lock);
    /* checked again: another thread may have stored a higher peak meanwhile */
    if (bytes > atomic_load_explicit(&g_agent.tot.peak_bytes, memory_order_relaxed)) {
        atomic_store_explicit(&g_agent.tot.peak_bytes, bytes, memory_order_relaxed);
        g_agent.tot.peak_blocks = blocks;
        g_agent.tot.peak_t = now;
    }
    agent_spin_unlock(&g_agent.tot.lock);
}

/* Adds changes to the shared live counters and checks the peak with the value they reach. */
static inline __attribute__((always_inline)) void agent_tot_add(int64_t d_bytes, int64_t d_blocks,
                                                                uint64_t now)
{
    int64_t bytes = atomic_fetch_add_explicit(&g_agent.tot.live_bytes, d_bytes,
                                              memory_order_relaxed) + d_bytes;
    int64_t blocks = atomic_fetch_add_explicit(&g_agent.tot.live_blocks, d_blocks,
                                               memory_order_relaxed) + d_blocks;
    if (d_bytes > 0 &&
        htri_unlikely(bytes > atomic_load_explicit(&g_agent.tot.peak_bytes, memory_order_relaxed)))
        agent_tot_peak(bytes, blocks, now);
}

/* Per-thread batches once two threads record: at most this many bytes either way or events
 * before a thread's changes reach the shared counters. */
#define AGENT_TOT_BATCH_BYTES (64 * 1024)
#define AGENT_TOT_BATCH_EVENTS 256

static HTRI_NOINLINE void agent_tot_flush(agent_thread *t, uint64_t now)
{
    int64_t d_bytes = t->tot_bytes, d_blocks = t->tot_blocks;
    t->tot_bytes = t->tot_blocks = 0;
    t->tot_events = 0;
    agent_tot_add(d_bytes, d_blocks, now);
}

/* One recorded heap event of thread t (t->lock held) changed the live heap by d_bytes and
 * d_blocks at `now`, its time in the trace. Blocks counted are those whose ALLOC or INHERIT
 * record got a number (a reference), as the replay counts them; one whose free the agent never
 * saw (its table entry replaced by a new block at its address) stays counted, as it stays
 * live in the replay (no FREE names its reference).
 * One thread recording: a relaxed add per counter, and a small lock only when the live bytes
 * pass the peak; the adds come in the order the replay meets the events, so the peak (bytes,
 * blocks, time) is exactly the replay's, which also checks after every ALLOC, strictly above.
 * Several threads: two threads adding to one cache line per event cost 7% of a 2-thread
 * churn, so each thread keeps its changes and adds them every AGENT_TOT_BATCH_BYTES net or
 * AGENT_TOT_BATCH_EVENTS events (and at the end): the live figures at END stay exact, the
 * peak is the highest the shared counter reached at those adds (docs/trace-format.md). */
static inline __attribute__((always_inline)) void agent_tot_note(agent_thread *t, int64_t d_bytes,
                                                                 int64_t d_blocks, uint64_t now)
{
    if (htri_likely(!atomic_load_explicit(&g_agent.tot_batched, memory_order_relaxed))) {
        agent_tot_add(d_bytes, d_blocks, now);
        return;
    }
    t->tot_bytes += d_bytes;
    t->tot_blocks += d_blocks;
    if (htri_unlikely(++t->tot_events >= AGENT_TOT_BATCH_EVENTS ||
                      t->tot_bytes > AGENT_TOT_BATCH_BYTES || t->tot_bytes < -AGENT_TOT_BATCH_BYTES))
        agent_tot_flush(t, now);
}

/* First event of a forked child: its trace starts with the blocks inherited from the parent. */
static inline void agent_check_inherit(void)
{
    if (htri_unlikely(atomic_load_explicit(&g_agent.inherit_pending, memory_order_acquire)))
        agent_emit_inherit();
}

static inline __attribute__((always_inline)) void
agent_on_alloc(uint8_t family, void *p, size_t size, uint16_t tag, const uintptr_t *pcs, int n_pcs)
{
    agent_check_inherit();
    uint32_t node;
    if (htri_unlikely(htri_stacks_intern(pcs, n_pcs, &node) < 0)) {
        htri_agent_stop("stack table full");
        return;
    }
    agent_thread *t = agent_self();
    /* the block's reference is the number its ALLOC record is about to get */
    htri_block blk = { (uintptr_t)p, size, node, family, 0, tag,
                       t && g_agent.record_events ? agent_ref(t) : 0 };
    if (htri_unlikely(htri_table_insert(&blk) < 0)) {
        htri_agent_stop("live-block table full");
        return;
    }
    if (!t)
        return;
    agent_spin_lock(&t->lock);
    t->n_allocs++;
    t->bytes_allocated += size;
    int handed = 0;
    if (g_agent.record_events) {
        uint64_t now;
        agent_buf *b = agent_event_room(t, HTRI_EVENT_MAX, &handed, &now);
        if (htri_likely(b != NULL)) {
            b->used = (size_t)(htri_ev_put_alloc(b->data + b->used, &b->ev,
                                                 (uint8_t)(HTRI_REC_ALLOC + family), now, size,
                                                 node) - b->data);
            agent_no_taken(t);
            agent_tot_note(t, (int64_t)size, 1, now);
        } else if (blk.ref) {
            blk.ref = 0;               /* no record, so nothing may name that number */
            htri_table_insert(&blk);
        }
    }
    agent_event_done(t, handed);
}

void htri_agent_on_alloc(uint8_t family, void *p, size_t size, const uintptr_t *pcs, int n_pcs)
{
    agent_on_alloc(family, p, size, 0, pcs, n_pcs);
}

void htri_agent_on_alloc_tag(uint8_t family, void *p, size_t size, uint16_t tag,
                             const uintptr_t *pcs, int n_pcs)
{
    agent_on_alloc(family, p, size, tag, pcs, n_pcs);
}

static inline __attribute__((always_inline)) int agent_on_free(uint8_t ffamily, void *p,
                                                                htri_block *out)
{
    agent_check_inherit();
    htri_block local;
    if (!out)
        out = &local;
    if (htri_table_remove((uintptr_t)p, out) < 0)
        return -ENOENT;  /* not ours to count: allocated before us, by us, or while stopped */
    agent_thread *t = agent_self();
    if (!t)
        return 0;
    agent_spin_lock(&t->lock);
    t->n_frees++;
    int handed = 0;
    if (g_agent.record_events) {
        uint64_t now;
        agent_buf *b = agent_event_room(t, HTRI_EVENT_MAX, &handed, &now);
        if (b) {
            b->used = (size_t)(htri_ev_put_free(b->data + b->used, &b->ev,
                                                (uint8_t)(HTRI_REC_FREE + ffamily), now,
                                                out->ref != 0, HTRI_BLOCK_REF_TID(out->ref),
                                                HTRI_BLOCK_REF_NO(out->ref)) - b->data);
            if (out->ref)     /* a block the totals counted (the replay knows it too) */
                agent_tot_note(t, -(int64_t)out->size, -1, now);
        }
    }
    agent_event_done(t, handed);
    return 0;
}

void htri_agent_on_free(uint8_t ffamily, void *p)
{
    agent_on_free(ffamily, p, NULL);
}

int htri_agent_on_free_block(uint8_t ffamily, void *p, htri_block *out)
{
    return agent_on_free(ffamily, p, out);
}

void htri_agent_on_realloc(const htri_block *old, void *new_p, size_t size, const uintptr_t *pcs,
                           int n_pcs)
{
    agent_check_inherit();
    /* hooks.c removed the old block from the table before the real realloc (so no other
     * thread's new block at a recycled address is lost); a FREE is due iff it was there. */
    int freed = old != NULL;
    uint32_t node = 0;
    agent_thread *t = agent_self();
    htri_block blk = { (uintptr_t)new_p, size, 0, HTRI_FAM_REALLOC, 0, 0,
                       t && g_agent.record_events ? agent_ref(t) : 0 };
    if (new_p) {
        if (htri_unlikely(htri_stacks_intern(pcs, n_pcs, &node) < 0)) {
            htri_agent_stop("stack table full");
            return;
        }
        blk.node = node;
        if (htri_unlikely(htri_table_insert(&blk) < 0)) {
            htri_agent_stop("live-block table full");
            return;
        }
    }
    if (!t)
        return;
    agent_spin_lock(&t->lock);
    int handed = 0;
    uint64_t now = htri_agent_now();
    if (freed)
        t->n_frees++;
    if (new_p) {
        t->n_allocs++;
        t->bytes_allocated += size;
    }
    if (g_agent.record_events) {
        agent_buf *b = agent_room(t, 2 * HTRI_EVENT_MAX, &handed);
        if (b) {
            if (freed) {
                now = agent_stamp(t, b, now);
                b->used = (size_t)(htri_ev_put_free(b->data + b->used, &b->ev,
                                                    HTRI_REC_FREE + HTRI_FFAM_REALLOC, now,
                                                    old->ref != 0, HTRI_BLOCK_REF_TID(old->ref),
                                                    HTRI_BLOCK_REF_NO(old->ref)) - b->data);
            }
            if (new_p) {
                now = agent_stamp(t, b, now);
                b->used = (size_t)(htri_ev_put_alloc(b->data + b->used, &b->ev,
                                                     HTRI_REC_ALLOC + HTRI_FAM_REALLOC, now,
                                                     size, node) - b->data);
                agent_no_taken(t);
            }
            /* one add for the pair: the live heap between them is never the peak */
            int old_counted = freed && old->ref;
            agent_tot_note(t, (new_p ? (int64_t)size : 0) - (old_counted ? (int64_t)old->size : 0),
                           (new_p != NULL) - old_counted, now);
        } else if (new_p && blk.ref) {
            blk.ref = 0;               /* no record, so nothing may name that number */
            htri_table_insert(&blk);
        }
    }
    agent_event_done(t, handed);
}

void htri_agent_on_failed(uint8_t family, size_t size, const uintptr_t *pcs, int n_pcs)
{
    if (!g_agent.record_events)
        return;
    agent_check_inherit();
    uint32_t node;
    if (htri_stacks_intern(pcs, n_pcs, &node) < 0)
        node = 0;
    agent_thread *t = agent_self();
    if (!t)
        return;
    agent_spin_lock(&t->lock);
    int handed = 0;
    uint64_t now;
    agent_buf *b = agent_event_room(t, HTRI_EVENT_MAX, &handed, &now);
    if (b)
        b->used = (size_t)(htri_ev_put_failed(b->data + b->used, &b->ev, now, size, node, family) -
                           b->data);
    agent_event_done(t, handed);
}

/* HEAP_TOTALS' mmap figures are those the replay computes from the MMAP and MUNMAP records
 * (analyze.c, analyze_region_add/remove: the same rules, so a mapping over one of ours
 * replaces it and an unmap cuts every region it touches). Under mmap_lock. A region set out
 * of room marks the totals inexact, and readers replay. */
static void agent_region_add(uint64_t start, uint64_t len)
{
    if (!g_agent.tot.regions || g_agent.tot.n_regions == AGENT_MMAP_SLOTS) {
        atomic_fetch_or(&g_agent.tot.flags, HTRI_TOTALS_INEXACT);
        return;
    }
    uint64_t end = start + len < start ? UINT64_MAX : start + len;
    g_agent.tot.regions[g_agent.tot.n_regions++] = (agent_region){ start, end };
}

static uint64_t agent_region_remove(uint64_t start, uint64_t len)
{
    agent_region *rg = g_agent.tot.regions;
    uint64_t end = start + len < start ? UINT64_MAX : start + len, freed = 0;
    for (size_t i = 0; rg && i < g_agent.tot.n_regions; i++) {
        agent_region *g = &rg[i];
        if (g->end <= start || g->start >= end)
            continue;
        uint64_t lo = g->start > start ? g->start : start, hi = g->end < end ? g->end : end;
        freed += hi - lo;
        if (g->start < lo && g->end > hi) {
            uint64_t tail_end = g->end;
            g->end = lo;
            agent_region_add(hi, tail_end - hi);
        } else if (g->start < lo) {
            g->end = lo;
        } else if (g->end > hi) {
            g->start = hi;
        } else {
            rg[i--] = rg[--g_agent.tot.n_regions];
        }
    }
    return freed;
}

/* Anonymous mappings we reported, so munmap reports only ranges we saw mapped. */
static void agent_mmap_note(uintptr_t addr, size_t len, int add, size_t *out_len)
{
    agent_spin_lock(&g_agent.mmap_lock);
    int free_slot = -1;
    *out_len = 0;
    for (int i = 0; i < AGENT_MMAP_SLOTS; i++) {
        agent_mmap *m = &g_agent.mmaps[i];
        if (!m->addr) {
            if (free_slot < 0)
                free_slot = i;
            continue;
        }
        if (!add && m->addr == addr) {
            *out_len = len < m->len ? len : m->len;
            if (len < m->len) {
                m->addr += len;
                m->len -= len;
            } else {
                m->addr = 0;
            }
            break;
        }
    }
    if (add && free_slot >= 0) {
        g_agent.mmaps[free_slot] = (agent_mmap){ addr, len };
        *out_len = len;
    }
    if (*out_len) {     /* an MMAP or MUNMAP record follows */
        uint64_t freed = agent_region_remove(addr, *out_len);
        if (add) {
            agent_region_add(addr, len);
            g_agent.tot.mmap_count++;
            g_agent.tot.mmap_bytes += len;
            g_agent.tot.mmap_live += len - freed;
            if (g_agent.tot.mmap_live > g_agent.tot.mmap_peak)
                g_agent.tot.mmap_peak = g_agent.tot.mmap_live;
        } else {
            g_agent.tot.mmap_live -= freed;
        }
    }
    agent_spin_unlock(&g_agent.mmap_lock);
}

void htri_agent_on_mmap(void *p, size_t len, const uintptr_t *pcs, int n_pcs)
{
    if (!g_agent.record_events)
        return;
    agent_check_inherit();
    size_t noted;
    agent_mmap_note((uintptr_t)p, len, 1, &noted);
    if (!noted)
        return;
    uint32_t node;
    if (htri_stacks_intern(pcs, n_pcs, &node) < 0)
        node = 0;
    agent_thread *t = agent_self();
    if (!t)
        return;
    agent_spin_lock(&t->lock);
    int handed = 0;
    uint64_t now;
    agent_buf *b = agent_event_room(t, HTRI_EVENT_MAX, &handed, &now);
    if (b)
        b->used = (size_t)(htri_ev_put_mmap(b->data + b->used, &b->ev, now, len, node,
                                            (uintptr_t)p) - b->data);
    agent_event_done(t, handed);
}

void htri_agent_on_munmap(void *p, size_t len)
{
    if (!g_agent.record_events)
        return;
    size_t noted;
    agent_mmap_note((uintptr_t)p, len, 0, &noted);
    if (!noted)
        return;
    agent_thread *t = agent_self();
    if (!t)
        return;
    agent_spin_lock(&t->lock);
    int handed = 0;
    uint64_t now;
    agent_buf *b = agent_event_room(t, HTRI_EVENT_MAX, &handed, &now);
    if (b)
        b->used = (size_t)(htri_ev_put_munmap(b->data + b->used, &b->ev, now, noted,
                                              (uintptr_t)p) - b->data);
    agent_event_done(t, handed);
}

/* Key destructor: the thread is exiting. Its partial buffer goes to the writer and a
 * THREAD_END is due. If it records again (later destructors allocate), agent_self() still
 * finds its state through t_self and the writer's idle flush picks the events up. */
static void agent_thread_exit(void *arg)
{
    agent_thread *t = arg;
    if (!t)
        return;
    agent_spin_lock(&t->lock);
    agent_buf *b = t->buf;
    t->buf = NULL;
    if (b && b->n_records)
        agent_enqueue(b);
    else if (b)
        agent_buf_put(b);
    t->t_end = htri_agent_now();
    __atomic_store_n(&t->end_pending, 1, __ATOMIC_RELEASE);
    agent_spin_unlock(&t->lock);
    agent_futex_wake(&g_agent.wake);
}

/* ---- INHERIT records (forked child, first event) ---- */

typedef struct agent_inherit_ctx {
    agent_thread *t;
    uint64_t now;
    int64_t bytes, blocks;    /* written so far: the child's live heap */
    int64_t peak_bytes, peak_blocks;   /* and its peak, as a replay of them finds it */
    uint64_t peak_t;
} agent_inherit_ctx;

/* One INHERIT record; the block takes the child's thread's next number (its entry is
 * renumbered: the parent's references mean nothing in the child's trace). */
static int agent_inherit_one(void *user, htri_block *blk)
{
    agent_inherit_ctx *c = user;
    agent_thread *t = c->t;
    int handed = 0;
    agent_buf *b = agent_room(t, HTRI_EVENT_MAX, &handed);
    if (!b) {
        blk->ref = 0;
        return 0;       /* the rest get no record either: none may keep a parent's ref */
    }
    c->now = agent_stamp(t, b, c->now);
    blk->ref = agent_ref(t);
    b->used = (size_t)(htri_ev_put_alloc(b->data + b->used, &b->ev,
                                         (uint8_t)(HTRI_REC_INHERIT + blk->family), c->now,
                                         blk->size, blk->node) - b->data);
    agent_no_taken(t);
    c->bytes += (int64_t)blk->size;
    c->blocks++;
    if (c->bytes > c->peak_bytes) {
        c->peak_bytes = c->bytes;
        c->peak_blocks = c->blocks;
        c->peak_t = c->now;
    }
    return 0;
}

/* inherit_pending: 1 due, 2 being written, 0 done. A thread that finds them being written
 * waits, so no block of its own is taken for an inherited one (and renumbered), and its event
 * follows them in the totals. */
static void agent_emit_inherit(void)
{
    int expected = 1;
    if (!atomic_compare_exchange_strong(&g_agent.inherit_pending, &expected, 2)) {
        while (atomic_load_explicit(&g_agent.inherit_pending, memory_order_acquire) == 2)
            sched_yield();
        return;
    }
    agent_thread *t = agent_self();
    if (!t) {
        atomic_store_explicit(&g_agent.inherit_pending, 0, memory_order_release);
        return;
    }
    if (g_agent.record_events) {
        agent_inherit_ctx c = { t, g_agent.fork_t, 0, 0, 0, 0, 0 };
        htri_table_lock_all();
        agent_spin_lock(&t->lock);
        htri_table_foreach_mut(agent_inherit_one, &c);
        /* The child's heap starts as the INHERIT records say (a parent thread caught between
         * its table update and its add is gone), and so does its peak, at the fork. No other
         * thread records yet: this runs before the child's first event. */
        atomic_store(&g_agent.tot.live_bytes, c.bytes);
        atomic_store(&g_agent.tot.live_blocks, c.blocks);
        atomic_store(&g_agent.tot.peak_bytes, c.peak_bytes);
        g_agent.tot.peak_blocks = c.peak_blocks;
        g_agent.tot.peak_t = c.peak_t;
        agent_spin_unlock(&t->lock);
        htri_table_unlock_all();
    }
    atomic_store_explicit(&g_agent.inherit_pending, 0, memory_order_release);
    g_agent.file_wanted = 1;
    agent_futex_wake(&g_agent.wake);
}

/* ---- the writer ---- */

static void agent_append_session(void)
{
    if (!g_agent.session[0])
        return;
    char line[AGENT_PATH_MAX + 32];
    size_t n = htri_fmt(line, sizeof line, "%d\t%s\n", g_agent.pid, g_agent.path);
    if (n >= sizeof line)
        return;
    int fd = open(g_agent.session, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)htri_os_write_all(fd, line, n);
    close(fd);
}

/* Directory for default names: that of `out`, else the cwd; absolute so the session file
 * names a path the CLI can open from anywhere. */
static void agent_default_dir(char *dir, size_t cap)
{
    const char *slash = strrchr(g_agent.out, '/');
    if (g_agent.out[0] && slash) {
        size_t n = (size_t)(slash - g_agent.out);
        if (g_agent.out[0] != '/') {
            if (!getcwd(dir, cap))
                dir[0] = 0;
            size_t d = strlen(dir);
            htri_fmt(dir + d, cap - d, "/%.*s", (int)n, g_agent.out);
        } else {
            htri_fmt(dir, cap, "%.*s", (int)(n ? n : 1), g_agent.out);
        }
        return;
    }
    if (!getcwd(dir, cap))
        agent_strlcpy(dir, ".", cap);
}

static int agent_open_file(void)
{
    int fd = -1;
    int is_main = g_agent.out[0] && !g_agent.forked &&
                  (g_agent.main_pid == 0 || g_agent.main_pid == g_agent.pid);
    if (is_main) {
        agent_strlcpy(g_agent.path, g_agent.out, sizeof g_agent.path);
        fd = open(g_agent.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    } else {
        char dir[AGENT_PATH_MAX];
        agent_default_dir(dir, sizeof dir);
        const char *prog = program_invocation_short_name ? program_invocation_short_name : "prog";
        for (int k = 0; k < 100 && fd < 0; k++) {
            if (k == 0)
                htri_fmt(g_agent.path, sizeof g_agent.path, "%s/heaptrail.%s.%d.htr", dir, prog,
                         g_agent.pid);
            else
                htri_fmt(g_agent.path, sizeof g_agent.path, "%s/heaptrail.%s.%d.%d.htr", dir,
                         prog, g_agent.pid, k);
            fd = open(g_agent.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd < 0 && errno != EEXIST)
                break;
        }
    }
    if (fd < 0) {
        char why[AGENT_PATH_MAX + 64];
        htri_fmt(why, sizeof why, "cannot create %s (errno %d)", g_agent.path, errno);
        g_agent.file_state = AGENT_FILE_FAILED;
        htri_agent_stop(why);
        return -1;
    }
    /* Out of the way of programs that close or reuse low descriptors. */
    int high = fcntl(fd, F_DUPFD_CLOEXEC, AGENT_FD_MIN);
    if (high >= 0) {
        close(fd);
        fd = high;
    }
    struct stat st;
    if (fstat(fd, &st) == 0) {
        g_agent.fd_dev = st.st_dev;
        g_agent.fd_ino = st.st_ino;
    }
    g_agent.fd = fd;
    g_agent.file_state = AGENT_FILE_OPEN;
    htri_file_header h = {
        .version_major = HTRI_TRACE_VERSION, .version_minor = 0,
        .pid = (uint32_t)g_agent.pid, .ppid = (uint32_t)g_agent.ppid,
        .start_realtime_ns = g_agent.start_real, .start_mono_ns = g_agent.start_mono,
        .flags = (g_agent.forked ? HTRI_FILE_FORKED : 0) |
                 (g_agent.record_events ? 0 : HTRI_FILE_LEAK_ONLY),
    };
    g_agent.w.error = 0;
    g_agent.w.seq = 0;
    g_agent.w.bytes_written = 0;
    htri_writer_start(&g_agent.w, fd, &h);
    agent_append_session();

    /* INFO records. */
    htri_recbuf *m = &g_agent.meta;
    char buf[8192];
    ssize_t n = htri_os_read_small_file("/proc/self/cmdline", buf, sizeof buf);
    if (n > 0) {
        while (n > 0 && buf[n - 1] == 0)
            n--;
        htri_rec_info(m, "cmdline", buf, (size_t)n);
    }
    int len = htri_os_exe_path(buf, sizeof buf);
    if (len > 0)
        htri_rec_info(m, "exe", buf, (size_t)len);
    htri_rec_info(m, "options", g_agent.options_raw, strlen(g_agent.options_raw));
    static const char *const modes[] = { "dwarf", "cached", "fp" };
    const char *mode = modes[g_agent.unwind_mode];
    htri_rec_info(m, "unwind", mode, strlen(mode));
    len = (int)htri_fmt(buf, sizeof buf, "%d", g_agent.depth);
    htri_rec_info(m, "depth", buf, (size_t)len);
    n = htri_os_read_small_file("/proc/sys/kernel/hostname", buf, sizeof buf);
    if (n > 0) {
        while (n > 0 && buf[n - 1] == '\n')
            n--;
        htri_rec_info(m, "hostname", buf, (size_t)n);
    }
    if (g_agent.forked) {
        htri_rec_fork_base(m, g_agent.fork_t, (uint32_t)g_agent.parent_pid, g_agent.fork_allocs,
                           g_agent.fork_frees, g_agent.fork_bytes);
    }
    return 0;
}

/* The writer failed (disk full...): say so once and stop; the program runs on. */
static void agent_writer_failed(void)
{
    if (g_agent.file_state != AGENT_FILE_OPEN)
        return;
    char why[AGENT_PATH_MAX + 64];
    htri_fmt(why, sizeof why, "cannot write %s (errno %d)", g_agent.path, -g_agent.w.error);
    g_agent.file_state = AGENT_FILE_FAILED;
    htri_agent_stop(why);
}

static void agent_write_meta(void)
{
    if (g_agent.meta.n_records && g_agent.file_state == AGENT_FILE_OPEN) {
        if (htri_writer_flush_recbuf(&g_agent.w, &g_agent.meta, HTRI_FRAME_META, 0) < 0)
            agent_writer_failed();
    }
    htri_recbuf_reset(&g_agent.meta);
}

/* Writes every published node the file does not have yet, after the modules they need. */
static void agent_write_nodes(uint64_t now)
{
    uint32_t pub = htri_stacks_published();
    const uint32_t *parent = htri_stacks_parents();
    const uintptr_t *pc = htri_stacks_pcs();
    int rescan = atomic_exchange(&g_agent.modules_dirty, 0) || g_agent.nodes_written == 0;
    for (uint32_t id = g_agent.nodes_written ? g_agent.nodes_written : 1; id < pub && !rescan; id++)
        if (!htri_modules_contains(pc[id]))
            rescan = 1;
    if (rescan) {
        atomic_store(&g_agent.writer_in_dl, 1);
        htri_modules_scan(&g_agent.meta, now);
        atomic_store(&g_agent.writer_in_dl, 0);
    }
    if (g_agent.nodes_written == 0)
        g_agent.nodes_written = 1;  /* node 0, the empty stack, is implicit */
    while (g_agent.nodes_written < pub) {
        uint32_t first = g_agent.nodes_written;
        uint32_t count = pub - first;
        if (count > 65536)
            count = 65536;
        htri_rec_nodes(&g_agent.meta, first, count, parent + first, pc + first);
        g_agent.nodes_written += count;
        if (g_agent.meta.len > (4u << 20))
            agent_write_meta();
    }
}

/* One pass of the writer: steal partial buffers, then META (RSS, modules, nodes, threads),
 * then EVENTS frames, then THREAD_END. Called with wlock held. `final`: also take buffers
 * of threads we may only try-lock (bounded) and always sample. */
/* ---- gathering a busy thread's buffers into bigger EVENTS frames ----
 * The writer takes a thread's partial buffer every pass (10 ms), so a busy thread's frames
 * were ~40 KB raw, each compressed alone: zstd never saw the longer repeats of a real
 * program (cc1's trace, re-compressed 16 frames at a time offline, shrank 4.67 -> 1.96 MB).
 * A thread's buffers are appended to one frame (htri_ev_append re-bases the joins) until it
 * holds AGENT_GATHER_BYTES or AGENT_GATHER_PASSES passes went by; a thread that handed in
 * nothing this pass has its frame written at once, so an idle program's events reach the
 * file as soon as before, and a killed busy one loses at most half a second more. Writer
 * thread only (the fork child starts empty). */
#define AGENT_GATHER_SLOTS 64
#define AGENT_GATHER_BYTES (512u * 1024)
#define AGENT_GATHER_PASSES 50

typedef struct agent_gather {
    uint32_t tid;
    int used, got;
    unsigned passes;
    uint64_t next_no;       /* the first_no the thread's next buffer must have to join */
    uint64_t addr;          /* the frame's last MMAP/MUNMAP address */
    htri_recbuf rb;
} agent_gather;

static agent_gather g_gather[AGENT_GATHER_SLOTS];

static void agent_gather_flush(agent_gather *g)
{
    if (g->used && g->rb.n_records && g_agent.file_state == AGENT_FILE_OPEN &&
        htri_writer_frame(&g_agent.w, HTRI_FRAME_EVENTS, g->tid, g->rb.n_records, g->rb.t_first,
                          g->rb.t_last, g->rb.data, g->rb.len) < 0)
        agent_writer_failed();
    htri_recbuf_reset(&g->rb);
    g->used = g->got = 0;
    g->passes = 0;
}

/* Takes buffer b into its thread's frame. Returns 1 when the caller must write b as a frame
 * of its own (no slot, no memory, or b does not parse): anything of its thread gathered
 * before has been written by then, so the thread's frames stay in order. */
static int agent_gather_put(const agent_buf *b)
{
    agent_gather *g = NULL, *spare = NULL;
    for (int i = 0; i < AGENT_GATHER_SLOTS; i++) {
        if (g_gather[i].used && g_gather[i].tid == b->tid) {
            g = &g_gather[i];
            break;
        }
        if (!g_gather[i].used && !spare)
            spare = &g_gather[i];
    }
    const uint8_t *q = b->data;
    uint64_t first_no;
    if (!b->n_records || htri_varint_get(&q, b->data + b->used, &first_no) < 0) {
        if (g)
            agent_gather_flush(g);
        return 1;
    }
    /* a number skipped (a record dropped) or a frame full: the frame so far is done */
    if (g && (first_no != g->next_no || g->rb.len + b->used > 2 * AGENT_GATHER_BYTES)) {
        agent_gather_flush(g);
        spare = g;
        g = NULL;
    }
    if (!g) {
        if (!spare || htri_recbuf_room(&spare->rb, b->used) < 0) {
            if (spare)
                htri_recbuf_reset(&spare->rb);
            return 1;
        }
        g = spare;
        memcpy(g->rb.data, b->data, b->used);
        g->rb.len = b->used;
        g->rb.n_records = b->n_records;
        g->rb.t_first = b->t_first;
        g->rb.t_last = b->t_last;
        g->addr = b->ev.addr_prev;
        g->tid = b->tid;
        g->used = 1;
        g->passes = 0;
    } else if (htri_ev_append(&g->rb, &g->addr, b->data, b->used, b->n_records, b->t_first,
                              b->t_last) < 0) {
        agent_gather_flush(g);
        return 1;
    }
    g->next_no = b->ev.next_no;
    g->got = 1;
    return 0;
}

/* End of a pass: writes the frames that are full, old, idle, of an ending thread, or all of
 * them on the final pass. */
static void agent_gather_end_pass(int final, agent_thread *const *ending, int n_ending)
{
    for (int i = 0; i < AGENT_GATHER_SLOTS; i++) {
        agent_gather *g = &g_gather[i];
        if (!g->used)
            continue;
        int ends = 0;
        for (int e = 0; e < n_ending; e++)
            ends |= (uint32_t)ending[e]->tid == g->tid;
        if (final || ends || !g->got || g->rb.len >= AGENT_GATHER_BYTES ||
            ++g->passes >= AGENT_GATHER_PASSES)
            agent_gather_flush(g);
        else
            g->got = 0;
    }
}

/* Fork child: what was gathered belongs to the parent's trace. */
static void agent_gather_drop(void)
{
    for (int i = 0; i < AGENT_GATHER_SLOTS; i++) {
        htri_recbuf_reset(&g_gather[i].rb);
        g_gather[i].used = g_gather[i].got = 0;
        g_gather[i].passes = 0;
    }
}

static void agent_writer_pass(int final, long spin_bound)
{
    uint64_t now = htri_agent_now();
    if (g_agent.file_state == AGENT_FILE_NONE) {
        if (!g_agent.file_wanted)
            return;
        if (agent_open_file() < 0)
            return;
    }
    if (g_agent.file_state != AGENT_FILE_OPEN)
        return;
    struct stat st;
    if (fstat(g_agent.fd, &st) != 0 || st.st_dev != g_agent.fd_dev || st.st_ino != g_agent.fd_ino) {
        g_agent.file_state = AGENT_FILE_FAILED;
        g_agent.fd = -1;
        htri_agent_stop("the program closed the trace file's descriptor");
        return;
    }

    /* Threads ending: noted before grabbing the queue, which then holds their last buffer. */
    agent_thread *ending[64];
    int n_ending = 0;
    agent_thread *head = __atomic_load_n(&g_agent.threads, __ATOMIC_ACQUIRE);
    for (agent_thread *t = head; t; t = t->next) {
        int got = spin_bound ? agent_spin_lock_bounded(&t->lock, spin_bound)
                             : agent_spin_trylock(&t->lock);
        if (!got) {
            if (final)   /* its events will miss the trace: the totals would not match it */
                g_agent.tot.final_missed = 1;
            continue;
        }
        if (t->buf && t->buf->n_records) {
            agent_enqueue(t->buf);
            t->buf = NULL;
        }
        if (final && (t->tot_bytes || t->tot_blocks)) {
            /* its last batch of HEAP_TOTALS changes; agent_write_totals checks the peak */
            atomic_fetch_add(&g_agent.tot.live_bytes, t->tot_bytes);
            atomic_fetch_add(&g_agent.tot.live_blocks, t->tot_blocks);
            t->tot_bytes = t->tot_blocks = 0;
            t->tot_events = 0;
        }
        if (__atomic_load_n(&t->end_pending, __ATOMIC_ACQUIRE) && n_ending < 64) {
            t->end_pending = 0;
            t->dead = 1;
            ending[n_ending++] = t;
        }
        agent_spin_unlock(&t->lock);
    }
    agent_spin_lock(&g_agent.queue_lock);
    agent_buf *q = g_agent.q_head;
    g_agent.q_head = g_agent.q_tail = NULL;
    agent_spin_unlock(&g_agent.queue_lock);

    /* META. */
    if (final || now - g_agent.t_rss >= HTR_FLUSH_INTERVAL_MS * 1000000ull) {
        uint64_t rss = htri_os_rss_bytes(&g_agent.rss_fd);
        if (rss > g_agent.rss_peak)
            g_agent.rss_peak = rss;
        htri_rec_rss(&g_agent.meta, now, rss);
        g_agent.t_rss = now;
        clock_calibrate();
    }
    if (atomic_exchange(&g_agent.stop_msg_pending, 0))
        htri_rec_message(&g_agent.meta, now, HTRI_MSG_ERROR, g_agent.stop_msg,
                         strlen(g_agent.stop_msg));
    agent_write_nodes(now);
    /* The list is read again after the queue was taken: a thread registers before its first
     * buffer can be queued, so every thread with frames in q is announced before them. (The
     * list read at the top can miss a thread born in between: a frame before its THREAD.) */
    head = __atomic_load_n(&g_agent.threads, __ATOMIC_ACQUIRE);
    for (agent_thread *t = head; t; t = t->next) {
        if (t->announced)
            continue;
        char name[64];
        int len = htri_os_thread_name(t->tid, name, sizeof name);
        if (len < 0)
            len = 0;
        htri_rec_thread(&g_agent.meta, (uint32_t)t->tid, now, name, (size_t)len);
        t->announced = 1;
    }
    /* Leak and error records may name stack nodes: they go after this pass's NODES. */
    if (g_agent.extra.n_records && htri_recbuf_room(&g_agent.meta, g_agent.extra.len) == 0) {
        memcpy(g_agent.meta.data + g_agent.meta.len, g_agent.extra.data, g_agent.extra.len);
        g_agent.meta.len += g_agent.extra.len;
        g_agent.meta.n_records += g_agent.extra.n_records;
        if (g_agent.extra.timed) {
            if (!g_agent.meta.timed || g_agent.extra.t_last > g_agent.meta.t_last)
                g_agent.meta.t_last = g_agent.extra.t_last;
            if (!g_agent.meta.timed || g_agent.extra.t_first < g_agent.meta.t_first)
                g_agent.meta.t_first = g_agent.extra.t_first;
            g_agent.meta.timed = 1;
        }
    }
    htri_recbuf_reset(&g_agent.extra);
    agent_write_meta();

    /* EVENTS. */
    while (q) {
        agent_buf *b = q;
        q = q->next;
        if (g_agent.file_state == AGENT_FILE_OPEN && agent_gather_put(b) &&
            htri_writer_frame(&g_agent.w, HTRI_FRAME_EVENTS, b->tid, b->n_records, b->t_first,
                              b->t_last, b->data, b->used) < 0)
            agent_writer_failed();
        __atomic_fetch_sub(&g_agent.q_bytes, b->used, __ATOMIC_RELAXED);
        agent_buf_put(b);
    }

    agent_gather_end_pass(final, ending, n_ending);

    for (int i = 0; i < n_ending; i++) {
        if (ending[i]->announced)
            htri_rec_thread_end(&g_agent.meta, (uint32_t)ending[i]->tid, ending[i]->t_end);
    }
    agent_write_meta();

    /* States of threads the kernel no longer knows go back for reuse (their THREAD_END is
     * written, their last buffer taken). A reused tid still answers: we just wait. */
    for (agent_thread *t = head; t; t = t->next) {
        if (!t->dead || t->free_listed || t->buf || t->end_pending)
            continue;
        if (syscall(SYS_tgkill, g_agent.pid, t->tid, 0) == 0 || errno != ESRCH)
            continue;
        agent_spin_lock(&g_agent.reg_lock);
        t->free_listed = 1;
        t->next_free = g_agent.thread_reuse;
        g_agent.thread_reuse = t;
        agent_spin_unlock(&g_agent.reg_lock);
    }
}

static void *agent_writer_main(void *arg)
{
    (void)arg;
    htri_agent_guard = 1 << 20;
    /* Our stack holds copies of block addresses being encoded: never leak-scan roots. */
    (void)htri_scan_ignore_self();
    /* Program signals must reach program threads, never run here (our guard is set for
     * good); the real-time range stays open for the leak scan's stop-the-world signal. */
    sigset_t mask;
    sigfillset(&mask);
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        sigdelset(&mask, sig);
    sigdelset(&mask, SIGSEGV);
    sigdelset(&mask, SIGBUS);
    sigdelset(&mask, SIGILL);
    sigdelset(&mask, SIGFPE);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    while (!atomic_load(&g_agent.writer_stop)) {
        uint32_t seen = atomic_load(&g_agent.wake);
        struct timespec ts = { 0, HTR_FLUSH_INTERVAL_MS * 1000000L };
        syscall(SYS_futex, &g_agent.wake, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
        if (atomic_load(&g_agent.writer_stop))
            break;
        /* --leak-check-signal: the handler only raised the flag; the check stops the world
         * and takes our world lock itself, so it runs here, outside wlock. */
        if (atomic_exchange(&g_agent.leak_signal_pending, 0) && htri_agent_tracking())
            (void)htri_scan_process(HTRI_LEAK_ON_SIGNAL, 0, NULL);
        agent_spin_lock(&g_agent.wlock);
        if (!atomic_load(&g_agent.finished) && !atomic_load(&g_agent.stopped))
            agent_writer_pass(0, 0);
        agent_spin_unlock(&g_agent.wlock);
    }
    return NULL;
}

static void agent_start_writer(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    atomic_store(&g_agent.writer_stop, 0);
    g_agent.writer_running = pthread_create(&g_agent.writer, &attr, agent_writer_main, NULL) == 0;
    pthread_attr_destroy(&attr);
}

/* ---- META records from other parts (leak scan) ---- */

int htri_agent_meta_record(uint8_t tag, const void *body, size_t len)
{
    if (tag < 0x40 || tag > 0x7f)
        return -EINVAL;
    if (atomic_load(&g_agent.stopped) || atomic_load(&g_agent.finished))
        return -EIO;
    agent_spin_lock(&g_agent.wlock);
    int rc = htri_rec_raw(&g_agent.extra, tag, body, len, htri_agent_now());
    agent_spin_unlock(&g_agent.wlock);
    return rc;
}

/* ---- lifecycle ---- */

static uint64_t agent_sum(int which)
{
    uint64_t s = 0;
    for (agent_thread *t = __atomic_load_n(&g_agent.threads, __ATOMIC_ACQUIRE); t; t = t->next)
        s += which == 0 ? t->n_allocs : which == 1 ? t->n_frees : t->bytes_allocated;
    return s;
}

void htri_agent_note_exit_status(int status)
{
    /* A vfork child shares our memory: its exit status is not ours. */
    if (!g_agent.exit_status_known && htri_os_getpid() == g_agent.pid) {
        g_agent.exit_status = status;
        g_agent.exit_status_known = 1;
    }
}

/* HEAP_TOTALS, into the META frame that ends with END (wlock held, final pass done). Only when
 * the trace holds every event the totals count: recording events, never stopped, nothing
 * dropped, every thread's last buffer taken; otherwise readers replay the events. */
static void agent_write_totals(long spin_bound)
{
    if (!g_agent.record_events || atomic_load(&g_agent.stopped) ||
        atomic_load(&g_agent.dropped) || g_agent.tot.final_missed)
        return;
    /* bounded: a fatal signal may have come while this thread stored a peak */
    if (!(spin_bound ? agent_spin_lock_bounded(&g_agent.tot.lock, spin_bound)
                     : (agent_spin_lock(&g_agent.tot.lock), 1)))
        return;
    if (!(spin_bound ? agent_spin_lock_bounded(&g_agent.mmap_lock, spin_bound)
                     : (agent_spin_lock(&g_agent.mmap_lock), 1))) {
        agent_spin_unlock(&g_agent.tot.lock);
        return;
    }
    int64_t bytes = atomic_load(&g_agent.tot.live_bytes);
    int64_t blocks = atomic_load(&g_agent.tot.live_blocks);
    uint64_t now = htri_agent_now();
    if (bytes > atomic_load(&g_agent.tot.peak_bytes)) {
        /* the threads' last batches (final writer pass) took the heap above the peak */
        atomic_store(&g_agent.tot.peak_bytes, bytes);
        g_agent.tot.peak_blocks = blocks;
        g_agent.tot.peak_t = now;
    }
    htri_totals_rec r = {
        .t = now,
        .flags = atomic_load(&g_agent.tot.flags),
        .live_bytes = bytes > 0 ? (uint64_t)bytes : 0,
        .live_blocks = blocks > 0 ? (uint64_t)blocks : 0,
        .peak_bytes = (uint64_t)atomic_load(&g_agent.tot.peak_bytes),
        .peak_blocks = g_agent.tot.peak_blocks > 0 ? (uint64_t)g_agent.tot.peak_blocks : 0,
        .peak_t = g_agent.tot.peak_t,
        .mmap_count = g_agent.tot.mmap_count,
        .mmap_bytes = g_agent.tot.mmap_bytes,
        .mmap_live_bytes = g_agent.tot.mmap_live,
        .mmap_peak_bytes = g_agent.tot.mmap_peak,
    };
    agent_spin_unlock(&g_agent.mmap_lock);
    agent_spin_unlock(&g_agent.tot.lock);
    if (bytes < 0 || blocks < 0)   /* cannot be, once every event is in: say so, not hide it */
        r.flags |= HTRI_TOTALS_INEXACT;
    uint8_t rec[HTRI_TOTALS_REC_MAX];
    size_t n = htri_totals_rec_encode(&r, rec);
    (void)htri_rec_raw(&g_agent.meta, rec[0], rec + 1, n - 1, r.t);
}

/* Writes everything pending and END. spin_bound 0: normal locks; > 0: bounded (signals). */
static void agent_finish_common(int how, int status, long spin_bound, int keep_open)
{
    if (htri_os_getpid() != g_agent.pid)
        return;  /* a vfork/clone child sharing or copying our state: not our trace */
    if (!atomic_load(&g_agent.early_done))
        return;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&g_agent.finished, &expected, 1))
        return;
    int locked = spin_bound ? agent_spin_lock_bounded(&g_agent.wlock, spin_bound)
                            : (agent_spin_lock(&g_agent.wlock), 1);
    if (!locked)
        return;
    if (spin_bound) {
        /* A signal may have interrupted this very thread inside a hand-off: if the queue or
         * pool lock stays taken, write END alone rather than wait forever. */
        int q = agent_spin_lock_bounded(&g_agent.queue_lock, spin_bound);
        int p = q && agent_spin_lock_bounded(&g_agent.pool_lock, spin_bound);
        if (p)
            agent_spin_unlock(&g_agent.pool_lock);
        if (q)
            agent_spin_unlock(&g_agent.queue_lock);
        if (!p)
            atomic_store(&g_agent.stopped, 1);
    }
    if (atomic_load(&g_agent.stopped) && g_agent.file_state == AGENT_FILE_OPEN && !spin_bound) {
        /* Stopped on an error: the file (if still writable) gets the message and an END. */
        agent_writer_pass(1, spin_bound ? spin_bound : 1000);
    } else if (!atomic_load(&g_agent.stopped)) {
        agent_writer_pass(1, spin_bound ? spin_bound : 1000000);
    }
    if (g_agent.file_state == AGENT_FILE_OPEN) {
        agent_write_totals(spin_bound);
        uint64_t peak = htri_os_peak_rss_bytes();
        if (peak < g_agent.rss_peak)
            peak = g_agent.rss_peak;
        htri_rec_end(&g_agent.meta, htri_agent_now(), (uint32_t)how, (uint64_t)(int64_t)status,
                     peak, atomic_load(&g_agent.dropped), agent_sum(0), agent_sum(1),
                     agent_sum(2));
        agent_write_meta();
        if (!keep_open) {
            close(g_agent.fd);
            g_agent.fd = -1;
            g_agent.file_state = AGENT_FILE_FAILED;
        }
    }
    agent_spin_unlock(&g_agent.wlock);
}

int htri_agent_own_process(void)
{
    return htri_os_getpid() == g_agent.pid;
}

void htri_agent_stop_writer(void)
{
    if (!g_agent.writer_running || htri_os_getpid() != g_agent.pid)
        return;
    atomic_store(&g_agent.writer_stop, 1);
    agent_futex_wake(&g_agent.wake);
    if (!pthread_equal(pthread_self(), g_agent.writer))
        pthread_join(g_agent.writer, NULL);
    g_agent.writer_running = 0;
}

void htri_agent_finish(int how, int status)
{
    if (htri_os_getpid() != g_agent.pid)
        return;  /* vfork child: the writer and the file are the parent's */
    if (how == HTRI_END_EXIT && g_agent.exit_status_known)
        status = g_agent.exit_status;
    atomic_store(&g_agent.writer_stop, 1);
    agent_futex_wake(&g_agent.wake);
    agent_finish_common(how, status, 0, 0);
}

void htri_agent_before_exec(void)
{
    agent_finish_common(HTRI_END_EXEC, 0, 0, 1);
}

void htri_agent_exec_failed(void)
{
    if (htri_os_getpid() != g_agent.pid)
        return;
    /* The program carries on: so do we, after the END (readers take the last END). */
    atomic_store(&g_agent.finished, 0);
}

void htri_agent_before_dlclose(void)
{
    /* Stacks already taken may point into the library about to go: name it now, while
     * dl_iterate_phdr can still see it. */
    if (!htri_agent_tracking() || !htri_agent_own_process())
        return;
    agent_spin_lock(&g_agent.wlock);
    if (htri_agent_tracking())
        agent_writer_pass(0, 0);  /* opens the file if it is not yet */
    agent_spin_unlock(&g_agent.wlock);
}

void htri_agent_modules_changed(void)
{
    htri_unwind_modules_changed();
    atomic_store(&g_agent.modules_dirty, 1);
}

/* ---- world lock, fork ---- */

static void agent_lock_all(void)
{
    agent_spin_lock(&g_agent.wlock);
    agent_spin_lock(&g_agent.reg_lock);
    for (agent_thread *t = g_agent.threads; t; t = t->next)
        agent_spin_lock(&t->lock);
    agent_spin_lock(&g_agent.queue_lock);
    agent_spin_lock(&g_agent.pool_lock);
    agent_spin_lock(&g_agent.mmap_lock);
    htri_stacks_lock();
    htri_table_lock_all();
}

static void agent_unlock_all(void)
{
    htri_table_unlock_all();
    htri_stacks_unlock();
    agent_spin_unlock(&g_agent.mmap_lock);
    agent_spin_unlock(&g_agent.pool_lock);
    agent_spin_unlock(&g_agent.queue_lock);
    for (agent_thread *t = g_agent.threads; t; t = t->next)
        agent_spin_unlock(&t->lock);
    agent_spin_unlock(&g_agent.reg_lock);
    agent_spin_unlock(&g_agent.wlock);
}

void htri_agent_world_lock(void) { agent_lock_all(); }
void htri_agent_world_unlock(void) { agent_unlock_all(); }

int htri_agent_threads(int *tids, int cap)
{
    int n = 0;
    for (agent_thread *t = __atomic_load_n(&g_agent.threads, __ATOMIC_ACQUIRE); t; t = t->next) {
        if (t->dead || __atomic_load_n(&t->end_pending, __ATOMIC_RELAXED))
            continue;
        if (n < cap)
            tids[n] = t->tid;
        n++;
    }
    return n;
}

static void agent_fork_prepare(void)
{
    htri_agent_guard++;
    if (!atomic_load(&g_agent.early_done))
        return;
    agent_lock_all();
    if (g_agent.guard_on)
        htri_guard_fork_prepare();
}

static void agent_fork_parent(void)
{
    if (atomic_load(&g_agent.early_done)) {
        if (g_agent.guard_on)
            htri_guard_fork_parent();
        agent_unlock_all();
    }
    htri_agent_guard--;
}

static void agent_fork_child(void)
{
    if (!atomic_load(&g_agent.early_done)) {
        htri_agent_guard--;
        return;
    }
    int parent = g_agent.pid;
    g_agent.pid = htri_os_getpid();
    g_agent.ppid = parent;
    g_agent.parent_pid = parent;
    g_agent.forked = 1;
    htri_unwind_after_fork();
    /* The child's file has its own time line, starting at the fork. */
    g_agent.start_mono = htri_os_now_ns();
    g_agent.start_real = htri_os_realtime_ns();
    clock_start(0);
    g_agent.fork_t = 0;
    g_agent.fork_allocs = agent_sum(0);
    g_agent.fork_frees = agent_sum(1);
    g_agent.fork_bytes = agent_sum(2);
    /* The parent's unflushed buffers belong to the parent's trace: discard them. */
    for (agent_buf *b = g_agent.q_head; b;) {
        agent_buf *next = b->next;
        b->next = g_agent.pool;
        g_agent.pool = b;
        b = next;
    }
    g_agent.q_head = g_agent.q_tail = NULL;
    g_agent.q_bytes = 0;
    agent_gather_drop();
    agent_thread *self = t_self;
    for (agent_thread *t = g_agent.threads; t; t = t->next) {
        if (t->buf) {
            t->buf->next = g_agent.pool;
            g_agent.pool = t->buf;
            t->buf = NULL;
        }
        /* Threads that did not survive fork are never announced in the child's file. */
        t->announced = t != self;
        t->end_pending = 0;
        t->dead = t != self;
        t->t_last_event = 0;   /* the child's time line starts at 0 */
    }
    if (self)
        self->tid = htri_os_gettid();
    /* A fresh file, created once the child records something. */
    if (g_agent.fd >= 0)
        close(g_agent.fd);
    g_agent.fd = -1;
    g_agent.file_state = AGENT_FILE_NONE;
    g_agent.file_wanted = 0;
    g_agent.w.error = 0;
    htri_recbuf_reset(&g_agent.meta);
    htri_recbuf_reset(&g_agent.extra);
    g_agent.nodes_written = 0;
    htri_modules_reset();
    /* The inherited fd names the parent's /proc/PID/statm: reopen on first use. */
    if (g_agent.rss_fd >= 0)
        close(g_agent.rss_fd);
    g_agent.rss_fd = -1;
    g_agent.rss_peak = 0;
    g_agent.t_rss = 0;
    /* HEAP_TOTALS start again with the child's trace: its heap at the first event
     * (agent_emit_inherit), no mappings (the replay of its trace knows none of the parent's) */
    atomic_store(&g_agent.tot.flags, 0);
    atomic_store(&g_agent.tot.peak_bytes, 0);
    g_agent.tot.peak_blocks = 0;
    g_agent.tot.peak_t = 0;
    g_agent.tot.lock = 0;
    g_agent.tot.n_regions = 0;
    g_agent.tot.mmap_count = g_agent.tot.mmap_bytes = 0;
    g_agent.tot.mmap_live = g_agent.tot.mmap_peak = 0;
    g_agent.tot.n_recorders = self != NULL;
    g_agent.tot.final_missed = 0;
    atomic_store(&g_agent.tot_batched, 0);
    for (agent_thread *t = g_agent.threads; t; t = t->next) {
        t->tot_bytes = t->tot_blocks = 0;     /* the parent's: in the INHERIT records now */
        t->tot_events = 0;
    }
    atomic_store(&g_agent.inherit_pending, htri_agent_tracking());
    atomic_store(&g_agent.leak_signal_pending, 0);
    atomic_store(&g_limit_records, 0);
    if (g_agent.guard_on)
        htri_guard_fork_child();
    agent_unlock_all();
    if (htri_agent_tracking())
        agent_start_writer();
    htri_agent_guard--;
}

/* ---- fatal signals ---- */

static const int agent_fatal_signals[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTERM,
                                           SIGINT, SIGHUP, SIGQUIT };
static _Atomic int agent_sig_ours[65];

int htri_agent_signal_is_ours(int sig)
{
    return sig > 0 && sig < 65 && atomic_load(&agent_sig_ours[sig]);
}

void htri_agent_signal_taken(int sig)
{
    if (sig > 0 && sig < 65)
        atomic_store(&agent_sig_ours[sig], 0);
}

static void agent_on_signal(int sig)
{
    int saved = errno;
    htri_agent_guard++;
    atomic_store(&g_agent.writer_stop, 1);
    agent_finish_common(HTRI_END_SIGNAL, sig, AGENT_SIGNAL_SPINS, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
    atomic_store(&agent_sig_ours[sig], 0);
    errno = saved;
    raise(sig);
}

static void agent_install_signals(void)
{
    for (size_t i = 0; i < HTRI_ARRAY_LEN(agent_fatal_signals); i++) {
        int sig = agent_fatal_signals[i];
        struct sigaction old;
        if (sigaction(sig, NULL, &old) < 0 || old.sa_handler != SIG_DFL ||
            (old.sa_flags & SA_SIGINFO))
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = agent_on_signal;
        sigfillset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        atomic_store(&agent_sig_ours[sig], 1);
        if (sigaction(sig, &sa, NULL) < 0)
            atomic_store(&agent_sig_ours[sig], 0);
    }
}

/* --leak-check-signal: async-signal-safe, a flag and a futex wake for the writer thread. */
static void agent_on_leak_signal(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_store(&g_agent.leak_signal_pending, 1);
    agent_futex_wake(&g_agent.wake);
    errno = saved;
}

static void agent_install_leak_signal(void)
{
    int sig = g_agent.leak_check_signal;
    if (!sig)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = agent_on_leak_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(sig, &sa, NULL) < 0)
        htri_fdprintf(2, "heaptrail: cannot handle signal %d for leak checks\n", sig);
}

/* Constructor work: thread-exit key, fork handlers, signals, the writer thread. */
void htri_agent_init_late(void)
{
    if (g_agent.late_done)
        return;
    g_agent.late_done = 1;
    htri_agent_init_early();
    if (pthread_key_create(&g_agent.key, agent_thread_exit) == 0) {
        g_agent.key_ok = 1;
        if (t_self)
            pthread_setspecific(g_agent.key, t_self);
    }
    pthread_atfork(agent_fork_prepare, agent_fork_parent, agent_fork_child);
    agent_install_signals();
    agent_install_leak_signal();
    if (!htri_agent_tracking())
        return;
    g_agent.file_wanted = 1;
    agent_start_writer();
}
