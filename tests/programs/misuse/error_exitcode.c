/* Verdict: a double free under --error-exitcode=42: 1 error "Invalid free() / delete /
 * delete[] / realloc()", and the process exits with 42 instead of 0.
 * heaptrail: invalid-free=1 errors=1 exit=42
 * options: --error-exitcode=42
 */
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(3);
    free(p);
    free(p);
    return 0;
}
