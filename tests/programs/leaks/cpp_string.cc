/* Leak case: a heap std::string kept through a global pointer (object and its buffer still
 * reachable) and one dropped (definitely lost object, indirectly lost buffer).
 * memcheck LEAK SUMMARY:
 *    definitely lost: 32 bytes in 1 blocks
 *    indirectly lost: 201 bytes in 1 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 133 bytes in 2 blocks
 */
#include <string>

std::string *volatile g_kept;
std::string *volatile g_ptr;

int main()
{
    g_kept = new std::string(100, 'x');
    g_ptr = new std::string(200, 'y');
    g_ptr = nullptr;
    return 0;
}
