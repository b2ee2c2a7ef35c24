/* Private to src/agent (recording core): the calls hooks.c makes into the core, and the
 * pieces the core's files share (stack trie, module map, thread buffers). The leak scan's
 * view of the agent is agent.h. */
#ifndef HTR_AGENT_AGENT_INT_H
#define HTR_AGENT_AGENT_INT_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/agent.h"
#include "agent/table.h"
#include "trace/writer.h"

/* ---- stack trie (stacks.c) ---- */
int htri_stacks_init(void);
/* pcs innermost first. Sets *node to the leaf id (0 for n == 0). Returns 0 or -ENOMEM
 * (node space exhausted). Lock-free for known stacks. */
int htri_stacks_intern(const uintptr_t *pcs, int n, uint32_t *node);
/* Nodes [0, published) are complete and immutable. */
uint32_t htri_stacks_published(void);
const uint32_t *htri_stacks_parents(void);
const uintptr_t *htri_stacks_pcs(void);
void htri_stacks_lock(void);
void htri_stacks_unlock(void);
void htri_stacks_reset_lock(void);

/* ---- module map (modules.c), writer thread only ---- */
/* Rescans the loaded objects; new ones and vanished ones are appended to b as MODULE /
 * MODULE_UNLOAD records stamped t. Returns the number of records added. */
int htri_modules_scan(htri_recbuf *b, uint64_t t);
/* 1 if pc lies in a known loaded module. */
int htri_modules_contains(uintptr_t pc);
/* Forgets every module (forked child: its file starts empty, so all are new again). */
void htri_modules_reset(void);

/* ---- recording core (agent.c), called by hooks.c ---- */
/* Reentrancy guard: nonzero while this thread runs our code; hooks then pass straight to
 * the real allocator, unrecorded. The writer thread keeps it set for good. */
extern __thread int htri_agent_guard __attribute__((tls_model("initial-exec")));
/* Bootstrap state, checked by every hook. */
int htri_agent_init_early(void);          /* tables, options; no threads, no files */
void htri_agent_init_late(void);          /* constructor: writer thread, signals, atfork */
void htri_agent_on_alloc(uint8_t family, void *p, size_t size, const uintptr_t *pcs, int n_pcs);
void htri_agent_on_free(uint8_t ffamily, void *p);
/* realloc: old freed (if non-NULL), new allocated (if non-NULL) with dt 0. */
/* old: the block hooks.c took out of the table (its reference names it in the FREE), or
 * NULL when realloc had no tracked old block. */
void htri_agent_on_realloc(const htri_block *old, void *new_p, size_t size, const uintptr_t *pcs,
                           int n_pcs);
void htri_agent_on_failed(uint8_t family, size_t size, const uintptr_t *pcs, int n_pcs);
void htri_agent_on_mmap(void *p, size_t len, const uintptr_t *pcs, int n_pcs);
void htri_agent_on_munmap(void *p, size_t len);
int htri_agent_depth(void);
int htri_agent_recording(void);          /* events wanted now (not stopped, record=full) */
int htri_agent_tracking(void);           /* tables kept now (not stopped) */
int htri_agent_freeres(void);
/* Lifecycle. */
void htri_agent_note_exit_status(int status);
void htri_agent_finish(int how, int status);   /* final flush + END + close; idempotent */
/* Stops the writer thread and waits for it (exit path: before the leak scan stops the
 * world, so that no thread of ours is left to stop). The final flush then runs inline. */
void htri_agent_stop_writer(void);
/* 0 in a vfork child (it shares our memory, our thread's TLS included: touch nothing). */
int htri_agent_own_process(void);
void htri_agent_before_exec(void);             /* flush + END how=exec */
void htri_agent_exec_failed(void);
void htri_agent_before_dlclose(void);          /* writes pending MODULE + NODES records */
void htri_agent_modules_changed(void);         /* after dlclose */
int htri_agent_trace_children(void);
/* For exec with trace_children: the HEAPTRAIL_OPTIONS entry the new image must see
 * ("HEAPTRAIL_OPTIONS=...;main_pid=0"), or NULL. */
const char *htri_agent_child_options_env(void);
/* Signals: whether sig is one we handle, and telling the core the program took it over. */
int htri_agent_signal_is_ours(int sig);
void htri_agent_signal_taken(int sig);
/* Stop recording with one stderr line `heaptrail: <why>: stopped recording`. */
void htri_agent_stop(const char *why);
/* leak_check option: 0 when the exit scan is off (leak_check=no). */
int htri_agent_leak_check(void);

/* ---- misuse checks (guard.h): what hooks.c needs of the core; call with the reentrancy
 * guard set. ---- */
/* 1 if the misuse checks run (guard option, default on) and the agent initialised. Read
 * once at bootstrap: blocks laid out by the guard must be handled so until the end. */
int htri_agent_guard_on(void);
/* htri_agent_on_alloc that stores the guard's tag (htri_guard_tag) in the table. */
void htri_agent_on_alloc_tag(uint8_t family, void *p, size_t size, uint16_t tag,
                             const uintptr_t *pcs, int n_pcs);
/* htri_agent_on_free that hands back the removed block. Returns 0, or -ENOENT if p is no
 * live block (nothing recorded). */
int htri_agent_on_free_block(uint8_t ffamily, void *p, htri_block *out);
/* Stack id of pcs (0 when the stack table is full). */
uint32_t htri_agent_node(const uintptr_t *pcs, int n_pcs);
/* An allocation refused by fault injection (why: HTRI_FAULT_*): FAULT record + ALLOC_FAILED. */
void htri_agent_guard_fault(int why, uint8_t family, size_t size, const uintptr_t *pcs, int n_pcs);
/* An allocation refused by --limit: LIMIT record with the top holders + ALLOC_FAILED; does
 * not return with --limit-action=abort. */
void htri_agent_guard_limit(uint8_t family, size_t size, const uintptr_t *pcs, int n_pcs);
/* The live block that contains addr (not at its start). Takes every shard lock: error path
 * only. Returns 1 with *out set, else 0. */
int htri_agent_guard_find_containing(uintptr_t addr, htri_block *out);
/* Checks the redzones of every live block laid out by the guard (errors recorded with
 * where_node). Takes every shard lock meanwhile. Returns errors found, or -ENOMEM. */
int htri_agent_guard_verify_live(uint32_t where_node);
/* ERROR_SUMMARY record: errors and contexts so far. */
void htri_agent_guard_summary(void);

#endif
