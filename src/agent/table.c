/* The live-block table of table.h: addr -> {size, stack node, family}. The hooks insert on
 * every allocation and remove on every free; fork and the leak scan take snapshots.
 * Linear probing with backward-shift deletion (no tombstones), one spinlock per shard. */
#include <string.h>

#include "agent/table.h"
#include "base/common.h"
#include "base/hash.h"
#include "base/os.h"
#include "base/spin.h"

#define TABLE_SHARDS 64               /* power of two; top bits of the hash pick the shard */
#define TABLE_INITIAL_SLOTS 64        /* per shard: 1.5 KiB, so small heaps stay in cache */
#define TABLE_MAX_SLOTS (1u << 28)    /* per shard: refuse to grow past 6 GiB */

/*  One shard, on its own cache line so shard locks do not share lines:
 *   +------+-------+---------+-------+-----------+
 *   | lock | mask  | n_live  | bytes | slots ->  |  slots: (mask + 1) htri_block, addr 0 = empty
 *   +------+-------+---------+-------+-----------+ */
typedef struct table_shard {
    volatile int lock;
    uint32_t mask;
    size_t n_live;
    uint64_t bytes;
    htri_block *slots;
} __attribute__((aligned(64))) table_shard;

static struct {
    int ready;
    table_shard shards[TABLE_SHARDS];
} g_table;

static inline void table_lock(table_shard *s) { htri_spin_lock(&s->lock); }
static inline void table_unlock(table_shard *s) { htri_spin_unlock(&s->lock); }

static inline uint64_t table_hash(uintptr_t addr) { return htri_hash64((uint64_t)addr); }

/* The shard comes from the block's 64 MiB region, not its own hash: glibc gives each thread
 * its own arena, so a thread's blocks share its arena's few shards and their locks stay in
 * that core's cache. Hashing each address to any of the 64 shards made every lock line
 * bounce between cores (2-thread churn: insert+remove 15% of the run before, see git log). */
#define TABLE_REGION_SHIFT 26
static inline table_shard *table_shard_of(uintptr_t addr)
{
    return &g_table.shards[htri_hash64((uint64_t)(addr >> TABLE_REGION_SHIFT)) >> 58];
}

int htri_table_init(void)
{
    if (__atomic_load_n(&g_table.ready, __ATOMIC_ACQUIRE))
        return 0;
    for (int i = 0; i < TABLE_SHARDS; i++) {
        table_shard *s = &g_table.shards[i];
        table_lock(s);
        if (!s->slots) {
            s->slots = htri_os_pages_alloc(TABLE_INITIAL_SLOTS * sizeof(htri_block));
            if (!s->slots) {
                table_unlock(s);
                return -ENOMEM;
            }
            s->mask = TABLE_INITIAL_SLOTS - 1;
        }
        table_unlock(s);
    }
    __atomic_store_n(&g_table.ready, 1, __ATOMIC_RELEASE);
    return 0;
}

/* Index of addr's slot, or of the empty slot where it would go. Shard locked. */
static inline uint32_t table_probe(const table_shard *s, uint64_t h, uintptr_t addr)
{
    uint32_t i = (uint32_t)h & s->mask;
    while (s->slots[i].addr && s->slots[i].addr != addr)
        i = (i + 1) & s->mask;
    return i;
}

/* Doubles the shard's slot array (shard locked). Our own pages only. */
static int table_grow(table_shard *s)
{
    uint32_t n_old = s->mask + 1;
    if (n_old >= TABLE_MAX_SLOTS)
        return HTRI_E_FULL;
    uint32_t n_new = n_old * 2;
    htri_block *ns = htri_os_pages_alloc((size_t)n_new * sizeof(htri_block));
    if (!ns)
        return -ENOMEM;
    htri_block *old = s->slots;
    s->slots = ns;
    s->mask = n_new - 1;
    for (uint32_t i = 0; i < n_old; i++) {
        if (old[i].addr)
            s->slots[table_probe(s, table_hash(old[i].addr), old[i].addr)] = old[i];
    }
    htri_os_pages_free(old, (size_t)n_old * sizeof(htri_block));
    return 0;
}

int htri_table_insert(const htri_block *b)
{
    uint64_t h = table_hash(b->addr);
    table_shard *s = table_shard_of(b->addr);
    table_lock(s);
    /* Keep the load under 3/4 so probe chains stay short. */
    if ((s->n_live + 1) * 4 > (size_t)(s->mask + 1) * 3) {
        int rc = table_grow(s);
        if (rc < 0) {
            table_unlock(s);
            return rc;
        }
    }
    uint32_t i = table_probe(s, h, b->addr);
    int replaced = s->slots[i].addr != 0;
    if (replaced) {
        s->bytes -= s->slots[i].size;
    } else {
        s->n_live++;
    }
    s->slots[i] = *b;
    s->bytes += b->size;
    table_unlock(s);
    return replaced;
}

int htri_table_remove(uintptr_t addr, htri_block *out)
{
    if (!addr)
        return -ENOENT;
    uint64_t h = table_hash(addr);
    table_shard *s = table_shard_of(addr);
    table_lock(s);
    if (htri_unlikely(!s->slots)) {
        table_unlock(s);
        return -ENOENT;
    }
    uint32_t i = table_probe(s, h, addr);
    if (!s->slots[i].addr) {
        table_unlock(s);
        return -ENOENT;
    }
    if (out)
        *out = s->slots[i];
    s->bytes -= s->slots[i].size;
    s->n_live--;
    /* Backward-shift deletion (Knuth 6.4, algorithm R): pull later entries of the chain
     * into the hole unless their home slot lies cyclically in (hole, j]. */
    uint32_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & s->mask;
        if (!s->slots[j].addr)
            break;
        uint32_t home = (uint32_t)table_hash(s->slots[j].addr) & s->mask;
        if (((j - home) & s->mask) >= ((j - hole) & s->mask)) {
            s->slots[hole] = s->slots[j];
            hole = j;
        }
    }
    s->slots[hole].addr = 0;
    table_unlock(s);
    return 0;
}

int htri_table_find(uintptr_t addr, htri_block *out)
{
    if (!addr)
        return -ENOENT;
    uint64_t h = table_hash(addr);
    table_shard *s = table_shard_of(addr);
    table_lock(s);
    int rc = -ENOENT;
    if (s->slots) {
        uint32_t i = table_probe(s, h, addr);
        if (s->slots[i].addr) {
            if (out)
                *out = s->slots[i];
            rc = 0;
        }
    }
    table_unlock(s);
    return rc;
}

size_t htri_table_count(void)
{
    size_t n = 0;
    for (int i = 0; i < TABLE_SHARDS; i++)
        n += __atomic_load_n(&g_table.shards[i].n_live, __ATOMIC_RELAXED);
    return n;
}

uint64_t htri_table_bytes(void)
{
    uint64_t n = 0;
    for (int i = 0; i < TABLE_SHARDS; i++)
        n += __atomic_load_n(&g_table.shards[i].bytes, __ATOMIC_RELAXED);
    return n;
}

size_t htri_table_snapshot(htri_block *out, size_t cap)
{
    size_t n = 0;
    for (int k = 0; k < TABLE_SHARDS; k++) {
        const table_shard *s = &g_table.shards[k];
        if (!s->slots)
            continue;
        for (uint32_t i = 0; i <= s->mask; i++) {
            if (!s->slots[i].addr)
                continue;
            if (n < cap)
                out[n] = s->slots[i];
            n++;
        }
    }
    return n;
}

/* The walk of htri_table_foreach and htri_table_foreach_mut. */
static size_t table_walk(int (*fn)(void *user, htri_block *b), void *user)
{
    size_t n = 0;
    for (int k = 0; k < TABLE_SHARDS; k++) {
        const table_shard *s = &g_table.shards[k];
        if (!s->slots)
            continue;
        for (uint32_t i = 0; i <= s->mask; i++) {
            if (!s->slots[i].addr)
                continue;
            n++;
            if (fn(user, &s->slots[i]))
                return n;
        }
    }
    return n;
}

size_t htri_table_foreach(int (*fn)(void *user, const htri_block *b), void *user)
{
    return table_walk((int (*)(void *, htri_block *))fn, user);
}

size_t htri_table_foreach_mut(int (*fn)(void *user, htri_block *b), void *user)
{
    return table_walk(fn, user);
}

void htri_table_lock_all(void)
{
    for (int i = 0; i < TABLE_SHARDS; i++)
        table_lock(&g_table.shards[i]);
}

void htri_table_unlock_all(void)
{
    for (int i = TABLE_SHARDS - 1; i >= 0; i--)
        table_unlock(&g_table.shards[i]);
}

void htri_table_reset_locks(void)
{
    for (int i = 0; i < TABLE_SHARDS; i++)
        __atomic_store_n(&g_table.shards[i].lock, 0, __ATOMIC_RELEASE);
}
