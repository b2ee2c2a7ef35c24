/* The replay engine: consumes the reader's record stream and builds the model (totals, peak
 * and its contributors, sites, temporaries, histogram, timeline, mmap, threads). Memory grows
 * with live blocks and distinct stacks, never with the number of events. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"
#include "base/common.h"
#include "base/hash.h"

/* A live heap block, keyed by its reference (tid, number): the trace names blocks so, never
 * by address (docs/trace-format.md). Open addressing with linear probing and backward-shift
 * deletion (Knuth 6.4, Algorithm R), so no tombstones pile up over millions of frees. */
typedef struct analyze_block {
    uint64_t no;          /* the block's number in thread tid */
    uint64_t size, t_alloc;
    uint32_t node, tid;
    uint8_t used;         /* 0: empty slot */
    uint8_t inherited;    /* INHERIT, not ALLOC: no lifetime of its own in this trace */
} analyze_block;

typedef struct analyze_blocks {
    analyze_block *slots;
    size_t cap, used;
} analyze_blocks;

/* A thread's recent blocks, indexed by number: slot no & mask. Numbers are dense and rising
 * within a thread, so an allocation writes the next slot (no probing) and most frees, of
 * blocks a few thousand allocations old, find theirs in one look. A block still live when
 * its slot comes round again moves to the shared table (`live`). The ring doubles while a
 * quarter of it is live, up to ANALYZE_RING_MAX slots, so its memory follows the thread's
 * live blocks, not its events. */
#define ANALYZE_RING_MIN 64
#define ANALYZE_RING_MAX (1u << 18)

typedef struct analyze_ring {
    analyze_block *slots;
    size_t mask;
    size_t n_live;        /* blocks in the ring */
    uint64_t max_no;      /* highest number put in it: lower ones are out of order (damage) */
    int any;              /* max_no is meaningful */
} analyze_ring;

typedef struct analyze_region {
    uint64_t start, end;
} analyze_region;

typedef struct analyze_caps {
    size_t nodes, modules, threads, messages, infos, errors, faults, limits, groups, pending;
} analyze_caps;

/* The one replay pass: builds the whole model, who held memory at the peak included. */

typedef struct analyze_pass {
    htri_model *m;
    analyze_blocks live;          /* blocks pushed out of their thread's ring */
    analyze_ring *rings;          /* per thread index (m->threads) */
    size_t cap_rings;
    uint64_t n_live;              /* live blocks, rings and table */
    uint64_t n_events, heap_live;
    uint64_t epoch;               /* heap peaks so far (analyze_site_touch) */
    uint64_t *site_epoch;         /* per node: the epoch its peak values were saved in */
    analyze_region *regions;      /* live anonymous mappings */
    size_t n_regions, cap_regions;
    uint8_t *point_touched;
    uint64_t point_lo, point_hi;  /* time range of bucket point_ix: most events hit it again */
    size_t point_ix;
    analyze_caps caps;            /* capacities of the model's growing arrays */
    size_t last_thread;           /* the thread asked last is asked again most of the time */
    size_t n_defined;             /* stack nodes defined so far */
    uint32_t *tid_slots;          /* thread index + 1 by tid hash, 0 empty */
    size_t tid_cap;
    char *err;
    size_t err_cap;
    /* the leak check being read: its groups move to the model at its LEAK_END */
    int in_check;
    htri_leak_check_rec pending_check;
    htri_leak_group_rec *pending;
    size_t n_pending;
    /* a HEAP_TOTALS record waiting for the END it belongs to; the frame of the last END */
    int totals_pending;
    htri_totals_rec totals;
    htri_reader *r;
    size_t end_frame;
    /* frees of blocks whose ALLOC has not come yet (analyze_park) */
    htri_record *parked;
    size_t n_parked, cap_parked;
} analyze_pass;

#define ANALYZE_MAX_NODE_GAP (1u << 20)

static inline size_t analyze_home(uint32_t tid, uint64_t no, size_t mask)
{
    return (size_t)htri_hash64(no ^ (uint64_t)tid << 40 ^ (uint64_t)tid) & mask;
}

static analyze_block *analyze_find(analyze_blocks *b, uint32_t tid, uint64_t no)
{
    if (!b->cap)
        return NULL;
    size_t mask = b->cap - 1;
    for (size_t i = analyze_home(tid, no, mask);; i = (i + 1) & mask) {
        analyze_block *s = &b->slots[i];
        if (!s->used)
            return NULL;
        if (s->no == no && s->tid == tid)
            return s;
    }
}

static int analyze_grow(analyze_blocks *b)
{
    size_t cap = b->cap ? b->cap * 2 : 1024, bytes;
    if (htri_mul_overflow(cap, sizeof(analyze_block), &bytes))
        return -ENOMEM;
    analyze_block *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < b->cap; i++) {
        if (!b->slots[i].used)
            continue;
        size_t j = analyze_home(b->slots[i].tid, b->slots[i].no, cap - 1);
        while (slots[j].used)
            j = (j + 1) & (cap - 1);
        slots[j] = b->slots[i];
    }
    free(b->slots);
    b->slots = slots;
    b->cap = cap;
    return 0;
}

/* Inserts, or replaces a block of the same reference (a damaged or hand-made trace: the
 * agent never reuses one) and returns 1 with the old one in *old. */
static int analyze_insert(analyze_blocks *b, const analyze_block *blk, analyze_block *old)
{
    if ((b->used + 1) * 4 > b->cap * 3) {
        int rc = analyze_grow(b);
        if (rc < 0)
            return rc;
    }
    size_t mask = b->cap - 1;
    for (size_t i = analyze_home(blk->tid, blk->no, mask);; i = (i + 1) & mask) {
        analyze_block *s = &b->slots[i];
        if (!s->used) {
            *s = *blk;
            s->used = 1;
            b->used++;
            return 0;
        }
        if (s->no == blk->no && s->tid == blk->tid) {
            *old = *s;
            *s = *blk;
            s->used = 1;
            return 1;
        }
    }
}

static void analyze_remove(analyze_blocks *b, analyze_block *slot)
{
    size_t mask = b->cap - 1, i = (size_t)(slot - b->slots), j = i;
    b->slots[i].used = 0;
    b->used--;
    for (;;) {
        j = (j + 1) & mask;
        if (!b->slots[j].used)
            return;
        size_t home = analyze_home(b->slots[j].tid, b->slots[j].no, mask);
        /* move j back into the hole at i unless its home lies cyclically in (i, j] */
        if ((i < j) ? (home <= i || home > j) : (home <= i && home > j)) {
            b->slots[i] = b->slots[j];
            b->slots[j].used = 0;
            i = j;
        }
    }
}

static int analyze_fail(analyze_pass *ps, const char *why)
{
    if (ps->err && ps->err_cap)
        snprintf(ps->err, ps->err_cap, "%s", why);
    return HTRI_E_CORRUPT;
}

static char *analyze_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static int analyze_reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16, bytes;
    while (c < need)
        if (htri_mul_overflow(c, 2, &c))
            return -ENOMEM;
    if (htri_mul_overflow(c, elem, &bytes))
        return -ENOMEM;
    void *p = realloc(*arr, bytes);
    if (!p)
        return -ENOMEM;
    memset((char *)p + *cap * elem, 0, (c - *cap) * elem);
    *arr = p;
    *cap = c;
    return 0;
}

/* Index of thread tid, or SIZE_MAX if none was seen (a lookup that adds nothing). */
static size_t analyze_thread_ix(analyze_pass *ps, uint32_t tid)
{
    htri_model *m = ps->m;
    size_t last = ps->last_thread;
    if (last < m->n_threads && m->threads[last].tid == tid)
        return last;
    if (!ps->tid_cap)
        return SIZE_MAX;
    size_t mask = ps->tid_cap - 1;
    for (size_t i = htri_hash64(tid) & mask; ps->tid_slots[i]; i = (i + 1) & mask)
        if (m->threads[ps->tid_slots[i] - 1].tid == tid)
            return ps->tid_slots[i] - 1;
    return SIZE_MAX;
}

static htri_thread_info *analyze_thread(analyze_pass *ps, uint32_t tid, uint64_t t)
{
    htri_model *m = ps->m;
    size_t last = ps->last_thread;
    if (last < m->n_threads && m->threads[last].tid == tid)
        return &m->threads[last];
    /* tid -> index + 1 in an open-addressing table: programs may start many threads */
    size_t mask = ps->tid_cap - 1, i;
    if (ps->tid_cap) {
        for (i = htri_hash64(tid) & mask; ps->tid_slots[i]; i = (i + 1) & mask)
            if (m->threads[ps->tid_slots[i] - 1].tid == tid)
                return &m->threads[ps->last_thread = ps->tid_slots[i] - 1];
    }
    if ((m->n_threads + 1) * 2 > ps->tid_cap) {
        size_t cap = ps->tid_cap ? ps->tid_cap * 2 : 64;
        uint32_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return NULL;
        for (size_t k = 0; k < m->n_threads; k++) {
            size_t j = htri_hash64(m->threads[k].tid) & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = (uint32_t)k + 1;
        }
        free(ps->tid_slots);
        ps->tid_slots = slots;
        ps->tid_cap = cap;
        mask = cap - 1;
    }
    if (analyze_reserve((void **)&m->threads, &ps->caps.threads, m->n_threads + 1,
                        sizeof *m->threads) < 0)
        return NULL;
    for (i = htri_hash64(tid) & mask; ps->tid_slots[i]; i = (i + 1) & mask)
        ;
    ps->tid_slots[i] = (uint32_t)m->n_threads + 1;
    htri_thread_info *th = &m->threads[m->n_threads];
    memset(th, 0, sizeof *th);
    th->tid = tid;
    th->t_first = t;
    ps->last_thread = m->n_threads++;
    return th;
}

/* Doubles thread tix's ring (or makes it). Ring entries keep distinct slots under the wider
 * mask (it only adds bits). Returns 0 or -ENOMEM. */
static int analyze_ring_grow(analyze_ring *r)
{
    size_t cap = r->slots ? (r->mask + 1) * 2 : ANALYZE_RING_MIN;
    analyze_block *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; r->slots && i <= r->mask; i++)
        if (r->slots[i].used)
            slots[r->slots[i].no & (cap - 1)] = r->slots[i];
    free(r->slots);
    r->slots = slots;
    r->mask = cap - 1;
    return 0;
}

/* Adds blk, a block of thread index tix. A reference already live (damage: the agent never
 * reuses one) is replaced and comes back in *old with 1. Returns 0, 1 or -ENOMEM. */
static int analyze_live_insert(analyze_pass *ps, size_t tix, const analyze_block *blk,
                               analyze_block *old)
{
    if (tix >= ps->cap_rings) {
        size_t cap = ps->cap_rings;
        if (analyze_reserve((void **)&ps->rings, &cap, tix + 1, sizeof *ps->rings) < 0)
            return -ENOMEM;
        ps->cap_rings = cap;
    }
    analyze_ring *r = &ps->rings[tix];
    if (htri_unlikely(!r->slots || ((r->n_live + 1) * 4 > r->mask + 1 && r->mask + 1 < ANALYZE_RING_MAX))) {
        if (analyze_ring_grow(r) < 0)
            return -ENOMEM;
    }
    int rc;
    analyze_block *s = &r->slots[blk->no & r->mask];
    if (htri_likely(blk->no > r->max_no || !r->any)) {
        r->max_no = blk->no;
        r->any = 1;
        if (s->used) {
            /* its slot came round with the block still live: over to the shared table */
            analyze_block gone;
            if ((rc = analyze_insert(&ps->live, s, &gone)) < 0)
                return rc;
            r->n_live--;
        }
        *s = *blk;
        s->used = 1;
        r->n_live++;
        ps->n_live++;
        return 0;
    }
    /* a number not above the thread's last (a damaged or hand-made trace): it may be live
     * in the ring or the table already; new ones go to the table */
    if (s->used && s->no == blk->no) {
        *old = *s;
        *s = *blk;
        s->used = 1;
        return 1;
    }
    rc = analyze_insert(&ps->live, blk, old);
    if (rc == 0)
        ps->n_live++;
    return rc;
}

/* The live block (tid, no), or NULL; *ring is the ring holding it, NULL for the shared
 * table (for analyze_live_remove). */
static analyze_block *analyze_live_find(analyze_pass *ps, uint32_t tid, uint64_t no,
                                        analyze_ring **ring)
{
    size_t tix = analyze_thread_ix(ps, tid);
    *ring = NULL;
    if (tix < ps->cap_rings && ps->rings[tix].slots) {
        analyze_ring *r = &ps->rings[tix];
        analyze_block *s = &r->slots[no & r->mask];
        if (s->used && s->no == no) {
            *ring = r;
            return s;
        }
    }
    return ps->live.used ? analyze_find(&ps->live, tid, no) : NULL;
}

static void analyze_live_remove(analyze_pass *ps, analyze_block *slot, analyze_ring *ring)
{
    ps->n_live--;
    if (ring) {
        slot->used = 0;
        ring->n_live--;
    } else {
        analyze_remove(&ps->live, slot);
    }
}

static size_t analyze_hist_bucket(uint64_t size)
{
    return size ? (size_t)(64 - __builtin_clzll(size)) : 0;
}

static void analyze_point(analyze_pass *ps, uint64_t t, uint64_t heap, uint64_t rss)
{
    htri_model *m = ps->m;
    if (!m->n_points || !m->timeline)
        return;
    size_t i = ps->point_ix;
    if (t < ps->point_lo || t >= ps->point_hi) {
        /* bucket i holds i*D <= t*n < (i+1)*D, in exact integer arithmetic */
        typedef unsigned __int128 u128;
        u128 d = m->duration_ns, n = m->n_points;
        i = d ? (size_t)((u128)t * n / d) : 0;
        if (i >= m->n_points)
            i = m->n_points - 1;
        ps->point_ix = i;
        ps->point_lo = d ? (uint64_t)(((u128)i * d + n - 1) / n) : 0;
        ps->point_hi = d && i + 1 < m->n_points ? (uint64_t)(((u128)(i + 1) * d + n - 1) / n) : UINT64_MAX;
        if (t < ps->point_lo)      /* clamped from beyond the end: keep the cache honest */
            ps->point_lo = t;
    }
    htri_point *p = &m->timeline[i];
    if (heap != UINT64_MAX) {
        if (!(ps->point_touched[i] & 1) || heap > p->heap_bytes)
            p->heap_bytes = heap;
        ps->point_touched[i] |= 1;
    }
    if (rss != UINT64_MAX && rss > p->rss_bytes) {
        p->rss_bytes = rss;
        ps->point_touched[i] |= 2;
    }
}

static uint32_t analyze_node_ok(analyze_pass *ps, uint64_t node)
{
    htri_model *m = ps->m;
    if (node < m->n_nodes && m->nodes[node].defined)
        return (uint32_t)node;
    m->unknown_nodes++;
    return 0;
}

/* Which module held `pc` when the node appeared: the loaded one starting highest (a newer
 * library mapped where an unloaded one was), the last added on equal starts. */
static int32_t analyze_module_of(const htri_model *m, uint64_t pc)
{
    int32_t best = -1;
    for (size_t i = 0; i < m->n_modules; i++) {
        const htri_module_info *mod = &m->modules[i];
        if (mod->unloaded || pc < mod->start || pc >= mod->end)
            continue;
        if (best < 0 || mod->start >= m->modules[best].start)
            best = (int32_t)i;
    }
    return best;
}

/* Leak-check and misuse records (length-prefixed bodies). A body that does not decode is
 * counted and skipped: these records are reports, and the heap numbers do not depend on them. */
static int analyze_report_record(analyze_pass *ps, const htri_record *rec)
{
    htri_model *m = ps->m;
    const uint8_t *body = (const uint8_t *)rec->str_a;
    size_t len = rec->str_a_len;
    switch (rec->tag) {
    case HTRI_REC_LEAK_CHECK:
        if (ps->in_check)
            m->n_leak_checks_incomplete++;
        if (htri_leak_check_rec_decode(body, len, &ps->pending_check) != 0)
            break;
        ps->in_check = 1;
        ps->n_pending = 0;
        return 0;
    case HTRI_REC_LEAK_GROUP: {
        htri_leak_group_rec g;
        if (!ps->in_check || htri_leak_group_rec_decode(body, len, &g) != 0)
            break;
        if (g.node >= m->n_nodes || !m->nodes[g.node].defined)
            g.node = 0;
        if (analyze_reserve((void **)&ps->pending, &ps->caps.pending, ps->n_pending + 1,
                            sizeof *ps->pending) < 0)
            return -ENOMEM;
        ps->pending[ps->n_pending++] = g;
        return 0;
    }
    case HTRI_REC_LEAK_END: {
        htri_leak_end_rec e;
        if (!ps->in_check || htri_leak_end_rec_decode(body, len, &e) != 0)
            break;
        ps->in_check = 0;
        if (e.n_groups != ps->n_pending) {     /* groups went missing: not a result */
            m->n_leak_checks_incomplete++;
            return 0;
        }
        htri_leak_group_rec *t = m->leak_groups;
        size_t tcap = ps->caps.groups;
        m->leak_groups = ps->pending;
        ps->caps.groups = ps->caps.pending;
        ps->pending = t;
        ps->caps.pending = tcap;
        m->n_leak_groups = ps->n_pending;
        ps->n_pending = 0;
        m->leak_check = ps->pending_check;
        m->has_leak_check = 1;
        m->n_leak_checks++;
        return 0;
    }
    case HTRI_REC_ERROR:
    case HTRI_REC_FAULT:
    case HTRI_REC_LIMIT:
        if (m->n_errors + m->n_faults + m->n_limits >= HTRI_MAX_MISUSE) {
            m->n_misuse_dropped++;
            return 0;
        }
        if (rec->tag == HTRI_REC_ERROR) {
            htri_error_rec e;
            if (htri_error_rec_decode(body, len, &e) != 0)
                break;
            if (analyze_reserve((void **)&m->errors, &ps->caps.errors, m->n_errors + 1, sizeof e) < 0)
                return -ENOMEM;
            m->errors[m->n_errors++] = e;
        } else if (rec->tag == HTRI_REC_FAULT) {
            htri_fault_rec f;
            if (htri_fault_rec_decode(body, len, &f) != 0)
                break;
            if (analyze_reserve((void **)&m->faults, &ps->caps.faults, m->n_faults + 1, sizeof f) < 0)
                return -ENOMEM;
            m->faults[m->n_faults++] = f;
        } else {
            htri_limit_rec l;
            if (htri_limit_rec_decode(body, len, &l) != 0)
                break;
            if (analyze_reserve((void **)&m->limits, &ps->caps.limits, m->n_limits + 1, sizeof l) < 0)
                return -ENOMEM;
            m->limits[m->n_limits++] = l;
        }
        return 0;
    case HTRI_REC_ERROR_SUMMARY: {
        uint64_t t;
        if (htri_error_summary_decode(body, len, &t, &m->agent_errors, &m->agent_error_contexts) != 0)
            break;
        m->has_error_summary = 1;
        return 0;
    }
    case HTRI_REC_TOTALS:
        ps->totals_pending = 0;
        if (htri_totals_rec_decode(body, len, &ps->totals) != 0)
            break;
        ps->totals_pending = 1;
        return 0;
    default:
        return 0;     /* a newer record kind: skipped */
    }
    m->n_bad_records++;
    return 0;
}

static int analyze_meta(analyze_pass *ps, const htri_record *rec)
{
    htri_model *m = ps->m;
    if (rec->tag >= 0x40 && rec->tag <= 0x7f)
        return analyze_report_record(ps, rec);
    switch (rec->tag) {
    case HTRI_REC_INFO: {
        if (m->n_infos >= HTRI_MAX_INFOS)
            return 0;
        if (analyze_reserve((void **)&m->infos, &ps->caps.infos, m->n_infos + 1, sizeof *m->infos) < 0)
            return -ENOMEM;
        htri_info *in = &m->infos[m->n_infos];
        in->key = analyze_strndup(rec->str_a, rec->str_a_len);
        in->value = analyze_strndup(rec->str_b, rec->str_b_len);
        in->value_len = rec->str_b_len;
        m->n_infos++;
        if (!in->key || !in->value)
            return -ENOMEM;
        return 0;
    }
    case HTRI_REC_MODULE: {
        if (analyze_reserve((void **)&m->modules, &ps->caps.modules, m->n_modules + 1,
                            sizeof *m->modules) < 0)
            return -ENOMEM;
        htri_module_info *mod = &m->modules[m->n_modules++];
        mod->id = rec->id;
        mod->bias = rec->bias;
        mod->start = rec->start;
        mod->end = rec->end;
        mod->t_load = rec->t;
        mod->path = analyze_strndup(rec->str_b, rec->str_b_len);
        mod->build_id = (uint8_t *)analyze_strndup(rec->str_a, rec->str_a_len);
        mod->build_id_len = rec->str_a_len;
        return mod->path && mod->build_id ? 0 : -ENOMEM;
    }
    case HTRI_REC_MODULE_UNLOAD:
        for (size_t i = 0; i < m->n_modules; i++)
            if (m->modules[i].id == rec->id && !m->modules[i].unloaded) {
                m->modules[i].unloaded = 1;
                m->modules[i].t_unload = rec->t;
            }
        return 0;
    case HTRI_REC_NODES: {
        /* ids may leave gaps (a writer may number nodes out of order), but the array must
         * stay proportional to the nodes really defined, whatever a damaged trace says */
        if (rec->node >= 2 * ps->n_defined + ANALYZE_MAX_NODE_GAP)
            return analyze_fail(ps, "stack node ids jump too far");
        if (rec->parent >= m->n_nodes || !m->nodes[rec->parent].defined)
            return analyze_fail(ps, "stack node names an undefined parent");
        size_t need = (size_t)rec->node + 1;
        size_t cap = ps->caps.nodes, cap_epochs = ps->caps.nodes;
        if (analyze_reserve((void **)&m->nodes, &ps->caps.nodes, need, sizeof *m->nodes) < 0 ||
            analyze_reserve((void **)&m->sites, &cap, need, sizeof *m->sites) < 0 ||
            analyze_reserve((void **)&ps->site_epoch, &cap_epochs, need, sizeof *ps->site_epoch) < 0)
            return -ENOMEM;
        if (need > m->n_nodes)
            m->n_nodes = need;
        htri_node *n = &m->nodes[rec->node];
        if (!n->defined)
            ps->n_defined++;
        n->parent = (uint32_t)rec->parent;
        n->pc = rec->pc;
        n->module = analyze_module_of(m, rec->pc);
        n->defined = 1;
        return 0;
    }
    case HTRI_REC_THREAD: {
        htri_thread_info *th = analyze_thread(ps, rec->tid, rec->t);
        if (!th)
            return -ENOMEM;
        size_t n = rec->str_a_len < sizeof th->name - 1 ? rec->str_a_len : sizeof th->name - 1;
        memcpy(th->name, rec->str_a, n);
        th->name[n] = 0;
        if (rec->t < th->t_first)
            th->t_first = rec->t;
        return 0;
    }
    case HTRI_REC_THREAD_END: {
        htri_thread_info *th = analyze_thread(ps, rec->tid, rec->t);
        if (!th)
            return -ENOMEM;
        th->ended = 1;
        th->t_end = rec->t;
        return 0;
    }
    case HTRI_REC_RSS:
        m->rss_samples++;
        m->rss_last = rec->size;
        if (rec->size > m->rss_peak) {
            m->rss_peak = rec->size;
            m->rss_peak_t = rec->t;
        }
        analyze_point(ps, rec->t, UINT64_MAX, rec->size);
        return 0;
    case HTRI_REC_FORK_BASE:
        m->forked = 1;
        m->fork_parent_pid = rec->status;
        m->fork_allocs += rec->allocs;
        m->fork_frees += rec->frees;
        m->fork_bytes += rec->bytes;
        m->allocs += rec->allocs;
        m->frees += rec->frees;
        m->bytes_allocated += rec->bytes;
        return 0;
    case HTRI_REC_MESSAGE: {
        if (m->n_messages >= HTRI_MAX_MESSAGES) {
            m->n_messages_dropped++;
            return 0;
        }
        if (analyze_reserve((void **)&m->messages, &ps->caps.messages, m->n_messages + 1,
                            sizeof *m->messages) < 0)
            return -ENOMEM;
        htri_message *msg = &m->messages[m->n_messages++];
        msg->t = rec->t;
        msg->level = rec->status > 2 ? 2 : (uint32_t)rec->status;
        msg->text = analyze_strndup(rec->str_a, rec->str_a_len);
        return msg->text ? 0 : -ENOMEM;
    }
    case HTRI_REC_END:
        /* HEAP_TOTALS counts up to this END only: an END without one (a later exit after a
         * failed exec, an agent that stopped) leaves no totals */
        m->has_totals = (uint8_t)ps->totals_pending;
        if (ps->totals_pending)
            m->totals = ps->totals;
        ps->totals_pending = 0;
        ps->end_frame = htri_reader_record_frame(ps->r);
        m->has_end = 1;
        m->end_t = rec->t;
        m->end_how = rec->how;
        m->end_status = rec->status;
        m->end_peak_rss = rec->peak_rss;
        m->end_dropped = rec->dropped;
        m->end_allocs = rec->allocs;
        m->end_frees = rec->frees;
        m->end_bytes = rec->bytes;
        return 0;
    }
    return 0;
}

static int analyze_region_add(analyze_pass *ps, uint64_t start, uint64_t len)
{
    if (analyze_reserve((void **)&ps->regions, &ps->cap_regions, ps->n_regions + 1,
                        sizeof *ps->regions) < 0)
        return -ENOMEM;
    uint64_t end = start + len < start ? UINT64_MAX : start + len;
    ps->regions[ps->n_regions++] = (analyze_region){ start, end };
    return 0;
}

/* Unmaps [start, start+len) from the known anonymous regions (partial unmaps split a region);
 * returns the bytes that were ours. Mappings are few, so a linear scan does. */
static int analyze_region_remove(analyze_pass *ps, uint64_t start, uint64_t len, uint64_t *freed)
{
    uint64_t end = start + len < start ? UINT64_MAX : start + len;
    *freed = 0;
    for (size_t i = 0; i < ps->n_regions; i++) {
        analyze_region *g = &ps->regions[i];
        if (g->end <= start || g->start >= end)
            continue;
        uint64_t lo = g->start > start ? g->start : start, hi = g->end < end ? g->end : end;
        *freed += hi - lo;
        if (g->start < lo && g->end > hi) {
            uint64_t tail_end = g->end;
            g->end = lo;
            if (analyze_region_add(ps, hi, tail_end - hi) < 0)
                return -ENOMEM;
        } else if (g->start < lo) {
            g->end = lo;
        } else if (g->end > hi) {
            g->start = hi;
        } else {
            ps->regions[i--] = ps->regions[--ps->n_regions];
        }
    }
    return 0;
}

/* Who held memory at the heap peak, in the same pass (copy-on-write snapshots per stack):
 * a site's live_bytes/live_blocks are its current values; a new peak bumps ps->epoch in
 * O(1); a site about to change whose epoch is older first saves its current values into
 * peak_bytes/peak_blocks (they are what it held at the latest peak) and takes the epoch. At
 * the end, a site untouched since the last peak still holds its peak values as its current
 * ones (analyze_peak_sites). So each event costs one compare, not a second replay. */
static inline htri_site *analyze_site_touch(analyze_pass *ps, uint32_t node)
{
    htri_site *s = &ps->m->sites[node];
    if (ps->site_epoch[node] != ps->epoch) {
        ps->site_epoch[node] = ps->epoch;
        s->peak_bytes = s->live_bytes;
        s->peak_blocks = s->live_blocks;
    }
    return s;
}

static void analyze_peak_sites(analyze_pass *ps)
{
    htri_model *m = ps->m;
    for (size_t i = 0; i < m->n_nodes; i++) {
        htri_site *s = &m->sites[i];
        if (ps->site_epoch[i] != ps->epoch) {
            s->peak_bytes = s->live_bytes;
            s->peak_blocks = s->live_blocks;
        }
    }
}

/* Accounts the end of a block's life and removes it from the live table. */
static void analyze_release(analyze_pass *ps, analyze_block *slot, analyze_ring *ring,
                            const htri_record *rec)
{
    htri_model *m = ps->m;
    htri_site *s = analyze_site_touch(ps, slot->node);
    if (!slot->inherited) {
        uint64_t life = rec->t - (rec->t >= slot->t_alloc ? slot->t_alloc : rec->t);
        if (slot->tid == rec->tid) {
            /* a temporary: freed by its thread before that thread allocated again */
            htri_thread_info *th = analyze_thread(ps, rec->tid, rec->t);
            if (th && th->has_alloc && th->last_alloc_no == slot->no) {
                m->temporaries++;
                s->temporaries++;
            }
        }
        if (life < m->short_lived_ns) {
            m->short_lived++;
            s->short_lived++;
        }
    }
    s->live_blocks--;
    s->live_bytes -= slot->size;
    ps->heap_live -= slot->size;
    analyze_live_remove(ps, slot, ring);
}

/* The merge orders a tick's records by their threads' heads only: when the allocating
 * thread's head in that tick is a free of its own, another thread's free of the block that
 * thread allocates next in the same tick can come first. So a free naming a number its thread
 * has not reached yet waits here for that ALLOC (analyze_unpark), rather than counting as a
 * free of a block from before the trace. Only frees of blocks allocated in the same tick by
 * another thread wait, so the list stays a few entries long; one a damaged trace leaves
 * behind counts as unknown at the end, and past ANALYZE_MAX_PARKED frees are not kept. */
#define ANALYZE_MAX_PARKED 4096

static int analyze_unseen(analyze_pass *ps, uint32_t tid, uint64_t no)
{
    size_t tix = analyze_thread_ix(ps, tid);
    if (tix >= ps->cap_rings || !ps->rings[tix].any)
        return 1;
    return no > ps->rings[tix].max_no;
}

static int analyze_park(analyze_pass *ps, const htri_record *rec)
{
    if (ps->n_parked >= ANALYZE_MAX_PARKED ||
        analyze_reserve((void **)&ps->parked, &ps->cap_parked, ps->n_parked + 1, sizeof *ps->parked) < 0)
        return 0;
    ps->parked[ps->n_parked++] = *rec;
    return 1;
}

static void analyze_release(analyze_pass *ps, analyze_block *slot, analyze_ring *ring,
                            const htri_record *rec);

/* The ALLOC of (tid, no) has been applied: a free that waited for it applies now. */
static void analyze_unpark(analyze_pass *ps, uint32_t tid, uint64_t no)
{
    for (size_t i = 0; i < ps->n_parked; i++) {
        htri_record *p = &ps->parked[i];
        if (p->ref_tid != tid || p->ref != no)
            continue;
        analyze_ring *ring = NULL;
        analyze_block *slot = analyze_live_find(ps, tid, no, &ring);
        if (slot)
            analyze_release(ps, slot, ring, p);
        else
            ps->m->unknown_frees++;
        ps->parked[i] = ps->parked[--ps->n_parked];
        return;
    }
}

static int analyze_event(analyze_pass *ps, const htri_record *rec)
{
    htri_model *m = ps->m;
    ps->n_events++;
    switch (rec->tag) {
    case HTRI_REC_ALLOC:
    case HTRI_REC_INHERIT: {
        uint32_t node = analyze_node_ok(ps, rec->node);
        int is_alloc = rec->tag == HTRI_REC_ALLOC;
        analyze_block blk = { rec->ref, rec->size, rec->t, node, rec->ref_tid, 1, !is_alloc }, old;
        htri_thread_info *th = analyze_thread(ps, rec->tid, rec->t);
        if (!th)
            return -ENOMEM;
        htri_site *s = analyze_site_touch(ps, node);
        if (is_alloc) {
            size_t b = analyze_hist_bucket(rec->size);
            m->allocs++;
            m->bytes_allocated += rec->size;
            m->family_allocs[rec->family & 7]++;
            s->allocs++;
            s->bytes += rec->size;
            m->hist_count[b]++;
            m->hist_bytes[b] += rec->size;
            th->allocs++;
            th->bytes += rec->size;
            th->last_alloc_no = rec->ref;
            th->has_alloc = 1;
        } else {
            m->inherited_blocks++;
            m->inherited_bytes += rec->size;
        }
        int rc = analyze_live_insert(ps, (size_t)(th - m->threads), &blk, &old);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            /* a reference used twice (damage): the old block is gone */
            htri_site *os = analyze_site_touch(ps, old.node);
            os->live_blocks--;
            os->live_bytes -= old.size;
            ps->heap_live -= old.size;
        }
        s->live_blocks++;
        s->live_bytes += rec->size;
        ps->heap_live += rec->size;
        if (ps->n_live > m->max_live_blocks)
            m->max_live_blocks = ps->n_live;
        if (ps->heap_live > m->peak_bytes) {
            m->peak_bytes = ps->heap_live;
            m->peak_blocks = ps->n_live;
            m->peak_t = rec->t;
            m->peak_event = ps->n_events;
            ps->epoch++;          /* every site's current values are its peak values now */
        }
        if (htri_unlikely(ps->n_parked))
            analyze_unpark(ps, rec->ref_tid, rec->ref);
        break;
    }
    case HTRI_REC_FREE: {
        m->frees++;
        m->family_frees[rec->family & 7]++;
        analyze_ring *ring = NULL;
        analyze_block *slot = rec->ref_known ? analyze_live_find(ps, rec->ref_tid, rec->ref, &ring) : NULL;
        if (!slot) {
            if (!(rec->ref_known && analyze_unseen(ps, rec->ref_tid, rec->ref) && analyze_park(ps, rec)))
                m->unknown_frees++;
            break;
        }
        analyze_release(ps, slot, ring, rec);
        break;
    }
    case HTRI_REC_MMAP: {
        (void)analyze_node_ok(ps, rec->node);
        m->mmap_count++;
        m->mmap_bytes += rec->size;
        uint64_t freed;
        /* a MAP_FIXED mapping over one of ours replaces it */
        if (analyze_region_remove(ps, rec->addr, rec->size, &freed) < 0 ||
            analyze_region_add(ps, rec->addr, rec->size) < 0)
            return -ENOMEM;
        m->mmap_live_bytes += rec->size - freed;
        if (m->mmap_live_bytes > m->mmap_peak_bytes)
            m->mmap_peak_bytes = m->mmap_live_bytes;
        break;
    }
    case HTRI_REC_MUNMAP: {
        uint64_t freed;
        m->munmap_count++;
        if (analyze_region_remove(ps, rec->addr, rec->size, &freed) < 0)
            return -ENOMEM;
        m->mmap_live_bytes -= freed;
        break;
    }
    case HTRI_REC_ALLOC_FAILED:
        (void)analyze_node_ok(ps, rec->node);
        m->failed_allocs++;
        m->failed_bytes += rec->size;
        break;
    }
    analyze_point(ps, rec->t, ps->heap_live, UINT64_MAX);
    return 0;
}

static int analyze_on_record(void *ctx, const htri_record *rec)
{
    analyze_pass *ps = ctx;
    switch (rec->tag) {
    case HTRI_REC_ALLOC: case HTRI_REC_INHERIT: case HTRI_REC_FREE:
    case HTRI_REC_MMAP: case HTRI_REC_MUNMAP: case HTRI_REC_ALLOC_FAILED:
        return analyze_event(ps, rec);
    default:
        return analyze_meta(ps, rec);
    }
}

void htri_model_free(htri_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_modules; i++) {
        free(m->modules[i].path);
        free(m->modules[i].build_id);
    }
    for (size_t i = 0; i < m->n_messages; i++)
        free(m->messages[i].text);
    for (size_t i = 0; i < m->n_infos; i++) {
        free(m->infos[i].key);
        free(m->infos[i].value);
    }
    free(m->leak_groups);
    free(m->errors);
    free(m->faults);
    free(m->limits);
    free(m->modules);
    free(m->messages);
    free(m->infos);
    free(m->nodes);
    free(m->sites);
    free(m->threads);
    free(m->timeline);
    free(m);
}

static void analyze_rings_free(analyze_pass *ps)
{
    for (size_t i = 0; i < ps->cap_rings; i++)
        free(ps->rings[i].slots);
    free(ps->rings);
}

static int analyze_replay(htri_reader *r, analyze_pass *ps)
{
    int rc = htri_reader_replay(r, analyze_on_record, ps);
    return rc > 0 ? 0 : rc;
}

/* Whether the heap figures of the run summary may come from the last END and the HEAP_TOTALS
 * written with it: the trace is whole (not cut, nothing dropped, no event after that END, so
 * the totals count exactly the events in the file) and the agent vouches for its figures. */
static int analyze_totals_usable(const analyze_pass *ps, htri_reader *r)
{
    const htri_model *m = ps->m;
    return m->has_end && m->has_totals && !(m->totals.flags & HTRI_TOTALS_INEXACT) &&
           m->end_dropped == 0 && m->cut.status == 0 &&
           !(m->header.flags & HTRI_FILE_LEAK_ONLY) && !htri_reader_events_after(r, ps->end_frame);
}

/* The events' figures as the agent kept them. END's counters are process totals, so they hold
 * the FORK_BASE counters already, as the replay's sums do. */
static void analyze_apply_totals(htri_model *m)
{
    const htri_totals_rec *t = &m->totals;
    m->allocs = m->end_allocs;
    m->frees = m->end_frees;
    m->bytes_allocated = m->end_bytes;
    m->live_bytes = t->live_bytes;
    m->live_blocks = t->live_blocks;
    m->peak_bytes = t->peak_bytes;
    m->peak_blocks = t->peak_blocks;
    m->peak_t = t->peak_t;
    m->mmap_count = t->mmap_count;
    m->mmap_bytes = t->mmap_bytes;
    m->mmap_live_bytes = t->mmap_live_bytes;
    m->mmap_peak_bytes = t->mmap_peak_bytes;
    m->from_totals = 1;
}

/* One analysis. meta_only: decode the META frames alone and take the heap figures from the
 * totals; returns 1 (nothing built) when they cannot be used, or the META frames do not
 * decode, so the caller replays everything and reports any damage as that replay finds it. */
static int analyze_run(htri_reader *r, const htri_analyze_opts *opts, int meta_only,
                       htri_model **out, char *err, size_t err_cap)
{
    analyze_pass ps = { 0 };
    int rc = -ENOMEM;
    htri_model *m = calloc(1, sizeof *m);
    if (err && err_cap)
        err[0] = 0;
    if (!m)
        return -ENOMEM;
    m->header = *htri_reader_header(r);
    m->cut = *htri_reader_cut_info(r);
    m->duration_ns = htri_reader_t_end(r);
    m->short_lived_ns = opts && opts->short_lived_ns ? opts->short_lived_ns : HTRI_DEFAULT_SHORT_LIVED_NS;
    m->n_points = opts && opts->n_points ? opts->n_points : HTRI_DEFAULT_TIMELINE_POINTS;
    if (m->n_points > 100000)
        m->n_points = 100000;
    m->timeline = calloc(m->n_points, sizeof *m->timeline);
    ps.point_touched = calloc(m->n_points, 1);
    /* node 0, the empty stack, always exists */
    if (!m->timeline || !ps.point_touched ||
        analyze_reserve((void **)&m->nodes, &ps.caps.nodes, 1, sizeof *m->nodes) < 0 ||
        !(m->sites = calloc(ps.caps.nodes, sizeof *m->sites)) ||
        !(ps.site_epoch = calloc(ps.caps.nodes, sizeof *ps.site_epoch)))
        goto fail;
    m->nodes[0].defined = 1;
    m->nodes[0].module = -1;
    m->n_nodes = 1;
    ps.m = m;
    ps.err = err;
    ps.err_cap = err_cap;
    ps.r = r;
    if (meta_only) {
        rc = htri_reader_replay_meta(r, analyze_on_record, &ps);
        if (rc == -ENOMEM)
            goto fail;
        if (rc != 0 || !analyze_totals_usable(&ps, r)) {
            rc = 1;
            goto fail;
        }
        analyze_apply_totals(m);
    } else if ((rc = analyze_replay(r, &ps)) < 0) {
        goto fail;
    }
    if (ps.in_check)
        m->n_leak_checks_incomplete++;     /* a cut trace: the check never finished */
    m->unknown_frees += ps.n_parked;       /* their ALLOC never came */
    m->n_events = ps.n_events;
    m->max_open_frames = meta_only ? 0 : htri_reader_max_open(r);
    if (!meta_only) {
        m->live_blocks = ps.n_live;
        m->live_bytes = ps.heap_live;
    }
    if ((m->header.flags & HTRI_FILE_LEAK_ONLY) && ps.n_events == 0) {
        /* --record=none: no events, so the totals are the agent's own counters and what is
         * in use at exit is what its leak check saw */
        if (m->has_end) {
            m->allocs = m->end_allocs;
            m->frees = m->end_frees;
            m->bytes_allocated = m->end_bytes;
        }
        if (m->has_leak_check) {
            m->live_blocks = m->live_bytes = 0;
            for (size_t i = 0; i < m->n_leak_groups; i++) {
                m->live_blocks += m->leak_groups[i].n_blocks;
                m->live_bytes += m->leak_groups[i].bytes;
            }
        }
    }
    if (m->has_end && m->end_t > m->duration_ns)
        m->duration_ns = m->end_t;
    /* sites' live_* are what is still allocated at the end; their peak_* what they held at
     * the heap peak (analyze_site_touch) */
    analyze_peak_sites(&ps);
    if (opts && opts->skip_peak_sites) {
        for (size_t i = 0; i < m->n_nodes; i++)
            m->sites[i].peak_bytes = m->sites[i].peak_blocks = 0;
    }
    /* buckets without events hold the heap where the previous one left it */
    uint64_t heap = 0, rss = 0;
    for (size_t i = 0; i < m->n_points; i++) {
        htri_point *p = &m->timeline[i];
        p->t = (uint64_t)((unsigned __int128)m->duration_ns * (i + 1) / m->n_points);
        if (!(ps.point_touched[i] & 1))
            p->heap_bytes = heap;
        heap = p->heap_bytes;
        if (!(ps.point_touched[i] & 2))
            p->rss_bytes = rss;
        rss = p->rss_bytes;
    }
    free(ps.live.slots);
    analyze_rings_free(&ps);
    free(ps.regions);
    free(ps.point_touched);
    free(ps.pending);
    free(ps.tid_slots);
    free(ps.site_epoch);
    free(ps.parked);
    *out = m;
    return 0;
fail:
    free(ps.live.slots);
    analyze_rings_free(&ps);
    free(ps.regions);
    free(ps.point_touched);
    free(ps.pending);
    free(ps.tid_slots);
    free(ps.site_epoch);
    free(ps.parked);
    htri_model_free(m);
    return rc;
}

int htri_analyze(htri_reader *r, const htri_analyze_opts *opts, htri_model **out,
                 char *err, size_t err_cap)
{
    if (opts && opts->summary_only) {
        int rc = analyze_run(r, opts, 1, out, err, err_cap);
        if (rc <= 0)
            return rc;
    }
    return analyze_run(r, opts, 0, out, err, err_cap);
}

uint64_t htri_model_site_value(const htri_model *m, uint32_t stack, int key)
{
    const htri_site *s = &m->sites[stack];
    switch (key) {
    case HTRI_SORT_BYTES: return s->bytes;
    case HTRI_SORT_ALLOCS: return s->allocs;
    case HTRI_SORT_PEAK: return s->peak_bytes;
    case HTRI_SORT_LEAKED: return s->live_bytes ? s->live_bytes : s->live_blocks;
    case HTRI_SORT_TEMPORARY: return s->temporaries;
    case HTRI_SORT_SHORT_LIVED: return s->short_lived;
    }
    return 0;
}

typedef struct analyze_sort_ctx {
    const htri_model *m;
    int key;
} analyze_sort_ctx;

static int analyze_cmp_sites(const void *a, const void *b, void *arg)
{
    const analyze_sort_ctx *c = arg;
    uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
    uint64_t va = htri_model_site_value(c->m, ia, c->key), vb = htri_model_site_value(c->m, ib, c->key);
    if (va != vb)
        return va > vb ? -1 : 1;
    return ia < ib ? -1 : ia > ib;
}

size_t htri_model_top(const htri_model *m, int key, uint32_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_nodes; i++)
        if (htri_model_site_value(m, (uint32_t)i, key))
            n++;
    if (!n || !max)
        return n;
    uint32_t *ids = malloc(n * sizeof *ids);
    if (!ids) {
        /* without memory to sort, hand back the first ones found: degraded but true */
        size_t k = 0;
        for (size_t i = 0; i < m->n_nodes && k < max; i++)
            if (htri_model_site_value(m, (uint32_t)i, key))
                out[k++] = (uint32_t)i;
        return n;
    }
    size_t k = 0;
    for (size_t i = 0; i < m->n_nodes; i++)
        if (htri_model_site_value(m, (uint32_t)i, key))
            ids[k++] = (uint32_t)i;
    analyze_sort_ctx c = { m, key };
    qsort_r(ids, n, sizeof *ids, analyze_cmp_sites, &c);
    memcpy(out, ids, (n < max ? n : max) * sizeof *ids);
    free(ids);
    return n;
}

size_t htri_model_stack(const htri_model *m, uint32_t stack, uint32_t *nodes_out, size_t max)
{
    size_t n = 0;
    /* parents always have smaller ids, so the walk ends at the root */
    while (stack != 0 && stack < m->n_nodes && n < max) {
        nodes_out[n++] = stack;
        stack = m->nodes[stack].parent;
    }
    return n;
}

const htri_info *htri_model_info(const htri_model *m, const char *key)
{
    for (size_t i = m->n_infos; i-- > 0;)
        if (strcmp(m->infos[i].key, key) == 0)
            return &m->infos[i];
    return NULL;
}

const htri_thread_info *htri_model_thread(const htri_model *m, uint32_t tid)
{
    for (size_t i = 0; i < m->n_threads; i++)
        if (m->threads[i].tid == tid)
            return &m->threads[i];
    return NULL;
}

int htri_parse_duration(const char *s, uint64_t *ns)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+')
        return -EINVAL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -EINVAL;
    double mul;
    if (!*end || strcmp(end, "ms") == 0) mul = 1e6;
    else if (strcmp(end, "us") == 0) mul = 1e3;
    else if (strcmp(end, "ns") == 0) mul = 1;
    else if (strcmp(end, "s") == 0) mul = 1e9;
    else return -EINVAL;
    double r = v * mul;
    if (r >= 1.8e19 || r != r)
        return -EINVAL;
    *ns = (uint64_t)(r + 0.5);
    return 0;
}
