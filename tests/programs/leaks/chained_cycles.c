/* Leak case: chained cycles, a <-> b -> c <-> d -> e <-> f, all lost: one definite, the rest
 * indirect, whatever the addresses.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 32 bytes in 1 blocks
 *    indirectly lost: 160 bytes in 5 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <stdlib.h>

void *volatile g_ptr;

int main(void)
{
    void **n[6];
    for (int i = 0; i < 6; i++) n[i] = calloc(1, 32);
    /* allocate in reverse so the head is not the lowest address */
    n[0][0] = n[1]; n[1][0] = n[0]; n[1][1] = n[2];
    n[2][0] = n[3]; n[3][0] = n[2]; n[3][1] = n[4];
    n[4][0] = n[5]; n[5][0] = n[4];
    g_ptr = n[0];
    for (int i = 0; i < 6; i++) n[i] = NULL;
    g_ptr = NULL;
    return 0;
}
