/* Verdict: double free: 1 error "Invalid free() / delete / delete[] / realloc()", the address
 * 0 bytes inside a block of size 10 free'd, with the first free and the allocation stacks.
 * memcheck: invalid-free=1 errors=1 contexts=1
 * heaptrail: invalid-free=1 errors=1
 */
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(10);
    free(p);
    free(p);
    return 0;
}
