/* Leak case: a pointer kept only in an anonymous mmap'd region (a root, as memcheck scans
 * every readable and writable mapping); a second kept in a region unmapped later is lost.
 * memcheck LEAK SUMMARY:
 *    definitely lost: 40 bytes in 1 blocks
 *    indirectly lost: 0 bytes in 0 blocks
 *      possibly lost: 0 bytes in 0 blocks
 *    still reachable: 24 bytes in 1 blocks
 */
#include <stdlib.h>
#include <sys/mman.h>

int main(void)
{
    void **region = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void **gone = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    region[1000] = malloc(24);
    gone[3] = malloc(40);
    munmap(gone, 4096);
    return 0;
}
