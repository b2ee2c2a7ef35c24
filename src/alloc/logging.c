/* The logging layer: one line per call (alloc, resize, remap, free) with sizes, addresses
 * and the caller's return address, to a file descriptor or a callback. */
#include <stdatomic.h>

#include "alloc/alloc_internal.h"

struct htr_logging {
    htr_allocator_t parent;
    htr_sink_t sink;
    atomic_uint_fast64_t n_lines; /* lines are whole writes, so no lock is needed */
};

static void *logging_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    htr_logging_t *l = ctx;
    void *p = htri_parent_alloc(l->parent, size, align, ra);
    htri_alloc_emit(&l->sink, "alloc %zu align %zu -> %p from 0x%lx", size, align, p,
                    (unsigned long)ra);
    atomic_fetch_add(&l->n_lines, 1);
    return p;
}

static int logging_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                          uintptr_t ra)
{
    htr_logging_t *l = ctx;
    int ok = htri_parent_resize(l->parent, ptr, old_size, align, new_size, ra);
    htri_alloc_emit(&l->sink, "resize %p %zu -> %zu align %zu: %s from 0x%lx", ptr, old_size,
                    new_size, align, ok ? "in place" : "refused", (unsigned long)ra);
    atomic_fetch_add(&l->n_lines, 1);
    return ok;
}

static void *logging_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                           uintptr_t ra)
{
    htr_logging_t *l = ctx;
    void *q = htri_parent_remap(l->parent, ptr, old_size, align, new_size, ra);
    htri_alloc_emit(&l->sink, "remap %p %zu -> %zu align %zu -> %p from 0x%lx", ptr, old_size,
                    new_size, align, q, (unsigned long)ra);
    atomic_fetch_add(&l->n_lines, 1);
    return q;
}

static void logging_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    htr_logging_t *l = ctx;
    /* Logged before the parent call: after it, the address may already belong to another
     * thread's block and the line would interleave misleadingly. */
    htri_alloc_emit(&l->sink, "free %p %zu align %zu from 0x%lx", ptr, size, align,
                    (unsigned long)ra);
    atomic_fetch_add(&l->n_lines, 1);
    htri_parent_free(l->parent, ptr, size, align, ra);
}

static const htr_allocator_vtable_t logging_vtable = {
    logging_alloc, logging_resize, logging_remap, logging_free
};

htr_logging_t *htr_logging_new(htr_allocator_t parent, htr_sink_t sink)
{
    htr_logging_t *l = htri_alloc_meta_calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->parent = parent;
    l->sink = sink;
    return l;
}

htr_allocator_t htr_logging_allocator(htr_logging_t *l)
{
    return (htr_allocator_t){ l, &logging_vtable };
}

uint64_t htr_logging_lines(htr_logging_t *l)
{
    return atomic_load(&l->n_lines);
}

void htr_logging_destroy(htr_logging_t *l)
{
    htri_alloc_meta_free(l, sizeof *l);
}
