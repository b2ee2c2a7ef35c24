/* Private: the agent's exit totals (tag 0x70, HEAP_TOTALS): the heap and anonymous-mmap
 * figures of the run summary, kept by the agent as it records (src/agent/agent.c writes the
 * record just before END), so `heaptrail run` prints its summary without decompressing a
 * single EVENTS frame (src/analyze, summary mode). */
#ifndef HTR_TRACE_TOTALS_RECORD_H
#define HTR_TRACE_TOTALS_RECORD_H
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "base/varint.h"
#include "trace/format.h"

/* Like the leak and misuse records, `tag body_len:varint body`: an older reader skips it. */
enum { HTRI_REC_TOTALS = 0x70 };

/* TOTALS flags. */
enum {
    HTRI_TOTALS_THREADS = 1u << 0,  /* several threads recorded: the peak is the one the agent
                                     * saw in its own order of events (docs/trace-format.md) */
    HTRI_TOTALS_INEXACT = 1u << 1,  /* a figure may differ from a replay of the events (too
                                     * many mappings to follow): readers replay instead */
};

/*  TOTALS body:  t flags live_bytes live_blocks peak_bytes peak_blocks peak_t
 *                mmap_count mmap_bytes mmap_live_bytes mmap_peak_bytes
 *     live_*: heap blocks recorded and not freed (INHERIT included) when END is written;
 *     peak_*: the highest live_bytes reached, the blocks then, and the time (the ALLOC or
 *     INHERIT record that reached it, same time base and quantum as the events);
 *     mmap_*: MMAP records, their bytes, the bytes still mapped, the most mapped at once, as a
 *     replay computes them (a mapping over one of ours replaces it).
 *  Valid only for the END that follows it (the next record in the same META frame). */
typedef struct htri_totals_rec {
    uint64_t t;
    uint32_t flags;
    uint64_t live_bytes, live_blocks;
    uint64_t peak_bytes, peak_blocks, peak_t;
    uint64_t mmap_count, mmap_bytes, mmap_live_bytes, mmap_peak_bytes;
} htri_totals_rec;

/* Worst-case encoded size (tag + length + body). */
#define HTRI_TOTALS_REC_MAX (1 + 2 + 11 * HTRI_VARINT_MAX)

/* Writes at out (room: HTRI_TOTALS_REC_MAX); returns the bytes written. */
static inline size_t htri_totals_rec_encode(const htri_totals_rec *r, uint8_t *out)
{
    uint8_t *p = out + 3;
    p = htri_varint_put(p, r->t);
    p = htri_varint_put(p, r->flags);
    p = htri_varint_put(p, r->live_bytes);
    p = htri_varint_put(p, r->live_blocks);
    p = htri_varint_put(p, r->peak_bytes);
    p = htri_varint_put(p, r->peak_blocks);
    p = htri_varint_put(p, r->peak_t);
    p = htri_varint_put(p, r->mmap_count);
    p = htri_varint_put(p, r->mmap_bytes);
    p = htri_varint_put(p, r->mmap_live_bytes);
    p = htri_varint_put(p, r->mmap_peak_bytes);
    return htri_lrec_finish(out, HTRI_REC_TOTALS, p);
}

/* Decodes a body (fields a newer writer appends are ignored). Returns 0, or -1 when it is
 * truncated or does not hold together (live above the peak, a peak after the record, mapped
 * bytes above those ever mapped): such figures are not used. */
static inline int htri_totals_rec_decode(const uint8_t *body, size_t len, htri_totals_rec *r)
{
    const uint8_t *p = body, *end = body + len;
    uint64_t v[11];
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 11; i++)
        if (htri_varint_get(&p, end, &v[i]))
            return -1;
    if (v[1] > UINT32_MAX)
        return -1;
    r->t = v[0];
    r->flags = (uint32_t)v[1];
    r->live_bytes = v[2];
    r->live_blocks = v[3];
    r->peak_bytes = v[4];
    r->peak_blocks = v[5];
    r->peak_t = v[6];
    r->mmap_count = v[7];
    r->mmap_bytes = v[8];
    r->mmap_live_bytes = v[9];
    r->mmap_peak_bytes = v[10];
    if (r->live_bytes > r->peak_bytes || r->peak_t > r->t ||
        r->mmap_live_bytes > r->mmap_peak_bytes || r->mmap_peak_bytes > r->mmap_bytes)
        return -1;
    return 0;
}

#endif
