/* Private: LEB128 varints and zigzag, the integer encoding of every trace record.
 * Encoders write at most HTRI_VARINT_MAX bytes; decoders never read past `end`. */
#ifndef HTR_BASE_VARINT_H
#define HTR_BASE_VARINT_H
#include <stdint.h>
#include <stddef.h>

#define HTRI_VARINT_MAX 10

static inline uint8_t *htri_varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint64_t htri_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t htri_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* Decodes one varint at *pp; advances *pp. Returns 0, or -1 if it runs past `end` or is
 * longer than 10 bytes (a corrupt record). */
static inline int htri_varint_get(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p >= end) return -1;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return 0;
        }
    }
    return -1;
}

#endif
