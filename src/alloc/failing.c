/* The failing layer: forces out-of-memory on a schedule (after N, every N-th, or at a seeded
 * rate) so error paths run in tests, like SQLite's fault simulator or Lua's ltests failnext. */
#include "alloc/alloc_internal.h"
#include "base/hash.h"

/* One htr_realloc is one event: resize and remap decline (without counting) when the next
 * event is due to fail, so the fallback alloc is the one that fails. */

struct htr_failing {
    htr_allocator_t parent;
    pthread_mutex_t lock;  /* guards opts and counters */
    htr_failing_opts_t opts;
    uint64_t n_events, n_failures;
};

/* Whether event number k fails. Pure in (opts, k), so it can be asked before committing. */
static int failing_due(const htr_failing_opts_t *o, uint64_t k)
{
    switch (o->mode) {
    case HTR_FAIL_AFTER:
        return k >= o->n;
    case HTR_FAIL_EVERY:
        return o->n > 0 && (k + 1) % o->n == 0;
    case HTR_FAIL_RATE: {
        /* 53 random bits of splitmix(seed, k) as a uniform double in [0, 1). */
        uint64_t h = htri_hash64(o->seed * 0x9e3779b97f4a7c15ull + k + 1);
        return (double)(h >> 11) * (1.0 / 9007199254740992.0) < o->rate;
    }
    default:
        return 0;
    }
}

static void *failing_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    htr_failing_t *f = ctx;
    pthread_mutex_lock(&f->lock);
    int fail = failing_due(&f->opts, f->n_events++);
    if (fail)
        f->n_failures++;
    pthread_mutex_unlock(&f->lock);
    if (fail) {
        errno = ENOMEM;
        return NULL;
    }
    return htri_parent_alloc(f->parent, size, align, ra);
}

static int failing_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                          uintptr_t ra)
{
    htr_failing_t *f = ctx;
    if (new_size <= old_size)
        return htri_parent_resize(f->parent, ptr, old_size, align, new_size, ra);
    pthread_mutex_lock(&f->lock);
    int ok = !failing_due(&f->opts, f->n_events) &&
             htri_parent_resize(f->parent, ptr, old_size, align, new_size, ra);
    if (ok)
        f->n_events++;
    pthread_mutex_unlock(&f->lock);
    return ok;
}

static void *failing_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                           uintptr_t ra)
{
    htr_failing_t *f = ctx;
    if (new_size <= old_size)
        return htri_parent_remap(f->parent, ptr, old_size, align, new_size, ra);
    pthread_mutex_lock(&f->lock);
    void *q = NULL;
    if (!failing_due(&f->opts, f->n_events)) {
        q = htri_parent_remap(f->parent, ptr, old_size, align, new_size, ra);
        if (q)
            f->n_events++;
    }
    pthread_mutex_unlock(&f->lock);
    return q;
}

static void failing_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    htr_failing_t *f = ctx;
    htri_parent_free(f->parent, ptr, size, align, ra);
}

static const htr_allocator_vtable_t failing_vtable = {
    failing_alloc, failing_resize, failing_remap, failing_free
};

htr_failing_t *htr_failing_new(htr_allocator_t parent, const htr_failing_opts_t *opts)
{
    htr_failing_t *f = htri_alloc_meta_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->parent = parent;
    if (opts)
        f->opts = *opts;
    pthread_mutex_init(&f->lock, NULL);
    return f;
}

htr_allocator_t htr_failing_allocator(htr_failing_t *f)
{
    return (htr_allocator_t){ f, &failing_vtable };
}

void htr_failing_set(htr_failing_t *f, const htr_failing_opts_t *opts)
{
    pthread_mutex_lock(&f->lock);
    f->opts = opts ? *opts : (htr_failing_opts_t){ HTR_FAIL_NEVER, 0, 0, 0 };
    f->n_events = f->n_failures = 0;
    pthread_mutex_unlock(&f->lock);
}

uint64_t htr_failing_events(htr_failing_t *f)
{
    pthread_mutex_lock(&f->lock);
    uint64_t n = f->n_events;
    pthread_mutex_unlock(&f->lock);
    return n;
}

uint64_t htr_failing_failures(htr_failing_t *f)
{
    pthread_mutex_lock(&f->lock);
    uint64_t n = f->n_failures;
    pthread_mutex_unlock(&f->lock);
    return n;
}

void htr_failing_destroy(htr_failing_t *f)
{
    if (!f)
        return;
    pthread_mutex_destroy(&f->lock);
    htri_alloc_meta_free(f, sizeof *f);
}
