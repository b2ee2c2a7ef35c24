/* End-to-end C program for tests/cli: exact counts that memcheck agrees with.
 * Expected: in use at exit: 1,000 bytes in 1 blocks; total heap usage: 1,112 allocs,
 * 1,111 frees, 76,600 bytes allocated; peak heap 2,100 bytes in 2 blocks.
 * With the argument "crash" it dies of SIGSEGV after the same work; with "wait" it waits up
 * to 30 s for a signal (the CLI's signal forwarding test). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *volatile sink;     /* keeps the optimizer from removing allocations */

static __attribute__((noinline)) void make_leak(void)
{
    sink = malloc(1000);
}

static __attribute__((noinline)) void churn(void)
{
    for (int i = 0; i < 1000; i++) {
        char *t = malloc(64);
        memset(t, i, 64);
        sink = t;
        free(t);
    }
    for (int i = 0; i < 100; i++) {
        sink = calloc(10, 5);
        free(sink);
    }
}

static __attribute__((noinline)) void grow(void)
{
    char *p = malloc(100);
    for (int i = 2; i <= 11; i++)
        p = realloc(p, (size_t)i * 100);
    sink = p;
    free(p);
}

int main(int argc, char **argv)
{
    make_leak();
    void *leak = sink;
    churn();
    grow();
    sink = leak;
    if (argc > 1 && strcmp(argv[1], "crash") == 0)
        raise(SIGSEGV);
    if (argc > 1 && strcmp(argv[1], "wait") == 0)
        for (int i = 0; i < 300; i++)
            usleep(100000);
    return 3;
}
