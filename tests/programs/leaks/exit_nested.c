/* Leak case: exit() from a nested call: the callers' frames are still on the stack, so a
 * pointer held in a caller's local is still reachable; one kept only in a frame that
 * returned earlier is definitely lost.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 36 bytes in 1 blocks
 */
#include <stdlib.h>

static __attribute__((noinline)) void leave(int code)
{
    exit(code);
}

static __attribute__((noinline)) void middle(void)
{
    void *volatile held = malloc(36);
    leave(0);
    (void)held;
}

int main(void)
{
    middle();
    return 1;
}
