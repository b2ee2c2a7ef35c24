/* Adapter test against the real libzstd: a compress/decompress round trip with contexts on
 * our allocator stack (ZSTD_customMem), live bytes matching zstd's own sizes, back to 0
 * after freeing the contexts, and clean failures when allocations fail. */
#include <stdint.h>
#include <string.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_customMem is in the advanced API */
#include <zstd.h>

#include "heaptrail.h"
#include "check.h"

enum { N = 1 << 20 };
static unsigned char src[N], comp[N + 1024], back[N];

static void fill(void)
{
    uint64_t r = 1;
    for (size_t i = 0; i < N; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        /* text-like: a small alphabet with runs, so it compresses */
        src[i] = (unsigned char)("etaoin shrdlu"[(r >> 60) % 13]);
    }
}

static void test_round_trip(void)
{
    htr_tracking_t *tr = htr_tracking_new(htr_libc_allocator(), NULL);
    htr_testing_t *te = htr_testing_new(htr_tracking_allocator(tr), NULL);
    htr_allocator_t a = htr_testing_allocator(te);
    ZSTD_customMem cm = HTR_ZSTD_CUSTOM_MEM(&a);
    ZSTD_CCtx *cc = ZSTD_createCCtx_advanced(cm);
    ZSTD_DCtx *dc = ZSTD_createDCtx_advanced(cm);
    CHECK(cc && dc);
    size_t n_comp = ZSTD_compressCCtx(cc, comp, sizeof comp, src, N, 3);
    CHECK(!ZSTD_isError(n_comp));
    CHECK(n_comp < N);
    size_t n_back = ZSTD_decompressDCtx(dc, back, sizeof back, comp, n_comp);
    CHECK_EQ_U(n_back, N);
    CHECK(memcmp(src, back, N) == 0);
    htr_alloc_stats_t s;
    htr_tracking_stats(tr, &s);
    /* Our blocks carry 16-byte size headers; without them, zstd's own sizes. */
    size_t ours = s.bytes_live - 16 * s.n_live;
    size_t theirs = ZSTD_sizeof_CCtx(cc) + ZSTD_sizeof_DCtx(dc);
    fprintf(stderr, "zstd: %zu bytes in %zu blocks; ZSTD_sizeof_CCtx + DCtx = %zu; %zu -> %zu bytes\n",
            ours, s.n_live, theirs, (size_t)N, n_comp);
    CHECK(ours > 100000);
    CHECK_EQ_U(ours, theirs);
    ZSTD_freeCCtx(cc);
    ZSTD_freeDCtx(dc);
    CHECK_EQ_U(htr_tracking_live_bytes(tr), 0);
    CHECK_EQ_U(htr_testing_finish(te, NULL), 0);
    htr_testing_destroy(te);
    htr_tracking_destroy(tr);
}

static void test_failures(void)
{
    int n_failed = 0;
    for (uint64_t n = 0; n < 8; n++) {
        htr_failing_t *f = htr_failing_new(htr_libc_allocator(),
                                           &(htr_failing_opts_t){ HTR_FAIL_AFTER, n, 0, 0 });
        htr_testing_t *te = htr_testing_new(htr_failing_allocator(f), NULL);
        htr_allocator_t a = htr_testing_allocator(te);
        ZSTD_customMem cm = HTR_ZSTD_CUSTOM_MEM(&a);
        ZSTD_CCtx *cc = ZSTD_createCCtx_advanced(cm);
        if (cc) {
            size_t r = ZSTD_compressCCtx(cc, comp, sizeof comp, src, N, 3);
            n_failed += ZSTD_isError(r) != 0;
            ZSTD_freeCCtx(cc);
        } else {
            n_failed++;
        }
        CHECK_EQ_U(htr_testing_finish(te, NULL), 0);
        htr_testing_destroy(te);
        htr_failing_destroy(f);
    }
    CHECK(n_failed >= 1);
}

int main(void)
{
    fill();
    test_round_trip();
    test_failures();
    return CHECK_DONE();
}
