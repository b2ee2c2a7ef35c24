/* Private: the leak-check records of a trace (tags 0x40-0x5f): one check's header, its blocks
 * grouped by (kind, heuristic, stack, family), and its end. The agent encodes them after a
 * scan (src/agent/scan.c), the CLI decodes them (src/render/leaks.c prints memcheck's text). */
#ifndef HTR_TRACE_LEAK_RECORD_H
#define HTR_TRACE_LEAK_RECORD_H
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "base/varint.h"
#include "trace/format.h"

/* Like the misuse records, every record in 0x40..0x5f is `tag body_len:varint body`, so a
 * reader skips what it does not know. Written into META frames; times are absolute. */
enum {
    HTRI_REC_LEAK_CHECK = 0x40,  /* a leak check starts: why, when, how much was scanned */
    HTRI_REC_LEAK_GROUP = 0x41,  /* blocks of one kind from one allocation stack */
    HTRI_REC_LEAK_END = 0x42,    /* the check is complete: n_groups groups were written */
};

/* Leak kinds, numbered as memcheck's Reachedness (Unreached, IndirectLeak, Possible,
 * Reachable) because loss records of equal size are ordered by it. */
enum { HTRI_LEAK_DEFINITE = 0, HTRI_LEAK_INDIRECT = 1, HTRI_LEAK_POSSIBLE = 2,
       HTRI_LEAK_REACHABLE = 3, HTRI_LEAK_KINDS = 4 };

/* memcheck's --leak-check-heuristics, in its order (its "of which reachable via heuristic"
 * lines are printed in this order). 0: reached through a start pointer, or not reached. */
enum { HTRI_HEUR_NONE = 0, HTRI_HEUR_STDSTRING = 1, HTRI_HEUR_LENGTH64 = 2,
       HTRI_HEUR_NEWARRAY = 3, HTRI_HEUR_MULTIPLEINHERITANCE = 4, HTRI_HEUR_COUNT = 5 };

/* Why a check ran (LEAK_CHECK reason). */
enum { HTRI_LEAK_AT_EXIT = 0, HTRI_LEAK_ON_DEMAND = 1 /* htr_leak_check_now() */,
       HTRI_LEAK_ON_SIGNAL = 2 /* --leak-check-signal */ };

/* LEAK_CHECK flags. */
enum { HTRI_LEAK_FREERES_RUN = 1u << 0,  /* __libc_freeres / __gnu_cxx::__freeres ran first */
       HTRI_LEAK_WORLD_PARTIAL = 1u << 1 /* some thread did not stop in time (scan went on) */ };

/*  LEAK_CHECK body:  t tid reason flags n_blocks bytes_blocks bytes_roots n_threads scan_ns
 *     n_blocks/bytes_blocks: live blocks the scan saw; bytes_roots: root bytes read;
 *     n_threads: threads stopped (the scanning one included); scan_ns: wall time of the scan.
 *  LEAK_GROUP body:  kind heuristic node family n_blocks bytes indirect_bytes
 *     every block of the check is in exactly one group; groups of one check have distinct
 *     (kind, heuristic, node, family). indirect_bytes: for definitely lost blocks, the bytes
 *     of the indirectly lost blocks they lead (memcheck's "(N direct, M indirect)").
 *  LEAK_END body:    t n_groups
 *  A check without its LEAK_END (a cut trace) is incomplete and must not be reported as a
 *  result. Groups are written after every NODES record they name. */
typedef struct htri_leak_check_rec {
    uint64_t t;
    uint32_t tid;
    uint8_t reason;
    uint32_t flags;
    uint64_t n_blocks, bytes_blocks, bytes_roots;
    uint32_t n_threads;
    uint64_t scan_ns;
} htri_leak_check_rec;

typedef struct htri_leak_group_rec {
    uint8_t kind, heuristic, family;
    uint32_t node;
    uint64_t n_blocks, bytes, indirect_bytes;
} htri_leak_group_rec;

typedef struct htri_leak_end_rec {
    uint64_t t;
    uint64_t n_groups;
} htri_leak_end_rec;

/* Worst-case encoded sizes (tag + length + body). */
#define HTRI_LEAK_CHECK_REC_MAX (1 + 2 + 9 * HTRI_VARINT_MAX)
#define HTRI_LEAK_GROUP_REC_MAX (1 + 2 + 7 * HTRI_VARINT_MAX)
#define HTRI_LEAK_END_REC_MAX (1 + 2 + 2 * HTRI_VARINT_MAX)

/* Encoders write at out (room: the *_MAX above) and return the bytes written. */
static inline size_t htri_leak_check_rec_encode(const htri_leak_check_rec *c, uint8_t *out)
{
    uint8_t *p = out + 3;
    p = htri_varint_put(p, c->t);
    p = htri_varint_put(p, c->tid);
    p = htri_varint_put(p, c->reason);
    p = htri_varint_put(p, c->flags);
    p = htri_varint_put(p, c->n_blocks);
    p = htri_varint_put(p, c->bytes_blocks);
    p = htri_varint_put(p, c->bytes_roots);
    p = htri_varint_put(p, c->n_threads);
    p = htri_varint_put(p, c->scan_ns);
    return htri_lrec_finish(out, HTRI_REC_LEAK_CHECK, p);
}

static inline size_t htri_leak_group_rec_encode(const htri_leak_group_rec *g, uint8_t *out)
{
    uint8_t *p = out + 3;
    p = htri_varint_put(p, g->kind);
    p = htri_varint_put(p, g->heuristic);
    p = htri_varint_put(p, g->node);
    p = htri_varint_put(p, g->family);
    p = htri_varint_put(p, g->n_blocks);
    p = htri_varint_put(p, g->bytes);
    p = htri_varint_put(p, g->indirect_bytes);
    return htri_lrec_finish(out, HTRI_REC_LEAK_GROUP, p);
}

static inline size_t htri_leak_end_rec_encode(const htri_leak_end_rec *e, uint8_t *out)
{
    uint8_t *p = out + 3;
    p = htri_varint_put(p, e->t);
    p = htri_varint_put(p, e->n_groups);
    return htri_lrec_finish(out, HTRI_REC_LEAK_END, p);
}

/* Decoders take the body of a record (split it with htri_error_rec_split of
 * trace/error_record.h, or the same three lines). Fields a newer writer appends are ignored.
 * Return 0 or -1 (truncated or out-of-range field). */
#define HTRI_LEAK_GET(v) do { uint64_t g_; if (htri_varint_get(&p, end, &g_)) return -1; (v) = g_; } while (0)
#define HTRI_LEAK_GET_MAX(v, max) do { uint64_t g_; if (htri_varint_get(&p, end, &g_) || g_ > (max)) return -1; (v) = g_; } while (0)
static inline int htri_leak_check_rec_decode(const uint8_t *body, size_t len, htri_leak_check_rec *c)
{
    const uint8_t *p = body, *end = body + len;
    memset(c, 0, sizeof *c);
    HTRI_LEAK_GET(c->t);
    HTRI_LEAK_GET_MAX(c->tid, UINT32_MAX);
    HTRI_LEAK_GET_MAX(c->reason, 255);
    HTRI_LEAK_GET_MAX(c->flags, UINT32_MAX);
    HTRI_LEAK_GET(c->n_blocks);
    HTRI_LEAK_GET(c->bytes_blocks);
    HTRI_LEAK_GET(c->bytes_roots);
    HTRI_LEAK_GET_MAX(c->n_threads, UINT32_MAX);
    HTRI_LEAK_GET(c->scan_ns);
    return 0;
}

static inline int htri_leak_group_rec_decode(const uint8_t *body, size_t len, htri_leak_group_rec *g)
{
    const uint8_t *p = body, *end = body + len;
    memset(g, 0, sizeof *g);
    HTRI_LEAK_GET_MAX(g->kind, HTRI_LEAK_KINDS - 1);
    HTRI_LEAK_GET_MAX(g->heuristic, HTRI_HEUR_COUNT - 1);
    HTRI_LEAK_GET_MAX(g->node, UINT32_MAX);
    HTRI_LEAK_GET_MAX(g->family, 255);
    HTRI_LEAK_GET(g->n_blocks);
    HTRI_LEAK_GET(g->bytes);
    HTRI_LEAK_GET(g->indirect_bytes);
    return 0;
}

static inline int htri_leak_end_rec_decode(const uint8_t *body, size_t len, htri_leak_end_rec *e)
{
    const uint8_t *p = body, *end = body + len;
    memset(e, 0, sizeof *e);
    HTRI_LEAK_GET(e->t);
    HTRI_LEAK_GET(e->n_groups);
    return 0;
}
#undef HTRI_LEAK_GET
#undef HTRI_LEAK_GET_MAX

#endif
