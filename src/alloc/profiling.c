/* The profiling layer: how many calls and bytes fall in each power-of-two size class, and
 * per tag (the thread's current tag, set by a tagging layer above this one). */
#include <stdio.h>
#include <string.h>

#include "alloc/alloc_internal.h"

struct htr_profiling {
    htr_allocator_t parent;
    pthread_mutex_t lock;   /* guards the counters */
    htr_profile_counts_t classes[HTR_SIZE_CLASSES];
    struct {
        const char *tag;    /* NULL in slot 0: untagged */
        htr_profile_counts_t counts;
    } tags[HTR_PROFILE_MAX_TAGS + 1];
    size_t n_tags;          /* slots in use after the untagged slot 0 */
    uint64_t n_tag_overflow;/* calls whose tag found no free slot (counted as untagged) */
};

size_t htr_profiling_size_class(size_t size)
{
    if (size <= 1)
        return 0;
    size_t k = (size_t)(64 - __builtin_clzll((unsigned long long)(size - 1)));
    return k < HTR_SIZE_CLASSES ? k : HTR_SIZE_CLASSES - 1;
}

/* The tag's counters; lock held. */
static htr_profile_counts_t *prof_tag(htr_profiling_t *p, const char *tag)
{
    if (!tag)
        return &p->tags[0].counts;
    for (size_t i = 1; i <= p->n_tags; i++)
        if (htri_alloc_tag_eq(p->tags[i].tag, tag))
            return &p->tags[i].counts;
    if (p->n_tags == HTR_PROFILE_MAX_TAGS) {
        p->n_tag_overflow++;
        return &p->tags[0].counts;
    }
    p->n_tags++;
    p->tags[p->n_tags].tag = tag;
    return &p->tags[p->n_tags].counts;
}

static void prof_count(htr_profiling_t *p, size_t size, int kind, size_t old_size)
{
    htr_profile_counts_t *c[2];
    pthread_mutex_lock(&p->lock);
    c[0] = &p->classes[htr_profiling_size_class(size)];
    c[1] = prof_tag(p, htr_tag_current());
    for (int i = 0; i < 2; i++) {
        switch (kind) {
        case 0: c[i]->n_allocs++; c[i]->bytes_allocated += size; break;
        case 1: c[i]->n_frees++; c[i]->bytes_freed += size; break;
        default:
            c[i]->n_resizes++;
            if (size > old_size)
                c[i]->bytes_allocated += size - old_size;
            else
                c[i]->bytes_freed += old_size - size;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

static void *prof_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    htr_profiling_t *p = ctx;
    void *b = htri_parent_alloc(p->parent, size, align, ra);
    if (b)
        prof_count(p, size, 0, 0);
    return b;
}

static int prof_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                       uintptr_t ra)
{
    htr_profiling_t *p = ctx;
    int ok = htri_parent_resize(p->parent, ptr, old_size, align, new_size, ra);
    if (ok)
        prof_count(p, new_size, 2, old_size);
    return ok;
}

static void *prof_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                        uintptr_t ra)
{
    htr_profiling_t *p = ctx;
    void *q = htri_parent_remap(p->parent, ptr, old_size, align, new_size, ra);
    if (q)
        prof_count(p, new_size, 2, old_size);
    return q;
}

static void prof_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    htr_profiling_t *p = ctx;
    prof_count(p, size, 1, 0);
    htri_parent_free(p->parent, ptr, size, align, ra);
}

static const htr_allocator_vtable_t prof_vtable = { prof_alloc, prof_resize, prof_remap, prof_free };

htr_profiling_t *htr_profiling_new(htr_allocator_t parent)
{
    htr_profiling_t *p = htri_alloc_meta_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->parent = parent;
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

htr_allocator_t htr_profiling_allocator(htr_profiling_t *p)
{
    return (htr_allocator_t){ p, &prof_vtable };
}

int htr_profiling_class(htr_profiling_t *p, size_t size_class, htr_profile_counts_t *out)
{
    if (size_class >= HTR_SIZE_CLASSES)
        return -EINVAL;
    pthread_mutex_lock(&p->lock);
    *out = p->classes[size_class];
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int htr_profiling_tag(htr_profiling_t *p, const char *tag, htr_profile_counts_t *out)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i <= p->n_tags; i++) {
        if (i == 0 ? tag == NULL : htri_alloc_tag_eq(p->tags[i].tag, tag)) {
            *out = p->tags[i].counts;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int htr_profiling_report(htr_profiling_t *p, htr_sink_t sink)
{
    pthread_mutex_lock(&p->lock);
    uint64_t max_calls = 1;
    for (size_t k = 0; k < HTR_SIZE_CLASSES; k++)
        if (p->classes[k].n_allocs > max_calls)
            max_calls = p->classes[k].n_allocs;
    htri_alloc_emit(&sink, "profile: size class      allocs       frees     resizes  bytes allocated");
    for (size_t k = 0; k < HTR_SIZE_CLASSES; k++) {
        const htr_profile_counts_t *c = &p->classes[k];
        if (!c->n_allocs && !c->n_frees && !c->n_resizes)
            continue;
        char bar[41];
        size_t w = (size_t)(c->n_allocs * 40 / max_calls);
        memset(bar, '#', w);
        bar[w] = 0;
        size_t lo = k == 0 ? 1 : ((size_t)1 << (k - 1)) + 1, hi = (size_t)1 << k;
        htri_alloc_emit(&sink, "  %8zu..%-8zu %11llu %11llu %11llu %16llu %s", lo, hi,
                        (unsigned long long)c->n_allocs, (unsigned long long)c->n_frees,
                        (unsigned long long)c->n_resizes, (unsigned long long)c->bytes_allocated, bar);
    }
    htri_alloc_emit(&sink, "profile: tag                allocs       frees  bytes allocated  bytes freed");
    for (size_t i = 0; i <= p->n_tags; i++) {
        const htr_profile_counts_t *c = &p->tags[i].counts;
        if (i == 0 && !c->n_allocs && !c->n_frees && !c->n_resizes)
            continue;
        htri_alloc_emit(&sink, "  %-16s %11llu %11llu %16llu %12llu", htri_tag_name(p->tags[i].tag),
                        (unsigned long long)c->n_allocs, (unsigned long long)c->n_frees,
                        (unsigned long long)c->bytes_allocated, (unsigned long long)c->bytes_freed);
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void htr_profiling_destroy(htr_profiling_t *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    htri_alloc_meta_free(p, sizeof *p);
}
