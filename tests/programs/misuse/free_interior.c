/* Verdict: free of an interior pointer: 1 error "Invalid free() / delete / delete[] /
 * realloc()" (4 bytes inside a block of size 10 alloc'd); the block itself is then freed
 * correctly, so nothing else is reported.
 * memcheck: invalid-free=1 errors=1 contexts=1
 * heaptrail: invalid-free=1 errors=1
 */
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(10);
    free(p + 4);
    free(p);
    return 0;
}
