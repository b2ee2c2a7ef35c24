/* Leak case: a pointer held only in a local of main: once main has returned its frame is
 * dead, so the block is definitely lost.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 56 bytes in 1 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <stdlib.h>

int main(void)
{
    void *volatile local = malloc(56);
    (void)local;
    return 0;
}
