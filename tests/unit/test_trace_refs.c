/* Unit tests of block references and the dt code (docs/trace-format.md): ALLOC/INHERIT records
 * number a thread's blocks, an EVENTS frame opens with its first number, a FREE names its
 * block by distance (same thread) or by (tid, number); dt is whole 16,384 ns ticks or exact
 * ns. Round trips through the writer's encoders, htri_writer and htri_reader (every family,
 * frame cuts, several threads, cross-thread frees, random runs), and the reader's strictness
 * on damaged references (frames built by the independent tests/cli encoder). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../cli/trace_enc.h"
#include "base/common.h"
#include "check.h"
#include "trace/reader.h"
#include "trace/writer.h"

/* One EVENTS record as the test means it, and as the reader gives it back. For ALLOC/INHERIT
 * (ref_tid, ref) is the number the block must get; for FREE the block it names (known 0: a
 * FREE of a block whose allocation is not in the trace). */
typedef struct op {
    uint8_t tag;        /* reader form: HTRI_REC_ALLOC, _INHERIT, _FREE, _MMAP, _MUNMAP */
    uint8_t family;
    uint32_t tid;       /* the thread that records it */
    uint64_t t, size, addr;
    uint32_t ref_tid;
    uint64_t ref;
    uint8_t known;
} op;

typedef struct got {
    op *v;
    size_t n, cap;
} got;

static int on_rec(void *ctx, const htri_record *rec)
{
    got *g = ctx;
    if (rec->tag < HTRI_REC_ALLOC || rec->tag > HTRI_REC_ALLOC_FAILED)
        return 0;
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 1024;
        g->v = realloc(g->v, g->cap * sizeof *g->v);
        if (!g->v) abort();
    }
    int heap = rec->tag == HTRI_REC_ALLOC || rec->tag == HTRI_REC_INHERIT || rec->tag == HTRI_REC_FREE;
    int mapped = rec->tag == HTRI_REC_MMAP || rec->tag == HTRI_REC_MUNMAP;
    g->v[g->n++] = (op){ rec->tag, rec->family, rec->tid, rec->t, rec->size, mapped ? rec->addr : 0,
                         heap ? rec->ref_tid : 0, heap ? rec->ref : 0, heap ? rec->ref_known : 0 };
    return 0;
}

/* Encodes o at p with the writer's encoders; returns the new end. */
static uint8_t *put(uint8_t *p, htri_evstate *s, const op *o)
{
    switch (o->tag) {
    case HTRI_REC_ALLOC:
    case HTRI_REC_INHERIT:
        CHECK_EQ_U(s->next_no, o->ref);      /* the test's numbering is the writer's */
        return htri_ev_put_alloc(p, s, (uint8_t)(o->tag + o->family), o->t, o->size, 1);
    case HTRI_REC_MMAP:
        return htri_ev_put_mmap(p, s, o->t, o->size, 1, o->addr);
    case HTRI_REC_MUNMAP:
        return htri_ev_put_munmap(p, s, o->t, o->size, o->addr);
    default:
        return htri_ev_put_free(p, s, (uint8_t)(HTRI_REC_FREE + o->family), o->t, o->known,
                                o->ref_tid, o->ref);
    }
}

/* Writes ops as EVENTS frames, a new frame at every index in `cuts` (sorted, ended by 0) and
 * wherever the thread changes, each opened with its thread's next number as the agent does;
 * reads them back into g. tags[i] gets the tag byte written for ops[i], codes[i] the first
 * varint after dt of a FREE. Returns the replay's status. */
static int round_trip(const op *ops, size_t n, const size_t *cuts, uint8_t *tags, uint64_t *codes,
                      got *g)
{
    char path[] = "/tmp/htr_refs_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    htri_writer w;
    CHECK(htri_writer_init(&w) == 0);
    htri_file_header h = { HTRI_TRACE_VERSION, 0, 1, 1, 0, 0, 0 };
    CHECK(htri_writer_start(&w, fd, &h) == 0);
    static uint8_t buf[1 << 20];
    struct { uint32_t tid; uint64_t next_no; } th[16];
    size_t n_th = 0;
    size_t i = 0;
    while (i < n) {
        size_t stop = n;
        while (*cuts && *cuts <= i) cuts++;
        if (*cuts) stop = *cuts;
        size_t k;
        for (k = 0; k < n_th && th[k].tid != ops[i].tid; k++)
            ;
        if (k == n_th) {
            th[n_th].tid = ops[i].tid;
            th[n_th++].next_no = 0;
        }
        htri_evstate s;
        memset(&s, 0xa5, sizeof s);          /* nothing carries over from another frame */
        uint8_t *p = htri_ev_put_start(buf, &s, ops[i].tid, ops[i].t, th[k].next_no);
        size_t first = i;
        for (; i < stop && ops[i].tid == ops[first].tid && p - buf < (long)sizeof buf - HTRI_EVENT_MAX; i++) {
            uint8_t *rec = p;
            p = put(p, &s, &ops[i]);
            if (tags) tags[i] = *rec;
            if (codes && ops[i].tag == HTRI_REC_FREE) {
                const uint8_t *q = rec + 1;
                uint64_t dt;
                CHECK(htri_varint_get(&q, p, &dt) == 0 && htri_varint_get(&q, p, &codes[i]) == 0);
            }
        }
        th[k].next_no = s.next_no;
        CHECK(htri_writer_frame(&w, HTRI_FRAME_EVENTS, ops[first].tid, (uint32_t)(i - first),
                                ops[first].t, ops[i - 1].t, buf, (size_t)(p - buf)) == 0);
    }
    htri_writer_fini(&w);
    close(fd);
    htri_reader *r = NULL;
    int rc = htri_reader_open(path, &r);
    CHECK_EQ_U(rc, 0);
    unlink(path);
    if (rc) return rc;
    g->n = 0;
    rc = htri_reader_replay(r, on_rec, g);
    htri_reader_close(r);
    return rc;
}

/* The reader gives back every op, in order when `ordered`, else as a set sorted like ops
 * (records of several threads merge by time). */
static void check_same(const op *ops, size_t n, const got *g)
{
    CHECK_EQ_U(g->n, n);
    size_t bad = 0;
    for (size_t i = 0; i < n && i < g->n; i++) {
        const op *a = &ops[i], *b = &g->v[i];
        if (a->tag != b->tag || a->family != b->family || a->t != b->t || a->addr != b->addr ||
            a->tid != b->tid || a->known != b->known ||
            (a->known && (a->ref_tid != b->ref_tid || a->ref != b->ref)) ||
            (a->tag != HTRI_REC_FREE && a->size != b->size)) {
            if (bad++ < 5)
                fprintf(stderr, "record %zu: tag %u/%u fam %u/%u t %llu/%llu tid %u/%u ref %u:%llu/%u:%llu "
                        "known %u/%u\n", i, a->tag, b->tag, a->family, b->family,
                        (unsigned long long)a->t, (unsigned long long)b->t, a->tid, b->tid,
                        a->ref_tid, (unsigned long long)a->ref, b->ref_tid,
                        (unsigned long long)b->ref, a->known, b->known);
        }
    }
    CHECK_EQ_U(bad, 0);
}

#define A(fam, tid, t, no) (op){ HTRI_REC_ALLOC, fam, tid, t, 32, 0, tid, no, 1 }
#define F(ffam, tid, t, rtid, no) (op){ HTRI_REC_FREE, ffam, tid, t, 0, 0, rtid, no, 1 }

/* Every allocation and free family; INHERIT takes a number, MMAP does not; the codes written. */
static void test_families(void)
{
    op ops[32];
    size_t n = 0;
    uint64_t no = 0;
    for (int f = 0; f < HTRI_FAM_COUNT; f++)
        ops[n++] = A(f, 7, 100 + (uint64_t)f, no++);                    /* numbers 0..5 */
    ops[n++] = (op){ HTRI_REC_INHERIT, HTRI_FAM_NEW, 7, 110, 8, 0, 7, no++, 1 };   /* 6 */
    ops[n++] = (op){ HTRI_REC_MMAP, 0, 7, 111, 1 << 20, 0x7f0000000000, 0, 0, 0 };
    for (int f = 0; f < HTRI_FFAM_COUNT; f++)       /* numbers 5, 4, 3, 2: 2, 3, 4, 5 back */
        ops[n++] = F(f, 7, 120, 7, 5 - (uint64_t)f);
    ops[n++] = F(HTRI_FFAM_FREE, 7, 121, 7, 6);                      /* the INHERIT: 1 back */
    ops[n++] = (op){ HTRI_REC_MUNMAP, 0, 7, 122, 1 << 20, 0x7f0000000000, 0, 0, 0 };
    ops[n++] = (op){ HTRI_REC_FREE, HTRI_FFAM_DELETE, 7, 123, 0, 0, 0, 0, 0 };    /* unknown */
    ops[n++] = F(HTRI_FFAM_DELETE, 7, 124, 9, 77);                   /* another thread's */
    uint8_t tags[32];
    uint64_t codes[32];
    size_t cuts[] = { 0 };
    got g = { 0 };
    CHECK_EQ_U(round_trip(ops, n, cuts, tags, codes, &g), 0);
    check_same(ops, n, &g);
    for (int f = 0; f < HTRI_FFAM_COUNT; f++) {
        CHECK_EQ_U(tags[8 + f], HTRI_REC_FREE + f);
        CHECK_EQ_U(codes[8 + f], 2 * (2 + (uint64_t)f));            /* even: distance back */
    }
    CHECK_EQ_U(codes[12], 2);
    CHECK_EQ_U(codes[14], HTRI_REF_NONE);
    CHECK_EQ_U(codes[15], 77 * 2 + 1);                               /* odd: number, then tid */
    free(g.v);

    /* the bytes: a frame opens with its first number; a FREE of the block allocated two
     * allocations ago is tag, dt, the byte 4 */
    uint8_t b[64], *p = b;
    htri_evstate s;
    p = htri_ev_put_start(p, &s, 5, 0, 300);
    CHECK_EQ_U(p - b, 2);                                            /* varint 300 */
    for (int i = 0; i < 3; i++)
        p = htri_ev_put_alloc(p, &s, HTRI_REC_ALLOC, 0, 8, 0);       /* 300, 301, 302 */
    p = htri_ev_put_mmap(p, &s, 0, 4096, 0, 0x200000);
    uint8_t *f = p;
    p = htri_ev_put_free(p, &s, HTRI_REC_FREE + HTRI_FFAM_DELETE_ARRAY, 16, 1, 5, 301);
    CHECK_EQ_U(p - f, 3);
    CHECK_EQ_U(f[0], HTRI_REC_FREE + HTRI_FFAM_DELETE_ARRAY);
    CHECK_EQ_U(f[1], 16 * 2 + 1);            /* dt code of 16 ns */
    CHECK_EQ_U(f[2], 4);                     /* 303 - 301 = 2 back; the MMAP has no number */
    CHECK_EQ_U(s.next_no, 303);
    /* another thread's block: number, then the tid as a signed difference */
    f = p;
    p = htri_ev_put_free(p, &s, HTRI_REC_FREE, 16, 1, 3, 10);
    CHECK_EQ_U(p - f, 4);
    CHECK_EQ_U(f[2], 21);
    CHECK_EQ_U(f[3], htri_zigzag(3 - 5));
}

/* A thread's numbers run on across its frames, and a frame decodes alone: a FREE in frame 3
 * of a block from frame 1 names it by distance from the number frame 3 opens with. Threads
 * free each other's blocks, also within one tick (allocations merge first). */
static void test_frames_threads(void)
{
    op ops[32];
    size_t n = 0;
    ops[n++] = A(0, 10, 10, 0);
    ops[n++] = A(0, 10, 11, 1);
    ops[n++] = F(0, 10, 12, 10, 0);                                   /* 2 back */
    ops[n++] = A(0, 11, 16384, 0);                                    /* thread 11 */
    ops[n++] = F(2, 11, 16384 + 5, 10, 1);                            /* thread 10's block 1 */
    ops[n++] = A(4, 10, 32768, 2);                                    /* frame 3, first_no 2 */
    ops[n++] = F(2, 10, 32768 + 1, 11, 0);                            /* thread 11's block 0 */
    ops[n++] = F(2, 10, 32768 + 2, 10, 2);                            /* 1 back */
    uint8_t tags[32];
    uint64_t codes[32];
    size_t cuts[] = { 3, 5, 0 };
    got g = { 0 };
    CHECK_EQ_U(round_trip(ops, n, cuts, tags, codes, &g), 0);
    check_same(ops, n, &g);
    CHECK_EQ_U(codes[2], 4);
    CHECK_EQ_U(codes[4], 1 * 2 + 1);
    CHECK_EQ_U(codes[6], 0 * 2 + 1);
    CHECK_EQ_U(codes[7], 2);
    free(g.v);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* 200,000 random records of three threads over random frame cuts: mostly frees of recent
 * blocks, some of old ones, some of other threads' blocks, unknown frees, every family; the
 * reader gives back exactly the references that went in, and same-thread frees of recent
 * blocks are one-byte codes. Threads take turns in runs, each run at later times, so the
 * merge keeps the records in the order written. */
static void test_random(void)
{
    enum { N = 200000, LIVE = 4096 };
    op *ops = malloc(N * sizeof *ops);
    struct { uint32_t tid; uint64_t no; } *live = malloc(LIVE * sizeof *live);
    size_t *cuts = calloc(N + 1, sizeof *cuts);
    uint8_t *tags = malloc(N);
    uint64_t *codes = calloc(N, sizeof *codes);
    if (!ops || !live || !cuts || !tags || !codes) abort();
    uint64_t next_no[3] = { 0, 0, 0 };
    size_t n_live = 0, n = 0, n_cuts = 0;
    uint64_t t = 0;
    uint32_t tix = 0;
    while (n < N) {
        t += rng() % 3 == 0 ? 16384 : 0;
        uint64_t x = rng();
        uint32_t tid = 100 + tix;
        if (x % 97 == 0) {
            ops[n++] = (op){ HTRI_REC_FREE, (uint8_t)(rng() % HTRI_FFAM_COUNT), tid, t, 0, 0, 0, 0, 0 };
        } else if (n_live > 0 && (n_live == LIVE || x % 2)) {
            size_t j = x % 4 == 0 ? (size_t)(rng() % n_live)
                                  : n_live - 1 - (size_t)(rng() % (n_live < 20 ? n_live : 20));
            ops[n++] = F((uint8_t)(rng() % HTRI_FFAM_COUNT), tid, t, live[j].tid, live[j].no);
            live[j] = live[--n_live];
        } else {
            uint8_t tag = (x >> 8) % 16 == 0 ? HTRI_REC_INHERIT : HTRI_REC_ALLOC;
            ops[n++] = (op){ tag, (uint8_t)(rng() % HTRI_FAM_COUNT), tid, t, rng() % 5000, 0, tid,
                             next_no[tix]++, 1 };
            live[n_live].tid = tid;
            live[n_live++].no = ops[n - 1].ref;
        }
        if (rng() % 500 == 0 && n < N) {     /* a new frame, maybe of another thread */
            cuts[n_cuts++] = n;
            t += 16384;
            if (rng() % 2)
                tix = (tix + 1) % 3;
        }
    }
    got g = { 0 };
    CHECK_EQ_U(round_trip(ops, n, cuts, tags, codes, &g), 0);
    check_same(ops, n, &g);
    size_t n_short = 0, n_frees = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].tag != HTRI_REC_FREE || !ops[i].known || ops[i].ref_tid != ops[i].tid)
            continue;
        n_frees++;
        n_short += codes[i] < 128;
    }
    CHECK(n_short > n_frees / 2);
    free(g.v);
    free(ops);
    free(live);
    free(cuts);
    free(tags);
    free(codes);
}

static int replay_mem(enc *e, got *g, htri_reader **out)
{
    htri_reader *r = NULL;
    CHECK_EQ_U(htri_reader_open_mem(e->buf, e->len, &r), 0);
    *out = r;
    return r ? htri_reader_replay(r, on_rec, g) : -1;
}

/* The reader refuses damaged references as corrupt: a distance past the thread's first
 * number, a tid out of range, a frame without its first number, version 1's FREE_RECENT
 * tags; and refuses a version 1 file as older. */
static void test_reader_strict(void)
{
    struct { uint64_t first_no; int n_allocs; uint64_t code; int64_t tid_d; int ok; const char *why; } cases[] = {
        { 0, 3, 6, 0, 1, NULL },                    /* 3 back from 3: number 0 */
        { 0, 3, 8, 0, 0, "before the thread's first" },
        { 10, 0, 20, 0, 1, NULL },                  /* number 0: allocated in an earlier frame */
        { 10, 0, 22, 0, 0, "before the thread's first" },
        { 0, 1, 0, 0, 1, NULL },                    /* unknown */
        { 0, 1, 9, 3, 1, NULL },                    /* thread 8's block 4 */
        { 0, 1, 9, -6, 0, "bad thread id" },
        { 0, 1, 9, (int64_t)1 << 33, 0, "bad thread id" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        enc e;
        enc_file(&e, 1, 0);
        enc_begin_no(&e, HTRI_FRAME_EVENTS, 5, 100, cases[c].first_no);
        for (int i = 0; i < cases[c].n_allocs; i++)
            enc_alloc(&e, HTRI_FAM_NEW, 100, 16, 0, 0x4000 + 0x20 * (uint64_t)i);
        enc_free_code(&e, HTRI_FFAM_DELETE, 200, cases[c].code, cases[c].tid_d);
        enc_end(&e);
        htri_reader *r;
        got g = { 0 };
        int rc = replay_mem(&e, &g, &r);
        if (cases[c].ok) {
            CHECK_EQ_U(rc, 0);
            CHECK_EQ_U(g.n, (size_t)cases[c].n_allocs + 1);
            if (g.n == (size_t)cases[c].n_allocs + 1) {
                const op *f = &g.v[g.n - 1];
                CHECK_EQ_U(f->tag, HTRI_REC_FREE);
                CHECK_EQ_U(f->family, HTRI_FFAM_DELETE);
                CHECK_EQ_U(f->t, 200);
                CHECK_EQ_U(f->known, cases[c].code != 0);
                if (cases[c].code & 1) {
                    CHECK_EQ_U(f->ref_tid, (uint64_t)(5 + cases[c].tid_d));
                    CHECK_EQ_U(f->ref, cases[c].code >> 1);
                } else if (cases[c].code) {
                    CHECK_EQ_U(f->ref_tid, 5);
                    CHECK_EQ_U(f->ref, cases[c].first_no + (uint64_t)cases[c].n_allocs - cases[c].code / 2);
                }
            }
        } else {
            CHECK_EQ_U((uint64_t)rc, (uint64_t)HTRI_E_CORRUPT);
            CHECK(r && strstr(htri_reader_error(r), cases[c].why) != NULL);
        }
        htri_reader_close(r);
        free(g.v);
        free(e.buf);
    }

    /* version 1's FREE_RECENT tags (0x2b..0x2e) and the rest up to 0x3f are unassigned */
    for (uint8_t tag = 0x2b; tag <= 0x3f; tag += 5) {
        enc e;
        enc_file(&e, 1, 0);
        enc_begin(&e, HTRI_FRAME_EVENTS, 5, 100);
        enc_alloc(&e, HTRI_FAM_MALLOC, 100, 16, 0, 0x4000);
        enc_tag(&e, tag);
        enc_u(&e, 0);
        enc_u(&e, 0);
        enc_end(&e);
        htri_reader *r;
        got g = { 0 };
        CHECK_EQ_U((uint64_t)replay_mem(&e, &g, &r), (uint64_t)HTRI_E_CORRUPT);
        CHECK(r && strstr(htri_reader_error(r), "unknown record tag") != NULL);
        htri_reader_close(r);
        free(g.v);
        free(e.buf);
    }

    /* an EVENTS frame with no bytes at all lacks its first number; one with only that, its
     * stream lengths; lengths beyond the frame, or streams left over, are damage too */
    static const struct { uint8_t raw[12]; size_t len; const char *why; } bare[] = {
        { { 0 }, 0, "first allocation number" },
        { { 7 }, 1, "stream lengths" },
        { { 7, 1, 1, 1 }, 4, "stream lengths" },
        { { 0, 0, 0, 0, 0 }, 5, "fewer records" },                 /* no tag */
        { { 0, 1, 1, 0, 0, 0x10, 0 }, 7, "runs past the end" },    /* an ALLOC without size */
        { { 0, 9, 0, 0, 0, 0x10 }, 6, "stream runs past" },
        { { 0, 1, 1, 1, 1, 0x10, 0, 5, 1, 3 }, 10, "bytes after the last record" },
    };
    enc e;
    htri_reader *r;
    got g = { 0 };
    for (size_t c = 0; c < sizeof bare / sizeof bare[0]; c++) {
        enc_file(&e, 1, 0);
        enc_begin(&e, HTRI_FRAME_EVENTS, 5, 100);
        e.ev_mode = 0;
        memcpy(e.raw, bare[c].raw, bare[c].len);
        e.raw_len = bare[c].len;
        e.n_rec = 1;
        enc_end(&e);
        g.n = 0;
        CHECK_EQ_U((uint64_t)replay_mem(&e, &g, &r), (uint64_t)HTRI_E_CORRUPT);
        CHECK(r && strstr(htri_reader_error(r), bare[c].why) != NULL);
        if (r && !strstr(htri_reader_error(r), bare[c].why))
            fprintf(stderr, "case %zu: %s\n", c, htri_reader_error(r));
        htri_reader_close(r);
        free(e.buf);
    }
    free(g.v);

    /* a version 1 file: an older heaptrail's, said so at open */
    enc_file(&e, 1, 0);
    htri_file_header h1 = { 1, 0, 1, 1, 0, 0, 0 };
    htri_file_header_encode(&h1, e.buf);
    r = NULL;
    CHECK_EQ_U((uint64_t)htri_reader_open_mem(e.buf, e.len, &r), (uint64_t)HTRI_E_OLD_VERSION);
    CHECK(r == NULL);
    free(e.buf);
}

/* dt code: whole ticks even, other deltas odd, both exact through the reader; a code for
 * more than 2^64-1 ns is corrupt. */
static void test_dt(void)
{
    CHECK_EQ_U(htri_dt_code(0), 0);
    CHECK_EQ_U(htri_dt_code(16384), 2);
    CHECK_EQ_U(htri_dt_code(63 * 16384), 126);         /* still one varint byte */
    CHECK_EQ_U(htri_dt_code(5), 11);
    CHECK_EQ_U(htri_dt_code(16385), 32771);
    const uint64_t dts[] = { 0, 1, 16383, 16384, 16385, 3 * 16384, 1ull << 40, (1ull << 62) + 1,
                             ~0ull >> 1, ~0ull & ~16383ull };
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        uint64_t back = 1;
        CHECK_EQ_U(htri_dt_decode(htri_dt_code(dts[i]), &back), 0);
        CHECK_EQ_U(back, dts[i]);
    }
    uint64_t v;
    CHECK(htri_dt_decode(1ull << 51, &v) == -1);          /* 2^50 ticks = 2^64 ns */
    CHECK(htri_dt_decode((1ull << 51) - 2, &v) == 0 && v == ~0ull - 16383);

    /* through the writer and the reader: times on ticks and between them */
    op ops[] = { A(0, 7, 0, 0), A(0, 7, 16384, 1), F(0, 7, 16384 * 70, 7, 0),
                 A(0, 7, 16384 * 70 + 3, 2), F(0, 7, 1ull << 45, 7, 2) };
    size_t cuts[] = { 0 };
    got g = { 0 };
    CHECK_EQ_U(round_trip(ops, 5, cuts, NULL, NULL, &g), 0);
    check_same(ops, 5, &g);
    free(g.v);
    g = (got){ 0 };

    /* the reader refuses a dt code past 2^64-1 ns (an even code >= 2^51) */
    enc e;
    enc_file(&e, 1, 0);
    enc_begin(&e, HTRI_FRAME_EVENTS, 5, 0);
    enc_tag(&e, HTRI_REC_FREE);
    enc_u(&e, 1ull << 51);
    enc_u(&e, 0);
    e.t_last = ~0ull;
    enc_end(&e);
    htri_reader *r = NULL;
    CHECK_EQ_U((uint64_t)replay_mem(&e, &g, &r), (uint64_t)HTRI_E_CORRUPT);
    CHECK(r && strstr(htri_reader_error(r), "past the frame's last time") != NULL);
    htri_reader_close(r);
    free(g.v);
    free(e.buf);
}

int main(void)
{
    test_dt();
    test_families();
    test_frames_threads();
    test_random();
    test_reader_strict();
    return CHECK_DONE();
}
