/* Leak case: lost malloc(24) and malloc(100) blocks right below glibc's top chunk, whose
 * header pointer (in main_arena) lies inside them: still definitely lost, as memcheck says.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 124 bytes in 2 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <stdlib.h>
#include <string.h>

void *volatile g_ptr;

int main(void)
{
    g_ptr = malloc(100);
    memset(g_ptr, 0, 100);
    g_ptr = malloc(24);
    memset(g_ptr, 0, 24);
    g_ptr = NULL;
    return 0;
}
