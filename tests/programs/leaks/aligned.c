/* Leak case: calloc, memalign, posix_memalign, aligned_alloc and valloc blocks, all lost.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 310 bytes in 5 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <malloc.h>
#include <stdlib.h>

void *volatile g_ptr;

int main(void)
{
    void *p;
    g_ptr = calloc(10, 3);
    g_ptr = memalign(64, 40);
    if (posix_memalign(&p, 128, 50) == 0) g_ptr = p;
    p = NULL;
    g_ptr = aligned_alloc(256, 512 / 4 * 0 + 60);
    g_ptr = valloc(130);
    g_ptr = NULL;
    return 0;
}
