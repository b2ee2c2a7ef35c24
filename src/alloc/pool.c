/* The pool: objects of one size in slabs taken from the parent, recycled through a free
 * list threaded through the free objects; hit/miss counts and a report of objects never
 * returned, with their allocation stacks. */
#include <string.h>

#include "alloc/alloc_internal.h"

/* A slab is objs_per_slab slots of `stride` bytes; a free slot holds the next free slot:
 *
 *   +--------+--------+--------+--------+-- ... --+
 *   | obj 0  | free ->| obj 2  | free ->|         |   slab (from the parent)
 *   +--------+----|---+--------+----|---+-- ... --+
 *                 +-----------------+--> ...          free list (newest first) */
typedef struct pool_free {
    struct pool_free *next;
} pool_free;

struct htr_pool {
    htr_allocator_t parent;
    htri_layer_cfg cfg;
    size_t obj_size, obj_align, stride, per_slab, slab_bytes;
    pthread_mutex_t lock;   /* guards everything below */
    void **slabs;           /* bookkeeping from libc */
    size_t n_slabs, slabs_cap;
    size_t fresh_left;      /* unused slots at the end of the newest slab */
    pool_free *free_list;
    htri_blocktab live;     /* live objects and their allocation stacks */
    uint64_t hits, misses, seq, n_bad_frees;
};

static void *pool_take(htr_pool_t *p, uintptr_t ra, int *hit)
{
    if (p->free_list) {
        pool_free *f = p->free_list;
        p->free_list = f->next;
        *hit = 1;
        return f;
    }
    *hit = 0;
    if (!p->fresh_left) {
        if (p->n_slabs == p->slabs_cap) {
            size_t new_cap = p->slabs_cap ? p->slabs_cap * 2 : 16;
            void **s = htri_alloc_meta_calloc(new_cap, sizeof *s);
            if (!s)
                return NULL;
            if (p->slabs)
                memcpy(s, p->slabs, p->n_slabs * sizeof *s);
            htri_alloc_meta_free(p->slabs, p->slabs_cap * sizeof *s);
            p->slabs = s;
            p->slabs_cap = new_cap;
        }
        void *slab = htri_parent_alloc(p->parent, p->slab_bytes, p->obj_align, ra);
        if (!slab)
            return NULL;
        p->slabs[p->n_slabs++] = slab;
        p->fresh_left = p->per_slab;
    }
    unsigned char *slab = p->slabs[p->n_slabs - 1];
    return slab + (p->per_slab - p->fresh_left--) * p->stride;
}

static void *pool_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    htr_pool_t *p = ctx;
    if (size > p->obj_size || align > p->obj_align) {
        errno = EINVAL;
        return NULL;
    }
    uintptr_t pcs[HTRI_ALLOC_MAX_DEPTH];
    int n_pcs = p->cfg.depth ? htri_alloc_capture(pcs, p->cfg.depth, ra) : 0;
    pthread_mutex_lock(&p->lock);
    int hit;
    void *obj = pool_take(p, ra, &hit);
    htri_block *b = obj ? htri_blocktab_insert(&p->live, (uintptr_t)obj) : NULL;
    if (!b) {
        if (obj) {
            /* Out of bookkeeping: put the object back, fail the call. */
            ((pool_free *)obj)->next = p->free_list;
            p->free_list = obj;
        }
        pthread_mutex_unlock(&p->lock);
        errno = ENOMEM;
        return NULL;
    }
    if (hit)
        p->hits++;
    else
        p->misses++;
    b->size = size;
    b->align = align;
    b->tag = htr_tag_current();
    b->seq = p->seq++;
    b->n_pcs = (uint32_t)n_pcs;
    memcpy(b->pcs, pcs, (size_t)n_pcs * sizeof pcs[0]);
    pthread_mutex_unlock(&p->lock);
    return obj;
}

static int pool_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                       uintptr_t ra)
{
    htr_pool_t *p = ctx;
    pthread_mutex_lock(&p->lock);
    htri_block *b = htri_blocktab_find(&p->live, (uintptr_t)ptr);
    int ok = b && new_size <= p->obj_size; /* every slot has obj_size bytes */
    if (ok)
        b->size = new_size;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

static void *pool_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                        uintptr_t ra)
{
    return NULL;
}

static void pool_free_obj(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    htr_pool_t *p = ctx;
    pthread_mutex_lock(&p->lock);
    htri_block *b = htri_blocktab_find(&p->live, (uintptr_t)ptr);
    if (!b) {
        p->n_bad_frees++;
        uintptr_t pcs[HTRI_ALLOC_MAX_DEPTH];
        int n = htri_alloc_capture(pcs, p->cfg.depth ? p->cfg.depth : 1, ra);
        htri_alloc_emit(&p->cfg.sink, "%s: free of %p, which is not a live object of this pool "
                        "(double free or foreign pointer); at:", p->cfg.name, ptr);
        htri_alloc_emit_stack(&p->cfg.sink, pcs, n);
        pthread_mutex_unlock(&p->lock);
        return;
    }
    htri_blocktab_remove(&p->live, b);
    ((pool_free *)ptr)->next = p->free_list;
    p->free_list = ptr;
    pthread_mutex_unlock(&p->lock);
}

static const htr_allocator_vtable_t pool_vtable = { pool_alloc, pool_resize, pool_remap, pool_free_obj };

htr_pool_t *htr_pool_new(htr_allocator_t parent, size_t obj_size, size_t obj_align,
                         size_t objs_per_slab, const htr_layer_opts_t *opts)
{
    if (!obj_align)
        obj_align = HTR_DEFAULT_ALIGN;
    if (!obj_size || !htri_alloc_align_ok(obj_align)) {
        errno = EINVAL;
        return NULL;
    }
    if (obj_align < _Alignof(pool_free))
        obj_align = _Alignof(pool_free);
    size_t slot = obj_size > sizeof(pool_free) ? obj_size : sizeof(pool_free);
    size_t stride = (size_t)htri_align_up(slot, obj_align), bytes;
    if (!objs_per_slab)
        objs_per_slab = 64;
    if (stride < slot || htri_mul_overflow(stride, objs_per_slab, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    htr_pool_t *p = htri_alloc_meta_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->parent = parent;
    htri_alloc_layer_cfg(&p->cfg, opts, "pool");
    p->obj_size = obj_size;
    p->obj_align = obj_align;
    p->stride = stride;
    p->per_slab = objs_per_slab;
    p->slab_bytes = bytes;
    if (htri_blocktab_init(&p->live, p->cfg.depth) < 0) {
        htri_alloc_meta_free(p, sizeof *p);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

htr_allocator_t htr_pool_allocator(htr_pool_t *p)
{
    return (htr_allocator_t){ p, &pool_vtable };
}

void htr_pool_stats(htr_pool_t *p, htr_pool_stats_t *stats)
{
    pthread_mutex_lock(&p->lock);
    *stats = (htr_pool_stats_t){ p->hits, p->misses, p->live.n, p->n_slabs, p->obj_size };
    pthread_mutex_unlock(&p->lock);
}

size_t htr_pool_report(htr_pool_t *p, htr_sink_t sink)
{
    pthread_mutex_lock(&p->lock);
    size_t n = 0;
    htri_block **v = htri_blocktab_sorted(&p->live, &n);
    htri_alloc_emit(&sink, "%s: %zu-byte objects: %llu hits, %llu misses, %zu slabs, %zu objects "
                    "never returned", p->cfg.name, p->obj_size, (unsigned long long)p->hits,
                    (unsigned long long)p->misses, p->n_slabs, p->live.n);
    for (size_t i = 0; v && i < n; i++) {
        htri_alloc_emit(&sink, "  object %p (allocation #%llu, tag %s) never returned, allocated at:",
                        (void *)v[i]->ptr, (unsigned long long)v[i]->seq, htri_tag_name(v[i]->tag));
        htri_alloc_emit_stack(&sink, v[i]->pcs, (int)v[i]->n_pcs);
    }
    if (v)
        htri_alloc_meta_free(v, (n + 1) * sizeof *v);
    size_t live = p->live.n;
    pthread_mutex_unlock(&p->lock);
    return live;
}

void htr_pool_destroy(htr_pool_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_slabs; i++)
        htri_parent_free(p->parent, p->slabs[i], p->slab_bytes, p->obj_align,
                         (uintptr_t)__builtin_return_address(0));
    htri_alloc_meta_free(p->slabs, p->slabs_cap * sizeof *p->slabs);
    htri_blocktab_fini(&p->live);
    pthread_mutex_destroy(&p->lock);
    htri_alloc_meta_free(p, sizeof *p);
}
