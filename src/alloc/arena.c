/* The arena: blocks carved from chunks taken from the parent; frees are no-ops except for
 * the last block, and reset gives every chunk back at once. Tracks a high-water mark. */
#include "alloc/alloc_internal.h"

/* A chunk as taken from the parent (the header is in band, so the parent's numbers show
 * whole chunks):
 *
 *   +------+-------+------+-----------------------------------------+
 *   | next | bytes | used | data: blocks, bump-allocated upwards    |
 *   +------+-------+------+-----------------------------------------+
 *   ^ chunk (align 16)    ^ data                    ^ data + used */
typedef struct arena_chunk {
    struct arena_chunk *next;  /* older chunk */
    size_t bytes;              /* as asked of the parent, header included */
    size_t used;
    size_t align;              /* as asked of the parent */
    max_align_t data[];
} arena_chunk;

struct htr_arena {
    htr_allocator_t parent;
    size_t chunk_bytes;
    pthread_mutex_t lock;      /* guards everything below */
    arena_chunk *top;          /* newest chunk, where blocks are carved */
    htr_arena_stats_t stats;
};

static unsigned char *chunk_data(arena_chunk *c)
{
    return (unsigned char *)c->data;
}

/* Carves size bytes at align from c, or NULL if they do not fit. */
static void *arena_carve(arena_chunk *c, size_t size, size_t align)
{
    size_t room = c->bytes - sizeof *c;
    uintptr_t base = (uintptr_t)chunk_data(c);
    size_t start = (size_t)(htri_align_up(base + c->used, align) - base);
    if (start < c->used || start > room || size > room - start)
        return NULL;
    c->used = start + size;
    return chunk_data(c) + start;
}

static void *arena_alloc(void *ctx, size_t size, size_t align, uintptr_t ra)
{
    htr_arena_t *a = ctx;
    pthread_mutex_lock(&a->lock);
    void *p = a->top ? arena_carve(a->top, size, align) : NULL;
    if (!p) {
        size_t need;
        if (htri_add_overflow(size, sizeof(arena_chunk) + align, &need)) {
            pthread_mutex_unlock(&a->lock);
            errno = ENOMEM;
            return NULL;
        }
        size_t bytes = need > a->chunk_bytes ? need : a->chunk_bytes;
        size_t calign = align > _Alignof(max_align_t) ? align : _Alignof(max_align_t);
        arena_chunk *c = htri_parent_alloc(a->parent, bytes, calign, ra);
        if (!c) {
            pthread_mutex_unlock(&a->lock);
            return NULL;
        }
        *c = (arena_chunk){ a->top, bytes, 0, calign };
        a->top = c;
        a->stats.bytes_reserved += bytes;
        a->stats.n_chunks++;
        p = arena_carve(c, size, align);
    }
    a->stats.n_allocs++;
    a->stats.bytes_used += size;
    if (a->stats.bytes_used > a->stats.high_water)
        a->stats.high_water = a->stats.bytes_used;
    pthread_mutex_unlock(&a->lock);
    return p;
}

static int arena_is_last(htr_arena_t *a, void *ptr, size_t size)
{
    return a->top && (unsigned char *)ptr + size == chunk_data(a->top) + a->top->used &&
           (unsigned char *)ptr >= chunk_data(a->top);
}

static int arena_resize(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                        uintptr_t ra)
{
    htr_arena_t *a = ctx;
    int ok = 0;
    pthread_mutex_lock(&a->lock);
    if (arena_is_last(a, ptr, old_size)) {
        size_t start = (size_t)((unsigned char *)ptr - chunk_data(a->top));
        ok = new_size <= a->top->bytes - sizeof(arena_chunk) - start;
        if (ok)
            a->top->used = start + new_size;
    } else {
        /* Shrinking keeps the block where it is; the tail stays used until reset. */
        ok = new_size <= old_size;
        new_size = old_size;
    }
    if (ok) {
        a->stats.bytes_used = a->stats.bytes_used - old_size + new_size;
        if (a->stats.bytes_used > a->stats.high_water)
            a->stats.high_water = a->stats.bytes_used;
    }
    pthread_mutex_unlock(&a->lock);
    return ok;
}

static void *arena_remap(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                         uintptr_t ra)
{
    return NULL;
}

static void arena_free(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ra)
{
    htr_arena_t *a = ctx;
    pthread_mutex_lock(&a->lock);
    /* Only the last block comes back; any other stays counted until reset. */
    if (arena_is_last(a, ptr, size)) {
        a->top->used = (size_t)((unsigned char *)ptr - chunk_data(a->top));
        a->stats.bytes_used -= size;
    }
    pthread_mutex_unlock(&a->lock);
}

static const htr_allocator_vtable_t arena_vtable = { arena_alloc, arena_resize, arena_remap, arena_free };

htr_arena_t *htr_arena_new(htr_allocator_t parent, size_t chunk_bytes)
{
    htr_arena_t *a = htri_alloc_meta_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->parent = parent;
    a->chunk_bytes = chunk_bytes ? chunk_bytes : 64 * 1024;
    pthread_mutex_init(&a->lock, NULL);
    return a;
}

htr_allocator_t htr_arena_allocator(htr_arena_t *a)
{
    return (htr_allocator_t){ a, &arena_vtable };
}

void htr_arena_stats(htr_arena_t *a, htr_arena_stats_t *stats)
{
    pthread_mutex_lock(&a->lock);
    *stats = a->stats;
    pthread_mutex_unlock(&a->lock);
}

void htr_arena_reset(htr_arena_t *a)
{
    pthread_mutex_lock(&a->lock);
    arena_chunk *c = a->top;
    a->top = NULL;
    a->stats.bytes_used = 0;
    a->stats.bytes_reserved = 0;
    a->stats.n_chunks = 0;
    a->stats.n_resets++;
    pthread_mutex_unlock(&a->lock);
    while (c) {
        arena_chunk *next = c->next;
        htri_parent_free(a->parent, c, c->bytes, c->align, (uintptr_t)__builtin_return_address(0));
        c = next;
    }
}

void htr_arena_destroy(htr_arena_t *a)
{
    if (!a)
        return;
    htr_arena_reset(a);
    pthread_mutex_destroy(&a->lock);
    htri_alloc_meta_free(a, sizeof *a);
}
