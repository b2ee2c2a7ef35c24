/* Private: what the rest of the agent (the leak scan in scan.c) may use of the recording
 * core: whether it runs, the live-block table (table.h), world locking, the thread list,
 * and appending leak/error records to the trace from the exit path. */
#ifndef HTR_AGENT_AGENT_H
#define HTR_AGENT_AGENT_H
#include <stddef.h>
#include <stdint.h>

#include "agent/table.h"

/* 1 while the agent keeps its live-block table (it did not stop on an error). */
int htri_agent_active(void);

/* Takes every lock of the recording core (thread buffers, queue, stack trie, every table
 * shard), in the order fork uses; while held, no hook can change the table, so
 * htri_table_snapshot() / htri_table_foreach() see a consistent heap. Hooks of other
 * threads block (spin) until unlock; the caller must not allocate through malloc meanwhile
 * (it would deadlock on a shard lock) — use htri_os_pages_alloc. */
void htri_agent_world_lock(void);
void htri_agent_world_unlock(void);

/* Kernel tids of the threads the agent has seen and that have not exited. Copies up to cap;
 * returns how many there are. */
int htri_agent_threads(int *tids, int cap);

/* Appends one META record (tag 0x40..0x7f, body = the already-encoded fields) to the trace.
 * Meant for the exit path (htri_scan_at_exit); records are written before END. `t` is
 * filled by the agent (ns since trace start) when body does not carry it. Returns 0,
 * -EINVAL (tag outside 0x40..0x7f), -ENOMEM, or -EIO when the agent is not recording. */
int htri_agent_meta_record(uint8_t tag, const void *body, size_t len);
/* Nanoseconds since the trace's start (the time base of every record). */
uint64_t htri_agent_now(void);

/* Optional final hook provided by the leak scan (weak: absent means no scan). Called once
 * from the exit path after __libc_freeres, before the final flush and END; the recording
 * core's locks are free, the reentrancy guard is set (its mallocs are not recorded). */
void htri_scan_at_exit(void) __attribute__((weak));

#endif
