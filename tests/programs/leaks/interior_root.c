/* Leak case: a global holds only an interior pointer: possibly lost.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 64 bytes in 1 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <stdlib.h>

char *volatile g_inner;

int main(void)
{
    char *p = calloc(1, 64);
    g_inner = p + 20;
    p = NULL;
    return 0;
}
