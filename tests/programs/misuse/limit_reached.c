/* Verdict: --limit=1M: ten 100 KiB blocks fit, the eleventh would pass the limit and gets
 * NULL with errno ENOMEM (exit 0 when so, else 1); 1 limit report naming that allocation and
 * the top holder (this loop). 0 errors.
 * heaptrail: limit=1 errors=0 exit=0
 * options: --limit=1M
 */
#include <errno.h>
#include <stdlib.h>

int main(void)
{
    void *blocks[64];
    int n = 0;
    errno = 0;
    while (n < 64 && (blocks[n] = malloc(100 * 1024)) != NULL)
        n++;
    int err = errno;
    for (int i = 0; i < n; i++)
        free(blocks[i]);
    return n == 10 && err == ENOMEM ? 0 : 1;
}
