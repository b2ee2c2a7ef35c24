/* Private: the heaptrail trace format (.htr), version 2 — constants, header layouts and the
 * helpers that encode/decode them. Specified for humans in docs/trace-format.md; the one
 * writer (agent side) and the one reader (CLI side) both build on this file. */
#ifndef HTR_TRACE_FORMAT_H
#define HTR_TRACE_FORMAT_H
#include <stdint.h>
#include <string.h>
#include "base/hash.h"
#include "base/varint.h"

#define HTRI_TRACE_MAGIC "\x89HTRACE\n"    /* 8 bytes, PNG-style: catches text-mode damage */
#define HTRI_TRACE_VERSION 2                /* 2: blocks named by reference, not address */
#define HTRI_FILE_HEADER_SIZE 64
#define HTRI_FRAME_MAGIC 0x46525448u       /* "HTRF" little-endian */
#define HTRI_FRAME_HEADER_SIZE 48
#define HTRI_FRAME_MAX_RAW (16u << 20)     /* reader refuses larger frames as corrupt */

/*  File header, 64 bytes, little-endian, uncompressed:
 *
 *   0      8    10   12      16    20     24               32              40     44    48           60     64
 *   +------+----+----+-------+-----+------+----------------+---------------+------+-----+------------+------+
 *   |magic |vmaj|vmin|hdr_sz |pid  |ppid  |start_realtime  |start_mono_ns  |flags |ptrsz|reserved(0) |fnv1a |
 *   +------+----+----+-------+-----+------+----------------+---------------+------+-----+------------+------+
 *  Every time in the file is nanoseconds since start_mono_ns (CLOCK_MONOTONIC of the process).
 *  The checksum is FNV-1a-32 over bytes 0..59. */
typedef struct htri_file_header {
    uint16_t version_major, version_minor;
    uint32_t pid, ppid;
    uint64_t start_realtime_ns, start_mono_ns;
    uint32_t flags;
} htri_file_header;

enum { HTRI_FILE_FORKED = 1u << 0,     /* written by a forked child: inherited state follows */
       HTRI_FILE_LEAK_ONLY = 1u << 1 };/* --record=none: no events, only leak/error records */

/*  Frame header, 48 bytes, then comp_size bytes: one zstd frame (content checksum on) that
 *  decompresses to raw_size bytes of records.
 *
 *   0      4    5    6       8     12         16        20         24        32        40    44     48
 *   +------+----+----+-------+-----+----------+---------+----------+---------+---------+-----+------+
 *   |"HTRF"|kind|rsv |hdr_sz |tid  |n_records |raw_size |comp_size |t_first  |t_last   |seq  |fnv1a |
 *   +------+----+----+-------+-----+----------+---------+----------+---------+---------+-----+------+
 *  kind: HTRI_FRAME_META (written only by the writer thread, in file order) or
 *  HTRI_FRAME_EVENTS (one thread's events in that thread's order; frames of different threads
 *  may overlap in time, the reader merges them by timestamp). seq counts frames from 0. */
enum { HTRI_FRAME_META = 1, HTRI_FRAME_EVENTS = 2 };

typedef struct htri_frame_header {
    uint8_t kind;
    uint32_t tid, n_records, raw_size, comp_size;
    uint64_t t_first, t_last;
    uint32_t seq;
} htri_frame_header;

/* Record tags. Every record is a tag byte then LEB128 varints ("str" = varint length + bytes).
 *
 * META records (absolute times t):
 *   INFO          key:str value:str                         (cmdline, exe, options, hostname...)
 *   MODULE        id bias start end build_id:str path:str t (start/end: absolute addresses)
 *   MODULE_UNLOAD id t
 *   NODES         first_id count {parent_delta pc}*count    (stack trie; id 0 = root/empty;
 *                                                            parent = id - parent_delta)
 *   THREAD        tid t name:str                            (first sight, rename)
 *   THREAD_END    tid t
 *   RSS           t rss_bytes
 *   FORK_BASE     t parent_pid allocs frees bytes           (child: memcheck-style counters
 *                                                            inherited from the parent)
 *   MESSAGE       t level text:str                          (the agent's own warnings)
 *   END           t how status peak_rss dropped_events allocs frees bytes
 *                                                           (how: HTRI_END_*; the agent's own
 *                                                            memcheck-style counters)
 * EVENTS frames (dt = time since the previous record of the frame, or since t_first for the
 * first, written as htri_dt_code(dt): whole 16,384 ns ticks or exact ns) start with
 *   first_no                                   (varint: the thread's number of the frame's
 *                                               first ALLOC/INHERIT, see below)
 * then the records:
 *   ALLOC+family      dt size node             (family: HTRI_FAM_*; the block's number is the
 *   INHERIT+family    dt size node              thread's next: first_no, first_no+1, ...;
 *                                               INHERIT: forked child, block live at fork)
 *   FREE+ffamily      dt ref                   (ffamily: HTRI_FFAM_*; ref names the block:
 *                                               0: its allocation is not in the trace;
 *                                               2d (d >= 1): this thread's block next_no - d;
 *                                               2n+1 then zigzag(tid - frame tid): block n of
 *                                               thread tid)
 *   MMAP              dt len node addr_d       (anonymous mappings, counted apart from heap;
 *   MUNMAP            dt len addr_d             addr_d = zigzag(addr - previous MMAP/MUNMAP
 *                                               address of the frame), the first from 0)
 *   ALLOC_FAILED      dt size node family      (the allocator returned NULL)
 * Each thread numbers its ALLOC and INHERIT records 0, 1, 2... over its whole life (a new
 * thread that gets a dead thread's tid continues above every number used before), so
 * (tid, number) names one block for the whole trace.
 * A realloc that succeeds is FREE+HTRI_FFAM_REALLOC of the old block then ALLOC+HTRI_FAM_REALLOC
 * with dt 0 (memcheck counts it as one free and one alloc); realloc(p, 0) is the FREE alone;
 * free(NULL) is not recorded. Tags 0x40-0x7f are reserved for length-prefixed records, each
 * `tag body_len body`: 0x40-0x5f leak records (trace/leak_record.h); 0x60-0x6f misuse records
 * (ERROR 0x60, FAULT 0x61, LIMIT 0x62, ERROR_SUMMARY 0x63; trace/error_record.h); 0x70-0x7f
 * the agent's totals (HEAP_TOTALS 0x70, written just before END; trace/totals_record.h). */
enum {
    HTRI_REC_INFO = 0x01, HTRI_REC_MODULE = 0x02, HTRI_REC_MODULE_UNLOAD = 0x03,
    HTRI_REC_NODES = 0x04, HTRI_REC_THREAD = 0x05, HTRI_REC_THREAD_END = 0x06,
    HTRI_REC_RSS = 0x07, HTRI_REC_FORK_BASE = 0x08, HTRI_REC_MESSAGE = 0x09,
    HTRI_REC_END = 0x0a,
    HTRI_REC_ALLOC = 0x10,        /* + family, 0x10..0x17 */
    HTRI_REC_INHERIT = 0x18,      /* + family, 0x18..0x1f */
    HTRI_REC_FREE = 0x20,         /* + free family, 0x20..0x27 */
    HTRI_REC_MMAP = 0x28, HTRI_REC_MUNMAP = 0x29, HTRI_REC_ALLOC_FAILED = 0x2a,
    /* 0x2b..0x3f unassigned (version 1's FREE_RECENT was 0x2b..0x2e) */
};

/* EVENTS `dt` code: a varint v; v even is v/2 ticks of 2^HTRI_DT_TICK_LOG2 ns (16,384 ns, the
 * agent's time quantum, so an agent's dt of one tick is the byte 0x02, not 0x80 0x80 0x01),
 * v odd is (v-1)/2 ns (any other delta, exact). */
#define HTRI_DT_TICK_LOG2 14
static inline uint64_t htri_dt_code(uint64_t dt)
{
    return (dt & ((1ull << HTRI_DT_TICK_LOG2) - 1)) ? dt << 1 | 1 : dt >> (HTRI_DT_TICK_LOG2 - 1);
}
/* Returns 0 and *dt, or -1 if v names more than 2^64-1 ns. */
static inline int htri_dt_decode(uint64_t v, uint64_t *dt)
{
    if (v & 1) { *dt = v >> 1; return 0; }
    if (v >> (64 - HTRI_DT_TICK_LOG2 + 1)) return -1;
    *dt = v << (HTRI_DT_TICK_LOG2 - 1);
    return 0;
}

/* FREE's ref code (see above): 0 unknown, even = same-thread distance, odd = number + tid. */
#define HTRI_REF_NONE 0u

/* On disk an EVENTS frame's fields are split into streams, one per kind of field, so zstd
 * codes each with its own statistics (churn trace: 31% smaller than records interleaved):
 *
 *   +----------+----+----+----+----+------+------+-------+-------+---------------+
 *   | first_no | n0 | n1 | n2 | n3 | tags |  dt  | sizes | nodes | refs          |
 *   +----------+----+----+----+----+------+------+-------+-------+---------------+
 *   varints: first_no, then the byte lengths of the first four streams (refs is the rest).
 *   tags:  each record's tag byte          dt:    each record's dt
 *   sizes: ALLOC/INHERIT/ALLOC_FAILED size, MMAP/MUNMAP len
 *   nodes: ALLOC/INHERIT/MMAP/ALLOC_FAILED node, ALLOC_FAILED family
 *   refs:  FREE ref (and its tid difference), MMAP/MUNMAP addr_d
 * The k-th record's fields are the next ones of their streams. Writers build records
 * interleaved (tag dt fields...) and htri_writer_frame splits them; HTRI_ES_* name the
 * streams, htri_ev_stream(tag, i) the stream of field i (0 = dt) of a record, -1 if a
 * record with that tag has no field i. */
enum { HTRI_ES_TAGS = 0, HTRI_ES_DT = 1, HTRI_ES_SIZES = 2, HTRI_ES_NODES = 3, HTRI_ES_REFS = 4,
       HTRI_ES_COUNT = 5 };
static inline int htri_ev_stream(uint8_t tag, int i)
{
    if (i == 0)
        return HTRI_ES_DT;
    if (tag >= HTRI_REC_ALLOC && tag < HTRI_REC_FREE)
        return i == 1 ? HTRI_ES_SIZES : i == 2 ? HTRI_ES_NODES : -1;
    if (tag >= HTRI_REC_FREE && tag < HTRI_REC_MMAP)
        return i == 1 || i == 2 ? HTRI_ES_REFS : -1;     /* field 2: only after an odd ref */
    if (tag == HTRI_REC_MMAP)
        return i == 1 ? HTRI_ES_SIZES : i == 2 ? HTRI_ES_NODES : i == 3 ? HTRI_ES_REFS : -1;
    if (tag == HTRI_REC_MUNMAP)
        return i == 1 ? HTRI_ES_SIZES : i == 2 ? HTRI_ES_REFS : -1;
    if (tag == HTRI_REC_ALLOC_FAILED)
        return i == 1 ? HTRI_ES_SIZES : i == 2 || i == 3 ? HTRI_ES_NODES : -1;
    return -1;
}

/* Allocation families: which function made a block (mismatch detection needs it). */
enum { HTRI_FAM_MALLOC = 0, HTRI_FAM_CALLOC = 1, HTRI_FAM_REALLOC = 2, HTRI_FAM_MEMALIGN = 3,
       HTRI_FAM_NEW = 4, HTRI_FAM_NEW_ARRAY = 5, HTRI_FAM_COUNT = 6 };
/* Free families: which function released it. */
enum { HTRI_FFAM_FREE = 0, HTRI_FFAM_REALLOC = 1, HTRI_FFAM_DELETE = 2,
       HTRI_FFAM_DELETE_ARRAY = 3, HTRI_FFAM_COUNT = 4 };
/* How the process ended (END record). */
enum { HTRI_END_EXIT = 0,      /* exit()/return from main; status = exit code if known */
       HTRI_END_SIGNAL = 1,    /* fatal signal; status = signal number */
       HTRI_END_EXEC = 2,      /* replaced by exec */
       HTRI_END_UNKNOWN = 3 };
/* MESSAGE levels. */
enum { HTRI_MSG_INFO = 0, HTRI_MSG_WARNING = 1, HTRI_MSG_ERROR = 2 };

/* Length-prefixed records (tags 0x40-0x7f: leak, misuse and totals records): tag, varint body
 * length, body. An encoder writes the body at out + 3, then this moves it behind the tag and
 * the length (1 or 2 bytes: bodies stay under 16 KiB). Returns the record's size. */
static inline size_t htri_lrec_finish(uint8_t *out, uint8_t tag, uint8_t *body_end)
{
    size_t len = (size_t)(body_end - (out + 3));
    uint8_t lenbuf[HTRI_VARINT_MAX];
    size_t nlen = (size_t)(htri_varint_put(lenbuf, len) - lenbuf);
    out[0] = tag;
    memmove(out + 1 + nlen, out + 3, len);
    memcpy(out + 1, lenbuf, nlen);
    return 1 + nlen + len;
}

static inline void htri_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void htri_put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void htri_put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint16_t htri_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t htri_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t htri_get_u64(const uint8_t *p)
{
    return (uint64_t)htri_get_u32(p) | (uint64_t)htri_get_u32(p + 4) << 32;
}

static inline void htri_file_header_encode(const htri_file_header *h, uint8_t out[HTRI_FILE_HEADER_SIZE])
{
    memset(out, 0, HTRI_FILE_HEADER_SIZE);
    memcpy(out, HTRI_TRACE_MAGIC, 8);
    htri_put_u16(out + 8, h->version_major);
    htri_put_u16(out + 10, h->version_minor);
    htri_put_u32(out + 12, HTRI_FILE_HEADER_SIZE);
    htri_put_u32(out + 16, h->pid);
    htri_put_u32(out + 20, h->ppid);
    htri_put_u64(out + 24, h->start_realtime_ns);
    htri_put_u64(out + 32, h->start_mono_ns);
    htri_put_u32(out + 40, h->flags);
    htri_put_u32(out + 44, 8);
    htri_put_u32(out + 60, htri_fnv1a32(out, 60));
}

/* Returns 0, HTRI_E_FOREIGN (bad magic) , HTRI_E_CORRUPT (checksum), HTRI_E_OLD_VERSION (an
 * older major version) or HTRI_E_VERSION (a newer one, or a header size we do not know). */
static inline int htri_file_header_decode(const uint8_t in[HTRI_FILE_HEADER_SIZE], htri_file_header *h)
{
    if (memcmp(in, HTRI_TRACE_MAGIC, 8) != 0) return -1003;
    if (htri_get_u32(in + 60) != htri_fnv1a32(in, 60)) return -1002;
    h->version_major = htri_get_u16(in + 8);
    h->version_minor = htri_get_u16(in + 10);
    if (h->version_major < HTRI_TRACE_VERSION && htri_get_u32(in + 12) == HTRI_FILE_HEADER_SIZE)
        return -1006;
    if (h->version_major != HTRI_TRACE_VERSION || htri_get_u32(in + 12) != HTRI_FILE_HEADER_SIZE)
        return -1004;
    h->pid = htri_get_u32(in + 16);
    h->ppid = htri_get_u32(in + 20);
    h->start_realtime_ns = htri_get_u64(in + 24);
    h->start_mono_ns = htri_get_u64(in + 32);
    h->flags = htri_get_u32(in + 40);
    return 0;
}

static inline void htri_frame_header_encode(const htri_frame_header *h, uint8_t out[HTRI_FRAME_HEADER_SIZE])
{
    memset(out, 0, HTRI_FRAME_HEADER_SIZE);
    htri_put_u32(out, HTRI_FRAME_MAGIC);
    out[4] = h->kind;
    htri_put_u16(out + 6, HTRI_FRAME_HEADER_SIZE);
    htri_put_u32(out + 8, h->tid);
    htri_put_u32(out + 12, h->n_records);
    htri_put_u32(out + 16, h->raw_size);
    htri_put_u32(out + 20, h->comp_size);
    htri_put_u64(out + 24, h->t_first);
    htri_put_u64(out + 32, h->t_last);
    htri_put_u32(out + 40, h->seq);
    htri_put_u32(out + 44, htri_fnv1a32(out, 44));
}

/* Returns 0 or HTRI_E_CORRUPT (bad magic, checksum, kind or sizes). */
static inline int htri_frame_header_decode(const uint8_t in[HTRI_FRAME_HEADER_SIZE], htri_frame_header *h)
{
    if (htri_get_u32(in) != HTRI_FRAME_MAGIC || htri_get_u32(in + 44) != htri_fnv1a32(in, 44) ||
        htri_get_u16(in + 6) != HTRI_FRAME_HEADER_SIZE)
        return -1002;
    h->kind = in[4];
    h->tid = htri_get_u32(in + 8);
    h->n_records = htri_get_u32(in + 12);
    h->raw_size = htri_get_u32(in + 16);
    h->comp_size = htri_get_u32(in + 20);
    h->t_first = htri_get_u64(in + 24);
    h->t_last = htri_get_u64(in + 32);
    h->seq = htri_get_u32(in + 40);
    if ((h->kind != HTRI_FRAME_META && h->kind != HTRI_FRAME_EVENTS) ||
        h->raw_size > HTRI_FRAME_MAX_RAW || h->t_last < h->t_first)
        return -1002;
    return 0;
}

#endif
