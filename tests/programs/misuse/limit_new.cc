/* Verdict: --limit=1M: new char[2 MiB] throws std::bad_alloc, caught (exit 0 when so, else
 * 1); 1 limit report. 0 errors.
 * heaptrail: limit=1 errors=0 exit=0
 * options: --limit=1M
 */
#include <new>

int main()
{
    try {
        char *volatile p = new char[2u << 20];
        delete[] p;
    } catch (const std::bad_alloc &) {
        return 0;
    }
    return 1;
}
