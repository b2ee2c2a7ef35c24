/* Unit test of each debug layer on its own: testing, tracking, logging, validating,
 * profiling, tagging, limit, failing. Reports are captured through a sink callback and
 * checked for the facts they must name. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "heaptrail.h"
#include "alloc/alloc_internal.h"
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
    g_out_len = 0;
    g_out_lines = 0;
    g_out[0] = 0;
}

#define SINK HTR_SINK_FN(capture, NULL)
#define HAS(s) (strstr(g_out, (s)) != NULL)

void *leaky_function(htr_allocator_t a);
/* Exported and not inlined, so dladdr can name it in the captured stacks. */
__attribute__((visibility("default"), noinline)) void *leaky_function(htr_allocator_t a)
{
    void *p = htr_alloc(a, 24);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void test_testing(void)
{
    htr_layer_opts_t o = { .sink = SINK };
    htr_testing_t *t = htr_testing_new(htr_libc_allocator(), &o);
    htr_allocator_t a = htr_testing_allocator(t);
    void *p = htr_alloc(a, 10), *q = htr_alloc(a, 20);
    void *leak = leaky_function(a);
    htr_free(a, p, 10);
    reset_out();
    htr_free(a, p, 10); /* double free: caught, not passed on */
    CHECK(HAS("double free"));
    CHECK(HAS("first freed at:"));
    reset_out();
    int local;
    htr_free(a, &local, 4); /* foreign */
    CHECK(HAS("foreign pointer"));
    reset_out();
    htr_free(a, q, 21); /* wrong size: reported, freed with the true size */
    CHECK(HAS("size mismatch"));
    CHECK(htr_resize(a, &local, 4, 8) == 0);
    reset_out();
    htr_testing_result_t r;
    size_t problems = htr_testing_finish(t, &r);
    CHECK_EQ_U(r.n_leaks, 1);
    CHECK_EQ_U(r.bytes_leaked, 24);
    CHECK_EQ_U(r.n_double_frees, 1);
    CHECK(r.n_foreign_frees >= 2);
    CHECK_EQ_U(r.n_size_mismatches, 1);
    CHECK(problems >= 5);
    CHECK(HAS("leak: 24 bytes"));
    CHECK(HAS("leaky_function+0x"));
    fprintf(stderr, "--- testing report ---\n%s", g_out);
    htr_free(a, leak, 24);
    CHECK_EQ_U(htr_testing_finish(t, &r) - (r.n_double_frees + r.n_foreign_frees + r.n_size_mismatches), 0);
    CHECK_EQ_U(r.n_leaks, 0);
    htr_testing_destroy(t);

    /* A clean run returns 0: what a test asserts. */
    t = htr_testing_new(htr_libc_allocator(), NULL);
    a = htr_testing_allocator(t);
    char *s = htr_alloc(a, 5);
    s = htr_realloc(a, s, 5, 5000);
    s = htr_realloc(a, s, 5000, 3);
    htr_free(a, s, 3);
    CHECK_EQ_U(htr_testing_finish(t, NULL), 0);
    htr_testing_destroy(t);
}

static void test_tracking(void)
{
    htr_tracking_t *t = htr_tracking_new(htr_libc_allocator(), NULL);
    htr_allocator_t a = htr_tracking_allocator(t);
    void *b[10];
    for (int i = 0; i < 10; i++)
        b[i] = htr_alloc(a, (size_t)(i + 1) * 100);
    htr_alloc_stats_t s;
    htr_tracking_stats(t, &s);
    CHECK_EQ_U(s.bytes_live, 5500);
    CHECK_EQ_U(s.n_live, 10);
    for (int i = 0; i < 5; i++)
        htr_free(a, b[i], (size_t)(i + 1) * 100);
    b[9] = htr_realloc(a, b[9], 1000, 100000);
    htr_tracking_stats(t, &s);
    CHECK_EQ_U(s.bytes_live, 600 + 700 + 800 + 900 + 100000);
    CHECK_EQ_U(s.bytes_peak, 600 + 700 + 800 + 900 + 100000);
    CHECK_EQ_U(s.n_allocs, 10);
    CHECK_EQ_U(s.n_frees, 5);
    CHECK(s.n_resizes >= 1 || s.n_frees == 6);
    reset_out();
    long n = htr_tracking_report(t, SINK, 2);
    CHECK_EQ_U(n, 5);
    CHECK(HAS("5 live blocks, 103000 bytes live"));
    CHECK(HAS("block 0x") && HAS("100000 bytes"));
    CHECK(HAS("... 3 more blocks"));
    fprintf(stderr, "--- tracking report ---\n%s", g_out);
    for (int i = 5; i < 10; i++)
        htr_free(a, b[i], i == 9 ? 100000 : (size_t)(i + 1) * 100);
    CHECK_EQ_U(htr_tracking_live_bytes(t), 0);
    htr_tracking_destroy(t);
}

static void test_logging(void)
{
    htr_logging_t *l = htr_logging_new(htr_libc_allocator(), SINK);
    htr_allocator_t a = htr_logging_allocator(l);
    reset_out();
    void *p = htr_alloc(a, 24);
    p = htr_realloc(a, p, 24, 4096);
    htr_free(a, p, 4096);
    CHECK(HAS("alloc 24 align 16 -> 0x"));
    CHECK(HAS("resize ") && HAS("24 -> 4096"));
    CHECK(HAS("free 0x") && HAS(" 4096 align 16 from 0x"));
    CHECK_EQ_U(htr_logging_lines(l), g_out_lines);
    CHECK(g_out_lines >= 3);
    htr_logging_destroy(l);
}

static void test_validating(void)
{
    htr_layer_opts_t o = { .sink = SINK };
    htr_validating_t *v = htr_validating_new(htr_libc_allocator(), &o);
    htr_allocator_t a = htr_validating_allocator(v);
    unsigned char *p = htr_alloc(a, 24);
    CHECK(p[0] == HTR_FILL_FRESH && p[23] == HTR_FILL_FRESH);
    unsigned char *q = htr_alloc_aligned(a, 100, 64);
    CHECK(((uintptr_t)q & 63) == 0);
    CHECK_EQ_U(htr_validating_check(v), 0);
    reset_out();
    p[24] = 'A'; /* one past the end */
    p[25] = 'B';
    q[-1] = 'C'; /* one before the start */
    CHECK_EQ_U(htr_validating_check(v), 2);
    CHECK(HAS("damaged block"));
    CHECK(HAS("2 damaged bytes after the block (overrun), at +24..+25 (expected 0xfb, found 41 42)"));
    CHECK(HAS("1 damaged bytes before the block (underrun), at -1..-1"));
    fprintf(stderr, "--- validating report ---\n%s", g_out);
    reset_out();
    htr_free(a, p, 24); /* checked again on free, still freed */
    CHECK(HAS("found on free"));
    /* growth keeps the guards in the right place */
    q[-1] = HTR_FILL_GUARD;
    q = htr_realloc_aligned(a, q, 100, 5000, 64);
    CHECK(q[100] == HTR_FILL_FRESH);
    CHECK_EQ_U(htr_validating_check(v), 0);
    q = htr_realloc_aligned(a, q, 5000, 10, 64);
    CHECK_EQ_U(htr_validating_check(v), 0);
    htr_free_aligned(a, q, 10, 64);
    int local;
    reset_out();
    htr_free(a, &local, 4);
    CHECK(HAS("not a live block"));
    CHECK_EQ_U(htr_validating_errors(v), 4); /* 2 on check, 1 on free, 1 bad free */
    htr_validating_destroy(v);
}

static void test_profiling_and_tagging(void)
{
    htr_profiling_t *p = htr_profiling_new(htr_libc_allocator());
    htr_tagging_t *tg = htr_tagging_new(htr_profiling_allocator(p), "parser");
    htr_allocator_t plain = htr_profiling_allocator(p), tagged = htr_tagging_allocator(tg);
    CHECK_EQ_U(htr_profiling_size_class(1), 0);
    CHECK_EQ_U(htr_profiling_size_class(2), 1);
    CHECK_EQ_U(htr_profiling_size_class(16), 4);
    CHECK_EQ_U(htr_profiling_size_class(17), 5);
    void *x[8];
    for (int i = 0; i < 8; i++)
        x[i] = htr_alloc(i < 5 ? tagged : plain, 17 + (size_t)i);
    for (int i = 0; i < 8; i++)
        htr_free(i < 5 ? tagged : plain, x[i], 17 + (size_t)i);
    htr_profile_counts_t c;
    CHECK(htr_profiling_class(p, 5, &c) == 0);
    CHECK_EQ_U(c.n_allocs, 8);
    CHECK_EQ_U(c.n_frees, 8);
    CHECK(htr_profiling_class(p, HTR_SIZE_CLASSES, &c) == -EINVAL);
    CHECK(htr_profiling_tag(p, "parser", &c) == 0);
    CHECK_EQ_U(c.n_allocs, 5);
    CHECK_EQ_U(c.bytes_allocated, 17 + 18 + 19 + 20 + 21);
    CHECK(htr_profiling_tag(p, NULL, &c) == 0);
    CHECK_EQ_U(c.n_allocs, 3);
    CHECK(htr_profiling_tag(p, "nope", &c) == -ENOENT);
    /* by-hand region tags */
    const char *old = htr_tag_set("io");
    void *y = htr_alloc(plain, 1000);
    htr_free(plain, y, 1000);
    htr_tag_set(old);
    CHECK(htr_tag_current() == NULL);
    CHECK(htr_profiling_tag(p, "io", &c) == 0 && c.bytes_allocated == 1000);
    reset_out();
    htr_profiling_report(p, SINK);
    CHECK(HAS("parser") && HAS("io") && HAS("17..32"));
    fprintf(stderr, "--- profiling report ---\n%s", g_out);
    htr_tagging_destroy(tg);
    htr_profiling_destroy(p);

    /* tracking below tagging attributes blocks to tags */
    htr_tracking_t *t = htr_tracking_new(htr_libc_allocator(), NULL);
    htr_tagging_t *t1 = htr_tagging_new(htr_tracking_allocator(t), "net");
    htr_tagging_t *t2 = htr_tagging_new(htr_tracking_allocator(t), "db");
    void *n1 = htr_alloc(htr_tagging_allocator(t1), 300);
    void *d1 = htr_alloc(htr_tagging_allocator(t2), 50);
    CHECK_EQ_U(htr_tracking_tag_bytes(t, "net"), 300);
    CHECK_EQ_U(htr_tracking_tag_bytes(t, "db"), 50);
    reset_out();
    htr_tracking_report(t, SINK, 0);
    CHECK(HAS("tag net: 300 bytes in 1 blocks"));
    htr_free(htr_tagging_allocator(t1), n1, 300);
    htr_free(htr_tagging_allocator(t2), d1, 50);
    htr_tagging_destroy(t1);
    htr_tagging_destroy(t2);
    htr_tracking_destroy(t);
}

static void test_limit(void)
{
    htr_limit_t *l = htr_limit_new(htr_libc_allocator(), 1000);
    htr_allocator_t a = htr_limit_allocator(l);
    void *p = htr_alloc(a, 600);
    CHECK(p != NULL);
    errno = 0;
    CHECK(htr_alloc(a, 500) == NULL);
    CHECK(errno == ENOMEM);
    void *q = htr_alloc(a, 400);
    CHECK(q != NULL);
    CHECK(htr_realloc(a, q, 400, 401) == NULL); /* growth past the budget fails cleanly */
    q = htr_realloc(a, q, 400, 100);
    CHECK(q != NULL);
    htr_alloc_stats_t s;
    htr_limit_stats(l, &s);
    CHECK_EQ_U(s.bytes_live, 700);
    CHECK_EQ_U(s.bytes_peak, 1000);
    CHECK(s.n_failed >= 2);
    htr_limit_set_budget(l, 2000);
    q = htr_realloc(a, q, 100, 1300);
    CHECK(q != NULL);
    htr_free(a, p, 600);
    htr_free(a, q, 1300);
    htr_limit_stats(l, &s);
    CHECK_EQ_U(s.bytes_live, 0);
    CHECK_EQ_U(s.n_live, 0);
    htr_limit_destroy(l);
}

static void test_failing(void)
{
    htr_failing_opts_t fo = { HTR_FAIL_AFTER, 3, 0, 0 };
    htr_failing_t *f = htr_failing_new(htr_libc_allocator(), &fo);
    htr_allocator_t a = htr_failing_allocator(f);
    void *p[6];
    for (int i = 0; i < 6; i++)
        p[i] = htr_alloc(a, 8);
    CHECK(p[0] && p[1] && p[2] && !p[3] && !p[4] && !p[5]);
    CHECK_EQ_U(htr_failing_failures(f), 3);
    /* one realloc is one event, whatever path it takes */
    fo = (htr_failing_opts_t){ HTR_FAIL_AFTER, 0, 0, 0 };
    htr_failing_set(f, &fo);
    CHECK(htr_realloc(a, p[0], 8, 1 << 20) == NULL);
    CHECK_EQ_U(htr_failing_events(f), 1);
    void *shrunk = htr_realloc(a, p[0], 8, 4); /* shrinking never fails */
    CHECK(shrunk != NULL);
    p[0] = shrunk;
    fo = (htr_failing_opts_t){ HTR_FAIL_EVERY, 3, 0, 0 };
    htr_failing_set(f, &fo);
    int fails[9];
    for (int i = 0; i < 9; i++) {
        void *q = htr_alloc(a, 8);
        fails[i] = q == NULL;
        htr_free(a, q, 8);
    }
    CHECK(!fails[0] && !fails[1] && fails[2] && !fails[3] && fails[5] && fails[8]);
    /* rate: reproducible from the seed, roughly the rate */
    int pattern[2][200];
    for (int run = 0; run < 2; run++) {
        fo = (htr_failing_opts_t){ HTR_FAIL_RATE, 0, 0.25, 42 };
        htr_failing_set(f, &fo);
        for (int i = 0; i < 200; i++) {
            void *q = htr_alloc(a, 8);
            pattern[run][i] = q == NULL;
            htr_free(a, q, 8);
        }
    }
    CHECK(memcmp(pattern[0], pattern[1], sizeof pattern[0]) == 0);
    CHECK(htr_failing_failures(f) > 25 && htr_failing_failures(f) < 80);
    htr_failing_set(f, NULL);
    void *ok = htr_alloc(a, 8);
    CHECK(ok != NULL);
    htr_free(a, ok, 8);
    for (int i = 0; i < 3; i++)
        htr_free(a, p[i], i == 0 ? 4 : 8);
    htr_failing_destroy(f);
}

int main(void)
{
    test_testing();
    test_tracking();
    test_logging();
    test_validating();
    test_profiling_and_tagging();
    test_limit();
    test_failing();
    return CHECK_DONE();
}
