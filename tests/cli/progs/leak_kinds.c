/* CLI test program: memcheck's four leak kinds from distinct stacks, for the closing lines of
 * `heaptrail run` and `heaptrail leaks` compared with memcheck (cli_test.py, cases leak_*).
 * Verdict (memcheck, default options):
 *    definitely lost: 56 bytes in 2 blocks     (32 from make_list, 24 from make_lost)
 *    indirectly lost: 48 bytes in 1 blocks     (the list's second node)
 *      possibly lost: 64 bytes in 1 blocks     (only an interior pointer left)
 *    still reachable: 100 bytes in 1 blocks
 * Arguments: "clean": everything freed ("All heap blocks were freed -- no leaks are
 * possible"); "double-free": that, and one block freed twice (1 misuse error, 1 context);
 * "double-free-abort": that, then abort();
 * "signal": the leaks, then SIGUSR1 raised and a pause for a leak check on the signal;
 * "wait": the leaks, then 1.5 s for a signal from outside. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct node { struct node *next; char pad[24]; };

struct node *volatile g_list;
void *volatile g_lost;
char *volatile g_interior;
void *volatile g_reachable;

__attribute__((noinline)) static void make_list(void)
{
    g_list = malloc(sizeof(struct node));
    memset(g_list, 0, sizeof(struct node));
    g_list->next = malloc(48);
    memset(g_list->next, 0, 48);
    g_list = NULL;          /* the head is lost, the second node with it */
}

__attribute__((noinline)) static void make_lost(void)
{
    g_lost = malloc(24);
    memset(g_lost, 1, 24);
    g_lost = NULL;
}

__attribute__((noinline)) static void make_possible(void)
{
    char *p = malloc(64);
    memset(p, 2, 64);
    g_interior = p + 8;     /* only a pointer into the middle remains */
}

__attribute__((noinline)) static void make_reachable(void)
{
    g_reachable = malloc(100);
    memset(g_reachable, 3, 100);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "clean") == 0 || strncmp(mode, "double-free", 11) == 0) {
        char *volatile p[4];
        for (int i = 0; i < 4; i++) p[i] = malloc(8 + (size_t)i);
        for (int i = 0; i < 4; i++) free(p[i]);
        if (strncmp(mode, "double-free", 11) == 0)
            free(p[2]);
        if (strcmp(mode, "double-free-abort") == 0)
            abort();
        return 0;
    }
    make_list();
    make_lost();
    make_possible();
    make_reachable();
    if (strcmp(mode, "signal") == 0) {
        raise(SIGUSR1);
        usleep(300 * 1000);     /* the agent's writer thread runs the check */
    }
    if (strcmp(mode, "wait") == 0)
        for (int i = 0; i < 30; i++)
            usleep(50 * 1000);  /* (a signal cuts one sleep short, not the wait) */
    return 0;
}
