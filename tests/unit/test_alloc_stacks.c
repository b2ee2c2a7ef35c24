/* Unit test of layers stacked three deep, in more than one order; of every out-of-memory
 * path, forced with the failing layer (parent memory) and with the bookkeeping fault switch
 * (layer memory); and of a stack shared by several threads. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "heaptrail.h"
#include "alloc/alloc_internal.h"
#include "check.h"

static char g_out[1 << 16];
static size_t g_out_len;

static void capture(void *user, const char *line, size_t len)
{
    if (g_out_len + len < sizeof g_out) {
        memcpy(g_out + g_out_len, line, len);
        g_out_len += len;
        g_out[g_out_len] = 0;
    }
}

static void reset_out(void)
{
    g_out_len = 0;
    g_out[0] = 0;
}

#define SINK HTR_SINK_FN(capture, NULL)
#define HAS(s) (strstr(g_out, (s)) != NULL)

/* your code -> testing -> tracking -> validating -> libc */
static void test_doc_stack(void)
{
    htr_layer_opts_t o = { .sink = SINK };
    htr_validating_t *v = htr_validating_new(htr_libc_allocator(), &o);
    htr_tracking_t *tr = htr_tracking_new(htr_validating_allocator(v), &o);
    htr_testing_t *te = htr_testing_new(htr_tracking_allocator(tr), &o);
    htr_allocator_t a = htr_testing_allocator(te);
    char *name = htr_alloc(a, 8);
    memcpy(name, "overflow", 9); /* one byte too many */
    char *kept = htr_alloc(a, 100);
    int *arr = HTR_NEW_ARRAY(a, int, 50);
    arr = HTR_RESIZE_ARRAY(a, arr, 50, 5000);
    CHECK(arr != NULL);
    CHECK_EQ_U(htr_tracking_live_bytes(tr), 8 + 100 + 5000 * sizeof(int));
    reset_out();
    htr_free(a, name, 8);
    CHECK(HAS("damaged block") && HAS("at +8..+8"));
    HTR_FREE_ARRAY(a, arr, 5000);
    reset_out();
    htr_testing_result_t r;
    CHECK_EQ_U(htr_testing_finish(te, &r), 1);
    CHECK_EQ_U(r.n_leaks, 1);
    CHECK(HAS("leak: 100 bytes"));
    CHECK_EQ_U(htr_tracking_live_bytes(tr), 100);
    htr_free(a, kept, 100);
    CHECK_EQ_U(htr_testing_finish(te, NULL), 0);
    CHECK_EQ_U(htr_tracking_live_bytes(tr), 0);
    CHECK_EQ_U(htr_validating_errors(v), 1);
    htr_testing_destroy(te);
    htr_tracking_destroy(tr);
    htr_validating_destroy(v);
}

/* The same layers in another order: tracking under validating sees the guards. */
static void test_other_orders(void)
{
    htr_tracking_t *tr = htr_tracking_new(htr_page_allocator(), NULL);
    htr_validating_t *v = htr_validating_new(htr_tracking_allocator(tr), NULL);
    htr_testing_t *te = htr_testing_new(htr_validating_allocator(v), NULL);
    htr_allocator_t a = htr_testing_allocator(te);
    void *p = htr_alloc(a, 10);
    CHECK_EQ_U(htr_tracking_live_bytes(tr), 10 + 16 + 16);
    p = htr_realloc(a, p, 10, 10000);
    CHECK_EQ_U(htr_tracking_live_bytes(tr), 10000 + 16 + 16);
    htr_free(a, p, 10000);
    CHECK_EQ_U(htr_testing_finish(te, NULL), 0);
    CHECK_EQ_U(htr_tracking_live_bytes(tr), 0);
    htr_testing_destroy(te);
    htr_validating_destroy(v);
    htr_tracking_destroy(tr);

    /* tagging -> profiling -> limit */
    htr_limit_t *l = htr_limit_new(htr_libc_allocator(), 4096);
    htr_profiling_t *pr = htr_profiling_new(htr_limit_allocator(l));
    htr_tagging_t *tg = htr_tagging_new(htr_profiling_allocator(pr), "cache");
    a = htr_tagging_allocator(tg);
    void *b1 = htr_alloc(a, 3000);
    CHECK(b1 != NULL);
    CHECK(htr_alloc(a, 3000) == NULL);
    htr_profile_counts_t c;
    CHECK(htr_profiling_tag(pr, "cache", &c) == 0);
    CHECK_EQ_U(c.n_allocs, 1); /* the refused call is not counted as an allocation */
    htr_free(a, b1, 3000);
    htr_alloc_stats_t s;
    htr_limit_stats(l, &s);
    CHECK_EQ_U(s.bytes_live, 0);
    CHECK_EQ_U(s.n_failed, 1);
    htr_tagging_destroy(tg);
    htr_profiling_destroy(pr);
    htr_limit_destroy(l);

    /* logging -> pool -> arena */
    htr_arena_t *ar = htr_arena_new(htr_libc_allocator(), 1024);
    htr_pool_t *po = htr_pool_new(htr_arena_allocator(ar), 32, 8, 16, NULL);
    htr_logging_t *lg = htr_logging_new(htr_pool_allocator(po), SINK);
    a = htr_logging_allocator(lg);
    reset_out();
    void *objs[40];
    for (int i = 0; i < 40; i++)
        objs[i] = htr_alloc_aligned(a, 32, 8);
    for (int i = 0; i < 40; i++)
        htr_free_aligned(a, objs[i], 32, 8);
    CHECK_EQ_U(htr_logging_lines(lg), 80);
    htr_pool_stats_t ps;
    htr_pool_stats(po, &ps);
    CHECK_EQ_U(ps.n_slabs, 3);
    htr_arena_stats_t as;
    htr_arena_stats(ar, &as);
    CHECK_EQ_U(as.bytes_used, 3 * 16 * 32);
    htr_logging_destroy(lg);
    htr_pool_destroy(po);
    htr_arena_destroy(ar);
}

/* Every layer over a parent that fails: NULL out, nothing recorded, nothing leaked. */
static void test_parent_oom(void)
{
    htr_tracking_t *base = htr_tracking_new(htr_libc_allocator(), NULL);
    htr_failing_t *f = htr_failing_new(htr_tracking_allocator(base),
                                       &(htr_failing_opts_t){ HTR_FAIL_AFTER, 0, 0, 0 });
    htr_allocator_t failing = htr_failing_allocator(f);
    htr_layer_opts_t o = { .sink = SINK };

    htr_testing_t *te = htr_testing_new(failing, &o);
    errno = 0;
    CHECK(htr_alloc(htr_testing_allocator(te), 10) == NULL && errno == ENOMEM);
    htr_alloc_stats_t s;
    htr_testing_stats(te, &s);
    CHECK_EQ_U(s.n_failed, 1);
    CHECK_EQ_U(htr_testing_finish(te, NULL), 0);
    htr_testing_destroy(te);

    htr_tracking_t *tr = htr_tracking_new(failing, NULL);
    CHECK(htr_alloc(htr_tracking_allocator(tr), 10) == NULL);
    htr_tracking_stats(tr, &s);
    CHECK_EQ_U(s.n_failed, 1);
    CHECK_EQ_U(s.n_live, 0);
    /* a failed realloc keeps the old block and its record */
    htr_failing_set(f, NULL);
    void *p = htr_alloc(htr_tracking_allocator(tr), 10);
    htr_failing_set(f, &(htr_failing_opts_t){ HTR_FAIL_AFTER, 0, 0, 0 });
    CHECK(htr_realloc(htr_tracking_allocator(tr), p, 10, 1 << 20) == NULL);
    CHECK_EQ_U(htr_tracking_live_bytes(tr), 10);
    htr_free(htr_tracking_allocator(tr), p, 10);
    htr_tracking_destroy(tr);

    htr_validating_t *v = htr_validating_new(failing, &o);
    CHECK(htr_alloc(htr_validating_allocator(v), 10) == NULL);
    CHECK_EQ_U(htr_validating_check(v), 0);
    CHECK_EQ_U(htr_validating_errors(v), 0);
    errno = 0;
    CHECK(htr_alloc(htr_validating_allocator(v), SIZE_MAX - 8) == NULL && errno == ENOMEM);
    htr_validating_destroy(v);

    htr_profiling_t *pr = htr_profiling_new(failing);
    CHECK(htr_alloc(htr_profiling_allocator(pr), 10) == NULL);
    htr_profile_counts_t c;
    CHECK(htr_profiling_class(pr, 4, &c) == 0 && c.n_allocs == 0);
    htr_profiling_destroy(pr);

    htr_limit_t *l = htr_limit_new(failing, 1000);
    CHECK(htr_alloc(htr_limit_allocator(l), 10) == NULL);
    htr_limit_stats(l, &s);
    CHECK_EQ_U(s.bytes_live, 0); /* the reservation was given back */
    htr_limit_destroy(l);

    htr_logging_t *lg = htr_logging_new(failing, SINK);
    reset_out();
    CHECK(htr_alloc(htr_logging_allocator(lg), 10) == NULL);
    CHECK(HAS("alloc 10 align 16 -> (nil)"));
    htr_logging_destroy(lg);

    htr_tagging_t *tg = htr_tagging_new(failing, "t");
    CHECK(htr_alloc(htr_tagging_allocator(tg), 10) == NULL);
    CHECK(htr_tag_current() == NULL);
    htr_tagging_destroy(tg);

    htr_arena_t *ar = htr_arena_new(failing, 0);
    CHECK(htr_alloc(htr_arena_allocator(ar), 10) == NULL);
    htr_arena_stats_t as;
    htr_arena_stats(ar, &as);
    CHECK_EQ_U(as.n_chunks, 0);
    CHECK_EQ_U(as.n_allocs, 0);
    errno = 0;
    CHECK(htr_alloc(htr_arena_allocator(ar), SIZE_MAX - 8) == NULL && errno == ENOMEM);
    htr_arena_destroy(ar);

    htr_pool_t *po = htr_pool_new(failing, 16, 16, 8, NULL);
    CHECK(htr_alloc(htr_pool_allocator(po), 16) == NULL);
    htr_pool_stats_t ps;
    htr_pool_stats(po, &ps);
    CHECK_EQ_U(ps.misses, 0);
    CHECK_EQ_U(ps.n_slabs, 0);
    htr_pool_destroy(po);

    CHECK_EQ_U(htr_tracking_live_bytes(base), 0);
    htr_failing_destroy(f);
    htr_tracking_destroy(base);
}

/* Layer bookkeeping out of memory: constructors return NULL, and a block whose record
 * cannot be stored is given back to the parent and the call fails. */
static void test_bookkeeping_oom(void)
{
    htr_allocator_t libc = htr_libc_allocator();
    for (long n = 0; n < 3; n++) {
        htri_alloc_meta_fail_after(n);
        htr_tracking_t *tr = htr_tracking_new(libc, NULL);
        htr_testing_t *te = htr_testing_new(libc, NULL);
        htr_validating_t *v = htr_validating_new(libc, NULL);
        htr_pool_t *po = htr_pool_new(libc, 8, 8, 8, NULL);
        htri_alloc_meta_fail_after(-1);
        htr_tracking_destroy(tr);
        htr_testing_destroy(te);
        htr_validating_destroy(v);
        htr_pool_destroy(po);
    }
    htri_alloc_meta_fail_after(0);
    errno = 0;
    CHECK(htr_tracking_new(libc, NULL) == NULL && errno == ENOMEM);
    CHECK(htr_testing_new(libc, NULL) == NULL);
    CHECK(htr_validating_new(libc, NULL) == NULL);
    CHECK(htr_profiling_new(libc) == NULL);
    CHECK(htr_logging_new(libc, SINK) == NULL);
    CHECK(htr_tagging_new(libc, "x") == NULL);
    CHECK(htr_limit_new(libc, 1) == NULL);
    CHECK(htr_failing_new(libc, NULL) == NULL);
    CHECK(htr_arena_new(libc, 0) == NULL);
    CHECK(htr_pool_new(libc, 8, 8, 8, NULL) == NULL);
    static unsigned char buf[64];
    CHECK(htr_fixed_new(buf, sizeof buf, NULL) == NULL);
    htri_alloc_meta_fail_after(-1);

    /* Fill a table to its first growth (load 1/2 of 64 slots), then starve it. */
    htr_tracking_t *under = htr_tracking_new(libc, NULL);
    htr_allocator_t ua = htr_tracking_allocator(under);
    htr_tracking_t *tr = htr_tracking_new(ua, NULL);
    htr_testing_t *te = htr_testing_new(ua, NULL);
    htr_validating_t *v = htr_validating_new(ua, NULL);
    htr_pool_t *po = htr_pool_new(ua, 16, 16, 64, NULL);
    htr_allocator_t layers[4] = { htr_tracking_allocator(tr), htr_testing_allocator(te),
                                  htr_validating_allocator(v), htr_pool_allocator(po) };
    void *blocks[4][32];
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 32; i++)
            blocks[k][i] = htr_alloc(layers[k], 16);
    size_t live = htr_tracking_live_bytes(under);
    htri_alloc_meta_fail_after(0);
    for (int k = 0; k < 4; k++) {
        errno = 0;
        CHECK(htr_alloc(layers[k], 16) == NULL && errno == ENOMEM);
    }
    htri_alloc_meta_fail_after(-1);
    CHECK_EQ_U(htr_tracking_live_bytes(under), live);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 32; i++)
            htr_free(layers[k], blocks[k][i], 16);
    /* reports that cannot sort their blocks fail cleanly */
    htri_alloc_meta_fail_after(0);
    CHECK(htr_tracking_report(under, SINK, 10) == -ENOMEM);
    htr_testing_result_t tres;
    CHECK_EQ_U(htr_testing_finish(te, &tres), 0);
    CHECK_EQ_U(htr_pool_report(po, SINK), 0);
    htri_alloc_meta_fail_after(-1);
    htr_tracking_destroy(tr);
    htr_testing_destroy(te);
    htr_validating_destroy(v);
    htr_pool_destroy(po);
    CHECK_EQ_U(htr_tracking_live_bytes(under), 0);
    htr_tracking_destroy(under);

    /* fixed buffer: its block list grows past 64 entries */
    static unsigned char fbuf[4096];
    htr_fixed_t *fx = htr_fixed_new(fbuf, sizeof fbuf, NULL);
    for (int i = 0; i < 64; i++)
        CHECK(htr_alloc(htr_fixed_allocator(fx), 8) != NULL);
    htri_alloc_meta_fail_after(0);
    CHECK(htr_alloc(htr_fixed_allocator(fx), 8) == NULL);
    htri_alloc_meta_fail_after(-1);
    htr_fixed_stats_t fs;
    htr_fixed_stats(fx, &fs);
    CHECK_EQ_U(fs.n_failed, 1);
    CHECK_EQ_U(fs.bytes_used, 63 * 16 + 8); /* 16-byte default alignment */
    htr_fixed_destroy(fx);
}

/* Out-of-memory sweep (SQLite's fault simulator style): fail the n-th allocation for every
 * n until the operation succeeds; each failure must unwind without leaking. */
static int build_list(htr_allocator_t a, char ***out, int n)
{
    char **v = HTR_NEW_ARRAY(a, char *, 1);
    if (!v)
        return -ENOMEM;
    int cap = 1;
    for (int i = 0; i < n; i++) {
        if (i == cap) {
            char **nv = HTR_RESIZE_ARRAY(a, v, cap, cap * 2);
            if (!nv)
                goto fail;
            v = nv;
            cap *= 2;
        }
        v[i] = htr_alloc(a, 32);
        if (!v[i])
            goto fail;
        snprintf(v[i], 32, "item %d", i);
        continue;
    fail:
        for (int k = 0; k < i; k++)
            htr_free(a, v[k], 32);
        HTR_FREE_ARRAY(a, v, cap);
        return -ENOMEM;
    }
    for (int k = 0; k < n; k++)
        htr_free(a, v[k], 32);
    HTR_FREE_ARRAY(a, v, cap);
    *out = NULL;
    return 0;
}

static void test_oom_sweep(void)
{
    int n_fail_points = 0;
    for (uint64_t n = 0;; n++) {
        htr_failing_t *f = htr_failing_new(htr_libc_allocator(),
                                           &(htr_failing_opts_t){ HTR_FAIL_AFTER, n, 0, 0 });
        htr_testing_t *te = htr_testing_new(htr_failing_allocator(f), NULL);
        char **out;
        int rc = build_list(htr_testing_allocator(te), &out, 20);
        CHECK_EQ_U(htr_testing_finish(te, NULL), 0);
        uint64_t failures = htr_failing_failures(f);
        htr_testing_destroy(te);
        htr_failing_destroy(f);
        if (rc == 0) {
            CHECK_EQ_U(failures, 0);
            break;
        }
        n_fail_points++;
        CHECK(n < 100);
    }
    CHECK_EQ_U(n_fail_points, 1 + 20 + 5); /* array, 20 items, 5 doublings */
}

/* A shared stack: testing -> tracking -> validating, four threads. */
typedef struct shared {
    htr_allocator_t a;
    int seed;
} shared;

static void *worker(void *arg)
{
    shared *s = arg;
    uint64_t r = (uint64_t)s->seed;
    void *held[64] = { 0 };
    size_t sizes[64] = { 0 };
    for (int i = 0; i < 20000; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int k = (int)((r >> 33) % 64);
        if (held[k]) {
            htr_free(s->a, held[k], sizes[k]);
            held[k] = NULL;
        } else {
            sizes[k] = 1 + (r >> 40) % 300;
            held[k] = htr_alloc(s->a, sizes[k]);
            memset(held[k], 1, sizes[k]);
        }
    }
    for (int k = 0; k < 64; k++)
        htr_free(s->a, held[k], sizes[k]);
    return NULL;
}

static void test_threads(void)
{
    htr_layer_opts_t o = { .stack_depth = 4 };
    htr_validating_t *v = htr_validating_new(htr_libc_allocator(), &o);
    htr_tracking_t *tr = htr_tracking_new(htr_validating_allocator(v), &o);
    htr_testing_t *te = htr_testing_new(htr_tracking_allocator(tr), &o);
    pthread_t th[4];
    shared sh[4];
    for (int i = 0; i < 4; i++) {
        sh[i] = (shared){ htr_testing_allocator(te), i + 1 };
        pthread_create(&th[i], NULL, worker, &sh[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_U(htr_testing_finish(te, NULL), 0);
    htr_alloc_stats_t s;
    htr_tracking_stats(tr, &s);
    CHECK_EQ_U(s.bytes_live, 0);
    CHECK(s.n_allocs > 4 * 5000);
    CHECK_EQ_U(htr_validating_errors(v), 0);
    htr_testing_destroy(te);
    htr_tracking_destroy(tr);
    htr_validating_destroy(v);
}

int main(void)
{
    size_t meta0 = htr_alloc_bookkeeping_bytes();
    test_doc_stack();
    test_other_orders();
    test_parent_oom();
    test_bookkeeping_oom();
    test_oom_sweep();
    test_threads();
    CHECK_EQ_U(htr_alloc_bookkeeping_bytes(), meta0);
    return CHECK_DONE();
}
