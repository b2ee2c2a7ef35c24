/* Trace writer: encodes META records, compresses record buffers into zstd frames and appends
 * them to the .htr file (layout in src/trace/format.h). Called by the agent's writer thread
 * and by tests; all memory comes from our own pages so it is safe inside a traced process. */
#define ZSTD_STATIC_LINKING_ONLY
#include <string.h>
#include <zstd.h>

#include "base/common.h"
#include "base/config.h"
#include "base/os.h"
#include "trace/writer.h"

/* The agent's times are whole ticks of the EVENTS dt code: one tick is one byte. */
_Static_assert(HTR_TIME_QUANTUM_LOG2 == HTRI_DT_TICK_LOG2, "time quantum differs from the dt tick");

/* zstd's workspace over our own pages: a 16-byte header keeps the mapping size. */
static void *writer_zalloc(void *opaque, size_t size)
{
    (void)opaque;
    size_t total;
    if (htri_add_overflow(size, 16, &total))
        return NULL;
    uint8_t *p = htri_os_pages_alloc(total);
    if (!p)
        return NULL;
    memcpy(p, &total, sizeof total);
    return p + 16;
}

static void writer_zfree(void *opaque, void *ptr)
{
    (void)opaque;
    if (!ptr)
        return;
    uint8_t *p = (uint8_t *)ptr - 16;
    size_t total;
    memcpy(&total, p, sizeof total);
    htri_os_pages_free(p, total);
}

int htri_writer_init(htri_writer *w)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    ZSTD_customMem cm = { writer_zalloc, writer_zfree, NULL };
    ZSTD_CCtx *cctx = ZSTD_createCCtx_advanced(cm);
    if (!cctx)
        return w->error = -ENOMEM;
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, HTR_ZSTD_LEVEL);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    w->cctx = cctx;
    return 0;
}

int htri_writer_start(htri_writer *w, int fd, const htri_file_header *h)
{
    if (w->error)
        return w->error;
    uint8_t hdr[HTRI_FILE_HEADER_SIZE];
    htri_file_header_encode(h, hdr);
    w->fd = fd;
    int rc = htri_os_write_all(fd, hdr, sizeof hdr);
    if (rc < 0)
        return w->error = rc;
    w->bytes_written += sizeof hdr;
    return 0;
}

/* Length of the varint at p (at most end - p), 0 if it runs past end. */
static size_t writer_varint_len(const uint8_t *p, const uint8_t *end)
{
    for (const uint8_t *q = p; q < end && q - p < HTRI_VARINT_MAX; q++)
        if (!(*q & 0x80))
            return (size_t)(q - p) + 1;
    return 0;
}

/* Field i (0 = dt) of a record with tag `tag` at p: its stream (HTRI_ES_*) in *st and its
 * length in *n. Returns 1, 0 when the record has no field i, -1 if the varint is cut short.
 * *odd_ref carries what field 1 of a FREE said about field 2 (0 before the record). */
static int writer_field(uint8_t tag, int i, int *odd_ref, const uint8_t *p, const uint8_t *end,
                        int *st, size_t *n)
{
    *st = htri_ev_stream(tag, i);
    if (*st < 0 || (i == 2 && tag >= HTRI_REC_FREE && tag < HTRI_REC_MMAP && !*odd_ref))
        return 0;
    if (!(*n = writer_varint_len(p, end)))
        return -1;
    if (i == 1 && tag >= HTRI_REC_FREE && tag < HTRI_REC_MMAP)
        *odd_ref = p[0] & 1;
    return 1;
}

/* Splits an EVENTS frame's interleaved records (first_no, then tag dt fields...) into the
 * streams of format.h at out (room for raw_size + 4 * HTRI_VARINT_MAX). Two walks: the first
 * measures the streams, the second copies every field to its stream. Returns the split
 * size, or 0 if the records do not parse (a caller's bug). */
static size_t writer_split_events(const uint8_t *raw, size_t raw_size, uint32_t n_records,
                                  uint8_t *out)
{
    const uint8_t *end = raw + raw_size;
    size_t first_len = writer_varint_len(raw, end), len[HTRI_ES_COUNT] = { 0 };
    if (!first_len)
        return 0;
    uint8_t *dst[HTRI_ES_COUNT];
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *p = raw + first_len;
        for (uint32_t k = 0; k < n_records; k++) {
            if (p >= end)
                return 0;
            uint8_t tag = *p++;
            if (pass) *dst[HTRI_ES_TAGS]++ = tag; else len[HTRI_ES_TAGS]++;
            int odd_ref = 0;
            for (int i = 0;; i++) {
                int st;
                size_t n;
                int f = writer_field(tag, i, &odd_ref, p, end, &st, &n);
                if (f < 0)
                    return 0;
                if (!f)
                    break;
                if (pass) {
                    memcpy(dst[st], p, n);
                    dst[st] += n;
                } else {
                    len[st] += n;
                }
                p += n;
            }
        }
        if (p != end)
            return 0;
        if (!pass) {
            uint8_t *o = out;
            memcpy(o, raw, first_len);
            o += first_len;
            for (int st = 0; st < HTRI_ES_REFS; st++)
                o = htri_varint_put(o, len[st]);
            for (int st = 0; st < HTRI_ES_COUNT; st++) {
                dst[st] = o;
                o += len[st];
            }
        }
    }
    return (size_t)(dst[HTRI_ES_REFS] - out);
}

int htri_ev_append(htri_recbuf *b, uint64_t *addr, const uint8_t *raw, size_t raw_size,
                   uint32_t n_records, uint64_t t_first, uint64_t t_last)
{
    const uint8_t *end = raw + raw_size;
    size_t first_len = writer_varint_len(raw, end);
    if (!first_len || !n_records || t_first < b->t_last)
        return -EINVAL;
    /* worst case: two fields grow to HTRI_VARINT_MAX bytes */
    int rc = htri_recbuf_room(b, raw_size + 2 * HTRI_VARINT_MAX);
    if (rc < 0)
        return rc;
    uint8_t *o = b->data + b->len;
    const uint8_t *p = raw + first_len;
    uint64_t a = 0;              /* the buffer's own delta base: 0 at its start */
    int rebased_addr = 0;
    for (uint32_t k = 0; k < n_records; k++) {
        if (p >= end)
            return -EINVAL;
        uint8_t tag = *p++;
        *o++ = tag;
        int odd_ref = 0;
        for (int i = 0;; i++) {
            int st;
            size_t n;
            int f = writer_field(tag, i, &odd_ref, p, end, &st, &n);
            if (f < 0)
                return -EINVAL;
            if (!f)
                break;
            int is_addr = (tag == HTRI_REC_MMAP && i == 3) || (tag == HTRI_REC_MUNMAP && i == 2);
            if (k == 0 && i == 0) {
                /* the first record's dt counts from the buffer's t_first: from b's last */
                const uint8_t *q = p;
                uint64_t v, dt;
                if (htri_varint_get(&q, end, &v) < 0 || htri_dt_decode(v, &dt) < 0)
                    return -EINVAL;
                o = htri_varint_put(o, htri_dt_code(t_first + dt - b->t_last));
            } else if (is_addr) {
                const uint8_t *q = p;
                uint64_t v;
                if (htri_varint_get(&q, end, &v) < 0)
                    return -EINVAL;
                a += (uint64_t)htri_unzigzag(v);
                if (!rebased_addr) {
                    o = htri_varint_put(o, htri_zigzag((int64_t)(a - *addr)));
                    rebased_addr = 1;
                } else {
                    memcpy(o, p, n);
                    o += n;
                }
            } else {
                memcpy(o, p, n);
                o += n;
            }
            p += n;
        }
    }
    if (p != end)
        return -EINVAL;
    if (rebased_addr)
        *addr = a;
    b->len = (size_t)(o - b->data);
    b->n_records += n_records;
    b->t_last = t_last;
    return 0;
}

/* Makes *buf (our own pages, contents not kept) hold at least need bytes, doubling from
 * `initial`. Returns 0 or -ENOMEM (the old buffer is kept). */
static int writer_room(uint8_t **buf, size_t *cap, size_t need, size_t initial)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : initial;
    while (c < need)
        c *= 2;
    uint8_t *nb = htri_os_pages_alloc(c);
    if (!nb)
        return -ENOMEM;
    htri_os_pages_free(*buf, *cap);
    *buf = nb;
    *cap = c;
    return 0;
}

int htri_writer_frame(htri_writer *w, uint8_t kind, uint32_t tid, uint32_t n_records,
                      uint64_t t_first, uint64_t t_last, const void *raw, size_t raw_size)
{
    if (w->error)
        return w->error;
    if (!w->cctx || w->fd < 0)
        return w->error = -EBADF;
    if (raw_size > HTRI_FRAME_MAX_RAW)
        return w->error = -EINVAL;
    if (kind == HTRI_FRAME_EVENTS) {
        /* the split adds the four stream lengths */
        if (raw_size > HTRI_FRAME_MAX_RAW - 4 * HTRI_VARINT_MAX)
            return w->error = -EINVAL;
        if (writer_room(&w->sbuf, &w->sbuf_cap, raw_size + 4 * HTRI_VARINT_MAX, 128 * 1024) < 0)
            return w->error = -ENOMEM;
        raw_size = writer_split_events(raw, raw_size, n_records, w->sbuf);
        if (!raw_size)
            return w->error = -EINVAL;
        raw = w->sbuf;
    }
    size_t need = HTRI_FRAME_HEADER_SIZE + ZSTD_compressBound(raw_size);
    if (writer_room(&w->cbuf, &w->cbuf_cap, need, 256 * 1024) < 0)
        return w->error = -ENOMEM;
    size_t csize = ZSTD_compress2(w->cctx, w->cbuf + HTRI_FRAME_HEADER_SIZE,
                                  w->cbuf_cap - HTRI_FRAME_HEADER_SIZE, raw, raw_size);
    if (ZSTD_isError(csize))
        return w->error = -EIO;
    if (t_last < t_first)
        t_last = t_first;
    htri_frame_header fh = {
        .kind = kind, .tid = tid, .n_records = n_records, .raw_size = (uint32_t)raw_size,
        .comp_size = (uint32_t)csize, .t_first = t_first, .t_last = t_last, .seq = w->seq,
    };
    htri_frame_header_encode(&fh, w->cbuf);
    /* One write per frame: a crash leaves at worst one partial frame at the end. */
    int rc = htri_os_write_all(w->fd, w->cbuf, HTRI_FRAME_HEADER_SIZE + csize);
    if (rc < 0)
        return w->error = rc;
    w->seq++;
    w->bytes_written += HTRI_FRAME_HEADER_SIZE + csize;
    return 0;
}

void htri_writer_fini(htri_writer *w)
{
    if (w->cctx)
        ZSTD_freeCCtx(w->cctx);
    w->cctx = NULL;
    htri_os_pages_free(w->cbuf, w->cbuf_cap);
    w->cbuf = NULL;
    w->cbuf_cap = 0;
    htri_os_pages_free(w->sbuf, w->sbuf_cap);
    w->sbuf = NULL;
    w->sbuf_cap = 0;
}

int htri_recbuf_room(htri_recbuf *b, size_t need)
{
    if (b->error)
        return b->error;
    size_t want;
    if (htri_add_overflow(b->len, need, &want))
        return b->error = -ENOMEM;
    if (want <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64 * 1024;
    while (cap < want)
        cap *= 2;
    uint8_t *nd = htri_os_pages_alloc(cap);
    if (!nd)
        return b->error = -ENOMEM;
    if (b->len)
        memcpy(nd, b->data, b->len);
    htri_os_pages_free(b->data, b->cap);
    b->data = nd;
    b->cap = cap;
    return 0;
}

void htri_recbuf_reset(htri_recbuf *b)
{
    b->len = 0;
    b->n_records = 0;
    b->t_first = b->t_last = 0;
    b->timed = 0;
    b->error = 0;
}

void htri_recbuf_free(htri_recbuf *b)
{
    htri_os_pages_free(b->data, b->cap);
    memset(b, 0, sizeof *b);
}

int htri_writer_flush_recbuf(htri_writer *w, htri_recbuf *b, uint8_t kind, uint32_t tid)
{
    int rc = 0;
    if (b->n_records)
        rc = htri_writer_frame(w, kind, tid, b->n_records, b->t_first, b->t_last, b->data, b->len);
    htri_recbuf_reset(b);
    return rc;
}

/* Bookkeeping shared by the encoders: the record count and the frame's time range. */
static void rec_done(htri_recbuf *b, uint8_t *end, int has_t, uint64_t t)
{
    b->len = (size_t)(end - b->data);
    if (has_t) {
        if (!b->timed || t < b->t_first)
            b->t_first = t;
        if (!b->timed || t > b->t_last)
            b->t_last = t;
        b->timed = 1;
    }
    b->n_records++;
}

static uint8_t *rec_str(uint8_t *p, const void *s, size_t len)
{
    p = htri_varint_put(p, len);
    if (len)
        memcpy(p, s, len);
    return p + len;
}

int htri_rec_info(htri_recbuf *b, const char *key, const char *val, size_t val_len)
{
    size_t klen = strlen(key);
    if (htri_recbuf_room(b, 1 + 2 * HTRI_VARINT_MAX + klen + val_len))
        return -ENOMEM;
    uint8_t *p = b->data + b->len;
    *p++ = HTRI_REC_INFO;
    p = rec_str(p, key, klen);
    p = rec_str(p, val, val_len);
    rec_done(b, p, 0, 0);
    return 0;
}

int htri_rec_module(htri_recbuf *b, uint64_t id, uint64_t bias, uint64_t start, uint64_t end,
                    const uint8_t *build_id, size_t build_id_len, const char *path,
                    size_t path_len, uint64_t t)
{
    if (htri_recbuf_room(b, 1 + 7 * HTRI_VARINT_MAX + build_id_len + path_len))
        return -ENOMEM;
    uint8_t *p = b->data + b->len;
    *p++ = HTRI_REC_MODULE;
    p = htri_varint_put(p, id);
    p = htri_varint_put(p, bias);
    p = htri_varint_put(p, start);
    p = htri_varint_put(p, end);
    p = rec_str(p, build_id, build_id_len);
    p = rec_str(p, path, path_len);
    p = htri_varint_put(p, t);
    rec_done(b, p, 1, t);
    return 0;
}

int htri_rec_module_unload(htri_recbuf *b, uint64_t id, uint64_t t)
{
    if (htri_recbuf_room(b, 1 + 2 * HTRI_VARINT_MAX))
        return -ENOMEM;
    uint8_t *p = b->data + b->len;
    *p++ = HTRI_REC_MODULE_UNLOAD;
    p = htri_varint_put(p, id);
    p = htri_varint_put(p, t);
    rec_done(b, p, 1, t);
    return 0;
}

int htri_rec_nodes(htri_recbuf *b, uint32_t first_id, uint32_t count, const uint32_t *parent,
                   const uintptr_t *pc)
{
    size_t body;
    if (htri_mul_overflow(count, 2 * HTRI_VARINT_MAX, &body) ||
        htri_recbuf_room(b, 1 + 2 * HTRI_VARINT_MAX + body))
        return -ENOMEM;
    uint8_t *p = b->data + b->len;
    *p++ = HTRI_REC_NODES;
    p = htri_varint_put(p, first_id);
    p = htri_varint_put(p, count);
    for (uint32_t i = 0; i < count; i++) {
        p = htri_varint_put(p, (uint64_t)(first_id + i - parent[i]));
        p = htri_varint_put(p, pc[i]);
    }
    rec_done(b, p, 0, 0);
    return 0;
}

int htri_rec_thread(htri_recbuf *b, uint32_t tid, uint64_t t, const char *name, size_t name_len)
{
    if (htri_recbuf_room(b, 1 + 3 * HTRI_VARINT_MAX + name_len))
        return -ENOMEM;
    uint8_t *p = b->data + b->len;
    *p++ = HTRI_REC_THREAD;
    p = htri_varint_put(p, tid);
    p = htri_varint_put(p, t);
    p = rec_str(p, name, name_len);
    rec_done(b, p, 1, t);
    return 0;
}

int htri_rec_thread_end(htri_recbuf *b, uint32_t tid, uint64_t t)
{
    if (htri_recbuf_room(b, 1 + 2 * HTRI_VARINT_MAX))
        return -ENOMEM;
    uint8_t *p = b->data + b->len;
    *p++ = HTRI_REC_THREAD_END;
    p = htri_varint_put(p, tid);
    p = htri_varint_put(p, t);
    rec_done(b, p, 1, t);
    return 0;
}

int htri_rec_rss(htri_recbuf *b, uint64_t t, uint64_t rss_bytes)
{
    if (htri_recbuf_room(b, 1 + 2 * HTRI_VARINT_MAX))
        return -ENOMEM;
    uint8_t *p = b->data + b->len;
    *p++ = HTRI_REC_RSS;
    p = htri_varint_put(p, t);
    p = htri_varint_put(p, rss_bytes);
    rec_done(b, p, 1, t);
    return 0;
}

int htri_rec_fork_base(htri_recbuf *b, uint64_t t, uint32_t parent_pid, uint64_t allocs,
                       uint64_t frees, uint64_t bytes)
{
    if (htri_recbuf_room(b, 1 + 5 * HTRI_VARINT_MAX))
        return -ENOMEM;
    uint8_t *p = b->data + b->len;
    *p++ = HTRI_REC_FORK_BASE;
    p = htri_varint_put(p, t);
    p = htri_varint_put(p, parent_pid);
    p = htri_varint_put(p, allocs);
    p = htri_varint_put(p, frees);
    p = htri_varint_put(p, bytes);
    rec_done(b, p, 1, t);
    return 0;
}

int htri_rec_message(htri_recbuf *b, uint64_t t, uint32_t level, const char *text, size_t len)
{
    if (htri_recbuf_room(b, 1 + 3 * HTRI_VARINT_MAX + len))
        return -ENOMEM;
    uint8_t *p = b->data + b->len;
    *p++ = HTRI_REC_MESSAGE;
    p = htri_varint_put(p, t);
    p = htri_varint_put(p, level);
    p = rec_str(p, text, len);
    rec_done(b, p, 1, t);
    return 0;
}

int htri_rec_end(htri_recbuf *b, uint64_t t, uint32_t how, uint64_t status, uint64_t peak_rss,
                 uint64_t dropped, uint64_t allocs, uint64_t frees, uint64_t bytes)
{
    if (htri_recbuf_room(b, 1 + 8 * HTRI_VARINT_MAX))
        return -ENOMEM;
    uint8_t *p = b->data + b->len;
    *p++ = HTRI_REC_END;
    p = htri_varint_put(p, t);
    p = htri_varint_put(p, how);
    p = htri_varint_put(p, status);
    p = htri_varint_put(p, peak_rss);
    p = htri_varint_put(p, dropped);
    p = htri_varint_put(p, allocs);
    p = htri_varint_put(p, frees);
    p = htri_varint_put(p, bytes);
    rec_done(b, p, 1, t);
    return 0;
}

int htri_rec_raw(htri_recbuf *b, uint8_t tag, const void *body, size_t len, uint64_t t)
{
    if (htri_recbuf_room(b, 1 + len))
        return -ENOMEM;
    uint8_t *p = b->data + b->len;
    *p++ = tag;
    if (len)
        memcpy(p, body, len);
    rec_done(b, p + len, 1, t);
    return 0;
}
