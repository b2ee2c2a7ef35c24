/* Benchmark of the debug allocators: ns per call of each layer over libc against plain
 * malloc/free, side by side in one run (rounds interleaved, median), as a markdown table for
 * bench/results/alloc.md. Usage: alloc_bench [--quick] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "heaptrail.h"

enum { SLOTS = 1024, ROUNDS_FULL = 7, ROUNDS_QUICK = 1 };

typedef struct config {
    const char *name;
    int lifo_only;          /* cannot free in random order without stranding memory */
    htr_allocator_t a;
    int plain_malloc;       /* measure malloc/free directly */
    double ns_ws[ROUNDS_FULL], ns_lifo[ROUNDS_FULL];
} config;

/* Thread CPU time, not wall time: on a shared machine the time we are descheduled is not
 * the allocator's cost. */
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *g_slots[SLOTS];
static size_t g_sizes[SLOTS];

/* Working set: SLOTS live blocks, each step frees a random one and allocates a new one. */
static double run_ws(config *c, long iters)
{
    uint64_t r = 42;
    memset(g_slots, 0, sizeof g_slots);
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        size_t k = (size_t)(r >> 33) % SLOTS, size = 16 + (size_t)(r >> 50) % 240;
        if (c->plain_malloc) {
            free(g_slots[k]);
            g_slots[k] = malloc(size);
        } else {
            htr_free(c->a, g_slots[k], g_sizes[k]);
            g_slots[k] = htr_alloc(c->a, size);
        }
        g_sizes[k] = size;
        *(volatile char *)g_slots[k] = 1;
    }
    double t = now_ns() - t0;
    for (size_t k = 0; k < SLOTS; k++) {
        if (c->plain_malloc)
            free(g_slots[k]);
        else
            htr_free(c->a, g_slots[k], g_sizes[k]);
    }
    return t / (2.0 * (double)iters);
}

/* LIFO: allocate and free at once (what a bump allocator is made for). */
static double run_lifo(config *c, long iters)
{
    uint64_t r = 7;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        size_t size = 16 + (size_t)(r >> 50) % 240;
        void *p;
        if (c->plain_malloc) {
            p = malloc(size);
            *(volatile char *)p = 1;
            free(p);
        } else {
            p = htr_alloc(c->a, size);
            *(volatile char *)p = 1;
            htr_free(c->a, p, size);
        }
    }
    return (now_ns() - t0) / (2.0 * (double)iters);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void discard(void *user, const char *line, size_t len)
{
    (void)user;
    (void)line;
    (void)len;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int rounds = quick ? ROUNDS_QUICK : ROUNDS_FULL;
    long iters = quick ? 20000 : 400000;
    htr_allocator_t libc = htr_libc_allocator();
    htr_layer_opts_t nostack = { .stack_depth = -1 }, stacks = { .stack_depth = 16 };
    static unsigned char fixed_buf[1 << 16];

    htr_validating_t *v3 = htr_validating_new(libc, &stacks);
    htr_tracking_t *t3 = htr_tracking_new(htr_validating_allocator(v3), &stacks);
    htr_testing_t *s3 = htr_testing_new(htr_tracking_allocator(t3), &stacks);
    htr_validating_t *v3n = htr_validating_new(libc, &nostack);
    htr_tracking_t *t3n = htr_tracking_new(htr_validating_allocator(v3n), &nostack);
    htr_testing_t *s3n = htr_testing_new(htr_tracking_allocator(t3n), &nostack);

    config cs[] = {
        { "malloc/free (plain libc)", 0, { 0 }, 1, { 0 }, { 0 } },
        { "libc parent (interface only)", 0, libc, 0, { 0 }, { 0 } },
        { "testing, 16-frame stacks", 0, htr_testing_allocator(htr_testing_new(libc, &stacks)), 0, { 0 }, { 0 } },
        { "testing, no stacks", 0, htr_testing_allocator(htr_testing_new(libc, &nostack)), 0, { 0 }, { 0 } },
        { "tracking, 16-frame stacks", 0, htr_tracking_allocator(htr_tracking_new(libc, &stacks)), 0, { 0 }, { 0 } },
        { "tracking, no stacks", 0, htr_tracking_allocator(htr_tracking_new(libc, &nostack)), 0, { 0 }, { 0 } },
        { "logging (callback, discarded)", 0, htr_logging_allocator(htr_logging_new(libc, HTR_SINK_FN(discard, NULL))), 0, { 0 }, { 0 } },
        { "validating, no stacks", 0, htr_validating_allocator(htr_validating_new(libc, &nostack)), 0, { 0 }, { 0 } },
        { "profiling", 0, htr_profiling_allocator(htr_profiling_new(libc)), 0, { 0 }, { 0 } },
        { "tagging", 0, htr_tagging_allocator(htr_tagging_new(libc, "bench")), 0, { 0 }, { 0 } },
        { "limit", 0, htr_limit_allocator(htr_limit_new(libc, (size_t)1 << 40)), 0, { 0 }, { 0 } },
        { "failing (never fails)", 0, htr_failing_allocator(htr_failing_new(libc, NULL)), 0, { 0 }, { 0 } },
        { "pool (256-byte objects)", 0, htr_pool_allocator(htr_pool_new(libc, 256, 16, 256, &nostack)), 0, { 0 }, { 0 } },
        { "fixed buffer", 1, htr_fixed_allocator(htr_fixed_new(fixed_buf, sizeof fixed_buf, &nostack)), 0, { 0 }, { 0 } },
        { "arena", 1, htr_arena_allocator(htr_arena_new(libc, 0)), 0, { 0 }, { 0 } },
        { "stack testing>tracking>validating, stacks", 0, htr_testing_allocator(s3), 0, { 0 }, { 0 } },
        { "stack testing>tracking>validating, no stacks", 0, htr_testing_allocator(s3n), 0, { 0 }, { 0 } },
    };
    int n = (int)(sizeof cs / sizeof cs[0]);
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < n; i++) {
            cs[i].ns_ws[r] = cs[i].lifo_only ? 0 : run_ws(&cs[i], iters);
            cs[i].ns_lifo[r] = run_lifo(&cs[i], iters);
        }
    }
    double base_ws = median(cs[0].ns_ws, rounds), base_lifo = median(cs[0].ns_lifo, rounds);
    printf("| layer over libc | working set: ns/call | x malloc | LIFO: ns/call | x malloc |\n");
    printf("|---|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        double ws = median(cs[i].ns_ws, rounds), lifo = median(cs[i].ns_lifo, rounds);
        if (cs[i].lifo_only)
            printf("| %s | n/a | n/a | %.1f | %.2f |\n", cs[i].name, lifo, lifo / base_lifo);
        else
            printf("| %s | %.1f | %.2f | %.1f | %.2f |\n", cs[i].name, ws, ws / base_ws, lifo,
                   lifo / base_lifo);
    }
    printf("\n%ld iterations x %d rounds (median, thread CPU time); one call = one alloc or one "
           "free; sizes 16..255 bytes; working set = %d live blocks freed in random order.\n",
           iters, rounds, SLOTS);
    return 0;
}
