/* Leak case: a pointer kept only XOR-ed with a key (as some lock-free lists do): no pointer
 * to the block exists, so it is definitely lost.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 48 bytes in 1 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <stdint.h>
#include <stdlib.h>

volatile uintptr_t g_hidden;

int main(void)
{
    g_hidden = (uintptr_t)malloc(48) ^ (uintptr_t)0x5a5a5a5a5a5a5a5aull;
    return 0;
}
