/* Leak case: a lost block holds an interior pointer into another: inside a lost group any
 * pointer counts, so the second is indirectly lost.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 32 bytes in 1 blocks
 *    indirectly lost: 48 bytes in 1 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <stdlib.h>

void *volatile g_ptr;

int main(void)
{
    char **a = calloc(1, 32);
    char *b = calloc(1, 48);
    a[1] = b + 16;
    g_ptr = a;
    b = NULL;
    a = NULL;
    g_ptr = NULL;
    return 0;
}
