/* Leak case: a linked list of 100 nodes from a global, never freed: still reachable.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 2,400 bytes in 100 blocks
 */
#include <stdlib.h>

struct node { struct node *next; long payload[2]; };
struct node *g_head;

int main(void)
{
    for (int i = 0; i < 100; i++) {
        struct node *n = calloc(1, sizeof *n);
        n->next = g_head;
        g_head = n;
    }
    return 0;
}
