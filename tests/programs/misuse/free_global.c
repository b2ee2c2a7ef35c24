/* Verdict: free of a global's address: 1 error "Invalid free() / delete / delete[] /
 * realloc()" (the address is in the program's data).
 * memcheck: invalid-free=1 errors=1 contexts=1
 * heaptrail: invalid-free=1 errors=1
 */
#include <stdlib.h>

int g_table[16];

int main(void)
{
    int *volatile p = &g_table[2];
    free(p);
    return 0;
}
