/* Verdict: a block grown by realloc to 20 bytes, then written at offset 20: 1 error.
 * memcheck: invalid-write=1 errors=1 contexts=1
 * heaptrail: overrun=1 offset=20 length=1 errors=1
 */
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(8);
    p = realloc(p, 20);
    if (!p)
        return 1;
    p[20] = 'r';
    free(p);
    return 0;
}
