/* The symbol table: registered modules, the (module, pc) -> frames cache and the public
 * entry points of src/symbols/. The CLI fills it from the trace's module map and asks it
 * only for the pcs it prints; locate.c finds the files, dwarf.c reads them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libelf.h>

#include "symbols/symbols_int.h"

#define SYMBOLS_STR_CHUNK (64 * 1024)

/* ---- hash map (open addressing, linear probing) ---- */

static uint64_t symbols_hash(uint64_t a, uint64_t b)
{
    /* splitmix64's finaliser: nearby pcs differ in few bits, the mask keeps only low ones */
    uint64_t x = a ^ (b * 0x9e3779b97f4a7c15ull);
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

symbols_slot *htri_symbols_map_find(symbols_map *m, uint64_t a, uint64_t b)
{
    size_t mask = m->cap - 1;
    for (size_t i = symbols_hash(a, b) & mask;; i = (i + 1) & mask) {
        symbols_slot *s = &m->slots[i];
        if (s->b == 0 || (s->a == a && s->b == b))
            return s;
    }
}

int htri_symbols_map_reserve(htri_symtab *st, symbols_map *m, size_t n_more)
{
    size_t need;
    if (htri_add_overflow(m->used, n_more, &need) || htri_mul_overflow(need, 2, &need))
        return -ENOMEM;
    if (need <= m->cap)
        return 0;
    size_t cap = m->cap ? m->cap : 256;
    while (cap < need) {
        if (htri_mul_overflow(cap, 2, &cap))
            return -ENOMEM;
    }
    symbols_slot *slots = htri_symbols_realloc(st, NULL, cap * sizeof *slots);
    if (!slots)
        return -ENOMEM;
    memset(slots, 0, cap * sizeof *slots);
    symbols_map bigger = { slots, cap, m->used };
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].b)
            *htri_symbols_map_find(&bigger, m->slots[i].a, m->slots[i].b) = m->slots[i];
    }
    free(m->slots);
    *m = bigger;
    return 0;
}

void htri_symbols_map_free(symbols_map *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* ---- allocation ---- */

void *htri_symbols_realloc(htri_symtab *st, void *p, size_t size)
{
    if (st && st->fail_countdown > 0 && --st->fail_countdown == 0)
        return NULL;
    return realloc(p, size ? size : 1);
}

char *htri_symbols_cstrdup(htri_symtab *st, const char *s)
{
    size_t len = strlen(s);
    char *copy = htri_symbols_realloc(st, NULL, len + 1);
    if (copy)
        memcpy(copy, s, len + 1);
    return copy;
}

long htri_symtab_fail_alloc_after(htri_symtab *st, long n)
{
    if (!st)
        return -1;
    long left = st->fail_countdown > 0 ? st->fail_countdown - 1 : -1;
    st->fail_countdown = n < 0 ? 0 : n + 1;
    return left;
}

/* ---- strings we own ---- */

char *htri_symbols_strdup(htri_symtab *st, const char *s, size_t len)
{
    if (len + 1 > SYMBOLS_STR_CHUNK) {
        /* too long for a chunk: give it a chunk of its own */
        char *big = htri_symbols_realloc(st, NULL, len + 1);
        if (!big)
            return NULL;
        if (st->n_chunks == st->cap_chunks) {
            size_t cap = st->cap_chunks ? st->cap_chunks * 2 : 16;
            char **chunks = htri_symbols_realloc(st, st->str_chunks, cap * sizeof *chunks);
            if (!chunks) {
                free(big);
                return NULL;
            }
            st->str_chunks = chunks;
            st->cap_chunks = cap;
        }
        st->str_chunks[st->n_chunks++] = big;
        memcpy(big, s, len);
        big[len] = 0;
        return big;
    }
    if (!st->str_chunk || st->str_used + len + 1 > st->str_cap) {
        if (st->n_chunks == st->cap_chunks) {
            size_t cap = st->cap_chunks ? st->cap_chunks * 2 : 16;
            char **chunks = htri_symbols_realloc(st, st->str_chunks, cap * sizeof *chunks);
            if (!chunks)
                return NULL;
            st->str_chunks = chunks;
            st->cap_chunks = cap;
        }
        char *chunk = htri_symbols_realloc(st, NULL, SYMBOLS_STR_CHUNK);
        if (!chunk)
            return NULL;
        st->str_chunks[st->n_chunks++] = chunk;
        st->str_chunk = chunk;
        st->str_used = 0;
        st->str_cap = SYMBOLS_STR_CHUNK;
    }
    char *out = st->str_chunk + st->str_used;
    memcpy(out, s, len);
    out[len] = 0;
    st->str_used += len + 1;
    return out;
}

/* Declared here rather than through <cxxabi.h>: this is a C library linked with stdc++. */
extern char *__cxa_demangle(const char *mangled, char *out, size_t *len, int *status);

const char *htri_demangle(const char *name, char *buf, size_t cap)
{
    if (!name || name[0] != '_' || name[1] != 'Z' || !buf || cap == 0)
        return name;
    int status = 0;
    char *plain = __cxa_demangle(name, NULL, NULL, &status);
    if (!plain || status != 0) {
        free(plain);
        return name;
    }
    size_t len = strlen(plain);
    if (len >= cap)
        len = cap - 1;
    memcpy(buf, plain, len);
    buf[len] = 0;
    free(plain);
    return buf;
}

int htri_symbols_name(htri_symtab *st, const char *raw, const char **out)
{
    *out = raw;  /* libdw and libelf keep their strings until dwfl_end */
    if (!raw || raw[0] != '_' || raw[1] != 'Z')
        return 0;
    if (htri_symbols_map_reserve(st, &st->names, 1) != 0)
        return -ENOMEM;
    symbols_slot *s = htri_symbols_map_find(&st->names, (uintptr_t)raw, 1);
    if (s->b) {
        *out = (const char *)(uintptr_t)s->v;
        return 0;
    }
    const char *name = raw;
    int status = 0;
    char *plain = __cxa_demangle(raw, NULL, NULL, &status);
    if (plain && status == 0)
        name = htri_symbols_strdup(st, plain, strlen(plain));
    free(plain);
    if (!name)
        return -ENOMEM;
    s->a = (uintptr_t)raw;
    s->b = 1;
    s->v = (uintptr_t)name;
    st->names.used++;
    *out = name;
    return 0;
}

/* ---- table and modules ---- */

static int symtab_push_root(htri_symtab *st, const char *dir)
{
    char **roots = htri_symbols_realloc(st, st->debug_roots, (st->n_roots + 1) * sizeof *roots);
    if (!roots)
        return -ENOMEM;
    st->debug_roots = roots;
    char *copy = htri_symbols_cstrdup(st, dir);
    if (!copy)
        return -ENOMEM;
    roots[st->n_roots++] = copy;
    return 0;
}

/* The debuginfod client's own cache rule: $DEBUGINFOD_CACHE_PATH, else
 * $XDG_CACHE_HOME/debuginfod_client, else $HOME/.cache/debuginfod_client. */
static char *symtab_debuginfod_cache(void)
{
    const char *env = getenv("DEBUGINFOD_CACHE_PATH");
    if (env && *env)
        return strdup(env);
    const char *base = getenv("XDG_CACHE_HOME");
    const char *tail = "/debuginfod_client";
    if (!base || !*base) {
        base = getenv("HOME");
        tail = "/.cache/debuginfod_client";
    }
    if (!base || !*base)
        return NULL;
    size_t len = strlen(base) + strlen(tail) + 1;
    char *dir = malloc(len);
    if (dir)
        snprintf(dir, len, "%s%s", base, tail);
    return dir;
}

htri_symtab *htri_symtab_open(void)
{
    elf_version(EV_CURRENT);
    htri_symtab *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    /* An environment without HOME only loses the debuginfod cache, so NULL is fine here. */
    st->debuginfod_cache = symtab_debuginfod_cache();
    return st;
}

void htri_symtab_close(htri_symtab *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_mods; i++) {
        if (st->mods[i].dwfl)
            dwfl_end(st->mods[i].dwfl);
        free(st->mods[i].path);
        free(st->mods[i].file);
        free(st->mods[i].funcs);
        free(st->mods[i].cus);
    }
    htri_symbols_cu_index_free(st->cu_indexes);
    free(st->mods);
    free(st->by_start);
    free(st->max_end);
    for (size_t i = 0; i < st->n_roots; i++)
        free(st->debug_roots[i]);
    free(st->debug_roots);
    free(st->debuginfod_cache);
    htri_symbols_map_free(&st->cache);
    htri_symbols_map_free(&st->names);
    free(st->frames);
    for (size_t i = 0; i < st->n_chunks; i++)
        free(st->str_chunks[i]);
    free(st->str_chunks);
    free(st);
}

int htri_symtab_add_debug_root(htri_symtab *st, const char *dir)
{
    if (!st || !dir)
        return -EINVAL;
    return symtab_push_root(st, dir);
}

int htri_symtab_add_module(htri_symtab *st, const char *path, uint64_t bias,
                           uint64_t start, uint64_t end,
                           const uint8_t *build_id, size_t build_id_len)
{
    if (!st || !path || build_id_len > SYMBOLS_MAX_BUILD_ID || (build_id_len && !build_id))
        return -EINVAL;
    if (st->n_mods > (size_t)INT32_MAX - 1)
        return -ENOSPC;
    if (st->n_mods == st->cap_mods) {
        size_t cap = st->cap_mods ? st->cap_mods * 2 : 32, bytes;
        if (htri_mul_overflow(cap, sizeof *st->mods, &bytes))
            return -ENOMEM;
        symbols_module *mods = htri_symbols_realloc(st, st->mods, bytes);
        if (!mods)
            return -ENOMEM;
        st->mods = mods;
        st->cap_mods = cap;
    }
    symbols_module *m = &st->mods[st->n_mods];
    memset(m, 0, sizeof *m);
    m->path = htri_symbols_cstrdup(st, path);
    if (!m->path)
        return -ENOMEM;
    m->bias = bias;
    m->start = start;
    m->end = end;
    if (build_id_len)
        memcpy(m->build_id, build_id, build_id_len);
    m->build_id_len = build_id_len;
    m->owner = st;
    st->by_start_dirty = true;
    return (int)st->n_mods++;
}

static int symtab_cmp_start(const void *pa, const void *pb, void *arg)
{
    const symbols_module *mods = arg;
    const symbols_module *a = &mods[*(const int *)pa], *b = &mods[*(const int *)pb];
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    /* later registrations sort after, so the search below finds them first */
    return *(const int *)pa - *(const int *)pb;
}

int htri_symtab_find_module(htri_symtab *st, uint64_t pc)
{
    if (!st || st->n_mods == 0)
        return -ENOENT;
    if (st->by_start_dirty) {
        int *idx = htri_symbols_realloc(st, st->by_start, st->n_mods * sizeof *idx);
        if (!idx)
            return -ENOMEM;
        st->by_start = idx;
        uint64_t *max_end = htri_symbols_realloc(st, st->max_end,
                                                 st->n_mods * sizeof *max_end);
        if (!max_end)
            return -ENOMEM;
        st->max_end = max_end;
        for (size_t i = 0; i < st->n_mods; i++)
            idx[i] = (int)i;
        qsort_r(idx, st->n_mods, sizeof *idx, symtab_cmp_start, st->mods);
        for (size_t i = 0; i < st->n_mods; i++) {
            uint64_t end = st->mods[idx[i]].end;
            max_end[i] = i && max_end[i - 1] > end ? max_end[i - 1] : end;
        }
        st->by_start_dirty = false;
    }
    /* The last module starting at or below pc, then back while some earlier module could
     * still reach pc (max_end is the running maximum of ends), so a miss stays O(log n). */
    size_t lo = 0, hi = st->n_mods;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->mods[st->by_start[mid]].start <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i-- > 0 && st->max_end[i] > pc;) {
        if (pc < st->mods[st->by_start[i]].end)
            return st->by_start[i];
    }
    return -ENOENT;
}

/* ---- resolution ---- */

static int symtab_unknown(htri_frame *out, const symbols_module *m, uint64_t pc)
{
    memset(out, 0, sizeof *out);
    out->pc = pc;
    out->module = m ? m->path : NULL;
    out->module_offset = m ? pc - m->bias : pc;
    return 1;
}

static int symtab_copy_out(const htri_frame *frames, int n, htri_frame *out, int max)
{
    int k = n < max ? n : max;
    memcpy(out, frames, (size_t)k * sizeof *out);
    return k;
}

/* Computes the frames of (m, pc) and appends them to the cache's frame array. */
static int symtab_compute(htri_symtab *st, symbols_module *m, uint64_t pc, int is_ret,
                          uint32_t *first)
{
    htri_frame tmp[SYMBOLS_MAX_INLINE];
    int n = 0;
    if (m->state == SYMBOLS_UNOPENED && htri_symbols_open_module(st, m) == -ENOMEM)
        return -ENOMEM;
    uint64_t offset = pc - m->bias;
    if (m->state == SYMBOLS_OPEN) {
        /* a return address points after the call; pc - 1 is still inside it */
        n = htri_symbols_expand(st, m, offset - (is_ret && offset ? 1 : 0), tmp,
                                SYMBOLS_MAX_INLINE);
        if (n < 0)
            return n;
    }
    for (int i = 0; i < n; i++) {
        tmp[i].pc = pc;
        tmp[i].module = m->path;
        tmp[i].module_offset = offset;
    }
    if (n == 0)
        n = symtab_unknown(tmp, m, pc);
    if (st->n_frames + (size_t)n > st->cap_frames) {
        size_t cap = st->cap_frames ? st->cap_frames * 2 : 1024, bytes;
        if (cap > UINT32_MAX || htri_mul_overflow(cap, sizeof *st->frames, &bytes))
            return -ENOMEM;
        htri_frame *frames = htri_symbols_realloc(st, st->frames, bytes);
        if (!frames)
            return -ENOMEM;
        st->frames = frames;
        st->cap_frames = cap;
    }
    *first = (uint32_t)st->n_frames;
    memcpy(st->frames + st->n_frames, tmp, (size_t)n * sizeof *tmp);
    st->n_frames += (size_t)n;
    return n;
}

int htri_symtab_resolve(htri_symtab *st, int mod, uint64_t pc, int is_return_address,
                        htri_frame *out, int max)
{
    if (!st || !out || max < 1)
        return -EINVAL;
    if (mod < 0 || (size_t)mod >= st->n_mods)
        return symtab_unknown(out, NULL, pc);
    symbols_module *m = &st->mods[mod];
    st->n_lookups++;
    uint64_t key_b = ((uint64_t)(uint32_t)mod + 1) << 1 | (is_return_address != 0);
    if (htri_symbols_map_reserve(st, &st->cache, 1) != 0)
        return -ENOMEM;
    symbols_slot *s = htri_symbols_map_find(&st->cache, pc, key_b);
    if (s->b) {
        st->n_hits++;
        return symtab_copy_out(st->frames + (s->v >> 8), (int)(s->v & 0xff), out, max);
    }
    uint32_t first;
    int n = symtab_compute(st, m, pc, is_return_address != 0, &first);
    if (n < 0)
        return n;
    /* symtab_compute never touches the cache map, so `s` is still the slot to fill */
    s->a = pc;
    s->b = key_b;
    s->v = (uint64_t)first << 8 | (uint64_t)n;
    st->cache.used++;
    return symtab_copy_out(st->frames + first, n, out, max);
}

int htri_symtab_resolve_pc(htri_symtab *st, uint64_t pc, int is_return_address,
                           htri_frame *out, int max)
{
    if (!st || !out || max < 1)
        return -EINVAL;
    int mod = htri_symtab_find_module(st, pc);
    if (mod == -ENOMEM)
        return mod;
    return htri_symtab_resolve(st, mod, pc, is_return_address, out, max);
}

void htri_symtab_stats(const htri_symtab *st, uint64_t *n_lookups, uint64_t *n_hits)
{
    if (n_lookups)
        *n_lookups = st ? st->n_lookups : 0;
    if (n_hits)
        *n_hits = st ? st->n_hits : 0;
}

const char *htri_symtab_module_file(htri_symtab *st, int mod)
{
    if (!st || mod < 0 || (size_t)mod >= st->n_mods)
        return NULL;
    symbols_module *m = &st->mods[mod];
    if (m->state == SYMBOLS_UNOPENED)
        htri_symbols_open_module(st, m);
    return m->state == SYMBOLS_OPEN ? m->file : NULL;
}
