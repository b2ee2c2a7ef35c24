/* Unit test of src/unwind: every engine must report the exact return addresses of a known
 * call chain (each pc checked against its function's symbol range, and the cached engine
 * against libunwind), with max and skip, from 8 threads, in signal handlers (also on an
 * alternate stack and asynchronously), with a junk rbp, in dlopen'ed code, across
 * dlclose/dlopen cycles, and through the cached engine's per-thread memo (stacks differing in
 * one slot, the same chain at other depths). Fixtures: tests/unit/fixtures/unwind/chain.c. */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>
#include "base/common.h"
#include "check.h"
#include "chain.h"
#include "unwind/unwind.h"

#define TEST_MAXPCS 128
/* Frames of a chain capture we can name: leaf, f39..f00, entry, run_chain. */
#define TEST_NAMED (CHAIN_LEN + 3)
#define TEST_API __attribute__((visibility("default"), noinline))

/* The statically linked fixtures (no frame pointers / frame pointers). */
int nofp_entry(struct chain_ctx *ctx);
int fp_entry(struct chain_ctx *ctx);
int nofp_junk_call(struct chain_ctx *ctx, uintptr_t junk);
TEST_API int run_chain(chain_entry_fn *entry, struct chain_ctx *ctx);
TEST_API int run_junk(struct chain_ctx *ctx, uintptr_t junk);
TEST_API int outer_a(struct chain_ctx *ctx);
TEST_API int run_shifted(struct chain_ctx *ctx, int pad);
TEST_API int outer_b(struct chain_ctx *ctx);

/* Keeps the chain out of tail position, so run_chain has a frame of its own. */
TEST_API int run_chain(chain_entry_fn *entry, struct chain_ctx *ctx)
{
    int r = entry(ctx);
    __asm__ volatile("" : "+r"(r));
    return r;
}

TEST_API int run_junk(struct chain_ctx *ctx, uintptr_t junk)
{
    int r = nofp_junk_call(ctx, junk);
    __asm__ volatile("" : "+r"(r));
    return r;
}

/* Name of the function the k-th return address of a chain capture points into. */
static void chain_name(int k, const char *prefix, char *out, size_t size)
{
    if (k == 0)
        snprintf(out, size, "%sleaf", prefix);
    else if (k <= CHAIN_LEN)
        snprintf(out, size, "%sf%02d", prefix, CHAIN_LEN - k);
    else if (k == CHAIN_LEN + 1)
        snprintf(out, size, "%sentry", prefix);
    else
        snprintf(out, size, "run_chain");
}

/* True when the call before return address `pc` lies inside function `name`. */
static bool pc_in(uintptr_t pc, const char *name)
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    uintptr_t at = pc - 1;
    if (!dladdr1((void *)at, &info, (void **)&sym, RTLD_DL_SYMENT) || !info.dli_sname || !sym)
        return false;
    return strcmp(info.dli_sname, name) == 0 && at >= (uintptr_t)info.dli_saddr &&
           at < (uintptr_t)info.dli_saddr + sym->st_size;
}

static void print_stack(const char *what, const uintptr_t *pcs, int n)
{
    fprintf(stderr, "  %s: %d frames\n", what, n);
    for (int i = 0; i < n; i++) {
        Dl_info info;
        const char *name = dladdr((void *)(pcs[i] - 1), &info) && info.dli_sname ? info.dli_sname
                                                                                 : "?";
        fprintf(stderr, "    #%d %#lx %s\n", i, (unsigned long)pcs[i], name);
    }
}

/* Counts the frames of pcs[0..n) that are not where a chain capture with this skip puts
 * them (up to `named` frames), plus a shortfall if fewer than expected came back. */
static int chain_errors(const uintptr_t *pcs, int n, int skip, int max, const char *prefix,
                        int named)
{
    int errors = 0, want = named - skip < max ? named - skip : max;
    if (n < want)
        errors++;
    for (int i = 0; i < n && i + skip < named; i++) {
        char name[64];
        chain_name(i + skip, prefix, name, sizeof name);
        if (!pc_in(pcs[i], name))
            errors++;
    }
    return errors;
}

static int capture_chain(chain_entry_fn *entry, htri_unwind_mode mode, uintptr_t *pcs, int max,
                         int skip)
{
    struct chain_ctx ctx = { .capture = htri_unwind_capture_with, .mode = mode, .pcs = pcs,
                             .max = max, .skip = skip };
    run_chain(entry, &ctx);
    return ctx.n;
}

/* libunwind's stack into ref, `mode`'s into got, from one call site so that even the frames
 * above the chain are the same. */
static void capture_pair(chain_entry_fn *entry, htri_unwind_mode mode, uintptr_t *ref,
                         int *n_ref, uintptr_t *got, int *n_got, int max, int skip)
{
    htri_unwind_mode modes[2] = { HTRI_UNWIND_DWARF, mode };
    uintptr_t *bufs[2] = { ref, got };
    int n[2];
    volatile int rounds = 2; /* an unknown trip count: the compiler keeps one call site */
    for (int i = 0; i < rounds; i++) {
        struct chain_ctx ctx = { .capture = htri_unwind_capture_with, .max = max, .skip = skip,
                                 .mode = modes[i], .pcs = bufs[i] };
        run_chain(entry, &ctx);
        n[i] = ctx.n;
    }
    *n_ref = n[0];
    *n_got = n[1];
}

static bool same_stack(const uintptr_t *a, int na, const uintptr_t *b, int nb)
{
    return na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0;
}

/* One capture checked for names, and (for the DWARF-based engines) against libunwind. */
static void check_chain(const char *what, chain_entry_fn *entry, const char *prefix,
                        htri_unwind_mode mode, int max, int skip)
{
    uintptr_t ref[TEST_MAXPCS], got[TEST_MAXPCS];
    int n_ref, n_got;
    capture_pair(entry, mode, ref, &n_ref, got, &n_got, max, skip);
    int errors = chain_errors(got, n_got, skip, max, prefix, TEST_NAMED);
    CHECK_EQ_U(errors, 0);
    CHECK_EQ_U(chain_errors(ref, n_ref, skip, max, prefix, TEST_NAMED), 0);
    if (mode == HTRI_UNWIND_FP) {
        /* Past run_chain the test's own frames have no frame pointers: compare the chain. */
        int named = TEST_NAMED - skip < n_ref ? TEST_NAMED - skip : n_ref;
        CHECK(n_got >= named && memcmp(got, ref, (size_t)named * sizeof *got) == 0);
    } else {
        CHECK(same_stack(got, n_got, ref, n_ref));
        if (!same_stack(got, n_got, ref, n_ref))
            errors++;
    }
    if (errors) {
        fprintf(stderr, "%s (max %d, skip %d):\n", what, max, skip);
        print_stack("libunwind", ref, n_ref);
        print_stack("engine", got, n_got);
    }
}

static void test_modes(void)
{
    htri_unwind_mode mode = HTRI_UNWIND_FP;
    CHECK_EQ_U(htri_unwind_parse_mode("dwarf", &mode), 0);
    CHECK_EQ_U(mode, HTRI_UNWIND_DWARF);
    CHECK_EQ_U(htri_unwind_parse_mode("cached", &mode), 0);
    CHECK_EQ_U(mode, HTRI_UNWIND_CACHED);
    CHECK_EQ_U(htri_unwind_parse_mode("fp", &mode), 0);
    CHECK_EQ_U(mode, HTRI_UNWIND_FP);
    CHECK(htri_unwind_parse_mode("FP ", &mode) == -EINVAL);
    CHECK(htri_unwind_parse_mode(NULL, &mode) == -EINVAL);
    CHECK(htri_unwind_init((htri_unwind_mode)7) == -EINVAL);
    uintptr_t pcs[4];
    CHECK_EQ_U(htri_unwind_capture(pcs, 0, 0), 0);
    CHECK_EQ_U(htri_unwind_capture(NULL, 4, 0), 0);
    CHECK_EQ_U(htri_unwind_capture(pcs, -1, 0), 0);
}

static void test_engines(void)
{
    /* Twice each: the first cached capture computes every rule, the second only reads. */
    for (int round = 0; round < 2; round++) {
        check_chain("cached, no frame pointers", nofp_entry, "nofp_", HTRI_UNWIND_CACHED,
                    TEST_MAXPCS, 0);
        check_chain("cached, frame pointers", fp_entry, "fp_", HTRI_UNWIND_CACHED, TEST_MAXPCS, 0);
        check_chain("fp, frame pointers", fp_entry, "fp_", HTRI_UNWIND_FP, TEST_MAXPCS, 0);
    }
    /* Frame pointers on code without them: the leaf is right (our own frame has one), and
     * the walk stops somewhere without crashing. */
    uintptr_t pcs[TEST_MAXPCS];
    int n = capture_chain(nofp_entry, HTRI_UNWIND_FP, pcs, TEST_MAXPCS, 0);
    CHECK(n >= 1 && n <= TEST_MAXPCS);
    CHECK(n >= 1 && pc_in(pcs[0], "nofp_leaf"));
}

static void test_max_skip(void)
{
    static const struct { int max, skip; } cases[] = {
        { 1, 0 }, { 10, 0 }, { 10, 3 }, { TEST_MAXPCS, 1 }, { TEST_MAXPCS, 5 }, { 7, 40 },
        { 3, 42 },
    };
    for (size_t i = 0; i < HTRI_ARRAY_LEN(cases); i++) {
        check_chain("cached", nofp_entry, "nofp_", HTRI_UNWIND_CACHED, cases[i].max,
                    cases[i].skip);
        check_chain("fp", fp_entry, "fp_", HTRI_UNWIND_FP, cases[i].max, cases[i].skip);
        check_chain("dwarf", nofp_entry, "nofp_", HTRI_UNWIND_DWARF, cases[i].max,
                    cases[i].skip);
    }
    /* A skip beyond the whole stack leaves nothing. */
    uintptr_t pcs[4];
    CHECK_EQ_U(capture_chain(nofp_entry, HTRI_UNWIND_CACHED, pcs, 4, 1000), 0);
    CHECK_EQ_U(capture_chain(nofp_entry, HTRI_UNWIND_DWARF, pcs, 4, 1000), 0);
    CHECK_EQ_U(capture_chain(fp_entry, HTRI_UNWIND_FP, pcs, 4, 1000), 0);
}

/* htri_unwind_capture() with the engine chosen at init, same skip semantics. */
static void test_default_engine(void)
{
    static const htri_unwind_mode modes[] = { HTRI_UNWIND_DWARF, HTRI_UNWIND_CACHED,
                                              HTRI_UNWIND_FP };
    for (size_t i = 0; i < HTRI_ARRAY_LEN(modes); i++) {
        CHECK_EQ_U(htri_unwind_init(modes[i]), 0);
        for (int skip = 0; skip < 3; skip++) {
            uintptr_t pcs[TEST_MAXPCS];
            struct chain_ctx ctx = { .capture_default = htri_unwind_capture, .pcs = pcs,
                                     .max = TEST_MAXPCS, .skip = skip };
            bool fp = modes[i] == HTRI_UNWIND_FP;
            run_chain(fp ? fp_entry : nofp_entry, &ctx);
            int errors = chain_errors(pcs, ctx.n, skip, TEST_MAXPCS, fp ? "fp_" : "nofp_",
                                      TEST_NAMED);
            CHECK_EQ_U(errors, 0);
        }
    }
    CHECK_EQ_U(htri_unwind_init(HTRI_UNWIND_DWARF), 0);
}

/* Two functions with the same frame layout: the chain runs at the same stack addresses under
 * either, and only the return address into outer_a or outer_b tells the stacks apart. The
 * cached engine's per-thread memo must notice that one slot and nothing else. */
TEST_API int outer_a(struct chain_ctx *ctx)
{
    int r = run_chain(nofp_entry, ctx);
    __asm__ volatile("" : "+r"(r));
    return r + 1;
}

TEST_API int outer_b(struct chain_ctx *ctx)
{
    int r = run_chain(nofp_entry, ctx);
    __asm__ volatile("" : "+r"(r));
    return r + 2;
}

static void test_memo_divergence(void)
{
    int (*const outers[2])(struct chain_ctx *) = { outer_a, outer_b };
    static const char *const names[2] = { "outer_a", "outer_b" };
    uintptr_t first[2][TEST_MAXPCS];
    int n_first[2] = { 0, 0 }, errors = 0;
    volatile int rounds = 20; /* one call site for every round */
    for (int i = 0; i < rounds; i++) {
        uintptr_t pcs[TEST_MAXPCS];
        int which = i & 1;
        struct chain_ctx ctx = { .capture = htri_unwind_capture_with, .mode = HTRI_UNWIND_CACHED,
                                 .pcs = pcs, .max = TEST_MAXPCS };
        outers[which](&ctx);
        errors += chain_errors(pcs, ctx.n, 0, TEST_MAXPCS, "nofp_", TEST_NAMED);
        if (ctx.n <= TEST_NAMED || !pc_in(pcs[TEST_NAMED], names[which]))
            errors++;
        if (i < 2) {
            memcpy(first[which], pcs, sizeof pcs);
            n_first[which] = ctx.n;
        } else if (!same_stack(pcs, ctx.n, first[which], n_first[which])) {
            errors++;
        }
    }
    CHECK_EQ_U(errors, 0);
    /* The stacks under outer_a and outer_b share every frame but one. */
    CHECK(n_first[0] == n_first[1] && n_first[0] > TEST_NAMED + 1 &&
          first[0][TEST_NAMED] != first[1][TEST_NAMED] &&
          memcmp(first[0], first[1], TEST_NAMED * sizeof(uintptr_t)) == 0 &&
          memcmp(first[0] + TEST_NAMED + 1, first[1] + TEST_NAMED + 1,
                 (size_t)(n_first[0] - TEST_NAMED - 1) * sizeof(uintptr_t)) == 0);
}

/* The chain moved down by `pad` words: the same return addresses at other stack addresses,
 * which the cached engine's memo follows by pc rather than replays by address. */
TEST_API int run_shifted(struct chain_ctx *ctx, int pad)
{
    volatile uintptr_t space[pad + 1];
    space[0] = (uintptr_t)pad;
    int r = nofp_entry(ctx);
    __asm__ volatile("" : "+r"(r));
    return r + (int)space[0];
}

static void test_memo_moving(void)
{
    int errors = 0;
    volatile int rounds = 24, modes = 2; /* loops, not unrolled: one call site */
    for (int i = 0; i < rounds; i++) {
        uintptr_t got[2][TEST_MAXPCS];
        int n[2];
        for (int m = 0; m < modes; m++) {
            struct chain_ctx ctx = { .capture = htri_unwind_capture_with, .pcs = got[m],
                                     .max = TEST_MAXPCS, .skip = i % 3,
                                     .mode = m ? HTRI_UNWIND_CACHED : HTRI_UNWIND_DWARF };
            run_shifted(&ctx, (i * 7) % 13);
            n[m] = ctx.n;
        }
        /* Names up to nofp_entry (run_shifted stands where run_chain would). */
        errors += chain_errors(got[1], n[1], i % 3, TEST_MAXPCS, "nofp_", TEST_NAMED - 1);
        if (!same_stack(got[1], n[1], got[0], n[0]))
            errors++;
    }
    CHECK_EQ_U(errors, 0);
}

/* ---- threads ---- */

#define TEST_THREADS 8
#define TEST_THREAD_ROUNDS 300

static _Atomic int g_thread_errors;

static void *thread_main(void *arg)
{
    int id = (int)(intptr_t)arg, errors = 0;
    for (int round = 0; round < TEST_THREAD_ROUNDS; round++) {
        uintptr_t ref[TEST_MAXPCS], got[TEST_MAXPCS];
        int skip = (round + id) % 4;
        bool fp = (round + id) % 3 == 0;
        htri_unwind_mode mode = fp ? HTRI_UNWIND_FP : HTRI_UNWIND_CACHED;
        chain_entry_fn *entry = fp ? fp_entry : nofp_entry;
        int n_ref, n_got;
        capture_pair(entry, mode, ref, &n_ref, got, &n_got, TEST_MAXPCS, skip);
        errors += chain_errors(got, n_got, skip, TEST_MAXPCS, fp ? "fp_" : "nofp_", TEST_NAMED);
        /* Threads start in clone3, not _start: the whole stack must still agree. */
        if (!fp && !same_stack(got, n_got, ref, n_ref))
            errors++;
    }
    atomic_fetch_add(&g_thread_errors, errors);
    return NULL;
}

static void test_threads(void)
{
    pthread_t threads[TEST_THREADS];
    for (int i = 0; i < TEST_THREADS; i++)
        CHECK_EQ_U(pthread_create(&threads[i], NULL, thread_main, (void *)(intptr_t)i), 0);
    for (int i = 0; i < TEST_THREADS; i++)
        pthread_join(threads[i], NULL);
    CHECK_EQ_U(atomic_load(&g_thread_errors), 0);
}

/* ---- signal handlers ---- */

struct sig_capture {
    uintptr_t pcs[3][TEST_MAXPCS]; /* by htri_unwind_mode */
    int n[3];
};

static struct sig_capture g_sig;
static _Atomic int g_sig_count, g_sig_mismatch;

static void sig_capture_all(struct sig_capture *out)
{
    for (int mode = 0; mode < 3; mode++)
        out->n[mode] = htri_unwind_capture_with((htri_unwind_mode)mode, out->pcs[mode],
                                                TEST_MAXPCS, 0);
}

/* Every capture is made from a different call site in the handler, so pcs[0] differs by
 * engine; from pcs[1] on, the cached engine must match libunwind exactly. */
static bool sig_agree(const struct sig_capture *c)
{
    return c->n[HTRI_UNWIND_CACHED] == c->n[HTRI_UNWIND_DWARF] && c->n[HTRI_UNWIND_DWARF] > 1 &&
           memcmp(c->pcs[HTRI_UNWIND_CACHED] + 1, c->pcs[HTRI_UNWIND_DWARF] + 1,
                  (size_t)(c->n[HTRI_UNWIND_DWARF] - 1) * sizeof(uintptr_t)) == 0 &&
           c->n[HTRI_UNWIND_FP] >= 1;
}

static void sig_handler(int sig)
{
    struct sig_capture local;
    sig_capture_all(&local);
    if (!sig_agree(&local))
        atomic_fetch_add(&g_sig_mismatch, 1);
    g_sig = local;
    atomic_fetch_add(&g_sig_count, 1);
}

static void raise_hook(struct chain_ctx *ctx)
{
    raise(SIGUSR1);
}

/* The chain's frames must appear, in order, somewhere below the handler's frames. */
static int chain_errors_anywhere(const uintptr_t *pcs, int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        if (pc_in(pcs[i], "nofp_leaf"))
            return chain_errors(pcs + i, n - i, 0, TEST_MAXPCS, prefix, TEST_NAMED);
    }
    return 1;
}

static void test_signal_sync(bool altstack)
{
    struct sigaction sa = { .sa_handler = sig_handler, .sa_flags = altstack ? SA_ONSTACK : 0 };
    sigemptyset(&sa.sa_mask);
    CHECK_EQ_U(sigaction(SIGUSR1, &sa, NULL), 0);
    atomic_store(&g_sig_mismatch, 0);
    atomic_store(&g_sig_count, 0);
    struct chain_ctx ctx = { .hook = raise_hook };
    run_chain(nofp_entry, &ctx);
    CHECK_EQ_U(atomic_load(&g_sig_count), 1);
    CHECK_EQ_U(atomic_load(&g_sig_mismatch), 0);
    /* libunwind sees through the signal frame; so must the cached engine (by falling back). */
    CHECK_EQ_U(chain_errors_anywhere(g_sig.pcs[HTRI_UNWIND_CACHED], g_sig.n[HTRI_UNWIND_CACHED],
                                     "nofp_"), 0);
    if (atomic_load(&g_sig_mismatch)) {
        print_stack("libunwind", g_sig.pcs[HTRI_UNWIND_DWARF], g_sig.n[HTRI_UNWIND_DWARF]);
        print_stack("cached", g_sig.pcs[HTRI_UNWIND_CACHED], g_sig.n[HTRI_UNWIND_CACHED]);
    }
    signal(SIGUSR1, SIG_DFL);
}

static void test_signal_altstack(void)
{
    size_t size = 64 * 1024;
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED);
    stack_t ss = { .ss_sp = mem, .ss_size = size }, old;
    CHECK_EQ_U(sigaltstack(&ss, &old), 0);
    test_signal_sync(true);
    ss.ss_flags = SS_DISABLE;
    CHECK_EQ_U(sigaltstack(&ss, NULL), 0);
    munmap(mem, size);
}

/* Asynchronous: SIGPROF lands anywhere in a thread spinning inside the chain, possibly in a
 * prologue or epilogue, and all three engines run in the handler. */
static _Atomic int g_spin_stop, g_spinning;

static void spin_hook(struct chain_ctx *ctx)
{
    atomic_store(&g_spinning, 1);
    while (!atomic_load_explicit(&g_spin_stop, memory_order_relaxed))
        ;
}

static void *spin_main(void *arg)
{
    struct chain_ctx ctx = { .hook = spin_hook };
    run_chain(nofp_entry, &ctx);
    return NULL;
}

static void test_signal_async(void)
{
    struct sigaction sa = { .sa_handler = sig_handler };
    sigemptyset(&sa.sa_mask);
    CHECK_EQ_U(sigaction(SIGPROF, &sa, NULL), 0);
    atomic_store(&g_sig_mismatch, 0);
    atomic_store(&g_sig_count, 0);
    pthread_t spinner;
    CHECK_EQ_U(pthread_create(&spinner, NULL, spin_main, NULL), 0);
    while (!atomic_load(&g_spinning))
        sched_yield();
    int sent = 0;
    for (; sent < 300; sent++) {
        pthread_kill(spinner, SIGPROF);
        while (atomic_load(&g_sig_count) <= sent)
            sched_yield();
    }
    atomic_store(&g_spin_stop, 1);
    pthread_join(spinner, NULL);
    CHECK_EQ_U(atomic_load(&g_sig_count), sent);
    CHECK_EQ_U(atomic_load(&g_sig_mismatch), 0);
    CHECK_EQ_U(chain_errors_anywhere(g_sig.pcs[HTRI_UNWIND_CACHED], g_sig.n[HTRI_UNWIND_CACHED],
                                     "nofp_"), 0);
    signal(SIGPROF, SIG_DFL);
}

/* ---- a junk rbp ---- */

static void test_junk_rbp(void)
{
    struct chain_ctx ctx = { .capture = htri_unwind_capture_with, .max = TEST_MAXPCS };
    /* A fake frame chain on our stack: {next, pc} pairs ending in a null link. */
    volatile uintptr_t fake[6];
    fake[0] = (uintptr_t)&fake[2];
    fake[1] = 0x1111;
    fake[2] = (uintptr_t)&fake[4];
    fake[3] = 0x2222;
    fake[4] = 0;
    fake[5] = 0x3333;
    /* A link that jumps 64 MiB up: beyond any believable frame. */
    volatile uintptr_t far[2] = { (uintptr_t)&far[0] + (64u << 20), 0x4444 };
    const struct { uintptr_t junk; int n_fp; } cases[] = {
        { 0, 1 }, { 1, 1 }, { 0x7ffffffff000, 1 }, { (uintptr_t)&ctx - 4096, 1 } /* below us */,
        { (uintptr_t)&fake[0], 4 }, { (uintptr_t)&far[0], 2 },
    };
    /* Under ASan's detect_stack_use_after_return our locals live off the thread's stack,
     * where the frame-pointer walk rightly refuses to follow them. */
    uintptr_t here = (uintptr_t)__builtin_frame_address(0), at = (uintptr_t)&fake[0];
    bool fake_on_stack = at - here < (1u << 20) || here - at < (1u << 20);
    for (size_t i = 0; i < HTRI_ARRAY_LEN(cases); i++) {
        /* One call site for the three engines: frames above run_junk must match too. */
        uintptr_t got[3][TEST_MAXPCS];
        int n[3];
        volatile int modes = 3; /* not unrolled: one call site */
        for (int mode = 0; mode < modes; mode++) {
            ctx.mode = (htri_unwind_mode)mode;
            ctx.pcs = got[mode];
            run_junk(&ctx, cases[i].junk);
            n[mode] = ctx.n;
        }
        const uintptr_t *fp = got[HTRI_UNWIND_FP];
        CHECK_EQ_U(n[HTRI_UNWIND_FP], fake_on_stack ? cases[i].n_fp : 1);
        CHECK(n[HTRI_UNWIND_FP] >= 1 && pc_in(fp[0], "nofp_junk_call"));
        if (cases[i].junk == (uintptr_t)&fake[0] && n[HTRI_UNWIND_FP] == 4)
            CHECK(fp[1] == 0x1111 && fp[2] == 0x2222 && fp[3] == 0x3333);
        /* The CFI says where the real rbp is: the DWARF engines must not care. */
        const uintptr_t *ref = got[HTRI_UNWIND_DWARF];
        CHECK(n[HTRI_UNWIND_DWARF] >= 3 && pc_in(ref[0], "nofp_junk_call") &&
              pc_in(ref[1], "run_junk"));
        CHECK(same_stack(got[HTRI_UNWIND_CACHED], n[HTRI_UNWIND_CACHED], ref,
                         n[HTRI_UNWIND_DWARF]));
    }
}

/* ---- dlopen'ed code, and a dlclose/dlopen cycle ---- */

/* With `notify`, as the agent does from its dlopen/dlclose hooks. Without, the first
 * capture may still meet rules of the library that was unloaded (its result is not
 * checked, only that it returns), but its first cache miss notices the change. */
static void check_library(const char *path, const char *prefix, const char *entry_name,
                          bool notify)
{
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(lib != NULL);
    if (!lib) {
        fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
        return;
    }
    if (notify)
        htri_unwind_modules_changed();
    chain_entry_fn *entry = (chain_entry_fn *)dlsym(lib, entry_name);
    CHECK(entry != NULL);
    if (entry && !notify) {
        uintptr_t pcs[TEST_MAXPCS];
        CHECK(capture_chain(entry, HTRI_UNWIND_CACHED, pcs, TEST_MAXPCS, 0) >= 0);
    }
    if (entry) {
        check_chain(path, entry, prefix, HTRI_UNWIND_CACHED, TEST_MAXPCS, 0);
        check_chain(path, entry, prefix, HTRI_UNWIND_CACHED, TEST_MAXPCS, 2);
    }
    CHECK_EQ_U(dlclose(lib), 0);
    if (notify)
        htri_unwind_modules_changed();
}

static void test_dlopen_cycle(void)
{
    /* b is a, shifted and with other frame shapes: a stale rule would misplace a frame. */
    for (int round = 0; round < 4; round++) {
        check_library(UNWIND_FX_A, "liba_", "liba_entry", round < 3);
        check_library(UNWIND_FX_B, "libb_", "libb_entry", round < 3);
    }
    /* Modules gone: our own chain still unwinds with the rules of the new epoch. */
    check_chain("cached after dlclose", nofp_entry, "nofp_", HTRI_UNWIND_CACHED, TEST_MAXPCS, 0);
}

/* Coroutines on stacks of their own (more stacks than the per-thread bounds cache holds):
 * each capture must stay inside its stack and agree with libunwind up to makecontext's
 * trampoline. */
#define TEST_COROUTINES 6
#define TEST_CO_STACK (256 * 1024)

static ucontext_t g_main_uc, g_co_uc;
static int g_co_errors;

static void co_main(void)
{
    uintptr_t ref[TEST_MAXPCS], got[TEST_MAXPCS];
    int n_ref, n_got;
    capture_pair(nofp_entry, HTRI_UNWIND_CACHED, ref, &n_ref, got, &n_got, TEST_MAXPCS, 0);
    /* Named frames up to run_chain; what called it is the trampoline, not our driver. */
    g_co_errors += chain_errors(got, n_got, 0, TEST_MAXPCS, "nofp_", TEST_NAMED);
    if (!same_stack(got, n_got, ref, n_ref))
        g_co_errors++;
}

static void test_coroutines(void)
{
    void *mem = mmap(NULL, (size_t)TEST_COROUTINES * TEST_CO_STACK, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mem != MAP_FAILED);
    if (mem == MAP_FAILED)
        return;
    for (int round = 0; round < 2 * TEST_COROUTINES; round++) {
        CHECK_EQ_U(getcontext(&g_co_uc), 0);
        g_co_uc.uc_stack.ss_sp = (char *)mem + (size_t)(round % TEST_COROUTINES) * TEST_CO_STACK;
        g_co_uc.uc_stack.ss_size = TEST_CO_STACK;
        g_co_uc.uc_link = &g_main_uc;
        makecontext(&g_co_uc, co_main, 0);
        CHECK_EQ_U(swapcontext(&g_main_uc, &g_co_uc), 0);
    }
    CHECK_EQ_U(g_co_errors, 0);
    munmap(mem, (size_t)TEST_COROUTINES * TEST_CO_STACK);
}

/* A forked child unwinds as its parent did (the agent calls htri_unwind_after_fork there). */
static void test_fork(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        htri_unwind_after_fork();
        uintptr_t ref[TEST_MAXPCS], got[TEST_MAXPCS];
        int n_ref, n_got;
        capture_pair(nofp_entry, HTRI_UNWIND_CACHED, ref, &n_ref, got, &n_got, TEST_MAXPCS, 0);
        bool ok = chain_errors(got, n_got, 0, TEST_MAXPCS, "nofp_", TEST_NAMED) == 0 &&
                  same_stack(got, n_got, ref, n_ref);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    test_modes();
    CHECK_EQ_U(htri_unwind_init(HTRI_UNWIND_CACHED), 0);
    CHECK_EQ_U(htri_unwind_init(HTRI_UNWIND_DWARF), 0);
    test_engines();
    test_max_skip();
    test_default_engine();
    test_memo_divergence();
    test_memo_moving();
    test_threads();
    test_signal_sync(false);
    test_signal_altstack();
    test_signal_async();
    test_junk_rbp();
    test_dlopen_cycle();
    test_fork();
    test_coroutines();
    return CHECK_DONE();
}
