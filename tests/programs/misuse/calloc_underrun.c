/* Verdict: calloc(4, 8) then a write 3 bytes before it: 1 error at offset -3.
 * memcheck: invalid-write=1 errors=1 contexts=1
 * heaptrail: underrun=1 offset=-3 length=1 errors=1
 */
#include <stdlib.h>

int main(void)
{
    char *volatile p = calloc(4, 8);
    p[-3] = 'u';
    free(p);
    return 0;
}
