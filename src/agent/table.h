/* Private: the agent's live-block table — every block the program holds, keyed by its
 * address. Sharded open addressing on mmap'd memory, one spinlock per shard, so threads
 * working on different blocks rarely meet. Used by the hooks, the leak scan and fork. */
#ifndef HTR_AGENT_TABLE_H
#define HTR_AGENT_TABLE_H
#include <stddef.h>
#include <stdint.h>

typedef struct htri_block {
    uintptr_t addr;     /* the pointer the program got */
    uint64_t size;      /* bytes it asked for */
    uint32_t node;      /* allocation stack: trie node id (0 = no stack) */
    uint8_t family;     /* HTRI_FAM_* of src/trace/format.h */
    uint8_t flags;      /* HTRI_BLOCK_* */
    uint16_t tag;       /* reserved for the guard layer */
    uint64_t ref;       /* the trace's name of the block, HTRI_BLOCK_REF(tid, number); 0: its
                         * ALLOC record was not written. 32 bytes in all: two per cache line */
} htri_block;

enum { HTRI_BLOCK_INHERITED = 1 << 0 };

/* A block reference packed in 64 bits: Linux tids are below 2^22 (PID_MAX_LIMIT), numbers
 * below 2^42 (the agent stops recording before a thread's numbers reach it). */
#define HTRI_BLOCK_NO_BITS 42
#define HTRI_BLOCK_NO_MASK ((1ull << HTRI_BLOCK_NO_BITS) - 1)
#define HTRI_BLOCK_REF(tid, no) ((uint64_t)(tid) << HTRI_BLOCK_NO_BITS | (no))
#define HTRI_BLOCK_REF_TID(ref) ((uint32_t)((ref) >> HTRI_BLOCK_NO_BITS))
#define HTRI_BLOCK_REF_NO(ref) ((ref) & HTRI_BLOCK_NO_MASK)

/* Sets up the shards. No malloc. Returns 0 or -ENOMEM. Safe to call twice. */
int htri_table_init(void);
/* Adds a block; an existing entry at the same address is replaced (returns 1 then). Returns
 * 0/1, or -ENOMEM / HTRI_E_FULL when the table cannot grow (the caller disables recording). */
int htri_table_insert(const htri_block *b);
/* Removes the block at addr into *out. Returns 0, or -ENOENT if addr is not a live block. */
int htri_table_remove(uintptr_t addr, htri_block *out);
/* Looks up without removing. Returns 0 or -ENOENT. */
int htri_table_find(uintptr_t addr, htri_block *out);
/* Number of live blocks and their total bytes (racy sums of per-shard counters). */
size_t htri_table_count(void);
uint64_t htri_table_bytes(void);
/* Copies every live block into out[0..cap) (any order). Call with all shards locked or the
 * world stopped. Returns the number of live blocks (may exceed cap). */
size_t htri_table_snapshot(htri_block *out, size_t cap);
/* Fork and stop-the-world support: take / release every shard lock, in a fixed order. */
void htri_table_lock_all(void);
void htri_table_unlock_all(void);
/* Calls fn on every live block (any order) until it returns nonzero. Same locking rule as
 * htri_table_snapshot; fn must not touch the table. Returns the number of blocks visited. */
size_t htri_table_foreach(int (*fn)(void *user, const htri_block *b), void *user);
/* The same, but fn may change a block's fields other than addr (a forked child renumbers
 * its inherited blocks). */
size_t htri_table_foreach_mut(int (*fn)(void *user, htri_block *b), void *user);
/* Forked child only: clears every shard lock (the parent's holders no longer exist). */
void htri_table_reset_locks(void);

#endif
