/* Leak case: memcheck's stdstring heuristic: a block laid out as the old libstdc++ string
 * (length, capacity, refcount, chars, NUL) held by a pointer to its chars is still
 * reachable ("of which reachable via heuristic: stdstring").
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 35 bytes in 1 blocks
 */
#include <stdlib.h>
#include <string.h>

char *volatile g_chars;

int main(void)
{
    size_t *rep = calloc(1, 3 * sizeof(size_t) + 10 + 1);
    rep[0] = 5;                       /* length */
    rep[1] = 10;                      /* capacity */
    g_chars = (char *)(rep + 3);
    memcpy(g_chars, "hello", 6);
    rep = NULL;
    return 0;
}
