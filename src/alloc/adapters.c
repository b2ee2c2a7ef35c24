/* Adapters from our allocator interface to the allocator hooks of real C libraries: Lua's
 * lua_Alloc, zstd's ZSTD_customMem, SQLite's sqlite3_mem_methods. No library header is
 * needed here: the hooks are plain C signatures. */
#include <stdatomic.h>
#include <string.h>

#include "alloc/alloc_internal.h"

#define RA() ((uintptr_t)__builtin_return_address(0))

/* ---- Lua: lua_Alloc(ud, ptr, osize, nsize); ud is the htr_allocator_t * ---------------- */

void *htr_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    htr_allocator_t a = *(const htr_allocator_t *)ud;
    if (nsize == 0) {
        if (ptr)
            a.vtable->free(a.ctx, ptr, osize ? osize : 1, HTR_DEFAULT_ALIGN, RA());
        return NULL;
    }
    /* With ptr NULL, osize is a Lua type code, not a size. */
    if (!ptr)
        return a.vtable->alloc(a.ctx, nsize, HTR_DEFAULT_ALIGN, RA());
    return htri_alloc_realloc(a, ptr, osize, nsize, HTR_DEFAULT_ALIGN, RA());
}

/* ---- sized blocks for hooks that free without a size (zstd, SQLite) ---------------- */

/* Each block carries its size in front, in band (the layers count these 16 bytes):
 *
 *   +-----------+-----------+-----------------------------+
 *   | size (8)  | magic (8) | the library's block         |
 *   +-----------+-----------+-----------------------------+
 *   ^ from the allocator    ^ returned (16-aligned) */
typedef struct sized_hdr {
    size_t size;
    uint64_t magic;
} sized_hdr;
#define SIZED_MAGIC 0x4854525a53495a45ull /* "HTRZSIZE" */
#define SIZED_ALIGN 16

_Static_assert(sizeof(sized_hdr) == SIZED_ALIGN, "header keeps blocks 16-aligned");

static void *sized_alloc(htr_allocator_t a, size_t size, uintptr_t ra)
{
    size_t total;
    if (htri_add_overflow(size ? size : 1, sizeof(sized_hdr), &total)) {
        errno = ENOMEM;
        return NULL;
    }
    sized_hdr *h = a.vtable->alloc(a.ctx, total, SIZED_ALIGN, ra);
    if (!h)
        return NULL;
    *h = (sized_hdr){ size ? size : 1, SIZED_MAGIC };
    return h + 1;
}

/* The header of a block, or NULL if ptr is not one of ours (never freed then: a leak is
 * better than corrupting the parent). */
static sized_hdr *sized_hdr_of(void *ptr)
{
    sized_hdr *h = (sized_hdr *)ptr - 1;
    return h->magic == SIZED_MAGIC ? h : NULL;
}

static void sized_free(htr_allocator_t a, void *ptr, uintptr_t ra)
{
    sized_hdr *h = ptr ? sized_hdr_of(ptr) : NULL;
    if (!h)
        return;
    h->magic = 0;
    a.vtable->free(a.ctx, h, h->size + sizeof *h, SIZED_ALIGN, ra);
}

static void *sized_realloc(htr_allocator_t a, void *ptr, size_t size, uintptr_t ra)
{
    sized_hdr *h = sized_hdr_of(ptr);
    size_t total;
    if (!h || htri_add_overflow(size, sizeof *h, &total)) {
        errno = h ? ENOMEM : EINVAL;
        return NULL;
    }
    sized_hdr *n = htri_alloc_realloc(a, h, h->size + sizeof *h, total, SIZED_ALIGN, ra);
    if (!n)
        return NULL;
    n->size = size;
    return n + 1;
}

/* ---- zstd: ZSTD_customMem { customAlloc, customFree, opaque } ------------------------- */

void *htr_zstd_alloc(void *opaque, size_t size)
{
    return sized_alloc(*(const htr_allocator_t *)opaque, size, RA());
}

void htr_zstd_free(void *opaque, void *ptr)
{
    sized_free(*(const htr_allocator_t *)opaque, ptr, RA());
}

/* ---- SQLite: sqlite3_mem_methods; its calls carry no context, so one allocator per
 * process, bound when SQLite calls xInit with pAppData. ------------------------------ */

static struct {
    _Atomic(const htr_allocator_t *) allocator;
} g_adapters;

static htr_allocator_t sqlite_allocator(void)
{
    return *atomic_load(&g_adapters.allocator);
}

void *htr_sqlite_malloc(int size)
{
    if (size <= 0)
        return NULL;
    return sized_alloc(sqlite_allocator(), (size_t)size, RA());
}

void htr_sqlite_free(void *ptr)
{
    if (ptr)
        sized_free(sqlite_allocator(), ptr, RA());
}

void *htr_sqlite_realloc(void *ptr, int size)
{
    if (size <= 0)
        return NULL;
    if (!ptr)
        return sized_alloc(sqlite_allocator(), (size_t)size, RA());
    return sized_realloc(sqlite_allocator(), ptr, (size_t)size, RA());
}

int htr_sqlite_size(void *ptr)
{
    sized_hdr *h = ptr ? sized_hdr_of(ptr) : NULL;
    return h ? (int)h->size : 0;
}

int htr_sqlite_roundup(int size)
{
    /* SQLite wants 8-byte granules; larger rounding would only hide overruns. */
    return size > 0x7ffffff0 ? size : (size + 7) & ~7;
}

int htr_sqlite_init(void *app_data)
{
    if (!app_data)
        return 1; /* SQLITE_ERROR */
    atomic_store(&g_adapters.allocator, (const htr_allocator_t *)app_data);
    return 0;     /* SQLITE_OK */
}

void htr_sqlite_shutdown(void *app_data)
{
}
