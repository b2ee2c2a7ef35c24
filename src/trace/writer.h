/* Private: the trace writer — record encoding, zstd framing and file output for the .htr
 * format (docs/trace-format.md). The agent's writer thread drives it; tests use it directly.
 * No libc allocation anywhere: buffers and zstd's workspace come from htri_os_pages_*. */
#ifndef HTR_TRACE_WRITER_H
#define HTR_TRACE_WRITER_H
#include <stddef.h>
#include <stdint.h>
#include "base/varint.h"
#include "trace/format.h"

/* One output file. Not thread-safe: one writer thread owns it. Once a write fails, `error`
 * holds -errno and every later call returns it without touching the file. */
typedef struct htri_writer {
    int fd;                  /* -1 until htri_writer_start */
    int error;               /* 0 or the first -errno / negative code seen */
    uint32_t seq;            /* next frame sequence number */
    uint64_t bytes_written;  /* file bytes so far, headers included */
    void *cctx;              /* ZSTD_CCtx, allocated over our own pages */
    uint8_t *cbuf;           /* header + compressed frame staging */
    size_t cbuf_cap;
} htri_writer;

/* Sets up compression state (no file yet). Returns 0 or -ENOMEM. */
int htri_writer_init(htri_writer *w);
/* Takes fd (owned by the caller; never closed here) and writes the file header.
 * Returns 0 or -errno. */
int htri_writer_start(htri_writer *w, int fd, const htri_file_header *h);
/* Compresses raw[0..raw_size) (n_records records) into one zstd frame with checksum and
 * appends header + frame with a single write. raw_size must be <= HTRI_FRAME_MAX_RAW.
 * Returns 0 or a negative error (the writer is then failed). */
int htri_writer_frame(htri_writer *w, uint8_t kind, uint32_t tid, uint32_t n_records,
                      uint64_t t_first, uint64_t t_last, const void *raw, size_t raw_size);
/* Frees the compression state; leaves fd alone. Safe on a zeroed or failed writer. */
void htri_writer_fini(htri_writer *w);

/* A growable record buffer on our own pages, for META frames (and tests' EVENTS frames).
 * Records are appended whole; htri_recbuf_room() makes sure `need` more bytes fit. */
typedef struct htri_recbuf {
    uint8_t *data;
    size_t len, cap;
    uint32_t n_records;
    uint64_t t_first, t_last;  /* earliest / latest time among records that carry one */
    int timed;                 /* some record carried a time (t_first is meaningful) */
    int error;                 /* -ENOMEM once growth failed; appends are then dropped */
} htri_recbuf;

int htri_recbuf_room(htri_recbuf *b, size_t need);
void htri_recbuf_reset(htri_recbuf *b);   /* empties, keeps the memory */
void htri_recbuf_free(htri_recbuf *b);
/* Flushes b as one frame of `kind` if it is not empty, then resets it. Returns 0 or the
 * writer's error. */
int htri_writer_flush_recbuf(htri_writer *w, htri_recbuf *b, uint8_t kind, uint32_t tid);

/* META record encoders (times are absolute: ns since the file's start_mono_ns). Each returns
 * 0 or -ENOMEM. Strings are (pointer, length). */
int htri_rec_info(htri_recbuf *b, const char *key, const char *val, size_t val_len);
int htri_rec_module(htri_recbuf *b, uint64_t id, uint64_t bias, uint64_t start, uint64_t end,
                    const uint8_t *build_id, size_t build_id_len, const char *path,
                    size_t path_len, uint64_t t);
int htri_rec_module_unload(htri_recbuf *b, uint64_t id, uint64_t t);
/* NODES: count nodes starting at first_id; parent[i] and pc[i] belong to node first_id + i. */
int htri_rec_nodes(htri_recbuf *b, uint32_t first_id, uint32_t count, const uint32_t *parent,
                   const uintptr_t *pc);
int htri_rec_thread(htri_recbuf *b, uint32_t tid, uint64_t t, const char *name, size_t name_len);
int htri_rec_thread_end(htri_recbuf *b, uint32_t tid, uint64_t t);
int htri_rec_rss(htri_recbuf *b, uint64_t t, uint64_t rss_bytes);
int htri_rec_fork_base(htri_recbuf *b, uint64_t t, uint32_t parent_pid, uint64_t allocs,
                       uint64_t frees, uint64_t bytes);
int htri_rec_message(htri_recbuf *b, uint64_t t, uint32_t level, const char *text, size_t len);
int htri_rec_end(htri_recbuf *b, uint64_t t, uint32_t how, uint64_t status, uint64_t peak_rss,
                 uint64_t dropped, uint64_t allocs, uint64_t frees, uint64_t bytes);
/* A raw record (tag + already-encoded body), e.g. leak/error records 0x40..0x7f. */
int htri_rec_raw(htri_recbuf *b, uint8_t tag, const void *body, size_t len, uint64_t t);

/* EVENTS encoding state for one frame: previous time and address, per the spec, and the
 * ring of the frame's last HTRI_EV_RECENT allocation addresses that FREE_RECENT refers to.
 * A frame starts with addr_prev = 0 (htri_evstate_reset, or a caller that sets t_prev and
 * addr_prev itself): no record of a frame has address 0, so addr_prev == 0 means "nothing
 * addressed yet in this frame" and the encoders empty the ring then. The reader mirrors it.
 *
 *   recent[HTRI_EV_RECENT]: the n-th ALLOC/INHERIT address of the frame (n from 0) goes to
 *   slot ~n % HTRI_EV_RECENT, downwards, so the k-th most recent (k = 0 the latest) is at
 *   (newest + k) % HTRI_EV_RECENT, for k < n_recent; other slots hold stale addresses. */
typedef uint32_t htri_ev_v4 __attribute__((vector_size(16)));
typedef struct htri_evstate {
    uint64_t t_prev;
    uintptr_t addr_prev;
    uint32_t n_recent;                    /* allocations pushed since the frame started */
    uintptr_t recent[HTRI_EV_RECENT];
    htri_ev_v4 recent_lo[HTRI_EV_RECENT / 4];  /* low 32 bits of recent[], same slots */
} htri_evstate;

/* Starts a frame whose first record is at or after t_first. */
static inline void htri_evstate_reset(htri_evstate *s, uint64_t t_first)
{
    s->t_prev = t_first;
    s->addr_prev = 0;
    s->n_recent = 0;
}

/* Worst case of one EVENTS record: tag + four varints. */
#define HTRI_EVENT_MAX 41

/* Appends ALLOC/INHERIT/MMAP-shaped (tag dt size node addr_d) at p; returns the new end.
 * ALLOC and INHERIT addresses enter the ring of recent allocations. */
static inline uint8_t *htri_ev_put_block(uint8_t *p, htri_evstate *s, uint8_t tag, uint64_t t,
                                         uint64_t size, uint32_t node, uintptr_t addr)
{
    if (s->addr_prev == 0)
        s->n_recent = 0;
    *p++ = tag;
    p = htri_varint_put(p, htri_dt_code(t - s->t_prev));
    p = htri_varint_put(p, size);
    p = htri_varint_put(p, node);
    p = htri_varint_put(p, htri_zigzag((int64_t)(addr - s->addr_prev)));
    s->t_prev = t;
    s->addr_prev = addr;
    if (tag < HTRI_REC_FREE) {
        uint32_t slot = ~s->n_recent++ % HTRI_EV_RECENT;
        s->recent[slot] = addr;
        s->recent_lo[slot / 4][slot % 4] = (uint32_t)addr;
    }
    return p;
}
/* FREE-shaped: tag is HTRI_REC_FREE + free family. A block among the frame's last
 * HTRI_EV_RECENT allocations becomes FREE_RECENT (tag+0x0b dt k), any other the plain
 * FREE (tag dt addr_d). Most frees in real programs release a block allocated a few
 * records earlier: k is a small number that repeats, where addr_d is noise to zstd. */
static inline uint8_t *htri_ev_put_free(uint8_t *p, htri_evstate *s, uint8_t tag, uint64_t t,
                                        uintptr_t addr)
{
    if (s->addr_prev == 0)
        s->n_recent = 0;
    /* a miss (a long-lived block) is the slow case: rule it out with the low 32 bits of
     * all 16 slots in four vector compares, stale slots included (k < n_recent drops them) */
    uint32_t k = HTRI_EV_RECENT, newest = ~(s->n_recent - 1);
    htri_ev_v4 lo = { (uint32_t)addr, (uint32_t)addr, (uint32_t)addr, (uint32_t)addr };
    htri_ev_v4 any = (s->recent_lo[0] == lo) | (s->recent_lo[1] == lo) |
                     (s->recent_lo[2] == lo) | (s->recent_lo[3] == lo);
    if (any[0] | any[1] | any[2] | any[3]) {
        for (uint32_t j = 0; j < HTRI_EV_RECENT; j++)
            if (s->recent[(newest + j) % HTRI_EV_RECENT] == addr) { k = j; break; }
    }
    if (k < s->n_recent && k < HTRI_EV_RECENT) {   /* slots at k >= n_recent are stale */
        *p++ = (uint8_t)(tag - HTRI_REC_FREE + HTRI_REC_FREE_RECENT);
        p = htri_varint_put(p, htri_dt_code(t - s->t_prev));
        *p++ = (uint8_t)k;             /* a varint below 128 is its own byte */
    } else {
        *p++ = tag;
        p = htri_varint_put(p, htri_dt_code(t - s->t_prev));
        p = htri_varint_put(p, htri_zigzag((int64_t)(addr - s->addr_prev)));
    }
    s->t_prev = t;
    s->addr_prev = addr;
    return p;
}
static inline uint8_t *htri_ev_put_munmap(uint8_t *p, htri_evstate *s, uint64_t t, uint64_t len,
                                          uintptr_t addr)
{
    if (s->addr_prev == 0)
        s->n_recent = 0;
    *p++ = HTRI_REC_MUNMAP;
    p = htri_varint_put(p, htri_dt_code(t - s->t_prev));
    p = htri_varint_put(p, len);
    p = htri_varint_put(p, htri_zigzag((int64_t)(addr - s->addr_prev)));
    s->t_prev = t;
    s->addr_prev = addr;
    return p;
}
/* ALLOC_FAILED (tag dt size node family). */
static inline uint8_t *htri_ev_put_failed(uint8_t *p, htri_evstate *s, uint64_t t, uint64_t size,
                                          uint32_t node, uint8_t family)
{
    *p++ = HTRI_REC_ALLOC_FAILED;
    p = htri_varint_put(p, htri_dt_code(t - s->t_prev));
    p = htri_varint_put(p, size);
    p = htri_varint_put(p, node);
    p = htri_varint_put(p, family);
    s->t_prev = t;
    return p;
}

#endif
