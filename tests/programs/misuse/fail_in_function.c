/* Verdict: fault injection hitting a chosen function (--fail-in=parse_input): every malloc
 * made under parse_input() fails, none elsewhere. The program checks it (exit 0 when so, 1
 * otherwise): 3 injected failures, 0 errors. Needs heaptrail's options: not for memcheck.
 * heaptrail: fault=3 errors=0 exit=0
 * options: --fail-in=parse_input
 */
#include <stdlib.h>

__attribute__((noinline)) int parse_input(int i);
__attribute__((noinline)) int parse_input(int i)
{
    char *volatile p = malloc(32 + (size_t)i);
    int ok = p != NULL;
    free(p);
    return ok;
}

__attribute__((noinline)) static int elsewhere(int i)
{
    char *volatile p = malloc(48 + (size_t)i);
    int ok = p != NULL;
    free(p);
    return ok;
}

int main(void)
{
    int parsed = 0, other = 0;
    for (int i = 0; i < 3; i++) {
        parsed += parse_input(i);
        other += elsewhere(i);
    }
    return parsed == 0 && other == 3 ? 0 : 1;
}
