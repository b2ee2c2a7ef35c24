/* Private: the one trace reader (CLI side). Opens a .htr file or buffer, indexes its frames by
 * headers alone, and replays its records: META frames in file order, EVENTS frames of all
 * threads merged by timestamp. Fuzz-proof: every length is checked before it is trusted. */
#ifndef HTR_TRACE_READER_H
#define HTR_TRACE_READER_H
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "trace/format.h"

typedef struct htri_reader htri_reader;

/* One decoded record, as the replay delivers it. `tag` is the base tag (HTRI_REC_ALLOC for
 * every ALLOC family, HTRI_REC_FREE for every free family...) and `family` the offset. Heap
 * blocks have no address in the trace: (ref_tid, ref) names one, the ALLOC/INHERIT record's
 * thread and number (docs/trace-format.md); a FREE names it the same way, resolved, or has
 * ref_known 0 when its allocation is not in the trace.
 * Times `t` are absolute ns since the trace's start for every kind. A NODES record is
 * delivered once per node (node, parent, pc). Strings point into the reader's frame buffer
 * and are valid only during the callback; they are NOT NUL-terminated (use the _len).
 *
 *   kind          fields used
 *   INFO          str_a (key), str_b (value)
 *   MODULE        id, bias, start, end, str_a (build-id bytes), str_b (path), t
 *   MODULE_UNLOAD id, t
 *   NODES         node, parent, pc
 *   THREAD        tid, t, str_a (name)         THREAD_END tid, t
 *   RSS           t, size (rss bytes)
 *   FORK_BASE     t, status (parent pid), allocs, frees, bytes
 *   MESSAGE       t, status (level), str_a (text)
 *   END           t, how, status, peak_rss, dropped, allocs, frees, bytes
 *   ALLOC/INHERIT family, tid, t, size, node, ref_tid (= tid), ref, ref_known (1)
 *   FREE          family, tid, t, ref_known, ref_tid, ref
 *   MMAP          tid, t, size (len), node, addr     MUNMAP tid, t, size (len), addr
 *   ALLOC_FAILED  tid, t, size, node, family
 *   0x40..0x7f    str_a (the body of a leak or misuse record, see leak_record.h) */
typedef struct htri_record {
    uint8_t tag, family;
    uint32_t tid;
    uint64_t t;
    uint64_t size, node, addr;
    uint64_t ref;           /* heap block number within thread ref_tid */
    uint32_t ref_tid;
    uint8_t ref_known;
    uint64_t id, parent, pc, bias, start, end;
    uint64_t how, status, peak_rss, dropped, allocs, frees, bytes;
    const char *str_a, *str_b;
    size_t str_a_len, str_b_len;
} htri_record;

/* Called for every record. Return 0 to go on, a positive value to stop the replay early
 * (htri_reader_replay then returns that value), a negative error to abort with it. */
typedef int (*htri_record_fn)(void *ctx, const htri_record *rec);

/* Where and why the frame index stopped before the end of the file. */
typedef struct htri_reader_cut {
    int status;          /* 0: the file is complete; HTRI_E_TRUNCATED or HTRI_E_CORRUPT */
    uint64_t offset;     /* byte offset of the first frame not indexed */
    char why[96];        /* "incomplete frame header", "frame data runs past the end"... */
} htri_reader_cut;

/* Opens and indexes a trace file. Returns 0 and *out, or -errno (open/read failure),
 * HTRI_E_FOREIGN (not a trace), HTRI_E_TRUNCATED (shorter than the file header),
 * HTRI_E_CORRUPT (header checksum) or HTRI_E_VERSION. A file that is cut or damaged after
 * some frames opens fine: see htri_reader_cut_info(). */
int htri_reader_open(const char *path, htri_reader **out);
/* The same over a caller's buffer, which must outlive the reader (fuzzing, tests). */
int htri_reader_open_mem(const void *data, size_t size, htri_reader **out);
void htri_reader_close(htri_reader *r);

const htri_file_header *htri_reader_header(const htri_reader *r);
const htri_reader_cut *htri_reader_cut_info(const htri_reader *r);
size_t htri_reader_n_frames(const htri_reader *r);
/* Time of the last record of any indexed frame (ns since start): the trace's duration. */
uint64_t htri_reader_t_end(const htri_reader *r);
/* Largest number of EVENTS frames held decoded at once by the last replay. */
size_t htri_reader_max_open(const htri_reader *r);

/* Replays every indexed frame through fn. A META frame is delivered before any EVENTS frame
 * that follows it in the file is opened; EVENTS records are delivered in timestamp order
 * (heap allocations before heap frees at equal times, so a free another thread made in the
 * same tick meets its block; then frame order). May be called again to
 * replay from the start. Returns 0, fn's positive stop value, fn's error, or
 * HTRI_E_CORRUPT / -ENOMEM / -EIO; on HTRI_E_CORRUPT, htri_reader_error() says where. */
int htri_reader_replay(htri_reader *r, htri_record_fn fn, void *ctx);
/* Delivers the records of the META frames alone, in file order, as htri_reader_replay would
 * deliver them; EVENTS frames are skipped by their headers, never read or decompressed (so
 * damage inside them goes unnoticed). Same return values as htri_reader_replay. */
int htri_reader_replay_meta(htri_reader *r, htri_record_fn fn, void *ctx);
/* Index, in file order, of the META frame whose record the callback is given. */
size_t htri_reader_record_frame(const htri_reader *r);
/* 1 if an EVENTS frame follows frame ix in the file. */
int htri_reader_events_after(const htri_reader *r, size_t ix);
/* EVENTS frames decompressed since the reader was opened (tests: proves a skip). */
uint64_t htri_reader_events_inflated(const htri_reader *r);
/* The last replay error as text ("frame 3 at byte 1234: bad varint"), "" if none. */
const char *htri_reader_error(const htri_reader *r);

#endif
