/* Verdict: a free of an interior pointer under --abort-on-error: the first error stops the
 * program with SIGABRT (exit status 134), before "survived" is written.
 * heaptrail: exit=134
 * options: --abort-on-error
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(32);
    free(p + 8);
    puts("survived");
    return 0;
}
