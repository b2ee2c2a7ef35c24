/* Verdict: new[] released with delete: 1 error "Mismatched free() / delete / delete []".
 * memcheck: mismatched-free=1 errors=1 contexts=1
 * heaptrail: mismatched-free=1 errors=1
 */
int main()
{
    char *volatile p = new char[10];
    delete p;
    return 0;
}
