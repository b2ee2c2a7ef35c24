/* The run summary without the events: the HEAP_TOTALS record round trip, the summary-only
 * analysis that takes its heap figures from HEAP_TOTALS and END without decompressing a
 * single EVENTS frame (even damaged ones), and every case where it must replay instead. */
#include "check.h"
#include "../cli/trace_enc.h"
#include "analyze/analyze.h"
#include "trace/totals_record.h"

/* The figures a replay of enc_sample's events gives (test_analyze.c checks them there). */
static const htri_totals_rec sample_totals = {
    .t = 5000, .flags = HTRI_TOTALS_THREADS, .live_bytes = 100, .live_blocks = 2,
    .peak_bytes = 1600, .peak_blocks = 2, .peak_t = 2500, .mmap_count = 1,
    .mmap_bytes = 1 << 20, .mmap_live_bytes = 1 << 19, .mmap_peak_bytes = 1 << 20,
};

enum {
    S_TOTALS = 1 << 0,        /* HEAP_TOTALS before the END */
    S_END = 1 << 1,           /* the END record */
    S_DROPPED = 1 << 2,       /* END says events were dropped */
    S_LATE_EVENTS = 1 << 3,   /* an EVENTS frame after the END (exec failed, then killed) */
    S_SECOND_END = 1 << 4,    /* a later END without HEAP_TOTALS */
};

static void enc_totals(enc *e, const htri_totals_rec *t)
{
    uint8_t rec[HTRI_TOTALS_REC_MAX];
    size_t n = htri_totals_rec_encode(t, rec);
    enc_raw_record(e, rec, n);
    enc_meta_t(e, t->t);
}

/* enc_sample's END, with `dropped` events. */
static void enc_end_dropped(enc *e, uint64_t t, uint64_t dropped)
{
    enc_tag(e, HTRI_REC_END);
    enc_u(e, t); enc_u(e, HTRI_END_EXIT); enc_u(e, 0); enc_u(e, 4 << 20); enc_u(e, dropped);
    enc_u(e, 5); enc_u(e, 3); enc_u(e, 2650);
    enc_meta_t(e, t);
}

/* enc_sample's trace (same events, same META), ending as `shape` says, with totals `t`. */
static void enc_shaped(enc *e, int shape, const htri_totals_rec *t)
{
    enc_file(e, 4242, 0);
    enc_begin(e, HTRI_FRAME_META, 0, 0);
    enc_info(e, "exe", "/usr/bin/sample");
    enc_module(e, 1, 0x400000, 0x400000, 0x500000, "\x12\x34", "/usr/bin/sample", 0);
    enc_node(e, 1, 0, 0x401000);
    enc_node(e, 2, 1, 0x402000);
    enc_node(e, 3, 1, 0x403000);
    enc_node(e, 4, 1, 0x404000);
    enc_thread(e, 100, 0, "sample");
    enc_thread(e, 101, 500, "worker");
    enc_rss(e, 100, 1 << 20);
    enc_end(e);
    enc_begin(e, HTRI_FRAME_EVENTS, 100, 1000);
    enc_alloc(e, HTRI_FAM_MALLOC, 1000, 100, 2, 0x10000);
    enc_alloc(e, HTRI_FAM_MALLOC, 1100, 50, 3, 0x20000);
    enc_free(e, HTRI_FFAM_FREE, 1200, 0x20000);
    enc_alloc(e, HTRI_FAM_NEW, 2000, 1000, 3, 0x30000);
    enc_free(e, HTRI_FFAM_REALLOC, 2500, 0x30000);
    enc_alloc(e, HTRI_FAM_REALLOC, 2500, 1500, 3, 0x40000);
    enc_end(e);
    enc_begin(e, HTRI_FRAME_EVENTS, 101, 2200);
    enc_mmap(e, 2200, 1 << 20, 4, 0x7f0000000000);
    enc_alloc(e, HTRI_FAM_CALLOC, 2600, 0, 4, 0x50000);
    enc_free(e, HTRI_FFAM_FREE, 3500, 0x40000);
    enc_munmap(e, 3600, 1 << 19, 0x7f0000000000);
    enc_end(e);
    enc_begin(e, HTRI_FRAME_META, 0, 4000);
    enc_rss(e, 4000, 3 << 20);
    enc_message(e, 4000, HTRI_MSG_WARNING, "sample warning");
    if (shape & S_TOTALS)
        enc_totals(e, t);
    if (shape & S_END)
        enc_end_dropped(e, 5000, shape & S_DROPPED ? 1 : 0);
    enc_end(e);
    if (shape & S_LATE_EVENTS) {
        enc_begin(e, HTRI_FRAME_EVENTS, 100, 6000);
        enc_alloc(e, HTRI_FAM_MALLOC, 6000, 7, 2, 0x60000);
        enc_end(e);
    }
    if (shape & S_SECOND_END) {
        enc_begin(e, HTRI_FRAME_META, 0, 7000);
        enc_end_dropped(e, 7000, 0);
        enc_end(e);
    }
}

/* Analyses buf; *inflated: EVENTS frames the reader decompressed. Returns the model or NULL
 * (then *rc says why). */
static htri_model *analyze_mem(const uint8_t *buf, size_t len, int summary, uint64_t *inflated,
                               int *rc)
{
    htri_reader *r = NULL;
    htri_model *m = NULL;
    htri_analyze_opts o = { .skip_peak_sites = 1, .summary_only = summary };
    *rc = htri_reader_open_mem(buf, len, &r);
    if (*rc != 0)
        return NULL;
    *rc = htri_analyze(r, &o, &m, NULL, 0);
    *inflated = htri_reader_events_inflated(r);
    htri_reader_close(r);
    return *rc == 0 ? m : NULL;
}

/* Every field the run summary prints, equal in both models. */
static void check_same_summary(const htri_model *a, const htri_model *b)
{
    CHECK_EQ_U(a->live_bytes, b->live_bytes);
    CHECK_EQ_U(a->live_blocks, b->live_blocks);
    CHECK_EQ_U(a->allocs, b->allocs);
    CHECK_EQ_U(a->frees, b->frees);
    CHECK_EQ_U(a->bytes_allocated, b->bytes_allocated);
    CHECK_EQ_U(a->peak_bytes, b->peak_bytes);
    CHECK_EQ_U(a->peak_blocks, b->peak_blocks);
    CHECK_EQ_U(a->peak_t, b->peak_t);
    CHECK_EQ_U(a->rss_peak, b->rss_peak);
    CHECK_EQ_U(a->end_peak_rss, b->end_peak_rss);
    CHECK_EQ_U(a->mmap_count, b->mmap_count);
    CHECK_EQ_U(a->mmap_bytes, b->mmap_bytes);
    CHECK_EQ_U(a->mmap_live_bytes, b->mmap_live_bytes);
    CHECK_EQ_U(a->mmap_peak_bytes, b->mmap_peak_bytes);
    CHECK_EQ_U(a->n_messages, b->n_messages);
    CHECK_EQ_U(a->n_modules, b->n_modules);
    CHECK_EQ_U(a->n_nodes, b->n_nodes);
    CHECK_EQ_U(a->has_end, b->has_end);
    CHECK_EQ_U(a->end_how, b->end_how);
    CHECK_EQ_U(a->duration_ns, b->duration_ns);
}

static void test_record_round_trip(void)
{
    htri_totals_rec in = { 123456789, HTRI_TOTALS_THREADS, 1000, 10, 5000, 50, 99999, 3,
                           3u << 20, 1u << 20, 2u << 20 }, out;
    uint8_t rec[HTRI_TOTALS_REC_MAX + 16];
    size_t n = htri_totals_rec_encode(&in, rec);
    CHECK(n <= HTRI_TOTALS_REC_MAX);
    CHECK_EQ_U(rec[0], HTRI_REC_TOTALS);
    const uint8_t *p = rec, *body = NULL;
    uint8_t tag = 0;
    size_t len = 0;
    CHECK(htri_error_rec_split(&p, rec + n, &tag, &body, &len) == 0);
    CHECK(p == rec + n);
    CHECK(htri_totals_rec_decode(body, len, &out) == 0);
    CHECK_EQ_U(out.t, in.t);
    CHECK_EQ_U(out.flags, in.flags);
    CHECK_EQ_U(out.live_bytes, in.live_bytes);
    CHECK_EQ_U(out.live_blocks, in.live_blocks);
    CHECK_EQ_U(out.peak_bytes, in.peak_bytes);
    CHECK_EQ_U(out.peak_blocks, in.peak_blocks);
    CHECK_EQ_U(out.peak_t, in.peak_t);
    CHECK_EQ_U(out.mmap_count, in.mmap_count);
    CHECK_EQ_U(out.mmap_bytes, in.mmap_bytes);
    CHECK_EQ_U(out.mmap_live_bytes, in.mmap_live_bytes);
    CHECK_EQ_U(out.mmap_peak_bytes, in.mmap_peak_bytes);
    /* every shorter body is refused */
    for (size_t k = 0; k < len; k++)
        CHECK(htri_totals_rec_decode(body, k, &out) == -1);
    /* a field a newer writer appends is ignored */
    uint8_t longer[HTRI_TOTALS_REC_MAX + 16];
    memcpy(longer, body, len);
    longer[len] = 0x2a;
    CHECK(htri_totals_rec_decode(longer, len + 1, &out) == 0);
    CHECK_EQ_U(out.mmap_peak_bytes, 2u << 20);
    /* figures that cannot hold together are refused */
    htri_totals_rec bad[4] = { in, in, in, in };
    bad[0].live_bytes = bad[0].peak_bytes + 1;
    bad[1].peak_t = bad[1].t + 1;
    bad[2].mmap_live_bytes = bad[2].mmap_peak_bytes + 1;
    bad[3].mmap_peak_bytes = bad[3].mmap_bytes + 1;
    for (int i = 0; i < 4; i++) {
        n = htri_totals_rec_encode(&bad[i], rec);
        p = rec;
        CHECK(htri_error_rec_split(&p, rec + n, &tag, &body, &len) == 0);
        CHECK(htri_totals_rec_decode(body, len, &out) == -1);
    }
}

/* A clean end: the summary comes from the totals, no EVENTS frame decompressed, and it is the
 * summary a full replay gives. */
static void test_from_totals(void)
{
    enc e;
    enc_shaped(&e, S_TOTALS | S_END, &sample_totals);
    uint64_t inflated_sum = 99, inflated_full = 0;
    int rc;
    htri_model *s = analyze_mem(e.buf, e.len, 1, &inflated_sum, &rc);
    htri_model *f = analyze_mem(e.buf, e.len, 0, &inflated_full, &rc);
    CHECK(s != NULL && f != NULL);
    if (s && f) {
        CHECK(s->from_totals);
        CHECK(!f->from_totals);
        CHECK(s->has_totals && f->has_totals);
        CHECK_EQ_U(inflated_sum, 0);
        CHECK_EQ_U(inflated_full, 2);
        check_same_summary(s, f);
        CHECK_EQ_U(s->peak_bytes, 1600);
        CHECK_EQ_U(s->live_blocks, 2);
        CHECK_EQ_U(s->n_events, 0);
    }
    htri_model_free(s);
    htri_model_free(f);
    /* a cut trace (its last frame, the END's, incomplete) is replayed */
    s = analyze_mem(e.buf, e.len - 3, 1, &inflated_sum, &rc);
    CHECK(s != NULL && !s->from_totals && s->cut.status != 0 && inflated_sum == 2);
    htri_model_free(s);

    /* EVENTS frames damaged inside (headers intact): the replay refuses the trace, the summary
     * never reads them */
    for (size_t off = HTRI_FILE_HEADER_SIZE, ix = 0; off < e.len; ix++) {
        htri_frame_header h;
        memset(&h, 0, sizeof h);
        CHECK(htri_frame_header_decode(e.buf + off, &h) == 0);
        if (h.kind == HTRI_FRAME_EVENTS)
            for (uint32_t k = 0; k < h.comp_size; k++)
                e.buf[off + HTRI_FRAME_HEADER_SIZE + k] ^= 0x5a;
        off += HTRI_FRAME_HEADER_SIZE + h.comp_size;
    }
    s = analyze_mem(e.buf, e.len, 1, &inflated_sum, &rc);
    CHECK(s != NULL);
    if (s) {
        CHECK(s->from_totals);
        CHECK_EQ_U(s->peak_bytes, 1600);
        CHECK_EQ_U(s->peak_t, 2500);
        CHECK_EQ_U(s->mmap_live_bytes, 1 << 19);
        CHECK_EQ_U(s->allocs, 5);
        CHECK_EQ_U(inflated_sum, 0);
    }
    htri_model_free(s);
    f = analyze_mem(e.buf, e.len, 0, &inflated_full, &rc);
    CHECK(f == NULL && rc == HTRI_E_CORRUPT);
    htri_model_free(f);
    free(e.buf);
}

/* Every trace the totals cannot stand for is replayed: the figures are the events'. */
static void test_fallbacks(void)
{
    htri_totals_rec inexact = sample_totals, wrong = sample_totals;
    inexact.flags |= HTRI_TOTALS_INEXACT;
    wrong.peak_bytes = 7777;      /* would show if the totals were (wrongly) used */
    wrong.live_bytes = 77;
    struct { int shape; const htri_totals_rec *t; const char *what; } cases[] = {
        { S_END, &sample_totals, "no HEAP_TOTALS (an older agent, or it stopped)" },
        { S_TOTALS, &wrong, "no END (killed: SIGKILL)" },
        { S_TOTALS | S_END, &inexact, "totals the agent marks inexact" },
        { S_TOTALS | S_END | S_DROPPED, &wrong, "events dropped" },
        { S_TOTALS | S_END | S_LATE_EVENTS, &wrong, "events after the END" },
        { S_TOTALS | S_END | S_SECOND_END, &wrong, "a later END without totals" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enc e;
        enc_shaped(&e, cases[i].shape, cases[i].t);
        uint64_t inflated_sum = 0, inflated_full = 0;
        int rc;
        htri_model *s = analyze_mem(e.buf, e.len, 1, &inflated_sum, &rc);
        htri_model *f = analyze_mem(e.buf, e.len, 0, &inflated_full, &rc);
        CHECK(s != NULL && f != NULL);
        if (s && f) {
            if (s->from_totals || inflated_sum == 0)
                fprintf(stderr, "case %zu (%s): the totals were used\n", i, cases[i].what);
            CHECK(!s->from_totals);
            CHECK(inflated_sum >= 2);
            check_same_summary(s, f);
            CHECK_EQ_U(s->peak_bytes, 1600);
            CHECK_EQ_U(s->live_bytes, (cases[i].shape & S_LATE_EVENTS) ? 107 : 100);
        }
        htri_model_free(s);
        htri_model_free(f);
        free(e.buf);
    }
}

int main(void)
{
    test_record_round_trip();
    test_from_totals();
    test_fallbacks();
    return CHECK_DONE();
}
