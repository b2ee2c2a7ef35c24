/* The limit layer: a budget of live bytes. Past it an allocation fails cleanly (NULL,
 * ENOMEM) without asking the parent, which is how code meets a memory cap in production. */
#include "alloc/alloc_internal.h"

struct htr_limit {
    htr_allocator_t parent;
    pthread_mutex_t lock;  /* guards budget and stats */
    size_t budget;
    htr_alloc_stats_t stats;
};

/* Reserves `grow` more bytes against the budget; 0 if that would exceed it. */
static int limit_reserve(htr_limit_t *l, size_t grow)
{
    size_t after;
    if (htri_add_overflow(l->stats.bytes_live, grow, &after) || after > l->budget)
        return 0;
    l->stats.bytes_live = after;
    return 1;
}

static void *limit_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    htr_limit_t *l = ctx;
    pthread_mutex_lock(&l->lock);
    int ok = limit_reserve(l, size);
    if (!ok)
        l->stats.n_failed++;
    pthread_mutex_unlock(&l->lock);
    if (!ok) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = htri_parent_alloc(l->parent, size, align, ra);
    pthread_mutex_lock(&l->lock);
    l->stats.bytes_live -= size; /* the reservation becomes a real block below, or nothing */
    if (p)
        htri_stats_on_alloc(&l->stats, size);
    else
        l->stats.n_failed++;
    pthread_mutex_unlock(&l->lock);
    return p;
}

static int limit_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                        uintptr_t ra)
{
    htr_limit_t *l = ctx;
    pthread_mutex_lock(&l->lock);
    int ok = new_size <= old_size || limit_reserve(l, new_size - old_size);
    if (ok) {
        if (new_size > old_size)
            l->stats.bytes_live -= new_size - old_size;
        ok = htri_parent_resize(l->parent, ptr, old_size, align, new_size, ra);
        if (ok)
            htri_stats_on_resize(&l->stats, old_size, new_size);
    }
    pthread_mutex_unlock(&l->lock);
    return ok;
}

static void *limit_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                         uintptr_t ra)
{
    htr_limit_t *l = ctx;
    pthread_mutex_lock(&l->lock);
    void *q = NULL;
    if (new_size <= old_size || limit_reserve(l, new_size - old_size)) {
        if (new_size > old_size)
            l->stats.bytes_live -= new_size - old_size;
        q = htri_parent_remap(l->parent, ptr, old_size, align, new_size, ra);
        if (q)
            htri_stats_on_resize(&l->stats, old_size, new_size);
    }
    pthread_mutex_unlock(&l->lock);
    return q;
}

static void limit_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    htr_limit_t *l = ctx;
    htri_parent_free(l->parent, ptr, size, align, ra);
    pthread_mutex_lock(&l->lock);
    htri_stats_on_free(&l->stats, size);
    pthread_mutex_unlock(&l->lock);
}

static const htr_allocator_vtable_t limit_vtable = { limit_alloc, limit_resize, limit_remap, limit_free };

htr_limit_t *htr_limit_new(htr_allocator_t parent, size_t budget_bytes)
{
    htr_limit_t *l = htri_alloc_meta_calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->parent = parent;
    l->budget = budget_bytes;
    pthread_mutex_init(&l->lock, NULL);
    return l;
}

htr_allocator_t htr_limit_allocator(htr_limit_t *l)
{
    return (htr_allocator_t){ l, &limit_vtable };
}

void htr_limit_set_budget(htr_limit_t *l, size_t budget_bytes)
{
    pthread_mutex_lock(&l->lock);
    l->budget = budget_bytes;
    pthread_mutex_unlock(&l->lock);
}

void htr_limit_stats(htr_limit_t *l, htr_alloc_stats_t *stats)
{
    pthread_mutex_lock(&l->lock);
    *stats = l->stats;
    pthread_mutex_unlock(&l->lock);
}

void htr_limit_destroy(htr_limit_t *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->lock);
    htri_alloc_meta_free(l, sizeof *l);
}
