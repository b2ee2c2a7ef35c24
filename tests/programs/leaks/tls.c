/* Leak case: pointers held only in thread-local storage, of the main thread and of a thread
 * still alive at exit: still reachable.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 288 bytes in 1 blocks
 *    still reachable: 96 bytes in 2 blocks
 * glibc artifact: each thread's DTV (calloc'd by ld.so) is held through dtv + 1, an
 * interior pointer, so memcheck calls it possibly lost; an answer that knows the DTV is
 * reachable (it counts as still reachable) is better, and accepted. Under heaptrail each
 * DTV is 32 bytes bigger: the agent library and libunwind add two TLS modules.
 * heaptrail LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 416 bytes in 3 blocks
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

__thread void *volatile t_ptr;
static volatile int g_ready;

static void *worker(void *arg)
{
    (void)arg;
    t_ptr = malloc(64);
    g_ready = 1;
    for (;;) pause();
    return NULL;
}

int main(void)
{
    pthread_t t;
    t_ptr = malloc(32);
    pthread_create(&t, NULL, worker, NULL);
    while (!g_ready) usleep(1000);
    usleep(20000);
    exit(0);
}
