/* Stack capture entry points: engine choice, the libunwind engine and the frame-pointer
 * walk. Runs inside the agent's malloc hooks and the debug allocators, so nothing on the
 * capture path allocates, prints or waits on a lock. */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include "unwind/unwind.h"
#include "unwind/unwind_int.h"

/* unw_backtrace() starts inside libunwind's own caller chain: our entry point and its
 * helpers. We look for our caller's return address among the first few frames. */
#define UNWIND_LEAD_MAX 8
/* A saved rbp further than this above the previous one is not believed (FP walk). */
#define UNWIND_FP_MAX_FRAME ((uintptr_t)1 << 20)

enum { UNWIND_SETUP_NONE = 0, UNWIND_SETUP_BUSY = 1, UNWIND_SETUP_READY = 2 };

static struct {
    _Atomic int mode;         /* htri_unwind_mode used by htri_unwind_capture */
    _Atomic int dwarf_setup;  /* UNWIND_SETUP_*: libunwind caching policy set */
    _Atomic int cached_setup; /* UNWIND_SETUP_*: cached engine's tables mapped */
} g_unwind;

static int unwind_dwarf_setup(void)
{
    /* Per-thread caches: no lock shared between threads on the capture path. */
    return unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD) == 0 ? 0 : -EIO;
}

/* Runs `setup` once. With `wait`, a caller that finds another thread inside setup waits for
 * it; without (the capture path, possibly a signal handler interrupting that very setup),
 * it returns -EAGAIN at once. */
static int unwind_once(_Atomic int *state, int (*setup)(void), bool wait)
{
    int s = atomic_load_explicit(state, memory_order_acquire);
    if (htri_likely(s == UNWIND_SETUP_READY))
        return 0;
    int expected = UNWIND_SETUP_NONE;
    if (atomic_compare_exchange_strong(state, &expected, UNWIND_SETUP_BUSY)) {
        int rc = setup();
        atomic_store_explicit(state, rc == 0 ? UNWIND_SETUP_READY : UNWIND_SETUP_NONE,
                              memory_order_release);
        return rc;
    }
    while (wait && (s = atomic_load_explicit(state, memory_order_acquire)) == UNWIND_SETUP_BUSY)
        sched_yield();
    return atomic_load_explicit(state, memory_order_acquire) == UNWIND_SETUP_READY ? 0 : -EAGAIN;
}

int htri_unwind_init(htri_unwind_mode mode)
{
    if (mode != HTRI_UNWIND_DWARF && mode != HTRI_UNWIND_CACHED && mode != HTRI_UNWIND_FP)
        return -EINVAL;
    /* The cached engine falls back to libunwind, so both need libunwind ready. */
    int rc = unwind_once(&g_unwind.dwarf_setup, unwind_dwarf_setup, true);
    if (rc == 0 && mode == HTRI_UNWIND_CACHED)
        rc = unwind_once(&g_unwind.cached_setup, htri_unwind_cached_init, true);
    if (rc == 0)
        atomic_store_explicit(&g_unwind.mode, (int)mode, memory_order_relaxed);
    return rc;
}

int htri_unwind_parse_mode(const char *name, htri_unwind_mode *mode)
{
    static const struct { const char *name; htri_unwind_mode mode; } names[] = {
        { "dwarf", HTRI_UNWIND_DWARF }, { "cached", HTRI_UNWIND_CACHED }, { "fp", HTRI_UNWIND_FP },
    };
    if (!name || !mode)
        return -EINVAL;
    for (size_t i = 0; i < HTRI_ARRAY_LEN(names); i++) {
        if (strcmp(name, names[i].name) == 0) {
            *mode = names[i].mode;
            return 0;
        }
    }
    return -EINVAL;
}

void htri_unwind_modules_changed(void)
{
    htri_unwind_cached_modules_changed();
}

void htri_unwind_after_fork(void)
{
    htri_unwind_cached_after_fork();
}

int htri_unwind_dwarf(uintptr_t ra, uintptr_t *pcs, int max, int skip)
{
    void *raw[HTR_MAX_DEPTH + UNWIND_LEAD_MAX];
    int want = (int)HTRI_ARRAY_LEN(raw);
    if (max + skip < want - UNWIND_LEAD_MAX) /* both are <= INT_MAX / 2 here, see below */
        want = max + skip + UNWIND_LEAD_MAX;
    int n = unw_backtrace(raw, want);
    int first = -1;
    for (int i = 0; i < n && i < UNWIND_LEAD_MAX; i++) {
        if ((uintptr_t)raw[i] == ra) {
            first = i;
            break;
        }
    }
    if (first < 0) /* libunwind could not even get past us: report nothing rather than junk */
        return 0;
    int stored = 0;
    for (int i = first + skip; i < n && stored < max; i++)
        pcs[stored++] = (uintptr_t)raw[i];
    return stored;
}

/* Frame-pointer walk: each frame's rbp points at {saved rbp, return address}. Code built
 * without frame pointers leaves anything in rbp, so every link must move up the stack by a
 * sane, aligned distance and stay inside this thread's stack mapping, or the walk stops. */
static int unwind_fp(const struct htri_unwind_regs *regs, uintptr_t *pcs, int max, int skip)
{
    struct htri_unwind_stack stack;
    int stored = 0, seen = 0;
    uintptr_t pc = regs->pc, prev = regs->sp - 16, bp = regs->bp;
    bool bounded = htri_unwind_stack_bounds(regs->sp, &stack) == 0;
    for (;;) {
        if (pc == 0)
            break;
        if (seen++ >= skip) {
            pcs[stored++] = pc;
            if (stored == max)
                break;
        }
        if (!bounded || bp <= prev || (bp & 7) != 0 || bp - prev > UNWIND_FP_MAX_FRAME ||
            bp > stack.hi - 16)
            break;
        const uintptr_t *frame = (const uintptr_t *)bp;
        pc = frame[1];
        prev = bp;
        bp = frame[0];
    }
    return stored;
}

/* Shared body of the two entry points, inlined so that `fp` (the entry point's own frame,
 * {caller's rbp, return address}) stays live while we walk. */
static inline __attribute__((always_inline)) int
unwind_dispatch(int mode, const uintptr_t *fp, uintptr_t *pcs, int max, int skip)
{
    if (!pcs || max <= 0)
        return 0;
    /* Keeps max + skip + lead inside int; nobody keeps stacks this deep. */
    if (max > HTR_MAX_DEPTH * 64)
        max = HTR_MAX_DEPTH * 64;
    if (skip < 0)
        skip = 0;
    if (skip > HTR_MAX_DEPTH * 64)
        return 0;
    /* The caller's state right after we return: pc = our return address, sp just above it,
     * rbp as the caller left it (our prologue saved it at fp[0]). */
    struct htri_unwind_regs regs = { .pc = fp[1], .sp = (uintptr_t)(fp + 2), .bp = fp[0] };
    switch (mode) {
    case HTRI_UNWIND_FP:
        return unwind_fp(&regs, pcs, max, skip);
    case HTRI_UNWIND_CACHED:
        if (unwind_once(&g_unwind.cached_setup, htri_unwind_cached_init, false) == 0) {
            int n = htri_unwind_cached_walk(&regs, pcs, max, skip);
            if (n >= 0)
                return n;
        }
        break;
    default:
        break;
    }
    (void)unwind_once(&g_unwind.dwarf_setup, unwind_dwarf_setup, false);
    return htri_unwind_dwarf(regs.pc, pcs, max, skip);
}

/* __builtin_frame_address(0) forces a frame pointer in these two functions only, which is
 * what gives us the caller's exact registers without assembly. */
HTRI_NOINLINE int htri_unwind_capture(uintptr_t *pcs, int max, int skip)
{
    int mode = atomic_load_explicit(&g_unwind.mode, memory_order_relaxed);
    return unwind_dispatch(mode, __builtin_frame_address(0), pcs, max, skip);
}

HTRI_NOINLINE int htri_unwind_capture_with(htri_unwind_mode mode, uintptr_t *pcs, int max,
                                           int skip)
{
    return unwind_dispatch((int)mode, __builtin_frame_address(0), pcs, max, skip);
}
