/* Private: the misuse records of a trace (tags 0x60-0x6f): errors found by the agent's guard
 * layer, injected allocation failures, memory-limit hits, the agent's error summary. The agent
 * encodes them (src/agent/guard.c through the writer), the CLI decodes them (render/errors.c). */
#ifndef HTR_TRACE_ERROR_RECORD_H
#define HTR_TRACE_ERROR_RECORD_H
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include "base/varint.h"
#include "trace/format.h"

/* Every record in 0x60..0x7f (0x70.. : trace/totals_record.h) is `tag body_len:varint body`, so a reader that does not know
 * one of them skips it instead of giving up on the rest of the frame. All times are absolute
 * (ns since the trace start), as in META records. */
enum {
    HTRI_REC_ERROR = 0x60,         /* a misuse error, see htri_error_rec */
    HTRI_REC_FAULT = 0x61,         /* an injected allocation failure */
    HTRI_REC_LIMIT = 0x62,         /* an allocation refused by --limit, with the top holders */
    HTRI_REC_ERROR_SUMMARY = 0x63, /* the agent's own count at exit: errors, contexts */
};

/* Error kinds (memcheck's wording in render/errors.c). */
enum {
    HTRI_ERR_INVALID_FREE = 1,     /* free/delete/delete[]/realloc of no live block; a double
                                    * free when free_node != 0 */
    HTRI_ERR_MISMATCHED_FREE = 2,  /* released by another family than allocated it */
    HTRI_ERR_OVERRUN = 3,          /* redzone after the block damaged */
    HTRI_ERR_UNDERRUN = 4,         /* redzone before the block damaged */
    HTRI_ERR_WRITE_AFTER_FREE = 5, /* the freed-fill of a quarantined block changed */
    HTRI_ERR_KIND_MAX = 5,
};

/* What an address given to free() is, when it is not a live block (ERROR addr_class). */
enum {
    HTRI_ADDR_UNKNOWN = 0,  /* not stack'd, malloc'd or (recently) free'd */
    HTRI_ADDR_STACK = 1,    /* on the calling thread's stack */
    HTRI_ADDR_DATA = 2,     /* in a loaded module's writable data */
    HTRI_ADDR_FREED = 3,    /* inside a block in quarantine (block_* and free_node set) */
    HTRI_ADDR_INTERIOR = 4, /* inside a live block (block_* and alloc_node set) */
};

/* Why an allocation was made to fail (FAULT reason). */
enum { HTRI_FAULT_AFTER = 1, HTRI_FAULT_EVERY = 2, HTRI_FAULT_RATE = 3 };

#define HTRI_ERR_MAX_BYTES 32   /* damaged bytes kept per error */
#define HTRI_NOFAM 0xff         /* family unknown / not applicable */

/*  ERROR body (varints; offset is zigzag since an underrun lies before the block):
 *
 *   t tid kind alloc_family free_family where_node alloc_node free_node addr
 *   block_addr block_size offset length addr_class n_bytes bytes[n_bytes]
 *
 *  where_node: the stack that found it (the bad free, htr_check_heap(); 0 at exit or at
 *  quarantine eviction). addr: the pointer passed, or the first damaged byte. offset/length:
 *  the damaged span relative to block_addr. bytes: what was found there (at most 32). */
typedef struct htri_error_rec {
    uint64_t t;
    uint32_t tid;
    uint8_t kind, alloc_family, free_family, addr_class;
    uint32_t where_node, alloc_node, free_node;
    uint64_t addr, block_addr, block_size;
    int64_t offset;
    uint64_t length;
    uint8_t n_bytes;
    uint8_t bytes[HTRI_ERR_MAX_BYTES];
} htri_error_rec;

/*  FAULT body:  t tid reason size node family
 *  LIMIT body:  t tid size node family live_bytes limit_bytes n_holders {node bytes blocks}*
 *  ERROR_SUMMARY body: t errors contexts */
#define HTRI_LIMIT_MAX_HOLDERS 10
typedef struct htri_limit_holder { uint32_t node; uint64_t bytes, blocks; } htri_limit_holder;
typedef struct htri_limit_rec {
    uint64_t t;
    uint32_t tid;
    uint64_t size;
    uint32_t node;
    uint8_t family;
    uint64_t live_bytes, limit_bytes;
    uint32_t n_holders;
    htri_limit_holder holders[HTRI_LIMIT_MAX_HOLDERS];
} htri_limit_rec;
typedef struct htri_fault_rec {
    uint64_t t;
    uint32_t tid;
    uint8_t reason, family;
    uint64_t size;
    uint32_t node;
} htri_fault_rec;

/* Worst-case encoded sizes (tag + length + body), for fixed buffers on the hook path. */
#define HTRI_ERROR_REC_MAX (2 + 2 + 16 * HTRI_VARINT_MAX + HTRI_ERR_MAX_BYTES)
#define HTRI_LIMIT_REC_MAX (2 + 2 + (8 + 3 * HTRI_LIMIT_MAX_HOLDERS) * HTRI_VARINT_MAX)

static inline size_t htri_error_rec_encode(const htri_error_rec *e, uint8_t *out)
{
    uint8_t *p = out + 3;
    p = htri_varint_put(p, e->t);
    p = htri_varint_put(p, e->tid);
    p = htri_varint_put(p, e->kind);
    p = htri_varint_put(p, e->alloc_family);
    p = htri_varint_put(p, e->free_family);
    p = htri_varint_put(p, e->where_node);
    p = htri_varint_put(p, e->alloc_node);
    p = htri_varint_put(p, e->free_node);
    p = htri_varint_put(p, e->addr);
    p = htri_varint_put(p, e->block_addr);
    p = htri_varint_put(p, e->block_size);
    p = htri_varint_put(p, htri_zigzag(e->offset));
    p = htri_varint_put(p, e->length);
    p = htri_varint_put(p, e->addr_class);
    uint8_t nb = e->n_bytes > HTRI_ERR_MAX_BYTES ? HTRI_ERR_MAX_BYTES : e->n_bytes;
    p = htri_varint_put(p, nb);
    memcpy(p, e->bytes, nb);
    return htri_lrec_finish(out, HTRI_REC_ERROR, p + nb);
}

static inline size_t htri_fault_rec_encode(const htri_fault_rec *f, uint8_t *out)
{
    uint8_t *p = out + 3;
    p = htri_varint_put(p, f->t);
    p = htri_varint_put(p, f->tid);
    p = htri_varint_put(p, f->reason);
    p = htri_varint_put(p, f->size);
    p = htri_varint_put(p, f->node);
    p = htri_varint_put(p, f->family);
    return htri_lrec_finish(out, HTRI_REC_FAULT, p);
}

static inline size_t htri_limit_rec_encode(const htri_limit_rec *l, uint8_t *out)
{
    uint8_t *p = out + 3;
    uint32_t n = l->n_holders > HTRI_LIMIT_MAX_HOLDERS ? HTRI_LIMIT_MAX_HOLDERS : l->n_holders;
    p = htri_varint_put(p, l->t);
    p = htri_varint_put(p, l->tid);
    p = htri_varint_put(p, l->size);
    p = htri_varint_put(p, l->node);
    p = htri_varint_put(p, l->family);
    p = htri_varint_put(p, l->live_bytes);
    p = htri_varint_put(p, l->limit_bytes);
    p = htri_varint_put(p, n);
    for (uint32_t i = 0; i < n; i++) {
        p = htri_varint_put(p, l->holders[i].node);
        p = htri_varint_put(p, l->holders[i].bytes);
        p = htri_varint_put(p, l->holders[i].blocks);
    }
    return htri_lrec_finish(out, HTRI_REC_LIMIT, p);
}

static inline size_t htri_error_summary_encode(uint64_t t, uint64_t errors, uint64_t contexts,
                                               uint8_t *out /* 3 + 3 * HTRI_VARINT_MAX */)
{
    uint8_t *p = out + 3;
    p = htri_varint_put(p, t);
    p = htri_varint_put(p, errors);
    p = htri_varint_put(p, contexts);
    return htri_lrec_finish(out, HTRI_REC_ERROR_SUMMARY, p);
}

/* Splits a record starting at *pp (the tag byte) into tag and body; advances *pp past it.
 * Returns 0, or -1 if the record runs past end. */
static inline int htri_error_rec_split(const uint8_t **pp, const uint8_t *end, uint8_t *tag,
                                       const uint8_t **body, size_t *body_len)
{
    const uint8_t *p = *pp;
    uint64_t len;
    if (p >= end) return -1;
    *tag = *p++;
    if (htri_varint_get(&p, end, &len) || len > (uint64_t)(end - p)) return -1;
    *body = p;
    *body_len = (size_t)len;
    *pp = p + len;
    return 0;
}

/* Decoders take a body from htri_error_rec_split. Fields a newer writer appends are ignored.
 * Return 0 or -1 (truncated or out-of-range field). */
#define HTRI_ERR_GET(v) do { uint64_t g_; if (htri_varint_get(&p, end, &g_)) return -1; (v) = g_; } while (0)
static inline int htri_error_rec_decode(const uint8_t *body, size_t len, htri_error_rec *e)
{
    const uint8_t *p = body, *end = body + len;
    uint64_t v;
    memset(e, 0, sizeof *e);
    HTRI_ERR_GET(e->t);
    HTRI_ERR_GET(e->tid);
    HTRI_ERR_GET(v); if (v > 255) return -1; e->kind = (uint8_t)v;
    HTRI_ERR_GET(v); if (v > 255) return -1; e->alloc_family = (uint8_t)v;
    HTRI_ERR_GET(v); if (v > 255) return -1; e->free_family = (uint8_t)v;
    HTRI_ERR_GET(e->where_node);
    HTRI_ERR_GET(e->alloc_node);
    HTRI_ERR_GET(e->free_node);
    HTRI_ERR_GET(e->addr);
    HTRI_ERR_GET(e->block_addr);
    HTRI_ERR_GET(e->block_size);
    HTRI_ERR_GET(v); e->offset = htri_unzigzag(v);
    HTRI_ERR_GET(e->length);
    HTRI_ERR_GET(v); if (v > 255) return -1; e->addr_class = (uint8_t)v;
    HTRI_ERR_GET(v); if (v > HTRI_ERR_MAX_BYTES || v > (uint64_t)(end - p)) return -1;
    e->n_bytes = (uint8_t)v;
    memcpy(e->bytes, p, e->n_bytes);
    return 0;
}

static inline int htri_fault_rec_decode(const uint8_t *body, size_t len, htri_fault_rec *f)
{
    const uint8_t *p = body, *end = body + len;
    uint64_t v;
    memset(f, 0, sizeof *f);
    HTRI_ERR_GET(f->t);
    HTRI_ERR_GET(f->tid);
    HTRI_ERR_GET(v); if (v > 255) return -1; f->reason = (uint8_t)v;
    HTRI_ERR_GET(f->size);
    HTRI_ERR_GET(f->node);
    HTRI_ERR_GET(v); if (v > 255) return -1; f->family = (uint8_t)v;
    return 0;
}

static inline int htri_limit_rec_decode(const uint8_t *body, size_t len, htri_limit_rec *l)
{
    const uint8_t *p = body, *end = body + len;
    uint64_t v;
    memset(l, 0, sizeof *l);
    HTRI_ERR_GET(l->t);
    HTRI_ERR_GET(l->tid);
    HTRI_ERR_GET(l->size);
    HTRI_ERR_GET(l->node);
    HTRI_ERR_GET(v); if (v > 255) return -1; l->family = (uint8_t)v;
    HTRI_ERR_GET(l->live_bytes);
    HTRI_ERR_GET(l->limit_bytes);
    HTRI_ERR_GET(v); if (v > HTRI_LIMIT_MAX_HOLDERS) return -1;
    l->n_holders = (uint32_t)v;
    for (uint32_t i = 0; i < l->n_holders; i++) {
        HTRI_ERR_GET(l->holders[i].node);
        HTRI_ERR_GET(l->holders[i].bytes);
        HTRI_ERR_GET(l->holders[i].blocks);
    }
    return 0;
}
static inline int htri_error_summary_decode(const uint8_t *body, size_t len, uint64_t *t,
                                            uint64_t *errors, uint64_t *contexts)
{
    const uint8_t *p = body, *end = body + len;
    HTRI_ERR_GET(*t);
    HTRI_ERR_GET(*errors);
    HTRI_ERR_GET(*contexts);
    return 0;
}
#undef HTRI_ERR_GET

#endif
