/* Leak case: a lost group (leader + child) next to a possibly lost block that points at the
 * leader's interior: the interior pointer makes the leader possibly lost too.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 112 bytes in 3 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <stdlib.h>

char *volatile g_inner;

int main(void)
{
    void **holder = calloc(1, 32);
    void **leader = calloc(1, 48);
    leader[0] = calloc(1, 32);
    holder[1] = (char *)leader + 8;
    g_inner = (char *)holder + 8;
    holder = leader = NULL;
    return 0;
}
