/* The stack table: every distinct call stack the hooks capture becomes a leaf of a trie of
 * (parent, pc) nodes, written once to the trace as NODES records (heaptrack's scheme).
 * Fast paths: a per-thread cache of recent stacks (a copy of each pc array, compared with one
 * memcmp), then a lock-free hash of the whole pc array -> leaf id; only new stacks lock. */
#include <sched.h>
#include <string.h>

#include "agent/agent_int.h"
#include "base/common.h"
#include "base/hash.h"
#include "base/os.h"

#define STACKS_MAX_NODES (1u << 24)      /* address space reserved; touched as used */
#define STACKS_FAST_SLOTS (1u << 22)     /* lock-free whole-stack cache, 64 MiB reserved */
#define STACKS_FAST_PROBES 32
#define STACKS_CHILD_INITIAL (1u << 14)
#define STACKS_TCACHE_SLOTS 16           /* per thread, direct-mapped by hash */
#define STACKS_TCACHE_DEPTH 64           /* deeper stacks skip the per-thread cache */

/*  Fast-path slot: written under the lock (leaf first, then key with release), read
 *  without it (key with acquire, then leaf). A key hit is confirmed by walking the trie.
 *   +-----------------+--------+-------+
 *   | key (hash | 1)  | leaf   | depth |
 *   +-----------------+--------+-------+ */
typedef struct stacks_fast_slot {
    uint64_t key;
    uint32_t leaf, depth;
} stacks_fast_slot;

/* Child map slot: (parent, pc) -> child id, only touched under the lock. */
typedef struct stacks_child_slot {
    uintptr_t pc;
    uint32_t parent, child;   /* child 0 = empty (node 0 is the root, never a child) */
} stacks_child_slot;

static struct {
    volatile int lock;
    int ready;
    uint32_t *parent;          /* parent[id] */
    uintptr_t *pc;             /* pc[id] */
    uint32_t n_nodes;          /* allocated, under the lock */
    uint32_t n_published;      /* [0, n_published) complete: atomic, release */
    uint32_t n_fast;           /* occupied fast slots */
    stacks_fast_slot *fast;
    stacks_child_slot *child;
    uint32_t child_mask, n_child;
} g_stacks;

/* Per-thread cache: a hit costs the hash and one memcmp of the pc array, where the shared
 * fast table confirms a hit by walking the trie, one dependent load pair per frame (on a
 * 30-frame workload that walk and the old serial hash were 29% of the run). Entries never go
 * stale: a node, once published, spells the same stack forever. `busy` keeps a capture from a
 * signal handler that interrupts this one off the entry being compared. */
typedef struct stacks_tcache_slot {
    uint64_t key;                     /* 0 = empty */
    uint32_t leaf, depth;
    uintptr_t pcs[STACKS_TCACHE_DEPTH];
} stacks_tcache_slot;

static __thread struct {
    int busy;
    stacks_tcache_slot slots[STACKS_TCACHE_SLOTS];
} t_stacks __attribute__((tls_model("initial-exec")));

static void stacks_lock(void)
{
    while (__atomic_exchange_n(&g_stacks.lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&g_stacks.lock, __ATOMIC_RELAXED))
            sched_yield();
}
static void stacks_unlock(void) { __atomic_store_n(&g_stacks.lock, 0, __ATOMIC_RELEASE); }

int htri_stacks_init(void)
{
    if (__atomic_load_n(&g_stacks.ready, __ATOMIC_ACQUIRE))
        return 0;
    stacks_lock();
    int rc = 0;
    if (!g_stacks.ready) {
        g_stacks.parent = htri_os_pages_reserve((size_t)STACKS_MAX_NODES * sizeof(uint32_t));
        g_stacks.pc = htri_os_pages_reserve((size_t)STACKS_MAX_NODES * sizeof(uintptr_t));
        g_stacks.fast = htri_os_pages_reserve((size_t)STACKS_FAST_SLOTS * sizeof(stacks_fast_slot));
        g_stacks.child = htri_os_pages_alloc((size_t)STACKS_CHILD_INITIAL * sizeof(stacks_child_slot));
        if (!g_stacks.parent || !g_stacks.pc || !g_stacks.fast || !g_stacks.child) {
            rc = -ENOMEM;
        } else {
            g_stacks.child_mask = STACKS_CHILD_INITIAL - 1;
            g_stacks.n_nodes = 1;  /* node 0: the empty stack */
            __atomic_store_n(&g_stacks.n_published, 1, __ATOMIC_RELEASE);
            __atomic_store_n(&g_stacks.ready, 1, __ATOMIC_RELEASE);
        }
    }
    stacks_unlock();
    return rc;
}

static inline uint64_t stacks_child_hash(uint32_t parent, uintptr_t pc)
{
    return htri_hash64((uint64_t)pc * 31 + parent);
}

static int stacks_child_grow(void)
{
    uint32_t n_old = g_stacks.child_mask + 1, n_new = n_old * 2;
    stacks_child_slot *ns = htri_os_pages_alloc((size_t)n_new * sizeof(stacks_child_slot));
    if (!ns)
        return -ENOMEM;
    stacks_child_slot *old = g_stacks.child;
    for (uint32_t i = 0; i < n_old; i++) {
        if (!old[i].child)
            continue;
        uint32_t j = (uint32_t)stacks_child_hash(old[i].parent, old[i].pc) & (n_new - 1);
        while (ns[j].child)
            j = (j + 1) & (n_new - 1);
        ns[j] = old[i];
    }
    g_stacks.child = ns;
    g_stacks.child_mask = n_new - 1;
    htri_os_pages_free(old, (size_t)n_old * sizeof(stacks_child_slot));
    return 0;
}

/* Returns the child of `parent` for `pc`, creating it (unpublished) if missing; 0 when out
 * of room. Lock held. */
static uint32_t stacks_child(uint32_t parent, uintptr_t pc)
{
    if ((g_stacks.n_child + 1) * 4 > (g_stacks.child_mask + 1) * 3 && stacks_child_grow() < 0)
        return 0;
    uint32_t j = (uint32_t)stacks_child_hash(parent, pc) & g_stacks.child_mask;
    for (;;) {
        stacks_child_slot *s = &g_stacks.child[j];
        if (!s->child)
            break;
        if (s->parent == parent && s->pc == pc)
            return s->child;
        j = (j + 1) & g_stacks.child_mask;
    }
    if (g_stacks.n_nodes >= STACKS_MAX_NODES)
        return 0;
    uint32_t id = g_stacks.n_nodes++;
    g_stacks.parent[id] = parent;
    g_stacks.pc[id] = pc;
    g_stacks.child[j] = (stacks_child_slot){ pc, parent, id };
    g_stacks.n_child++;
    return id;
}

/* Does node `leaf` spell exactly pcs[0..n) (innermost first)? Nodes never change once
 * published, so this needs no lock. */
static inline int stacks_matches(uint32_t leaf, const uintptr_t *pcs, int n)
{
    uint32_t id = leaf;
    for (int i = 0; i < n; i++) {
        if (id == 0 || g_stacks.pc[id] != pcs[i])
            return 0;
        id = g_stacks.parent[id];
    }
    return id == 0;
}

static int stacks_intern_shared(const uintptr_t *pcs, int n, uint64_t key, uint32_t *node);

int htri_stacks_intern(const uintptr_t *pcs, int n, uint32_t *node)
{
    if (n <= 0) {
        *node = 0;
        return 0;
    }
    uint64_t key = htri_hash_words(pcs, (size_t)n) | 1;
    if (n > STACKS_TCACHE_DEPTH || t_stacks.busy)
        return stacks_intern_shared(pcs, n, key, node);
    t_stacks.busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    stacks_tcache_slot *c = &t_stacks.slots[(key >> 1) & (STACKS_TCACHE_SLOTS - 1)];
    int rc = 0;
    if (c->key == key && c->depth == (uint32_t)n &&
        memcmp(c->pcs, pcs, (size_t)n * sizeof *pcs) == 0) {
        *node = c->leaf;
    } else if ((rc = stacks_intern_shared(pcs, n, key, node)) == 0) {
        c->key = key;
        c->leaf = *node;
        c->depth = (uint32_t)n;
        memcpy(c->pcs, pcs, (size_t)n * sizeof *pcs);
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t_stacks.busy = 0;
    return rc;
}

static int stacks_intern_shared(const uintptr_t *pcs, int n, uint64_t key, uint32_t *node)
{
    uint32_t i = (uint32_t)(key >> 20) & (STACKS_FAST_SLOTS - 1);
    for (int probe = 0; probe < STACKS_FAST_PROBES; probe++) {
        const stacks_fast_slot *s = &g_stacks.fast[(i + (uint32_t)probe) & (STACKS_FAST_SLOTS - 1)];
        uint64_t k = __atomic_load_n(&s->key, __ATOMIC_ACQUIRE);
        if (k == 0)
            break;
        if (k == key && s->depth == (uint32_t)n && stacks_matches(s->leaf, pcs, n)) {
            *node = s->leaf;
            return 0;
        }
    }

    /* A new stack (or one the fast table had no room for). */
    stacks_lock();
    uint32_t id = 0;
    for (int k = n - 1; k >= 0; k--) {
        id = stacks_child(id, pcs[k]);
        if (!id) {
            stacks_unlock();
            return -ENOMEM;
        }
    }
    /* Publish the new nodes before anyone can find them through the fast table. */
    __atomic_store_n(&g_stacks.n_published, g_stacks.n_nodes, __ATOMIC_RELEASE);
    if (g_stacks.n_fast < STACKS_FAST_SLOTS / 2) {
        for (int probe = 0; probe < STACKS_FAST_PROBES; probe++) {
            stacks_fast_slot *s = &g_stacks.fast[(i + (uint32_t)probe) & (STACKS_FAST_SLOTS - 1)];
            if (s->key == key && s->depth == (uint32_t)n && stacks_matches(s->leaf, pcs, n))
                break;
            if (s->key == 0) {
                s->leaf = id;
                s->depth = (uint32_t)n;
                __atomic_store_n(&s->key, key, __ATOMIC_RELEASE);
                g_stacks.n_fast++;
                break;
            }
        }
    }
    stacks_unlock();
    *node = id;
    return 0;
}

uint32_t htri_stacks_published(void)
{
    return __atomic_load_n(&g_stacks.n_published, __ATOMIC_ACQUIRE);
}

const uint32_t *htri_stacks_parents(void) { return g_stacks.parent; }
const uintptr_t *htri_stacks_pcs(void) { return g_stacks.pc; }

void htri_stacks_lock(void) { stacks_lock(); }
void htri_stacks_unlock(void) { stacks_unlock(); }
void htri_stacks_reset_lock(void) { __atomic_store_n(&g_stacks.lock, 0, __ATOMIC_RELEASE); }
