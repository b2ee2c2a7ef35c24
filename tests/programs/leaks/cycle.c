/* Leak case: a lost cycle of two blocks: one definite (the lowest address), one indirect.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 24 bytes in 1 blocks
 *    indirectly lost: 24 bytes in 1 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <stdlib.h>

void *volatile g_ptr;

int main(void)
{
    void **a = calloc(1, 24), **b = calloc(1, 24);
    a[0] = b;
    b[0] = a;
    g_ptr = a;
    a = b = NULL;
    g_ptr = NULL;
    return 0;
}
