/* Example: run SQLite on heaptrail's tracking layer, tagged "sqlite", and print what SQLite
 * holds: totals, bytes per tag, the biggest blocks with their allocation stacks.
 *   cc alloc_sqlite.c -lheaptrail -lsqlite3 -lunwind -lm && ./a.out */
#include <stdio.h>
#include <sqlite3.h>

#include "heaptrail.h"

int main(void)
{
    /* your code -> tagging("sqlite") -> tracking -> libc */
    htr_tracking_t *tracking = htr_tracking_new(htr_libc_allocator(), NULL);
    htr_tagging_t *tagging = htr_tagging_new(htr_tracking_allocator(tracking), "sqlite");
    static htr_allocator_t sqlite_alloc;
    sqlite_alloc = htr_tagging_allocator(tagging);

    sqlite3_mem_methods methods = HTR_SQLITE_MEM_METHODS(&sqlite_alloc);
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) != SQLITE_OK ||
        sqlite3_initialize() != SQLITE_OK) {
        fprintf(stderr, "alloc_sqlite: cannot install the allocator\n");
        return 1;
    }
    sqlite3 *db;
    sqlite3_open(":memory:", &db);
    sqlite3_exec(db, "CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB);"
                     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)"
                     " INSERT INTO kv SELECT 'key-' || i, randomblob(100) FROM n;",
                 NULL, NULL, NULL);

    printf("SQLite with 5000 rows in memory (sqlite3_memory_used: %lld bytes):\n",
           (long long)sqlite3_memory_used());
    fflush(stdout); /* the report writes to fd 1 directly */
    htr_tracking_report(tracking, HTR_SINK_FD(1), 3);

    sqlite3_close(db);
    sqlite3_shutdown();
    printf("after sqlite3_shutdown: %zu bytes live\n", htr_tracking_live_bytes(tracking));
    htr_tagging_destroy(tagging);
    htr_tracking_destroy(tracking);
    return 0;
}
