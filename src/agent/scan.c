/* The leak scan's core: sorts the live blocks, floods from the roots and classifies every
 * block into memcheck's four kinds. Called by scan_world.c with the world stopped, and by unit
 * tests directly. Allocates only with mmap, never through the program's malloc.
 *
 * Algorithm: memcheck's leak checker (valgrind memcheck/mc_leakcheck.c, "Leak detection
 * details" in the memcheck manual), reimplemented:
 *  1. Every aligned word of every root (and every register) that points into a block pushes
 *     it on a mark stack. A start pointer (or an interior pointer one of the heuristics
 *     accepts) from a definite prior makes the block Reachable; anything else Possible. A
 *     popped block's words are scanned the same way, its prior definite unless it is Possible,
 *     so a block hanging off a possibly-lost block is itself possibly lost.
 *  2. Cliques: blocks still Unreached are visited in address order; each becomes a leader
 *     (definitely lost) and every Unreached block it reaches, by any pointer, joins its clique
 *     as indirectly lost, adding its size (and, for an earlier leader it swallows, that
 *     leader's indirect size) to the leader's indirect bytes. So a lost tree is one definite
 *     root plus indirect children, and a lost cycle is its lowest-addressed block plus the rest.
 * A zero-size block is found by a pointer equal to its address (memcheck's malloc(0) rule). */
#include <string.h>

#include "agent/scan.h"
#include "base/common.h"
#include "base/hash.h"
#include "base/os.h"

#define SCAN_NONE ((size_t)-1)
#define SCAN_WORD sizeof(uintptr_t)

/* One scan's working state: the sorted blocks and their parallel arrays. A scan runs once at
 * a time per call; nothing survives the call but the result. */
typedef struct scan_state {
    htri_block *blocks;
    size_t n;
    uintptr_t *addr;          /* blocks[i].addr, for a cache-friendly binary search */
    uintptr_t *end;           /* addr + size, or addr + 1 for a zero-size block */
    htri_scan_extra *extra;
    uint32_t *stack;          /* mark stack: at most n entries, thanks to `pending` */
    size_t top;
    uintptr_t lo, hi;         /* [lowest start, highest end): the quick filter */
    unsigned heuristics;
    int glibc_chunks;
    const htri_scan_map *maps;
    size_t n_maps;
    uint64_t bytes_roots;
} scan_state;

/* ---- Sorting (no libc qsort: it may call malloc) -------------------------------------- */

static inline void scan_swap(htri_block *a, htri_block *b)
{
    htri_block t = *a;
    *a = *b;
    *b = t;
}

static void scan_insertion_sort(htri_block *b, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        htri_block x = b[i];
        size_t j = i;
        while (j > 0 && b[j - 1].addr > x.addr) {
            b[j] = b[j - 1];
            j--;
        }
        b[j] = x;
    }
}

static void scan_sift_down(htri_block *b, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && b[child + 1].addr > b[child].addr) child++;
        if (b[root].addr >= b[child].addr) return;
        scan_swap(&b[root], &b[child]);
        root = child;
    }
}

static void scan_heap_sort(htri_block *b, size_t n)
{
    for (size_t i = n / 2; i-- > 0;) scan_sift_down(b, i, n);
    for (size_t i = n; i-- > 1;) {
        scan_swap(&b[0], &b[i]);
        scan_sift_down(b, 0, i);
    }
}

/* Introsort: quicksort with median of three, heapsort when the depth budget runs out. */
static void scan_sort(htri_block *b, size_t n, int depth)
{
    while (n > 24) {
        if (depth-- == 0) {
            scan_heap_sort(b, n);
            return;
        }
        size_t mid = n / 2;
        if (b[mid].addr < b[0].addr) scan_swap(&b[mid], &b[0]);
        if (b[n - 1].addr < b[0].addr) scan_swap(&b[n - 1], &b[0]);
        if (b[n - 1].addr < b[mid].addr) scan_swap(&b[n - 1], &b[mid]);
        uintptr_t pivot = b[mid].addr;
        size_t i = 0, j = n - 1;
        for (;;) {
            while (b[i].addr < pivot) i++;
            while (b[j].addr > pivot) j--;
            if (i >= j) break;
            scan_swap(&b[i], &b[j]);
            i++;
            j--;
        }
        /* recurse into the smaller side, loop on the larger: stack depth stays O(log n) */
        size_t left = j + 1;
        if (left < n - left) {
            scan_sort(b, left, depth);
            b += left;
            n -= left;
        } else {
            scan_sort(b + left, n - left, depth);
            n = left;
        }
    }
    scan_insertion_sort(b, n);
}

/* ---- Lookups ------------------------------------------------------------------------- */

/* The block whose [addr, end) holds p, or SCAN_NONE. */
static inline size_t scan_find(const scan_state *s, uintptr_t p)
{
    if (p < s->lo || p >= s->hi) return SCAN_NONE;
    size_t lo = 0, hi = s->n;   /* last i with addr[i] <= p */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->addr[mid] <= p) lo = mid;
        else hi = mid;
    }
    return p < s->end[lo] && p >= s->addr[lo] ? lo : SCAN_NONE;
}

const htri_scan_map *htri_scan_maps_find(const htri_scan_map *maps, size_t n, uintptr_t addr)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (maps[mid].end <= addr) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && maps[lo].start <= addr ? &maps[lo] : NULL;
}

static inline uintptr_t scan_word_at(uintptr_t a) { return *(const uintptr_t *)a; }

/* ---- memcheck's heuristics ------------------------------------------------------------
 * An interior pointer that one of them recognises counts as a start pointer. The tests and
 * their order are memcheck's (heuristic_reachedness in mc_leakcheck.c). */

/* memcheck's aligned_ptr_above_page0_is_vtable_addr: p lies in a readable file mapping and the
 * words from p on hold only NULLs and pointers into executable file mappings, at least two of
 * the latter within 21 words (the last word of the mapping is not looked at). */
static int scan_is_vtable(const scan_state *s, uintptr_t p)
{
    const htri_scan_map *m = htri_scan_maps_find(s->maps, s->n_maps, p);
    if (!m || !(m->flags & HTRI_MAP_FILE) || !(m->flags & HTRI_MAP_R)) return 0;
    uintptr_t scan_max = p + 20 * SCAN_WORD;
    if (scan_max > m->end - 1 - SCAN_WORD) scan_max = m->end - 1 - SCAN_WORD;
    int n_fn = 0;
    for (uintptr_t a = p; a <= scan_max; a += SCAN_WORD) {
        uintptr_t fn = scan_word_at(a);
        if (fn == 0) continue;
        const htri_scan_map *fm = htri_scan_maps_find(s->maps, s->n_maps, fn);
        if (!fm || !(fm->flags & HTRI_MAP_FILE) || !(fm->flags & HTRI_MAP_X)) return 0;
        if (++n_fn == 2) return 1;
    }
    return 0;
}

static uint8_t scan_heuristic(const scan_state *s, uintptr_t p, const htri_block *b)
{
    const uintptr_t data = b->addr, size = (uintptr_t)b->size;
    const unsigned h = s->heuristics;
    /* stdstring: the old (COW) libstdc++ string, `length capacity refcount chars[] \0`, is held
     * by a pointer to its chars. */
    if ((h & (1u << HTRI_HEUR_STDSTRING)) && p == data + 3 * SCAN_WORD && size >= 2 * SCAN_WORD) {
        uintptr_t capacity = scan_word_at(data + SCAN_WORD);
        if (3 * SCAN_WORD + capacity + 1 == size && scan_word_at(data) <= capacity)
            return HTRI_HEUR_STDSTRING;
    }
    /* length64: a 64-bit length of the rest of the block, then the data (sqlite does this). */
    if ((h & (1u << HTRI_HEUR_LENGTH64)) && p == data + 8 && size >= 8) {
        uint64_t len = *(const uint64_t *)data;
        if (len > 0 && size - 8 == len) return HTRI_HEUR_LENGTH64;
    }
    /* newarray: new[] of objects with a destructor stores the count before the elements. */
    if ((h & (1u << HTRI_HEUR_NEWARRAY)) && p == data + SCAN_WORD && size >= SCAN_WORD) {
        uintptr_t n_elems = scan_word_at(data);
        if (n_elems > 0 && (size - SCAN_WORD) % n_elems == 0) return HTRI_HEUR_NEWARRAY;
    }
    /* multipleinheritance: a pointer to a secondary base, whose first word is a vtable pointer,
     * as is the block's first word. */
    if ((h & (1u << HTRI_HEUR_MULTIPLEINHERITANCE)) && p % SCAN_WORD == 0 &&
        p + SCAN_WORD <= data + size && size >= SCAN_WORD && s->maps) {
        uintptr_t inner = scan_word_at(p);
        if (inner % SCAN_WORD == 0 && inner >= 4096) {
            uintptr_t first = scan_word_at(data);
            if (first % SCAN_WORD == 0 && first >= 4096 && scan_is_vtable(s, inner) &&
                scan_is_vtable(s, first))
                return HTRI_HEUR_MULTIPLEINHERITANCE;
        }
    }
    return HTRI_HEUR_NONE;
}

/* glibc keeps pointers to free chunks and to the top chunk in main_arena (libc's .data). Such
 * a pointer addresses a chunk header, which lies 8 bytes before the end of the usable area of
 * the chunk before it, and so inside that block when the program asked for its last 8 usable
 * bytes (malloc(24), malloc(100)...). memcheck never sees these (its malloc is its own); we
 * drop exactly this pointer when it is found in libc's data: p == the next chunk's header. */
static int scan_is_glibc_next_chunk(const scan_state *s, const htri_block *b, uintptr_t p)
{
    uintptr_t hdr = b->addr - SCAN_WORD;
    if (s->maps) {
        const htri_scan_map *m = htri_scan_maps_find(s->maps, s->n_maps, hdr);
        if (!m || !(m->flags & HTRI_MAP_R)) return 0;
    }
    uintptr_t chunk_size = scan_word_at(hdr);
    if (chunk_size & 2) return 0;   /* IS_MMAPPED: a chunk of its own, nothing follows it */
    return p == b->addr - 2 * SCAN_WORD + (chunk_size & ~(uintptr_t)7);
}

/* ---- Marking --------------------------------------------------------------------------- */

static inline void scan_push(scan_state *s, size_t i)
{
    if (!s->extra[i].pending) {
        s->extra[i].pending = 1;
        s->stack[s->top++] = (uint32_t)i;
    }
}

/* memcheck's lc_push_without_clique_if_a_chunk_ptr. */
static inline void scan_mark(scan_state *s, uintptr_t p, int prior_definite, int from_libc)
{
    size_t i = scan_find(s, p);
    if (i == SCAN_NONE) return;
    htri_scan_extra *ex = &s->extra[i];
    const htri_block *b = &s->blocks[i];
    if (ex->kind == HTRI_LEAK_REACHABLE) {
        /* reached by its start now: no longer "reachable via heuristic" */
        if (ex->heuristic && p == b->addr) ex->heuristic = HTRI_HEUR_NONE;
        return;
    }
    int via_start;
    if (p == b->addr) {
        via_start = 1;
    } else {
        if (from_libc && s->glibc_chunks && scan_is_glibc_next_chunk(s, b, p)) return;
        if (s->heuristics) {
            ex->heuristic = scan_heuristic(s, p, b);
            via_start = ex->heuristic != HTRI_HEUR_NONE;
        } else {
            via_start = 0;
        }
    }
    if (via_start && prior_definite) {
        ex->kind = HTRI_LEAK_REACHABLE;
        scan_push(s, i);
    } else if (ex->kind == HTRI_LEAK_DEFINITE) {
        ex->kind = HTRI_LEAK_POSSIBLE;
        scan_push(s, i);
    }
}

/* Aligned words of [start, end) as candidate pointers (memcheck skips the unaligned head and
 * tail of a range: a pointer is always stored aligned). */
static void scan_words(scan_state *s, uintptr_t start, uintptr_t end, int prior_definite,
                       int from_libc)
{
    uintptr_t a = (start + SCAN_WORD - 1) & ~(uintptr_t)(SCAN_WORD - 1);
    uintptr_t e = end & ~(uintptr_t)(SCAN_WORD - 1);
    const uintptr_t lo = s->lo, hi = s->hi;
    for (; a < e; a += SCAN_WORD) {
        uintptr_t p = scan_word_at(a);
        if (p >= lo && p < hi) scan_mark(s, p, prior_definite, from_libc);
    }
}

static void scan_drain(scan_state *s)
{
    while (s->top > 0) {
        size_t i = s->stack[--s->top];
        s->extra[i].pending = 0;
        const htri_block *b = &s->blocks[i];
        scan_words(s, b->addr, b->addr + (uintptr_t)b->size,
                   s->extra[i].kind != HTRI_LEAK_POSSIBLE, 0);
    }
}

/* Scans a root range, leaving out the blocks inside it (they are scanned when reached). */
static void scan_root(scan_state *s, const htri_scan_root *r, uint8_t *buf, size_t buf_cap)
{
    uintptr_t a = r->start;
    const int libc = (r->flags & HTRI_ROOT_LIBC) != 0;
    /* first block that ends after a */
    size_t i = scan_find(s, a);
    if (i == SCAN_NONE) {
        size_t lo = 0, hi = s->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->addr[mid] < a) lo = mid + 1;
            else hi = mid;
        }
        i = lo;
    }
    while (a < r->end) {
        uintptr_t stop = r->end;
        if (i < s->n && s->addr[i] < stop) stop = s->addr[i] > a ? s->addr[i] : a;
        if (stop > a) {
            s->bytes_roots += stop - a;
            if (r->flags & HTRI_ROOT_CAREFUL) {
                uintptr_t c = a & ~(uintptr_t)(SCAN_WORD - 1);
                while (c < stop) {
                    size_t len = stop - c < buf_cap ? stop - c : buf_cap;
                    long got = htri_scan_read_careful(buf, c, len);
                    if (got <= 0) {
                        /* an unreadable page: skip it */
                        uintptr_t page = (uintptr_t)htri_os_page_size();
                        c = (c + page) & ~(page - 1);
                        continue;
                    }
                    scan_words(s, (uintptr_t)buf, (uintptr_t)buf + (size_t)got, 1, libc);
                    c += (uintptr_t)got;
                }
            } else {
                scan_words(s, a, stop, 1, libc);
            }
            scan_drain(s);
        }
        if (i >= s->n || s->addr[i] >= r->end) break;
        uintptr_t skip_to = s->addr[i] + (uintptr_t)s->blocks[i].size;
        a = skip_to > stop ? skip_to : stop;
        i++;
    }
}

/* memcheck's clique pass (lc_push_with_clique_if_a_chunk_ptr), see the top of the file. */
static void scan_cliques(scan_state *s)
{
    for (size_t leader = 0; leader < s->n; leader++) {
        if (s->extra[leader].kind != HTRI_LEAK_DEFINITE) continue;
        scan_push(s, leader);
        while (s->top > 0) {
            size_t j = s->stack[--s->top];
            s->extra[j].pending = 0;
            const htri_block *b = &s->blocks[j];
            uintptr_t a = (b->addr + SCAN_WORD - 1) & ~(uintptr_t)(SCAN_WORD - 1);
            uintptr_t e = (b->addr + (uintptr_t)b->size) & ~(uintptr_t)(SCAN_WORD - 1);
            for (; a < e; a += SCAN_WORD) {
                size_t k = scan_find(s, scan_word_at(a));
                if (k == SCAN_NONE || k == leader || s->extra[k].kind != HTRI_LEAK_DEFINITE)
                    continue;
                scan_push(s, k);
                s->extra[k].kind = HTRI_LEAK_INDIRECT;
                s->extra[leader].indirect_bytes += s->blocks[k].size + s->extra[k].indirect_bytes;
                s->extra[k].indirect_bytes = 0;
            }
        }
    }
}

#define SCAN_BUF_BYTES (64 * 1024)   /* careful reads of root memory, a piece at a time */
#define SCAN_MAX_MAPS 65536            /* the kernel's default vm.max_map_count is 65530 */

static int scan_need_maps(const htri_scan_options *opt)
{
    return !opt->maps && (opt->glibc_chunks ||
                          (opt->heuristics & (1u << HTRI_HEUR_MULTIPLEINHERITANCE)));
}

/* Layout: extra[n+1] | addr[n+1] | end[n+1] | stack[n+1] | buffer | maps (if we read them) */
size_t htri_scan_scratch_bytes(size_t n, const htri_scan_options *opt)
{
    size_t per_block = sizeof(htri_scan_extra) + 2 * sizeof(uintptr_t) + sizeof(uint32_t);
    size_t bytes, maps_bytes = scan_need_maps(opt) ? SCAN_MAX_MAPS * sizeof(htri_scan_map) : 0;
    if (htri_mul_overflow(n + 1, per_block, &bytes) ||
        htri_add_overflow(bytes, SCAN_BUF_BYTES + 64, &bytes) ||
        htri_add_overflow(bytes, maps_bytes, &bytes))
        return 0;
    size_t page = htri_os_page_size();
    return (bytes + page - 1) & ~(page - 1);
}

int htri_scan_blocks(htri_block *blocks, size_t n, const htri_scan_options *opt,
                     htri_scan_result *res)
{
    if (!res || !opt || (n && !blocks) || n > UINT32_MAX) return -EINVAL;
    memset(res, 0, sizeof *res);
    uint64_t t0 = htri_os_now_ns();

    size_t bytes = htri_scan_scratch_bytes(n, opt);
    if (!bytes) return -ENOMEM;
    const int need_maps = scan_need_maps(opt);
    uint8_t *mem;
    int own_mem = 0;
    if (opt->scratch && opt->scratch_bytes >= bytes) {
        mem = opt->scratch;
        memset(mem, 0, (n + 1) * sizeof(htri_scan_extra));
    } else {
        mem = htri_os_pages_reserve(bytes);
        if (!mem) return -ENOMEM;
        own_mem = 1;
    }

    scan_state s;
    memset(&s, 0, sizeof s);
    s.blocks = blocks;
    s.n = n;
    s.extra = (htri_scan_extra *)mem;
    s.addr = (uintptr_t *)(s.extra + n + 1);
    s.end = s.addr + n + 1;
    s.stack = (uint32_t *)(s.end + n + 1);
    uint8_t *buf = (uint8_t *)(((uintptr_t)(s.stack + n + 1) + 63) & ~(uintptr_t)63);
    s.heuristics = opt->heuristics & HTRI_HEUR_ALL;
    s.glibc_chunks = opt->glibc_chunks;
    s.maps = opt->maps;
    s.n_maps = opt->n_maps;
    if (need_maps) {
        htri_scan_map *maps = (htri_scan_map *)(buf + SCAN_BUF_BYTES);
        long got = htri_scan_maps_read(maps, SCAN_MAX_MAPS);
        if (got > 0) {
            s.maps = maps;
            s.n_maps = (size_t)got;
        }
    }

    int depth = 2;
    for (size_t k = n; k > 1; k >>= 1) depth += 2;
    scan_sort(blocks, n, depth);
    s.lo = UINTPTR_MAX;
    for (size_t i = 0; i < n; i++) {
        s.addr[i] = blocks[i].addr;
        s.end[i] = blocks[i].addr + (blocks[i].size ? (uintptr_t)blocks[i].size : 1);
        if (i && s.addr[i] < s.end[i - 1]) {
            /* overlapping blocks: a broken table; refuse rather than guess */
            if (own_mem) htri_os_pages_free(mem, bytes);
            return -EINVAL;
        }
    }
    if (n) {
        s.lo = s.addr[0];
        s.hi = s.end[n - 1];
    } else {
        s.lo = 1;
        s.hi = 0;
    }

    /* registers, then memory roots, each followed by a drain (the order memcheck uses does
     * not change the outcome: marking only ever moves a block up) */
    for (size_t r = 0; r < opt->n_root_words; r++) {
        uintptr_t p = opt->root_words[r];
        if (p >= s.lo && p < s.hi) scan_mark(&s, p, 1, 0);
    }
    scan_drain(&s);
    for (size_t r = 0; r < opt->n_roots; r++) scan_root(&s, &opt->roots[r], buf, SCAN_BUF_BYTES);
    scan_cliques(&s);

    for (size_t i = 0; i < n; i++) {
        htri_scan_extra *ex = &s.extra[i];
        res->bytes[ex->kind] += blocks[i].size;
        res->blocks[ex->kind]++;
        /* memcheck counts the heuristic of any block that still carries one, whatever its
         * kind (a Possible block can keep the heuristic that failed to make it Reachable) */
        if (ex->heuristic) {
            res->heur_bytes[ex->heuristic] += blocks[i].size;
            res->heur_blocks[ex->heuristic]++;
        }
    }
    res->extra = s.extra;
    res->n_blocks = n;
    res->bytes_roots = s.bytes_roots;
    res->mem = own_mem ? mem : NULL;
    res->mem_bytes = own_mem ? bytes : 0;
    res->scan_ns = htri_os_now_ns() - t0;
    return 0;
}

void htri_scan_result_free(htri_scan_result *res)
{
    if (!res) return;
    if (res->mem) htri_os_pages_free(res->mem, res->mem_bytes);
    memset(res, 0, sizeof *res);
}

/* ---- Grouping into LEAK_GROUP records --------------------------------------------------- */

static inline uint64_t scan_group_key(uint8_t kind, uint8_t heur, uint32_t node, uint8_t fam)
{
    return (uint64_t)node << 24 | (uint64_t)kind << 16 | (uint64_t)heur << 8 | fam;
}

long htri_scan_group(const htri_block *blocks, const htri_scan_result *res,
                     htri_leak_group_rec **out, size_t *out_bytes)
{
    size_t n = res->n_blocks, cap = 64;
    while (cap < 2 * n) cap <<= 1;
    size_t bytes, slots_bytes;
    if (htri_mul_overflow(cap, sizeof(uint32_t), &slots_bytes) ||
        htri_mul_overflow(n + 1, sizeof(htri_leak_group_rec), &bytes))
        return -ENOMEM;
    size_t page = htri_os_page_size();
    bytes = (bytes + page - 1) & ~(page - 1);
    slots_bytes = (slots_bytes + page - 1) & ~(page - 1);
    htri_leak_group_rec *groups = htri_os_pages_reserve(bytes);
    uint32_t *slots = htri_os_pages_reserve(slots_bytes);  /* group index + 1; 0 = empty */
    if (!groups || !slots) {
        htri_os_pages_free(groups, bytes);
        htri_os_pages_free(slots, slots_bytes);
        return -ENOMEM;
    }
    size_t n_groups = 0;
    for (size_t i = 0; i < n; i++) {
        const htri_scan_extra *ex = &res->extra[i];
        const htri_block *b = &blocks[i];
        /* heuristics matter only to still-reachable blocks' summary lines, but memcheck counts
         * them for any kind: keep them in the key so the counts survive the trace */
        uint64_t key = scan_group_key(ex->kind, ex->heuristic, b->node, b->family);
        size_t h = (size_t)htri_hash64(key) & (cap - 1);
        for (;;) {
            uint32_t g = slots[h];
            if (g == 0) {
                htri_leak_group_rec *gr = &groups[n_groups];
                gr->kind = ex->kind;
                gr->heuristic = ex->heuristic;
                gr->node = b->node;
                gr->family = b->family;
                slots[h] = (uint32_t)++n_groups;
                g = slots[h];
            }
            htri_leak_group_rec *gr = &groups[g - 1];
            if (gr->kind == ex->kind && gr->heuristic == ex->heuristic && gr->node == b->node &&
                gr->family == b->family) {
                gr->n_blocks++;
                gr->bytes += b->size;
                if (ex->kind == HTRI_LEAK_DEFINITE) gr->indirect_bytes += ex->indirect_bytes;
                break;
            }
            h = (h + 1) & (cap - 1);
        }
    }
    htri_os_pages_free(slots, slots_bytes);
    *out = groups;
    *out_bytes = bytes;
    return (long)n_groups;
}
