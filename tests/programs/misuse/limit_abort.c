/* Verdict: --limit=1M --limit-action=abort: the allocation that would pass the limit stops
 * the program with SIGABRT (exit status 134) instead of returning NULL.
 * heaptrail: exit=134
 * options: --limit=1M --limit-action=abort
 */
#include <stdlib.h>

int main(void)
{
    void *volatile p = malloc(2u << 20);
    free(p);
    return 0;
}
