/* Analysis numbers on constructed traces: totals, peak and who held it, temporaries,
 * short-lived blocks, histogram, mmap, timeline, fork inheritance, duration parsing. */
#include "check.h"
#include "../cli/trace_enc.h"
#include "analyze/analyze.h"

static htri_model *analyze_buf(const enc *e, const htri_analyze_opts *o)
{
    htri_reader *r = NULL;
    htri_model *m = NULL;
    if (htri_reader_open_mem(e->buf, e->len, &r) != 0)
        return NULL;
    char err[128];
    if (htri_analyze(r, o, &m, err, sizeof err) != 0)
        m = NULL;
    htri_reader_close(r);
    return m;
}

static void test_sample(void)
{
    enc e;
    enc_sample(&e);
    htri_model *m = analyze_buf(&e, NULL);
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK_EQ_U(m->allocs, 5);
    CHECK_EQ_U(m->frees, 3);
    CHECK_EQ_U(m->bytes_allocated, 2650);
    CHECK_EQ_U(m->live_blocks, 2);
    CHECK_EQ_U(m->live_bytes, 100);
    CHECK_EQ_U(m->peak_bytes, 1600);
    CHECK_EQ_U(m->peak_t, 2500);
    CHECK_EQ_U(m->peak_blocks, 2);
    /* who held the peak: the leak (node 2) and the realloc'd block (node 3) */
    CHECK_EQ_U(m->sites[2].peak_bytes, 100);
    CHECK_EQ_U(m->sites[3].peak_bytes, 1500);
    CHECK_EQ_U(m->sites[4].peak_bytes, 0);
    /* the 50-byte block and the new'd block freed by realloc before thread 100 allocated again */
    CHECK_EQ_U(m->temporaries, 2);
    CHECK_EQ_U(m->sites[3].temporaries, 2);
    CHECK_EQ_U(m->short_lived, 3);
    CHECK_EQ_U(m->hist_count[0], 1);
    CHECK_EQ_U(m->hist_count[6], 1);   /* 50 in [32,64) */
    CHECK_EQ_U(m->hist_count[7], 1);   /* 100 in [64,128) */
    CHECK_EQ_U(m->hist_count[10], 1);  /* 1000 in [512,1024) */
    CHECK_EQ_U(m->hist_count[11], 1);  /* 1500 in [1024,2048) */
    CHECK_EQ_U(m->mmap_count, 1);
    CHECK_EQ_U(m->mmap_bytes, 1 << 20);
    CHECK_EQ_U(m->mmap_live_bytes, 1 << 19);
    CHECK_EQ_U(m->mmap_peak_bytes, 1 << 20);
    CHECK_EQ_U(m->rss_peak, 3 << 20);
    CHECK(m->has_end);
    CHECK_EQ_U(m->end_peak_rss, 4 << 20);
    CHECK_EQ_U(m->end_allocs, 5);
    CHECK_EQ_U(m->duration_ns, 5000);
    CHECK_EQ_U(m->n_threads, 2);
    CHECK_STR(htri_model_thread(m, 101)->name, "worker");
    CHECK_EQ_U(htri_model_thread(m, 100)->allocs, 4);
    CHECK_EQ_U(m->n_messages, 1);
    CHECK_STR(m->messages[0].text, "sample warning");
    CHECK_STR(htri_model_info(m, "exe")->value, "/usr/bin/sample");
    CHECK_EQ_U(m->n_modules, 1);
    CHECK_EQ_U(m->nodes[2].module, 0);
    CHECK_EQ_U(m->nodes[2].parent, 1);

    uint32_t top[8];
    CHECK_EQ_U(htri_model_top(m, HTRI_SORT_BYTES, top, 8), 2);   /* calloc(0) adds no bytes */
    CHECK_EQ_U(top[0], 3);
    CHECK_EQ_U(top[1], 2);
    CHECK_EQ_U(htri_model_top(m, HTRI_SORT_ALLOCS, top, 8), 3);
    CHECK_EQ_U(top[2], 4);
    CHECK_EQ_U(htri_model_top(m, HTRI_SORT_ALLOCS, top, 1), 3);
    CHECK_EQ_U(top[0], 3);
    CHECK_EQ_U(htri_model_top(m, HTRI_SORT_LEAKED, top, 8), 2);
    CHECK_EQ_U(top[0], 2);
    uint32_t stack[8];
    CHECK_EQ_U(htri_model_stack(m, 3, stack, 8), 2);
    CHECK_EQ_U(stack[0], 3);
    CHECK_EQ_U(stack[1], 1);

    /* the timeline reaches the peak in the bucket holding t=2500 and ends at 100 bytes */
    uint64_t hi = 0;
    for (size_t i = 0; i < m->n_points; i++)
        if (m->timeline[i].heap_bytes > hi)
            hi = m->timeline[i].heap_bytes;
    CHECK_EQ_U(hi, 1600);
    CHECK_EQ_U(m->timeline[m->n_points - 1].heap_bytes, 100);
    CHECK_EQ_U(m->timeline[m->n_points - 1].t, 5000);
    CHECK_EQ_U(m->timeline[m->n_points - 1].rss_bytes, 3 << 20);
    htri_model_free(m);

    /* a threshold below 100 ns: nothing is short-lived */
    htri_analyze_opts o = { .short_lived_ns = 50, .n_points = 10, .skip_peak_sites = 1 };
    m = analyze_buf(&e, &o);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_U(m->short_lived, 0);
        CHECK_EQ_U(m->n_points, 10);
        CHECK_EQ_U(m->peak_bytes, 1600);
        CHECK_EQ_U(m->sites[3].peak_bytes, 0);   /* one pass: no contributors */
        htri_model_free(m);
    }
    free(e.buf);
}

/* A forked child: inherited counters and blocks, not counted as its own allocations. */
static void test_fork(void)
{
    enc e;
    enc_file(&e, 2, HTRI_FILE_FORKED);
    enc_begin(&e, HTRI_FRAME_META, 0, 0);
    enc_fork_base(&e, 0, 1, 10, 4, 1000);
    enc_end(&e);
    enc_begin(&e, HTRI_FRAME_EVENTS, 2, 0);
    enc_inherit(&e, 0, 64, 0, 0x1000);
    enc_inherit(&e, 0, 36, 0, 0x2000);
    enc_free(&e, 0, 10, 0x1000);
    enc_alloc(&e, 0, 20, 8, 0, 0x3000);
    enc_alloc(&e, 0, 30, 8, 77, 0x4000);      /* node never defined: charged to the root */
    enc_end(&e);
    htri_model *m = analyze_buf(&e, NULL);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_U(m->allocs, 12);
        CHECK_EQ_U(m->frees, 5);
        CHECK_EQ_U(m->bytes_allocated, 1016);
        CHECK_EQ_U(m->inherited_blocks, 2);
        CHECK_EQ_U(m->live_blocks, 3);
        CHECK_EQ_U(m->live_bytes, 52);
        CHECK_EQ_U(m->peak_bytes, 100);
        CHECK_EQ_U(m->peak_t, 0);
        CHECK_EQ_U(m->unknown_nodes, 1);
        CHECK_EQ_U(m->temporaries, 0);
        htri_model_free(m);
    }
    free(e.buf);
}

/* The peak is the first time the maximum is reached, and its contributors are exact even
 * when the same stack later allocates and frees a lot. */
static void test_peak_exact(void)
{
    enc e;
    enc_file(&e, 1, 0);
    enc_begin(&e, HTRI_FRAME_META, 0, 0);
    enc_node(&e, 1, 0, 0x10);
    enc_node(&e, 2, 0, 0x20);
    enc_end(&e);
    enc_begin(&e, HTRI_FRAME_EVENTS, 1, 0);
    for (int i = 0; i < 10; i++)
        enc_alloc(&e, 0, (uint64_t)i, 100, 1, 0x1000 + (uint64_t)i * 0x100);   /* 1000 bytes */
    enc_alloc(&e, 0, 20, 500, 2, 0x9000);                                       /* peak 1500 */
    for (int i = 0; i < 10; i++)
        enc_free(&e, 0, 30 + (uint64_t)i, 0x1000 + (uint64_t)i * 0x100);
    for (int i = 0; i < 5; i++)
        enc_alloc(&e, 0, 50 + (uint64_t)i, 200, 1, 0x1000 + (uint64_t)i * 0x100);  /* 1000+500 again */
    enc_end(&e);
    htri_model *m = analyze_buf(&e, NULL);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_U(m->peak_bytes, 1500);
        CHECK_EQ_U(m->peak_t, 20);
        CHECK_EQ_U(m->sites[1].peak_bytes, 1000);
        CHECK_EQ_U(m->sites[1].peak_blocks, 10);
        CHECK_EQ_U(m->sites[2].peak_bytes, 500);
        CHECK_EQ_U(m->sites[1].live_bytes, 1000);
        CHECK_EQ_U(m->sites[1].live_blocks, 5);
        CHECK_EQ_U(m->temporaries, 0);
        htri_model_free(m);
    }
    free(e.buf);
}

/* Two threads tie at one quantised time. Case 1: thread 2 frees the block thread 1
 * allocated in that same tick (the merge replays allocations first, so the free meets its
 * block). Case 2: thread 2 frees an old block and thread 1 gets its address again in that
 * tick: blocks are named by reference, so the free ends thread 2's block whatever the order
 * and the new one stays live. Case 3: one address allocated twice without a free between
 * (a free the agent never saw) is two blocks, both live: no rule forgets either. */
static void test_same_tick(void)
{
    enc e;
    enc_file(&e, 1, 0);
    enc_begin(&e, HTRI_FRAME_META, 0, 0);
    enc_node(&e, 1, 0, 0x10);
    enc_node(&e, 2, 0, 0x20);
    enc_end(&e);
    enc_begin(&e, HTRI_FRAME_EVENTS, 2, 0);
    enc_alloc(&e, 0, 0, 64, 2, 0x5000);          /* old block of case 2: thread 2's number 0 */
    enc_free_ref(&e, 0, 16384, 1, 0);            /* case 1: frees thread 1's block 0 */
    enc_free(&e, 0, 16384, 0x5000);              /* case 2: frees the old block */
    enc_end(&e);
    enc_begin(&e, HTRI_FRAME_EVENTS, 1, 16384);
    enc_alloc(&e, 0, 16384, 100, 1, 0x1000);     /* case 1: thread 1's number 0 */
    enc_alloc(&e, 0, 16384, 300, 1, 0x5000);     /* case 2: the address again */
    enc_alloc(&e, 0, 16384, 7, 1, 0x9000);       /* case 3: its free is lost ... */
    enc_alloc(&e, 0, 32768, 9, 1, 0x9000);       /* ... and the address comes back */
    enc_end(&e);
    htri_model *m = analyze_buf(&e, NULL);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_U(m->allocs, 5);
        CHECK_EQ_U(m->frees, 2);
        CHECK_EQ_U(m->unknown_frees, 0);
        CHECK_EQ_U(m->live_blocks, 3);           /* 300 at 0x5000, 7 and 9 at 0x9000 */
        CHECK_EQ_U(m->live_bytes, 316);
        CHECK_EQ_U(m->sites[1].live_bytes, 316);
        CHECK_EQ_U(m->sites[2].live_bytes, 0);
        CHECK_EQ_U(m->peak_bytes, 471);          /* 64 + 100 + 300 + 7: the tick's allocations first */
        CHECK_EQ_U(m->temporaries, 1);           /* thread 2's block: its last allocation */
        htri_model_free(m);
    }
    free(e.buf);

    /* the same events with the frames in the other file order: the same model */
    enc_file(&e, 1, 0);
    enc_begin(&e, HTRI_FRAME_META, 0, 0);
    enc_node(&e, 1, 0, 0x10);
    enc_node(&e, 2, 0, 0x20);
    enc_end(&e);
    enc_begin(&e, HTRI_FRAME_EVENTS, 1, 16384);
    enc_alloc(&e, 0, 16384, 100, 1, 0x1000);
    enc_alloc(&e, 0, 16384, 300, 1, 0x5001);
    enc_alloc(&e, 0, 16384, 7, 1, 0x9000);
    enc_alloc(&e, 0, 32768, 9, 1, 0x9001);
    enc_end(&e);
    enc_begin(&e, HTRI_FRAME_EVENTS, 2, 0);
    enc_alloc(&e, 0, 0, 64, 2, 0x5000);
    enc_free_ref(&e, 0, 16384, 1, 0);
    enc_free(&e, 0, 16384, 0x5000);
    enc_end(&e);
    m = analyze_buf(&e, NULL);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_U(m->frees, 2);
        CHECK_EQ_U(m->unknown_frees, 0);
        CHECK_EQ_U(m->live_blocks, 3);
        CHECK_EQ_U(m->live_bytes, 316);
        CHECK_EQ_U(m->peak_bytes, 471);
        CHECK_EQ_U(m->temporaries, 1);
        htri_model_free(m);
    }
    free(e.buf);
}

/* A block allocated by one thread and freed by another in the same tick, where the allocating
 * thread's head in that tick is a free of its own: both heads are frees, so the merge may put
 * the other thread's free first. It must still end the block (not count as a free of a block
 * from before the trace), in either file order. */
static void test_same_tick_free_first(void)
{
    for (int order = 0; order < 2; order++) {
        enc e;
        enc_file(&e, 1, 0);
        enc_begin(&e, HTRI_FRAME_META, 0, 0);
        enc_node(&e, 1, 0, 0x10);
        enc_end(&e);
        for (int f = 0; f < 2; f++) {
            if ((f == 0) == (order == 0)) {
                enc_begin(&e, HTRI_FRAME_EVENTS, 2, 16384);
                enc_free_ref(&e, 0, 16384, 1, 1);       /* thread 1's number 1, this tick */
                enc_end(&e);
            } else {
                enc_begin(&e, HTRI_FRAME_EVENTS, 1, 0);
                enc_alloc(&e, 0, 0, 64, 1, 0x1000);     /* number 0 */
                enc_free(&e, 0, 16384, 0x1000);         /* the tick starts with a free ... */
                enc_alloc(&e, 0, 16384, 100, 1, 0x2000);/* ... then number 1 */
                enc_end(&e);
            }
        }
        htri_model *m = analyze_buf(&e, NULL);
        CHECK(m != NULL);
        if (m) {
            CHECK_EQ_U(m->allocs, 2);
            CHECK_EQ_U(m->frees, 2);
            CHECK_EQ_U(m->unknown_frees, 0);
            CHECK_EQ_U(m->live_blocks, 0);
            CHECK_EQ_U(m->live_bytes, 0);
            CHECK_EQ_U(m->peak_bytes, 100);
            htri_model_free(m);
        }
        free(e.buf);
    }

    /* a free naming a number its thread never reaches (damage) counts as unknown at the end */
    enc e;
    enc_file(&e, 1, 0);
    enc_begin(&e, HTRI_FRAME_META, 0, 0);
    enc_node(&e, 1, 0, 0x10);
    enc_end(&e);
    enc_begin(&e, HTRI_FRAME_EVENTS, 1, 0);
    enc_alloc(&e, 0, 0, 64, 1, 0x1000);
    enc_end(&e);
    enc_begin(&e, HTRI_FRAME_EVENTS, 2, 16384);
    enc_free_ref(&e, 0, 16384, 1, 5);
    enc_end(&e);
    htri_model *m = analyze_buf(&e, NULL);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_U(m->frees, 1);
        CHECK_EQ_U(m->unknown_frees, 1);
        CHECK_EQ_U(m->live_blocks, 1);
        htri_model_free(m);
    }
    free(e.buf);
}

/* The model keeps the last complete leak check; a check without its LEAK_END, or whose group
 * count disagrees, is not a result. */
static void test_leak_checks(void)
{
    enc e;
    enc_file(&e, 1, 0);
    enc_begin(&e, HTRI_FRAME_META, 0, 0);
    enc_node(&e, 1, 0, 0x10);
    enc_leak_check(&e, 10, 3);                       /* complete: 2 groups */
    enc_leak_group(&e, HTRI_LEAK_DEFINITE, 1, 2, 64);
    enc_leak_group(&e, HTRI_LEAK_REACHABLE, 99, 1, 8);   /* unknown node: charged to root */
    enc_leak_end(&e, 11, 2);
    enc_leak_check(&e, 20, 1);                       /* says 2 groups, has 1 */
    enc_leak_group(&e, HTRI_LEAK_POSSIBLE, 1, 1, 16);
    enc_leak_end(&e, 21, 2);
    enc_leak_check(&e, 30, 1);                       /* never ends (cut) */
    enc_leak_group(&e, HTRI_LEAK_INDIRECT, 1, 1, 32);
    enc_end(&e);
    htri_model *m = analyze_buf(&e, NULL);
    CHECK(m != NULL);
    if (m) {
        CHECK(m->has_leak_check);
        CHECK_EQ_U(m->n_leak_checks, 1);
        CHECK_EQ_U(m->n_leak_checks_incomplete, 2);
        CHECK_EQ_U(m->leak_check.t, 10);
        CHECK_EQ_U(m->n_leak_groups, 2);
        CHECK_EQ_U(m->leak_groups[0].bytes, 64);
        CHECK_EQ_U(m->leak_groups[0].node, 1);
        CHECK_EQ_U(m->leak_groups[1].node, 0);
        htri_model_free(m);
    }
    free(e.buf);
}

/* --record=none: no events; totals from the END counters, in use from the leak check. */
static void test_leak_only(void)
{
    enc e;
    enc_file(&e, 1, HTRI_FILE_LEAK_ONLY);
    enc_begin(&e, HTRI_FRAME_META, 0, 0);
    enc_leak_check(&e, 10, 3);
    enc_leak_group(&e, HTRI_LEAK_DEFINITE, 0, 2, 64);
    enc_leak_group(&e, HTRI_LEAK_REACHABLE, 0, 1, 8);
    enc_leak_end(&e, 11, 2);
    enc_endrec(&e, 12, HTRI_END_EXIT, 0, 1 << 20, 40, 37, 5000);
    enc_end(&e);
    htri_model *m = analyze_buf(&e, NULL);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_U(m->allocs, 40);
        CHECK_EQ_U(m->frees, 37);
        CHECK_EQ_U(m->bytes_allocated, 5000);
        CHECK_EQ_U(m->live_blocks, 3);
        CHECK_EQ_U(m->live_bytes, 72);
        htri_model_free(m);
    }
    free(e.buf);
}

/* A node's pc belongs to the module mapped there when the node appeared: after a dlclose
 * and a new library at the same addresses, new nodes name the new one. */
static void test_module_lifetime(void)
{
    enc e;
    enc_file(&e, 1, 0);
    enc_begin(&e, HTRI_FRAME_META, 0, 0);
    enc_module(&e, 7, 0x10000, 0x10000, 0x20000, "", "/lib/liba.so", 0);
    enc_module(&e, 8, 0x0, 0x400000, 0x500000, "", "/bin/prog", 0);
    enc_node(&e, 1, 0, 0x401000);
    enc_node(&e, 2, 1, 0x11000);
    enc_tag(&e, HTRI_REC_MODULE_UNLOAD);
    enc_u(&e, 7);
    enc_u(&e, 5);
    enc_module(&e, 9, 0x10000, 0x10000, 0x20000, "", "/lib/libb.so", 6);
    enc_node(&e, 3, 1, 0x11000);
    enc_node(&e, 4, 1, 0x90000);      /* in no module */
    enc_end(&e);
    htri_model *m = analyze_buf(&e, NULL);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_U(m->n_modules, 3);
        CHECK_STR(m->modules[m->nodes[1].module].path, "/bin/prog");
        CHECK_STR(m->modules[m->nodes[2].module].path, "/lib/liba.so");
        CHECK_STR(m->modules[m->nodes[3].module].path, "/lib/libb.so");
        CHECK_EQ_U((uint64_t)(int64_t)m->nodes[4].module, (uint64_t)(int64_t)-1);
        CHECK(m->modules[0].unloaded);
        CHECK_EQ_U(m->modules[0].t_unload, 5);
        htri_model_free(m);
    }
    free(e.buf);
}

static void test_durations(void)
{
    uint64_t ns = 0;
    CHECK_EQ_U(htri_parse_duration("500us", &ns), 0);
    CHECK_EQ_U(ns, 500000);
    CHECK_EQ_U(htri_parse_duration("2ms", &ns), 0);
    CHECK_EQ_U(ns, 2000000);
    CHECK_EQ_U(htri_parse_duration("1s", &ns), 0);
    CHECK_EQ_U(ns, 1000000000);
    CHECK_EQ_U(htri_parse_duration("1.5ms", &ns), 0);
    CHECK_EQ_U(ns, 1500000);
    CHECK_EQ_U(htri_parse_duration("3", &ns), 0);
    CHECK_EQ_U(ns, 3000000);
    CHECK(htri_parse_duration("", &ns) < 0);
    CHECK(htri_parse_duration("-1ms", &ns) < 0);
    CHECK(htri_parse_duration("5 ms", &ns) < 0);
    CHECK(htri_parse_duration("5h", &ns) < 0);
    CHECK(htri_parse_duration("ms", &ns) < 0);
}

/* The reference for "who held memory at the peak": what the analysis did before it became
 * one pass. Replays the reader's records, finds the event that first reached the highest heap,
 * and charges the blocks live just after it to their stacks (a plain array, no cleverness). */
typedef struct peak_ref {
    struct { uint32_t tid; uint64_t no, size, node; } live[4096];
    size_t n_live;
    uint64_t heap, peak, n_events, peak_event, stop_at;
    uint64_t bytes[64], blocks[64];
} peak_ref;

static int peak_ref_rec(void *ctx, const htri_record *rec)
{
    peak_ref *p = ctx;
    if (rec->tag == HTRI_REC_ALLOC || rec->tag == HTRI_REC_INHERIT) {
        size_t i;
        for (i = 0; i < p->n_live; i++)
            if (p->live[i].tid == rec->ref_tid && p->live[i].no == rec->ref)
                break;
        if (i < p->n_live) {
            p->heap -= p->live[i].size;
        } else {
            if (p->n_live == 4096) abort();
            p->n_live++;
        }
        p->live[i].tid = rec->ref_tid;
        p->live[i].no = rec->ref;
        p->live[i].size = rec->size;
        p->live[i].node = rec->node < 64 ? rec->node : 0;
        p->heap += rec->size;
    } else if (rec->tag == HTRI_REC_FREE && rec->ref_known) {
        for (size_t i = 0; i < p->n_live; i++) {
            if (p->live[i].tid == rec->ref_tid && p->live[i].no == rec->ref) {
                p->heap -= p->live[i].size;
                p->live[i] = p->live[--p->n_live];
                break;
            }
        }
    } else if (rec->tag != HTRI_REC_FREE) {
        return 0;
    }
    p->n_events++;
    if (p->heap > p->peak) {
        p->peak = p->heap;
        p->peak_event = p->n_events;
    }
    if (p->stop_at && p->n_events == p->stop_at) {
        for (size_t i = 0; i < p->n_live; i++) {
            p->bytes[p->live[i].node] += p->live[i].size;
            p->blocks[p->live[i].node]++;
        }
        return 1;
    }
    return 0;
}

/* Who held memory at the peak, in one pass: random traces of three threads over 40 stacks
 * (frees of their own and of other threads' blocks, unknown frees, many successive peaks, a
 * forked child's INHERIT records, a reference allocated twice) give, stack by stack, what
 * the two-pass reference finds. */
static void test_peak_one_pass(void)
{
    for (uint64_t seed = 1; seed <= 40; seed++) {
        uint64_t x = seed * 0x9e3779b97f4a7c15ull;
        enc e;
        enc_file(&e, 1, seed % 4 == 0 ? HTRI_FILE_FORKED : 0);
        enc_begin(&e, HTRI_FRAME_META, 0, 0);
        for (uint64_t n = 1; n < 40; n++)
            enc_node(&e, n, n / 3, 0x1000 + n);
        enc_end(&e);
        uint64_t live[600];
        size_t n_live = 0;
        uint64_t t = 0, next_addr = 0x10000;
        for (int frame = 0; frame < 60; frame++) {
            uint32_t tid = 100 + (uint32_t)(frame % 3);
            enc_begin(&e, HTRI_FRAME_EVENTS, tid, t);
            for (int k = 0; k < 40; k++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                t += 1 + x % 3;
                /* phases of growth and shrinking make many successive peaks */
                int grow = (frame / 7) % 2 == 0 ? x % 5 != 0 : x % 5 == 0;
                if (frame == 0 && k < 10 && seed % 4 == 0) {
                    enc_inherit(&e, t, 10 + x % 50, x % 40, next_addr);
                    live[n_live++] = next_addr;
                    next_addr += 0x100;
                } else if (x % 53 == 0) {
                    enc_free_code(&e, HTRI_FFAM_FREE, t, 0, 0);          /* unknown block */
                } else if (x % 61 == 0 && n_live) {
                    /* damage: the thread's last number allocated twice */
                    enc_tag(&e, HTRI_REC_ALLOC);
                    enc_dt(&e, t);
                    enc_u(&e, 5);
                    enc_u(&e, x % 40);
                    (*e.next_no)--;
                    enc_block_at(&e, next_addr);
                    live[n_live++] = next_addr;
                    next_addr += 0x100;
                } else if ((grow || !n_live) && n_live < 600) {
                    enc_alloc(&e, (int)(x % HTRI_FAM_COUNT), t, 1 + (x >> 8) % 3000, x % 40, next_addr);
                    live[n_live++] = next_addr;
                    next_addr += 0x100;
                } else if (n_live) {
                    size_t j = (size_t)((x >> 16) % n_live);
                    enc_free(&e, (int)(x % HTRI_FFAM_COUNT), t, live[j]);
                    live[j] = live[--n_live];
                }
            }
            enc_end(&e);
        }
        htri_reader *r = NULL;
        CHECK_EQ_U(htri_reader_open_mem(e.buf, e.len, &r), 0);
        static peak_ref ref;
        memset(&ref, 0, sizeof ref);
        CHECK_EQ_U(htri_reader_replay(r, peak_ref_rec, &ref), 0);
        CHECK(ref.peak_event > 0);
        ref.stop_at = ref.peak_event;
        ref.n_live = 0;
        ref.heap = ref.peak = ref.n_events = 0;
        CHECK_EQ_U(htri_reader_replay(r, peak_ref_rec, &ref), 1);
        htri_model *m = NULL;
        char err[128];
        CHECK_EQ_U(htri_analyze(r, NULL, &m, err, sizeof err), 0);
        if (m) {
            CHECK_EQ_U(m->peak_bytes, ref.peak);
            uint64_t total = 0;
            for (size_t n = 0; n < 40 && n < m->n_nodes; n++) {
                CHECK_EQ_U(m->sites[n].peak_bytes, ref.bytes[n]);
                CHECK_EQ_U(m->sites[n].peak_blocks, ref.blocks[n]);
                total += m->sites[n].peak_bytes;
            }
            CHECK_EQ_U(total, m->peak_bytes);
            htri_model_free(m);
        }
        /* summaries ask for no peak sites */
        htri_analyze_opts o = { .skip_peak_sites = 1 };
        CHECK_EQ_U(htri_analyze(r, &o, &m, err, sizeof err), 0);
        if (m) {
            for (size_t n = 0; n < m->n_nodes; n++)
                CHECK_EQ_U(m->sites[n].peak_bytes, 0);
            CHECK_EQ_U(m->peak_bytes, ref.peak);
            htri_model_free(m);
        }
        htri_reader_close(r);
        free(e.buf);
    }
}

/* The live map's per-thread rings: blocks that outlive their ring slot (every 50th of
 * 100,000 kept past the ring's largest size), freed by another thread in scrambled order;
 * and a frame whose first number goes back (damage) re-allocating a freed number: nothing
 * is lost, found twice or left behind. */
static void test_live_rings(void)
{
    enc e;
    enc_file(&e, 1, 0);
    enc_begin(&e, HTRI_FRAME_META, 0, 0);
    enc_node(&e, 1, 0, 0x10);
    enc_node(&e, 2, 0, 0x20);
    enc_end(&e);
    enum { N = 100000, KEEP = 50 };
    static uint64_t kept[N / KEEP];
    size_t n_kept = 0;
    uint64_t t = 0, kept_bytes = 0;
    for (int frame = 0; frame < N / 1000; frame++) {
        enc_begin(&e, HTRI_FRAME_EVENTS, 1, t);
        for (int k = 0; k < 1000; k++, t++) {
            uint64_t i = (uint64_t)frame * 1000 + (uint64_t)k;
            enc_alloc(&e, 0, t, 1 + i % 100, 1 + i % 2, 0x100000 + i * 16);
            if (i % KEEP == 0) {
                kept[n_kept++] = 0x100000 + i * 16;
                kept_bytes += 1 + i % 100;
            } else {
                enc_free(&e, 0, t, 0x100000 + i * 16);
            }
        }
        enc_end(&e);
    }
    /* damage: thread 1's numbers go back to 1 (freed long ago) */
    enc_begin_no(&e, HTRI_FRAME_EVENTS, 1, t, 1);
    enc_alloc(&e, 0, t, 7, 2, 0x90000000);
    enc_end(&e);
    t += 16384;
    htri_model *m = analyze_buf(&e, NULL);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_U(m->allocs, N + 1);
        CHECK_EQ_U(m->unknown_frees, 0);
        CHECK_EQ_U(m->live_blocks, n_kept + 1);
        CHECK_EQ_U(m->live_bytes, kept_bytes + 7);
        CHECK_EQ_U(m->max_live_blocks, n_kept + 1);
        htri_model_free(m);
    }
    /* thread 2 frees everything, in scrambled order (7919 is prime to 2000) */
    enc_begin(&e, HTRI_FRAME_EVENTS, 2, t);
    for (size_t i = 0; i < n_kept; i++)
        enc_free(&e, 0, t, kept[(i * 7919) % n_kept]);
    enc_free(&e, 0, t, 0x90000000);
    enc_free(&e, 0, t, kept[0]);                 /* again: no longer live */
    enc_end(&e);
    m = analyze_buf(&e, NULL);
    CHECK(m != NULL);
    if (m) {
        CHECK_EQ_U(m->frees, N - n_kept + n_kept + 2);
        CHECK_EQ_U(m->unknown_frees, 1);
        CHECK_EQ_U(m->live_blocks, 0);
        CHECK_EQ_U(m->live_bytes, 0);
        CHECK_EQ_U(m->sites[1].live_bytes + m->sites[2].live_bytes, 0);
        htri_model_free(m);
    }
    free(e.buf);
}

int main(void)
{
    test_sample();
    test_fork();
    test_peak_exact();
    test_peak_one_pass();
    test_live_rings();
    test_same_tick();
    test_same_tick_free_first();
    test_leak_checks();
    test_leak_only();
    test_module_lifetime();
    test_durations();
    return CHECK_DONE();
}
