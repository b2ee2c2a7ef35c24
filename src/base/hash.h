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

/* Hash of an array of words (stacks of program counters). */
static inline uint64_t htri_hash_words(const uintptr_t *w, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (size_t i = 0; i < n; i++)
        h = htri_hash64(h ^ (uint64_t)w[i]) + i;
    return h;
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
