/* End-to-end fork program for tests/cli: the parent leaks 100 bytes and forks; the child
 * inherits them, leaks 200 more and exits 0; the parent waits for it and exits 0.
 * Expected: two summaries. Parent: in use at exit 100 bytes in 1 blocks, 2 allocs.
 * Child (as memcheck counts a forked child): in use at exit 300 bytes in 2 blocks. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile sink[4];

int main(void)
{
    sink[0] = malloc(100);
    sink[2] = malloc(50);     /* through a volatile: -O1 would drop a malloc/free pair */
    free(sink[2]);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        sink[1] = malloc(200);
        _exit(0);      /* no atexit work: the agent's own exit path must still end the trace */
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
