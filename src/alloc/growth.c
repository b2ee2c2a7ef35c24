/* The growth-test harness: runs an operation many times, samples live heap bytes and RSS,
 * and classifies the series (bounded, sawtooth, plateau, growing) with robust statistics:
 * Theil-Sen slopes (Sen 1968) and the Mann-Kendall trend test (Kendall 1975). */
#include <dlfcn.h>
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/alloc_internal.h"
#include "base/os.h"

static struct {
    pthread_once_t agent_once;
    size_t (*agent_live_bytes)(void); /* from the preloaded agent, if any */
    int (*agent_active)(void);        /* 0 once the agent stopped recording */
} g_growth = { PTHREAD_ONCE_INIT, NULL, NULL };

/* ---- statistics --------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_sorted(const double *v, size_t n)
{
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Mann-Kendall S, its variance with the tie correction
 *   Var(S) = [n(n-1)(2n+5) - sum_t t(t-1)(2t+5)] / 18   (t: sizes of groups of equal y),
 * and the Theil-Sen slope (median of all pairwise slopes) with Sen's rank interval: with
 * C = z(0.975) sqrt(Var S) over the N sorted slopes, the bounds are the slopes of rank
 * (N - C)/2 and (N + C)/2 + 1. */
int htri_trend_fit(const double *x, const double *y, size_t n, htri_trend *out)
{
    memset(out, 0, sizeof *out);
    out->p_up = 1.0;
    if (n < 3)
        return -EINVAL;
    size_t n_pairs = n * (n - 1) / 2;
    double *slopes = htri_alloc_meta_calloc(n_pairs, sizeof *slopes);
    double *ys = htri_alloc_meta_calloc(n, sizeof *ys);
    if (!slopes || !ys) {
        htri_alloc_meta_free(slopes, n_pairs * sizeof *slopes);
        htri_alloc_meta_free(ys, n * sizeof *ys);
        return -ENOMEM;
    }
    long s = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            double dy = y[j] - y[i], dx = x[j] - x[i];
            s += (dy > 0) - (dy < 0);
            if (dx != 0)
                slopes[k++] = dy / dx;
        }
    }
    memcpy(ys, y, n * sizeof *ys);
    qsort(ys, n, sizeof *ys, cmp_double);
    double dn = (double)n;
    double var = dn * (dn - 1) * (2 * dn + 5);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && ys[j] == ys[i])
            j++;
        double t = (double)(j - i);
        var -= t * (t - 1) * (2 * t + 5);
        i = j;
    }
    var /= 18.0;
    out->s = s;
    if (var > 0) {
        /* Continuity correction: S moves in steps of 2. */
        double sc = s > 0 ? (double)s - 1 : s < 0 ? (double)s + 1 : 0;
        out->z = sc / sqrt(var);
        out->p_up = 0.5 * erfc(out->z / sqrt(2.0));
    }
    if (k) {
        qsort(slopes, k, sizeof *slopes, cmp_double);
        out->slope = median_sorted(slopes, k);
        double c = 1.959964 * sqrt(var > 0 ? var : 0);
        double lo = floor(((double)k - c) / 2.0), hi = ceil(((double)k + c) / 2.0);
        size_t ilo = lo < 0 ? 0 : (size_t)lo;
        size_t ihi = hi >= (double)k ? k - 1 : (size_t)hi;
        if (ilo > k - 1)
            ilo = k - 1;
        out->ci_low = slopes[ilo];
        out->ci_high = slopes[ihi];
    }
    for (size_t i = 0; i < n; i++)
        ys[i] = y[i] - out->slope * x[i];
    qsort(ys, n, sizeof *ys, cmp_double);
    out->intercept = median_sorted(ys, n);
    htri_alloc_meta_free(slopes, n_pairs * sizeof *slopes);
    htri_alloc_meta_free(ys, n * sizeof *ys);
    return 0;
}

/* ---- sources ------------------------------------------------------------------------ */

static void growth_find_agent(void)
{
    /* Only present when libheaptrail-preload.so is loaded; looked up once. */
    void *sym = dlsym(RTLD_DEFAULT, "heaptrail_agent_live_bytes");
    if (sym)
        memcpy(&g_growth.agent_live_bytes, &sym, sizeof sym);
    sym = dlsym(RTLD_DEFAULT, "heaptrail_agent_active");
    if (sym)
        memcpy(&g_growth.agent_active, &sym, sizeof sym);
}

/* The agent counts only while it records; a stopped agent would read as a flat 0. */
static int growth_agent_usable(void)
{
    return g_growth.agent_live_bytes && (!g_growth.agent_active || g_growth.agent_active());
}

static double growth_live(htr_tracking_t *tracking, int use_agent)
{
    if (tracking)
        return (double)htr_tracking_live_bytes(tracking);
    if (use_agent)
        return (double)g_growth.agent_live_bytes();
    return (double)mallinfo2().uordblks;
}

/* ---- classification ----------------------------------------------------------------- */

typedef struct growth_run {
    const double *x, *y;
    size_t n;
    double alpha, min_slope;
} growth_run;

/* A fit says "growing" when the upward trend is significant, its interval excludes zero,
 * and the drift it predicts over the window exceeds the spread of the residuals: samples
 * of a heap are strongly autocorrelated, so significance alone over-calls trends. */
static int growth_rising(const double *x, const double *y, size_t n, const growth_run *g,
                         htri_trend *t)
{
    if (htri_trend_fit(x, y, n, t) < 0)
        return 0;
    if (!(t->p_up < g->alpha && t->slope > 0 && t->ci_low > 0 && t->slope >= g->min_slope))
        return 0;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double r = y[i] - t->slope * x[i];
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
    }
    return t->slope * (x[n - 1] - x[0]) > hi - lo;
}

static htr_growth_verdict_t growth_classify(const growth_run *g, htr_growth_result_t *res)
{
    const double *y = g->y, *x = g->x;
    size_t n = g->n;
    double lo = y[0], hi = y[0];
    for (size_t i = 1; i < n; i++) {
        lo = y[i] < lo ? y[i] : lo;
        hi = y[i] > hi ? y[i] : hi;
    }
    /* Drops: falls of over half the range and over 4x the typical step (a reset, not
     * noise). Two or more make a sawtooth, judged by its troughs, if between them the
     * series mostly rises (a random band has big falls too, but as many small ones). */
    double *steps = htri_alloc_meta_calloc(n, sizeof *steps);
    size_t *cuts = htri_alloc_meta_calloc(n + 1, sizeof *cuts);
    double *tx = htri_alloc_meta_calloc(n, sizeof *tx), *ty = htri_alloc_meta_calloc(n, sizeof *ty);
    htr_growth_verdict_t v = HTR_GROWTH_ERROR;
    if (!steps || !cuts || !tx || !ty) {
        errno = ENOMEM;
        goto out;
    }
    for (size_t i = 1; i < n; i++)
        steps[i - 1] = fabs(y[i] - y[i - 1]);
    qsort(steps, n - 1, sizeof *steps, cmp_double);
    double typical = median_sorted(steps, n - 1);
    size_t n_cuts = 0, n_up = 0, n_down = 0;
    cuts[n_cuts++] = 0;
    for (size_t i = 1; i < n; i++) {
        double fall = y[i - 1] - y[i];
        if (hi > lo && fall > 0.5 * (hi - lo) && fall > 4 * typical)
            cuts[n_cuts++] = i;
        else if (fall > 0)
            n_down++;
        else if (fall < 0)
            n_up++;
    }
    res->n_drops = n_cuts - 1;
    htri_trend t = { 0 };
    if (res->n_drops >= 2 && 3 * n_down <= n_up + n_down) {
        size_t n_tr = 0;
        for (size_t c = 0; c < n_cuts; c++) {
            size_t end = c + 1 < n_cuts ? cuts[c + 1] : n, m = cuts[c];
            for (size_t i = cuts[c]; i < end; i++)
                if (y[i] < y[m])
                    m = i;
            tx[n_tr] = x[m];
            ty[n_tr++] = y[m];
        }
        /* Three troughs cannot carry a significant trend; fit them for the record only. */
        int rising = n_tr >= 4 && growth_rising(tx, ty, n_tr, g, &t);
        if (n_tr < 4)
            htri_trend_fit(tx, ty, n_tr, &t);
        v = rising ? HTR_GROWING : HTR_SAWTOOTH;
    } else {
        size_t half = n / 2;
        if (growth_rising(x + half, y + half, n - half, g, &t)) {
            v = HTR_GROWING;
        } else {
            /* Rose into its band after the warm-up: the head sits below the whole tail. */
            size_t n_head = n / 10 > 3 ? n / 10 : 3;
            memcpy(ty, y, n_head * sizeof *ty);
            qsort(ty, n_head, sizeof *ty, cmp_double);
            double head = median_sorted(ty, n_head), tail_min = y[half];
            for (size_t i = half; i < n; i++)
                tail_min = y[i] < tail_min ? y[i] : tail_min;
            v = head < tail_min ? HTR_PLATEAU : HTR_BOUNDED;
        }
    }
    res->bytes_per_iter = t.slope;
    res->ci_low = t.ci_low;
    res->ci_high = t.ci_high;
    res->p_value = t.p_up;
out:
    htri_alloc_meta_free(steps, n * sizeof *steps);
    htri_alloc_meta_free(cuts, (n + 1) * sizeof *cuts);
    htri_alloc_meta_free(tx, n * sizeof *tx);
    htri_alloc_meta_free(ty, n * sizeof *ty);
    return v;
}

/* ---- the harness -------------------------------------------------------------------- */

const char *htr_growth_verdict_name(htr_growth_verdict_t v)
{
    switch (v) {
    case HTR_BOUNDED: return "bounded";
    case HTR_SAWTOOTH: return "sawtooth";
    case HTR_PLATEAU: return "plateau";
    case HTR_GROWING: return "growing";
    default: return "error";
    }
}

htr_growth_verdict_t htr_growth_test(void (*op)(void *user, size_t iter), void *user,
                                     const htr_growth_opts_t *opts, htr_growth_result_t *result)
{
    htr_growth_opts_t o = opts ? *opts : (htr_growth_opts_t){ 0 };
    htr_growth_result_t res = { .verdict = HTR_GROWTH_ERROR };
    if (!op) {
        errno = EINVAL;
        goto done;
    }
    /* Soak runs without a rebuild: HTR_GROWTH=long in the environment. */
    const char *env = getenv("HTR_GROWTH");
    if (env && strcmp(env, "long") == 0)
        o.mode = HTR_GROWTH_LONG;
    int long_mode = o.mode == HTR_GROWTH_LONG;
    res.warmup = o.warmup ? o.warmup : long_mode ? 1000 : 100;
    res.iterations = o.iterations ? o.iterations : long_mode ? 100000 : 1000;
    size_t max_samples = o.max_samples ? o.max_samples : long_mode ? 2000 : 1000;
    double alpha = o.alpha > 0 && o.alpha < 1 ? o.alpha : 0.01;
    size_t stride = (res.iterations + max_samples - 1) / max_samples;
    size_t n = res.iterations / stride;
    if (n < 8) {
        errno = EINVAL;
        goto done;
    }
    pthread_once(&g_growth.agent_once, growth_find_agent);
    int use_agent = !o.tracking && growth_agent_usable();
    res.source = o.tracking ? "tracking" : use_agent ? "agent" : "mallinfo2";

    /* All our memory is taken before the run, so the mallinfo2 source sees only op's. */
    double *x = htri_alloc_meta_calloc(n, sizeof *x), *y = htri_alloc_meta_calloc(n, sizeof *y);
    double *rss = htri_alloc_meta_calloc(n, sizeof *rss);
    size_t n_rss = n < 256 ? n : 256;
    double *rx = htri_alloc_meta_calloc(n_rss, sizeof *rx), *ry = htri_alloc_meta_calloc(n_rss, sizeof *ry);
    if (x && y && rss && rx && ry) {
        int rss_fd = -1;
        for (size_t i = 0; i < res.warmup; i++)
            op(user, i);
        size_t k = 0;
        for (size_t i = 0; i < res.iterations; i++) {
            op(user, res.warmup + i);
            if ((i + 1) % stride == 0 && k < n) {
                x[k] = (double)(i + 1);
                y[k] = growth_live(o.tracking, use_agent);
                rss[k++] = (double)htri_os_rss_bytes(&rss_fd);
            }
        }
        if (rss_fd >= 0)
            close(rss_fd);
        res.n_samples = n;
        res.live_first = (size_t)y[0];
        res.live_last = (size_t)y[n - 1];
        double floor = o.min_bytes_per_iter > 0 ? o.min_bytes_per_iter
                     : !o.tracking && !use_agent && !long_mode ? 8.0 : 0.0;
        growth_run g = { x, y, n, alpha, floor };
        res.verdict = growth_classify(&g, &res);
        for (size_t i = 0; i < n_rss; i++) {
            size_t j = i * n / n_rss;
            rx[i] = x[j];
            ry[i] = rss[j];
        }
        htri_trend rt;
        if (htri_trend_fit(rx, ry, n_rss, &rt) == 0)
            res.rss_bytes_per_iter = rt.slope;
    } else {
        errno = ENOMEM;
    }
    htri_alloc_meta_free(x, n * sizeof *x);
    htri_alloc_meta_free(y, n * sizeof *y);
    htri_alloc_meta_free(rss, n * sizeof *rss);
    htri_alloc_meta_free(rx, n_rss * sizeof *rx);
    htri_alloc_meta_free(ry, n_rss * sizeof *ry);
    htri_alloc_emit(&o.sink, "growth %s: %s, %.2f bytes/iteration (95%% CI %.2f..%.2f, p = %.3g), "
                    "%zu samples over %zu iterations after %zu warm-up, %zu drops; live %zu -> %zu "
                    "bytes (%s); RSS %.1f bytes/iteration", o.name ? o.name : "test",
                    htr_growth_verdict_name(res.verdict), res.bytes_per_iter, res.ci_low,
                    res.ci_high, res.p_value, res.n_samples, res.iterations, res.warmup,
                    res.n_drops, res.live_first, res.live_last, res.source ? res.source : "-",
                    res.rss_bytes_per_iter);
done:
    if (result)
        *result = res;
    return res.verdict;
}
