/* Adapter test against the real SQLite: queries run on our allocator stack (tagging ->
 * tracking, with a failing layer for out-of-memory), SQLite's own byte count must match
 * ours, and everything is given back after sqlite3_shutdown. */
#include <stdint.h>
#include <string.h>

#include "heaptrail.h"
#include "check.h"

#ifdef HTR_NO_SQLITE
int main(void)
{
    fprintf(stderr, "skipped: built without libsqlite3\n");
    return 77;
}
#else
#include <sqlite3.h>

static int exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (err)
        sqlite3_free(err);
    return rc;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static int workload(sqlite3 *db)
{
    int rc = exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INT);"
                      "CREATE INDEX t_name ON t(name);");
    if (rc != SQLITE_OK)
        return rc;
    rc = exec(db, "BEGIN");
    for (int i = 0; i < 2000 && rc == SQLITE_OK; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t(name, n) VALUES('name-%d', %d)", i * 7919 % 2000, i);
        rc = exec(db, sql);
    }
    if (rc == SQLITE_OK)
        rc = exec(db, "COMMIT");
    else
        exec(db, "ROLLBACK");
    return rc;
}

int main(void)
{
    htr_tracking_t *tr = htr_tracking_new(htr_libc_allocator(), NULL);
    htr_failing_t *f = htr_failing_new(htr_tracking_allocator(tr), NULL);
    htr_tagging_t *tg = htr_tagging_new(htr_failing_allocator(f), "sqlite");
    static htr_allocator_t a;
    a = htr_tagging_allocator(tg);
    sqlite3_mem_methods m = HTR_SQLITE_MEM_METHODS(&a);
    CHECK(sqlite3_config(SQLITE_CONFIG_MALLOC, &m) == SQLITE_OK);
    CHECK(sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 1) == SQLITE_OK);
    CHECK(sqlite3_initialize() == SQLITE_OK);

    sqlite3 *db;
    CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
    CHECK(workload(db) == SQLITE_OK);
    CHECK_EQ_U(query_int(db, "SELECT count(*) FROM t"), 2000);
    CHECK_EQ_U(query_int(db, "SELECT sum(n) FROM t"), 1999 * 2000 / 2);
    htr_alloc_stats_t s;
    htr_tracking_stats(tr, &s);
    /* SQLite counts what xSize says (our sizes); we count those plus a 16-byte header. */
    CHECK_EQ_U(s.bytes_live, (size_t)sqlite3_memory_used() + 16 * s.n_live);
    CHECK_EQ_U(htr_tracking_tag_bytes(tr, "sqlite"), s.bytes_live);
    fprintf(stderr, "sqlite: holds %zu bytes in %zu blocks (sqlite3_memory_used %lld)\n",
            s.bytes_live, s.n_live, (long long)sqlite3_memory_used());

    /* Out of memory in the middle of queries: SQLITE_NOMEM, and the database stays usable. */
    int n_nomem = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        htr_failing_set(f, &(htr_failing_opts_t){ HTR_FAIL_RATE, 0, 0.02, seed });
        int rc = exec(db, "CREATE TEMP TABLE IF NOT EXISTS u AS SELECT * FROM t;"
                          "SELECT name, count(*) FROM u GROUP BY name ORDER BY 2 DESC;"
                          "DROP TABLE u;");
        n_nomem += rc == SQLITE_NOMEM;
        CHECK(rc == SQLITE_OK || rc == SQLITE_NOMEM);
        htr_failing_set(f, NULL);
        exec(db, "DROP TABLE IF EXISTS temp.u");
    }
    CHECK(n_nomem >= 5);
    CHECK_EQ_U(query_int(db, "SELECT count(*) FROM t"), 2000);
    htr_tracking_stats(tr, &s);
    CHECK_EQ_U(s.bytes_live, (size_t)sqlite3_memory_used() + 16 * s.n_live);

    CHECK(sqlite3_close(db) == SQLITE_OK);
    CHECK(sqlite3_shutdown() == SQLITE_OK);
    htr_tracking_stats(tr, &s);
    fprintf(stderr, "sqlite: after shutdown %zu bytes in %zu blocks (peak %zu)\n", s.bytes_live,
            s.n_live, s.bytes_peak);
    CHECK_EQ_U(s.bytes_live, 0);
    htr_tagging_destroy(tg);
    htr_failing_destroy(f);
    htr_tracking_destroy(tr);
    return CHECK_DONE();
}
#endif
