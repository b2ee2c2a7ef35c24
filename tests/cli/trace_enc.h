/* Test-only trace encoder: builds .htr files in memory from format.h and ZSTD_compress, so the
 * reader, analysis and CLI can be tested (and the fuzz corpus seeded) without the agent.
 * Deliberately independent of src/trace/writer.c: two encoders of one spec catch spec drift. */
#ifndef HTR_TESTS_TRACE_ENC_H
#define HTR_TESTS_TRACE_ENC_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "base/varint.h"
#include "trace/format.h"
#include "trace/leak_record.h"

typedef struct enc {
    uint8_t *buf;             /* the whole file */
    size_t len, cap;
    uint8_t raw[1 << 16];     /* the frame being built */
    size_t raw_len;
    uint32_t n_rec, tid, seq;
    uint8_t kind;
    uint64_t t_first, t_last, t_prev, addr_prev;
    /* block references (docs/trace-format.md): tests name blocks by made-up addresses, the
     * encoder keeps each thread's next number and which (tid, number) each live address is */
    struct { uint32_t tid; uint64_t next_no; } threads[64];
    size_t n_threads;
    uint64_t *next_no;                 /* of the frame's thread */
    struct { uint64_t addr, no; uint32_t tid; } live[4096];
    size_t n_live;
    /* an EVENTS frame's fields go to their streams as they are written (docs/trace-format.md):
     * 0 tags, 1 dt, 2 sizes, 3 nodes, 4 refs; ev_mode 0 writes raw bytes as they come */
    int ev_mode, ev_tag, ev_field;
    uint8_t st[5][1 << 16];
    size_t st_len[5];
} enc;

static inline void enc_append(enc *e, const void *p, size_t n)
{
    if (e->len + n > e->cap) {
        e->cap = (e->len + n) * 2 + 4096;
        e->buf = realloc(e->buf, e->cap);
        if (!e->buf) abort();
    }
    memcpy(e->buf + e->len, p, n);
    e->len += n;
}

static inline void enc_file(enc *e, uint32_t pid, uint32_t flags)
{
    memset(e, 0, sizeof *e);
    htri_file_header h = { HTRI_TRACE_VERSION, 0, pid, 1, 1700000000000000000ull, 5000000000ull, flags };
    uint8_t b[HTRI_FILE_HEADER_SIZE];
    htri_file_header_encode(&h, b);
    enc_append(e, b, sizeof b);
}

/* The stream of field i (0 = dt) of an EVENTS record with this tag; a FREE's field 2 is the
 * tid difference after an odd ref. Tags outside the spec (tests of damage) go to refs. */
static inline int enc_route(int tag, int i)
{
    if (i == 0) return 1;
    if (tag >= 0x10 && tag <= 0x1f) return i == 1 ? 2 : 3;          /* ALLOC, INHERIT */
    if (tag >= 0x20 && tag <= 0x27) return 4;                       /* FREE */
    if (tag == 0x28) return i == 1 ? 2 : i == 2 ? 3 : 4;            /* MMAP */
    if (tag == 0x29) return i == 1 ? 2 : 4;                         /* MUNMAP */
    if (tag == 0x2a) return i == 1 ? 2 : 3;                         /* ALLOC_FAILED */
    return 4;
}
static inline void enc_u(enc *e, uint64_t v)
{
    if (e->ev_mode && e->ev_tag >= 0) {
        int st = enc_route(e->ev_tag, e->ev_field++);
        e->st_len[st] = (size_t)(htri_varint_put(e->st[st] + e->st_len[st], v) - e->st[st]);
        return;
    }
    e->raw_len = (size_t)(htri_varint_put(e->raw + e->raw_len, v) - e->raw);
}

static inline uint64_t *enc_thread_no(enc *e, uint32_t tid)
{
    for (size_t i = 0; i < e->n_threads; i++)
        if (e->threads[i].tid == tid)
            return &e->threads[i].next_no;
    if (e->n_threads == 64) abort();
    e->threads[e->n_threads].tid = tid;
    e->threads[e->n_threads].next_no = 0;
    return &e->threads[e->n_threads++].next_no;
}

/* An EVENTS frame opens with its thread's first allocation number (the thread's count so
 * far); enc_begin_no writes another one, for tests of damaged or hand-made numbering. */
static inline void enc_begin_no(enc *e, uint8_t kind, uint32_t tid, uint64_t t_first, uint64_t first_no)
{
    e->kind = kind;
    e->tid = tid;
    e->raw_len = 0;
    e->n_rec = 0;
    e->t_first = e->t_last = e->t_prev = t_first;
    e->addr_prev = 0;
    e->ev_mode = kind == HTRI_FRAME_EVENTS;
    e->ev_tag = -1;
    memset(e->st_len, 0, sizeof e->st_len);
    if (kind == HTRI_FRAME_EVENTS) {
        e->next_no = enc_thread_no(e, tid);
        *e->next_no = first_no;
        enc_u(e, first_no);
    }
}
static inline void enc_begin(enc *e, uint8_t kind, uint32_t tid, uint64_t t_first)
{
    enc_begin_no(e, kind, tid, t_first, kind == HTRI_FRAME_EVENTS ? *enc_thread_no(e, tid) : 0);
}
static inline void enc_tag(enc *e, uint8_t tag)
{
    e->n_rec++;
    if (e->ev_mode) {
        e->st[0][e->st_len[0]++] = tag;
        e->ev_tag = tag;
        e->ev_field = 0;
        return;
    }
    e->raw[e->raw_len++] = tag;
}
static inline void enc_bytes(enc *e, const void *s, size_t n)
{
    enc_u(e, n);
    memcpy(e->raw + e->raw_len, s, n);
    e->raw_len += n;
}
static inline void enc_str(enc *e, const char *s) { enc_bytes(e, s, strlen(s)); }

/* Ends the frame: compresses it and appends header + data. */
static inline void enc_end(enc *e)
{
    if (e->ev_mode) {     /* first_no is in raw; then the four lengths and the streams */
        e->ev_tag = -1;
        for (int st = 0; st < 4; st++)
            enc_u(e, e->st_len[st]);
        for (int st = 0; st < 5; st++) {
            if (e->raw_len + e->st_len[st] > sizeof e->raw) abort();
            memcpy(e->raw + e->raw_len, e->st[st], e->st_len[st]);
            e->raw_len += e->st_len[st];
        }
        e->ev_mode = 0;
    }
    uint8_t comp[(1 << 16) + 1024];
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 1);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);    /* as the spec asks */
    size_t n = ZSTD_compress2(cc, comp, sizeof comp, e->raw, e->raw_len);
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(n)) abort();
    htri_frame_header h = { e->kind, e->tid, e->n_rec, (uint32_t)e->raw_len, (uint32_t)n,
                            e->t_first, e->t_last, e->seq++ };
    uint8_t hb[HTRI_FRAME_HEADER_SIZE];
    htri_frame_header_encode(&h, hb);
    enc_append(e, hb, sizeof hb);
    enc_append(e, comp, n);
}

/* ---- META records (absolute times) ---- */
static inline void enc_meta_t(enc *e, uint64_t t) { if (t > e->t_last) e->t_last = t; }
static inline void enc_info(enc *e, const char *k, const char *v) { enc_tag(e, HTRI_REC_INFO); enc_str(e, k); enc_str(e, v); }
static inline void enc_module(enc *e, uint64_t id, uint64_t bias, uint64_t start, uint64_t end,
                              const char *build_id, const char *path, uint64_t t)
{
    enc_tag(e, HTRI_REC_MODULE);
    enc_u(e, id); enc_u(e, bias); enc_u(e, start); enc_u(e, end);
    enc_str(e, build_id); enc_str(e, path); enc_u(e, t);
    enc_meta_t(e, t);
}
/* One NODES record defining node `id` as child of `parent` with return address pc. */
static inline void enc_node(enc *e, uint64_t id, uint64_t parent, uint64_t pc)
{
    enc_tag(e, HTRI_REC_NODES);
    enc_u(e, id); enc_u(e, 1); enc_u(e, id - parent); enc_u(e, pc);
}
static inline void enc_thread(enc *e, uint32_t tid, uint64_t t, const char *name)
{
    enc_tag(e, HTRI_REC_THREAD); enc_u(e, tid); enc_u(e, t); enc_str(e, name); enc_meta_t(e, t);
}
static inline void enc_rss(enc *e, uint64_t t, uint64_t rss) { enc_tag(e, HTRI_REC_RSS); enc_u(e, t); enc_u(e, rss); enc_meta_t(e, t); }
static inline void enc_message(enc *e, uint64_t t, uint64_t level, const char *text)
{
    enc_tag(e, HTRI_REC_MESSAGE); enc_u(e, t); enc_u(e, level); enc_str(e, text); enc_meta_t(e, t);
}
static inline void enc_fork_base(enc *e, uint64_t t, uint64_t ppid, uint64_t allocs, uint64_t frees, uint64_t bytes)
{
    enc_tag(e, HTRI_REC_FORK_BASE); enc_u(e, t); enc_u(e, ppid); enc_u(e, allocs); enc_u(e, frees); enc_u(e, bytes);
    enc_meta_t(e, t);
}
static inline void enc_endrec(enc *e, uint64_t t, uint64_t how, uint64_t status, uint64_t peak_rss,
                              uint64_t allocs, uint64_t frees, uint64_t bytes)
{
    enc_tag(e, HTRI_REC_END);
    enc_u(e, t); enc_u(e, how); enc_u(e, status); enc_u(e, peak_rss); enc_u(e, 0);
    enc_u(e, allocs); enc_u(e, frees); enc_u(e, bytes);
    enc_meta_t(e, t);
}

/* A whole length-prefixed record made by one of leak_record.h's encoders. */
static inline void enc_raw_record(enc *e, const uint8_t *rec, size_t n)
{
    memcpy(e->raw + e->raw_len, rec, n);
    e->raw_len += n;
    e->n_rec++;
}
static inline void enc_leak_check(enc *e, uint64_t t, uint64_t n_blocks)
{
    uint8_t b[HTRI_LEAK_CHECK_REC_MAX];
    htri_leak_check_rec c = { .t = t, .tid = 1, .reason = HTRI_LEAK_AT_EXIT, .n_blocks = n_blocks };
    enc_raw_record(e, b, htri_leak_check_rec_encode(&c, b));
}
static inline void enc_leak_group(enc *e, uint8_t kind, uint32_t node, uint64_t n_blocks, uint64_t bytes)
{
    uint8_t b[HTRI_LEAK_GROUP_REC_MAX];
    htri_leak_group_rec g = { .kind = kind, .node = node, .n_blocks = n_blocks, .bytes = bytes };
    enc_raw_record(e, b, htri_leak_group_rec_encode(&g, b));
}
static inline void enc_leak_end(enc *e, uint64_t t, uint64_t n_groups)
{
    uint8_t b[HTRI_LEAK_END_REC_MAX];
    htri_leak_end_rec x = { t, n_groups };
    enc_raw_record(e, b, htri_leak_end_rec_encode(&x, b));
}

/* ---- EVENTS records (t absolute here; encoded as deltas) ---- */
static inline void enc_dt(enc *e, uint64_t t)
{
    if (t < e->t_prev) abort();
    uint64_t dt = t - e->t_prev;   /* whole ticks as an even number, else ns as an odd one */
    enc_u(e, dt % 16384 ? dt * 2 + 1 : dt / 16384 * 2);
    e->t_prev = e->t_last = t;
}
static inline void enc_addr(enc *e, uint64_t a) { enc_u(e, htri_zigzag((int64_t)(a - e->addr_prev))); e->addr_prev = a; }
/* The block at test address addr gets the frame thread's next number (an address already
 * live is taken over: the older block can then only be freed by reference). */
static inline void enc_block_at(enc *e, uint64_t addr)
{
    size_t i;
    for (i = 0; i < e->n_live && e->live[i].addr != addr; i++)
        ;
    if (i == e->n_live) {
        if (e->n_live == 4096) abort();
        e->n_live++;
    }
    e->live[i].addr = addr;
    e->live[i].tid = e->tid;
    e->live[i].no = (*e->next_no)++;
}
static inline void enc_alloc(enc *e, int fam, uint64_t t, uint64_t size, uint64_t node, uint64_t addr)
{
    enc_tag(e, (uint8_t)(HTRI_REC_ALLOC + fam)); enc_dt(e, t); enc_u(e, size); enc_u(e, node);
    enc_block_at(e, addr);
}
static inline void enc_inherit(enc *e, uint64_t t, uint64_t size, uint64_t node, uint64_t addr)
{
    enc_tag(e, HTRI_REC_INHERIT); enc_dt(e, t); enc_u(e, size); enc_u(e, node);
    enc_block_at(e, addr);
}
/* FREE with the ref code written as given: 0 unknown, 2d this thread's block d back, 2n+1
 * block n of thread frame tid + tid_delta (any values: tests make damaged ones too). */
static inline void enc_free_code(enc *e, int ffam, uint64_t t, uint64_t code, int64_t tid_delta)
{
    enc_tag(e, (uint8_t)(HTRI_REC_FREE + ffam)); enc_dt(e, t); enc_u(e, code);
    if (code & 1)
        enc_u(e, htri_zigzag(tid_delta));
}
/* FREE of (tid, no), encoded as the agent does: by distance when it is this thread's. */
static inline void enc_free_ref(enc *e, int ffam, uint64_t t, uint32_t tid, uint64_t no)
{
    if (tid == e->tid && no < *e->next_no)
        enc_free_code(e, ffam, t, (*e->next_no - no) << 1, 0);
    else
        enc_free_code(e, ffam, t, no << 1 | 1, (int64_t)tid - (int64_t)e->tid);
}
/* FREE of the live block at test address addr; one never allocated is a FREE of ref 0. */
static inline void enc_free(enc *e, int ffam, uint64_t t, uint64_t addr)
{
    for (size_t i = 0; i < e->n_live; i++) {
        if (e->live[i].addr == addr) {
            uint32_t tid = e->live[i].tid;
            uint64_t no = e->live[i].no;
            e->live[i] = e->live[--e->n_live];
            enc_free_ref(e, ffam, t, tid, no);
            return;
        }
    }
    enc_free_code(e, ffam, t, 0, 0);
}
static inline void enc_mmap(enc *e, uint64_t t, uint64_t len, uint64_t node, uint64_t addr)
{
    enc_tag(e, HTRI_REC_MMAP); enc_dt(e, t); enc_u(e, len); enc_u(e, node); enc_addr(e, addr);
}
static inline void enc_munmap(enc *e, uint64_t t, uint64_t len, uint64_t addr)
{
    enc_tag(e, HTRI_REC_MUNMAP); enc_dt(e, t); enc_u(e, len); enc_addr(e, addr);
}

static inline int enc_write(const enc *e, const char *path, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = fwrite(e->buf, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}

/* The reference trace used by several tests: pid 4242, two threads, one leak, a temporary,
 * a peak of 1600 bytes at t=3000, a realloc, an mmap. Numbers it must produce:
 *   allocs 6, frees 4, bytes allocated 1600+... see tests. */
static inline void enc_sample(enc *e)
{
    enc_file(e, 4242, 0);
    enc_begin(e, HTRI_FRAME_META, 0, 0);
    enc_info(e, "exe", "/usr/bin/sample");
    enc_module(e, 1, 0x400000, 0x400000, 0x500000, "\x12\x34", "/usr/bin/sample", 0);
    enc_node(e, 1, 0, 0x401000);      /* main */
    enc_node(e, 2, 1, 0x402000);      /* main -> make_leak */
    enc_node(e, 3, 1, 0x403000);      /* main -> temp */
    enc_node(e, 4, 1, 0x404000);      /* main -> worker */
    enc_thread(e, 100, 0, "sample");
    enc_thread(e, 101, 500, "worker");
    enc_rss(e, 100, 1 << 20);
    enc_end(e);
    /* thread 100: leak 100 bytes, temporary 50 bytes, realloc */
    enc_begin(e, HTRI_FRAME_EVENTS, 100, 1000);
    enc_alloc(e, HTRI_FAM_MALLOC, 1000, 100, 2, 0x10000);
    enc_alloc(e, HTRI_FAM_MALLOC, 1100, 50, 3, 0x20000);
    enc_free(e, HTRI_FFAM_FREE, 1200, 0x20000);            /* temporary, 100 ns */
    enc_alloc(e, HTRI_FAM_NEW, 2000, 1000, 3, 0x30000);
    enc_free(e, HTRI_FFAM_REALLOC, 2500, 0x30000);
    enc_alloc(e, HTRI_FAM_REALLOC, 2500, 1500, 3, 0x40000);
    enc_end(e);
    /* thread 101 overlaps in time */
    enc_begin(e, HTRI_FRAME_EVENTS, 101, 2200);
    enc_mmap(e, 2200, 1 << 20, 4, 0x7f0000000000);
    enc_alloc(e, HTRI_FAM_CALLOC, 2600, 0, 4, 0x50000);
    enc_free(e, HTRI_FFAM_FREE, 3500, 0x40000);   /* peak was 1600 from 2500 to 3500 */
    enc_munmap(e, 3600, 1 << 19, 0x7f0000000000);
    enc_end(e);
    enc_begin(e, HTRI_FRAME_META, 0, 4000);
    enc_rss(e, 4000, 3 << 20);
    enc_message(e, 4000, HTRI_MSG_WARNING, "sample warning");
    enc_endrec(e, 5000, HTRI_END_EXIT, 0, 4 << 20, 5, 3, 2650);
    enc_end(e);
}

#endif
