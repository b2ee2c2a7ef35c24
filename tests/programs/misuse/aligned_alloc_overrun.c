/* Verdict: overrun of an aligned_alloc(64, 64) block by 1 byte: 1 error at offset 64; the
 * block is 64-byte aligned (checked by the program: exit 1 if not).
 * memcheck: invalid-write=1 errors=1 contexts=1
 * heaptrail: overrun=1 offset=64 length=1 errors=1
 */
#include <stdint.h>
#include <stdlib.h>

int main(void)
{
    char *volatile p = aligned_alloc(64, 64);
    if ((uintptr_t)p & 63)
        return 1;
    p[64] = 1;
    free(p);
    return 0;
}
