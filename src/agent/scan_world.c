/* The leak scan of a whole process: stop the world, take the blocks, find the roots the way
 * memcheck does (every readable+writable mapping; stacks from their stack pointer up;
 * registers), classify with scan.c, resume. No agent dependency: tests drive it directly. */
#include <string.h>

#include "agent/scan.h"
#include "base/common.h"
#include "base/os.h"

#define WORLD_MAX_MAPS 65536
#define WORLD_GLIBC_HEAP_MAX (64u << 20)  /* glibc's HEAP_MAX_SIZE on 64-bit: 2 * 32 MiB */

typedef struct world_hole { uintptr_t start, end; } world_hole;

static struct {
    int ignored[HTRI_SCAN_MAX_IGNORED];   /* the agent's own threads (tids), 0 = free slot */
    size_t tls_bytes;                     /* htri_scan_prepare(): static TLS, 0 = not yet */
} g_world;

void htri_scan_prepare(void)
{
    size_t bytes = htri_scan_static_tls_bytes();
    __atomic_store_n(&g_world.tls_bytes, bytes ? bytes : 1, __ATOMIC_RELEASE);
}

int htri_scan_ignore_self(void)
{
    int tid = htri_os_gettid();
    for (int i = 0; i < HTRI_SCAN_MAX_IGNORED; i++) {
        int expect = 0;
        if (__atomic_load_n(&g_world.ignored[i], __ATOMIC_ACQUIRE) == tid) return 0;
        if (__atomic_compare_exchange_n(&g_world.ignored[i], &expect, tid, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return 0;
    }
    return -ENOSPC;
}

static int world_is_ignored(int tid)
{
    for (int i = 0; i < HTRI_SCAN_MAX_IGNORED; i++)
        if (__atomic_load_n(&g_world.ignored[i], __ATOMIC_ACQUIRE) == tid) return 1;
    return 0;
}

/* glibc keeps each thread's DTV (the table of its TLS blocks, calloc'd by ld.so) through
 * tcbhead_t.dtv = the block + one 16-byte entry, an interior pointer: memcheck calls every
 * live thread's DTV "possibly lost". We add the block's start as a root word of its thread,
 * so it is what it is: still reachable. The TCB is readable (it sits in the thread's TLS). */
static uintptr_t world_glibc_dtv(const htri_scan_map *maps, size_t n_maps, uintptr_t tcb)
{
#if defined(__x86_64__)
    if (!tcb || tcb % sizeof(uintptr_t)) return 0;
    const htri_scan_map *m = htri_scan_maps_find(maps, n_maps, tcb + 2 * sizeof(uintptr_t));
    uintptr_t head[2];
    if (!m || !(m->flags & HTRI_MAP_R) ||
        htri_scan_read_careful(head, tcb, sizeof head) != (long)sizeof head || head[0] != tcb)
        return 0;
    uintptr_t dtv = head[1];
    return dtv > 16 ? dtv - 16 : 0;
#else
    (void)maps; (void)n_maps; (void)tcb;
    return 0;
#endif
}

/* Working memory of one check, mapped before the world stops (see htri_scan_options). */
typedef struct world_mem {
    htri_scan_thread threads[HTRI_SCAN_MAX_THREADS];
    htri_os_region own[HTRI_OS_MAX_REGIONS];
    htri_scan_map maps[WORLD_MAX_MAPS];
    world_hole holes[2 * WORLD_MAX_MAPS + HTRI_OS_MAX_REGIONS + HTRI_SCAN_MAX_THREADS + 16];
    htri_scan_root roots[2 * WORLD_MAX_MAPS];
    uintptr_t words[(HTRI_SCAN_MAX_THREADS + 1) * (HTRI_SCAN_NREGS + 1)];
    uintptr_t tcbs[HTRI_SCAN_MAX_THREADS + 1];
} world_mem;

static void world_sort_holes(world_hole *h, size_t n)
{
    /* Shell sort (Ciura's gaps): no allocation, fast enough for thousands of holes */
    static const size_t gaps[] = { 701, 301, 132, 57, 23, 10, 4, 1 };
    for (size_t g = 0; g < HTRI_ARRAY_LEN(gaps); g++) {
        size_t gap = gaps[g];
        for (size_t i = gap; i < n; i++) {
            world_hole x = h[i];
            size_t j = i;
            while (j >= gap && h[j - gap].start > x.start) {
                h[j] = h[j - gap];
                j -= gap;
            }
            h[j] = x;
        }
    }
}

/* glibc's non-main arenas live in heaps of their own: mappings reserved at 64 MiB alignment,
 * starting with a heap_info { ar_ptr, prev, size, mprotect_size }. Their free chunks hold
 * stale pointers, so like memcheck (which never scans its client heap) we leave them out.
 * Adds a hole for each one found in an anonymous read-write mapping. */
static size_t world_glibc_heaps(const htri_scan_map *m, world_hole *holes, size_t n_holes)
{
    const uintptr_t page = (uintptr_t)htri_os_page_size();
    uintptr_t a = (m->start + WORLD_GLIBC_HEAP_MAX - 1) & ~(uintptr_t)(WORLD_GLIBC_HEAP_MAX - 1);
    for (; a >= m->start && a + 4 * sizeof(uintptr_t) <= m->end; a += WORLD_GLIBC_HEAP_MAX) {
        /* Read without faulting: a read-write mapping need not be readable everywhere
         * (reserved NORESERVE ranges, a sanitizer's shadow memory). */
        uintptr_t info[4];
        if (htri_scan_read_careful(info, a, sizeof info) != (long)sizeof info)
            continue;
        uintptr_t ar_ptr = info[0], size = info[2], mprotect_size = info[3];
        if (ar_ptr == 0 || ar_ptr % 16 || mprotect_size == 0 || mprotect_size % page ||
            mprotect_size > WORLD_GLIBC_HEAP_MAX || size > mprotect_size ||
            a + mprotect_size > m->end)
            continue;
        holes[n_holes].start = a;
        holes[n_holes].end = a + mprotect_size;
        n_holes++;
    }
    return n_holes;
}

/* glibc caches the stacks of exited threads (and their struct pthread + static TLS at the
 * top) for reuse. memcheck sees only what lies above such a thread's last stack pointer,
 * near the top of the mapping: everything below was marked inaccessible as its stack
 * unwound. We recognise a cached stack by a thread control block in the top 8 KiB
 * (tcbhead_t: tcb and self both point at it) that no live thread owns, and keep as a root
 * only what lies above its last frames: the static TLS below the TCB (tls_bytes, plus
 * glibc's surplus) and start_thread's frame under it (WORLD_DEAD_FRAME). */
#define WORLD_DEAD_FRAME 1024u
#define WORLD_TLS_SURPLUS 2048u   /* glibc reserves ~1.6 KiB of static TLS for dlopen */
static size_t world_dead_stack(const htri_scan_map *m, const uintptr_t *live_tcbs, size_t n_live,
                               size_t tls_bytes, world_hole *holes, size_t n_holes)
{
    const uintptr_t keep_bytes = tls_bytes + WORLD_TLS_SURPLUS + WORLD_DEAD_FRAME;
    uintptr_t from = m->end > m->start + 8192 ? m->end - 8192 : m->start;
    from = (from + 63) & ~(uintptr_t)63;
    if (from >= m->end)
        return n_holes;
    /* One fault-free copy of the window: an anonymous read-write mapping need not be readable
     * everywhere (NORESERVE reservations, a sanitizer's shadow). */
    uintptr_t window[8192 / sizeof(uintptr_t)];
    size_t window_bytes = m->end - from < sizeof window ? m->end - from : sizeof window;
    if (htri_scan_read_careful(window, from, window_bytes) != (long)window_bytes)
        return n_holes;
    for (uintptr_t a = from; a + 3 * sizeof(uintptr_t) <= from + window_bytes; a += 64) {
        const uintptr_t *w = window + (a - from) / sizeof(uintptr_t);
        if (w[0] != a || w[2] != a) continue;
        for (size_t i = 0; i < n_live; i++)
            if (live_tcbs[i] == a) return n_holes;   /* a live thread's: handled by its sp */
        uintptr_t keep = a > m->start + keep_bytes ? a - keep_bytes : m->start;
        if (keep > m->start) holes[n_holes++] = (world_hole){ m->start, keep };
        return n_holes;
    }
    return n_holes;
}

/* Everything of the mapping holding sp below sp - redzone: dead frames. */
static size_t world_stack_hole(const htri_scan_map *maps, size_t n_maps, uintptr_t sp,
                               uintptr_t redzone, world_hole *holes, size_t n_holes)
{
    const htri_scan_map *m = htri_scan_maps_find(maps, n_maps, sp);
    if (!m) return n_holes;
    uintptr_t cut = sp - redzone;
    if (cut <= m->start || cut > sp) return n_holes;
    holes[n_holes].start = m->start;
    holes[n_holes].end = cut;
    return n_holes + 1;
}

/* The agent's own module data (its .data/.bss may hold stray copies of block addresses); not
 * when the scan is linked into the executable itself (a unit test: its globals are roots). */
static size_t world_own_module(const htri_scan_map *maps, size_t n_maps, world_hole *holes,
                               size_t n_holes)
{
    const htri_scan_map *self = htri_scan_maps_find(maps, n_maps, (uintptr_t)&htri_scan_world);
    const htri_scan_map *exe = htri_scan_maps_find(maps, n_maps, htri_scan_exe_addr());
    if (!self || !self->inode || (exe && exe->inode == self->inode)) return n_holes;
    for (size_t i = 0; i < n_maps; i++) {
        if (maps[i].inode != self->inode || !(maps[i].flags & HTRI_MAP_W)) continue;
        holes[n_holes].start = maps[i].start;
        holes[n_holes].end = maps[i].end;
        n_holes++;
        if (i + 1 < n_maps && !maps[i + 1].inode && maps[i + 1].start == maps[i].end) {
            holes[n_holes].start = maps[i + 1].start;   /* .bss beyond the file */
            holes[n_holes].end = maps[i + 1].end;
            n_holes++;
        }
    }
    return n_holes;
}

/* Sorted holes -> disjoint sorted holes (overlapping and nested ones merged). */
static size_t world_merge_holes(world_hole *h, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i].end <= h[i].start) continue;
        if (m && h[i].start <= h[m - 1].end) {
            if (h[i].end > h[m - 1].end) h[m - 1].end = h[i].end;
            continue;
        }
        h[m++] = h[i];
    }
    return m;
}

/* Roots = candidate mappings minus the (disjoint, sorted) holes. */
static size_t world_roots(const htri_scan_map *maps, size_t n_maps, const world_hole *holes,
                          size_t n_holes, htri_scan_root *roots, size_t cap)
{
    size_t n = 0, h = 0;
    for (size_t i = 0; i < n_maps; i++) {
        const htri_scan_map *m = &maps[i];
        if ((m->flags & (HTRI_MAP_R | HTRI_MAP_W)) != (HTRI_MAP_R | HTRI_MAP_W) ||
            (m->flags & (HTRI_MAP_DEVICE | HTRI_MAP_SPECIAL | HTRI_MAP_HEAP)))
            continue;
        uint32_t flags = (m->flags & HTRI_MAP_FILE ? HTRI_ROOT_CAREFUL : 0) |
                         (m->flags & HTRI_MAP_LIBC ? HTRI_ROOT_LIBC : 0);
        while (h < n_holes && holes[h].end <= m->start) h++;
        uintptr_t a = m->start;
        for (size_t k = h; k < n_holes && holes[k].start < m->end && a < m->end; k++) {
            if (holes[k].end <= a) continue;
            if (holes[k].start > a && n < cap) {
                roots[n++] = (htri_scan_root){ a, holes[k].start, flags };
            }
            a = holes[k].end;
        }
        if (a < m->end && n < cap) roots[n++] = (htri_scan_root){ a, m->end, flags };
    }
    return n;
}

HTRI_NOINLINE int htri_scan_world(htri_scan_snapshot_fn snap, void *user, unsigned heuristics,
                                  uintptr_t self_stack_from, htri_scan_world_result *out)
{
    if (!snap || !out) return -EINVAL;
    memset(out, 0, sizeof *out);
    /* our own frame and everything below it is scan machinery, not the program's */
    const uintptr_t own_frame = (uintptr_t)__builtin_frame_address(0);
    const uintptr_t self_sp = self_stack_from > own_frame ? self_stack_from : own_frame;
    uintptr_t self_regs[HTRI_SCAN_NREGS];
    int n_self_regs = htri_scan_self_regs(self_regs);

    /* everything we need is mapped before the world stops: a stopped thread may hold the lock
     * of our page registry */
    size_t n_blocks = snap(user, NULL, 0);
    world_mem *w = htri_os_pages_reserve(sizeof *w);
    if (!w) return -ENOMEM;
    htri_scan_options opt;
    memset(&opt, 0, sizeof opt);
    opt.heuristics = heuristics;
    opt.glibc_chunks = 1;
    opt.maps = w->maps;   /* ours: the scratch needs no room for them */
    size_t scratch_bytes = htri_scan_scratch_bytes(n_blocks + 64, &opt);
    size_t blocks_bytes;
    if (!scratch_bytes || htri_mul_overflow(n_blocks + 64, sizeof(htri_block), &blocks_bytes)) {
        htri_os_pages_free(w, sizeof *w);
        return -ENOMEM;
    }
    htri_block *blocks = htri_os_pages_reserve(blocks_bytes);
    void *scratch = htri_os_pages_reserve(scratch_bytes);
    if (!blocks || !scratch) {
        htri_os_pages_free(w, sizeof *w);
        htri_os_pages_free(blocks, blocks_bytes);
        htri_os_pages_free(scratch, scratch_bytes);
        return -ENOMEM;
    }
    int n_own = htri_os_own_regions(w->own, HTRI_OS_MAX_REGIONS);
    if (n_own > HTRI_OS_MAX_REGIONS) n_own = HTRI_OS_MAX_REGIONS;

    if (!__atomic_load_n(&g_world.tls_bytes, __ATOMIC_ACQUIRE)) htri_scan_prepare();
    size_t tls_bytes = __atomic_load_n(&g_world.tls_bytes, __ATOMIC_ACQUIRE);
    int n_threads = htri_scan_stop_world(w->threads, HTRI_SCAN_MAX_THREADS);
    if (n_threads < 0) {
        htri_os_pages_free(w, sizeof *w);
        htri_os_pages_free(blocks, blocks_bytes);
        htri_os_pages_free(scratch, scratch_bytes);
        return n_threads;
    }
    size_t n_snap = snap(user, blocks, n_blocks + 64);
    if (n_snap > n_blocks + 64) {
        n_snap = n_blocks + 64;     /* the caller let the table grow: scan what we have */
        out->flags |= HTRI_LEAK_WORLD_PARTIAL;
    }
    long got = htri_scan_maps_read(w->maps, WORLD_MAX_MAPS);
    size_t n_maps = got > 0 ? (size_t)got : 0;

    size_t n_holes = 0, n_words = 0;
    for (int i = 0; i < n_own; i++)
        w->holes[n_holes++] = (world_hole){ w->own[i].start, w->own[i].end };
    uintptr_t dtv;
    if (world_is_ignored(htri_os_gettid())) {
        /* the agent's own thread runs the check (--leak-check-signal): none of it is a root */
        const htri_scan_map *m = htri_scan_maps_find(w->maps, n_maps, self_sp);
        if (m) w->holes[n_holes++] = (world_hole){ m->start, m->end };
    } else {
        n_holes = world_stack_hole(w->maps, n_maps, self_sp, 0, w->holes, n_holes);
        for (int i = 0; i < n_self_regs; i++) w->words[n_words++] = self_regs[i];
        if ((dtv = world_glibc_dtv(w->maps, n_maps, htri_scan_self_tcb()))) w->words[n_words++] = dtv;
    }
    uint32_t n_stopped = 1;
    for (int t = 0; t < n_threads; t++) {
        htri_scan_thread *th = &w->threads[t];
        if (th->state == HTRI_THREAD_TIMEOUT) out->flags |= HTRI_LEAK_WORLD_PARTIAL;
        if (th->state != HTRI_THREAD_STOPPED) continue;
        n_stopped++;
        if (world_is_ignored(th->tid)) {
            /* the agent's own thread: its whole stack mapping (TLS included) is not a root */
            const htri_scan_map *m = htri_scan_maps_find(w->maps, n_maps, th->sp);
            if (m) w->holes[n_holes++] = (world_hole){ m->start, m->end };
            continue;
        }
        n_holes = world_stack_hole(w->maps, n_maps, th->sp, HTRI_SCAN_REDZONE, w->holes, n_holes);
        for (int r = 0; r < HTRI_SCAN_NREGS; r++) w->words[n_words++] = th->regs[r];
        if ((dtv = world_glibc_dtv(w->maps, n_maps, th->tcb))) w->words[n_words++] = dtv;
    }
    if (n_threads >= HTRI_SCAN_MAX_THREADS) out->flags |= HTRI_LEAK_WORLD_PARTIAL;
    /* TCBs of the live threads: the caller's and each stopped or unstoppable one's (for a
     * thread that did not stop we know no TCB: its stack is then scanned whole) */
    size_t n_live = 0;
    w->tcbs[n_live++] = htri_scan_self_tcb();
    for (int t = 0; t < n_threads; t++)
        if (w->threads[t].tcb) w->tcbs[n_live++] = w->threads[t].tcb;
    int all_known = !(out->flags & HTRI_LEAK_WORLD_PARTIAL);
    for (size_t i = 0; i < n_maps; i++) {
        if ((w->maps[i].flags & (HTRI_MAP_R | HTRI_MAP_W | HTRI_MAP_FILE)) != (HTRI_MAP_R | HTRI_MAP_W))
            continue;
        n_holes = world_glibc_heaps(&w->maps[i], w->holes, n_holes);
        if (all_known)
            n_holes = world_dead_stack(&w->maps[i], w->tcbs, n_live, tls_bytes, w->holes, n_holes);
    }
    n_holes = world_own_module(w->maps, n_maps, w->holes, n_holes);
    world_sort_holes(w->holes, n_holes);
    n_holes = world_merge_holes(w->holes, n_holes);
    size_t n_roots = world_roots(w->maps, n_maps, w->holes, n_holes, w->roots,
                                 HTRI_ARRAY_LEN(w->roots));
    /* a thread that runs on may unmap what we read: read every root without faulting */
    if (out->flags & HTRI_LEAK_WORLD_PARTIAL)
        for (size_t i = 0; i < n_roots; i++) w->roots[i].flags |= HTRI_ROOT_CAREFUL;

    opt.roots = w->roots;
    opt.n_roots = n_roots;
    opt.root_words = w->words;
    opt.n_root_words = n_words;
    opt.maps = w->maps;
    opt.n_maps = n_maps;
    opt.scratch = scratch;
    opt.scratch_bytes = scratch_bytes;
    int rc = htri_scan_blocks(blocks, n_snap, &opt, &out->scan);
    htri_scan_resume_world();

    htri_os_pages_free(w, sizeof *w);
    if (rc < 0) {
        htri_os_pages_free(blocks, blocks_bytes);
        htri_os_pages_free(scratch, scratch_bytes);
        memset(out, 0, sizeof *out);
        return rc;
    }
    /* the result's extra lives in the scratch: hand its mapping over to the result */
    out->scan.mem = scratch;
    out->scan.mem_bytes = scratch_bytes;
    out->blocks = blocks;
    out->n_blocks = n_snap;
    out->blocks_bytes = blocks_bytes;
    out->n_threads = n_stopped;
    return 0;
}

void htri_scan_world_free(htri_scan_world_result *r)
{
    if (!r) return;
    htri_scan_result_free(&r->scan);
    if (r->blocks) htri_os_pages_free(r->blocks, r->blocks_bytes);
    memset(r, 0, sizeof *r);
}
