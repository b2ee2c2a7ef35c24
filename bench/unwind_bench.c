/* Benchmark of src/unwind: 2M captures 30 frames deep per engine, ns per capture. Built twice
 * by tests/unit/unwind.cmake: unwind_bench_nofp (-fomit-frame-pointer) and unwind_bench_fp
 * (frame pointers, BENCH_FRAME_POINTERS), the only build where the fp engine is meaningful.
 * Three scenarios: "same" (every capture from one place: the cached engine's best case, its
 * per-thread memo replays the whole stack), "mixed" (captures rotate among four call paths
 * of 1 to 4 extra frames above the chain: the memo replays the shared outer frames) and
 * "moving" (the whole chain shifted by a different amount before each capture, so the memo
 * never matches and every frame goes through the rule table: its worst case). The cost of
 * calling the chain itself is measured and subtracted in "moving". */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "unwind/unwind.h"

#define BENCH_DEPTH 30      /* frames of distinct functions above main */
#define BENCH_CAPTURES 2000000
#define BENCH_MAX 64
#define BENCH_ROUNDS 3      /* of BENCH_CAPTURES each; the best one is reported */
#define BENCH_NO_CAPTURE (-1) /* mode: run the chain, capture nothing (the baseline) */

enum bench_scenario { BENCH_SAME, BENCH_MIXED, BENCH_MOVING };

static struct {
    int mode;         /* htri_unwind_mode or BENCH_NO_CAPTURE */
    enum bench_scenario scenario;
    long captures;
    uintptr_t pcs[BENCH_MAX];
    int frames; /* frames of the last capture */
} g_bench;

static __attribute__((noinline)) int bench_capture(int depth)
{
    if (g_bench.mode != BENCH_NO_CAPTURE)
        g_bench.frames = htri_unwind_capture_with((htri_unwind_mode)g_bench.mode, g_bench.pcs,
                                                  BENCH_MAX, 0);
    __asm__ volatile("" ::: "memory");
    return depth;
}

/* The four call paths of "mixed": distinct functions, 1 to 4 frames deep. */
#define BENCH_HOP(name, next) \
    static __attribute__((noinline)) int name(int depth) { \
        volatile char pad[(depth & 3) * 8 + 8]; \
        pad[0] = (char)depth; \
        int r = next(depth + pad[0]); \
        __asm__ volatile("" : "+r"(r)); \
        return r + 1; }
BENCH_HOP(bench_b0, bench_capture)
BENCH_HOP(bench_b1b, bench_capture) BENCH_HOP(bench_b1, bench_b1b)
BENCH_HOP(bench_b2c, bench_capture) BENCH_HOP(bench_b2b, bench_b2c) BENCH_HOP(bench_b2, bench_b2b)
BENCH_HOP(bench_b3d, bench_capture) BENCH_HOP(bench_b3c, bench_b3d)
BENCH_HOP(bench_b3b, bench_b3c) BENCH_HOP(bench_b3, bench_b3b)

static __attribute__((noinline)) int bench_leaf(int depth)
{
    static int (*const paths[4])(int) = { bench_b0, bench_b1, bench_b2, bench_b3 };
    if (g_bench.scenario == BENCH_MOVING)
        return bench_capture(depth);
    for (long i = 0; i < g_bench.captures; i++) {
        if (g_bench.scenario == BENCH_SAME)
            bench_capture(depth);
        else
            paths[i & 3](depth);
    }
    return depth;
}

/* BENCH_DEPTH distinct functions, so the cached engine meets 30 distinct return addresses
 * per stack, as in a real program, rather than one recursive call site. */
#define BENCH_LEVEL(n, next) \
    static __attribute__((noinline)) int bench_f##n(int depth) { \
        int r = next(depth + 1); \
        __asm__ volatile("" : "+r"(r)); \
        return r + 1; }
BENCH_LEVEL(29, bench_leaf) BENCH_LEVEL(28, bench_f29) BENCH_LEVEL(27, bench_f28)
BENCH_LEVEL(26, bench_f27) BENCH_LEVEL(25, bench_f26) BENCH_LEVEL(24, bench_f25)
BENCH_LEVEL(23, bench_f24) BENCH_LEVEL(22, bench_f23) BENCH_LEVEL(21, bench_f22)
BENCH_LEVEL(20, bench_f21) BENCH_LEVEL(19, bench_f20) BENCH_LEVEL(18, bench_f19)
BENCH_LEVEL(17, bench_f18) BENCH_LEVEL(16, bench_f17) BENCH_LEVEL(15, bench_f16)
BENCH_LEVEL(14, bench_f15) BENCH_LEVEL(13, bench_f14) BENCH_LEVEL(12, bench_f13)
BENCH_LEVEL(11, bench_f12) BENCH_LEVEL(10, bench_f11) BENCH_LEVEL(9, bench_f10)
BENCH_LEVEL(8, bench_f9)   BENCH_LEVEL(7, bench_f8)   BENCH_LEVEL(6, bench_f7)
BENCH_LEVEL(5, bench_f6)   BENCH_LEVEL(4, bench_f5)   BENCH_LEVEL(3, bench_f4)
BENCH_LEVEL(2, bench_f3)   BENCH_LEVEL(1, bench_f2)
/* bench_f1 is the 30th level; bench_leaf sits on top of it. */

/* Moves the whole chain down by a different amount each time. */
static __attribute__((noinline)) int bench_shifted(long i)
{
    volatile char pad[16 + (i & 63) * 16];
    pad[0] = 0;
    return bench_f1(pad[0]);
}

static double bench_cpu_ns(void)
{
    struct timespec t;
    /* Thread CPU time, not wall time: the machine is shared, and a descheduled benchmark
     * should not look slow. */
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double bench_run(int mode, enum bench_scenario scenario, long captures)
{
    g_bench.mode = mode;
    g_bench.scenario = scenario;
    g_bench.captures = captures;
    double t0 = bench_cpu_ns();
    if (scenario != BENCH_MOVING) {
        bench_f1(0);
    } else {
        for (long i = 0; i < captures; i++)
            bench_shifted(i);
    }
    return (bench_cpu_ns() - t0) / (double)captures;
}

static double bench_best(int mode, enum bench_scenario scenario, long captures)
{
    (void)bench_run(mode, scenario, 1000); /* warm: rules, libunwind caches, page faults */
    double best = 0;
    for (int round = 0; round < BENCH_ROUNDS; round++) {
        double ns = bench_run(mode, scenario, captures);
        if (round == 0 || ns < best)
            best = ns;
    }
    return best;
}

int main(int argc, char **argv)
{
    long captures = argc > 1 ? atol(argv[1]) : BENCH_CAPTURES;
    static const char *names[] = { "dwarf", "cached", "fp" };
#ifdef BENCH_FRAME_POINTERS
    static const htri_unwind_mode modes[] = { HTRI_UNWIND_FP, HTRI_UNWIND_CACHED,
                                              HTRI_UNWIND_DWARF };
    const char *build = "frame pointers";
#else
    static const htri_unwind_mode modes[] = { HTRI_UNWIND_CACHED, HTRI_UNWIND_DWARF };
    const char *build = "no frame pointers";
#endif
    if (captures <= 0)
        captures = BENCH_CAPTURES;
    if (htri_unwind_init(HTRI_UNWIND_CACHED) != 0 || htri_unwind_init(HTRI_UNWIND_DWARF) != 0) {
        fprintf(stderr, "unwind_bench: init failed\n");
        return 1;
    }
    printf("# %s build; best of %d x %ld captures; %d frames of distinct functions\n", build,
           BENCH_ROUNDS, captures, BENCH_DEPTH);
    double chain_ns = bench_best(BENCH_NO_CAPTURE, BENCH_MOVING, captures);
    printf("# moving: calling the chain alone costs %.1f ns, subtracted below\n", chain_ns);
    printf("# ns/capture   same    mixed   moving   frames (same)\n");
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        double same = bench_best((int)modes[i], BENCH_SAME, captures);
        int frames = g_bench.frames;
        double mixed = bench_best((int)modes[i], BENCH_MIXED, captures);
        double moving = bench_best((int)modes[i], BENCH_MOVING, captures) - chain_ns;
        printf("%-10s %7.1f  %7.1f  %7.1f   %d\n", names[modes[i]], same, mixed, moving, frames);
    }
    return 0;
}
