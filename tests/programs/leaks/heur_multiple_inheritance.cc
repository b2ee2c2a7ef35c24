/* Leak case: memcheck's multipleinheritance heuristic: an object held through a pointer to
 * its second base (an interior pointer at a vtable pointer): still reachable.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 0 bytes in 0 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 40 bytes in 1 blocks
 */
struct A { virtual ~A() {} long a = 1; };
struct B { virtual ~B() {} long b = 2; };
struct C : A, B { long c = 3; };

B *volatile g_base;

int main()
{
    g_base = new C;
    return 0;
}
