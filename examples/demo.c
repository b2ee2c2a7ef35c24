/* The demo program of `make demo` (scripts/demo.sh): a small workload with one real leak, many
 * temporary buffers, and a heap peak in the middle, so every section of a report has content.
 * Expected: 1,020 allocs of its own (+ stdio's buffer); in use at exit: 4,096 + 10 * 48 bytes
 * (+ stdio's buffer); peak: the 2 MiB table of build_table(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct record {
    char name[40];
    struct record *next;
};

/* A real leak: records linked into a list that is dropped without being freed. */
static struct record *make_records(int n)
{
    struct record *head = NULL;
    for (int i = 0; i < n; i++) {
        struct record *r = malloc(sizeof *r);
        if (!r)
            exit(1);
        snprintf(r->name, sizeof r->name, "record %d", i);
        r->next = head;
        head = r;
    }
    return head;
}

/* Temporaries: a scratch buffer allocated and freed at once, again and again. */
static size_t format_lines(int n)
{
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        char *line = malloc(128);
        if (!line)
            exit(1);
        total += (size_t)snprintf(line, 128, "line %d of %d", i, n);
        free(line);
    }
    return total;
}

/* The peak: a big table held briefly, then released. */
static unsigned long build_table(size_t n)
{
    unsigned long *table = calloc(n, sizeof *table), sum = 0;
    if (!table)
        exit(1);
    for (size_t i = 0; i < n; i++)
        table[i] = i * i;
    for (size_t i = 0; i < n; i++)
        sum += table[i];
    free(table);
    return sum;
}

int main(void)
{
    char *config = malloc(4096);       /* never freed: still allocated at exit */
    if (!config)
        return 1;
    strcpy(config, "demo");
    struct record *list = make_records(10);
    size_t chars = format_lines(1000);
    unsigned long sum = build_table(256 * 1024);
    char *grow = NULL;
    for (int i = 1; i <= 8; i++) {     /* realloc: one free and one alloc each time */
        grow = realloc(grow, (size_t)i * 1000);
        if (!grow)
            return 1;
    }
    free(grow);
    printf("demo: %s, %s, %zu chars, sum %lu\n", config, list->name, chars, sum);
    list = NULL;                       /* the records leak here */
    return 0;
}
