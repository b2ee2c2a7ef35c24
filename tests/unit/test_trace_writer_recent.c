/* Unit tests of FREE_RECENT and the dt code (docs/trace-format.md): the writer's inline
 * encoders turn the free of one of a frame's last 16 allocations into "free of the k-th most
 * recent", the reader mirrors the ring; dt is whole 16,384 ns ticks or exact ns. Round trips through htri_writer + htri_reader (every family, ring
 * wrap-around, frame-start reset, frees outside the ring, random runs) and the reader's
 * strictness on a k beyond the ring's fill (frames built by the independent tests/cli encoder). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../cli/trace_enc.h"
#include "base/common.h"
#include "check.h"
#include "trace/reader.h"
#include "trace/writer.h"

/* One EVENTS record as the test means it, and as the reader gives it back. */
typedef struct op {
    uint8_t tag;        /* reader form: HTRI_REC_ALLOC, _INHERIT, _FREE, _MMAP, _MUNMAP */
    uint8_t family;
    uint64_t t, size, addr;
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
    g->v[g->n++] = (op){ rec->tag, rec->family, rec->t, rec->size, rec->addr };
    return 0;
}

/* Encodes ops[i] at p with the writer's encoders; returns the new end. */
static uint8_t *put(uint8_t *p, htri_evstate *s, const op *o)
{
    switch (o->tag) {
    case HTRI_REC_ALLOC:
        return htri_ev_put_block(p, s, (uint8_t)(HTRI_REC_ALLOC + o->family), o->t, o->size, 1, o->addr);
    case HTRI_REC_INHERIT:
        return htri_ev_put_block(p, s, (uint8_t)(HTRI_REC_INHERIT + o->family), o->t, o->size, 1, o->addr);
    case HTRI_REC_MMAP:
        return htri_ev_put_block(p, s, HTRI_REC_MMAP, o->t, o->size, 1, o->addr);
    case HTRI_REC_MUNMAP:
        return htri_ev_put_munmap(p, s, o->t, o->size, o->addr);
    default:
        return htri_ev_put_free(p, s, (uint8_t)(HTRI_REC_FREE + o->family), o->t, o->addr);
    }
}

/* Writes ops as EVENTS frames of one thread, a new frame before every index in `cuts`
 * (sorted, ended by 0), and reads them back into g. The frame start resets only t_prev and
 * addr_prev when agent_style is set (as src/agent does), else calls htri_evstate_reset.
 * tags[i] gets the tag byte written for ops[i]. Returns the replay's status. */
static int round_trip(const op *ops, size_t n, const size_t *cuts, int agent_style, uint8_t *tags,
                      got *g)
{
    char path[] = "/tmp/htr_recent_test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    htri_writer w;
    CHECK(htri_writer_init(&w) == 0);
    htri_file_header h = { HTRI_TRACE_VERSION, 0, 1, 1, 0, 0, 0 };
    CHECK(htri_writer_start(&w, fd, &h) == 0);
    static uint8_t buf[1 << 20];
    htri_evstate s;
    memset(&s, 0xa5, sizeof s);              /* stale state from a previous frame */
    size_t i = 0;
    while (i < n) {
        size_t stop = n;
        while (*cuts && *cuts <= i) cuts++;
        if (*cuts) stop = *cuts;
        uint8_t *p = buf;
        if (agent_style) {
            s.t_prev = ops[i].t;
            s.addr_prev = 0;
        } else {
            htri_evstate_reset(&s, ops[i].t);
        }
        size_t first = i;
        for (; i < stop && p - buf < (long)sizeof buf - HTRI_EVENT_MAX; i++) {
            uint8_t *rec = p;
            p = put(p, &s, &ops[i]);
            if (tags) tags[i] = *rec;
        }
        CHECK(htri_writer_frame(&w, HTRI_FRAME_EVENTS, 7, (uint32_t)(i - first), ops[first].t,
                                ops[i - 1].t, buf, (size_t)(p - buf)) == 0);
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

static void check_same(const op *ops, size_t n, const got *g)
{
    CHECK_EQ_U(g->n, n);
    size_t bad = 0;
    for (size_t i = 0; i < n && i < g->n; i++) {
        const op *a = &ops[i], *b = &g->v[i];
        if (a->tag != b->tag || a->family != b->family || a->t != b->t || a->addr != b->addr ||
            (a->tag != HTRI_REC_FREE && a->size != b->size)) {
            if (bad++ < 5)
                fprintf(stderr, "record %zu: tag %u/%u fam %u/%u t %llu/%llu addr %llx/%llx\n", i,
                        a->tag, b->tag, a->family, b->family, (unsigned long long)a->t,
                        (unsigned long long)b->t, (unsigned long long)a->addr,
                        (unsigned long long)b->addr);
        }
    }
    CHECK_EQ_U(bad, 0);
}

#define A(fam, t, addr) (op){ HTRI_REC_ALLOC, fam, t, 32, addr }
#define F(ffam, t, addr) (op){ HTRI_REC_FREE, ffam, t, 0, addr }

/* Every allocation and free family; INHERIT enters the ring, MMAP does not. */
static void test_families(void)
{
    op ops[32];
    size_t n = 0;
    for (int f = 0; f < HTRI_FAM_COUNT; f++)
        ops[n++] = A(f, 100 + (uint64_t)f, 0x1000 + 0x100 * (uint64_t)f);
    ops[n++] = (op){ HTRI_REC_INHERIT, HTRI_FAM_NEW, 110, 8, 0x9000 };
    ops[n++] = (op){ HTRI_REC_MMAP, 0, 111, 1 << 20, 0x7f0000000000 };
    for (int f = 0; f < HTRI_FFAM_COUNT; f++)         /* 0x1500 (k 1), 0x1400 (k 1 again)... */
        ops[n++] = F(f, 120, 0x1500 - 0x100 * (uint64_t)f);
    ops[n++] = F(HTRI_FFAM_FREE, 121, 0x9000);                   /* the INHERIT: k 0 */
    ops[n++] = (op){ HTRI_REC_MUNMAP, 0, 122, 1 << 20, 0x7f0000000000 };
    ops[n++] = F(HTRI_FFAM_DELETE, 123, 0x7f0000000000);         /* not in the ring: FREE */
    uint8_t tags[32];
    size_t cuts[] = { 0 };
    got g = { 0 };
    CHECK_EQ_U(round_trip(ops, n, cuts, 0, tags, &g), 0);
    check_same(ops, n, &g);
    for (int f = 0; f < HTRI_FFAM_COUNT; f++)
        CHECK_EQ_U(tags[8 + f], HTRI_REC_FREE_RECENT + f);
    CHECK_EQ_U(tags[12], HTRI_REC_FREE_RECENT + HTRI_FFAM_FREE);
    CHECK_EQ_U(tags[14], HTRI_REC_FREE + HTRI_FFAM_DELETE);
    free(g.v);

    /* the k written: 0x1500 is the 2nd most recent allocation (the INHERIT is the latest) */
    uint8_t b[64], *p = b;
    htri_evstate s;
    htri_evstate_reset(&s, 0);
    for (int i = 0; i < 3; i++)
        p = htri_ev_put_block(p, &s, HTRI_REC_ALLOC, 0, 8, 0, 0x100 + 0x10 * (uintptr_t)i);
    p = htri_ev_put_block(p, &s, HTRI_REC_MMAP, 0, 4096, 0, 0x200000);
    uint8_t *f = p;
    p = htri_ev_put_free(p, &s, HTRI_REC_FREE + HTRI_FFAM_DELETE_ARRAY, 16, 0x110);
    CHECK_EQ_U(p - f, 3);
    CHECK_EQ_U(f[0], HTRI_REC_FREE_RECENT + HTRI_FFAM_DELETE_ARRAY);
    CHECK_EQ_U(f[1], 16 * 2 + 1);            /* dt code of 16 ns */
    CHECK_EQ_U(f[2], 1);                    /* 0x120 is k 0, 0x110 k 1; the MMAP is not counted */
    CHECK_EQ_U(s.addr_prev, 0x110);
}

/* 40 allocations: the ring keeps the last 16 (k 0..15), older ones are plain FREEs. */
static void test_wrap(void)
{
    op ops[128];
    size_t n = 0;
    uint64_t t = 1000;
    for (uint64_t i = 0; i < 40; i++)
        ops[n++] = A(HTRI_FAM_MALLOC, t++, 0x50000 + 0x40 * i);
    size_t first_free = n;
    ops[n++] = F(0, t++, 0x50000 + 0x40 * 39);    /* k 0 */
    ops[n++] = F(0, t++, 0x50000 + 0x40 * 24);    /* k 15: the oldest the ring holds */
    ops[n++] = F(0, t++, 0x50000 + 0x40 * 23);    /* k 16: gone, plain FREE */
    ops[n++] = F(0, t++, 0x50000);                /* plain FREE */
    ops[n++] = F(0, t++, 0x50000 + 0x40 * 39);    /* freed again (double free): still k 0 */
    for (uint64_t i = 0; i < 20; i++)             /* the ring wraps again */
        ops[n++] = A(HTRI_FAM_CALLOC, t++, 0x90000 + 0x40 * i);
    ops[n++] = F(1, t++, 0x90000 + 0x40 * 4);     /* k 15 */
    ops[n++] = F(1, t++, 0x90000 + 0x40 * 3);     /* k 16: plain */
    ops[n++] = F(1, t++, 0x50000 + 0x40 * 38);    /* pushed out: plain */
    uint8_t tags[128];
    size_t cuts[] = { 0 };
    got g = { 0 };
    CHECK_EQ_U(round_trip(ops, n, cuts, 0, tags, &g), 0);
    check_same(ops, n, &g);
    const uint8_t want[] = { 0x2b, 0x2b, 0x20, 0x20, 0x2b };
    for (size_t i = 0; i < sizeof want; i++)
        CHECK_EQ_U(tags[first_free + i], want[i]);
    CHECK_EQ_U(tags[n - 3], HTRI_REC_FREE_RECENT + 1);
    CHECK_EQ_U(tags[n - 2], HTRI_REC_FREE + 1);
    CHECK_EQ_U(tags[n - 1], HTRI_REC_FREE + 1);
    free(g.v);
}

/* Frames are self-contained: a free of a block allocated in the previous frame is a plain
 * FREE even when the caller resets only t_prev and addr_prev (the agent's way), also when
 * the new frame starts with a MUNMAP. */
static void test_frame_reset(void)
{
    for (int agent_style = 0; agent_style < 2; agent_style++) {
        op ops[16];
        size_t n = 0;
        ops[n++] = A(0, 10, 0x1000);
        ops[n++] = A(0, 11, 0x2000);
        ops[n++] = F(0, 12, 0x1000);                             /* k 1 */
        ops[n++] = F(0, 20, 0x2000);                             /* frame 2: plain */
        ops[n++] = A(0, 21, 0x3000);
        ops[n++] = F(0, 22, 0x3000);                             /* k 0 */
        ops[n++] = (op){ HTRI_REC_MUNMAP, 0, 30, 4096, 0x7000 }; /* frame 3 */
        ops[n++] = F(2, 31, 0x3000);                             /* plain */
        ops[n++] = A(4, 32, 0x3000);
        ops[n++] = F(2, 33, 0x3000);                             /* k 0 */
        uint8_t tags[16];
        size_t cuts[] = { 3, 6, 0 };
        got g = { 0 };
        CHECK_EQ_U(round_trip(ops, n, cuts, agent_style, tags, &g), 0);
        check_same(ops, n, &g);
        CHECK_EQ_U(tags[2], HTRI_REC_FREE_RECENT);
        CHECK_EQ_U(tags[3], HTRI_REC_FREE);
        CHECK_EQ_U(tags[5], HTRI_REC_FREE_RECENT);
        CHECK_EQ_U(tags[7], HTRI_REC_FREE + 2);
        CHECK_EQ_U(tags[9], HTRI_REC_FREE_RECENT + 2);
        free(g.v);
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* 200,000 random records over random frame cuts: mostly frees of recent blocks (LIFO-ish),
 * some of old ones, address reuse, every family; the reader gives back exactly what went in. */
static void test_random(void)
{
    enum { N = 200000, LIVE = 4096 };
    op *ops = malloc(N * sizeof *ops);
    uint64_t *live = malloc(LIVE * sizeof *live);
    size_t *cuts = calloc(N + 1, sizeof *cuts);
    uint8_t *tags = malloc(N);
    if (!ops || !live || !cuts || !tags) abort();
    size_t n_live = 0, n = 0, n_cuts = 0;
    uint64_t t = 0, next_addr = 0x10000;
    while (n < N) {
        t += rng() % 3 == 0 ? 16384 : 0;
        uint64_t x = rng();
        if (n_live > 0 && (n_live == LIVE || x % 2)) {
            size_t j = x % 4 == 0 ? (size_t)(rng() % n_live) : n_live - 1 - (size_t)(rng() % (n_live < 20 ? n_live : 20));
            ops[n++] = F((uint8_t)(rng() % HTRI_FFAM_COUNT), t, live[j]);
            live[j] = live[--n_live];
        } else {
            uint64_t a = rng() % 3 == 0 && n > 0 && ops[n - 1].tag == HTRI_REC_FREE ? ops[n - 1].addr
                                                                              : (next_addr += 0x30);
            ops[n++] = (op){ (x >> 8) % 16 == 0 ? HTRI_REC_INHERIT : HTRI_REC_ALLOC,
                             (uint8_t)(rng() % HTRI_FAM_COUNT), t, rng() % 5000, a };
            live[n_live++] = a;
        }
        if (rng() % 500 == 0 && n < N) {   /* frames of one thread that tie would merge */
            cuts[n_cuts++] = n;              /* allocations first: a new tick per frame */
            t += 16384;
        }
    }
    got g = { 0 };
    CHECK_EQ_U(round_trip(ops, n, cuts, 1, tags, &g), 0);
    check_same(ops, n, &g);
    size_t n_recent = 0;
    for (size_t i = 0; i < n; i++)
        n_recent += tags[i] >= HTRI_REC_FREE_RECENT && tags[i] < HTRI_REC_FREE_RECENT + 4;
    CHECK(n_recent > N / 5);
    free(g.v);
    free(ops);
    free(live);
    free(cuts);
    free(tags);
}

/* The reader refuses a k at or beyond the ring's fill, and one past 15, as corrupt. */
static void test_reader_strict(void)
{
    struct { int n_allocs; uint64_t k; int ok; } cases[] = {
        { 3, 2, 1 }, { 3, 3, 0 }, { 0, 0, 0 }, { 20, 15, 1 }, { 20, 16, 0 }, { 20, 1000, 0 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        enc e;
        enc_file(&e, 1, 0);
        enc_begin(&e, HTRI_FRAME_EVENTS, 5, 100);
        for (int i = 0; i < cases[c].n_allocs; i++)
            enc_alloc(&e, HTRI_FAM_NEW, 100, 16, 0, 0x4000 + 0x20 * (uint64_t)i);
        enc_free_recent(&e, HTRI_FFAM_DELETE, 200, cases[c].k);
        enc_end(&e);
        htri_reader *r = NULL;
        CHECK_EQ_U(htri_reader_open_mem(e.buf, e.len, &r), 0);
        got g = { 0 };
        int rc = r ? htri_reader_replay(r, on_rec, &g) : -1;
        if (cases[c].ok) {
            CHECK_EQ_U(rc, 0);
            CHECK_EQ_U(g.n, (size_t)cases[c].n_allocs + 1);
            if (g.n == (size_t)cases[c].n_allocs + 1) {
                const op *f = &g.v[g.n - 1];
                CHECK_EQ_U(f->tag, HTRI_REC_FREE);
                CHECK_EQ_U(f->family, HTRI_FFAM_DELETE);
                CHECK_EQ_U(f->t, 200);
                CHECK_EQ_U(f->addr, 0x4000 + 0x20 * ((uint64_t)cases[c].n_allocs - 1 - cases[c].k));
            }
        } else {
            CHECK_EQ_U((uint64_t)rc, (uint64_t)HTRI_E_CORRUPT);
            CHECK(r && strstr(htri_reader_error(r), "beyond the ring") != NULL);
        }
        htri_reader_close(r);
        free(g.v);
        free(e.buf);
    }

    /* a ring never carries over: frame 2's FREE_RECENT k 0 has nothing to refer to */
    enc e;
    enc_file(&e, 1, 0);
    enc_begin(&e, HTRI_FRAME_EVENTS, 5, 100);
    enc_alloc(&e, HTRI_FAM_MALLOC, 100, 16, 0, 0x4000);
    enc_end(&e);
    enc_begin(&e, HTRI_FRAME_EVENTS, 5, 200);
    enc_free_recent(&e, HTRI_FFAM_FREE, 200, 0);
    enc_end(&e);
    htri_reader *r = NULL;
    CHECK_EQ_U(htri_reader_open_mem(e.buf, e.len, &r), 0);
    got g = { 0 };
    CHECK_EQ_U((uint64_t)(r ? htri_reader_replay(r, on_rec, &g) : -1), (uint64_t)HTRI_E_CORRUPT);
    htri_reader_close(r);
    free(g.v);
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
    op ops[] = { A(0, 0, 0x100), A(0, 16384, 0x200), F(0, 16384 * 70, 0x100),
                 A(0, 16384 * 70 + 3, 0x300), F(0, 1ull << 45, 0x300) };
    uint8_t tags[5];
    size_t cuts[] = { 0 };
    got g = { 0 };
    CHECK_EQ_U(round_trip(ops, 5, cuts, 0, tags, &g), 0);
    check_same(ops, 5, &g);
    free(g.v);
    g = (got){ 0 };

    /* the reader refuses a dt code past 2^64-1 ns (an even code >= 2^51) */
    enc e;
    enc_file(&e, 1, 0);
    enc_begin(&e, HTRI_FRAME_EVENTS, 5, 0);
    enc_tag(&e, HTRI_REC_FREE);
    enc_u(&e, 1ull << 51);
    enc_u(&e, 0x20);
    e.t_last = ~0ull;
    enc_end(&e);
    htri_reader *r = NULL;
    CHECK_EQ_U(htri_reader_open_mem(e.buf, e.len, &r), 0);
    CHECK_EQ_U((uint64_t)(r ? htri_reader_replay(r, on_rec, &g) : -1), (uint64_t)HTRI_E_CORRUPT);
    CHECK(r && strstr(htri_reader_error(r), "past the frame's last time") != NULL);
    htri_reader_close(r);
    free(g.v);
    free(e.buf);
}

int main(void)
{
    test_dt();
    test_families();
    test_wrap();
    test_frame_reset();
    test_random();
    test_reader_strict();
    return CHECK_DONE();
}
