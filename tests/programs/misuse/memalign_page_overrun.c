/* Verdict: overrun of a posix_memalign(4096, 100) block: 1 error at offset 105 (5 bytes after
 * a block of size 100); the block is page-aligned (exit 1 if not).
 * memcheck: invalid-write=1 errors=1 contexts=1
 * heaptrail: overrun=1 offset=105 length=1 errors=1
 */
#include <stdint.h>
#include <stdlib.h>

int main(void)
{
    void *raw = NULL;
    if (posix_memalign(&raw, 4096, 100) != 0 || ((uintptr_t)raw & 4095))
        return 1;
    char *volatile p = raw;
    p[105] = 7;
    free(raw);
    return 0;
}
