/* Verdict: malloc'd block released with delete: 1 error "Mismatched free() / delete /
 * delete []" (0 bytes inside a block of size 4 alloc'd by malloc).
 * memcheck: mismatched-free=1 errors=1 contexts=1
 * heaptrail: mismatched-free=1 errors=1
 */
#include <cstdlib>

int main()
{
    int *volatile p = static_cast<int *>(std::malloc(sizeof(int)));
    delete p;
    return 0;
}
