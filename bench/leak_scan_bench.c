/* leak_scan_bench: time of the leak scan (src/agent/scan*.c) on a heap of N live blocks, the
 * issue's target being N = 1,000,000 under 1 s. Built by tests/unit/leaks.cmake; results in
 * bench/results/leaks.md.
 *
 * Usage: leak_scan_bench [N] [REPS]
 *
 * The heap: N malloc'd blocks of 16..256 bytes (log-uniform), each holding pointers to
 * others so the flood fill has real work: 60% hang from a root array as a binary tree
 * (still reachable), 10% are reached only through interior pointers (possibly lost), 30% are
 * lost chains of 8 (one definite + 7 indirect each). Two timings per repetition:
 *   blocks: htri_scan_blocks (sort + flood + cliques) with the root array as the only root;
 *   world:  htri_scan_world (stop-the-world, /proc/self/maps roots, registers, resume) on the
 *           same blocks. Prints one line per repetition and the median. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "agent/scan.h"
#include "base/os.h"

static uint64_t bench_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static struct {
    htri_block *blocks;
    size_t n;
} g_bench;

static uintptr_t *g_root_array;   /* the program's "globals" */

static size_t bench_snap(void *user, htri_block *out, size_t cap)
{
    (void)user;
    if (out) memcpy(out, g_bench.blocks, (cap < g_bench.n ? cap : g_bench.n) * sizeof *out);
    return g_bench.n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1 || reps > 64) reps = 5;
    size_t tbytes = n * sizeof(htri_block);
    g_bench.blocks = htri_os_pages_alloc(tbytes);        /* ours: not a root */
    htri_block *work = htri_os_pages_alloc(tbytes);
    void **ptrs = htri_os_pages_alloc(n * sizeof(void *));
    if (!g_bench.blocks || !work || !ptrs) return 1;
    g_bench.n = n;
    uint64_t seed = 0x9e3779b97f4a7c15ull, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        size_t size = (size_t)16 << (bench_rand(&seed) % 5);   /* 16..256 */
        size += bench_rand(&seed) % size;
        ptrs[i] = calloc(1, size);
        g_bench.blocks[i] = (htri_block){ (uintptr_t)ptrs[i], size, (uint32_t)(i % 1000) + 1, 0, 0, 0, 0 };
        bytes += size;
    }
    size_t n_tree = n * 6 / 10, n_possible = n / 10;
    size_t n_roots = n_possible + 1;
    /* the program's root array: an anonymous mapping of its own (a root for the world scan) */
    g_root_array = mmap(NULL, n_roots * sizeof *g_root_array, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g_root_array == MAP_FAILED) return 1;
    for (size_t i = 1; i < n_tree; i++) ((void **)ptrs[(i - 1) / 2])[(i - 1) % 2] = ptrs[i];
    g_root_array[0] = (uintptr_t)ptrs[0];
    for (size_t i = 0; i < n_possible; i++) {
        size_t k = n_tree + i;
        g_root_array[1 + i % (n_roots - 1)] = (uintptr_t)ptrs[k] + 8;
    }
    for (size_t i = n_tree + n_possible; i + 1 < n; i++)
        if ((i - n_tree - n_possible) % 8 != 7) ((void **)ptrs[i])[1] = ptrs[i + 1];

    htri_scan_root root = { (uintptr_t)g_root_array, (uintptr_t)(g_root_array + n_roots), 0 };
    htri_scan_options opt = { .roots = &root, .n_roots = 1, .heuristics = HTRI_HEUR_ALL };
    uint64_t t_blocks[64], t_world[64];
    htri_scan_result r;
    for (int rep = 0; rep < reps; rep++) {
        memcpy(work, g_bench.blocks, tbytes);
        uint64_t t0 = htri_os_now_ns();
        if (htri_scan_blocks(work, n, &opt, &r) != 0) return 1;
        t_blocks[rep] = htri_os_now_ns() - t0;
        if (rep == 0)
            printf("kinds: definite %llu indirect %llu possible %llu reachable %llu blocks\n",
                   (unsigned long long)r.blocks[0], (unsigned long long)r.blocks[1],
                   (unsigned long long)r.blocks[2], (unsigned long long)r.blocks[3]);
        htri_scan_result_free(&r);

        htri_scan_world_result w;
        t0 = htri_os_now_ns();
        if (htri_scan_world(bench_snap, NULL, HTRI_HEUR_ALL, 0, &w) != 0) return 1;
        t_world[rep] = htri_os_now_ns() - t0;
        printf("rep %d: blocks %.3f s, world %.3f s (%llu root bytes, %u threads)\n", rep,
               t_blocks[rep] / 1e9, t_world[rep] / 1e9, (unsigned long long)w.scan.bytes_roots,
               w.n_threads);
        htri_scan_world_free(&w);
    }
    qsort(t_blocks, (size_t)reps, sizeof t_blocks[0], cmp_u64);
    qsort(t_world, (size_t)reps, sizeof t_world[0], cmp_u64);
    printf("N=%zu blocks, %llu MiB of heap: median scan %.3f s (blocks), %.3f s (world)\n", n,
           (unsigned long long)(bytes >> 20), t_blocks[reps / 2] / 1e9, t_world[reps / 2] / 1e9);
    return 0;
}
