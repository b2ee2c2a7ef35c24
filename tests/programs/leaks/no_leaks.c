/* Leak case: everything freed.
 * memcheck: All heap blocks were freed -- no leaks are possible
 */
#include <stdlib.h>

int main(void)
{
    void *p[10];
    for (int i = 0; i < 10; i++) p[i] = malloc(10 + i);
    for (int i = 0; i < 10; i++) free(p[i]);
    return 0;
}
