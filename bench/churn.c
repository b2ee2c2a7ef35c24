/* churn: overhead benchmark workload, two threads of random malloc/free churn.
 * Run natively and under each tool by bench/run.sh; prints only a checksum.
 *
 * Usage: churn N   (N = total malloc+free pairs, split evenly over the 2 threads)
 *
 * Each thread keeps a fixed window of CHURN_WINDOW live slots.  Every operation
 * picks a slot at random, frees what it holds and allocates a new block whose
 * size is log-uniform in [16, 4096) bytes, then touches its first and last byte
 * so the allocation cannot be optimised away.  The PRNG (xorshift64*) is seeded
 * per thread, so every run makes the same sequence of calls.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { CHURN_THREADS = 2, CHURN_WINDOW = 4096 };

typedef struct {
    uint64_t seed;
    long n_ops;
    uint64_t checksum;
} churn_job_t;

static uint64_t churn_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Log-uniform in [16, 4096): pick a power-of-two band, then a size inside it. */
static size_t churn_size(uint64_t r)
{
    unsigned band = 4 + (unsigned)(r % 8);            /* 2^4 .. 2^11 */
    size_t lo = (size_t)1 << band;
    return lo + (size_t)((r >> 8) % lo);
}

static void *churn_thread(void *arg)
{
    churn_job_t *job = arg;
    unsigned char **slots = calloc(CHURN_WINDOW, sizeof *slots);
    size_t *sizes = calloc(CHURN_WINDOW, sizeof *sizes);
    uint64_t state = job->seed;
    uint64_t sum = 0;

    if (!slots || !sizes) {
        fprintf(stderr, "churn: out of memory\n");
        exit(1);
    }
    for (long i = 0; i < job->n_ops; i++) {
        uint64_t r = churn_next(&state);
        size_t slot = (size_t)(r >> 40) % CHURN_WINDOW;
        if (slots[slot]) {
            sum += slots[slot][0] + slots[slot][sizes[slot] - 1];
            free(slots[slot]);
        }
        size_t size = churn_size(r);
        unsigned char *p = malloc(size);
        if (!p) {
            fprintf(stderr, "churn: malloc(%zu) failed\n", size);
            exit(1);
        }
        p[0] = (unsigned char)i;
        p[size - 1] = (unsigned char)(i >> 8);
        slots[slot] = p;
        sizes[slot] = size;
        sum += size;
    }
    for (size_t s = 0; s < CHURN_WINDOW; s++)
        free(slots[s]);
    free(slots);
    free(sizes);
    job->checksum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s N\n", argv[0]);
        return 2;
    }
    long n_total = strtol(argv[1], NULL, 10);
    if (n_total <= 0) {
        fprintf(stderr, "churn: N must be positive\n");
        return 2;
    }
    pthread_t tids[CHURN_THREADS];
    churn_job_t jobs[CHURN_THREADS];
    for (int t = 0; t < CHURN_THREADS; t++) {
        jobs[t] = (churn_job_t){ .seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(t + 1),
                                 .n_ops = n_total / CHURN_THREADS };
        if (pthread_create(&tids[t], NULL, churn_thread, &jobs[t]) != 0) {
            fprintf(stderr, "churn: pthread_create failed\n");
            return 1;
        }
    }
    uint64_t checksum = 0;
    for (int t = 0; t < CHURN_THREADS; t++) {
        pthread_join(tids[t], NULL);
        checksum ^= jobs[t].checksum;
    }
    printf("%llu\n", (unsigned long long)checksum);
    return 0;
}
