/* Verdict: --fill-alloc=0xA5 fills fresh malloc blocks (calloc's stay zero): exit 0 when
 * every byte read back is as promised, else 1. 0 errors. (Reading fresh bytes is exactly what
 * memcheck objects to, so no memcheck verdict.)
 * heaptrail: errors=0 exit=0
 * options: --fill-alloc=0xA5
 */
#include <stdlib.h>

int main(void)
{
    int bad = 0;
    for (size_t n = 1; n < 300; n += 37) {
        unsigned char *volatile p = malloc(n);
        unsigned char *volatile z = calloc(n, 1);
        for (size_t i = 0; i < n; i++)
            bad |= p[i] != 0xA5 || z[i] != 0;
        free(p);
        free(z);
    }
    return bad;
}
