/* The fixed-buffer allocator: bump allocation over the caller's buffer with stack semantics,
 * plus a space-leak diagnostic: a free that is not of the last block strands its bytes, and
 * is reported at once with the freeing stack, long before the buffer runs out. */
#include <string.h>

#include "alloc/alloc_internal.h"

/* The live and stranded blocks, in address order (a stack: new blocks go on top). Each entry
 * remembers where its region began before alignment padding, so popping it gives back the
 * padding too:
 *
 *   buf                                                                  buf + cap
 *   |<- region 0 ->|<- region 1 ------->|<- region 2 ->|                 |
 *   +------+-------+----+---------------+---+----------+-----------------+
 *   | blk0 | blk0' |pad | blk1 (FREED)  |pad| blk2     |   free          |
 *   +------+-------+----+---------------+---+----------+-----------------+
 *                                                      ^ end
 *   Freeing blk2 pops it and then every freed entry under it (blk1), so end goes back to
 *   the start of region 1; until then blk1's region is "stranded". */
typedef struct fixed_entry {
    size_t region;     /* offset where this entry's region (padding included) starts */
    size_t start, size;
    int freed;
} fixed_entry;

struct htr_fixed {
    unsigned char *buf;
    size_t cap, end, high_water;
    htri_layer_cfg cfg;
    pthread_mutex_t lock;      /* guards everything below */
    fixed_entry *entries;      /* bookkeeping from libc; grows by doubling */
    size_t n_entries, entries_cap;
    size_t bytes_stranded;
    uint64_t n_stranding_frees, n_failed, n_bad_frees;
};

/* Index of the entry starting at offset, or -1 (binary search: entries are sorted). */
static long fixed_find(const htr_fixed_t *f, size_t off)
{
    size_t lo = 0, hi = f->n_entries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->entries[mid].start < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < f->n_entries && f->entries[lo].start == off ? (long)lo : -1;
}

static int fixed_reserve_entry(htr_fixed_t *f)
{
    if (f->n_entries < f->entries_cap)
        return 0;
    size_t new_cap = f->entries_cap ? f->entries_cap * 2 : 64;
    fixed_entry *e = htri_alloc_meta_calloc(new_cap, sizeof *e);
    if (!e)
        return -ENOMEM;
    if (f->entries)
        memcpy(e, f->entries, f->n_entries * sizeof *e);
    htri_alloc_meta_free(f->entries, f->entries_cap * sizeof *e);
    f->entries = e;
    f->entries_cap = new_cap;
    return 0;
}

static void *fixed_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    htr_fixed_t *f = ctx;
    pthread_mutex_lock(&f->lock);
    uintptr_t base = (uintptr_t)f->buf;
    size_t start = (size_t)(htri_align_up(base + f->end, align) - base);
    size_t new_end;
    if (start < f->end || htri_add_overflow(start, size, &new_end) || new_end > f->cap ||
        fixed_reserve_entry(f) < 0) {
        f->n_failed++;
        pthread_mutex_unlock(&f->lock);
        errno = ENOMEM;
        return NULL;
    }
    f->entries[f->n_entries++] = (fixed_entry){ f->end, start, size, 0 };
    f->end = new_end;
    if (f->end > f->high_water)
        f->high_water = f->end;
    pthread_mutex_unlock(&f->lock);
    return f->buf + start;
}

static int fixed_is_last(const htr_fixed_t *f, long i)
{
    return i >= 0 && (size_t)i == f->n_entries - 1;
}

static int fixed_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                        uintptr_t ra)
{
    htr_fixed_t *f = ctx;
    pthread_mutex_lock(&f->lock);
    long i = fixed_find(f, (size_t)((unsigned char *)ptr - f->buf));
    int ok = 0;
    if (i >= 0 && !f->entries[i].freed) {
        fixed_entry *e = &f->entries[i];
        if (fixed_is_last(f, i)) {
            /* The last block may grow into the free space or give back its tail. */
            if (new_size <= f->cap - e->start) {
                e->size = new_size;
                f->end = e->start + new_size;
                if (f->end > f->high_water)
                    f->high_water = f->end;
                ok = 1;
            }
        } else if (new_size <= e->size) {
            e->size = new_size; /* the tail stays in the region until it is popped */
            ok = 1;
        }
    }
    pthread_mutex_unlock(&f->lock);
    return ok;
}

static void *fixed_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                         uintptr_t ra)
{
    return NULL; /* a bump allocator cannot move a block more cheaply than the caller */
}

static void fixed_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    htr_fixed_t *f = ctx;
    uintptr_t pcs[HTRI_ALLOC_MAX_DEPTH];
    pthread_mutex_lock(&f->lock);
    size_t off = (size_t)((unsigned char *)ptr - f->buf);
    long i = (unsigned char *)ptr >= f->buf && off < f->cap ? fixed_find(f, off) : -1;
    if (i < 0 || f->entries[i].freed) {
        f->n_bad_frees++;
        int n = htri_alloc_capture(pcs, f->cfg.depth ? f->cfg.depth : 1, ra);
        htri_alloc_emit(&f->cfg.sink, "%s: %s of %p (%zu bytes); at:", f->cfg.name,
                        i < 0 ? "free of a pointer not allocated here" : "double free", ptr, size);
        htri_alloc_emit_stack(&f->cfg.sink, pcs, n);
        pthread_mutex_unlock(&f->lock);
        return;
    }
    if (fixed_is_last(f, i)) {
        /* Pop it, then every stranded entry now on top: their bytes come back. */
        do {
            fixed_entry *e = &f->entries[--f->n_entries];
            if (e->freed)
                f->bytes_stranded -= e->start + e->size - e->region;
            f->end = e->region;
        } while (f->n_entries && f->entries[f->n_entries - 1].freed);
        pthread_mutex_unlock(&f->lock);
        return;
    }
    fixed_entry *e = &f->entries[i];
    e->freed = 1;
    size_t region = e->start + e->size - e->region;
    f->bytes_stranded += region;
    f->n_stranding_frees++;
    const fixed_entry *top = &f->entries[f->n_entries - 1];
    size_t above = 0;
    for (size_t k = (size_t)i + 1; k < f->n_entries; k++)
        if (!f->entries[k].freed)
            above += f->entries[k].size;
    int n = f->cfg.depth ? htri_alloc_capture(pcs, f->cfg.depth, ra) : 0;
    htri_alloc_emit(&f->cfg.sink, "%s: space leak: free of %zu bytes at +%zu is not the last block "
                    "(%zu bytes still live above it, up to +%zu); %zu bytes stranded until "
                    "everything above is freed, %zu stranded in total of %zu; freed at:",
                    f->cfg.name, e->size, e->start, above, top->start + top->size, region,
                    f->bytes_stranded, f->cap);
    htri_alloc_emit_stack(&f->cfg.sink, pcs, n);
    pthread_mutex_unlock(&f->lock);
}

static const htr_allocator_vtable_t fixed_vtable = { fixed_alloc, fixed_resize, fixed_remap, fixed_free };

htr_fixed_t *htr_fixed_new(void *buffer, size_t len, const htr_layer_opts_t *opts)
{
    if (!buffer && len) {
        errno = EINVAL;
        return NULL;
    }
    htr_fixed_t *f = htri_alloc_meta_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->buf = buffer;
    f->cap = len;
    htri_alloc_layer_cfg(&f->cfg, opts, "fixed");
    pthread_mutex_init(&f->lock, NULL);
    return f;
}

htr_allocator_t htr_fixed_allocator(htr_fixed_t *f)
{
    return (htr_allocator_t){ f, &fixed_vtable };
}

void htr_fixed_stats(htr_fixed_t *f, htr_fixed_stats_t *stats)
{
    pthread_mutex_lock(&f->lock);
    *stats = (htr_fixed_stats_t){ f->cap, f->end, f->high_water, f->bytes_stranded,
                                  f->n_stranding_frees, f->n_failed };
    pthread_mutex_unlock(&f->lock);
}

void htr_fixed_reset(htr_fixed_t *f)
{
    pthread_mutex_lock(&f->lock);
    f->n_entries = 0;
    f->end = 0;
    f->bytes_stranded = 0;
    pthread_mutex_unlock(&f->lock);
}

void htr_fixed_destroy(htr_fixed_t *f)
{
    if (!f)
        return;
    htri_alloc_meta_free(f->entries, f->entries_cap * sizeof *f->entries);
    pthread_mutex_destroy(&f->lock);
    htri_alloc_meta_free(f, sizeof *f);
}
