/* Leak case: pointers held only in globals (.data and .bss) and a static local: still
 * reachable.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 60 bytes in 3 blocks
 */
#include <stdlib.h>

void *g_bss;
void *g_data = (void *)1;

static void keep(void *p)
{
    static void *s_local;
    s_local = p;
}

int main(void)
{
    g_bss = malloc(10);
    g_data = malloc(20);
    keep(malloc(30));
    return 0;
}
