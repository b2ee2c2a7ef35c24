/* Private to src/unwind/: what the engines share. unwind.c owns the entry points and the
 * libunwind and frame-pointer engines, cached.c the module list and rule cache, cfi.c the
 * pure .eh_frame parser that turns one pc into a compact rule. */
#ifndef HTR_UNWIND_UNWIND_INT_H
#define HTR_UNWIND_UNWIND_INT_H
#include <stdint.h>
#include "base/common.h"

/* The register state of one frame, as the unwinders see it: the frame is executing at
 * `pc` (always a return address here), its stack pointer is `sp`, its rbp is `bp`. */
struct htri_unwind_regs {
    uintptr_t pc;
    uintptr_t sp;
    uintptr_t bp;
};

/* The readable part of the current thread's stack, [lo, hi); hi is the mapping's end. */
struct htri_unwind_stack {
    uintptr_t lo;
    uintptr_t hi;
};

/* Fills *out with the bounds of the stack mapping holding `sp` for the calling thread,
 * cached per thread. Allocation-free and async-signal-safe (raw open/read of
 * /proc/self/maps on a miss). Returns 0, or a negative errno when sp is in no mapping. */
int htri_unwind_stack_bounds(uintptr_t sp, struct htri_unwind_stack *out);

/* The libunwind engine, also the cached engine's fallback: unw_backtrace(), then drops
 * everything above `ra` (the return address into the caller of the public entry point)
 * plus `skip` more frames. Returns the number of pcs stored, >= 0. */
int htri_unwind_dwarf(uintptr_t ra, uintptr_t *pcs, int max, int skip);

/* ---- compact unwind rule (cfi.c) ----
 *
 *   63                32 31    24 23         16 15          8 7   4  3      2      1..0
 *  +--------------------+--------+-------------+-------------+----+-------+-------+------+
 *  | CFA offset (int32) |   0    | rbp slot    | RA slot     | 0  | rbp   | CFA   | kind |
 *  |                    |        | - CFA, in   | - CFA, in   |    | saved | = rbp |      |
 *  |                    |        | words (int8)| words (int8)|    |       |       |      |
 *  +--------------------+--------+-------------+-------------+----+-------+-------+------+
 *
 * CFA = (CFA=rbp ? rbp : rsp) + offset; caller's pc = [CFA + 8 * RA slot]; caller's rbp =
 * rbp saved ? [CFA + 8 * rbp slot] : unchanged; caller's rsp = CFA. A rule word is never 0.
 * The halves are laid out so the walk loads each with one instruction (see cached.c). */
enum htri_unwind_rule_kind {
    HTRI_UNWIND_RULE_NONE = 0,        /* not a rule (an empty cache slot) */
    HTRI_UNWIND_RULE_FRAME = 1,       /* an ordinary frame the fields above describe */
    HTRI_UNWIND_RULE_UNSUPPORTED = 2, /* the CFI says more than the rule can: use libunwind */
    HTRI_UNWIND_RULE_OUTERMOST = 3,   /* return address undefined: the last frame */
};
#define HTRI_UNWIND_RULE_CFA_RBP   (1u << 2)
#define HTRI_UNWIND_RULE_RBP_SAVED (1u << 3)

static inline unsigned htri_unwind_rule_kind(uint64_t rule) { return (unsigned)(rule & 3); }
static inline int32_t htri_unwind_rule_cfa_off(uint64_t rule) { return (int32_t)(rule >> 32); }
static inline int32_t htri_unwind_rule_ra_off(uint64_t rule) { return 8 * (int8_t)(rule >> 8); }
static inline int32_t htri_unwind_rule_rbp_off(uint64_t rule)
{
    return 8 * (int8_t)(rule >> 16);
}

/* Computes the rule for the instruction at `pc` from a module's .eh_frame_hdr (mapped in
 * this process). `pc` must already be adjusted (pc - 1 for a return address). Returns the
 * rule word (never 0); RULE_UNSUPPORTED when the FDE is missing or says something the
 * compact rule cannot express. Reads only inside the module's mapped unwind sections. */
uint64_t htri_unwind_cfi_rule(const uint8_t *eh_frame_hdr, uintptr_t pc);

/* The cached engine (cached.c). One-time set-up (mmap only); returns 0 or -ENOMEM. */
int htri_unwind_cached_init(void);

/* Walks from `regs` with cached rules. Returns the number of pcs stored, or -EAGAIN when
 * a frame needs libunwind (the caller then falls back for the whole capture). */
int htri_unwind_cached_walk(const struct htri_unwind_regs *regs, uintptr_t *pcs, int max,
                            int skip);

/* Marks the module list stale (see htri_unwind_modules_changed). */
void htri_unwind_cached_modules_changed(void);

/* Drops a rebuild claim inherited through fork() (see htri_unwind_after_fork). */
void htri_unwind_cached_after_fork(void);

#endif
