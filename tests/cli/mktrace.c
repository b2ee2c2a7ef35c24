/* Writes the hand-made traces the CLI tests and the fuzz corpus start from, into DIR:
 * sample.htr (complete), cut.htr (cut inside the last frame), corrupt.htr (a damaged frame
 * header), badzstd.htr (damaged compressed data), empty.htr (header only).
 * usage: mktrace DIR */
#include <stdio.h>

#include "trace_enc.h"

static int write_to(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "mktrace: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mktrace DIR\n");
        return 2;
    }
    enc e;
    enc_sample(&e);
    int bad = write_to(argv[1], "sample.htr", e.buf, e.len);
    bad |= write_to(argv[1], "cut.htr", e.buf, e.len - 5);
    uint32_t comp0 = htri_get_u32(e.buf + 64 + 20);
    uint8_t *copy = malloc(e.len);
    if (!copy)
        return 1;
    memcpy(copy, e.buf, e.len);
    copy[64 + 48 + comp0 + 9] ^= 0x10;            /* tid of frame 1: header checksum fails */
    bad |= write_to(argv[1], "corrupt.htr", copy, e.len);
    memcpy(copy, e.buf, e.len);
    copy[64 + 48 + comp0 / 2] ^= 0x55;
    bad |= write_to(argv[1], "badzstd.htr", copy, e.len);
    bad |= write_to(argv[1], "empty.htr", e.buf, 64);
    free(copy);
    free(e.buf);
    return bad;
}
