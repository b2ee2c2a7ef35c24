/* Leak case: C++ new and new[] (of a type without destructor), lost; one new kept.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 84 bytes in 2 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 8 bytes in 1 blocks
 */
#include <cstdint>

struct pod { int64_t v; };
pod *volatile g_kept;
void *volatile g_ptr;

int main()
{
    g_kept = new pod{ 1 };
    g_ptr = new int[20];
    g_ptr = new int(7);
    g_ptr = nullptr;
    return 0;
}
