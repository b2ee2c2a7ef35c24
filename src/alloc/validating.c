/* The validating layer: canaries around every block, checked on resize, on free and on
 * demand; fresh blocks filled with HTR_FILL_FRESH and freed ones with HTR_FILL_FREED. The
 * canaries are in band (taken from the parent), the records out of band (libc). */
#include <stdio.h>
#include <string.h>

#include "alloc/alloc_internal.h"

/* One block as the parent sees it (align = the caller's alignment):
 *
 *   raw                          user                      user + size
 *   v                            v                         v
 *   +----------------------------+-------------------------+----------------+
 *   | front guard (GUARD bytes)  | the caller's block      | back guard     |
 *   | round_up(CANARY, align)    | size bytes              | CANARY bytes   |
 *   +----------------------------+-------------------------+----------------+
 *
 * The record (size, align, stack) is keyed by `user` in the block table, so a damaged
 * guard never hides which block it was. */
#define CANARY 16

_Static_assert(HTR_ALLOC_FILL_FRESH == HTR_FILL_FRESH && HTR_ALLOC_FILL_FREED == HTR_FILL_FREED &&
               HTR_ALLOC_FILL_GUARD == HTR_FILL_GUARD, "public fill bytes match config.h");

struct htr_validating {
    htr_allocator_t parent;
    htri_layer_cfg cfg;
    pthread_mutex_t lock;   /* guards the table and counters; held across parent remap */
    htri_blocktab blocks;
    uint64_t seq;
    size_t n_damaged, n_bad_frees;
};

static size_t val_front(size_t align)
{
    return align > CANARY ? align : CANARY;
}

/* Total parent bytes for a block, or 0 on overflow. */
static size_t val_total(size_t size, size_t align)
{
    size_t t;
    if (htri_add_overflow(size, val_front(align) + CANARY, &t))
        return 0;
    return t;
}

static void val_arm(unsigned char *user, size_t size, size_t align)
{
    memset(user - val_front(align), HTR_FILL_GUARD, val_front(align));
    memset(user + size, HTR_FILL_GUARD, CANARY);
}

/* Reports the damaged bytes of one guard area [lo, hi) relative to user; returns count. */
static size_t val_scan(htr_validating_t *v, const unsigned char *user, long lo, long hi,
                       const char *where)
{
    size_t bad = 0;
    long first = 0, last = 0;
    for (long i = lo; i < hi; i++) {
        if (user[i] != HTR_FILL_GUARD) {
            if (!bad)
                first = i;
            last = i;
            bad++;
        }
    }
    if (!bad)
        return 0;
    char found[16 * 3 + 4];
    size_t k = 0;
    for (long i = first; i <= last && k + 4 < sizeof found; i++)
        k += (size_t)snprintf(found + k, sizeof found - k, " %02x", user[i]);
    if (last - first + 1 > 16)
        snprintf(found + k, sizeof found - k, " ...");
    htri_alloc_emit(&v->cfg.sink, "  %zu damaged bytes %s, at %+ld..%+ld (expected 0x%02x, found%s)",
                    bad, where, first, last, HTR_FILL_GUARD, found);
    return bad;
}

/* Checks one block's guards; reports it when damaged. Returns 1 if damaged. Lock held. */
static int val_check_block(htr_validating_t *v, const htri_block *b, const char *when)
{
    const unsigned char *user = (const unsigned char *)b->ptr;
    long front = (long)val_front(b->align);
    int damaged = 0;
    for (long i = -front; i < 0 && !damaged; i++)
        damaged = user[i] != HTR_FILL_GUARD;
    for (size_t i = 0; i < CANARY && !damaged; i++)
        damaged = user[b->size + i] != HTR_FILL_GUARD;
    if (!damaged)
        return 0;
    v->n_damaged++;
    htri_alloc_emit(&v->cfg.sink, "%s: damaged block 0x%lx (%zu bytes, allocation #%llu, tag %s), "
                    "found %s:", v->cfg.name, (unsigned long)b->ptr, b->size,
                    (unsigned long long)b->seq, htri_tag_name(b->tag), when);
    val_scan(v, user, -front, 0, "before the block (underrun)");
    val_scan(v, user, (long)b->size, (long)(b->size + CANARY), "after the block (overrun)");
    htri_alloc_emit(&v->cfg.sink, "  allocated at:");
    htri_alloc_emit_stack(&v->cfg.sink, b->pcs, (int)b->n_pcs);
    return 1;
}

static void val_bad_pointer(htr_validating_t *v, const char *what, void *ptr, uintptr_t ra)
{
    v->n_bad_frees++;
    uintptr_t pcs[HTRI_ALLOC_MAX_DEPTH];
    int n = htri_alloc_capture(pcs, v->cfg.depth ? v->cfg.depth : 1, ra);
    htri_alloc_emit(&v->cfg.sink, "%s: %s of 0x%lx, which is not a live block here; at:",
                    v->cfg.name, what, (unsigned long)ptr);
    htri_alloc_emit_stack(&v->cfg.sink, pcs, n);
}

static void *val_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    htr_validating_t *v = ctx;
    size_t total = val_total(size, align);
    if (!total) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t pcs[HTRI_ALLOC_MAX_DEPTH];
    int n_pcs = v->cfg.depth ? htri_alloc_capture(pcs, v->cfg.depth, ra) : 0;
    unsigned char *raw = htri_parent_alloc(v->parent, total, align, ra);
    if (!raw)
        return NULL;
    unsigned char *user = raw + val_front(align);
    pthread_mutex_lock(&v->lock);
    htri_block *b = htri_blocktab_insert(&v->blocks, (uintptr_t)user);
    if (!b) {
        pthread_mutex_unlock(&v->lock);
        htri_parent_free(v->parent, raw, total, align, ra);
        errno = ENOMEM;
        return NULL;
    }
    b->size = size;
    b->align = align;
    b->tag = htr_tag_current();
    b->seq = v->seq++;
    b->n_pcs = (uint32_t)n_pcs;
    memcpy(b->pcs, pcs, (size_t)n_pcs * sizeof pcs[0]);
    pthread_mutex_unlock(&v->lock);
    memset(user, HTR_FILL_FRESH, size);
    val_arm(user, size, align);
    return user;
}

static int val_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                      uintptr_t ra)
{
    htr_validating_t *v = ctx;
    size_t new_total = val_total(new_size, align);
    if (!new_total)
        return 0;
    pthread_mutex_lock(&v->lock);
    htri_block *b = htri_blocktab_find(&v->blocks, (uintptr_t)ptr);
    if (!b) {
        val_bad_pointer(v, "resize", ptr, ra);
        pthread_mutex_unlock(&v->lock);
        return 0;
    }
    val_check_block(v, b, "on resize");
    unsigned char *user = ptr;
    int ok = htri_parent_resize(v->parent, user - val_front(b->align), val_total(b->size, b->align),
                                b->align, new_total, ra);
    if (ok) {
        if (new_size > b->size)
            memset(user + b->size, HTR_FILL_FRESH, new_size - b->size);
        b->size = new_size;
        val_arm(user, new_size, b->align);
    }
    pthread_mutex_unlock(&v->lock);
    return ok;
}

static void *val_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                       uintptr_t ra)
{
    htr_validating_t *v = ctx;
    size_t new_total = val_total(new_size, align);
    if (!new_total)
        return NULL;
    pthread_mutex_lock(&v->lock);
    htri_block *b = htri_blocktab_find(&v->blocks, (uintptr_t)ptr);
    if (!b) {
        val_bad_pointer(v, "remap", ptr, ra);
        pthread_mutex_unlock(&v->lock);
        return NULL;
    }
    val_check_block(v, b, "on remap");
    size_t front = val_front(b->align), old = b->size;
    unsigned char *raw = htri_parent_remap(v->parent, (unsigned char *)ptr - front,
                                           val_total(old, b->align), b->align, new_total, ra);
    unsigned char *user = NULL;
    if (raw) {
        user = raw + front;
        if (user != ptr)
            b = htri_blocktab_rekey(&v->blocks, b, (uintptr_t)user);
        if (new_size > old)
            memset(user + old, HTR_FILL_FRESH, new_size - old);
        b->size = new_size;
        val_arm(user, new_size, b->align);
    }
    pthread_mutex_unlock(&v->lock);
    return user;
}

static void val_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    htr_validating_t *v = ctx;
    pthread_mutex_lock(&v->lock);
    htri_block *b = htri_blocktab_find(&v->blocks, (uintptr_t)ptr);
    if (!b) {
        /* Without a record the guard size is unknown, so the parent cannot be asked. */
        val_bad_pointer(v, "free", ptr, ra);
        pthread_mutex_unlock(&v->lock);
        return;
    }
    val_check_block(v, b, "on free");
    size_t true_size = b->size, true_align = b->align;
    htri_blocktab_remove(&v->blocks, b);
    pthread_mutex_unlock(&v->lock);
    size_t front = val_front(true_align), total = val_total(true_size, true_align);
    unsigned char *raw = (unsigned char *)ptr - front;
    memset(raw, HTR_FILL_FREED, total);
    htri_parent_free(v->parent, raw, total, true_align, ra);
}

static const htr_allocator_vtable_t val_vtable = { val_alloc, val_resize, val_remap, val_free };

htr_validating_t *htr_validating_new(htr_allocator_t parent, const htr_layer_opts_t *opts)
{
    htr_validating_t *v = htri_alloc_meta_calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->parent = parent;
    htri_alloc_layer_cfg(&v->cfg, opts, "validating");
    if (htri_blocktab_init(&v->blocks, v->cfg.depth) < 0) {
        htri_alloc_meta_free(v, sizeof *v);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&v->lock, NULL);
    return v;
}

htr_allocator_t htr_validating_allocator(htr_validating_t *v)
{
    return (htr_allocator_t){ v, &val_vtable };
}

size_t htr_validating_check(htr_validating_t *v)
{
    size_t damaged = 0;
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->blocks.cap; i++) {
        htri_block *b = htri_blocktab_slot(&v->blocks, i);
        if (b->ptr)
            damaged += (size_t)val_check_block(v, b, "on check");
    }
    pthread_mutex_unlock(&v->lock);
    return damaged;
}

size_t htr_validating_errors(htr_validating_t *v)
{
    pthread_mutex_lock(&v->lock);
    size_t n = v->n_damaged + v->n_bad_frees;
    pthread_mutex_unlock(&v->lock);
    return n;
}

void htr_validating_destroy(htr_validating_t *v)
{
    if (!v)
        return;
    htri_blocktab_fini(&v->blocks);
    pthread_mutex_destroy(&v->lock);
    htri_alloc_meta_free(v, sizeof *v);
}
