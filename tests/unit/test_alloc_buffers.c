/* Unit test of the allocators that own their memory layout: the fixed buffer (with the
 * space-leak diagnostic reproduced on a rebuilt cell set, and the two-buffer fix), the arena
 * and the pool. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "heaptrail.h"
#include "check.h"

static char g_out[1 << 16];
static size_t g_out_len, g_out_lines;

static void capture(void *user, const char *line, size_t len)
{
    if (g_out_len + len < sizeof g_out) {
        memcpy(g_out + g_out_len, line, len);
        g_out_len += len;
        g_out[g_out_len] = 0;
    }
    g_out_lines++;
}

static void reset_out(void)
{
    g_out_len = g_out_lines = 0;
    g_out[0] = 0;
}

#define SINK HTR_SINK_FN(capture, NULL)
#define HAS(s) (strstr(g_out, (s)) != NULL)

enum { N_CELLS = 256 };

/* One step of a 1-D cellular automaton (rule 110) on a ring. The cell set is rebuilt each
 * step: the classic mistake allocates the new set before freeing the old one. Exported so
 * the diagnostic's stack names it. */
uint8_t *rebuild_cells(htr_allocator_t a, uint8_t *old);
__attribute__((visibility("default"), noinline)) uint8_t *rebuild_cells(htr_allocator_t a,
                                                                        uint8_t *old)
{
    uint8_t *cells = htr_alloc(a, N_CELLS);
    if (!cells)
        return NULL;
    for (int i = 0; i < N_CELLS; i++) {
        int l = old[(i + N_CELLS - 1) % N_CELLS], c = old[i], r = old[(i + 1) % N_CELLS];
        cells[i] = (uint8_t)((110 >> (l << 2 | c << 1 | r)) & 1);
    }
    htr_free(a, old, N_CELLS);
    return cells;
}

static uint8_t *seed_cells(htr_allocator_t a)
{
    uint8_t *c = htr_alloc(a, N_CELLS);
    if (c) {
        memset(c, 0, N_CELLS);
        c[N_CELLS - 1] = 1;
    }
    return c;
}

static void test_fixed_space_leak(void)
{
    static unsigned char buf[16 * 1024];
    htr_layer_opts_t o = { .sink = SINK };
    htr_fixed_t *f = htr_fixed_new(buf, sizeof buf, &o);
    htr_allocator_t a = htr_fixed_allocator(f);
    uint8_t *cells = seed_cells(a);
    reset_out();
    cells = rebuild_cells(a, cells); /* step one */
    htr_fixed_stats_t s;
    htr_fixed_stats(f, &s);
    /* Reported on the first step, with the freeing stack. */
    CHECK_EQ_U(s.n_stranding_frees, 1);
    CHECK_EQ_U(s.bytes_stranded, N_CELLS);
    CHECK(HAS("space leak: free of 256 bytes at +0 is not the last block"));
    CHECK(HAS("rebuild_cells+0x"));
    fprintf(stderr, "--- fixed: step one ---\n%s", g_out);
    /* Without the diagnostic the first sign would be out-of-memory, many steps later. */
    int step = 1;
    while (cells) {
        uint8_t *next = rebuild_cells(a, cells);
        if (!next)
            break;
        cells = next;
        step++;
    }
    htr_fixed_stats(f, &s);
    CHECK(step >= 50);
    CHECK_EQ_U(s.n_failed, 1);
    CHECK_EQ_U(s.bytes_stranded, (size_t)(step) * N_CELLS);
    fprintf(stderr, "fixed: out of memory only at step %d; diagnostic at step 1\n", step + 1);
    /* Freeing the last block gives back it and every stranded block under it. */
    htr_free(a, cells, N_CELLS);
    htr_fixed_stats(f, &s);
    CHECK_EQ_U(s.bytes_used, 0);
    CHECK_EQ_U(s.bytes_stranded, 0);
    htr_fixed_destroy(f);
}

static void test_fixed_two_buffers(void)
{
    /* The fix: two buffers, swapped each step; the old set is always the last block of its
     * own buffer, so every free gives its bytes back. */
    static unsigned char buf[2][N_CELLS];
    htr_layer_opts_t o = { .sink = SINK };
    htr_fixed_t *f[2] = { htr_fixed_new(buf[0], sizeof buf[0], &o),
                          htr_fixed_new(buf[1], sizeof buf[1], &o) };
    htr_allocator_t a[2] = { htr_fixed_allocator(f[0]), htr_fixed_allocator(f[1]) };
    reset_out();
    uint8_t *cells = seed_cells(a[0]);
    int cur = 0;
    for (int step = 0; step < 1000 && cells; step++) {
        uint8_t *next = htr_alloc(a[!cur], N_CELLS);
        CHECK(next != NULL);
        if (!next)
            break;
        for (int i = 0; i < N_CELLS; i++) {
            int l = cells[(i + N_CELLS - 1) % N_CELLS], c = cells[i], r = cells[(i + 1) % N_CELLS];
            next[i] = (uint8_t)((110 >> (l << 2 | c << 1 | r)) & 1);
        }
        htr_free(a[cur], cells, N_CELLS);
        cells = next;
        cur = !cur;
    }
    htr_free(a[cur], cells, N_CELLS);
    for (int i = 0; i < 2; i++) {
        htr_fixed_stats_t s;
        htr_fixed_stats(f[i], &s);
        CHECK_EQ_U(s.n_stranding_frees, 0);
        CHECK_EQ_U(s.bytes_stranded, 0);
        CHECK_EQ_U(s.bytes_used, 0);
        CHECK_EQ_U(s.high_water, N_CELLS);
        CHECK_EQ_U(s.n_failed, 0);
        htr_fixed_destroy(f[i]);
    }
    CHECK_EQ_U(g_out_lines, 0);
}

static void test_fixed_rules(void)
{
    static unsigned char buf[1024];
    htr_layer_opts_t o = { .sink = SINK };
    htr_fixed_t *f = htr_fixed_new(buf, sizeof buf, &o);
    htr_allocator_t a = htr_fixed_allocator(f);
    char *x = htr_alloc(a, 100), *y = htr_alloc_aligned(a, 10, 64);
    CHECK(((uintptr_t)y & 63) == 0);
    CHECK(htr_resize(a, x, 100, 200) == 0); /* not last: cannot grow */
    CHECK(htr_resize(a, x, 100, 50) == 1);  /* but may shrink */
    CHECK(htr_resize(a, y, 10, 500) == 1);  /* last: grows in place */
    CHECK(htr_resize(a, y, 500, 5000) == 0);
    errno = 0;
    CHECK(htr_alloc(a, 2000) == NULL && errno == ENOMEM);
    reset_out();
    htr_free(a, y, 500);
    htr_free(a, y, 500); /* double free */
    CHECK(HAS("double free") || HAS("not allocated here"));
    int local;
    htr_free(a, &local, 4);
    CHECK(HAS("not allocated here"));
    htr_free(a, x, 50);
    htr_fixed_stats_t s;
    htr_fixed_stats(f, &s);
    CHECK_EQ_U(s.bytes_used, 0);
    CHECK(s.high_water >= 500);
    x = htr_alloc(a, 10);
    htr_fixed_reset(f);
    htr_fixed_stats(f, &s);
    CHECK_EQ_U(s.bytes_used, 0);
    htr_fixed_destroy(f);
    errno = 0;
    CHECK(htr_fixed_new(NULL, 10, NULL) == NULL && errno == EINVAL);
}

static void test_arena(void)
{
    htr_tracking_t *t = htr_tracking_new(htr_libc_allocator(), NULL);
    htr_arena_t *ar = htr_arena_new(htr_tracking_allocator(t), 4096);
    htr_allocator_t a = htr_arena_allocator(ar);
    for (int i = 0; i < 100; i++) {
        char *p = htr_alloc(a, 100);
        CHECK(p != NULL);
        memset(p, i, 100);
    }
    htr_arena_stats_t s;
    htr_arena_stats(ar, &s);
    CHECK_EQ_U(s.bytes_used, 10000);
    CHECK_EQ_U(s.high_water, 10000);
    CHECK(s.n_chunks >= 3);
    CHECK_EQ_U(htr_tracking_live_bytes(t), s.bytes_reserved);
    /* the last block can be grown in place and given back */
    char *last = htr_alloc(a, 10);
    CHECK(htr_resize(a, last, 10, 20) == 1);
    htr_free(a, last, 20);
    char *again = htr_alloc(a, 10);
    CHECK(again == last);
    char *big = htr_alloc_aligned(a, 100000, 256);
    CHECK(big && ((uintptr_t)big & 255) == 0);
    htr_arena_stats(ar, &s);
    CHECK_EQ_U(s.high_water, 10000 + 10 + 100000);
    htr_arena_reset(ar);
    CHECK_EQ_U(htr_tracking_live_bytes(t), 0);
    htr_arena_stats(ar, &s);
    CHECK_EQ_U(s.bytes_used, 0);
    CHECK_EQ_U(s.high_water, 10000 + 10 + 100000);
    CHECK_EQ_U(s.n_resets, 1);
    htr_alloc(a, 1);
    htr_arena_destroy(ar);
    CHECK_EQ_U(htr_tracking_live_bytes(t), 0);
    htr_tracking_destroy(t);
}

static void test_pool(void)
{
    htr_tracking_t *t = htr_tracking_new(htr_libc_allocator(), NULL);
    htr_layer_opts_t o = { .sink = SINK };
    htr_pool_t *p = htr_pool_new(htr_tracking_allocator(t), 48, 16, 64, &o);
    htr_allocator_t a = htr_pool_allocator(p);
    void *objs[100];
    for (int i = 0; i < 100; i++)
        objs[i] = htr_alloc(a, 48);
    for (int i = 0; i < 50; i++)
        htr_free(a, objs[i], 48);
    for (int i = 0; i < 50; i++)
        objs[i] = htr_alloc(a, 40);
    htr_pool_stats_t s;
    htr_pool_stats(p, &s);
    CHECK_EQ_U(s.misses, 100);
    CHECK_EQ_U(s.hits, 50);
    CHECK_EQ_U(s.n_slabs, 2);
    CHECK_EQ_U(s.n_live, 100);
    CHECK_EQ_U(htr_tracking_live_bytes(t), 2 * 64 * 48);
    errno = 0;
    CHECK(htr_alloc(a, 49) == NULL && errno == EINVAL);
    CHECK(htr_resize(a, objs[0], 40, 48) == 1);
    CHECK(htr_resize(a, objs[0], 48, 49) == 0);
    for (int i = 0; i < 97; i++)
        htr_free(a, objs[i], 48);
    reset_out();
    htr_free(a, objs[0], 48); /* double free */
    CHECK(HAS("not a live object"));
    reset_out();
    CHECK_EQ_U(htr_pool_report(p, SINK), 3);
    CHECK(HAS("3 objects never returned"));
    CHECK(HAS("never returned, allocated at:"));
    fprintf(stderr, "--- pool report ---\n%s", g_out);
    htr_pool_destroy(p);
    CHECK_EQ_U(htr_tracking_live_bytes(t), 0);
    htr_tracking_destroy(t);
    errno = 0;
    CHECK(htr_pool_new(htr_libc_allocator(), 0, 16, 0, NULL) == NULL && errno == EINVAL);
}

int main(void)
{
    size_t meta0 = htr_alloc_bookkeeping_bytes();
    test_fixed_space_leak();
    test_fixed_two_buffers();
    test_fixed_rules();
    test_arena();
    test_pool();
    CHECK_EQ_U(htr_alloc_bookkeeping_bytes(), meta0);
    return CHECK_DONE();
}
