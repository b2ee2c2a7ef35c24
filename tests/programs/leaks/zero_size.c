/* Leak case: zero-size blocks are blocks: one held (a pointer equal to its address finds
 * it), two lost.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 2 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 0 bytes in 1 blocks
 */
#include <stdlib.h>

void *volatile g_ptr;

int main(void)
{
    g_ptr = malloc(0);
    void *volatile lost = malloc(0);
    lost = calloc(0, 8);
    lost = NULL;
    (void)lost;
    return 0;
}
