/* Verdict: four threads allocating, resizing and freeing at once, each its own blocks and
 * some handed to another thread: 0 errors (no false report under concurrency).
 * memcheck: errors=0
 * heaptrail: errors=0
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 20000
static void *volatile g_handoff[4];

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    unsigned x = (unsigned)id + 1;
    void *mine[64] = { 0 };
    for (int i = 0; i < ROUNDS; i++) {
        x = x * 1103515245u + 12345u;
        int s = (int)((x >> 8) & 63);
        size_t n = 1 + ((x >> 16) & 511);
        if (mine[s] && (x & 1)) {
            mine[s] = realloc(mine[s], n);
        } else {
            free(mine[s]);
            mine[s] = malloc(n);
        }
        memset(mine[s], id, n);
        if ((i & 255) == 0) {
            /* pass a block to the next thread, free whatever it passed us */
            void *mine_out = malloc(n);
            void *in = __atomic_exchange_n(&g_handoff[(id + 1) & 3], mine_out, __ATOMIC_ACQ_REL);
            free(in);
        }
    }
    for (int s = 0; s < 64; s++)
        free(mine[s]);
    return NULL;
}

int main(void)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        free(g_handoff[i]);
    return 0;
}
