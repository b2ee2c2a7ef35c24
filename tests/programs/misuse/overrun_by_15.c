/* Verdict: heap overrun by 15 bytes, byte by byte in one loop: memcheck counts 15 errors in
 * 1 context (one per write); heaptrail finds one damaged span at free(): 1 error, offset 10,
 * length 15.
 * memcheck: invalid-write=1 errors=15 contexts=1
 * heaptrail: overrun=1 offset=10 length=15 errors=1
 */
#include <stdlib.h>

int main(void)
{
    volatile char *p = malloc(10);
    for (int i = 10; i < 25; i++)
        p[i] = 'x';
    free((void *)p);
    return 0;
}
