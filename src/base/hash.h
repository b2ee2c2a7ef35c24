/* Private: fast non-cryptographic hashes for the tables of agent and CLI. */
#ifndef HTR_BASE_HASH_H
#define HTR_BASE_HASH_H
#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* Finalizer of splitmix64: a good spread for pointers and ids in one multiply chain. */
static inline uint64_t htri_hash64(uint64_t x)
{
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static inline uint64_t htri_rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* Hash of an array of words (stacks of program counters). Four independent multiply lanes,
 * so a 30-frame stack costs a few cycles a frame instead of one serial mixing chain (that
 * chain was half of the agent's stack interning on a 30-frame workload). */
static inline uint64_t htri_hash_words(const uintptr_t *w, size_t n)
{
    uint64_t a = 0x9e3779b97f4a7c15ull ^ (uint64_t)n, b = 0xc2b2ae3d27d4eb4full;
    uint64_t c = 0x165667b19e3779f9ull, d = 0x27d4eb2f165667c5ull;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a = htri_rotl64((a ^ (uint64_t)w[i]) * 0xff51afd7ed558ccdull, 31);
        b = htri_rotl64((b ^ (uint64_t)w[i + 1]) * 0xc4ceb9fe1a85ec53ull, 29);
        c = htri_rotl64((c ^ (uint64_t)w[i + 2]) * 0x9fb21c651e98df25ull, 27);
        d = htri_rotl64((d ^ (uint64_t)w[i + 3]) * 0xd6e8feb86659fd93ull, 33);
    }
    for (; i < n; i++)
        a = htri_rotl64((a ^ (uint64_t)w[i]) * 0xff51afd7ed558ccdull, 31) + b;
    return htri_hash64(a ^ htri_rotl64(b, 16) ^ htri_rotl64(c, 32) ^ htri_rotl64(d, 48));
}

/* FNV-1a over bytes: checksums of frame headers and strings. */
static inline uint32_t htri_fnv1a32(const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 16777619u; }
    return h;
}

#endif
