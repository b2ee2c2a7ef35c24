/* Leak case: many blocks from one allocation site: one loss record of 1,000 blocks.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 32,000 bytes in 1,000 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <stdlib.h>

void *volatile g_ptr;

int main(void)
{
    for (int i = 0; i < 1000; i++) g_ptr = malloc(32);
    g_ptr = NULL;
    return 0;
}
