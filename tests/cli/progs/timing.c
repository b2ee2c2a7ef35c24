/* timing: a heap peak at a moment the program measures itself, for cli.timing. The agent's
 * event clock (the calibrated TSC of src/agent/agent.c) must put the peak at that moment:
 * main sleeps 600 ms, then a second thread allocates the peak block and prints how long after
 * main started it did so (ms). The summary's "peak heap ... at T ms" counts from the agent's
 * start, a little before main. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct timespec t_main;

static double ms_since_main(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t_main.tv_sec) * 1e3 + (double)(t.tv_nsec - t_main.tv_nsec) / 1e6;
}

static void *peak_thread(void *arg)
{
    (void)arg;
    char *p = malloc(1 << 20);
    double at = ms_since_main();
    if (!p)
        return NULL;
    memset(p, 1, 1 << 20);
    printf("peak_at_ms %.3f\n", at);
    free(p);
    return NULL;
}

int main(void)
{
    clock_gettime(CLOCK_MONOTONIC, &t_main);
    for (int i = 0; i < 1000; i++)          /* small traffic before the first calibration */
        free(malloc(64));
    struct timespec nap = { 0, 600 * 1000 * 1000 };
    nanosleep(&nap, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, peak_thread, NULL) != 0)
        return 1;
    pthread_join(th, NULL);
    for (int i = 0; i < 1000; i++)
        free(malloc(64));
    return 0;
}
