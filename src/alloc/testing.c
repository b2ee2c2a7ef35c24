/* The testing layer: for unit tests. Records every live block with its allocation stack,
 * refuses (and reports) double frees, frees of foreign pointers and frees with the wrong
 * size, and at the end reports what is still live and returns the count of problems. */
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc_internal.h"

/* Recently freed blocks, newest last, so a second free can be told from a foreign pointer
 * and shown with the first free's stack. One record:
 *
 *   +-----+------+---------+---------+------------------------+-----------------------+
 *   | ptr | size | n_alloc | n_free  | alloc pcs [depth]      | free pcs [depth]      |
 *   +-----+------+---------+---------+------------------------+-----------------------+ */
#define TESTING_FREED_RING 256

typedef struct freed_rec {
    uintptr_t ptr;
    size_t size;
    uint32_t n_alloc, n_free;
    uintptr_t pcs[];  /* alloc stack then free stack, depth each */
} freed_rec;

struct htr_testing {
    htri_recorder rec;         /* parent, lock, block table, counters */
    htr_testing_result_t errors; /* n_leaks / bytes_leaked are filled by finish */
    unsigned char *freed;      /* ring of TESTING_FREED_RING records */
    size_t freed_stride, freed_next, freed_n;
};

static freed_rec *testing_freed_slot(htr_testing_t *t, size_t i)
{
    return (freed_rec *)(void *)(t->freed + i * t->freed_stride);
}

static void testing_remember_free(htr_testing_t *t, const htri_block *b, uintptr_t ra)
{
    freed_rec *r = testing_freed_slot(t, t->freed_next);
    t->freed_next = (t->freed_next + 1) % TESTING_FREED_RING;
    if (t->freed_n < TESTING_FREED_RING)
        t->freed_n++;
    r->ptr = b->ptr;
    r->size = b->size;
    r->n_alloc = b->n_pcs;
    memcpy(r->pcs, b->pcs, b->n_pcs * sizeof(uintptr_t));
    r->n_free = t->rec.cfg.depth ? (uint32_t)htri_alloc_capture(r->pcs + t->rec.cfg.depth, t->rec.cfg.depth, ra)
                             : 0;
}

static freed_rec *testing_find_freed(htr_testing_t *t, uintptr_t ptr)
{
    for (size_t k = 1; k <= t->freed_n; k++) {
        size_t i = (t->freed_next + TESTING_FREED_RING - k) % TESTING_FREED_RING;
        freed_rec *r = testing_freed_slot(t, i);
        if (r->ptr == ptr)
            return r;
    }
    return NULL;
}

/* A call on a pointer that is not live here: a double free if we freed it recently, else a
 * foreign pointer. Reported with what we know; the caller does not pass it on. */
static void testing_bad_pointer(htr_testing_t *t, const char *what, void *ptr, size_t size,
                                uintptr_t ra)
{
    uintptr_t pcs[HTRI_ALLOC_MAX_DEPTH];
    int n = htri_alloc_capture(pcs, t->rec.cfg.depth ? t->rec.cfg.depth : 1, ra);
    freed_rec *r = testing_find_freed(t, (uintptr_t)ptr);
    if (r) {
        t->errors.n_double_frees++;
        htri_alloc_emit(&t->rec.cfg.sink, "%s: double free: %s of 0x%lx (%zu bytes), already freed; "
                        "this %s at:", t->rec.cfg.name, what, (unsigned long)ptr, r->size, what);
        htri_alloc_emit_stack(&t->rec.cfg.sink, pcs, n);
        htri_alloc_emit(&t->rec.cfg.sink, "  first freed at:");
        htri_alloc_emit_stack(&t->rec.cfg.sink, r->pcs + t->rec.cfg.depth, (int)r->n_free);
        htri_alloc_emit(&t->rec.cfg.sink, "  allocated at:");
        htri_alloc_emit_stack(&t->rec.cfg.sink, r->pcs, (int)r->n_alloc);
    } else {
        t->errors.n_foreign_frees++;
        htri_alloc_emit(&t->rec.cfg.sink, "%s: foreign pointer: %s of 0x%lx (%zu bytes), never "
                        "allocated here; at:", t->rec.cfg.name, what, (unsigned long)ptr, size);
        htri_alloc_emit_stack(&t->rec.cfg.sink, pcs, n);
    }
}

static void *testing_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    return htri_recorder_alloc(&((htr_testing_t *)ctx)->rec, size, align, ra);
}

/* Checks the caller's size and alignment against the record; reports a mismatch. */
static void testing_check_size(htr_testing_t *t, const char *what, const htri_block *b,
                               size_t size, size_t align, uintptr_t ra)
{
    if (b->size == size && b->align == align)
        return;
    t->errors.n_size_mismatches++;
    uintptr_t pcs[HTRI_ALLOC_MAX_DEPTH];
    int n = htri_alloc_capture(pcs, t->rec.cfg.depth ? t->rec.cfg.depth : 1, ra);
    htri_alloc_emit(&t->rec.cfg.sink, "%s: size mismatch: %s of 0x%lx says %zu bytes align %zu, "
                    "the block has %zu bytes align %zu; at:", t->rec.cfg.name, what,
                    (unsigned long)b->ptr, size, align, b->size, b->align);
    htri_alloc_emit_stack(&t->rec.cfg.sink, pcs, n);
    htri_alloc_emit(&t->rec.cfg.sink, "  allocated at:");
    htri_alloc_emit_stack(&t->rec.cfg.sink, b->pcs, (int)b->n_pcs);
}

static int testing_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                          uintptr_t ra)
{
    htr_testing_t *t = ctx;
    pthread_mutex_lock(&t->rec.lock);
    htri_block *b = htri_blocktab_find(&t->rec.blocks, (uintptr_t)ptr);
    if (!b) {
        testing_bad_pointer(t, "resize", ptr, old_size, ra);
        pthread_mutex_unlock(&t->rec.lock);
        return 0;
    }
    testing_check_size(t, "resize", b, old_size, align, ra);
    int ok = htri_parent_resize(t->rec.parent, ptr, b->size, b->align, new_size, ra);
    if (ok)
        htri_recorder_resized(&t->rec, b, ptr, new_size);
    pthread_mutex_unlock(&t->rec.lock);
    return ok;
}

static void *testing_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                           uintptr_t ra)
{
    htr_testing_t *t = ctx;
    pthread_mutex_lock(&t->rec.lock);
    htri_block *b = htri_blocktab_find(&t->rec.blocks, (uintptr_t)ptr);
    if (!b) {
        testing_bad_pointer(t, "remap", ptr, old_size, ra);
        pthread_mutex_unlock(&t->rec.lock);
        return NULL;
    }
    testing_check_size(t, "remap", b, old_size, align, ra);
    void *q = htri_parent_remap(t->rec.parent, ptr, b->size, b->align, new_size, ra);
    if (q)
        htri_recorder_resized(&t->rec, b, q, new_size);
    pthread_mutex_unlock(&t->rec.lock);
    return q;
}

static void testing_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    htr_testing_t *t = ctx;
    pthread_mutex_lock(&t->rec.lock);
    htri_block *b = htri_blocktab_find(&t->rec.blocks, (uintptr_t)ptr);
    if (!b) {
        testing_bad_pointer(t, "free", ptr, size, ra);
        pthread_mutex_unlock(&t->rec.lock);
        return;
    }
    testing_check_size(t, "free", b, size, align, ra);
    /* The parent gets the true size, so a caller's mistake stays a report, not a crash. */
    size_t true_size = b->size, true_align = b->align;
    htri_stats_on_free(&t->rec.stats, true_size);
    testing_remember_free(t, b, ra);
    htri_blocktab_remove(&t->rec.blocks, b);
    pthread_mutex_unlock(&t->rec.lock);
    htri_parent_free(t->rec.parent, ptr, true_size, true_align, ra);
}

static const htr_allocator_vtable_t testing_vtable = {
    testing_alloc, testing_resize, testing_remap, testing_free
};

htr_testing_t *htr_testing_new(htr_allocator_t parent, const htr_layer_opts_t *opts)
{
    htr_testing_t *t = htri_alloc_meta_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->rec.parent = parent;
    htri_alloc_layer_cfg(&t->rec.cfg, opts, "testing");
    t->freed_stride = sizeof(freed_rec) + 2 * (size_t)t->rec.cfg.depth * sizeof(uintptr_t);
    t->freed = htri_alloc_meta_calloc(TESTING_FREED_RING, t->freed_stride);
    if (!t->freed || htri_blocktab_init(&t->rec.blocks, t->rec.cfg.depth) < 0) {
        htri_alloc_meta_free(t->freed, TESTING_FREED_RING * t->freed_stride);
        htri_alloc_meta_free(t, sizeof *t);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&t->rec.lock, NULL);
    return t;
}

htr_allocator_t htr_testing_allocator(htr_testing_t *t)
{
    return (htr_allocator_t){ t, &testing_vtable };
}

size_t htr_testing_finish(htr_testing_t *t, htr_testing_result_t *result)
{
    pthread_mutex_lock(&t->rec.lock);
    htr_testing_result_t r = t->errors;
    r.n_leaks = t->rec.blocks.n;
    r.bytes_leaked = t->rec.stats.bytes_live;
    size_t n = 0;
    htri_block **v = htri_blocktab_sorted(&t->rec.blocks, &n);
    for (size_t i = 0; v && i < n; i++) {
        htri_alloc_emit(&t->rec.cfg.sink, "%s: leak: %zu bytes at 0x%lx (tag %s, allocation #%llu), "
                        "allocated at:", t->rec.cfg.name, v[i]->size, (unsigned long)v[i]->ptr,
                        htri_tag_name(v[i]->tag), (unsigned long long)v[i]->seq);
        htri_alloc_emit_stack(&t->rec.cfg.sink, v[i]->pcs, (int)v[i]->n_pcs);
    }
    if (v)
        htri_alloc_meta_free(v, (n + 1) * sizeof *v);
    size_t problems = r.n_leaks + r.n_double_frees + r.n_foreign_frees + r.n_size_mismatches;
    if (problems)
        htri_alloc_emit(&t->rec.cfg.sink, "%s: %zu problems: %zu leaked blocks (%zu bytes), %zu double "
                        "frees, %zu foreign frees, %zu size mismatches", t->rec.cfg.name, problems,
                        r.n_leaks, r.bytes_leaked, r.n_double_frees, r.n_foreign_frees,
                        r.n_size_mismatches);
    pthread_mutex_unlock(&t->rec.lock);
    if (result)
        *result = r;
    return problems;
}

void htr_testing_stats(htr_testing_t *t, htr_alloc_stats_t *stats)
{
    pthread_mutex_lock(&t->rec.lock);
    *stats = t->rec.stats;
    pthread_mutex_unlock(&t->rec.lock);
}

void htr_testing_destroy(htr_testing_t *t)
{
    if (!t)
        return;
    htri_blocktab_fini(&t->rec.blocks);
    htri_alloc_meta_free(t->freed, TESTING_FREED_RING * t->freed_stride);
    pthread_mutex_destroy(&t->rec.lock);
    htri_alloc_meta_free(t, sizeof *t);
}
