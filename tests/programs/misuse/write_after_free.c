/* Verdict: write to a freed block: 1 error at offset 4 (4 bytes inside a block of size 10
 * free'd). memcheck catches the write; heaptrail finds the quarantine fill changed when the
 * block leaves the quarantine (here: at exit), with allocation and free stacks.
 * memcheck: invalid-write=1 errors=1 contexts=1
 * heaptrail: write-after-free=1 offset=4 length=1 errors=1
 */
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(10);
    free(p);
    p[4] = 'W';
    return 0;
}
