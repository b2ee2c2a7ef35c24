/* Verdict: C++17 over-aligned new (alignas(128)) written 1 byte past its 128 bytes: 1 error
 * at offset 128; the object is 128-byte aligned (exit 1 if not).
 * memcheck: invalid-write=1 errors=1 contexts=1
 * heaptrail: overrun=1 offset=128 length=1 errors=1
 */
#include <cstdint>

struct alignas(128) Line { char bytes[128]; };

int main()
{
    Line *volatile l = new Line();
    if (reinterpret_cast<std::uintptr_t>(l) & 127)
        return 1;
    reinterpret_cast<char *volatile>(l)[128] = 1;
    delete l;
    return 0;
}
