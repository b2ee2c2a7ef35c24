/* Leak case: a lost tree. The root is definitely lost, everything under it indirectly.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 32 bytes in 1 blocks
 *    indirectly lost: 64 bytes in 6 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 0 bytes in 0 blocks
 */
#include <stdlib.h>

typedef struct node { struct node *left, *right; } node;  /* 16 bytes */

void *volatile g_root;

static node *make(size_t size)
{
    node *n = calloc(1, size);
    return n;
}

int main(void)
{
    node *root = make(32);
    root->left = make(16);
    root->right = make(16);
    root->left->left = make(8);
    root->left->right = make(8);
    root->right->left = make(8);
    root->right->right = make(8);
    g_root = root;
    g_root = NULL;
    return 0;
}
