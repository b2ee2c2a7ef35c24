/* Leak case: memcheck's newarray heuristic: new[] of a type with a destructor stores the
 * count before the elements and returns a pointer past it: still reachable.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 48 bytes in 1 blocks
 */
struct with_dtor {
    long v;
    ~with_dtor() { v = 0; }
};

with_dtor *volatile g_array;

int main()
{
    g_array = new with_dtor[5];
    return 0;
}
