/* Verdict: a write to a freed block found when later frees push it out of the quarantine
 * (--quarantine=64K): 1 error at offset 0, while the program is still running.
 * memcheck: invalid-write=1 errors=1 contexts=1
 * heaptrail: write-after-free=1 offset=0 length=1 errors=1
 * options: --quarantine=64K
 */
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(100);
    free(p);
    p[0] = 'Z';
    for (int i = 0; i < 2000; i++)
        free(malloc(100));
    return 0;
}
