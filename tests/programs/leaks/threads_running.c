/* Leak case: threads still running at exit: 4 workers each hold one block on their stack
 * (still reachable) and each leaked one (definitely lost).
 * memcheck LEAK SUMMARY:
 *    definitely lost: 80 bytes in 4 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 1,088 bytes in 4 blocks
 *    still reachable: 160 bytes in 4 blocks
 * glibc artifact: each thread's DTV (calloc'd by ld.so) is held through dtv + 1, an
 * interior pointer, so memcheck calls it possibly lost; an answer that knows the DTV is
 * reachable (it counts as still reachable) is better, and accepted. Under heaptrail each
 * DTV is 32 bytes bigger: the agent library and libunwind add two TLS modules.
 * heaptrail LEAK SUMMARY:
 *    definitely lost: 80 bytes in 4 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 1,376 bytes in 8 blocks
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static volatile int g_ready;

static void *worker(void *arg)
{
    volatile void *held = malloc(40);
    void *volatile lost = malloc(20);
    lost = NULL;
    (void)arg;
    __atomic_add_fetch(&g_ready, 1, __ATOMIC_SEQ_CST);
    for (;;) usleep(1000);
    return (void *)held;
}

int main(void)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, NULL);
    while (g_ready < 4) usleep(1000);
    usleep(20000);
    return 0;
}
