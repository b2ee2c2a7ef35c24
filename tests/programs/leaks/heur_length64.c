/* Leak case: memcheck's length64 heuristic (sqlite's allocator): a 64-bit length of the rest
 * of the block, and the program holds a pointer just past it: still reachable.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 108 bytes in 1 blocks
 */
#include <stdint.h>
#include <stdlib.h>

void *volatile g_data;

int main(void)
{
    uint64_t *blk = calloc(1, 8 + 100);
    blk[0] = 100;
    g_data = blk + 1;
    blk = NULL;
    return 0;
}
