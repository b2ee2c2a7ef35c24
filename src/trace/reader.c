/* The trace reader: file header check, a frame index built from headers alone, and the
 * replay that decodes frames (zstd) into records and merges the EVENTS frames of all threads
 * by timestamp. Everything it reads is untrusted: lengths and varints are bounds-checked. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "base/common.h"
#include "base/varint.h"
#include "trace/reader.h"

typedef struct reader_frame {
    htri_frame_header h;
    uint64_t offset;      /* of the frame header */
} reader_frame;

/* An EVENTS frame being merged: its decoded bytes and the record at its head. */
typedef struct reader_cursor {
    uint32_t ix;          /* frame index, in file order: the tie-breaker of the merge */
    uint8_t *raw;
    const uint8_t *sp[HTRI_ES_COUNT], *se[HTRI_ES_COUNT];   /* each stream's next byte, end */
    uint32_t left;        /* records not yet decoded */
    uint64_t t, addr;     /* running time and MMAP/MUNMAP address of the delta encoding */
    uint64_t next_no;     /* the thread's number for the frame's next ALLOC/INHERIT */
    htri_record head;
} reader_cursor;

struct htri_reader {
    int fd;                       /* -1 for a memory source */
    const uint8_t *mem;
    uint64_t size;
    htri_file_header hdr;
    reader_frame *frames;
    size_t n_frames, cap_frames;
    htri_reader_cut cut;
    uint64_t t_end;
    size_t max_open;
    uint64_t n_events_inflated;   /* EVENTS frames decompressed since open */
    size_t cur_frame;             /* frame of the record being delivered */
    uint8_t *comp_buf;            /* compressed bytes of one frame (file source) */
    size_t comp_cap;
    char err[160];
};

static int reader_read_at(htri_reader *r, uint64_t off, void *buf, size_t n)
{
    if (off > r->size || n > r->size - off)
        return HTRI_E_TRUNCATED;
    if (r->mem) {
        memcpy(buf, r->mem + off, n);
        return 0;
    }
    size_t done = 0;
    while (done < n) {
        ssize_t k = pread(r->fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            return HTRI_E_TRUNCATED;
        done += (size_t)k;
    }
    return 0;
}

static void reader_set_cut(htri_reader *r, int status, uint64_t off, const char *why)
{
    r->cut.status = status;
    r->cut.offset = off;
    snprintf(r->cut.why, sizeof r->cut.why, "%s", why);
}

/* Whether the file holds only zero bytes from `off` to its end: what a crash leaves when the
 * file system extended the file before its data reached the disk. A cut, not damage.
 * Returns 1, 0, or -errno. */
static int reader_zero_tail(htri_reader *r, uint64_t off)
{
    uint8_t buf[65536];
    while (off < r->size) {
        size_t n = r->size - off < sizeof buf ? (size_t)(r->size - off) : sizeof buf;
        int rc = reader_read_at(r, off, buf, n);
        if (rc < 0)
            return rc == HTRI_E_TRUNCATED ? 0 : rc;
        for (size_t i = 0; i < n; i++)
            if (buf[i])
                return 0;
        off += n;
    }
    return 1;
}

/* Walks the frame headers, seeking over the data, until the end or the first frame that is
 * incomplete (the writer was killed mid-append) or does not decode (damage). */
static int reader_index(htri_reader *r)
{
    uint64_t off = HTRI_FILE_HEADER_SIZE;
    while (off < r->size) {
        uint8_t buf[HTRI_FRAME_HEADER_SIZE];
        htri_frame_header h;
        if (r->size - off < HTRI_FRAME_HEADER_SIZE) {
            reader_set_cut(r, HTRI_E_TRUNCATED, off, "incomplete frame header");
            return 0;
        }
        int rc = reader_read_at(r, off, buf, sizeof buf);
        if (rc < 0)
            return rc;
        if (htri_frame_header_decode(buf, &h) != 0) {
            int zero = reader_zero_tail(r, off);
            if (zero < 0)
                return zero;
            if (zero)
                reader_set_cut(r, HTRI_E_TRUNCATED, off, "zero-filled tail after the last frame");
            else
                reader_set_cut(r, HTRI_E_CORRUPT, off, "bad frame header");
            return 0;
        }
        if (h.comp_size > ZSTD_compressBound(h.raw_size) + 64) {
            reader_set_cut(r, HTRI_E_CORRUPT, off, "impossible compressed size");
            return 0;
        }
        if (h.comp_size > r->size - off - HTRI_FRAME_HEADER_SIZE) {
            reader_set_cut(r, HTRI_E_TRUNCATED, off, "frame data runs past the end of the file");
            return 0;
        }
        if (r->n_frames == r->cap_frames) {
            size_t cap = r->cap_frames ? r->cap_frames * 2 : 64, bytes;
            if (htri_mul_overflow(cap, sizeof *r->frames, &bytes))
                return -ENOMEM;
            reader_frame *f = realloc(r->frames, bytes);
            if (!f)
                return -ENOMEM;
            r->frames = f;
            r->cap_frames = cap;
        }
        r->frames[r->n_frames++] = (reader_frame){ h, off };
        if (h.t_last > r->t_end)
            r->t_end = h.t_last;
        off += HTRI_FRAME_HEADER_SIZE + (uint64_t)h.comp_size;
    }
    return 0;
}

static int reader_start(htri_reader *r)
{
    uint8_t buf[HTRI_FILE_HEADER_SIZE];
    if (r->size < 8)
        return r->size == 0 ? HTRI_E_TRUNCATED : HTRI_E_FOREIGN;
    if (r->size < HTRI_FILE_HEADER_SIZE) {
        /* Too short for a header: foreign unless it starts like one of ours. */
        uint8_t magic[8];
        int rc = reader_read_at(r, 0, magic, 8);
        if (rc < 0)
            return rc;
        return memcmp(magic, HTRI_TRACE_MAGIC, 8) == 0 ? HTRI_E_TRUNCATED : HTRI_E_FOREIGN;
    }
    int rc = reader_read_at(r, 0, buf, sizeof buf);
    if (rc < 0)
        return rc;
    rc = htri_file_header_decode(buf, &r->hdr);
    if (rc < 0)
        return rc;
    return reader_index(r);
}

static htri_reader *reader_new(void)
{
    htri_reader *r = calloc(1, sizeof *r);
    if (r)
        r->fd = -1;
    return r;
}

int htri_reader_open(const char *path, htri_reader **out)
{
    struct stat st;
    htri_reader *r = reader_new();
    if (!r)
        return -ENOMEM;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0 || fstat(r->fd, &st) != 0) {
        int e = -errno;
        htri_reader_close(r);
        return e;
    }
    if (S_ISDIR(st.st_mode)) {
        htri_reader_close(r);
        return -EISDIR;
    }
    r->size = (uint64_t)st.st_size;
    int rc = reader_start(r);
    if (rc < 0) {
        htri_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

int htri_reader_open_mem(const void *data, size_t size, htri_reader **out)
{
    static const uint8_t empty[1];
    htri_reader *r = reader_new();
    if (!r)
        return -ENOMEM;
    r->mem = data ? data : empty;
    r->size = size;
    int rc = reader_start(r);
    if (rc < 0) {
        htri_reader_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void htri_reader_close(htri_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->frames);
    free(r->comp_buf);
    free(r);
}

const htri_file_header *htri_reader_header(const htri_reader *r) { return &r->hdr; }
const htri_reader_cut *htri_reader_cut_info(const htri_reader *r) { return &r->cut; }
size_t htri_reader_n_frames(const htri_reader *r) { return r->n_frames; }
uint64_t htri_reader_t_end(const htri_reader *r) { return r->t_end; }
uint64_t htri_reader_events_inflated(const htri_reader *r) { return r->n_events_inflated; }
size_t htri_reader_record_frame(const htri_reader *r) { return r->cur_frame; }

int htri_reader_events_after(const htri_reader *r, size_t ix)
{
    for (size_t i = ix + 1; i < r->n_frames; i++)
        if (r->frames[i].h.kind == HTRI_FRAME_EVENTS)
            return 1;
    return 0;
}
size_t htri_reader_max_open(const htri_reader *r) { return r->max_open; }
const char *htri_reader_error(const htri_reader *r) { return r->err; }

static int reader_fail(htri_reader *r, uint32_t ix, const char *why)
{
    snprintf(r->err, sizeof r->err, "frame %u at byte %llu: %s", ix,
             (unsigned long long)r->frames[ix].offset, why);
    return HTRI_E_CORRUPT;
}

/* Decompresses frame ix into a fresh buffer of exactly raw_size bytes (the caller frees). */
static int reader_inflate(htri_reader *r, uint32_t ix, uint8_t **raw_out)
{
    const reader_frame *f = &r->frames[ix];
    const uint8_t *comp;
    uint64_t data_off = f->offset + HTRI_FRAME_HEADER_SIZE;
    if (r->mem) {
        comp = r->mem + data_off;
    } else {
        if (f->h.comp_size > r->comp_cap) {
            uint8_t *b = realloc(r->comp_buf, f->h.comp_size);
            if (!b)
                return -ENOMEM;
            r->comp_buf = b;
            r->comp_cap = f->h.comp_size;
        }
        int rc = reader_read_at(r, data_off, r->comp_buf, f->h.comp_size);
        if (rc < 0)
            return rc == HTRI_E_TRUNCATED ? reader_fail(r, ix, "file shrank while reading") : rc;
        comp = r->comp_buf;
    }
    uint8_t *raw = malloc(f->h.raw_size ? f->h.raw_size : 1);
    if (!raw)
        return -ENOMEM;
    if (f->h.kind == HTRI_FRAME_EVENTS)
        r->n_events_inflated++;
    size_t n = ZSTD_decompress(raw, f->h.raw_size, comp, f->h.comp_size);
    if (ZSTD_isError(n) || n != f->h.raw_size) {
        free(raw);
        return reader_fail(r, ix, ZSTD_isError(n) ? "bad zstd data" : "size differs from its header");
    }
    *raw_out = raw;
    return 0;
}

#define GET(v) do { if (htri_varint_get(&p, end, &(v)) != 0) goto bad_varint; } while (0)

static int reader_get_str(const uint8_t **pp, const uint8_t *end, const char **s, size_t *len)
{
    uint64_t n;
    if (htri_varint_get(pp, end, &n) != 0 || n > (uint64_t)(end - *pp))
        return -1;
    *s = (const char *)*pp;
    *len = (size_t)n;
    *pp += n;
    return 0;
}
#define GETSTR(s, l) do { if (reader_get_str(&p, end, &(s), &(l)) != 0) goto bad_varint; } while (0)

/* Decodes and delivers every record of META frame ix. */
static int reader_meta(htri_reader *r, uint32_t ix, htri_record_fn fn, void *ctx)
{
    uint8_t *raw = NULL;
    int rc = reader_inflate(r, ix, &raw);
    if (rc < 0)
        return rc;
    const uint8_t *p = raw, *end = raw + r->frames[ix].h.raw_size;
    uint32_t n_rec = 0, want = r->frames[ix].h.n_records;
    r->cur_frame = ix;
    const char *why = NULL;
    while (p < end) {
        htri_record rec;
        memset(&rec, 0, sizeof rec);
        rec.tag = *p++;
        n_rec++;
        switch (rec.tag) {
        case HTRI_REC_INFO:
            GETSTR(rec.str_a, rec.str_a_len);
            GETSTR(rec.str_b, rec.str_b_len);
            break;
        case HTRI_REC_MODULE:
            GET(rec.id); GET(rec.bias); GET(rec.start); GET(rec.end);
            GETSTR(rec.str_a, rec.str_a_len);
            GETSTR(rec.str_b, rec.str_b_len);
            GET(rec.t);
            if (rec.end < rec.start) { why = "module ends before it starts"; goto bad; }
            break;
        case HTRI_REC_MODULE_UNLOAD:
            GET(rec.id); GET(rec.t);
            break;
        case HTRI_REC_NODES: {
            uint64_t first, count;
            GET(first); GET(count);
            /* each node takes at least two bytes: a cheap bound before looping */
            if (first == 0 || count > (uint64_t)(end - p) / 2 || first > UINT32_MAX ||
                count > UINT32_MAX - first) { why = "bad node range"; goto bad; }
            for (uint64_t i = 0; i < count; i++) {
                uint64_t delta;
                rec.node = first + i;
                GET(delta); GET(rec.pc);
                if (delta == 0 || delta > rec.node) { why = "node parent out of range"; goto bad; }
                rec.parent = rec.node - delta;
                rc = fn(ctx, &rec);
                if (rc != 0)
                    goto out;
            }
            continue;
        }
        case HTRI_REC_THREAD:
            GET(rec.id); GET(rec.t);
            GETSTR(rec.str_a, rec.str_a_len);
            if (rec.id > UINT32_MAX) { why = "bad thread id"; goto bad; }
            rec.tid = (uint32_t)rec.id;
            break;
        case HTRI_REC_THREAD_END:
            GET(rec.id); GET(rec.t);
            if (rec.id > UINT32_MAX) { why = "bad thread id"; goto bad; }
            rec.tid = (uint32_t)rec.id;
            break;
        case HTRI_REC_RSS:
            GET(rec.t); GET(rec.size);
            break;
        case HTRI_REC_FORK_BASE:
            GET(rec.t); GET(rec.status); GET(rec.allocs); GET(rec.frees); GET(rec.bytes);
            break;
        case HTRI_REC_MESSAGE:
            GET(rec.t); GET(rec.status);
            GETSTR(rec.str_a, rec.str_a_len);
            break;
        case HTRI_REC_END:
            GET(rec.t); GET(rec.how); GET(rec.status); GET(rec.peak_rss); GET(rec.dropped);
            GET(rec.allocs); GET(rec.frees); GET(rec.bytes);
            break;
        default:
            if (rec.tag >= 0x40 && rec.tag <= 0x7f) {
                /* Leak and misuse records are `tag body_len body`: delivered whole (their
                 * decoders are trace/leak_record.h and error_record.h), so tags this
                 * reader does not know are skipped, not fatal. */
                GETSTR(rec.str_a, rec.str_a_len);
                break;
            }
            why = "unknown record tag in a META frame";
            goto bad;
        }
        rc = fn(ctx, &rec);
        if (rc != 0)
            goto out;
    }
    if (n_rec != want) {
        why = "record count differs from its header";
        goto bad;
    }
    rc = 0;
    goto out;
bad_varint:
    why = "record runs past the end of its frame";
bad:
    rc = reader_fail(r, ix, why);
out:
    free(raw);
    return rc;
}

/* Decodes the next record of an EVENTS cursor into c->head. Returns 1 if there is one,
 * 0 at the end of the frame, HTRI_E_CORRUPT on damage. */
#define SGET(st, v) do { if (htri_varint_get(&c->sp[st], c->se[st], &(v)) != 0) goto bad_varint; } while (0)

/* Decodes the next record of an EVENTS cursor into c->head, each field from its stream
 * (format.h). Returns 1 if there is one, 0 at the end of the frame, HTRI_E_CORRUPT on
 * damage. */
static int reader_next_event(htri_reader *r, reader_cursor *c)
{
    const htri_frame_header *h = &r->frames[c->ix].h;
    const char *why;
    htri_record *rec = &c->head;
    if (c->left == 0) {
        for (int st = 0; st < HTRI_ES_COUNT; st++)
            if (c->sp[st] != c->se[st]) { why = "bytes after the last record"; goto bad; }
        return 0;
    }
    if (c->sp[HTRI_ES_TAGS] >= c->se[HTRI_ES_TAGS]) { why = "fewer records than its header says"; goto bad; }
    /* only the event fields are ever written into a cursor's record (calloc'd), so
     * resetting those is enough: a full memset of the record costs 5% of a replay */
    rec->family = 0;
    rec->size = rec->node = 0;
    uint8_t tag = *c->sp[HTRI_ES_TAGS]++;
    uint64_t dt, addr_d;
    rec->tid = h->tid;
    SGET(HTRI_ES_DT, dt);
    if (htri_dt_decode(dt, &dt) != 0) { why = "record time past the frame's last time"; goto bad; }
    if (tag >= HTRI_REC_ALLOC && tag < HTRI_REC_INHERIT + HTRI_FAM_COUNT &&
        (tag & 7) < HTRI_FAM_COUNT) {
        rec->tag = tag < HTRI_REC_INHERIT ? HTRI_REC_ALLOC : HTRI_REC_INHERIT;
        rec->family = tag & 7;
        SGET(HTRI_ES_SIZES, rec->size); SGET(HTRI_ES_NODES, rec->node);
        if (c->next_no == UINT64_MAX) { why = "too many allocations in one thread"; goto bad; }
        rec->ref_tid = h->tid;
        rec->ref = c->next_no++;
        rec->ref_known = 1;
    } else if (tag >= HTRI_REC_FREE && tag < HTRI_REC_FREE + HTRI_FFAM_COUNT) {
        uint64_t code;
        rec->tag = HTRI_REC_FREE; rec->family = tag - HTRI_REC_FREE;
        SGET(HTRI_ES_REFS, code);
        rec->ref_known = code != HTRI_REF_NONE;
        rec->ref_tid = h->tid;
        rec->ref = 0;
        if (!(code & 1)) {
            /* this thread's block, code/2 allocations back from the next */
            if ((code >> 1) > c->next_no) { why = "free of an allocation before the thread's first"; goto bad; }
            rec->ref = c->next_no - (code >> 1);
        } else {
            uint64_t tid_d;
            SGET(HTRI_ES_REFS, tid_d);
            int64_t tid = (int64_t)h->tid + htri_unzigzag(tid_d);
            if (tid < 0 || tid > (int64_t)UINT32_MAX) { why = "free names a bad thread id"; goto bad; }
            rec->ref_tid = (uint32_t)tid;
            rec->ref = code >> 1;
        }
    } else if (tag == HTRI_REC_MMAP) {
        rec->tag = tag;
        SGET(HTRI_ES_SIZES, rec->size); SGET(HTRI_ES_NODES, rec->node); SGET(HTRI_ES_REFS, addr_d);
        c->addr += (uint64_t)htri_unzigzag(addr_d);
    } else if (tag == HTRI_REC_MUNMAP) {
        rec->tag = tag;
        SGET(HTRI_ES_SIZES, rec->size); SGET(HTRI_ES_REFS, addr_d);
        c->addr += (uint64_t)htri_unzigzag(addr_d);
    } else if (tag == HTRI_REC_ALLOC_FAILED) {
        uint64_t fam;
        rec->tag = tag;
        SGET(HTRI_ES_SIZES, rec->size); SGET(HTRI_ES_NODES, rec->node); SGET(HTRI_ES_NODES, fam);
        if (fam >= HTRI_FAM_COUNT) { why = "bad allocation family"; goto bad; }
        rec->family = (uint8_t)fam;
    } else {
        why = "unknown record tag in an EVENTS frame";
        goto bad;
    }
    if (__builtin_add_overflow(c->t, dt, &c->t) || c->t > h->t_last) {
        why = "record time past the frame's last time";
        goto bad;
    }
    rec->t = c->t;
    rec->addr = c->addr;     /* meaningful for MMAP/MUNMAP only */
    c->left--;
    return 1;
bad_varint:
    why = "record runs past the end of its frame";
bad:
    return reader_fail(r, c->ix, why);
}

/* Reads an EVENTS frame's first_no and stream lengths (format.h) and points the cursor's
 * streams into its data. Returns 0 or HTRI_E_CORRUPT. */
static int reader_streams(htri_reader *r, reader_cursor *c)
{
    const uint8_t *p = c->raw, *end = c->raw + r->frames[c->ix].h.raw_size;
    uint64_t len[HTRI_ES_COUNT];
    if (htri_varint_get(&p, end, &c->next_no) != 0)
        return reader_fail(r, c->ix, "EVENTS frame without its first allocation number");
    for (int st = 0; st < HTRI_ES_REFS; st++)
        if (htri_varint_get(&p, end, &len[st]) != 0)
            return reader_fail(r, c->ix, "EVENTS frame without its stream lengths");
    for (int st = 0; st < HTRI_ES_COUNT; st++) {
        if (st == HTRI_ES_REFS)
            len[st] = (uint64_t)(end - p);
        if (len[st] > (uint64_t)(end - p))
            return reader_fail(r, c->ix, "a stream runs past the end of its frame");
        c->sp[st] = p;
        c->se[st] = p + len[st];
        p += len[st];
    }
    return 0;
}

/* Merge order: time, then heap allocations before heap frees, then file order. Times are
 * quantised by the agent (docs/trace-format.md), so threads often tie. A block allocated by
 * one thread and freed by another within one tick must meet its allocation first; blocks are
 * named by reference, not address, so putting allocations first never confuses two blocks.
 * Anonymous mappings keep unmaps first (addresses): a range unmapped and mapped again by two
 * threads in one tick must not overlap itself. */
static int reader_rank(uint8_t tag)
{
    if (tag == HTRI_REC_FREE || tag == HTRI_REC_MMAP)
        return 1;
    return 0;
}

static int reader_before(const reader_cursor *a, const reader_cursor *b)
{
    if (a->head.t != b->head.t)
        return a->head.t < b->head.t;
    int ra = reader_rank(a->head.tag), rb = reader_rank(b->head.tag);
    if (ra != rb)
        return ra < rb;
    return a->ix < b->ix;
}

typedef struct reader_heap {
    reader_cursor **v;
    size_t n;
} reader_heap;

static void reader_heap_push(reader_heap *hp, reader_cursor *c)
{
    size_t i = hp->n++;
    hp->v[i] = c;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!reader_before(hp->v[i], hp->v[up]))
            break;
        reader_cursor *t = hp->v[i]; hp->v[i] = hp->v[up]; hp->v[up] = t;
        i = up;
    }
}

static void reader_heap_sift(reader_heap *hp)
{
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, rr = l + 1, m = i;
        if (l < hp->n && reader_before(hp->v[l], hp->v[m])) m = l;
        if (rr < hp->n && reader_before(hp->v[rr], hp->v[m])) m = rr;
        if (m == i)
            return;
        reader_cursor *t = hp->v[i]; hp->v[i] = hp->v[m]; hp->v[m] = t;
        i = m;
    }
}

static void reader_cursor_free(reader_cursor *c)
{
    if (c) {
        free(c->raw);
        free(c);
    }
}

static int reader_cmp_events(const void *a, const void *b, void *arg)
{
    const htri_reader *r = arg;
    const reader_frame *fa = &r->frames[*(const uint32_t *)a];
    const reader_frame *fb = &r->frames[*(const uint32_t *)b];
    if (fa->h.t_first != fb->h.t_first)
        return fa->h.t_first < fb->h.t_first ? -1 : 1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

int htri_reader_replay_meta(htri_reader *r, htri_record_fn fn, void *ctx)
{
    r->err[0] = 0;
    for (size_t i = 0; i < r->n_frames; i++) {
        if (r->frames[i].h.kind != HTRI_FRAME_META)
            continue;     /* its header was checked by the index; its data is never read */
        int rc = reader_meta(r, (uint32_t)i, fn, ctx);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The k-way merge: EVENTS frames sorted by their first time are opened only when the merge
 * reaches that time, so the frames decoded at once are those that overlap in time. Before a
 * frame is opened, every META frame that precedes it in the file is delivered: the writer
 * guarantees those define every module, node and thread it names. */
int htri_reader_replay(htri_reader *r, htri_record_fn fn, void *ctx)
{
    size_t n_ev = 0, ev_next = 0, meta_next = 0, bytes;
    uint32_t *ev = NULL;
    reader_heap hp = { NULL, 0 };
    int rc = 0;
    r->err[0] = 0;
    r->max_open = 0;
    if (htri_mul_overflow(r->n_frames ? r->n_frames : 1, sizeof *ev, &bytes) ||
        !(ev = malloc(bytes)) || !(hp.v = malloc(r->n_frames ? r->n_frames * sizeof *hp.v : 1))) {
        free(ev);
        return -ENOMEM;
    }
    for (size_t i = 0; i < r->n_frames; i++)
        if (r->frames[i].h.kind == HTRI_FRAME_EVENTS)
            ev[n_ev++] = (uint32_t)i;
    qsort_r(ev, n_ev, sizeof *ev, reader_cmp_events, r);

    for (;;) {
        if (ev_next < n_ev && (hp.n == 0 || r->frames[ev[ev_next]].h.t_first <= hp.v[0]->head.t)) {
            uint32_t ix = ev[ev_next++];
            for (; meta_next < ix; meta_next++) {
                if (r->frames[meta_next].h.kind != HTRI_FRAME_META)
                    continue;
                if ((rc = reader_meta(r, (uint32_t)meta_next, fn, ctx)) != 0)
                    goto out;
            }
            reader_cursor *c = calloc(1, sizeof *c);
            if (!c) { rc = -ENOMEM; goto out; }
            c->ix = ix;
            c->left = r->frames[ix].h.n_records;
            c->t = r->frames[ix].h.t_first;
            if ((rc = reader_inflate(r, ix, &c->raw)) < 0) {
                free(c);
                goto out;
            }
            /* every EVENTS frame opens with its thread's first allocation number, then
             * the lengths of its streams */
            if ((rc = reader_streams(r, c)) < 0) {
                reader_cursor_free(c);
                goto out;
            }
            rc = reader_next_event(r, c);
            if (rc <= 0) {
                reader_cursor_free(c);
                if (rc < 0)
                    goto out;
                continue;
            }
            reader_heap_push(&hp, c);
            if (hp.n > r->max_open)
                r->max_open = hp.n;
            continue;
        }
        if (hp.n == 0)
            break;
        reader_cursor *c = hp.v[0];
        if ((rc = fn(ctx, &c->head)) != 0)
            goto out;
        rc = reader_next_event(r, c);
        if (rc < 0)
            goto out;
        if (rc == 0) {
            reader_cursor_free(c);
            hp.v[0] = hp.v[--hp.n];
        }
        reader_heap_sift(&hp);
    }
    for (; meta_next < r->n_frames; meta_next++) {
        if (r->frames[meta_next].h.kind != HTRI_FRAME_META)
            continue;
        if ((rc = reader_meta(r, (uint32_t)meta_next, fn, ctx)) != 0)
            goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; i < hp.n; i++)
        reader_cursor_free(hp.v[i]);
    free(hp.v);
    free(ev);
    return rc;
}
