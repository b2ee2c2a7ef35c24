/* Leak case: a pointer held only in a register (r12) of a thread spinning at exit.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 272 bytes in 1 blocks
 *    still reachable: 72 bytes in 1 blocks
 * glibc artifact: each thread's DTV (calloc'd by ld.so) is held through dtv + 1, an
 * interior pointer, so memcheck calls it possibly lost; an answer that knows the DTV is
 * reachable (it counts as still reachable) is better, and accepted. Under heaptrail each
 * DTV is 32 bytes bigger: the agent library and libunwind add two TLS modules.
 * heaptrail LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 376 bytes in 2 blocks
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define KEY ((uintptr_t)0x5a5a5a5a5a5a5a5aull)
static volatile int g_ready;
static volatile uintptr_t g_hidden;

static void *worker(void *arg)
{
    (void)arg;
    g_hidden = (uintptr_t)malloc(72) ^ KEY;
    g_ready = 1;
    __asm__ volatile("movq %0, %%r12\n\txorq %1, %%r12\n\tmovq $0, %0\n"
                     "1:\n\tpause\n\tjmp 1b"
                     : "+m"(g_hidden) : "r"(KEY) : "r12", "memory");
    return NULL;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    while (!g_ready) usleep(1000);
    usleep(50000);
    exit(0);
}
