/* Leak case: a block reached only through an interior pointer is possibly lost, and so is a
 * block hanging from it by a start pointer (its prior is not definite).
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 80 bytes in 2 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <stdlib.h>

char *volatile g_inner;

int main(void)
{
    void **a = calloc(1, 48);
    a[2] = calloc(1, 32);
    g_inner = (char *)a + 12;
    a = NULL;
    return 0;
}
