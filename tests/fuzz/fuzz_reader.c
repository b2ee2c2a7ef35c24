/* Fuzz target for the trace reader, the analysis and the renderers: any bytes, opened as a
 * trace, run through the full two-pass analysis and the run summary's (HEAP_TOTALS) path, and
 * rendered (symbols off). With libFuzzer (clang -fsanitize=fuzzer) it is a fuzzer;
 * built with -DHTR_FUZZ_REPLAY it is a driver that replays every file named on the command
 * line or found in the directories named (the CTest regression run over tests/fuzz/corpus).
 *
 * Mutating a real trace mostly breaks zstd's checksum, which never reaches the record
 * decoders. So an input that starts with "HTRFUZZ1" is a list of uncompressed frames,
 *     { kind:u8 tid:u32 t_first:u64 n_records:u32 raw_len:u32 raw[raw_len] }*
 * which the harness compresses into a well-formed trace: the fuzzer then mutates records.
 * `fuzz_reader_replay --to-structured IN.htr OUT` converts a trace into that form (seeds). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zstd.h>

#include "analyze/analyze.h"
#include "render/render.h"
#include "trace/reader.h"

#define FUZZ_MAGIC "HTRFUZZ1"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_trace(const uint8_t *data, size_t size);

/* Builds a trace from the structured form and analyses it. */
static void fuzz_structured(const uint8_t *p, size_t size)
{
    const uint8_t *end = p + size;
    size_t cap = 1 << 16, len = 0;
    uint8_t *out = malloc(cap);
    if (!out)
        return;
    htri_file_header fh = { HTRI_TRACE_VERSION, 0, 1, 0, 0, 0, 0 };
    htri_file_header_encode(&fh, out);
    len = HTRI_FILE_HEADER_SIZE;
    uint32_t seq = 0;
    while ((size_t)(end - p) >= 21 && seq < 64) {
        htri_frame_header h = { p[0], htri_get_u32(p + 1), htri_get_u32(p + 13), 0, 0,
                                htri_get_u64(p + 5), 0, seq++ };
        uint32_t raw_len = htri_get_u32(p + 17);
        p += 21;
        if (raw_len > (size_t)(end - p))
            raw_len = (uint32_t)(end - p);
        h.kind = h.kind & 1 ? HTRI_FRAME_META : HTRI_FRAME_EVENTS;
        h.raw_size = raw_len;
        h.t_last = h.t_first + (1ull << 40);
        size_t bound = ZSTD_compressBound(raw_len) + HTRI_FRAME_HEADER_SIZE;
        if (len + bound > cap) {
            cap = (len + bound) * 2;
            uint8_t *b = realloc(out, cap);
            if (!b)
                break;
            out = b;
        }
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        if (!cc)
            break;
        ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 1);
        ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
        size_t n = ZSTD_compress2(cc, out + len + HTRI_FRAME_HEADER_SIZE, cap - len - HTRI_FRAME_HEADER_SIZE,
                                  p, raw_len);
        ZSTD_freeCCtx(cc);
        if (ZSTD_isError(n))
            break;
        h.comp_size = (uint32_t)n;
        htri_frame_header_encode(&h, out + len);
        len += HTRI_FRAME_HEADER_SIZE + n;
        p += raw_len;
    }
    fuzz_trace(out, len);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 8 && memcmp(data, FUZZ_MAGIC, 8) == 0)
        fuzz_structured(data + 8, size - 8);
    else
        fuzz_trace(data, size);
    return 0;
}

static void fuzz_trace(const uint8_t *data, size_t size)
{
    htri_reader *r = NULL;
    if (htri_reader_open_mem(data, size, &r) != 0)
        return;
    htri_model *m = NULL;
    htri_analyze_opts o = { .short_lived_ns = 1000, .n_points = 16 };
    if (htri_analyze(r, &o, &m, NULL, 0) == 0) {
        uint32_t top[4];
        (void)htri_model_top(m, HTRI_SORT_PEAK, top, 4);
        (void)htri_model_top(m, HTRI_SORT_LEAKED, top, 4);
        uint32_t stack[64];
        for (size_t i = 0; i < m->n_nodes; i++)
            (void)htri_model_stack(m, (uint32_t)i, stack, 64);
        /* the renderers too, symbols off: a trace's strings and numbers reach them as is */
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull) {
            htri_render_opts ro = { 5, "fuzz.htr", 1 };
            (void)htri_render_text(devnull, m, &ro);
            (void)htri_render_json(devnull, m, &ro);
            (void)htri_render_summary(devnull, m, "fuzz.htr", NULL, NULL);
            fclose(devnull);
        }
        htri_model_free(m);
    }
    /* the run summary's path: META frames alone when HEAP_TOTALS can stand for the events */
    htri_analyze_opts so = { .skip_peak_sites = 1, .summary_only = 1 };
    m = NULL;
    if (htri_analyze(r, &so, &m, NULL, 0) == 0) {
        FILE *devnull = fopen("/dev/null", "w");
        if (devnull) {
            (void)htri_render_summary(devnull, m, "fuzz.htr", NULL, NULL);
            fclose(devnull);
        }
        htri_model_free(m);
    }
    htri_reader_close(r);
}

#ifdef HTR_FUZZ_REPLAY
static int fuzz_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_reader: cannot open %s\n", path);
        return 1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;
    uint8_t chunk[65536];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n > cap) {
            cap = (len + n) * 2;
            uint8_t *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return 1;
            }
            buf = b;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    /* an exact-size copy, so a sanitizer build sees any read past the end */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return 1;
    }
    if (len)
        memcpy(exact, buf, len);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    free(buf);
    return 0;
}

/* Rewrites trace IN as the structured form, frames decompressed (for seeding the corpus). */
static int fuzz_to_structured(const char *in, const char *outpath)
{
    FILE *f = fopen(in, "rb"), *o = fopen(outpath, "wb");
    uint8_t hdr[HTRI_FRAME_HEADER_SIZE], fh[HTRI_FILE_HEADER_SIZE];
    int rc = 1;
    if (!f || !o || fread(fh, 1, sizeof fh, f) != sizeof fh)
        goto out;
    fwrite(FUZZ_MAGIC, 1, 8, o);
    while (fread(hdr, 1, sizeof hdr, f) == sizeof hdr) {
        htri_frame_header h;
        if (htri_frame_header_decode(hdr, &h) != 0)
            break;
        uint8_t *comp = malloc(h.comp_size + 1), *raw = malloc(h.raw_size + 1);
        if (!comp || !raw || fread(comp, 1, h.comp_size, f) != h.comp_size ||
            ZSTD_decompress(raw, h.raw_size, comp, h.comp_size) != h.raw_size) {
            free(comp);
            free(raw);
            break;
        }
        uint8_t rec[21];
        rec[0] = h.kind == HTRI_FRAME_META ? 1 : 0;
        htri_put_u32(rec + 1, h.tid);
        htri_put_u64(rec + 5, h.t_first);
        htri_put_u32(rec + 13, h.n_records);
        htri_put_u32(rec + 17, h.raw_size);
        fwrite(rec, 1, sizeof rec, o);
        fwrite(raw, 1, h.raw_size, o);
        free(comp);
        free(raw);
    }
    rc = 0;
out:
    if (f)
        fclose(f);
    if (o && fclose(o) != 0)
        rc = 1;
    return rc;
}

int main(int argc, char **argv)
{
    int bad = 0, files = 0;
    if (argc == 4 && strcmp(argv[1], "--to-structured") == 0)
        return fuzz_to_structured(argv[2], argv[3]);
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.')
                    continue;
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
                bad |= fuzz_file(path);
                files++;
            }
            if (d)
                closedir(d);
        } else {
            bad |= fuzz_file(argv[i]);
            files++;
        }
    }
    fprintf(stderr, "fuzz_reader: %d inputs replayed\n", files);
    return bad || files == 0;
}
#endif
