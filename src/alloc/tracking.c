/* The tracking layer: a table of live blocks (size, address, tag, allocation stack) and the
 * counters over them; reports what is live, biggest first. Transparent: every call goes on
 * to the parent unchanged. */
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc_internal.h"

struct htr_tracking {
    htri_recorder rec;         /* parent, lock, block table, counters */
    uint64_t n_unknown_frees; /* frees of pointers this layer never handed out */
};

static void *tracking_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    return htri_recorder_alloc(&((htr_tracking_t *)ctx)->rec, size, align, ra);
}

static int tracking_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                           uintptr_t ra)
{
    htr_tracking_t *t = ctx;
    pthread_mutex_lock(&t->rec.lock);
    int ok = htri_parent_resize(t->rec.parent, ptr, old_size, align, new_size, ra);
    if (ok) {
        htri_block *b = htri_blocktab_find(&t->rec.blocks, (uintptr_t)ptr);
        if (b)
            htri_recorder_resized(&t->rec, b, ptr, new_size);
    }
    pthread_mutex_unlock(&t->rec.lock);
    return ok;
}

static void *tracking_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                            uintptr_t ra)
{
    htr_tracking_t *t = ctx;
    /* Locked across the parent call: once the parent has moved the block, another thread
     * may be handed the old address, and its record must not meet ours. */
    pthread_mutex_lock(&t->rec.lock);
    void *q = htri_parent_remap(t->rec.parent, ptr, old_size, align, new_size, ra);
    if (q) {
        htri_block *b = htri_blocktab_find(&t->rec.blocks, (uintptr_t)ptr);
        if (b)
            htri_recorder_resized(&t->rec, b, q, new_size);
    }
    pthread_mutex_unlock(&t->rec.lock);
    return q;
}

static void tracking_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    htr_tracking_t *t = ctx;
    pthread_mutex_lock(&t->rec.lock);
    htri_block *b = htri_blocktab_find(&t->rec.blocks, (uintptr_t)ptr);
    if (b) {
        htri_stats_on_free(&t->rec.stats, b->size);
        htri_blocktab_remove(&t->rec.blocks, b);
    } else {
        t->n_unknown_frees++;
    }
    pthread_mutex_unlock(&t->rec.lock);
    htri_parent_free(t->rec.parent, ptr, size, align, ra);
}

static const htr_allocator_vtable_t tracking_vtable = {
    tracking_alloc, tracking_resize, tracking_remap, tracking_free
};

htr_tracking_t *htr_tracking_new(htr_allocator_t parent, const htr_layer_opts_t *opts)
{
    htr_tracking_t *t = htri_alloc_meta_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->rec.parent = parent;
    htri_alloc_layer_cfg(&t->rec.cfg, opts, "tracking");
    pthread_mutex_init(&t->rec.lock, NULL);
    if (htri_blocktab_init(&t->rec.blocks, t->rec.cfg.depth) < 0) {
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
    pthread_mutex_lock(&t->rec.lock);
    *stats = t->rec.stats;
    pthread_mutex_unlock(&t->rec.lock);
}

size_t htr_tracking_live_bytes(htr_tracking_t *t)
{
    pthread_mutex_lock(&t->rec.lock);
    size_t n = t->rec.stats.bytes_live;
    pthread_mutex_unlock(&t->rec.lock);
    return n;
}

size_t htr_tracking_tag_bytes(htr_tracking_t *t, const char *tag)
{
    size_t bytes = 0;
    pthread_mutex_lock(&t->rec.lock);
    for (size_t i = 0; i < t->rec.blocks.cap; i++) {
        htri_block *b = htri_blocktab_slot(&t->rec.blocks, i);
        if (b->ptr && htri_alloc_tag_eq(b->tag, tag))
            bytes += b->size;
    }
    pthread_mutex_unlock(&t->rec.lock);
    return bytes;
}

/* Live bytes and blocks per tag, for the report (tags beyond the first 32 are summed). */
typedef struct tag_sum {
    const char *tag;
    size_t bytes, n;
} tag_sum;

long htr_tracking_report(htr_tracking_t *t, htr_sink_t sink, size_t max_blocks)
{
    pthread_mutex_lock(&t->rec.lock);
    size_t n = 0;
    htri_block **v = htri_blocktab_sorted(&t->rec.blocks, &n);
    if (!v) {
        pthread_mutex_unlock(&t->rec.lock);
        return -ENOMEM;
    }
    const htr_alloc_stats_t *s = &t->rec.stats;
    htri_alloc_emit(&sink, "%s: %zu live blocks, %zu bytes live (peak %zu bytes, %zu blocks); "
                    "%llu allocs, %llu frees, %llu resizes, %llu failed, %llu bytes in total",
                    t->rec.cfg.name, s->n_live, s->bytes_live, s->bytes_peak, s->n_live_peak,
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
    pthread_mutex_unlock(&t->rec.lock);
    return (long)n;
}

void htr_tracking_destroy(htr_tracking_t *t)
{
    if (!t)
        return;
    htri_blocktab_fini(&t->rec.blocks);
    pthread_mutex_destroy(&t->rec.lock);
    htri_alloc_meta_free(t, sizeof *t);
}
