/* Private: what the debug allocators (src/alloc) share: calling a parent, bookkeeping
 * memory from libc, stack capture and printing, report sinks, the block table. */
#ifndef HTR_ALLOC_INTERNAL_H
#define HTR_ALLOC_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <pthread.h>

#include "heaptrail.h"
#include "base/common.h"

#define HTRI_ALLOC_DEFAULT_DEPTH 16
#define HTRI_ALLOC_MAX_DEPTH 64

static inline int htri_alloc_align_ok(size_t align)
{
    return align != 0 && (align & (align - 1)) == 0;
}
static inline uintptr_t htri_align_up(uintptr_t x, size_t align)
{
    return (x + (align - 1)) & ~(uintptr_t)(align - 1);
}

/* Calls into a parent, spelled out once so the layers read like the contract. */
static inline void *htri_parent_alloc(htr_allocator_t p, size_t size, size_t align, uintptr_t ra)
{
    return p.vtable->alloc(p.ctx, size, align, ra);
}
static inline int htri_parent_resize(htr_allocator_t p, void *ptr, size_t old_size, size_t align,
                                     size_t new_size, uintptr_t ra)
{
    return p.vtable->resize(p.ctx, ptr, old_size, align, new_size, ra);
}
static inline void *htri_parent_remap(htr_allocator_t p, void *ptr, size_t old_size, size_t align,
                                      size_t new_size, uintptr_t ra)
{
    return p.vtable->remap(p.ctx, ptr, old_size, align, new_size, ra);
}
static inline void htri_parent_free(htr_allocator_t p, void *ptr, size_t size, size_t align,
                                    uintptr_t ra)
{
    p.vtable->free(p.ctx, ptr, size, align, ra);
}

/* htr_realloc's engine: resize in place, else remap, else alloc + copy + free. */
void *htri_alloc_realloc(htr_allocator_t a, void *ptr, size_t old_size, size_t new_size,
                         size_t align, uintptr_t ra);

/* Bookkeeping memory: libc, counted in one place so htr_alloc_bookkeeping_bytes() can say
 * what the layers hold. Callers pass the size back on free. NULL + errno on failure. */
void *htri_alloc_meta_calloc(size_t count, size_t size);
void htri_alloc_meta_free(void *p, size_t bytes);
/* Tests: the next n bookkeeping allocations succeed, the later ones fail (n < 0: never). */
void htri_alloc_meta_fail_after(long n);

/* Layer options with defaults applied. */
typedef struct htri_layer_cfg {
    htr_sink_t sink;
    int depth;          /* 0..HTRI_ALLOC_MAX_DEPTH */
    const char *name;
} htri_layer_cfg;
void htri_alloc_layer_cfg(htri_layer_cfg *cfg, const htr_layer_opts_t *opts, const char *kind);

/* Captures up to max frames of the allocating code: the frames of the layers themselves
 * are cut off by starting at ret_addr when it is found on the stack (else at our caller's
 * caller). Returns the number stored; never fails (worst case: just ret_addr). */
int htri_alloc_capture(uintptr_t *pcs, int max, uintptr_t ret_addr);

/* Sinks: one formatted line per call ('\n' appended), cut at 1 KiB. */
int htri_alloc_sink_on(const htr_sink_t *sink);
void htri_alloc_emit(const htr_sink_t *sink, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* One line per frame: "    #i 0xPC symbol+0xoff (module)" (dladdr where it can). */
void htri_alloc_emit_stack(const htr_sink_t *sink, const uintptr_t *pcs, int n);

/* Block table: live blocks keyed by address, open addressing with linear probing and
 * backward-shift deletion (no tombstones), memory from htri_alloc_meta_*. Each slot holds a
 * record followed by `depth` program counters:
 *
 *   +-----+------+-------+-----+-----+-------+-----------------------+
 *   | ptr | size | align | tag | seq | n_pcs | pcs[0] ... pcs[depth) |
 *   +-----+------+-------+-----+-----+-------+-----------------------+
 *   ptr == 0 marks an empty slot. Not thread-safe: the owning layer locks. */
typedef struct htri_block {
    uintptr_t ptr;
    size_t size;
    size_t align;
    const char *tag;
    uint64_t seq;        /* allocation number, for stable report order */
    uint32_t n_pcs;
    uint32_t spare;
    uintptr_t pcs[];
} htri_block;

typedef struct htri_blocktab {
    unsigned char *slots;
    size_t cap, n, stride;
    int depth;
} htri_blocktab;

int htri_blocktab_init(htri_blocktab *t, int depth);
void htri_blocktab_fini(htri_blocktab *t);
/* Returns the slot for ptr, new (zeroed but for ptr) or existing; NULL when out of memory. */
htri_block *htri_blocktab_insert(htri_blocktab *t, uintptr_t ptr);
htri_block *htri_blocktab_find(const htri_blocktab *t, uintptr_t ptr);
void htri_blocktab_remove(htri_blocktab *t, htri_block *b);
/* Whole-table check for htri_assert_expensive and tests: the count matches and every record
 * is reachable from its home slot without crossing an empty one. */
bool htri_blocktab_is_valid(const htri_blocktab *t);
/* Moves a record to a new address (remap); returns the new slot. Cannot fail: the record
 * leaves its slot before the insert, so the table never needs to grow. */
htri_block *htri_blocktab_rekey(htri_blocktab *t, htri_block *b, uintptr_t new_ptr);
static inline htri_block *htri_blocktab_slot(const htri_blocktab *t, size_t i)
{
    return (htri_block *)(void *)(t->slots + i * t->stride);
}
/* Live records sorted by size (descending) then seq, or NULL (out of memory); the caller
 * frees the array with htri_alloc_meta_free(v, (*n_out + 1) * sizeof *v). */
htri_block **htri_blocktab_sorted(const htri_blocktab *t, size_t *n_out);

/* What the testing and tracking layers share: a parent, a lock, and the table of the blocks
 * they handed out with their stacks and counters. Each layer's struct starts with one. */
typedef struct htri_recorder {
    htr_allocator_t parent;
    htri_layer_cfg cfg;
    pthread_mutex_t lock;      /* guards everything below; held across parent remap */
    htri_blocktab blocks;
    htr_alloc_stats_t stats;
    uint64_t seq;
} htri_recorder;

/* Allocates from the parent and records the block (stack captured before the parent call, so
 * the caller's frames are the program's). Takes and releases r->lock. If the block cannot be
 * recorded, it is given back and the call fails with ENOMEM: an unrecorded block would make
 * every number wrong. Returns the block or NULL. */
void *htri_recorder_alloc(htri_recorder *r, size_t size, size_t align, uintptr_t ra);
/* A recorded block was resized or moved (new_ptr) by the parent: its record follows and the
 * counters see the new size. Caller holds r->lock. */
void htri_recorder_resized(htri_recorder *r, htri_block *b, const void *new_ptr, size_t new_size);

/* Stack recorded into a block record, honouring the table depth. */
static inline void htri_block_set_stack(const htri_blocktab *t, htri_block *b, uintptr_t ra)
{
    b->n_pcs = t->depth > 0 ? (uint32_t)htri_alloc_capture(b->pcs, t->depth, ra) : 0;
}

/* Tags: equality by content (layers keep the pointer). */
int htri_alloc_tag_eq(const char *a, const char *b);
static inline const char *htri_tag_name(const char *tag) { return tag ? tag : "(untagged)"; }

/* Shared counters update (caller holds the layer lock). */
void htri_stats_on_alloc(htr_alloc_stats_t *s, size_t size);
void htri_stats_on_free(htr_alloc_stats_t *s, size_t size);
void htri_stats_on_resize(htr_alloc_stats_t *s, size_t old_size, size_t new_size);

/* Mann-Kendall + Theil-Sen on (x, y) samples: the trend machinery of the growth harness,
 * exposed for its unit test. */
typedef struct htri_trend {
    double slope, ci_low, ci_high; /* Theil-Sen, 95% (Sen's rank interval) */
    double z, p_up;                /* Mann-Kendall Z with tie correction; P(trend >= S) */
    double intercept;              /* median of y - slope * x */
    long s;
} htri_trend;
int htri_trend_fit(const double *x, const double *y, size_t n, htri_trend *out);

#endif
