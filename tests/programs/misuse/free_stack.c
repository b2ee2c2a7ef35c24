/* Verdict: free of a stack address: 1 error "Invalid free() / delete / delete[] / realloc()"
 * (the address is on the thread's stack). The program goes on.
 * memcheck: invalid-free=1 errors=1 contexts=1
 * heaptrail: invalid-free=1 errors=1
 */
#include <stdlib.h>

int main(void)
{
    int local = 0;
    int *volatile p = &local;
    free(p);
    return local;
}
