/* Example: the stack from docs/allocators.md, testing -> tracking -> validating -> your
 * code, catching an overrun, a double free and a leak in one small program.
 *   cc alloc_stack.c -lheaptrail -lunwind -lm && ./a.out */
#include <stdio.h>
#include <string.h>

#include "heaptrail.h"

char *copy_name(htr_allocator_t a, const char *name);
__attribute__((visibility("default"))) char *copy_name(htr_allocator_t a, const char *name)
{
    char *s = htr_alloc(a, strlen(name)); /* bug: no room for the terminating NUL */
    memcpy(s, name, strlen(name) + 1);
    return s;
}

int main(void)
{
    htr_layer_opts_t report = { .sink = HTR_SINK_FD(1) };
    htr_validating_t *validating = htr_validating_new(htr_libc_allocator(), &report);
    htr_tracking_t *tracking = htr_tracking_new(htr_validating_allocator(validating), &report);
    htr_testing_t *testing = htr_testing_new(htr_tracking_allocator(tracking), &report);
    htr_allocator_t a = htr_testing_allocator(testing);

    char *name = copy_name(a, "heaptrail");
    char *kept = htr_alloc(a, 64);                  /* never freed before the end: a leak */
    htr_free(a, name, strlen("heaptrail"));   /* validating: overrun by one byte */
    htr_free(a, name, strlen("heaptrail"));   /* testing: double free */

    size_t problems = htr_testing_finish(testing, NULL); /* testing: the leak */
    htr_free(a, kept, 64);                              /* reported; now clean up */
    size_t damaged = htr_validating_errors(validating);
    printf("testing: %zu problems; validating: %zu damaged blocks\n", problems, damaged);
    htr_testing_destroy(testing);
    htr_tracking_destroy(tracking);
    htr_validating_destroy(validating);
    /* testing saw the leak and the double free; validating saw the overrun */
    return problems == 2 && damaged == 1 ? 0 : 1;
}
