/* Reader tests on hand-made traces: valid, cut at every byte, foreign, damaged headers, bad
 * zstd, runaway varints, and the timestamp merge of overlapping thread frames. */
#include <unistd.h>

#include "check.h"
#include "../cli/trace_enc.h"
#include "analyze/analyze.h"
#include "trace/reader.h"

typedef struct seen {
    size_t n, n_events, n_nodes;
    uint64_t last_t;
    int out_of_order;
    uint8_t tags[64];
    uint64_t addrs[64], times[64];
} seen;

static int on_rec(void *ctx, const htri_record *rec)
{
    seen *s = ctx;
    if (rec->tag >= HTRI_REC_ALLOC) {
        if (rec->t < s->last_t)
            s->out_of_order = 1;
        s->last_t = rec->t;
        if (s->n_events < 64) {
            s->tags[s->n_events] = rec->tag;
            /* heap blocks are named (tid << 32 | number), mappings by address */
            s->addrs[s->n_events] = rec->tag == HTRI_REC_MMAP || rec->tag == HTRI_REC_MUNMAP
                                        ? rec->addr : (uint64_t)rec->ref_tid << 32 | rec->ref;
            s->times[s->n_events] = rec->t;
        }
        s->n_events++;
    }
    if (rec->tag == HTRI_REC_NODES)
        s->n_nodes++;
    s->n++;
    return 0;
}

static void test_valid(void)
{
    enc e;
    enc_sample(&e);
    htri_reader *r = NULL;
    CHECK_EQ_U(htri_reader_open_mem(e.buf, e.len, &r), 0);
    if (!r)
        return;
    CHECK_EQ_U(htri_reader_header(r)->pid, 4242);
    CHECK_EQ_U(htri_reader_n_frames(r), 4);
    CHECK_EQ_U(htri_reader_cut_info(r)->status, 0);
    CHECK_EQ_U(htri_reader_t_end(r), 5000);
    seen s = { 0 };
    CHECK_EQ_U(htri_reader_replay(r, on_rec, &s), 0);
    CHECK_EQ_U(s.n_events, 10);
    CHECK_EQ_U(s.n_nodes, 4);
    CHECK(!s.out_of_order);
    /* the two thread frames overlap in time, so both were open at once */
    CHECK_EQ_U(htri_reader_max_open(r), 2);
    /* replay is repeatable */
    seen s2 = { 0 };
    CHECK_EQ_U(htri_reader_replay(r, on_rec, &s2), 0);
    CHECK_EQ_U(s2.n, s.n);
    htri_reader_close(r);
    free(e.buf);
}

/* Cutting the file anywhere gives a readable prefix, never a crash or an error. */
static void test_truncated_everywhere(void)
{
    enc e;
    enc_sample(&e);
    size_t boundaries = 0;
    for (size_t n = 0; n < e.len; n++) {
        htri_reader *r = NULL;
        uint8_t *copy = malloc(n ? n : 1);   /* exact-size copy: ASan sees any overread */
        memcpy(copy, e.buf, n);
        int rc = htri_reader_open_mem(copy, n, &r);
        if (n < HTRI_FILE_HEADER_SIZE) {
            CHECK(rc == HTRI_E_TRUNCATED || (n < 8 && rc == HTRI_E_FOREIGN));
            CHECK(r == NULL);
            free(copy);
            continue;
        }
        CHECK_EQ_U(rc, 0);
        if (r) {
            const htri_reader_cut *cut = htri_reader_cut_info(r);
            if (cut->status == 0)
                boundaries++;
            else {
                CHECK_EQ_U((uint64_t)cut->status, (uint64_t)HTRI_E_TRUNCATED);
                CHECK(cut->offset < n);
            }
            seen s = { 0 };
            CHECK_EQ_U(htri_reader_replay(r, on_rec, &s), 0);
            htri_model *m = NULL;
            CHECK_EQ_U(htri_analyze(r, NULL, &m, NULL, 0), 0);
            htri_model_free(m);
            htri_reader_close(r);
        }
        free(copy);
    }
    /* cuts that land between frames leave a complete-looking file: header + 3 frame ends */
    CHECK_EQ_U(boundaries, 4);
    free(e.buf);
}

static void test_foreign_and_headers(void)
{
    enc e;
    enc_sample(&e);
    htri_reader *r = NULL;
    uint8_t *b = malloc(e.len);

    memcpy(b, e.buf, e.len);
    b[1] = 'X';
    CHECK_EQ_U((uint64_t)htri_reader_open_mem(b, e.len, &r), (uint64_t)HTRI_E_FOREIGN);

    memcpy(b, e.buf, e.len);
    b[20] ^= 1;                               /* ppid: caught by the header checksum */
    CHECK_EQ_U((uint64_t)htri_reader_open_mem(b, e.len, &r), (uint64_t)HTRI_E_CORRUPT);

    memcpy(b, e.buf, e.len);
    htri_put_u16(b + 8, HTRI_TRACE_VERSION + 1);
    htri_put_u32(b + 60, htri_fnv1a32(b, 60));
    CHECK_EQ_U((uint64_t)htri_reader_open_mem(b, e.len, &r), (uint64_t)HTRI_E_VERSION);

    memcpy(b, e.buf, e.len);                  /* version 1 named blocks by address */
    htri_put_u16(b + 8, 1);
    htri_put_u32(b + 60, htri_fnv1a32(b, 60));
    CHECK_EQ_U((uint64_t)htri_reader_open_mem(b, e.len, &r), (uint64_t)HTRI_E_OLD_VERSION);

    const char *text = "hello, this is a text file and not a trace at all......................";
    CHECK_EQ_U((uint64_t)htri_reader_open_mem(text, strlen(text), &r), (uint64_t)HTRI_E_FOREIGN);
    CHECK_EQ_U((uint64_t)htri_reader_open_mem("abc", 3, &r), (uint64_t)HTRI_E_FOREIGN);
    CHECK_EQ_U((uint64_t)htri_reader_open_mem("", 0, &r), (uint64_t)HTRI_E_TRUNCATED);
    CHECK_EQ_U((uint64_t)htri_reader_open("/nonexistent/x.htr", &r), (uint64_t)-ENOENT);

    /* a damaged second frame header: the index stops there and says so */
    memcpy(b, e.buf, e.len);
    uint32_t comp0 = htri_get_u32(b + 64 + 20);
    uint64_t off1 = 64 + 48 + comp0;
    b[off1 + 12] ^= 0x40;                     /* n_records of frame 1 */
    CHECK_EQ_U(htri_reader_open_mem(b, e.len, &r), 0);
    if (r) {
        CHECK_EQ_U((uint64_t)htri_reader_cut_info(r)->status, (uint64_t)HTRI_E_CORRUPT);
        CHECK_EQ_U(htri_reader_cut_info(r)->offset, off1);
        CHECK_EQ_U(htri_reader_n_frames(r), 1);
        htri_reader_close(r);
    }

    /* damaged compressed data: zstd's content checksum (or its parser) refuses it */
    memcpy(b, e.buf, e.len);
    b[64 + 48 + comp0 / 2] ^= 0x55;
    CHECK_EQ_U(htri_reader_open_mem(b, e.len, &r), 0);
    if (r) {
        seen s = { 0 };
        CHECK_EQ_U((uint64_t)htri_reader_replay(r, on_rec, &s), (uint64_t)HTRI_E_CORRUPT);
        CHECK(strstr(htri_reader_error(r), "frame 0 at byte 64") != NULL);
        htri_reader_close(r);
    }
    free(b);
    free(e.buf);
}

static int replay_one_frame(void (*fill)(enc *e), int expect)
{
    enc e;
    enc_file(&e, 1, 0);
    fill(&e);
    htri_reader *r = NULL;
    int rc = htri_reader_open_mem(e.buf, e.len, &r);
    CHECK_EQ_U(rc, 0);
    if (r) {
        seen s = { 0 };
        rc = htri_reader_replay(r, on_rec, &s);
        CHECK_EQ_U((uint64_t)rc, (uint64_t)expect);
        htri_model *m = NULL;
        CHECK_EQ_U((uint64_t)htri_analyze(r, NULL, &m, NULL, 0), (uint64_t)expect);
        htri_model_free(m);
        htri_reader_close(r);
    }
    free(e.buf);
    return rc;
}

static void fill_long_varint(enc *e)
{
    enc_begin(e, HTRI_FRAME_EVENTS, 1, 0);
    enc_tag(e, HTRI_REC_ALLOC);
    for (int i = 0; i < 11; i++)             /* 11 continuation bytes: longer than 64 bits */
        e->raw[e->raw_len++] = 0x80;
    e->raw[e->raw_len++] = 0x01;
    enc_u(e, 1); enc_u(e, 0); enc_u(e, 2);
    enc_end(e);
}
static void fill_cut_record(enc *e)
{
    enc_begin(e, HTRI_FRAME_EVENTS, 1, 0);
    enc_tag(e, HTRI_REC_ALLOC);
    enc_u(e, 0); enc_u(e, 16);               /* node and address missing */
    enc_end(e);
}
static void fill_long_string(enc *e)
{
    enc_begin(e, HTRI_FRAME_META, 0, 0);
    enc_tag(e, HTRI_REC_INFO);
    enc_u(e, 1000);                          /* a key longer than the frame */
    enc_u(e, 0);
    enc_end(e);
}
static void fill_bad_tag(enc *e)
{
    enc_begin(e, HTRI_FRAME_EVENTS, 1, 0);
    enc_tag(e, 0x90);
    enc_end(e);
}
static void fill_time_past_last(enc *e)
{
    enc_begin(e, HTRI_FRAME_EVENTS, 1, 0);
    enc_alloc(e, 0, 100, 8, 0, 0x1000);
    e->t_last = 50;                          /* header lies about the last time */
    enc_end(e);
}
static void fill_node_bad_parent(enc *e)
{
    enc_begin(e, HTRI_FRAME_META, 0, 0);
    enc_tag(e, HTRI_REC_NODES);
    enc_u(e, 1); enc_u(e, 1); enc_u(e, 2); enc_u(e, 0x1234);   /* parent -1 */
    enc_end(e);
}
static void fill_record_count(enc *e)
{
    enc_begin(e, HTRI_FRAME_EVENTS, 1, 0);
    enc_alloc(e, 0, 0, 8, 0, 0x1000);
    e->n_rec = 2;
    enc_end(e);
}
static void fill_future_records(enc *e)
{
    enc_begin(e, HTRI_FRAME_META, 0, 0);
    enc_info(e, "k", "v");
    enc_tag(e, 0x5f);                        /* a leak record this reader does not know */
    enc_u(e, 3);
    enc_u(e, 1); enc_u(e, 2); enc_u(e, 3);   /* its body: skipped by its length */
    enc_info(e, "k2", "v2");
    enc_end(e);
}

static void fill_future_cut(enc *e)
{
    enc_begin(e, HTRI_FRAME_META, 0, 0);
    enc_tag(e, 0x60);
    enc_u(e, 30);                            /* body longer than the frame */
    enc_u(e, 1);
    enc_end(e);
}

static void test_bad_records(void)
{
    replay_one_frame(fill_long_varint, HTRI_E_CORRUPT);
    replay_one_frame(fill_cut_record, HTRI_E_CORRUPT);
    replay_one_frame(fill_long_string, HTRI_E_CORRUPT);
    replay_one_frame(fill_bad_tag, HTRI_E_CORRUPT);
    replay_one_frame(fill_time_past_last, HTRI_E_CORRUPT);
    replay_one_frame(fill_node_bad_parent, HTRI_E_CORRUPT);
    replay_one_frame(fill_record_count, HTRI_E_CORRUPT);
    replay_one_frame(fill_future_records, 0);
    replay_one_frame(fill_future_cut, HTRI_E_CORRUPT);
}

/* Three threads whose frames overlap; at equal (quantised) times heap allocations come
 * before heap frees across threads, whatever the file order (test_analyze checks that the
 * analysis then pairs each free with the right block). */
static void test_merge(void)
{
    enc e;
    enc_file(&e, 1, 0);
    enc_begin(&e, HTRI_FRAME_EVENTS, 3, 10);       /* written first, allocs at t=10 */
    enc_alloc(&e, 0, 10, 8, 0, 0xA000);
    enc_alloc(&e, 0, 40, 8, 0, 0xB000);
    enc_end(&e);
    enc_begin(&e, HTRI_FRAME_EVENTS, 1, 5);        /* earliest, written second */
    enc_alloc(&e, 0, 5, 8, 0, 0xA000 - 0x100);
    enc_free(&e, 0, 30, 0xB000 - 0x100);
    enc_alloc(&e, 0, 50, 8, 0, 0xC000);
    enc_end(&e);
    enc_begin(&e, HTRI_FRAME_EVENTS, 2, 10);       /* frees 0xA000 at t=10 */
    enc_free(&e, 0, 10, 0xA000);
    enc_end(&e);
    enc_begin(&e, HTRI_FRAME_EVENTS, 1, 100);      /* thread 1 again, later: no overlap */
    enc_alloc(&e, 0, 100, 8, 0, 0xD000);
    enc_end(&e);
    htri_reader *r = NULL;
    CHECK_EQ_U(htri_reader_open_mem(e.buf, e.len, &r), 0);
    if (r) {
        seen s = { 0 };
        CHECK_EQ_U(htri_reader_replay(r, on_rec, &s), 0);
        CHECK_EQ_U(s.n_events, 7);
        uint64_t want_t[] = { 5, 10, 10, 30, 40, 50, 100 };
        uint8_t want_tag[] = { HTRI_REC_ALLOC, HTRI_REC_ALLOC, HTRI_REC_FREE, HTRI_REC_FREE,
                               HTRI_REC_ALLOC, HTRI_REC_ALLOC, HTRI_REC_ALLOC };
        for (int i = 0; i < 7; i++) {
            CHECK_EQ_U(s.times[i], want_t[i]);
            CHECK_EQ_U(s.tags[i], want_tag[i]);
        }
        CHECK_EQ_U(s.addrs[1], 3ull << 32 | 0);     /* thread 3's block 0 ... */
        CHECK_EQ_U(s.addrs[2], 3ull << 32 | 0);     /* ... freed by thread 2 in its tick */
        CHECK_EQ_U(s.addrs[5], 1ull << 32 | 1);     /* thread 1 numbers on: 0, then 1 */
        CHECK_EQ_U(s.addrs[6], 1ull << 32 | 2);     /* also in its next frame */
        CHECK_EQ_U(htri_reader_max_open(r), 3);
        htri_reader_close(r);
    }
    free(e.buf);
}

/* realloc is one free and one allocation, as memcheck counts it; realloc(p,0) a free. */
static void test_realloc_counting(void)
{
    enc e;
    enc_file(&e, 1, 0);
    enc_begin(&e, HTRI_FRAME_EVENTS, 1, 0);
    enc_alloc(&e, HTRI_FAM_MALLOC, 0, 10, 0, 0x1000);
    enc_free(&e, HTRI_FFAM_REALLOC, 1, 0x1000);
    enc_alloc(&e, HTRI_FAM_REALLOC, 1, 20, 0, 0x2000);
    enc_free(&e, HTRI_FFAM_REALLOC, 2, 0x2000);     /* realloc(p, 0) */
    enc_end(&e);
    htri_reader *r = NULL;
    CHECK_EQ_U(htri_reader_open_mem(e.buf, e.len, &r), 0);
    htri_model *m = NULL;
    if (r && htri_analyze(r, NULL, &m, NULL, 0) == 0) {
        CHECK_EQ_U(m->allocs, 2);
        CHECK_EQ_U(m->frees, 2);
        CHECK_EQ_U(m->bytes_allocated, 30);
        CHECK_EQ_U(m->live_blocks, 0);
        CHECK_EQ_U(m->live_bytes, 0);
        CHECK_EQ_U(m->peak_bytes, 20);
    } else {
        CHECK(0);
    }
    htri_model_free(m);
    htri_reader_close(r);
    free(e.buf);
}

static void test_file_io(void)
{
    enc e;
    enc_sample(&e);
    char path[] = "/tmp/htr-test-reader-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ_U(enc_write(&e, path, e.len - 3), 0);
    htri_reader *r = NULL;
    CHECK_EQ_U(htri_reader_open(path, &r), 0);
    if (r) {
        CHECK_EQ_U((uint64_t)htri_reader_cut_info(r)->status, (uint64_t)HTRI_E_TRUNCATED);
        CHECK_EQ_U(htri_reader_n_frames(r), 3);
        seen s = { 0 };
        CHECK_EQ_U(htri_reader_replay(r, on_rec, &s), 0);
        CHECK_EQ_U(s.n_events, 10);
        htri_reader_close(r);
    }
    CHECK_EQ_U((uint64_t)htri_reader_open("/tmp", &r), (uint64_t)-EISDIR);

    /* a crash after the file system grew the file but before the data landed: zeros */
    uint8_t *z = calloc(1, e.len + 5000);
    memcpy(z, e.buf, e.len);
    CHECK_EQ_U(htri_reader_open_mem(z, e.len + 5000, &r), 0);
    if (r) {
        CHECK_EQ_U((uint64_t)htri_reader_cut_info(r)->status, (uint64_t)HTRI_E_TRUNCATED);
        CHECK_EQ_U(htri_reader_cut_info(r)->offset, e.len);
        CHECK_EQ_U(htri_reader_n_frames(r), 4);
        htri_reader_close(r);
    }
    z[e.len + 4000] = 1;      /* not all zeros: damage */
    CHECK_EQ_U(htri_reader_open_mem(z, e.len + 5000, &r), 0);
    if (r) {
        CHECK_EQ_U((uint64_t)htri_reader_cut_info(r)->status, (uint64_t)HTRI_E_CORRUPT);
        htri_reader_close(r);
    }
    free(z);
    unlink(path);
    free(e.buf);
}

int main(void)
{
    test_valid();
    test_truncated_everywhere();
    test_foreign_and_headers();
    test_bad_records();
    test_merge();
    test_realloc_counting();
    test_file_io();
    return CHECK_DONE();
}
