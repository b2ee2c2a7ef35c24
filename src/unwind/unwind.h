/* Private: stack capture for the agent and the debug allocators.
 * Three interchangeable engines behind one call: libunwind (the DWARF default), a cached
 * .eh_frame unwinder (rules per return address computed once), and a frame-pointer walk. */
#ifndef HTR_UNWIND_UNWIND_H
#define HTR_UNWIND_UNWIND_H
#include <stddef.h>
#include <stdint.h>

typedef enum htri_unwind_mode {
    HTRI_UNWIND_DWARF = 0,  /* libunwind unw_backtrace, per-thread cache */
    HTRI_UNWIND_CACHED = 1, /* our cached .eh_frame rules; falls back to DWARF per frame */
    HTRI_UNWIND_FP = 2,     /* frame pointers only (needs -fno-omit-frame-pointer builds) */
} htri_unwind_mode;

/* One-time set-up; safe to call again. Must not allocate through malloc (the agent calls it
 * while bootstrapping). Returns 0 or a negative errno. */
int htri_unwind_init(htri_unwind_mode mode);

/* Parses "dwarf", "cached", "fp" into *mode; returns 0 or -EINVAL. */
int htri_unwind_parse_mode(const char *name, htri_unwind_mode *mode);

/* Fills pcs[0..max) with return addresses, innermost first, starting `skip` frames above
 * the caller of this function (skip = 0: pcs[0] is the return address into the function
 * that called htri_unwind_capture). Returns the number of frames stored (>= 0).
 * Contract for the hook path: no malloc, no locks held across calls, no stdio; safe to call
 * from any thread, concurrently; never crashes on a corrupt stack (returns a short stack). */
int htri_unwind_capture(uintptr_t *pcs, int max, int skip);

/* As htri_unwind_capture, with an explicit engine instead of the one chosen at init (for
 * tests and benchmarks comparing engines; the engine is set up on first use if needed). */
int htri_unwind_capture_with(htri_unwind_mode mode, uintptr_t *pcs, int max, int skip);

/* Tell the unwinder that modules may have been loaded or unloaded (dlopen/dlclose), so any
 * cached per-module lookup is refreshed. Cheap; may be called often. */
void htri_unwind_modules_changed(void);

/* Call in the child right after fork(): a module-list rebuild that another thread of the
 * parent was in the middle of will never finish there, so its claim is dropped (else the
 * child's cached engine would fall back to libunwind for every new return address). */
void htri_unwind_after_fork(void);

#endif
