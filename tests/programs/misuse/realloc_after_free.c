/* Verdict: realloc of a freed block: 1 error "Invalid free() / delete / delete[] / realloc()"
 * (0 bytes inside a block of size 10 free'd); realloc returns NULL and the program goes on.
 * memcheck: invalid-free=1 errors=1 contexts=1
 * heaptrail: invalid-free=1 errors=1
 */
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(10);
    free(p);
    char *volatile q = realloc(p, 20);
    (void)q;
    return 0;
}
