/* deep: overhead benchmark workload, every allocation made 30 frames deep.
 * Run natively and under each tool by bench/run.sh; prints only a checksum.
 *
 * Usage: deep N   (N = number of allocations; all are freed)
 *
 * main -> deep_entryK (one of 4, so the trace holds 4 distinct stacks)
 *      -> deep_f29 -> ... -> deep_f1 -> malloc       (30 frames of ours)
 * Each level is a distinct noinline function that does work after the call, so
 * neither inlining nor sibling-call optimisation can fold frames away.  Blocks
 * live in a FIFO window of DEEP_WINDOW and are freed oldest first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { DEEP_WINDOW = 1024 };

#define DEEP_NOINLINE __attribute__((noinline))

static DEEP_NOINLINE unsigned char *deep_f1(size_t size)
{
    unsigned char *p = malloc(size);
    if (!p) {
        fprintf(stderr, "deep: malloc(%zu) failed\n", size);
        exit(1);
    }
    p[0] = (unsigned char)size;
    return p;
}

/* The empty asm after the call keeps the call out of tail position. */
#define DEEP_LEVEL(n, m)                                          \
    static DEEP_NOINLINE unsigned char *deep_f##n(size_t size)    \
    {                                                             \
        unsigned char *p = deep_f##m(size);                       \
        __asm__ volatile("" : "+r"(p) : : "memory");              \
        return p;                                                 \
    }

DEEP_LEVEL(2, 1)   DEEP_LEVEL(3, 2)   DEEP_LEVEL(4, 3)   DEEP_LEVEL(5, 4)
DEEP_LEVEL(6, 5)   DEEP_LEVEL(7, 6)   DEEP_LEVEL(8, 7)   DEEP_LEVEL(9, 8)
DEEP_LEVEL(10, 9)  DEEP_LEVEL(11, 10) DEEP_LEVEL(12, 11) DEEP_LEVEL(13, 12)
DEEP_LEVEL(14, 13) DEEP_LEVEL(15, 14) DEEP_LEVEL(16, 15) DEEP_LEVEL(17, 16)
DEEP_LEVEL(18, 17) DEEP_LEVEL(19, 18) DEEP_LEVEL(20, 19) DEEP_LEVEL(21, 20)
DEEP_LEVEL(22, 21) DEEP_LEVEL(23, 22) DEEP_LEVEL(24, 23) DEEP_LEVEL(25, 24)
DEEP_LEVEL(26, 25) DEEP_LEVEL(27, 26) DEEP_LEVEL(28, 27) DEEP_LEVEL(29, 28)
DEEP_LEVEL(entry0, 29) DEEP_LEVEL(entry1, 29) DEEP_LEVEL(entry2, 29) DEEP_LEVEL(entry3, 29)

static uint64_t deep_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s N\n", argv[0]);
        return 2;
    }
    long n_allocs = strtol(argv[1], NULL, 10);
    if (n_allocs <= 0) {
        fprintf(stderr, "deep: N must be positive\n");
        return 2;
    }
    static unsigned char *window[DEEP_WINDOW];
    uint64_t state = 0x243F6A8885A308D3ULL;
    uint64_t sum = 0;

    for (long i = 0; i < n_allocs; i++) {
        size_t slot = (size_t)i % DEEP_WINDOW;
        if (window[slot]) {
            sum += window[slot][0];
            free(window[slot]);
        }
        uint64_t r = deep_next(&state);
        size_t size = 16 + (size_t)(r % 497);           /* 16 .. 512 */
        unsigned char *p;
        switch ((r >> 32) & 3) {
        case 0: p = deep_fentry0(size); break;
        case 1: p = deep_fentry1(size); break;
        case 2: p = deep_fentry2(size); break;
        default: p = deep_fentry3(size); break;
        }
        window[slot] = p;
        sum += size;
    }
    for (size_t s = 0; s < DEEP_WINDOW; s++)
        free(window[s]);
    printf("%llu\n", (unsigned long long)sum);
    return 0;
}
