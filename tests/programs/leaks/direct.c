/* Leak case: a direct leak, the only pointer overwritten.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 16 bytes in 1 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <stdlib.h>
#include <string.h>

void *volatile g_ptr;

int main(void)
{
    g_ptr = malloc(16);
    memset(g_ptr, 1, 16);
    g_ptr = NULL;
    return 0;
}
