/* Verdict: new released with free(): 1 error "Mismatched free() / delete / delete []".
 * memcheck: mismatched-free=1 errors=1 contexts=1
 * heaptrail: mismatched-free=1 errors=1
 */
#include <cstdlib>

struct Point { int x, y; };

int main()
{
    Point *volatile p = new Point{1, 2};
    std::free(p);
    return 0;
}
