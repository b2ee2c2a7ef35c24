/* Verdict: delete of an already deleted object: 1 error "Invalid free() / delete / delete[] /
 * realloc()" (0 bytes inside a block of size 8 free'd).
 * memcheck: invalid-free=1 errors=1 contexts=1
 * heaptrail: invalid-free=1 errors=1
 */
int main()
{
    long *volatile p = new long(5);
    delete p;
    delete p;
    return 0;
}
