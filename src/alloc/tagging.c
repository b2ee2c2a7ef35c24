/* The tagging layer: runs every call into its parent with the thread's current tag set to
 * its own, so tracking and profiling below it attribute blocks to a subsystem. */
#include "alloc/alloc_internal.h"

struct htr_tagging {
    htr_allocator_t parent;
    const char *tag;  /* kept by pointer; immutable, so no lock */
};

static void *tagging_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    htr_tagging_t *t = ctx;
    const char *old = htr_tag_set(t->tag);
    void *p = htri_parent_alloc(t->parent, size, align, ra);
    htr_tag_set(old);
    return p;
}

static int tagging_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                          uintptr_t ra)
{
    htr_tagging_t *t = ctx;
    const char *old = htr_tag_set(t->tag);
    int ok = htri_parent_resize(t->parent, ptr, old_size, align, new_size, ra);
    htr_tag_set(old);
    return ok;
}

static void *tagging_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                           uintptr_t ra)
{
    htr_tagging_t *t = ctx;
    const char *old = htr_tag_set(t->tag);
    void *q = htri_parent_remap(t->parent, ptr, old_size, align, new_size, ra);
    htr_tag_set(old);
    return q;
}

static void tagging_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    htr_tagging_t *t = ctx;
    const char *old = htr_tag_set(t->tag);
    htri_parent_free(t->parent, ptr, size, align, ra);
    htr_tag_set(old);
}

static const htr_allocator_vtable_t tagging_vtable = {
    tagging_alloc, tagging_resize, tagging_remap, tagging_free
};

htr_tagging_t *htr_tagging_new(htr_allocator_t parent, const char *tag)
{
    htr_tagging_t *t = htri_alloc_meta_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->parent = parent;
    t->tag = tag;
    return t;
}

htr_allocator_t htr_tagging_allocator(htr_tagging_t *t)
{
    return (htr_allocator_t){ t, &tagging_vtable };
}

void htr_tagging_destroy(htr_tagging_t *t)
{
    htri_alloc_meta_free(t, sizeof *t);
}
