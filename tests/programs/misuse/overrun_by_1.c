/* Verdict: heap overrun by 1 byte: 1 error, offset 10 (0 bytes after a block of size 10).
 * memcheck reports it at the write, heaptrail when the redzone is checked at free().
 * memcheck: invalid-write=1 errors=1 contexts=1
 * heaptrail: overrun=1 offset=10 length=1 errors=1
 */
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(10);
    p[10] = 'A';
    free(p);
    return 0;
}
