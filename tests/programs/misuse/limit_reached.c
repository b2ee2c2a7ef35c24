/* Verdict: --limit=10M: 1 MiB blocks are handed out until the next would pass the limit; it
 * gets NULL with errno ENOMEM. 10 fit when nothing else is live, 9 when the runtime holds a
 * little (libstdc++'s 71 KiB exception pool, if loaded): exit 0 when 9 or 10 fit and the
 * refusal was ENOMEM, else 1. 1 limit report naming that allocation and the top holder (this
 * loop). 0 errors.
 * heaptrail: limit=1 errors=0 exit=0
 * options: --limit=10M
 */
#include <errno.h>
#include <stdlib.h>

int main(void)
{
    void *blocks[64];
    int n = 0;
    errno = 0;
    while (n < 64 && (blocks[n] = malloc(1u << 20)) != NULL)
        n++;
    int err = errno;
    for (int i = 0; i < n; i++)
        free(blocks[i]);
    return (n == 9 || n == 10) && err == ENOMEM ? 0 : 1;
}
