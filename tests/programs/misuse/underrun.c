/* Verdict: heap underrun by 1 byte: 1 error, offset -1 (1 bytes before a block of size 16).
 * memcheck: invalid-write=1 errors=1 contexts=1
 * heaptrail: underrun=1 offset=-1 length=1 errors=1
 */
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(16);
    p[-1] = 0;
    free(p);
    return 0;
}
