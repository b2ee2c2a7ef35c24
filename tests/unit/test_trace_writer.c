/* Unit tests of the trace writer (src/trace/writer.c): write a trace with every META record
 * and every EVENTS record to a temp file, then decode it here independently (format.h +
 * zstd's decompressor) and check every field; plus the disk-full and oversize error paths. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "base/varint.h"
#include "check.h"
#include "trace/format.h"
#include "trace/writer.h"

static uint64_t get(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = ~0ull;
    if (htri_varint_get(p, end, &v) != 0)
        check_failures++;
    return v;
}

static int get_str(const uint8_t **p, const uint8_t *end, const char *want)
{
    uint64_t len = get(p, end);
    int ok = len == strlen(want) && (uint64_t)(end - *p) >= len && memcmp(*p, want, len) == 0;
    *p += len;
    return ok;
}

/* Reads frame `k` of the file into a fresh buffer (raw records). */
static uint8_t *read_frame(FILE *f, htri_frame_header *fh)
{
    uint8_t hb[HTRI_FRAME_HEADER_SIZE];
    if (fread(hb, 1, sizeof hb, f) != sizeof hb || htri_frame_header_decode(hb, fh) != 0)
        return NULL;
    uint8_t *comp = malloc(fh->comp_size), *raw = malloc(fh->raw_size + 1);
    if (fread(comp, 1, fh->comp_size, f) != fh->comp_size ||
        ZSTD_decompress(raw, fh->raw_size, comp, fh->comp_size) != fh->raw_size) {
        free(comp);
        free(raw);
        return NULL;
    }
    /* The writer promises the content checksum flag (frame header descriptor bit 2). */
    CHECK((comp[4] & 0x04) != 0);
    free(comp);
    return raw;
}

/* Records r[0..n) of thread 7 encoded by one encoder state from `from`, with a frame prefix. */
static size_t join_encode(uint8_t *out, int from, int n, uint64_t *next_no)
{
    static const uint64_t t[] = { 0, 16384, 16384, 49152, 65536, 65536, 81920, 98304, 131072 };
    htri_evstate s;
    uint8_t *p = htri_ev_put_start(out, &s, 7, t[from], *next_no);
    for (int i = from; i < from + n; i++) {
        switch (i) {
        case 0: case 3: case 6: p = htri_ev_put_alloc(p, &s, HTRI_REC_ALLOC, t[i], 16 + (uint64_t)i, 2); break;
        case 1: p = htri_ev_put_mmap(p, &s, t[i], 8192, 3, 0x7f0000100000); break;
        case 2: p = htri_ev_put_free(p, &s, HTRI_REC_FREE, t[i], 1, 7, *next_no - 1); break;
        case 4: p = htri_ev_put_mmap(p, &s, t[i], 4096, 3, 0x7f0000200000); break;
        case 5: p = htri_ev_put_munmap(p, &s, t[i], 4096, 0x7f0000100000); break;
        case 7: p = htri_ev_put_free(p, &s, HTRI_REC_FREE, t[i], 1, 9, 40); break;
        case 8: p = htri_ev_put_munmap(p, &s, t[i], 4096, 0x7f0000200000); break;
        }
        if (i == 0 || i == 3 || i == 6)
            (*next_no)++;
    }
    return (size_t)(p - out);
}

/* A frame gathered from two buffers with htri_ev_append is byte for byte the frame one
 * encoder would have written: the join's dt and the second buffer's first mapping address
 * are re-based, everything else is copied. Cut at every record boundary. */
static void test_ev_append(void)
{
    static const uint64_t t[] = { 0, 16384, 16384, 49152, 65536, 65536, 81920, 98304, 131072 };
    uint8_t whole[512], a[512], b[512];
    uint64_t no = 100;
    size_t n_whole = join_encode(whole, 0, 9, &no);
    for (int cut = 1; cut < 9; cut++) {
        uint64_t na = 100;
        size_t la = join_encode(a, 0, cut, &na);
        uint64_t nb = na;
        size_t lb = join_encode(b, cut, 9 - cut, &nb);
        htri_recbuf rb = { 0 };
        CHECK(htri_recbuf_room(&rb, la) == 0);
        memcpy(rb.data, a, la);
        rb.len = la;
        rb.n_records = (uint32_t)cut;
        rb.t_first = 0;
        rb.t_last = t[cut - 1];
        /* the first buffer's last mapping address, as its encoder state would say */
        uint64_t addr = cut <= 1 ? 0 : cut <= 4 ? 0x7f0000100000 : cut <= 5 ? 0x7f0000200000 : 0x7f0000100000;
        CHECK(htri_ev_append(&rb, &addr, b, lb, (uint32_t)(9 - cut), t[cut], t[8]) == 0);
        CHECK_EQ_U(rb.len, n_whole);
        CHECK(rb.len == n_whole && memcmp(rb.data, whole, n_whole) == 0);
        CHECK_EQ_U(rb.n_records, 9);
        CHECK_EQ_U(rb.t_last, t[8]);
        CHECK_EQ_U(addr, 0x7f0000200000);
        /* a buffer that does not parse leaves the frame as it was */
        size_t len = rb.len;
        CHECK(htri_ev_append(&rb, &addr, b, lb - 1, (uint32_t)(9 - cut), t[8], t[8]) == -EINVAL);
        CHECK_EQ_U(rb.len, len);
        htri_recbuf_free(&rb);
    }
}

int main(void)
{
    test_ev_append();
    char path[] = "/tmp/htr_writer_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);

    htri_writer w;
    CHECK(htri_writer_init(&w) == 0);
    htri_file_header h = { HTRI_TRACE_VERSION, 0, 1234, 99, 1700000000000000000ull, 5555, HTRI_FILE_FORKED };
    CHECK(htri_writer_start(&w, fd, &h) == 0);

    htri_recbuf m = { 0 };
    const uint8_t bid[4] = { 0xde, 0xad, 0xbe, 0xef };
    uint32_t parents[3] = { 0, 1, 1 };
    uintptr_t pcs[3] = { 0x401000, 0x402000, 0x403000 };
    CHECK(htri_rec_info(&m, "exe", "/bin/x", 6) == 0);
    CHECK(htri_rec_module(&m, 3, 0x1000, 0x400000, 0x500000, bid, 4, "/bin/x", 6, 10) == 0);
    CHECK(htri_rec_nodes(&m, 1, 3, parents, pcs) == 0);
    CHECK(htri_rec_thread(&m, 77, 11, "main", 4) == 0);
    CHECK(htri_rec_rss(&m, 12, 4096) == 0);
    CHECK(htri_rec_fork_base(&m, 13, 98, 5, 4, 300) == 0);
    CHECK(htri_rec_message(&m, 14, HTRI_MSG_WARNING, "hi", 2) == 0);
    CHECK(htri_rec_module_unload(&m, 3, 15) == 0);
    CHECK(htri_rec_thread_end(&m, 77, 16) == 0);
    const uint8_t leak_body[3] = { 2, 0xaa, 0xbb };     /* body_len 2, body */
    CHECK(htri_rec_raw(&m, 0x41, leak_body, 3, 17) == 0);
    CHECK(htri_rec_end(&m, 18, HTRI_END_SIGNAL, 6, 8192, 0, 5, 4, 300) == 0);
    CHECK_EQ_U(m.n_records, 11);
    CHECK_EQ_U(m.t_first, 10);
    CHECK_EQ_U(m.t_last, 18);
    CHECK(htri_writer_flush_recbuf(&w, &m, HTRI_FRAME_META, 0) == 0);
    CHECK_EQ_U(m.n_records, 0);

    /* EVENTS: one of each; the frame opens with its first number (7), the FREE names the
     * block just allocated (1 back), mapping addresses are deltas. */
    uint8_t ev[512], *p = ev;
    htri_evstate s;
    p = htri_ev_put_start(p, &s, 77, 100, 7);
    p = htri_ev_put_alloc(p, &s, HTRI_REC_ALLOC + HTRI_FAM_NEW, 100, 24, 3);
    p = htri_ev_put_free(p, &s, HTRI_REC_FREE + HTRI_FFAM_REALLOC, 105, 1, 77, 7);
    p = htri_ev_put_alloc(p, &s, HTRI_REC_INHERIT + HTRI_FAM_CALLOC, 105, 8, 0);
    p = htri_ev_put_mmap(p, &s, 110, 1 << 20, 2, 0x7f0000000000);
    p = htri_ev_put_munmap(p, &s, 120, 1 << 20, 0x7f0000000000);
    p = htri_ev_put_failed(p, &s, 130, 1ull << 40, 1, HTRI_FAM_MALLOC);
    CHECK(htri_writer_frame(&w, HTRI_FRAME_EVENTS, 77, 6, 100, 130, ev, (size_t)(p - ev)) == 0);
    CHECK_EQ_U(w.seq, 2);
    CHECK(htri_writer_frame(&w, HTRI_FRAME_EVENTS, 77, 0, 0, 0, ev, HTRI_FRAME_MAX_RAW + 1) == -EINVAL);
    htri_writer_fini(&w);
    close(fd);

    /* Decode it back. */
    FILE *f = fopen(path, "rb");
    uint8_t hb[HTRI_FILE_HEADER_SIZE];
    CHECK(fread(hb, 1, sizeof hb, f) == sizeof hb);
    htri_file_header hd = { 0 };
    CHECK(htri_file_header_decode(hb, &hd) == 0);
    CHECK_EQ_U(hd.pid, 1234);
    CHECK_EQ_U(hd.ppid, 99);
    CHECK_EQ_U(hd.start_realtime_ns, 1700000000000000000ull);
    CHECK_EQ_U(hd.start_mono_ns, 5555);
    CHECK_EQ_U(hd.flags, HTRI_FILE_FORKED);
    CHECK_EQ_U(htri_get_u32(hb + 44), 8);

    htri_frame_header fh;
    uint8_t *raw = read_frame(f, &fh);
    CHECK(raw != NULL);
    if (raw) {
        CHECK_EQ_U(fh.kind, HTRI_FRAME_META);
        CHECK_EQ_U(fh.seq, 0);
        CHECK_EQ_U(fh.n_records, 11);
        CHECK_EQ_U(fh.t_first, 10);
        CHECK_EQ_U(fh.t_last, 18);
        const uint8_t *q = raw, *end = raw + fh.raw_size;
        CHECK_EQ_U(*q++, HTRI_REC_INFO);
        CHECK(get_str(&q, end, "exe"));
        CHECK(get_str(&q, end, "/bin/x"));
        CHECK_EQ_U(*q++, HTRI_REC_MODULE);
        CHECK_EQ_U(get(&q, end), 3);
        CHECK_EQ_U(get(&q, end), 0x1000);
        CHECK_EQ_U(get(&q, end), 0x400000);
        CHECK_EQ_U(get(&q, end), 0x500000);
        CHECK(get_str(&q, end, "\xde\xad\xbe\xef"));
        CHECK(get_str(&q, end, "/bin/x"));
        CHECK_EQ_U(get(&q, end), 10);
        CHECK_EQ_U(*q++, HTRI_REC_NODES);
        CHECK_EQ_U(get(&q, end), 1);
        CHECK_EQ_U(get(&q, end), 3);
        CHECK_EQ_U(get(&q, end), 1);        /* node 1: parent 0 */
        CHECK_EQ_U(get(&q, end), 0x401000);
        CHECK_EQ_U(get(&q, end), 1);        /* node 2: parent 1 */
        CHECK_EQ_U(get(&q, end), 0x402000);
        CHECK_EQ_U(get(&q, end), 2);        /* node 3: parent 1 */
        CHECK_EQ_U(get(&q, end), 0x403000);
        CHECK_EQ_U(*q++, HTRI_REC_THREAD);
        CHECK_EQ_U(get(&q, end), 77);
        CHECK_EQ_U(get(&q, end), 11);
        CHECK(get_str(&q, end, "main"));
        CHECK_EQ_U(*q++, HTRI_REC_RSS);
        CHECK_EQ_U(get(&q, end), 12);
        CHECK_EQ_U(get(&q, end), 4096);
        CHECK_EQ_U(*q++, HTRI_REC_FORK_BASE);
        CHECK_EQ_U(get(&q, end), 13);
        CHECK_EQ_U(get(&q, end), 98);
        CHECK_EQ_U(get(&q, end), 5);
        CHECK_EQ_U(get(&q, end), 4);
        CHECK_EQ_U(get(&q, end), 300);
        CHECK_EQ_U(*q++, HTRI_REC_MESSAGE);
        CHECK_EQ_U(get(&q, end), 14);
        CHECK_EQ_U(get(&q, end), HTRI_MSG_WARNING);
        CHECK(get_str(&q, end, "hi"));
        CHECK_EQ_U(*q++, HTRI_REC_MODULE_UNLOAD);
        CHECK_EQ_U(get(&q, end), 3);
        CHECK_EQ_U(get(&q, end), 15);
        CHECK_EQ_U(*q++, HTRI_REC_THREAD_END);
        CHECK_EQ_U(get(&q, end), 77);
        CHECK_EQ_U(get(&q, end), 16);
        CHECK_EQ_U(*q++, 0x41);
        CHECK(get_str(&q, end, "\xaa\xbb"));
        CHECK_EQ_U(*q++, HTRI_REC_END);
        uint64_t want_end[8] = { 18, HTRI_END_SIGNAL, 6, 8192, 0, 5, 4, 300 };
        for (int i = 0; i < 8; i++)
            CHECK_EQ_U(get(&q, end), want_end[i]);
        CHECK(q == end);
        free(raw);
    }
    raw = read_frame(f, &fh);
    CHECK(raw != NULL);
    if (raw) {
        CHECK_EQ_U(fh.kind, HTRI_FRAME_EVENTS);
        CHECK_EQ_U(fh.tid, 77);
        CHECK_EQ_U(fh.seq, 1);
        CHECK_EQ_U(fh.n_records, 6);
        CHECK_EQ_U(fh.t_first, 100);
        CHECK_EQ_U(fh.t_last, 130);
        /* stored split into streams: first_no, four stream lengths, then tags, dt, sizes,
         * nodes, refs (format.h) */
        const uint8_t *q = raw, *end = raw + fh.raw_size;
        CHECK_EQ_U(get(&q, end), 7);                      /* first_no */
        CHECK_EQ_U(get(&q, end), 6);                      /* tags: one byte per record */
        CHECK_EQ_U(get(&q, end), 6);                      /* dt: one byte each here */
        CHECK_EQ_U(get(&q, end), 14);                     /* sizes: 24, 8, 1M, 1M, 2^40 */
        CHECK_EQ_U(get(&q, end), 5);                      /* nodes: 3, 0, 2, 1, family 0 */
        const uint8_t want_tags[] = { HTRI_REC_ALLOC + HTRI_FAM_NEW, HTRI_REC_FREE + HTRI_FFAM_REALLOC,
                                      HTRI_REC_INHERIT + HTRI_FAM_CALLOC, HTRI_REC_MMAP,
                                      HTRI_REC_MUNMAP, HTRI_REC_ALLOC_FAILED };
        for (int i = 0; i < 6; i++)
            CHECK_EQ_U(*q++, want_tags[i]);
        const uint64_t want_dt[] = { 0, 5 * 2 + 1, 0, 5 * 2 + 1, 10 * 2 + 1, 10 * 2 + 1 };
        for (int i = 0; i < 6; i++)                       /* dt code: 5 ns, not whole ticks */
            CHECK_EQ_U(get(&q, end), want_dt[i]);
        const uint64_t want_sizes[] = { 24, 8, 1 << 20, 1 << 20, 1ull << 40 };
        for (int i = 0; i < 5; i++)
            CHECK_EQ_U(get(&q, end), want_sizes[i]);
        const uint64_t want_nodes[] = { 3, 0, 2, 1, HTRI_FAM_MALLOC };
        for (int i = 0; i < 5; i++)
            CHECK_EQ_U(get(&q, end), want_nodes[i]);
        CHECK_EQ_U(get(&q, end), 2);                      /* FREE ref: this thread's, 1 back */
        CHECK_EQ_U(htri_unzigzag(get(&q, end)), 0x7f0000000000);   /* MMAP addr_d */
        CHECK_EQ_U(htri_unzigzag(get(&q, end)), 0);                /* MUNMAP addr_d */
        CHECK(q == end);
        free(raw);
    }
    uint8_t extra;
    CHECK(fread(&extra, 1, 1, f) == 0);   /* nothing after the two frames */
    fclose(f);
    unlink(path);

    /* Disk full: the first write fails, the error sticks. */
    int full = open("/dev/full", O_WRONLY);
    if (full >= 0) {
        htri_writer wf;
        CHECK(htri_writer_init(&wf) == 0);
        CHECK(htri_writer_start(&wf, full, &h) == -ENOSPC);
        CHECK(htri_writer_frame(&wf, HTRI_FRAME_EVENTS, 1, 1, 0, 0, ev, 4) == -ENOSPC);
        htri_writer_fini(&wf);
        close(full);
    }
    /* A frame before start: no file yet. */
    htri_writer wn;
    CHECK(htri_writer_init(&wn) == 0);
    CHECK(htri_writer_frame(&wn, HTRI_FRAME_META, 0, 1, 0, 0, ev, 4) == -EBADF);
    htri_writer_fini(&wn);
    htri_recbuf_free(&m);
    return CHECK_DONE();
}
