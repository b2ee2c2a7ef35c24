/* Verdict: a correct program: 0 errors. Writes every byte up to malloc_usable_size (which
 * must say the requested size or more), uses aligned blocks, realloc, calloc and frees all.
 * memcheck: errors=0
 * heaptrail: errors=0
 */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    for (int round = 0; round < 1000; round++) {
        size_t n = (size_t)(round % 97) + 1;
        char *p = malloc(n);
        size_t usable = malloc_usable_size(p);
        if (usable < n)
            return 1;
        memset(p, 'c', usable);
        p = realloc(p, n * 3);
        memset(p, 'd', n * 3);
        free(p);
        int *z = calloc(n, sizeof *z);
        for (size_t i = 0; i < n; i++)
            if (z[i])
                return 2;
        free(z);
        void *a = aligned_alloc(256, 512);
        if ((uintptr_t)a & 255)
            return 3;
        memset(a, 0, 512);
        free(a);
    }
    return 0;
}
