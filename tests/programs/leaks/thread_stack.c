/* Leak case: a pointer held only on the stack of a thread still blocked at exit: still
 * reachable (every thread's stack is a root, from its stack pointer up).
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 272 bytes in 1 blocks
 *    still reachable: 100 bytes in 1 blocks
 * (plus the thread's own bookkeeping, which glibc frees: the summary counts only ours)
 * glibc artifact: each thread's DTV (calloc'd by ld.so) is held through dtv + 1, an
 * interior pointer, so memcheck calls it possibly lost; an answer that knows the DTV is
 * reachable (it counts as still reachable) is better, and accepted. Under heaptrail each
 * DTV is 32 bytes bigger: the agent library and libunwind add two TLS modules.
 * heaptrail LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 404 bytes in 2 blocks
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static volatile int g_ready;

static void *worker(void *arg)
{
    volatile void *mine = malloc(100);
    (void)arg;
    g_ready = 1;
    for (;;) pause();
    return (void *)mine;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    while (!g_ready) usleep(1000);
    usleep(20000);
    exit(0);
}
