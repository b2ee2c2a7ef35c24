/* Verdict: a correct C++ program: 0 errors (new/delete, new[]/delete[], over-aligned new,
 * containers that grow).
 * memcheck: errors=0
 * heaptrail: errors=0
 */
#include <cstdint>
#include <map>
#include <string>
#include <vector>

struct alignas(64) Cache { char line[64]; };

int main()
{
    std::map<std::string, std::vector<int>> m;
    for (int i = 0; i < 500; i++) {
        m[std::to_string(i % 50)].push_back(i);
        int *one = new int(i);
        int *many = new int[i % 7 + 1];
        Cache *c = new Cache();
        if (reinterpret_cast<std::uintptr_t>(c) & 63)
            return 1;
        delete c;
        delete[] many;
        delete one;
    }
    return m.size() == 50 ? 0 : 1;
}
