/* Private: the trace writer — record encoding, zstd framing and file output for the .htr
 * format (docs/trace-format.md). The agent's writer thread drives it; tests use it directly.
 * No libc allocation anywhere: buffers and zstd's workspace come from htri_os_pages_*. */
#ifndef HTR_TRACE_WRITER_H
#define HTR_TRACE_WRITER_H
#include <stddef.h>
#include <stdint.h>
#include "base/common.h"
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
    uint8_t *sbuf;           /* an EVENTS frame split into its streams */
    size_t sbuf_cap;
} htri_writer;

/* Sets up compression state (no file yet). Returns 0 or -ENOMEM. */
int htri_writer_init(htri_writer *w);
/* Takes fd (owned by the caller; never closed here) and writes the file header.
 * Returns 0 or -errno. */
int htri_writer_start(htri_writer *w, int fd, const htri_file_header *h);
/* Compresses raw[0..raw_size) (n_records records) into one zstd frame with checksum and
 * appends header + frame with a single write. raw_size must be <= HTRI_FRAME_MAX_RAW (an
 * EVENTS frame 40 bytes less: its stream lengths are added).
 * EVENTS records come interleaved (first_no, then tag dt fields... per record, as the
 * htri_ev_put_* encoders write them) and are stored split into streams (format.h);
 * records that do not parse fail with -EINVAL.
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
/* Appends the EVENTS records of one agent buffer (raw: its first_no prefix, then n_records
 * interleaved records) to the EVENTS frame being gathered in b, as if they had been encoded
 * into it: the prefix is dropped, the first record's dt re-based on b's last time
 * (b->t_last), and the buffer's first MMAP/MUNMAP addr_d (a delta from 0 at a frame's start)
 * on *addr, b's last mapping address, which then becomes the buffer's last one. b must hold
 * a frame already (its own prefix and at least one record). Returns 0, -EINVAL if raw does
 * not parse (b is then unchanged), or -ENOMEM. */
int htri_ev_append(htri_recbuf *b, uint64_t *addr, const uint8_t *raw, size_t raw_size,
                   uint32_t n_records, uint64_t t_first, uint64_t t_last);
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

/* EVENTS encoding state for one frame: the previous time, the thread's number for its next
 * ALLOC/INHERIT record (blocks are named by (tid, number), docs/trace-format.md), and the
 * previous MMAP/MUNMAP address. htri_ev_put_start begins every frame. */
typedef struct htri_evstate {
    uint64_t t_prev;
    uint64_t next_no;       /* number of the thread's next ALLOC/INHERIT */
    uintptr_t addr_prev;    /* MMAP/MUNMAP delta base, 0 at the frame's start */
    uint32_t tid;           /* the frame's thread */
} htri_evstate;

/* Worst case of one EVENTS record: tag + four varints; and of a frame's first_no prefix. */
#define HTRI_EVENT_MAX 41
#define HTRI_EV_START_MAX HTRI_VARINT_MAX

/* Starts a frame of thread tid whose first record is at or after t_first and whose first
 * ALLOC/INHERIT will be the thread's number next_no: writes the first_no prefix at p and
 * returns the new end. */
static inline uint8_t *htri_ev_put_start(uint8_t *p, htri_evstate *s, uint32_t tid,
                                         uint64_t t_first, uint64_t next_no)
{
    s->t_prev = t_first;
    s->next_no = next_no;
    s->addr_prev = 0;
    s->tid = tid;
    return htri_varint_put(p, next_no);
}

/* ALLOC/INHERIT (tag dt size node): the block gets the thread's next number, s->next_no
 * before the call. */
static inline uint8_t *htri_ev_put_alloc(uint8_t *p, htri_evstate *s, uint8_t tag, uint64_t t,
                                         uint64_t size, uint32_t node)
{
    *p++ = tag;
    p = htri_varint_put(p, htri_dt_code(t - s->t_prev));
    p = htri_varint_put(p, size);
    p = htri_varint_put(p, node);
    s->t_prev = t;
    s->next_no++;
    return p;
}

/* FREE-shaped (tag dt ref): tag is HTRI_REC_FREE + free family; the block is number `no` of
 * thread `tid`, or unknown when known == 0 (its allocation is not in the trace). A block of
 * this thread is named by how many allocations ago it was made: small, repeating numbers
 * for short-lived blocks, where an address would be noise to zstd. */
static inline uint8_t *htri_ev_put_free(uint8_t *p, htri_evstate *s, uint8_t tag, uint64_t t,
                                        int known, uint32_t tid, uint64_t no)
{
    *p++ = tag;
    p = htri_varint_put(p, htri_dt_code(t - s->t_prev));
    s->t_prev = t;
    if (!known)
        return htri_varint_put(p, HTRI_REF_NONE);
    if (htri_likely(tid == s->tid && no < s->next_no && (s->next_no - no) < (1ull << 62)))
        return htri_varint_put(p, (s->next_no - no) << 1);
    if (no >= (1ull << 63))
        return htri_varint_put(p, HTRI_REF_NONE);   /* not expressible: never from the agent */
    p = htri_varint_put(p, no << 1 | 1);
    return htri_varint_put(p, htri_zigzag((int64_t)tid - (int64_t)s->tid));
}

/* MMAP (tag dt len node addr_d) and MUNMAP (tag dt len addr_d). */
static inline uint8_t *htri_ev_put_mmap(uint8_t *p, htri_evstate *s, uint64_t t, uint64_t len,
                                        uint32_t node, uintptr_t addr)
{
    *p++ = HTRI_REC_MMAP;
    p = htri_varint_put(p, htri_dt_code(t - s->t_prev));
    p = htri_varint_put(p, len);
    p = htri_varint_put(p, node);
    p = htri_varint_put(p, htri_zigzag((int64_t)(addr - s->addr_prev)));
    s->t_prev = t;
    s->addr_prev = addr;
    return p;
}
static inline uint8_t *htri_ev_put_munmap(uint8_t *p, htri_evstate *s, uint64_t t, uint64_t len,
                                          uintptr_t addr)
{
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
