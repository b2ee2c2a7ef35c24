/* Unit tests for src/agent/guard.c directly over libc malloc: redzone layout and damage
 * reports, aligned blocks, the quarantine (fill checks, FIFO eviction, double-free lookup),
 * bad-free diagnosis, fault injection, the limit, option parsing and the misuse records. */
#include <stdint.h>
#include <stdlib.h>
#include <malloc.h>
#include "check.h"
#include "base/common.h"
#include "trace/format.h"
#include "trace/error_record.h"
#include "unwind/unwind.h"
#include "agent/guard.h"

static htri_error_rec g_errs[64];
static int g_n_errs;

static void test_reporter(void *user, const htri_error_rec *e)
{
    (void)user;
    if (g_n_errs < (int)HTRI_ARRAY_LEN(g_errs)) g_errs[g_n_errs] = *e;
    g_n_errs++;
}

static void guard_setup(size_t rz, size_t quarantine)
{
    htri_guard_opts o;
    htri_guard_opts_default(&o);
    o.redzone = rz;
    o.quarantine_bytes = quarantine;
    CHECK(htri_guard_init(&o, test_reporter, NULL) == 0);
    g_n_errs = 0;
}

/* A guarded block from libc, as the hooks would make it. */
static void *guarded_alloc(size_t size, size_t align, void **raw_out)
{
    size_t raw_size, raw_align;
    CHECK(htri_guard_size_for(size, align, &raw_size, &raw_align) == 0);
    void *raw = NULL;
    if (raw_align) CHECK(posix_memalign(&raw, raw_align, raw_size) == 0);
    else raw = malloc(raw_size);
    CHECK(raw != NULL);
    *raw_out = raw;
    return htri_guard_init_block(raw, size, align, HTR_FILL_FRESH);
}

static void test_layout(void)
{
    guard_setup(16, 0);
    CHECK(htri_guard_layout_on());
    size_t raw_size, raw_align;
    CHECK(htri_guard_size_for(10, 0, &raw_size, &raw_align) == 0);
    CHECK_EQ_U(raw_size, 32 + 10 + 16);
    CHECK_EQ_U(raw_align, 0);
    CHECK(htri_guard_size_for(SIZE_MAX - 8, 0, &raw_size, &raw_align) == -ENOMEM);
    CHECK(htri_guard_size_for(10, 48, &raw_size, &raw_align) == -EINVAL);

    void *raw;
    uint8_t *u = guarded_alloc(10, 0, &raw);
    CHECK(((uintptr_t)u & 15) == 0);
    CHECK(htri_guard_raw(u) == raw);
    CHECK(htri_guard_raw_for(u, 0) == raw);
    CHECK_EQ_U(htri_guard_usable_size(u), 10);
    for (int i = 0; i < 10; i++) CHECK(u[i] == HTR_FILL_FRESH);
    CHECK(u[-1] == HTR_FILL_GUARD && u[10] == HTR_FILL_GUARD && u[25] == HTR_FILL_GUARD);
    CHECK(htri_guard_check_block(u, 10, NULL) == 0);
    /* a zero-size block still gets both redzones */
    void *raw0;
    uint8_t *z = guarded_alloc(0, 0, &raw0);
    CHECK_EQ_U(htri_guard_usable_size(z), 0);
    CHECK(htri_guard_raw(z) == raw0);
    CHECK(htri_guard_check_block(z, 0, NULL) == 0);
    free(raw0);
    /* a pointer that is not ours: its "header" does not check */
    uint64_t *plain = calloc(8, 8);
    CHECK(htri_guard_raw(plain + 6) == NULL);
    CHECK_EQ_U(htri_guard_usable_size(plain + 6), 0);
    free(plain);
    free(raw);
    /* redzone sizes are rounded up to 16 */
    guard_setup(5, 0);
    CHECK(htri_guard_size_for(1, 0, &raw_size, &raw_align) == 0);
    CHECK_EQ_U(raw_size, 32 + 1 + 16);
    /* off: identity layout */
    guard_setup(0, 0);
    CHECK(!htri_guard_layout_on());
    CHECK(htri_guard_size_for(100, 64, &raw_size, &raw_align) == 0);
    CHECK_EQ_U(raw_size, 100);
    CHECK_EQ_U(raw_align, 64);
}

static void test_overrun_underrun(void)
{
    guard_setup(16, 0);
    void *raw;
    uint8_t *u = guarded_alloc(10, 0, &raw);
    htri_guard_damage d;

    u[10] = 0x41; /* overrun by 1 */
    CHECK(htri_guard_check_block(u, 10, &d) == 1);
    CHECK(d.kind == HTRI_ERR_OVERRUN);
    CHECK(d.offset == 10);
    CHECK_EQ_U(d.length, 1);
    CHECK_EQ_U(d.n_bytes, 1);
    CHECK_EQ_U(d.bytes[0], 0x41);
    CHECK_EQ_U(htri_guard_verify_block(u, 10, 7, HTRI_FAM_MALLOC, 9, HTRI_FFAM_FREE), 1);
    CHECK_EQ_U(g_n_errs, 1);
    CHECK(g_errs[0].kind == HTRI_ERR_OVERRUN && g_errs[0].offset == 10 && g_errs[0].length == 1);
    CHECK(g_errs[0].alloc_node == 7 && g_errs[0].where_node == 9);
    CHECK(g_errs[0].block_addr == (uintptr_t)u && g_errs[0].block_size == 10);
    CHECK(g_errs[0].addr == (uintptr_t)u + 10);
    /* repaired: reported once */
    CHECK(htri_guard_check_block(u, 10, NULL) == 0);

    memset(u + 10, 'x', 15); /* overrun by 15 */
    CHECK(htri_guard_check_block(u, 10, &d) == 1);
    CHECK(d.kind == HTRI_ERR_OVERRUN && d.offset == 10);
    CHECK_EQ_U(d.length, 15);
    CHECK_EQ_U(d.n_bytes, 15);
    CHECK(d.bytes[14] == 'x');
    htri_guard_verify_block(u, 10, 7, HTRI_FAM_MALLOC, 9, HTRI_FFAM_FREE);

    u[-1] = 0; /* underrun by 1 */
    CHECK(htri_guard_check_block(u, 10, &d) == 1);
    CHECK(d.kind == HTRI_ERR_UNDERRUN);
    CHECK(d.offset == -1);
    CHECK_EQ_U(d.length, 1);
    CHECK_EQ_U(d.bytes[0], 0);
    u[-16] = 1; /* and the far end of the front redzone */
    CHECK(htri_guard_check_block(u, 10, &d) == 1);
    CHECK(d.offset == -16 && d.length == 16 && d.bytes[0] == 1 && d.bytes[15] == 0);
    /* both sides at once: two errors */
    u[12] = 0;
    g_n_errs = 0;
    CHECK_EQ_U(htri_guard_verify_block(u, 10, 1, HTRI_FAM_MALLOC, 0, HTRI_NOFAM), 2);
    CHECK(g_n_errs == 2 && g_errs[0].kind == HTRI_ERR_UNDERRUN && g_errs[1].kind == HTRI_ERR_OVERRUN);
    CHECK(g_errs[1].offset == 12);
    /* table snapshot walk */
    u[11] = 3;
    htri_block b = { .addr = (uintptr_t)u, .size = 10, .node = 5, .family = HTRI_FAM_MALLOC,
                     .tag = htri_guard_tag(0) };
    g_n_errs = 0;
    CHECK_EQ_U(htri_guard_verify_blocks(&b, 1, 0), 1);
    CHECK(g_errs[0].offset == 11 && g_errs[0].alloc_node == 5);
    /* blocks the guard did not lay out are never looked at */
    u[11] = 3;
    b.tag = 0;
    CHECK_EQ_U(htri_guard_verify_blocks(&b, 1, 0), 0);
    b.tag = htri_guard_tag(16);
    CHECK_EQ_U(htri_guard_verify_blocks(&b, 1, 0), 1);
    CHECK_EQ_U(htri_guard_tag(0), HTRI_GUARD_TAG_ON | 4);
    CHECK_EQ_U(htri_guard_tag_align(htri_guard_tag(4096)), 4096);
    CHECK_EQ_U(htri_guard_tag_align(htri_guard_tag(48)), 64);
    /* the header survives a long underrun only if the redzone is long enough: it is gone
     * here, yet raw_for still finds raw */
    memset(u - 32, 0, 32);
    CHECK(htri_guard_raw(u) == NULL);
    CHECK(htri_guard_raw_for(u, 0) == raw);
    free(raw);
}

static void test_aligned(void)
{
    static const size_t aligns[] = { 32, 64, 4096 };
    guard_setup(16, 0);
    for (size_t i = 0; i < HTRI_ARRAY_LEN(aligns); i++) {
        size_t al = aligns[i], raw_size, raw_align;
        CHECK(htri_guard_size_for(100, al, &raw_size, &raw_align) == 0);
        CHECK_EQ_U(raw_align, al);
        void *raw;
        uint8_t *u = guarded_alloc(100, al, &raw);
        CHECK(((uintptr_t)u & (al - 1)) == 0);
        CHECK(htri_guard_raw(u) == raw);
        CHECK(htri_guard_raw_for(u, al) == raw);
        CHECK_EQ_U(htri_guard_usable_size(u), 100);
        CHECK(htri_guard_check_block(u, 100, NULL) == 0);
        u[100 + 3] = 0; /* overrun at offset 103 */
        htri_guard_damage d;
        CHECK(htri_guard_check_block(u, 100, &d) == 1);
        CHECK(d.kind == HTRI_ERR_OVERRUN && d.offset == 103 && d.length == 1);
        free(raw);
    }
}

static htri_guard_qentry qentry(void *u, size_t size, uint32_t free_node)
{
    htri_guard_qentry e = { (uintptr_t)u, size, 1, free_node, HTRI_FAM_MALLOC, HTRI_FFAM_FREE, 4 };
    return e;
}

static void test_quarantine(void)
{
    /* 100-byte blocks cost 100 + 2*16 + 16 = 148: six fit in 1000, the seventh evicts */
    guard_setup(16, 1000);
    void *raws[8];
    uint8_t *us[8];
    for (int i = 0; i < 8; i++) us[i] = guarded_alloc(100, 0, &raws[i]);
    for (int i = 0; i < 6; i++) {
        htri_guard_qentry e = qentry(us[i], 100, 100 + (uint32_t)i);
        CHECK(htri_guard_quarantine_push(&e) == 0);
        htri_guard_qentry out;
        CHECK(htri_guard_quarantine_evict(&out) == 0);
    }
    for (int i = 0; i < 100; i++) CHECK(us[0][i] == HTR_FILL_FREED);
    size_t nq;
    uint64_t qbytes;
    htri_guard_quarantine_stats(&nq, &qbytes);
    CHECK_EQ_U(nq, 6);
    CHECK_EQ_U(qbytes, 6 * 148);

    /* double-free lookup: exact and interior */
    htri_guard_qentry f;
    CHECK(htri_guard_quarantine_find((uintptr_t)us[2], false, &f) == 1);
    CHECK_EQ_U(f.free_node, 102);
    CHECK(htri_guard_quarantine_find((uintptr_t)us[2] + 5, false, &f) == 0);
    CHECK(htri_guard_quarantine_find((uintptr_t)us[2] + 5, true, &f) == 1 && f.user == (uintptr_t)us[2]);
    CHECK(htri_guard_quarantine_find((uintptr_t)us[7], true, &f) == 0);

    /* write after free into block 1 (not the oldest), then into block 0's rear redzone */
    us[1][40] = 'W';
    us[1][41] = 'X';
    us[0][100 + 2] = 0;

    /* the seventh push evicts block 0, FIFO; its fill is verified on the way out */
    g_n_errs = 0;
    htri_guard_qentry e6 = qentry(us[6], 100, 106), out;
    CHECK(htri_guard_quarantine_push(&e6) == 0);
    CHECK(htri_guard_quarantine_evict(&out) == 1);
    CHECK(out.user == (uintptr_t)us[0]);
    CHECK(htri_guard_quarantine_evict(&out) == 0);
    CHECK_EQ_U(g_n_errs, 1);
    CHECK(g_errs[0].kind == HTRI_ERR_WRITE_AFTER_FREE && g_errs[0].offset == 102);
    CHECK(htri_guard_raw((void *)out.user) == raws[0]);
    free(raws[0]);
    CHECK(htri_guard_quarantine_find((uintptr_t)us[0], false, &f) == 0);

    /* verify in place (htr_check_heap) finds block 1 and repairs it */
    g_n_errs = 0;
    CHECK_EQ_U(htri_guard_quarantine_verify_all(), 1);
    CHECK(g_errs[0].kind == HTRI_ERR_WRITE_AFTER_FREE && g_errs[0].offset == 40);
    CHECK_EQ_U(g_errs[0].length, 2);
    CHECK(g_errs[0].bytes[0] == 'W' && g_errs[0].bytes[1] == 'X');
    CHECK_EQ_U(g_errs[0].free_node, 101);
    CHECK_EQ_U(htri_guard_quarantine_verify_all(), 0);

    /* a block over a quarter of the budget is not held */
    void *rawbig;
    uint8_t *big = guarded_alloc(400, 0, &rawbig);
    htri_guard_qentry eb = qentry(big, 400, 1);
    CHECK(htri_guard_quarantine_push(&eb) == 1);
    free(rawbig);

    /* drain at exit: the rest come out oldest first */
    int order[8], n = 0;
    while (htri_guard_quarantine_pop(&out)) {
        for (int i = 0; i < 8; i++)
            if (out.user == (uintptr_t)us[i]) order[n++] = i;
        free(htri_guard_raw((void *)out.user));
    }
    CHECK_EQ_U(n, 6);
    for (int i = 0; i < n; i++) CHECK_EQ_U(order[i], i + 1);
    free(raws[7]);
    htri_guard_quarantine_stats(&nq, &qbytes);
    CHECK(nq == 0 && qbytes == 0);

    /* a big churn keeps the index consistent (backward-shift deletion) */
    guard_setup(16, 64 * 148);
    for (int round = 0; round < 5000; round++) {
        void *r;
        uint8_t *u = guarded_alloc(100, 0, &r);
        htri_guard_qentry e = qentry(u, 100, (uint32_t)round);
        CHECK(htri_guard_quarantine_push(&e) == 0);
        while (htri_guard_quarantine_evict(&out)) {
            CHECK(htri_guard_quarantine_find(out.user, false, &f) == 0);
            free(htri_guard_raw((void *)out.user));
        }
        CHECK(htri_guard_quarantine_find((uintptr_t)u, false, &f) == 1);
    }
    htri_guard_quarantine_stats(&nq, NULL);
    CHECK_EQ_U(nq, 64);
    while (htri_guard_quarantine_pop(&out)) free(htri_guard_raw((void *)out.user));
    CHECK_EQ_U(g_n_errs, 0);

    /* a block the guard did not lay out (align_log2 0): no redzone check, raw == user */
    guard_setup(16, 1000);
    uint8_t *plain = malloc(40);
    htri_guard_qentry epl = qentry(plain, 40, 3);
    epl.align_log2 = 0;
    CHECK(htri_guard_quarantine_push(&epl) == 0);
    CHECK(htri_guard_quarantine_pop(&out) == 1 && htri_guard_qentry_raw(&out) == plain);
    CHECK_EQ_U(g_n_errs, 0);
    free(plain);
    void *rawg;
    uint8_t *g = guarded_alloc(8, 0, &rawg);
    htri_guard_qentry eg = qentry(g, 8, 3);
    CHECK(htri_guard_qentry_raw(&eg) == rawg);
    CHECK(htri_guard_raw_of(g, htri_guard_tag(0)) == rawg);
    CHECK(htri_guard_raw_of(g, 0) == g);
    memset(g - 32, 0, 16); /* header gone: the layout still finds raw */
    CHECK(htri_guard_raw_of(g, htri_guard_tag(0)) == rawg);
    free(rawg);

    /* quarantine without redzones */
    guard_setup(0, 1000);
    uint8_t *p = malloc(50);
    htri_guard_qentry ep = qentry(p, 50, 3);
    CHECK(htri_guard_quarantine_push(&ep) == 0);
    p[49] = 1;
    CHECK(htri_guard_quarantine_pop(&out) == 1 && out.user == (uintptr_t)p);
    CHECK(g_n_errs == 1 && g_errs[0].offset == 49);
    free(p);
    htri_guard_shutdown();
}

int g_guard_test_global[4];

static void test_bad_frees(void)
{
    CHECK(htri_guard_families_match(HTRI_FAM_MALLOC, HTRI_FFAM_FREE));
    CHECK(htri_guard_families_match(HTRI_FAM_CALLOC, HTRI_FFAM_REALLOC));
    CHECK(htri_guard_families_match(HTRI_FAM_MEMALIGN, HTRI_FFAM_FREE));
    CHECK(htri_guard_families_match(HTRI_FAM_NEW, HTRI_FFAM_DELETE));
    CHECK(htri_guard_families_match(HTRI_FAM_NEW_ARRAY, HTRI_FFAM_DELETE_ARRAY));
    CHECK(!htri_guard_families_match(HTRI_FAM_MALLOC, HTRI_FFAM_DELETE));
    CHECK(!htri_guard_families_match(HTRI_FAM_NEW_ARRAY, HTRI_FFAM_DELETE));
    CHECK(!htri_guard_families_match(HTRI_FAM_NEW, HTRI_FFAM_FREE));
    CHECK(!htri_guard_families_match(HTRI_FAM_NEW, HTRI_FFAM_DELETE_ARRAY));

    guard_setup(16, 1 << 20);
    void *raw;
    uint8_t *u = guarded_alloc(10, 0, &raw);
    htri_guard_qentry e = qentry(u, 10, 42);
    CHECK(htri_guard_quarantine_push(&e) == 0);
    /* double free */
    CHECK(htri_guard_report_invalid_free((uintptr_t)u, HTRI_FFAM_FREE, 43, NULL) == 1);
    CHECK(g_n_errs == 1 && g_errs[0].kind == HTRI_ERR_INVALID_FREE);
    CHECK(g_errs[0].addr_class == HTRI_ADDR_FREED && g_errs[0].free_node == 42);
    CHECK(g_errs[0].alloc_node == 1 && g_errs[0].where_node == 43 && g_errs[0].block_size == 10);
    /* realloc of a freed block, inside it */
    htri_guard_report_invalid_free((uintptr_t)u + 4, HTRI_FFAM_REALLOC, 44, NULL);
    CHECK(g_errs[1].addr_class == HTRI_ADDR_FREED && g_errs[1].offset == 4);
    CHECK(g_errs[1].free_family == HTRI_FFAM_REALLOC);
    /* stack, global, interior of a live block, nowhere */
    int local = 0;
    htri_guard_report_invalid_free((uintptr_t)&local, HTRI_FFAM_FREE, 45, NULL);
    CHECK(g_errs[2].addr_class == HTRI_ADDR_STACK);
    htri_guard_report_invalid_free((uintptr_t)&g_guard_test_global[1], HTRI_FFAM_FREE, 46, NULL);
    CHECK(g_errs[3].addr_class == HTRI_ADDR_DATA);
    htri_block live = { .addr = 0x5000, .size = 64, .node = 8, .family = HTRI_FAM_NEW_ARRAY };
    htri_guard_report_invalid_free(0x5008, HTRI_FFAM_DELETE_ARRAY, 47, &live);
    CHECK(g_errs[4].addr_class == HTRI_ADDR_INTERIOR && g_errs[4].offset == 8);
    CHECK(g_errs[4].alloc_node == 8 && g_errs[4].block_size == 64);
    htri_guard_report_invalid_free(0x10, HTRI_FFAM_FREE, 48, NULL);
    CHECK(g_errs[5].addr_class == HTRI_ADDR_UNKNOWN);
    /* mismatch */
    htri_block nb = { .addr = 0x6000, .size = 4, .node = 9, .family = HTRI_FAM_MALLOC };
    htri_guard_report_mismatch(&nb, HTRI_FFAM_DELETE, 49);
    CHECK(g_errs[6].kind == HTRI_ERR_MISMATCHED_FREE && g_errs[6].alloc_family == HTRI_FAM_MALLOC);
    CHECK(g_errs[6].free_family == HTRI_FFAM_DELETE && g_errs[6].block_size == 4);
    /* contexts: the same kind at the same stack twice is one context */
    htri_guard_report_mismatch(&nb, HTRI_FFAM_DELETE, 49);
    uint64_t ne, nc;
    htri_guard_error_counts(&ne, &nc);
    CHECK_EQ_U(ne, 8);
    CHECK_EQ_U(nc, 7);
    /* fork: the parent keeps its counts, a child starts from zero; locks are free after */
    htri_guard_fork_prepare();
    htri_guard_fork_parent();
    htri_guard_error_counts(&ne, &nc);
    CHECK(ne == 8 && nc == 7);
    htri_guard_fork_prepare();
    htri_guard_fork_child();
    htri_guard_error_counts(&ne, &nc);
    CHECK(ne == 0 && nc == 0);
    htri_guard_report_mismatch(&nb, HTRI_FFAM_DELETE, 49);
    htri_guard_error_counts(&ne, &nc);
    CHECK(ne == 1 && nc == 1);

    htri_guard_qentry out;
    while (htri_guard_quarantine_pop(&out)) free(htri_guard_raw((void *)out.user));
    htri_guard_shutdown();
}

static int fail_pattern(htri_guard_opts *o, int n, uint8_t *out)
{
    int fails = 0;
    CHECK(htri_guard_init(o, test_reporter, NULL) == 0);
    for (int i = 0; i < n; i++) {
        out[i] = (uint8_t)htri_guard_should_fail(16, NULL, 0);
        fails += out[i] != 0;
    }
    return fails;
}

/* Allocations "made" here count under --fail-in=guard_test_fail_target. */
HTRI_NOINLINE int guard_test_fail_target(void);
HTRI_NOINLINE int guard_test_fail_target(void)
{
    uintptr_t pcs[32];
    int n = htri_unwind_capture(pcs, 32, 0);
    int r = htri_guard_should_fail(8, pcs, n);
    __asm__ volatile("" ::: "memory"); /* keep the call out of tail position */
    return r;
}

/* Not identical to the target (or -fipa-icf would fold the two into one function). */
HTRI_NOINLINE static int guard_test_elsewhere(void)
{
    uintptr_t pcs[31];
    int n = htri_unwind_capture(pcs, 31, 0);
    int r = htri_guard_should_fail(8, pcs, n);
    __asm__ volatile("" ::: "memory");
    return r;
}

static void test_fault_injection(void)
{
    htri_guard_opts o;
    uint8_t a[1000], b[1000];

    htri_guard_opts_default(&o);
    o.fail_every = 3;
    CHECK_EQ_U(fail_pattern(&o, 9, a), 3);
    CHECK(!a[0] && !a[1] && a[2] == HTRI_FAULT_EVERY && a[5] && a[8] && !a[7]);

    htri_guard_opts_default(&o);
    o.fail_after_set = true;
    o.fail_after = 5;
    CHECK_EQ_U(fail_pattern(&o, 8, a), 3);
    CHECK(!a[4] && a[5] == HTRI_FAULT_AFTER && a[7]);

    /* rate: deterministic per seed, different across seeds, about the rate asked */
    htri_guard_opts_default(&o);
    CHECK(htri_guard_parse_option(&o, "fail-rate", "0.1") == 0);
    CHECK(htri_guard_parse_option(&o, "seed", "1234") == 0);
    int fa = fail_pattern(&o, 1000, a);
    int fb = fail_pattern(&o, 1000, b);
    CHECK(fa == fb && memcmp(a, b, sizeof a) == 0);
    CHECK(fa > 60 && fa < 140);
    o.seed = 99;
    fail_pattern(&o, 1000, b);
    CHECK(memcmp(a, b, sizeof a) != 0);
    o.fail_rate_ppm = 0;
    CHECK_EQ_U(fail_pattern(&o, 100, a), 0);

    /* --fail-in: only stacks through the function count */
    uintptr_t ranges[4][2];
    CHECK(htri_guard_resolve_function("guard_test_fail_target", ranges, 4) >= 1);
    CHECK(ranges[0][0] <= (uintptr_t)&guard_test_fail_target &&
          (uintptr_t)&guard_test_fail_target < ranges[0][1]);
    CHECK(htri_guard_resolve_function("malloc", ranges, 4) >= 1); /* from libc's .dynsym */
    CHECK(htri_guard_resolve_function("no_such_function_anywhere", ranges, 4) == 0);
    htri_unwind_init(HTRI_UNWIND_DWARF);
    htri_guard_opts_default(&o);
    snprintf(o.fail_in, sizeof o.fail_in, "guard_test_fail_target");
    o.fail_every = 2;
    CHECK(htri_guard_init(&o, test_reporter, NULL) == 0);
    CHECK(guard_test_elsewhere() == 0);
    CHECK(guard_test_fail_target() == 0);
    CHECK(guard_test_elsewhere() == 0);
    CHECK(guard_test_fail_target() == HTRI_FAULT_EVERY);
    /* --fail-in alone fails everything under it */
    htri_guard_opts_default(&o);
    snprintf(o.fail_in, sizeof o.fail_in, "guard_test_fail_target");
    CHECK(htri_guard_init(&o, test_reporter, NULL) == 0);
    CHECK(guard_test_fail_target() == HTRI_FAULT_AFTER);
    CHECK(guard_test_elsewhere() == 0);
    snprintf(o.fail_in, sizeof o.fail_in, "no_such_function_anywhere");
    CHECK(htri_guard_init(&o, test_reporter, NULL) == -ENOENT);
    CHECK(guard_test_fail_target() == 0);
}

static void test_limit(void)
{
    htri_guard_opts o;
    htri_guard_opts_default(&o);
    CHECK(htri_guard_init(&o, test_reporter, NULL) == 0);
    CHECK(htri_guard_limit_reserve(SIZE_MAX) == 0); /* no limit */
    CHECK_EQ_U(htri_guard_live_bytes(), 0);
    CHECK(htri_guard_parse_option(&o, "limit", "1k") == 0);
    CHECK(htri_guard_init(&o, test_reporter, NULL) == 0);
    CHECK(htri_guard_limit_reserve(600) == 0);
    CHECK(htri_guard_limit_reserve(500) == -ENOMEM);
    CHECK_EQ_U(htri_guard_live_bytes(), 600);
    CHECK(htri_guard_limit_reserve(424) == 0);
    CHECK(htri_guard_limit_reserve(1) == -ENOMEM);
    htri_guard_limit_release(600);
    CHECK(htri_guard_limit_reserve(500) == 0);
    CHECK(htri_guard_limit_reserve(SIZE_MAX) == -ENOMEM);
    CHECK_EQ_U(htri_guard_live_bytes(), 924);

    htri_block blocks[6] = {
        { .addr = 0x1000, .size = 100, .node = 1 }, { .addr = 0x2000, .size = 500, .node = 2 },
        { .addr = 0x3000, .size = 100, .node = 1 }, { .addr = 0x4000, .size = 50, .node = 3 },
        { .addr = 0x5000, .size = 300, .node = 0 }, { .addr = 0x6000, .size = 250, .node = 1 },
    };
    htri_limit_holder top[3];
    CHECK_EQ_U(htri_guard_top_holders(blocks, 6, top, 3), 3);
    CHECK(top[0].node == 2 && top[0].bytes == 500 && top[0].blocks == 1);
    CHECK(top[1].node == 1 && top[1].bytes == 450 && top[1].blocks == 3);
    CHECK(top[2].node == 0 && top[2].bytes == 300);
    CHECK_EQ_U(htri_guard_top_holders(blocks, 0, top, 3), 0);
}

static void test_options(void)
{
    htri_guard_opts o;
    htri_guard_opts_default(&o);
    CHECK_EQ_U(o.redzone, 16);
    CHECK_EQ_U(o.quarantine_bytes, 64u << 20);
    CHECK(o.fill_alloc == -1);
    CHECK(htri_guard_parse_option(&o, "quarantine", "64M") == 0 && o.quarantine_bytes == 64u << 20);
    CHECK(htri_guard_parse_option(&o, "limit", "512M") == 0 && o.limit_bytes == 512u << 20);
    CHECK(htri_guard_parse_option(&o, "limit", "2G") == 0 && o.limit_bytes == 2ull << 30);
    CHECK(htri_guard_parse_option(&o, "redzone", "0") == 0 && o.redzone == 0);
    CHECK(htri_guard_parse_option(&o, "redzone", "99999") == -EINVAL);
    CHECK(htri_guard_parse_option(&o, "fill-alloc", NULL) == 0 && o.fill_alloc == HTR_FILL_FRESH);
    CHECK(htri_guard_parse_option(&o, "fill-alloc", "0xCC") == 0 && o.fill_alloc == 0xCC);
    CHECK(htri_guard_parse_option(&o, "fill-alloc", "256") == -EINVAL);
    CHECK(htri_guard_parse_option(&o, "fail-rate", "0.5") == 0 && o.fail_rate_ppm == 500000);
    CHECK(htri_guard_parse_option(&o, "fail-rate", "1") == 0 && o.fail_rate_ppm == 1000000);
    CHECK(htri_guard_parse_option(&o, "fail-rate", "5%") == 0 && o.fail_rate_ppm == 50000);
    CHECK(htri_guard_parse_option(&o, "fail-rate", "1.5") == -EINVAL);
    CHECK(htri_guard_parse_option(&o, "fail-rate", "x") == -EINVAL);
    CHECK(htri_guard_parse_option(&o, "fail-after", "0") == 0 && o.fail_after_set && o.fail_after == 0);
    CHECK(htri_guard_parse_option(&o, "fail-every", "0") == -EINVAL);
    CHECK(htri_guard_parse_option(&o, "fail-in", "parse_config") == 0);
    CHECK_STR(o.fail_in, "parse_config");
    CHECK(htri_guard_parse_option(&o, "limit-action", "abort") == 0 && o.limit_action == HTRI_LIMIT_ABORT);
    CHECK(htri_guard_parse_option(&o, "limit-action", "explode") == -EINVAL);
    CHECK(htri_guard_parse_option(&o, "abort-on-error", NULL) == 0 && o.abort_on_error);
    CHECK(htri_guard_parse_option(&o, "abort-on-error", "no") == 0 && !o.abort_on_error);
    CHECK(htri_guard_parse_option(&o, "error-exitcode", "42") == 0 && o.error_exitcode == 42);
    CHECK(htri_guard_parse_option(&o, "limit", "12Q") == -EINVAL);
    CHECK(htri_guard_parse_option(&o, "limit", "99999999999999999999") == -EINVAL);
    CHECK(htri_guard_parse_option(&o, "depth", "8") == -ENOENT);
}

static void test_records(void)
{
    htri_error_rec e, d;
    memset(&e, 0, sizeof e); /* padding too: the round trip is compared with memcmp */
    e.t = 123456789;
    e.tid = 77;
    e.kind = HTRI_ERR_UNDERRUN;
    e.alloc_family = HTRI_FAM_NEW_ARRAY;
    e.free_family = HTRI_NOFAM;
    e.where_node = 5;
    e.alloc_node = 300000;
    e.addr = 0x7fffdeadbeefull;
    e.block_addr = 0x7fffdeadbef0ull;
    e.block_size = 1ull << 40;
    e.offset = -1;
    e.length = 1;
    e.addr_class = HTRI_ADDR_INTERIOR;
    e.n_bytes = HTRI_ERR_MAX_BYTES;
    for (int i = 0; i < HTRI_ERR_MAX_BYTES; i++) e.bytes[i] = (uint8_t)(i * 7);
    uint8_t buf[HTRI_ERROR_REC_MAX + 8];
    size_t n = htri_error_rec_encode(&e, buf);
    CHECK(n <= HTRI_ERROR_REC_MAX);
    const uint8_t *p = buf, *body;
    uint8_t tag;
    size_t blen;
    CHECK(htri_error_rec_split(&p, buf + n, &tag, &body, &blen) == 0);
    CHECK(tag == HTRI_REC_ERROR && p == buf + n);
    CHECK(htri_error_rec_decode(body, blen, &d) == 0);
    CHECK(memcmp(&e, &d, sizeof e) == 0);
    CHECK(htri_error_rec_decode(body, blen - 1, &d) == -1);
    p = buf;
    CHECK(htri_error_rec_split(&p, buf + n - 1, &tag, &body, &blen) == -1);

    htri_limit_rec l, ld;
    memset(&l, 0, sizeof l);
    l.t = 5; l.tid = 1; l.size = 1 << 20; l.node = 3; l.family = HTRI_FAM_NEW;
    l.live_bytes = 500u << 20; l.limit_bytes = 512u << 20; l.n_holders = HTRI_LIMIT_MAX_HOLDERS;
    for (uint32_t i = 0; i < l.n_holders; i++) l.holders[i] = (htri_limit_holder){ i + 1, UINT64_MAX - i, i };
    uint8_t lb[HTRI_LIMIT_REC_MAX];
    n = htri_limit_rec_encode(&l, lb);
    CHECK(n <= HTRI_LIMIT_REC_MAX);
    p = lb;
    CHECK(htri_error_rec_split(&p, lb + n, &tag, &body, &blen) == 0 && tag == HTRI_REC_LIMIT);
    CHECK(htri_limit_rec_decode(body, blen, &ld) == 0);
    CHECK(memcmp(&l, &ld, sizeof l) == 0);

    uint64_t st, se, sc;
    n = htri_error_summary_encode(77, 5, 3, lb);
    p = lb;
    CHECK(htri_error_rec_split(&p, lb + n, &tag, &body, &blen) == 0 && tag == HTRI_REC_ERROR_SUMMARY);
    CHECK(htri_error_summary_decode(body, blen, &st, &se, &sc) == 0 && st == 77 && se == 5 && sc == 3);

    htri_fault_rec f = { 9, 2, HTRI_FAULT_RATE, HTRI_FAM_MALLOC, 64, 11 }, fd;
    n = htri_fault_rec_encode(&f, lb);
    p = lb;
    CHECK(htri_error_rec_split(&p, lb + n, &tag, &body, &blen) == 0 && tag == HTRI_REC_FAULT);
    CHECK(htri_fault_rec_decode(body, blen, &fd) == 0);
    CHECK(fd.t == 9 && fd.tid == 2 && fd.reason == HTRI_FAULT_RATE && fd.family == HTRI_FAM_MALLOC);
    CHECK(fd.size == 64 && fd.node == 11);
}

/* Threads free into one quarantine and evict from it at once: every block comes out once,
 * nothing is reported, the counts return to zero. */
#include <pthread.h>
static _Atomic long g_mt_evicted;

static void *mt_worker(void *arg)
{
    (void)arg;
    htri_guard_qentry out;
    for (int i = 0; i < 20000; i++) {
        void *raw;
        uint8_t *u = guarded_alloc(16 + (size_t)(i % 200), 0, &raw);
        htri_guard_qentry e = qentry(u, 16 + (size_t)(i % 200), 1);
        if (htri_guard_quarantine_push(&e)) free(raw);
        while (htri_guard_quarantine_evict(&out)) {
            free(htri_guard_raw((void *)out.user));
            g_mt_evicted++;
        }
    }
    return NULL;
}

static void *mt_push_one(void *arg)
{
    CHECK(htri_guard_quarantine_push((const htri_guard_qentry *)arg) == 0);
    return NULL;
}

static void test_quarantine_threads(void)
{
    guard_setup(16, 256 * 1024);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, mt_worker, NULL);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    size_t nq;
    uint64_t bytes;
    htri_guard_quarantine_stats(&nq, &bytes);
    CHECK(bytes <= 256 * 1024);
    /* a block another thread freed (into a ring of its own: threads are dealt rings in
     * turn) is found by this one, so a double free across threads is still named one */
    void *raw;
    uint8_t *u = guarded_alloc(40, 0, &raw);
    htri_guard_qentry e = qentry(u, 40, 77), f;
    pthread_t one;
    pthread_create(&one, NULL, mt_push_one, &e);
    pthread_join(one, NULL);
    CHECK(htri_guard_quarantine_find((uintptr_t)u, false, &f) == 1 && f.free_node == 77);
    g_mt_evicted--;   /* counted below as it is drained */
    htri_guard_qentry out;
    while (htri_guard_quarantine_pop(&out)) {
        free(htri_guard_raw((void *)out.user));
        g_mt_evicted++;
    }
    CHECK_EQ_U(g_mt_evicted, 4 * 20000);
    CHECK_EQ_U(g_n_errs, 0);
    htri_guard_shutdown();
}

/* One thread fills the quarantine and goes quiet; a second thread's freed block must still
 * wait a budget's worth of frees, as it would in one FIFO: evicting from the second thread's
 * own (nearly empty) ring first would free it at once, and a write after that free would go
 * unseen. */
static uint8_t *g_share_first;

static void share_push(size_t size, uint8_t **user)
{
    void *raw;
    uint8_t *u = guarded_alloc(size, 0, &raw);
    htri_guard_qentry e = qentry(u, size, 5), out;
    if (htri_guard_quarantine_push(&e)) free(raw);
    while (htri_guard_quarantine_evict(&out)) free(htri_guard_raw((void *)out.user));
    if (user) *user = u;
}

static void *share_fill_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) share_push(1000, NULL);   /* ~200 KiB through a 64 KiB budget */
    return NULL;
}

static void *share_late_thread(void *arg)
{
    (void)arg;
    share_push(100, &g_share_first);
    for (int i = 0; i < 10; i++) share_push(64, NULL);
    return NULL;
}

static void test_quarantine_rings_share_budget(void)
{
    guard_setup(16, 64 * 1024);
    /* two new threads: dealt rings in turn, so never the same one */
    pthread_t th;
    pthread_create(&th, NULL, share_fill_thread, NULL);
    pthread_join(th, NULL);
    pthread_create(&th, NULL, share_late_thread, NULL);
    pthread_join(th, NULL);
    htri_guard_qentry f, out;
    /* 1 KiB freed after it: the block is far from the front of a 64 KiB FIFO */
    CHECK(htri_guard_quarantine_find((uintptr_t)g_share_first, false, &f) == 1);
    size_t nq;
    uint64_t bytes;
    htri_guard_quarantine_stats(&nq, &bytes);
    CHECK(bytes <= 64 * 1024);
    while (htri_guard_quarantine_pop(&out)) free(htri_guard_raw((void *)out.user));
    CHECK_EQ_U(g_n_errs, 0);
    htri_guard_shutdown();
}

/* Out of address space: init keeps working with the quarantine off (-ENOMEM), and the top
 * holders report fails cleanly. Forced in a child under a tight RLIMIT_AS. */
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
static void test_out_of_memory(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        htri_guard_shutdown(); /* the ring inherited from earlier tests must not count */
        char statm[128];
        unsigned long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (!f || !fgets(statm, sizeof statm, f)) _exit(10);
        fclose(f);
        pages = strtoul(statm, NULL, 10);
        struct rlimit rl = { pages * 4096 + (4u << 20), pages * 4096 + (4u << 20) };
        if (setrlimit(RLIMIT_AS, &rl)) _exit(11);
        htri_guard_opts o;
        htri_guard_opts_default(&o);
        if (htri_guard_init(&o, test_reporter, NULL) != -ENOMEM) _exit(12);
        uint8_t buf[64];
        htri_guard_qentry e = qentry(buf + 32, 16, 1);
        if (htri_guard_quarantine_push(&e) != 1) _exit(13);       /* quarantine off */
        htri_guard_qentry out;
        if (htri_guard_quarantine_evict(&out) != 0) _exit(14);
        htri_limit_holder top[2];
        if (htri_guard_top_holders((const htri_block *)buf, (size_t)1 << 28, top, 2) != -ENOMEM)
            _exit(15);
        _exit(0);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK_EQ_U(WEXITSTATUS(status), 0);
}

int main(void)
{
    test_layout();
    test_overrun_underrun();
    test_aligned();
    test_quarantine();
    test_quarantine_threads();
    test_quarantine_rings_share_budget();
    test_bad_frees();
    test_fault_injection();
    test_limit();
    test_options();
    test_records();
    test_out_of_memory();
    return CHECK_DONE();
}
