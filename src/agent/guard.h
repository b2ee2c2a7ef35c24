/* Private: the agent's misuse checks — redzones around live blocks, fill patterns, the
 * quarantine of freed blocks, fault injection and the memory limit. The hooks call it around
 * the real allocator; it never allocates through malloc and never prints or exits: it finds
 * errors and hands them to the reporter the hooks gave it (which records and prints them). */
#ifndef HTR_AGENT_GUARD_H
#define HTR_AGENT_GUARD_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "agent/table.h"
#include "trace/error_record.h"
#include "trace/format.h"

/*  How the hooks use this module (src/agent/hooks.c, "misuse-check mode", does exactly this;
 *  the misuse.heaptrail.* tests run tests/programs/misuse/ through it):
 *
 *  init_early  htri_guard_opts_default + htri_guard_parse_option per option (-ENOENT: not
 *              ours) + htri_guard_init(&o, report, ctx). The reporter stamps t/tid, encodes
 *              the record (error_record.h) and queues it as a META raw record.
 *  allocate    (tracked path; fam, size, align: 0 for malloc/calloc/new, a for the memalign
 *              family and new(align_val_t), page size for valloc/pvalloc)
 *                capture stack; why = htri_guard_should_fail(size, pcs, n)
 *                  -> why: FAULT record + ALLOC_FAILED, errno ENOMEM, NULL (new: bad_alloc)
 *                htri_guard_limit_reserve(size) < 0
 *                  -> LIMIT record (htri_guard_top_holders over a table snapshot) +
 *                     ALLOC_FAILED; abort() if limit_action is abort; else ENOMEM, NULL
 *                layout on: htri_guard_size_for -> real malloc / calloc(1, raw_size) / memalign
 *                  (raw_align) -> htri_guard_init_block(raw, size, align, calloc ? -1 : fill)
 *                  (calloc with raw_align: memset the user bytes); real failure: release
 *                  the limit reservation. Table tag = htri_guard_tag(align), else 0.
 *  release     (free, every delete, realloc(p, 0), realloc's old block; ffam HTRI_FFAM_*)
 *                htri_table_remove fails -> htri_guard_report_invalid_free(p, ffam, where,
 *                  NULL) and nothing is freed (the program goes on, as under memcheck)
 *                families differ -> htri_guard_report_mismatch (then release it anyway)
 *                tag has HTRI_GUARD_TAG_ON -> htri_guard_verify_block(p, size, node, fam,
 *                  where, ffam); htri_guard_limit_release(size)
 *                htri_guard_quarantine_push({p, size, node, where, fam, ffam, tag & 0xff})
 *                  == 1 -> real free(htri_guard_raw_of(p, tag)); then
 *                while (htri_guard_quarantine_evict(&q)) real free(htri_guard_qentry_raw(&q))
 *  realloc     always moves while the guard is on: allocate new, copy min(old, new) bytes,
 *              release old with HTRI_FFAM_REALLOC; a pointer that is no live block is an
 *              invalid free and realloc returns NULL.
 *  usable size tag on: htri_guard_usable_size(p); else the real malloc_usable_size.
 *  exit        drain with htri_guard_quarantine_pop (each fill verified), verify the table
 *              snapshot with htri_guard_verify_blocks, write ERROR_SUMMARY from
 *              htri_guard_error_counts, apply --error-exitcode.
 *  stopped     once layout was on, even untracked paths must look a program pointer up and
 *              hand the real free htri_guard_raw_of(p, tag): a user pointer is no glibc chunk.
 */

/* ---- Options ------------------------------------------------------------------------- */
enum { HTRI_LIMIT_FAIL = 0, HTRI_LIMIT_ABORT = 1 };

typedef struct htri_guard_opts {
    size_t redzone;            /* --redzone: bytes each side, rounded up to 16; 0 = none */
    size_t quarantine_bytes;   /* --quarantine: freed bytes held back; 0 = none */
    int fill_alloc;            /* --fill-alloc: byte for fresh blocks, -1 = leave as is */
    uint64_t fail_after;       /* --fail-after=N: counted allocations after the first N fail */
    uint64_t fail_every;       /* --fail-every=N: every Nth counted allocation fails */
    uint32_t fail_rate_ppm;    /* --fail-rate=P, as parts per million */
    uint64_t seed;             /* --seed for --fail-rate */
    bool fail_after_set;       /* --fail-after given (0 is a valid N) */
    char fail_in[128];         /* --fail-in=FUNCTION: count only stacks through it; "" = all */
    uint64_t limit_bytes;      /* --limit; 0 = none */
    int limit_action;          /* --limit-action: HTRI_LIMIT_FAIL or HTRI_LIMIT_ABORT */
    bool abort_on_error;       /* --abort-on-error (acted on by the hooks' reporter) */
    int error_exitcode;        /* --error-exitcode; 0 = keep the program's status */
} htri_guard_opts;

/* The defaults of the issue: 16-byte redzones, a 64 MiB quarantine, nothing else. */
void htri_guard_opts_default(htri_guard_opts *o);
/* Parses one option (name without "--", value after '='; value NULL if none), e.g.
 * ("limit", "512M"), ("fail-rate", "0.01"), ("fill-alloc", NULL) = HTR_FILL_FRESH.
 * Sizes take K/M/G (powers of 1024). No allocation, no locale. Returns 0, -EINVAL (bad
 * value) or -ENOENT (not a guard option). */
int htri_guard_parse_option(htri_guard_opts *o, const char *name, const char *value);

/* The reporter: called once per error, from the thread that found it, with no guard lock
 * held. It must not call back into the guard. The guard fills kind, families, nodes,
 * addresses, damage; the reporter adds t and tid. */
typedef void (*htri_guard_report_fn)(void *user, const htri_error_rec *err);

/* Sets up the module (quarantine ring, --fail-in ranges from the ELF symbol tables of the
 * modules loaded now). Call once at agent start, before any hook uses it; may read files
 * but never calls malloc. Returns 0, -ENOMEM (no quarantine: it is then off) or -ENOENT
 * (--fail-in names no function: nothing will be failed by it). The module works after
 * either error, with that feature off. */
int htri_guard_init(const htri_guard_opts *o, htri_guard_report_fn report, void *user);
/* Releases the quarantine ring without checking it (tests; the agent keeps it to the end). */
void htri_guard_shutdown(void);
const htri_guard_opts *htri_guard_options(void);

/* ---- Block layout -------------------------------------------------------------------- */
/* htri_block.tag of a block the guard laid out: HTRI_GUARD_TAG_ON | log2(alignment). Only
 * blocks with this bit may be handed to htri_guard_raw*() and friends: reading the header of
 * any other pointer could touch an unmapped page. */
#define HTRI_GUARD_TAG_ON 0x8000u
static inline uint16_t htri_guard_tag(size_t align)
{
    uint16_t l = 4;  /* malloc's own 16 */
    while (((size_t)1 << l) < align) l++;
    return (uint16_t)(HTRI_GUARD_TAG_ON | l);
}
static inline size_t htri_guard_tag_align(uint16_t tag) { return (size_t)1 << (tag & 0xff); }

/*  A guarded block, as the real allocator sees it (rz = the redzone, A = max(align, 16)):
 *
 *   raw (A-aligned)                                      user (A-aligned)
 *   |                                                    |
 *   v                                                    v
 *   +--------------------+--------+----------------------+---------------+---------------+
 *   | pad (unchecked)    | header | front redzone (rz)   | size bytes    | rear redzone  |
 *   |                    | 16 B   | HTR_FILL_GUARD       | the program's | (rz)          |
 *   +--------------------+--------+----------------------+---------------+---------------+
 *   |<------------ front = round_up(16 + rz, A) -------->|
 *
 *   header: | size u64 | front u32 | check u32 |   check = hash(user, size, front) ^ magic,
 *   so a pointer that is not ours, or a header an underrun smashed, is recognised.
 *
 *  front depends only on (align, rz), so raw = user - front even when the header is gone.
 *  The rear redzone starts right at user + size (byte-exact, not rounded), so an overrun by
 *  one byte is caught. malloc_usable_size answers `size`: writing up to it is legal. */
#define HTRI_GUARD_HEADER 16

/* True when redzones are on (redzone > 0): only then do the layout calls below apply; with
 * the layout off, user == raw and the hooks use the real allocator's functions. */
bool htri_guard_layout_on(void);
/* What to ask the real allocator for a block of `size` bytes aligned to `align` (a power of
 * two; 0 or <= 16 means malloc's own 16). *raw_align is 0 when malloc/calloc suffice, else
 * the alignment to pass to the real memalign. Returns 0 or -ENOMEM (size overflow). */
int htri_guard_size_for(size_t size, size_t align, size_t *raw_size, size_t *raw_align);
/* Writes header and redzones into raw (from the real allocator, of the size and alignment
 * htri_guard_size_for said) and fills the user bytes with fill (0..255) unless fill < 0.
 * Returns the user pointer. */
void *htri_guard_init_block(void *raw, size_t size, size_t align, int fill);
/* The raw pointer to give back to the real allocator for a user pointer of ours, or NULL if
 * its header does not check (not ours, or smashed: then htri_guard_raw_for). */
void *htri_guard_raw(const void *user);
/* raw from the layout alone, for a block the table knows (size, align) but whose header an
 * underrun destroyed. */
void *htri_guard_raw_for(const void *user, size_t align);
/* What to give the real free for a block with table tag `tag`: its raw pointer when the
 * guard laid it out (header, else layout), the pointer itself otherwise. */
void *htri_guard_raw_of(void *user, uint16_t tag);
/* Requested size of a block of ours (malloc_usable_size), or 0 if the header does not check. */
size_t htri_guard_usable_size(const void *user);

/* The first damaged span of a block's redzones. */
typedef struct htri_guard_damage {
    uint8_t kind;              /* HTRI_ERR_OVERRUN or HTRI_ERR_UNDERRUN */
    int64_t offset;            /* of the first damaged byte from user (negative: before) */
    uint64_t length;           /* from the first to the last damaged byte of that side */
    uint8_t n_bytes;
    uint8_t bytes[HTRI_ERR_MAX_BYTES]; /* found, starting at offset */
} htri_guard_damage;
/* Checks both redzones of a live block of `size` bytes (underrun first). Returns 0 if
 * intact, 1 if damaged (*out filled; out may be NULL). Pure: reports nothing. */
int htri_guard_check_block(const void *user, size_t size, htri_guard_damage *out);
/* Checks a live block and reports each damaged side (alloc_node/family from the table,
 * where_node/free_family of the caller: the free, realloc or check that looks at it), then
 * rewrites the redzones so the same damage is reported once. Returns errors reported. */
int htri_guard_verify_block(const void *user, size_t size, uint32_t alloc_node,
                            uint8_t alloc_family, uint32_t where_node, uint8_t free_family);
/* htr_check_heap(), at exit: verify every block of a table snapshot whose tag says the guard
 * laid it out (others are skipped). Returns errors. */
int htri_guard_verify_blocks(const htri_block *blocks, size_t n, uint32_t where_node);

/* ---- Bad frees ----------------------------------------------------------------------- */
/* Does releasing a block of alloc family `fam` (HTRI_FAM_*) with free family `ffam`
 * (HTRI_FFAM_*) match? realloc/free go with every C family; delete with new; delete[] with
 * new[]. */
bool htri_guard_families_match(uint8_t fam, uint8_t ffam);
/* Reports a free/delete/realloc of `addr` that is not a live block: looks it up in the
 * quarantine (a double free: the block's stacks), else classifies it (stack, module data,
 * unknown). `live` is the live block containing addr if the hooks know one (interior
 * pointer), else NULL. Returns 1 (errors reported). */
int htri_guard_report_invalid_free(uintptr_t addr, uint8_t ffam, uint32_t where_node,
                                   const htri_block *live);
/* Reports a mismatched free of live block b by family ffam. Returns 1. */
int htri_guard_report_mismatch(const htri_block *b, uint8_t ffam, uint32_t where_node);
/* What addr is (HTRI_ADDR_STACK, HTRI_ADDR_DATA or HTRI_ADDR_UNKNOWN). Error path only:
 * takes the loader's lock through dl_iterate_phdr. */
int htri_guard_classify_addr(uintptr_t addr);

/* ---- Quarantine ---------------------------------------------------------------------- */
/* One freed block held back. */
typedef struct htri_guard_qentry {
    uintptr_t user;            /* the program's pointer */
    uint64_t size;             /* requested size */
    uint32_t alloc_node, free_node;
    uint8_t family;            /* HTRI_FAM_* it was allocated with */
    uint8_t ffamily;           /* HTRI_FFAM_* it was released with */
    uint16_t align_log2;       /* low byte of its table tag: log2(alignment) if the guard
                                * laid it out, 0 if not (then raw == user, no redzones) */
} htri_guard_qentry;
/* What to give the real free for a block leaving the quarantine. */
void *htri_guard_qentry_raw(const htri_guard_qentry *q);

/* Fills the block (and, with redzones, keeps its redzones) with HTR_FILL_FREED and queues
 * it. Returns 0 if queued (the hooks must not free it: it comes back through evict), or 1 if
 * not (quarantine off, or the block alone is over a quarter of the budget): the hooks free
 * it now. Lock: one short spinlock hold; the fill happens outside it. */
int htri_guard_quarantine_push(const htri_guard_qentry *e);
/* Takes the oldest block while the quarantine is over budget; verifies its fill and redzones
 * (reporting HTRI_ERR_WRITE_AFTER_FREE, where_node 0). Returns 1 with *out set (the hooks
 * hand htri_guard_raw(out->user) to the real free), 0 when within budget. Call in a loop
 * after each push. */
int htri_guard_quarantine_evict(htri_guard_qentry *out);
/* As evict, but takes the oldest block whatever the budget (at exit: drain and verify all). */
int htri_guard_quarantine_pop(htri_guard_qentry *out);
/* Is user a block in quarantine (exactly, or inside one when interior is true)? Copies its
 * entry. Returns 1 or 0. A scan, newest first, under the quarantine lock: bad frees only. */
int htri_guard_quarantine_find(uintptr_t addr, bool interior, htri_guard_qentry *out);
/* Blocks and bytes held now. */
void htri_guard_quarantine_stats(size_t *n_blocks, uint64_t *bytes);
/* Verifies every block still in quarantine without taking it out (htr_check_heap). Returns
 * errors reported. */
int htri_guard_quarantine_verify_all(void);

/* ---- Fault injection ----------------------------------------------------------------- */
/* Should this allocation fail? pcs: its stack (return addresses, innermost first), used only
 * with --fail-in (an allocation counts only if a pc lies in FUNCTION). Deterministic: the
 * k-th counted allocation of a process gets the same answer for the same options and seed.
 * Returns 0 (go on) or the reason (HTRI_FAULT_*) for a FAULT record. Lock-free. */
int htri_guard_should_fail(size_t size, const uintptr_t *pcs, int npcs);
/* Does the stack pass through --fail-in's function? (true when --fail-in is not set) */
bool htri_guard_stack_in_fail_fn(const uintptr_t *pcs, int npcs);
/* Resolves `name` to [start, end) address ranges of functions in the loaded modules'
 * symbol tables (.symtab from the file, else .dynsym). Returns how many (at most cap). */
int htri_guard_resolve_function(const char *name, uintptr_t (*ranges)[2], int cap);

/* ---- Memory limit -------------------------------------------------------------------- */
/* Before the real allocation: reserves size bytes of live heap. Returns 0, or -ENOMEM if
 * that would exceed --limit (nothing reserved: the hooks then fail the call or abort, per
 * limit_action, after a LIMIT record). No limit: always 0, no atomic touched. */
int htri_guard_limit_reserve(size_t size);
/* When a reserved block is released (at the program's free, not at quarantine eviction), or
 * when the real allocation failed after a reserve. */
void htri_guard_limit_release(size_t size);
uint64_t htri_guard_live_bytes(void);
/* The k stacks holding the most bytes among blocks[0..n) (a table snapshot), biggest first.
 * Uses mmap'd scratch. Returns how many were written (<= k), or -ENOMEM. */
int htri_guard_top_holders(const htri_block *blocks, size_t n, htri_limit_holder *out, int k);

/* ---- Fork ---------------------------------------------------------------------------- */
/* pthread_atfork handlers: prepare takes the guard's locks (after the table's), parent
 * releases them, child releases them and zeroes the error counts (the child's trace holds
 * only its own errors). The child keeps the quarantine it inherited. */
void htri_guard_fork_prepare(void);
void htri_guard_fork_parent(void);
void htri_guard_fork_child(void);

/* ---- Error counts -------------------------------------------------------------------- */
/* Errors reported so far and their contexts (kind + where_node, + alloc_node when where_node
 * is 0), memcheck's "N errors from M contexts". */
void htri_guard_error_counts(uint64_t *n_errors, uint64_t *n_contexts);

#endif
