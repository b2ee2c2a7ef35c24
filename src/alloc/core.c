/* The allocator interface's helpers (htr_alloc, htr_realloc, arrays), the two built-in
 * parents (libc, pages), and what every layer shares: bookkeeping memory, stack capture,
 * report sinks, the block table, the thread's tag. */
#include <dlfcn.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc_internal.h"
#include "base/hash.h"
#include "base/os.h"
#include "unwind/unwind.h"

static struct {
    atomic_size_t bytes_meta;    /* libc bytes held as bookkeeping by all layers */
    pthread_once_t unwind_once;
    int unwind_ok;
    atomic_long meta_fail_countdown; /* tests: fail bookkeeping after this many; < 0: never */
} g_alloc = { 0, PTHREAD_ONCE_INIT, 0, -1 };

static __thread const char *g_alloc_tag; /* the thread's current tag (see tagging) */

/* ---- helpers ------------------------------------------------------------------------ */

#define RA() ((uintptr_t)__builtin_return_address(0))

static void *alloc_do(htr_allocator_t a, size_t size, size_t align, uintptr_t ra)
{
    if (!htri_alloc_align_ok(align)) {
        errno = EINVAL;
        return NULL;
    }
    return a.vtable->alloc(a.ctx, size ? size : 1, align, ra);
}

static void free_do(htr_allocator_t a, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    if (ptr)
        a.vtable->free(a.ctx, ptr, size ? size : 1, align, ra);
}

void *htri_alloc_realloc(htr_allocator_t a, void *ptr, size_t old_size, size_t new_size,
                        size_t align, uintptr_t ra)
{
    if (!ptr)
        return alloc_do(a, new_size, align, ra);
    if (new_size == 0) {
        free_do(a, ptr, old_size, align, ra);
        return NULL;
    }
    if (!old_size)
        old_size = 1;
    if (a.vtable->resize(a.ctx, ptr, old_size, align, new_size, ra))
        return ptr;
    void *moved = a.vtable->remap(a.ctx, ptr, old_size, align, new_size, ra);
    if (moved)
        return moved;
    void *fresh = a.vtable->alloc(a.ctx, new_size, align, ra);
    if (!fresh)
        return NULL;
    memcpy(fresh, ptr, old_size < new_size ? old_size : new_size);
    a.vtable->free(a.ctx, ptr, old_size, align, ra);
    return fresh;
}

void *htr_alloc(htr_allocator_t a, size_t size)
{
    return alloc_do(a, size, HTR_DEFAULT_ALIGN, RA());
}

void *htr_alloc_aligned(htr_allocator_t a, size_t size, size_t align)
{
    return alloc_do(a, size, align, RA());
}

void *htr_alloc_zeroed(htr_allocator_t a, size_t size)
{
    void *p = alloc_do(a, size, HTR_DEFAULT_ALIGN, RA());
    if (p)
        memset(p, 0, size);
    return p;
}

void htr_free(htr_allocator_t a, void *ptr, size_t size)
{
    free_do(a, ptr, size, HTR_DEFAULT_ALIGN, RA());
}

void htr_free_aligned(htr_allocator_t a, void *ptr, size_t size, size_t align)
{
    free_do(a, ptr, size, align, RA());
}

int htr_resize(htr_allocator_t a, void *ptr, size_t old_size, size_t new_size)
{
    if (!ptr)
        return 0;
    return a.vtable->resize(a.ctx, ptr, old_size ? old_size : 1, HTR_DEFAULT_ALIGN,
                            new_size ? new_size : 1, RA());
}

void *htr_realloc(htr_allocator_t a, void *ptr, size_t old_size, size_t new_size)
{
    return htri_alloc_realloc(a, ptr, old_size, new_size, HTR_DEFAULT_ALIGN, RA());
}

void *htr_realloc_aligned(htr_allocator_t a, void *ptr, size_t old_size, size_t new_size,
                          size_t align)
{
    if (!htri_alloc_align_ok(align)) {
        errno = EINVAL;
        return NULL;
    }
    return htri_alloc_realloc(a, ptr, old_size, new_size, align, RA());
}

void *htr_alloc_array(htr_allocator_t a, size_t count, size_t elem_size, size_t align)
{
    size_t bytes;
    if (htri_mul_overflow(count, elem_size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return alloc_do(a, bytes, align, RA());
}

void *htr_realloc_array(htr_allocator_t a, void *ptr, size_t old_count, size_t new_count,
                        size_t elem_size, size_t align)
{
    size_t old_bytes, new_bytes;
    if (htri_mul_overflow(old_count, elem_size, &old_bytes) ||
        htri_mul_overflow(new_count, elem_size, &new_bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    if (!htri_alloc_align_ok(align)) {
        errno = EINVAL;
        return NULL;
    }
    return htri_alloc_realloc(a, ptr, old_bytes, new_bytes, align, RA());
}

void htr_free_array(htr_allocator_t a, void *ptr, size_t count, size_t elem_size, size_t align)
{
    size_t bytes;
    /* An overflowing count can never have been allocated: nothing to give back. */
    if (!htri_mul_overflow(count, elem_size, &bytes))
        free_do(a, ptr, bytes, align, RA());
}

/* ---- libc parent -------------------------------------------------------------------- */

/* malloc's own alignment; anything stricter goes through posix_memalign. */
#define LIBC_ALIGN 16

static void *libc_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    if (align <= LIBC_ALIGN)
        return malloc(size);
    void *p = NULL;
    int rc = posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size);
    if (rc) {
        errno = rc;
        return NULL;
    }
    return p;
}

static int libc_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                       uintptr_t ra)
{
    /* Shrinking keeps the block as is; growing fits only in the slack malloc already gave. */
    return new_size <= old_size || new_size <= malloc_usable_size(ptr);
}

static void *libc_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                        uintptr_t ra)
{
    /* realloc keeps only malloc's own alignment; stricter blocks are copied by the caller. */
    return align <= LIBC_ALIGN ? realloc(ptr, new_size) : NULL;
}

static void libc_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    free(ptr);
}

static const htr_allocator_vtable_t libc_vtable = { libc_alloc, libc_resize, libc_remap, libc_free };

htr_allocator_t htr_libc_allocator(void)
{
    return (htr_allocator_t){ NULL, &libc_vtable };
}

/* ---- page parent -------------------------------------------------------------------- */

static size_t page_round(size_t size, size_t *out)
{
    size_t pg = htri_os_page_size();
    size_t r;
    if (htri_add_overflow(size, pg - 1, &r))
        return 0;
    *out = r & ~(pg - 1);
    return 1;
}

static void *page_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    size_t pg = htri_os_page_size(), bytes, span;
    if (!page_round(size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    if (align <= pg)
        return htri_os_pages_alloc(bytes);
    /* Over-map by the alignment, then unmap the unaligned head and the tail. */
    if (htri_add_overflow(bytes, align, &span)) {
        errno = ENOMEM;
        return NULL;
    }
    unsigned char *raw = htri_os_pages_alloc(span);
    if (!raw)
        return NULL;
    unsigned char *p = (unsigned char *)htri_align_up((uintptr_t)raw, align);
    if (p > raw)
        htri_os_pages_free(raw, (size_t)(p - raw));
    size_t tail = span - (size_t)(p - raw) - bytes;
    if (tail)
        htri_os_pages_free(p + bytes, tail);
    return p;
}

static int page_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                       uintptr_t ra)
{
    size_t old_bytes, new_bytes;
    if (!page_round(old_size, &old_bytes) || !page_round(new_size, &new_bytes))
        return 0;
    if (new_bytes > old_bytes)
        return 0;
    if (new_bytes < old_bytes)
        htri_os_pages_free((unsigned char *)ptr + new_bytes, old_bytes - new_bytes);
    return 1;
}

static void *page_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                        uintptr_t ra)
{
    return NULL;
}

static void page_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    size_t bytes;
    if (page_round(size, &bytes))
        htri_os_pages_free(ptr, bytes);
}

static const htr_allocator_vtable_t page_vtable = { page_alloc, page_resize, page_remap, page_free };

htr_allocator_t htr_page_allocator(void)
{
    return (htr_allocator_t){ NULL, &page_vtable };
}

/* ---- bookkeeping memory ------------------------------------------------------------- */

void *htri_alloc_meta_calloc(size_t count, size_t size)
{
    size_t bytes;
    if (htri_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    if (htri_unlikely(atomic_load_explicit(&g_alloc.meta_fail_countdown, memory_order_relaxed) >= 0) &&
        atomic_fetch_sub(&g_alloc.meta_fail_countdown, 1) <= 0) {
        atomic_store(&g_alloc.meta_fail_countdown, 0);
        errno = ENOMEM;
        return NULL;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (p)
        atomic_fetch_add_explicit(&g_alloc.bytes_meta, bytes, memory_order_relaxed);
    return p;
}

void htri_alloc_meta_free(void *p, size_t bytes)
{
    if (!p)
        return;
    atomic_fetch_sub_explicit(&g_alloc.bytes_meta, bytes, memory_order_relaxed);
    free(p);
}

void htri_alloc_meta_fail_after(long n)
{
    atomic_store(&g_alloc.meta_fail_countdown, n);
}

size_t htr_alloc_bookkeeping_bytes(void)
{
    return atomic_load_explicit(&g_alloc.bytes_meta, memory_order_relaxed);
}

void htri_alloc_layer_cfg(htri_layer_cfg *cfg, const htr_layer_opts_t *opts, const char *kind)
{
    cfg->sink = opts ? opts->sink : (htr_sink_t){ 0, 0, 0 };
    int depth = opts ? opts->stack_depth : 0;
    cfg->depth = depth == 0 ? HTRI_ALLOC_DEFAULT_DEPTH
               : depth < 0 ? 0
               : depth > HTRI_ALLOC_MAX_DEPTH ? HTRI_ALLOC_MAX_DEPTH : depth;
    cfg->name = opts && opts->name ? opts->name : kind;
}

/* ---- stacks ------------------------------------------------------------------------- */

static void alloc_unwind_init(void)
{
    g_alloc.unwind_ok = htri_unwind_init(HTRI_UNWIND_DWARF) == 0;
}

int htri_alloc_capture(uintptr_t *pcs, int max, uintptr_t ret_addr)
{
    if (max <= 0)
        return 0;
    pthread_once(&g_alloc.unwind_once, alloc_unwind_init);
    /* Room for the layers' own frames, which are cut off below. */
    uintptr_t raw[HTRI_ALLOC_MAX_DEPTH + 32];
    int n = g_alloc.unwind_ok ? htri_unwind_capture(raw, (int)HTRI_ARRAY_LEN(raw), 0) : 0;
    int start = -1;
    for (int i = 0; i < n; i++) {
        if (raw[i] == ret_addr) {
            start = i;
            break;
        }
    }
    if (start < 0) {
        /* ret_addr is not a frame of this stack (a library's callback, inlining): keep it
         * first so the report still names the caller, then what the unwinder saw. */
        pcs[0] = ret_addr;
        int k = 1;
        for (int i = 1; i < n && k < max; i++)
            pcs[k++] = raw[i];
        return k;
    }
    int k = 0;
    for (int i = start; i < n && k < max; i++)
        pcs[k++] = raw[i];
    return k;
}

/* ---- sinks -------------------------------------------------------------------------- */

int htri_alloc_sink_on(const htr_sink_t *sink)
{
    return sink->fn != NULL || sink->fd > 0;
}

static void sink_put(const htr_sink_t *sink, const char *line, size_t len)
{
    if (sink->fn)
        sink->fn(sink->user, line, len);
    else if (sink->fd > 0)
        (void)htri_os_write_all(sink->fd, line, len);
}

void htri_alloc_emit(const htr_sink_t *sink, const char *fmt, ...)
{
    if (!htri_alloc_sink_on(sink))
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof line - 2 ? (size_t)n : sizeof line - 2;
    line[len++] = '\n';
    line[len] = 0;
    sink_put(sink, line, len);
}

void htri_alloc_emit_stack(const htr_sink_t *sink, const uintptr_t *pcs, int n)
{
    if (!htri_alloc_sink_on(sink))
        return;
    if (n <= 0)
        htri_alloc_emit(sink, "    (no stack recorded)");
    for (int i = 0; i < n; i++) {
        Dl_info info;
        /* pc - 1 lies inside the call instruction, so a call at a function's very end is
         * attributed to that function and not to the next one. */
        if (pcs[i] && dladdr((void *)(pcs[i] - 1), &info) && info.dli_fname) {
            const char *mod = strrchr(info.dli_fname, '/');
            mod = mod ? mod + 1 : info.dli_fname;
            if (info.dli_sname && info.dli_saddr)
                htri_alloc_emit(sink, "    #%d 0x%lx %s+0x%lx (%s)", i, (unsigned long)pcs[i],
                                info.dli_sname, (unsigned long)(pcs[i] - (uintptr_t)info.dli_saddr),
                                mod);
            else
                htri_alloc_emit(sink, "    #%d 0x%lx (%s+0x%lx)", i, (unsigned long)pcs[i], mod,
                                (unsigned long)(pcs[i] - (uintptr_t)info.dli_fbase));
        } else {
            htri_alloc_emit(sink, "    #%d 0x%lx", i, (unsigned long)pcs[i]);
        }
    }
}

/* ---- tags --------------------------------------------------------------------------- */

const char *htr_tag_set(const char *tag)
{
    const char *old = g_alloc_tag;
    g_alloc_tag = tag;
    return old;
}

const char *htr_tag_current(void)
{
    return g_alloc_tag;
}

int htri_alloc_tag_eq(const char *a, const char *b)
{
    if (a == b)
        return 1;
    return a && b && strcmp(a, b) == 0;
}

/* ---- counters ----------------------------------------------------------------------- */

void htri_stats_on_alloc(htr_alloc_stats_t *s, size_t size)
{
    s->n_allocs++;
    s->n_live++;
    s->bytes_total += size;
    s->bytes_live += size;
    if (s->bytes_live > s->bytes_peak)
        s->bytes_peak = s->bytes_live;
    if (s->n_live > s->n_live_peak)
        s->n_live_peak = s->n_live;
}

void htri_stats_on_free(htr_alloc_stats_t *s, size_t size)
{
    s->n_frees++;
    s->n_live--;
    s->bytes_live -= size;
}

void htri_stats_on_resize(htr_alloc_stats_t *s, size_t old_size, size_t new_size)
{
    s->n_resizes++;
    s->bytes_live = s->bytes_live - old_size + new_size;
    if (new_size > old_size)
        s->bytes_total += new_size - old_size;
    if (s->bytes_live > s->bytes_peak)
        s->bytes_peak = s->bytes_live;
}

/* ---- block table -------------------------------------------------------------------- */

#define TAB_INITIAL_CAP 64

static size_t tab_home(const htri_blocktab *t, uintptr_t ptr)
{
    return (size_t)htri_hash64((uint64_t)ptr) & (t->cap - 1);
}

int htri_blocktab_init(htri_blocktab *t, int depth)
{
    t->depth = depth;
    t->stride = sizeof(htri_block) + (size_t)depth * sizeof(uintptr_t);
    t->cap = TAB_INITIAL_CAP;
    t->n = 0;
    t->slots = htri_alloc_meta_calloc(t->cap, t->stride);
    return t->slots ? 0 : -ENOMEM;
}

void htri_blocktab_fini(htri_blocktab *t)
{
    htri_alloc_meta_free(t->slots, t->cap * t->stride);
    t->slots = NULL;
    t->cap = t->n = 0;
}

static htri_block *tab_probe(const htri_blocktab *t, uintptr_t ptr, int *found)
{
    size_t mask = t->cap - 1;
    for (size_t i = tab_home(t, ptr);; i = (i + 1) & mask) {
        htri_block *b = htri_blocktab_slot(t, i);
        if (b->ptr == ptr || b->ptr == 0) {
            *found = b->ptr == ptr;
            return b;
        }
    }
}

static int tab_grow(htri_blocktab *t)
{
    size_t new_cap = t->cap * 2;
    unsigned char *slots = htri_alloc_meta_calloc(new_cap, t->stride);
    if (!slots)
        return -ENOMEM;
    htri_blocktab old = *t;
    t->slots = slots;
    t->cap = new_cap;
    for (size_t i = 0; i < old.cap; i++) {
        htri_block *b = htri_blocktab_slot(&old, i);
        if (b->ptr) {
            int found;
            memcpy(tab_probe(t, b->ptr, &found), b, t->stride);
        }
    }
    htri_alloc_meta_free(old.slots, old.cap * old.stride);
    return 0;
}

bool htri_blocktab_is_valid(const htri_blocktab *t)
{
    size_t mask = t->cap - 1, n = 0;
    if (!t->slots || (t->cap & mask) || t->n * 2 > t->cap)
        return false;
    for (size_t i = 0; i < t->cap; i++) {
        const htri_block *b = htri_blocktab_slot(t, i);
        if (!b->ptr)
            continue;
        n++;
        for (size_t j = tab_home(t, b->ptr); j != i; j = (j + 1) & mask)
            if (!htri_blocktab_slot(t, j)->ptr)
                return false;
    }
    return n == t->n;
}

htri_block *htri_blocktab_insert(htri_blocktab *t, uintptr_t ptr)
{
    /* Keep the load at most one half so probe runs stay short. */
    if ((t->n + 1) * 2 > t->cap && tab_grow(t) < 0)
        return NULL;
    int found;
    htri_block *b = tab_probe(t, ptr, &found);
    if (!found) {
        memset(b, 0, t->stride);
        b->ptr = ptr;
        t->n++;
    }
    htri_assert_expensive(htri_blocktab_is_valid(t));
    return b;
}

htri_block *htri_blocktab_find(const htri_blocktab *t, uintptr_t ptr)
{
    if (!ptr || !t->slots)
        return NULL;
    int found;
    htri_block *b = tab_probe(t, ptr, &found);
    return found ? b : NULL;
}

void htri_blocktab_remove(htri_blocktab *t, htri_block *b)
{
    size_t mask = t->cap - 1;
    size_t hole = (size_t)((unsigned char *)b - t->slots) / t->stride;
    /* Backward-shift deletion (Knuth 6.4, algorithm R): pull later members of the probe run
     * into the hole unless their home lies cyclically in (hole, j]. */
    for (size_t j = (hole + 1) & mask;; j = (j + 1) & mask) {
        htri_block *bj = htri_blocktab_slot(t, j);
        if (!bj->ptr)
            break;
        size_t home = tab_home(t, bj->ptr);
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            memcpy(htri_blocktab_slot(t, hole), bj, t->stride);
            hole = j;
        }
    }
    htri_blocktab_slot(t, hole)->ptr = 0;
    t->n--;
    htri_assert_expensive(htri_blocktab_is_valid(t));
}

htri_block *htri_blocktab_rekey(htri_blocktab *t, htri_block *b, uintptr_t new_ptr)
{
    union {
        htri_block b;
        unsigned char bytes[sizeof(htri_block) + HTRI_ALLOC_MAX_DEPTH * sizeof(uintptr_t)];
    } tmp;
    memcpy(tmp.bytes, b, t->stride);
    htri_blocktab_remove(t, b);
    /* n went down by one, so this insert never needs to grow the table. */
    htri_block *nb = htri_blocktab_insert(t, new_ptr);
    memcpy(nb, tmp.bytes, t->stride);
    nb->ptr = new_ptr;
    return nb;
}

static int tab_cmp_size_desc(const void *a, const void *b)
{
    const htri_block *x = *(const htri_block *const *)a, *y = *(const htri_block *const *)b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

htri_block **htri_blocktab_sorted(const htri_blocktab *t, size_t *n_out)
{
    htri_block **v = htri_alloc_meta_calloc(t->n + 1, sizeof *v);
    *n_out = 0;
    if (!v)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < t->cap; i++) {
        htri_block *b = htri_blocktab_slot(t, i);
        if (b->ptr)
            v[k++] = b;
    }
    qsort(v, k, sizeof *v, tab_cmp_size_desc);
    *n_out = k;
    return v;
}

void *htri_recorder_alloc(htri_recorder *r, size_t size, size_t align, uintptr_t ra)
{
    uintptr_t pcs[HTRI_ALLOC_MAX_DEPTH];
    int n_pcs = r->cfg.depth ? htri_alloc_capture(pcs, r->cfg.depth, ra) : 0;
    void *p = htri_parent_alloc(r->parent, size, align, ra);
    pthread_mutex_lock(&r->lock);
    if (!p) {
        r->stats.n_failed++;
        pthread_mutex_unlock(&r->lock);
        return NULL;
    }
    htri_block *b = htri_blocktab_insert(&r->blocks, (uintptr_t)p);
    if (!b) {
        r->stats.n_failed++;
        pthread_mutex_unlock(&r->lock);
        htri_parent_free(r->parent, p, size, align, ra);
        errno = ENOMEM;
        return NULL;
    }
    b->size = size;
    b->align = align;
    b->tag = htr_tag_current();
    b->seq = r->seq++;
    b->n_pcs = (uint32_t)n_pcs;
    memcpy(b->pcs, pcs, (size_t)n_pcs * sizeof pcs[0]);
    htri_stats_on_alloc(&r->stats, size);
    pthread_mutex_unlock(&r->lock);
    return p;
}

void htri_recorder_resized(htri_recorder *r, htri_block *b, const void *new_ptr, size_t new_size)
{
    if ((uintptr_t)new_ptr != b->ptr)
        b = htri_blocktab_rekey(&r->blocks, b, (uintptr_t)new_ptr);
    htri_stats_on_resize(&r->stats, b->size, new_size);
    b->size = new_size;
}
