/* Verdict: --fail-every=3 restricted to fill() by --fail-in: of 9 allocations made there, the
 * 3rd, 6th and 9th fail (exit 0 when exactly those did, else 1). 0 errors.
 * heaptrail: fault=3 errors=0 exit=0
 * options: --fail-in=fill --fail-every=3
 */
#include <stdlib.h>

__attribute__((noinline)) unsigned fill(void);
__attribute__((noinline)) unsigned fill(void)
{
    unsigned failed = 0;
    void *keep[9];
    for (int i = 0; i < 9; i++) {
        keep[i] = malloc(24);
        if (!keep[i])
            failed |= 1u << i;
    }
    for (int i = 0; i < 9; i++)
        free(keep[i]);
    return failed;
}

int main(void)
{
    return fill() == ((1u << 2) | (1u << 5) | (1u << 8)) ? 0 : 1;
}
