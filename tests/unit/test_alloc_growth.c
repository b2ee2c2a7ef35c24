/* Unit test of the growth-test harness: trend statistics on exact series, then synthetic
 * operations run 20 times each (varied seeds, phases): a 64-byte leak per iteration is
 * GROWING; a bounded LRU cache, a sawtooth and a warm-up spike are not; late fill: PLATEAU. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "heaptrail.h"
#include "alloc/alloc_internal.h"
#include "check.h"

#define RUNS 20

typedef struct node {
    struct node *next, *prev;
    unsigned key;
    size_t size;
} node;

typedef struct workload {
    htr_allocator_t a;
    uint64_t rng;
    size_t phase;
    /* leak */
    node *kept;
    /* lru */
    node *head, *tail;
    size_t n_lru, cap_lru;
    unsigned n_keys;
    /* sawtooth */
    char *buf;
    size_t buf_len;
    /* spike / plateau */
    node *spike;
    size_t spike_until, fill_until;
} workload;

static uint32_t rnd(workload *w)
{
    w->rng = w->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(w->rng >> 33);
}

static void push(htr_allocator_t a, node **list, size_t size)
{
    node *n = htr_alloc(a, size);
    n->next = *list;
    n->size = size;
    *list = n;
}

static void free_list(htr_allocator_t a, node **list)
{
    while (*list) {
        node *n = *list;
        *list = n->next;
        htr_free(a, n, n->size);
    }
}

static void op_leak(void *user, size_t iter)
{
    workload *w = user;
    push(w->a, &w->kept, 64);
    /* plus some churn that is freed again, as real code has */
    void *tmp = htr_alloc(w->a, 16 + rnd(w) % 500);
    htr_free(w->a, tmp, 1);
}

/* A bounded LRU cache: random keys, values of random size, evicting the least recent. */
static void op_lru(void *user, size_t iter)
{
    workload *w = user;
    unsigned key = rnd(w) % w->n_keys;
    node *n = w->head;
    while (n && n->key != key)
        n = n->next;
    if (n) {
        if (n != w->head) { /* move to front */
            n->prev->next = n->next;
            if (n->next)
                n->next->prev = n->prev;
            else
                w->tail = n->prev;
            n->prev = NULL;
            n->next = w->head;
            w->head->prev = n;
            w->head = n;
        }
        return;
    }
    size_t size = sizeof(node) + 32 + rnd(w) % 480;
    n = htr_alloc(w->a, size);
    *n = (node){ w->head, NULL, key, size };
    if (w->head)
        w->head->prev = n;
    w->head = n;
    if (!w->tail)
        w->tail = n;
    if (++w->n_lru > w->cap_lru) {
        node *old = w->tail;
        w->tail = old->prev;
        w->tail->next = NULL;
        htr_free(w->a, old, old->size);
        w->n_lru--;
    }
}

static void lru_clear(workload *w)
{
    free_list(w->a, &w->head);
    w->tail = NULL;
    w->n_lru = 0;
}

/* A log buffer that grows 64 bytes per iteration and is flushed every 100. */
static void op_sawtooth(void *user, size_t iter)
{
    workload *w = user;
    if ((iter + w->phase) % 100 == 0) {
        htr_free(w->a, w->buf, w->buf_len);
        w->buf = NULL;
        w->buf_len = 0;
    }
    w->buf = htr_realloc(w->a, w->buf, w->buf_len, w->buf_len + 64);
    memset(w->buf + w->buf_len, 'x', 64);
    w->buf_len += 64;
}

/* Leak and sawtooth together: the troughs rise. */
static void op_leaky_sawtooth(void *user, size_t iter)
{
    workload *w = user;
    op_sawtooth(user, iter);
    if (iter % 4 == 0)
        push(w->a, &w->kept, 64);
}

/* Keeps 1 KiB per iteration until spike_until, then frees it all: a start-up spike. */
static void op_spike(void *user, size_t iter)
{
    workload *w = user;
    if (iter < w->spike_until)
        push(w->a, &w->spike, 1024);
    else if (iter == w->spike_until)
        free_list(w->a, &w->spike);
    void *tmp = htr_alloc(w->a, 100 + rnd(w) % 100);
    htr_free(w->a, tmp, 1);
}

/* A cache that fills until fill_until, then stays full. */
static void op_fill(void *user, size_t iter)
{
    workload *w = user;
    if (iter < w->fill_until)
        push(w->a, &w->kept, 200 + rnd(w) % 100);
    void *tmp = htr_alloc(w->a, 50);
    htr_free(w->a, tmp, 50);
}

/* htr_free above passes 1 as the size of temporaries: the tracking layer keeps the true
 * size, so its numbers stay exact (the libc parent ignores sizes). */

static htr_growth_verdict_t run(void (*op)(void *, size_t), workload *w, htr_tracking_t *t,
                                htr_growth_result_t *r, const char *name)
{
    htr_growth_opts_t o = { .tracking = t, .name = name, .sink = HTR_SINK_FD(2) };
    return htr_growth_test(op, w, &o, r);
}

static void test_trend(void)
{
    double x[50], y[50];
    htri_trend t;
    for (int i = 0; i < 50; i++) {
        x[i] = i;
        y[i] = 3 * i + 5;
    }
    CHECK(htri_trend_fit(x, y, 50, &t) == 0);
    CHECK(fabs(t.slope - 3) < 1e-9);
    CHECK(fabs(t.intercept - 5) < 1e-9);
    CHECK(t.p_up < 1e-6);
    CHECK_EQ_U(t.s, 50 * 49 / 2);
    for (int i = 0; i < 50; i++)
        y[i] = 7;
    CHECK(htri_trend_fit(x, y, 50, &t) == 0);
    CHECK(t.slope == 0 && t.p_up == 1.0 && t.s == 0);
    for (int i = 0; i < 50; i++)
        y[i] = -2.0 * i + (i % 3);
    CHECK(htri_trend_fit(x, y, 50, &t) == 0);
    CHECK(t.p_up > 0.99 && t.slope < 0 && t.ci_low <= t.slope && t.slope <= t.ci_high);
    CHECK(htri_trend_fit(x, y, 2, &t) == -EINVAL);
}

/* Long mode, chosen by option and by the environment: 100 times the iterations. */
static void test_long_mode(void)
{
    htr_tracking_t *t = htr_tracking_new(htr_libc_allocator(), &(htr_layer_opts_t){ .stack_depth = -1 });
    workload w = { .a = htr_tracking_allocator(t), .rng = 5, .cap_lru = 64, .n_keys = 256 };
    htr_growth_opts_t o = { .mode = HTR_GROWTH_LONG, .tracking = t, .name = "long: leak",
                            .sink = HTR_SINK_FD(2) };
    htr_growth_result_t r;
    CHECK(htr_growth_test(op_leak, &w, &o, &r) == HTR_GROWING);
    CHECK_EQ_U(r.iterations, 100000);
    CHECK_EQ_U(r.n_samples, 2000);
    CHECK(r.ci_low <= 64 && 64 <= r.ci_high);
    free_list(w.a, &w.kept);
    setenv("HTR_GROWTH", "long", 1);
    o = (htr_growth_opts_t){ .tracking = t, .name = "long (environment): LRU", .sink = HTR_SINK_FD(2) };
    CHECK(htr_growth_test(op_lru, &w, &o, &r) == HTR_BOUNDED);
    CHECK_EQ_U(r.iterations, 100000);
    unsetenv("HTR_GROWTH");
    lru_clear(&w);
    CHECK_EQ_U(htr_tracking_live_bytes(t), 0);
    htr_tracking_destroy(t);
}

int main(void)
{
    /* The short-mode cases below are calibrated for the defaults: a soak setting in the
     * environment must not change them (test_long_mode covers it). */
    unsetenv("HTR_GROWTH");
    test_trend();
    test_long_mode();
    htr_allocator_t libc = htr_libc_allocator();
    int counts[5][4] = { { 0 } };
    for (int r = 0; r < RUNS; r++) {
        htr_growth_result_t res;
        htr_tracking_t *t = htr_tracking_new(libc, &(htr_layer_opts_t){ .stack_depth = -1 });
        workload w = { .a = htr_tracking_allocator(t), .rng = 1000 + (uint64_t)r * 7919,
                       .phase = (size_t)r * 37 };

        htr_growth_verdict_t v = run(op_leak, &w, t, &res, "leak 64 B/iteration");
        CHECK(v == HTR_GROWING);
        CHECK(res.ci_low <= 64 && 64 <= res.ci_high);
        CHECK(fabs(res.bytes_per_iter - 64) < 1);
        free_list(w.a, &w.kept);
        counts[0][v]++;

        w.cap_lru = 64;
        w.n_keys = 256;
        v = run(op_lru, &w, t, &res, "bounded LRU");
        CHECK(v != HTR_GROWING);
        lru_clear(&w);
        counts[1][v]++;

        v = run(op_sawtooth, &w, t, &res, "sawtooth");
        CHECK(v == HTR_SAWTOOTH);
        htr_free(w.a, w.buf, w.buf_len);
        w.buf = NULL;
        w.buf_len = 0;
        counts[2][v]++;

        w.spike_until = 100 + 20 + (size_t)r * 5; /* outlasts the 100-step warm-up */
        v = run(op_spike, &w, t, &res, "warm-up spike");
        CHECK(v != HTR_GROWING);
        counts[3][v]++;

        w.fill_until = 100 + 200 + (size_t)r * 3;
        v = run(op_fill, &w, t, &res, "fills, then full");
        CHECK(v == HTR_PLATEAU);
        free_list(w.a, &w.kept);
        counts[4][v]++;

        if (r < 5) {
            v = run(op_leaky_sawtooth, &w, t, &res, "leak under a sawtooth");
            CHECK(v == HTR_GROWING);
            htr_free(w.a, w.buf, w.buf_len);
            w.buf = NULL;
            w.buf_len = 0;
            free_list(w.a, &w.kept);
        }
        CHECK_EQ_U(htr_tracking_live_bytes(t), 0);
        htr_tracking_destroy(t);
    }
    fprintf(stderr, "verdicts (bounded/sawtooth/plateau/growing): leak %d/%d/%d/%d, lru %d/%d/%d/%d, "
            "sawtooth %d/%d/%d/%d, spike %d/%d/%d/%d, fill %d/%d/%d/%d\n",
            counts[0][0], counts[0][1], counts[0][2], counts[0][3], counts[1][0], counts[1][1],
            counts[1][2], counts[1][3], counts[2][0], counts[2][1], counts[2][2], counts[2][3],
            counts[3][0], counts[3][1], counts[3][2], counts[3][3], counts[4][0], counts[4][1],
            counts[4][2], counts[4][3]);

    /* Without a tracking layer: mallinfo2 (or the agent, when preloaded) sees plain malloc.
     * Not under ASan, whose malloc glibc's mallinfo2 does not see. */
#ifdef __SANITIZE_ADDRESS__
    for (int r = 0; r < 0; r++) {
#else
    for (int r = 0; r < RUNS; r++) {
#endif
        htr_growth_result_t res;
        workload w = { .a = libc, .rng = 77 + (uint64_t)r };
        htr_growth_verdict_t v = run(op_leak, &w, NULL, &res, "leak, malloc");
        CHECK(v == HTR_GROWING);
        CHECK(res.bytes_per_iter >= 64);
        free_list(libc, &w.kept);
        w.cap_lru = 64;
        w.n_keys = 256;
        v = run(op_lru, &w, NULL, &res, "bounded LRU, malloc");
        CHECK(v != HTR_GROWING);
        lru_clear(&w);
    }
    /* Bad arguments */
    errno = 0;
    CHECK(htr_growth_test(NULL, NULL, NULL, NULL) == HTR_GROWTH_ERROR && errno == EINVAL);
    htr_growth_opts_t tiny = { .iterations = 4 };
    workload w0 = { .a = libc };
    CHECK(htr_growth_test(op_fill, &w0, &tiny, NULL) == HTR_GROWTH_ERROR);
    CHECK_STR(htr_growth_verdict_name(HTR_PLATEAU), "plateau");
    /* Out of memory for the sample arrays or the fit: an error, not a verdict. */
    htr_growth_result_t res;
    htri_alloc_meta_fail_after(0);
    errno = 0;
    CHECK(htr_growth_test(op_fill, &w0, NULL, &res) == HTR_GROWTH_ERROR && errno == ENOMEM);
    CHECK(res.verdict == HTR_GROWTH_ERROR);
    htri_trend tr;
    double xs[4] = { 0, 1, 2, 3 }, ys[4] = { 0, 1, 2, 3 };
    CHECK(htri_trend_fit(xs, ys, 4, &tr) == -ENOMEM);
    htri_alloc_meta_fail_after(-1);
    w0.fill_until = 0;
    free_list(libc, &w0.kept);
    return CHECK_DONE();
}
