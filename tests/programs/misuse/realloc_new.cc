/* Verdict: a block from new[] resized with realloc(): 1 error "Mismatched free() / delete /
 * delete []" (realloc releases what new[] made).
 * memcheck: mismatched-free=1 errors=1 contexts=1
 * heaptrail: mismatched-free=1 errors=1
 */
#include <cstdlib>

int main()
{
    char *volatile p = new char[8];
    void *volatile q = std::realloc(p, 64);
    std::free(q);
    return 0;
}
