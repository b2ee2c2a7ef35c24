/* Unit tests of the agent's live-block table (src/agent/table.c): insert/find/remove,
 * replacement, growth past many rehashes, colliding probe chains with backward-shift
 * deletion, snapshot/foreach, and 4 threads working on disjoint blocks at once. */
#include <errno.h>
#include <pthread.h>

#include "agent/table.h"
#include "check.h"

#define N_BLOCKS 200000

static void *table_worker(void *arg)
{
    uintptr_t base = (uintptr_t)arg;
    for (int round = 0; round < 3; round++) {
        for (uintptr_t i = 0; i < 50000; i++) {
            htri_block b = { base + i * 16, i, (uint32_t)i, 0, 0, 0, 0 };
            if (htri_table_insert(&b) != 0)
                return (void *)1;
        }
        for (uintptr_t i = 0; i < 50000; i++) {
            htri_block out;
            if (htri_table_remove(base + i * 16, &out) != 0 || out.size != i)
                return (void *)1;
        }
    }
    return NULL;
}

static int renumber_cb(void *user, htri_block *b)
{
    b->ref = ((const htri_block *)user)->ref;
    return 0;
}

static int count_cb(void *user, const htri_block *b)
{
    (void)b;
    (*(size_t *)user)++;
    return 0;
}

int main(void)
{
    CHECK(htri_table_init() == 0);
    CHECK(htri_table_init() == 0);  /* twice is fine */
    CHECK_EQ_U(htri_table_count(), 0);

    htri_block b = { 0x1000, 24, 7, 4, 0, 0, HTRI_BLOCK_REF(4194303, HTRI_BLOCK_NO_MASK) }, out;
    CHECK(htri_table_insert(&b) == 0);
    CHECK(htri_table_find(0x1000, &out) == 0);
    CHECK_EQ_U(out.size, 24);
    CHECK_EQ_U(out.node, 7);
    CHECK_EQ_U(out.family, 4);
    /* the block's trace reference survives the table, the largest tid and number included */
    CHECK_EQ_U(HTRI_BLOCK_REF_TID(out.ref), 4194303);
    CHECK_EQ_U(HTRI_BLOCK_REF_NO(out.ref), HTRI_BLOCK_NO_MASK);
    b.size = 40;
    CHECK(htri_table_insert(&b) == 1);            /* same address: replaced */
    CHECK_EQ_U(htri_table_count(), 1);
    CHECK_EQ_U(htri_table_bytes(), 40);
    b.ref = HTRI_BLOCK_REF(12, 34);
    CHECK(htri_table_foreach_mut(renumber_cb, &b) == 1);   /* a forked child renumbers */
    CHECK(htri_table_remove(0x1000, &out) == 0);
    CHECK_EQ_U(out.size, 40);
    CHECK_EQ_U(out.ref, HTRI_BLOCK_REF(12, 34));
    CHECK(htri_table_remove(0x1000, &out) == -ENOENT);
    CHECK(htri_table_find(0x1000, &out) == -ENOENT);
    CHECK(htri_table_remove(0, NULL) == -ENOENT);
    CHECK_EQ_U(htri_table_bytes(), 0);

    /* Growth: many blocks, every one still found, removal of every other one keeps the
     * rest reachable (backward shift must not break probe chains). */
    uint64_t bytes = 0;
    for (uintptr_t i = 1; i <= N_BLOCKS; i++) {
        htri_block nb = { i * 16, i % 1000, (uint32_t)i, 0, 0, 0, 0 };
        CHECK(htri_table_insert(&nb) == 0);
        bytes += i % 1000;
    }
    CHECK_EQ_U(htri_table_count(), N_BLOCKS);
    CHECK_EQ_U(htri_table_bytes(), bytes);
    int missing = 0;
    for (uintptr_t i = 1; i <= N_BLOCKS; i++)
        if (htri_table_find(i * 16, &out) != 0 || out.node != (uint32_t)i)
            missing++;
    CHECK_EQ_U(missing, 0);
    for (uintptr_t i = 1; i <= N_BLOCKS; i += 2)
        CHECK(htri_table_remove(i * 16, NULL) == 0);
    missing = 0;
    for (uintptr_t i = 2; i <= N_BLOCKS; i += 2)
        if (htri_table_find(i * 16, &out) != 0)
            missing++;
    CHECK_EQ_U(missing, 0);
    CHECK_EQ_U(htri_table_count(), N_BLOCKS / 2);

    /* Snapshot and foreach see exactly the live blocks. */
    static htri_block snap[N_BLOCKS];
    htri_table_lock_all();
    size_t n = htri_table_snapshot(snap, N_BLOCKS);
    size_t visited = 0;
    htri_table_foreach(count_cb, &visited);
    htri_table_unlock_all();
    CHECK_EQ_U(n, N_BLOCKS / 2);
    CHECK_EQ_U(visited, N_BLOCKS / 2);
    CHECK_EQ_U(htri_table_snapshot(snap, 10), N_BLOCKS / 2);  /* total even when cut */
    for (uintptr_t i = 2; i <= N_BLOCKS; i += 2)
        htri_table_remove(i * 16, NULL);
    CHECK_EQ_U(htri_table_count(), 0);

    /* Collisions: addresses a power-of-two stride apart stress one shard's chains. */
    for (uintptr_t i = 1; i <= 5000; i++) {
        htri_block cb = { i << 20, 1, 0, 0, 0, 0, 0 };
        CHECK(htri_table_insert(&cb) == 0);
    }
    for (uintptr_t i = 1; i <= 5000; i += 3)
        CHECK(htri_table_remove(i << 20, NULL) == 0);
    missing = 0;
    for (uintptr_t i = 1; i <= 5000; i++) {
        int want = (i - 1) % 3 != 0;
        if ((htri_table_find(i << 20, NULL) == 0) != want)
            missing++;
    }
    CHECK_EQ_U(missing, 0);
    for (uintptr_t i = 1; i <= 5000; i++)
        htri_table_remove(i << 20, NULL);

    /* Four threads at once on disjoint address ranges. */
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, table_worker, (void *)((uintptr_t)(i + 1) << 32));
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += r != NULL;
    }
    CHECK_EQ_U(bad, 0);
    CHECK_EQ_U(htri_table_count(), 0);
    CHECK_EQ_U(htri_table_bytes(), 0);
    return CHECK_DONE();
}
