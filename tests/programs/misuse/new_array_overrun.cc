/* Verdict: new int[4] written at index 4 (offset 16): 1 error, found at delete[].
 * memcheck: invalid-write=1 errors=1 contexts=1
 * heaptrail: overrun=1 offset=16 length=4 errors=1
 */
int main()
{
    int *volatile a = new int[4];
    a[4] = -1;
    delete[] a;
    return 0;
}
