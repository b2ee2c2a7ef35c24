/* The tracking layer: a table of live blocks (size, address, tag, allocation stack) and the
 * counters over them; reports what is live, biggest first. Transparent: every call goes on
 * to the parent unchanged. */
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc_internal.h"

struct htr_tracking {
    htr_allocator_t parent;
    htri_layer_cfg cfg;
    pthread_mutex_t lock;     /* guards everything below; held across parent remap */
    htri_blocktab blocks;
    htr_alloc_stats_t stats;
    uint64_t seq;
    uint64_t n_unknown_frees; /* frees of pointers this layer never handed out */
};

static void *tracking_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    htr_tracking_t *t = ctx;
    uintptr_t pcs[HTRI_ALLOC_MAX_DEPTH];
    int n_pcs = t->cfg.depth ? htri_alloc_capture(pcs, t->cfg.depth, ra) : 0;
    void *p = htri_parent_alloc(t->parent, size, align, ra);
    pthread_mutex_lock(&t->lock);
    if (!p) {
        t->stats.n_failed++;
        pthread_mutex_unlock(&t->lock);
        return NULL;
    }
    htri_block *b = htri_blocktab_insert(&t->blocks, (uintptr_t)p);
    if (!b) {
        /* No room to record it: an unrecorded block would make every number wrong, so the
         * allocation fails as a whole. */
        t->stats.n_failed++;
        pthread_mutex_unlock(&t->lock);
        htri_parent_free(t->parent, p, size, align, ra);
        errno = ENOMEM;
        return NULL;
    }
    b->size = size;
    b->align = align;
    b->tag = htr_tag_current();
    b->seq = t->seq++;
    b->n_pcs = (uint32_t)n_pcs;
    memcpy(b->pcs, pcs, (size_t)n_pcs * sizeof pcs[0]);
    htri_stats_on_alloc(&t->stats, size);
    pthread_mutex_unlock(&t->lock);
    return p;
}

static int tracking_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                           uintptr_t ra)
{
    htr_tracking_t *t = ctx;
    pthread_mutex_lock(&t->lock);
    int ok = htri_parent_resize(t->parent, ptr, old_size, align, new_size, ra);
    if (ok) {
        htri_block *b = htri_blocktab_find(&t->blocks, (uintptr_t)ptr);
        if (b) {
            htri_stats_on_resize(&t->stats, b->size, new_size);
            b->size = new_size;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return ok;
}

static void *tracking_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                            uintptr_t ra)
{
    htr_tracking_t *t = ctx;
    /* Locked across the parent call: once the parent has moved the block, another thread
     * may be handed the old address, and its record must not meet ours. */
    pthread_mutex_lock(&t->lock);
    void *q = htri_parent_remap(t->parent, ptr, old_size, align, new_size, ra);
    if (q) {
        htri_block *b = htri_blocktab_find(&t->blocks, (uintptr_t)ptr);
        if (b) {
            if (q != ptr)
                b = htri_blocktab_rekey(&t->blocks, b, (uintptr_t)q);
            htri_stats_on_resize(&t->stats, b->size, new_size);
            b->size = new_size;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return q;
}

static void tracking_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    htr_tracking_t *t = ctx;
    pthread_mutex_lock(&t->lock);
    htri_block *b = htri_blocktab_find(&t->blocks, (uintptr_t)ptr);
    if (b) {
        htri_stats_on_free(&t->stats, b->size);
        htri_blocktab_remove(&t->blocks, b);
    } else {
        t->n_unknown_frees++;
    }
    pthread_mutex_unlock(&t->lock);
    htri_parent_free(t->parent, ptr, size, align, ra);
}

static const htr_allocator_vtable_t tracking_vtable = {
    tracking_alloc, tracking_resize, tracking_remap, tracking_free
};

htr_tracking_t *htr_tracking_new(htr_allocator_t parent, const htr_layer_opts_t *opts)
{
    htr_tracking_t *t = htri_alloc_meta_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->parent = parent;
    htri_alloc_layer_cfg(&t->cfg, opts, "tracking");
    pthread_mutex_init(&t->lock, NULL);
    if (htri_blocktab_init(&t->blocks, t->cfg.depth) < 0) {
        htri_alloc_meta_free(t, sizeof *t);
        errno = ENOMEM;
        return NULL;
    }
    return t;
}

htr_allocator_t htr_tracking_allocator(htr_tracking_t *t)
{
    return (htr_allocator_t){ t, &tracking_vtable };
}

void htr_tracking_stats(htr_tracking_t *t, htr_alloc_stats_t *stats)
{
    pthread_mutex_lock(&t->lock);
    *stats = t->stats;
    pthread_mutex_unlock(&t->lock);
}

size_t htr_tracking_live_bytes(htr_tracking_t *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->stats.bytes_live;
    pthread_mutex_unlock(&t->lock);
    return n;
}

size_t htr_tracking_tag_bytes(htr_tracking_t *t, const char *tag)
{
    size_t bytes = 0;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->blocks.cap; i++) {
        htri_block *b = htri_blocktab_slot(&t->blocks, i);
        if (b->ptr && htri_alloc_tag_eq(b->tag, tag))
            bytes += b->size;
    }
    pthread_mutex_unlock(&t->lock);
    return bytes;
}

/* Live bytes and blocks per tag, for the report (tags beyond the first 32 are summed). */
typedef struct tag_sum {
    const char *tag;
    size_t bytes, n;
} tag_sum;

long htr_tracking_report(htr_tracking_t *t, htr_sink_t sink, size_t max_blocks)
{
    pthread_mutex_lock(&t->lock);
    size_t n = 0;
    htri_block **v = htri_blocktab_sorted(&t->blocks, &n);
    if (!v) {
        pthread_mutex_unlock(&t->lock);
        return -ENOMEM;
    }
    const htr_alloc_stats_t *s = &t->stats;
    htri_alloc_emit(&sink, "%s: %zu live blocks, %zu bytes live (peak %zu bytes, %zu blocks); "
                    "%llu allocs, %llu frees, %llu resizes, %llu failed, %llu bytes in total",
                    t->cfg.name, s->n_live, s->bytes_live, s->bytes_peak, s->n_live_peak,
                    (unsigned long long)s->n_allocs, (unsigned long long)s->n_frees,
                    (unsigned long long)s->n_resizes, (unsigned long long)s->n_failed,
                    (unsigned long long)s->bytes_total);
    tag_sum sums[32];
    size_t n_sums = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < n_sums && !htri_alloc_tag_eq(sums[k].tag, v[i]->tag))
            k++;
        if (k == n_sums) {
            if (n_sums == HTRI_ARRAY_LEN(sums))
                k = n_sums - 1; /* the last row collects the overflow */
            else
                sums[n_sums++] = (tag_sum){ v[i]->tag, 0, 0 };
        }
        sums[k].bytes += v[i]->size;
        sums[k].n++;
    }
    for (size_t k = 0; k < n_sums; k++)
        htri_alloc_emit(&sink, "  tag %s: %zu bytes in %zu blocks", htri_tag_name(sums[k].tag),
                        sums[k].bytes, sums[k].n);
    for (size_t i = 0; i < n && i < max_blocks; i++) {
        htri_block *b = v[i];
        htri_alloc_emit(&sink, "  block 0x%lx: %zu bytes, tag %s, allocation #%llu, at:",
                        (unsigned long)b->ptr, b->size, htri_tag_name(b->tag),
                        (unsigned long long)b->seq);
        htri_alloc_emit_stack(&sink, b->pcs, (int)b->n_pcs);
    }
    if (n > max_blocks)
        htri_alloc_emit(&sink, "  ... %zu more blocks", n - max_blocks);
    htri_alloc_meta_free(v, (n + 1) * sizeof *v);
    pthread_mutex_unlock(&t->lock);
    return (long)n;
}

void htr_tracking_destroy(htr_tracking_t *t)
{
    if (!t)
        return;
    htri_blocktab_fini(&t->blocks);
    pthread_mutex_destroy(&t->lock);
    htri_alloc_meta_free(t, sizeof *t);
}
