/* Leak case: realloc chains: the last block of a grown buffer is what counts; one chain is
 * kept in a global, the other dropped.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 400 bytes in 1 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 800 bytes in 1 blocks
 */
#include <stdlib.h>

void *volatile g_kept;

int main(void)
{
    void *p = NULL, *q = NULL;
    for (size_t n = 100; n <= 800; n += 100) p = realloc(p, n);
    for (size_t n = 50; n <= 400; n += 50) q = realloc(q, n);
    g_kept = p;
    p = q = NULL;
    return 0;
}
