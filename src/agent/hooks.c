/* The interposed symbols of libheaptrail-preload.so: malloc & co, C++ operator new/delete,
 * anonymous mmap, exec/exit/signal/dlclose. Each hook calls the real function, captures the
 * stack and hands the event to the recording core (agent.c). Bootstrap lives here too. */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "agent/guard.h"
#include "agent/scan.h"
#include "base/common.h"
#include "base/fmt.h"
#include "base/os.h"
#include "unwind/unwind.h"
#include "heaptrail.h"

extern char **environ;

#define HOOKS_ARENA_BYTES (256 * 1024)   /* answers dlsym's own calloc during bootstrap */

enum { HOOKS_NONE = 0, HOOKS_RESOLVING = 1, HOOKS_READY = 2 };

/* C++ operator new variants, in the order of hooks_new_names. */
enum { NEW_N, NEW_A, NEW_N_NT, NEW_A_NT, NEW_N_AL, NEW_A_AL, NEW_N_AL_NT, NEW_A_AL_NT, NEW_COUNT };
/* operator delete variants. */
enum { DEL_N, DEL_A, DEL_N_SZ, DEL_A_SZ, DEL_N_AL, DEL_A_AL, DEL_N_SZ_AL, DEL_A_SZ_AL,
       DEL_N_NT, DEL_A_NT, DEL_N_AL_NT, DEL_A_AL_NT, DEL_COUNT };

static const char *const hooks_new_names[NEW_COUNT] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t",
};
static const char *const hooks_del_names[DEL_COUNT] = {
    "_ZdlPv", "_ZdaPv", "_ZdlPvm", "_ZdaPvm", "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t",
    "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t", "_ZdlPvRKSt9nothrow_t",
    "_ZdaPvRKSt9nothrow_t", "_ZdlPvSt11align_val_tRKSt9nothrow_t",
    "_ZdaPvSt11align_val_tRKSt9nothrow_t",
};

typedef int (*hooks_main_fn)(int, char **, char **);

/* Prototypes of the interposed symbols no system header declares for C. */
void *_Znwm(size_t);
void *_Znam(size_t);
void *_ZnwmRKSt9nothrow_t(size_t, const void *);
void *_ZnamRKSt9nothrow_t(size_t, const void *);
void *_ZnwmSt11align_val_t(size_t, size_t);
void *_ZnamSt11align_val_t(size_t, size_t);
void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t, size_t, const void *);
void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t, size_t, const void *);
void _ZdlPv(void *);
void _ZdaPv(void *);
void _ZdlPvm(void *, size_t);
void _ZdaPvm(void *, size_t);
void _ZdlPvSt11align_val_t(void *, size_t);
void _ZdaPvSt11align_val_t(void *, size_t);
void _ZdlPvmSt11align_val_t(void *, size_t, size_t);
void _ZdaPvmSt11align_val_t(void *, size_t, size_t);
void _ZdlPvRKSt9nothrow_t(void *, const void *);
void _ZdaPvRKSt9nothrow_t(void *, const void *);
void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *, size_t, const void *);
void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *, size_t, const void *);
int __libc_start_main(hooks_main_fn, int, char **, void (*)(void), void (*)(void),
                      void (*)(void), void *);
int __cxa_atexit(void (*)(void *), void *, void *);

static struct {
    _Atomic int state;
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    void *(*mmap64)(void *, size_t, int, int, int, off_t);
    int (*munmap)(void *, size_t);
    void *(*mremap)(void *, size_t, size_t, int, ...);
    int (*dlclose)(void *);
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    void (*exit)(int) __attribute__((noreturn));
    void (*exit_)(int) __attribute__((noreturn));
    void (*exit_upper)(int) __attribute__((noreturn));
    sighandler_t (*signal)(int, sighandler_t);
    int (*sigaction)(int, const struct sigaction *, struct sigaction *);
    int (*libc_start_main)(hooks_main_fn, int, char **, void (*)(void), void (*)(void),
                           void (*)(void), void *);
    void (*libc_freeres)(void);
    void (*cxx_freeres)(void);
    void *new_fn[NEW_COUNT];
    void *del_fn[DEL_COUNT];
    void *(*get_new_handler)(void);
    _Atomic int cxx_resolved;
    int guard;                 /* misuse checks on (fixed at bootstrap): the hooks' one branch */
    volatile int in_freeres;   /* the exit path runs __libc_freeres / __gnu_cxx::__freeres */
    hooks_main_fn real_main;
    size_t arena_used;
    _Alignas(64) uint8_t arena[HOOKS_ARENA_BYTES];
} g_hooks;

static __thread volatile int t_bootstrapping __attribute__((tls_model("initial-exec")));
/* Frame address of the operator new hook running on this thread, 0 if none: the malloc it
 * makes (deeper on the stack) passes through. An exception thrown out of operator new leaves
 * it set; a later hook whose frame is not below it knows the value is stale. */
static __thread volatile uintptr_t t_new_fp __attribute__((tls_model("initial-exec")));

/* ---- bootstrap ---- */

static inline int hooks_in_arena(const void *p)
{
    return (const uint8_t *)p >= g_hooks.arena && (const uint8_t *)p < g_hooks.arena + HOOKS_ARENA_BYTES;
}

/* Bump allocation with a 16-byte size header; never freed. Only dlsym's own needs come here. */
static void *hooks_arena_alloc(size_t size, size_t align)
{
    if (align < 16)
        align = 16;
    size_t used = __atomic_load_n(&g_hooks.arena_used, __ATOMIC_RELAXED);
    for (;;) {
        size_t start = (used + 16 + align - 1) & ~(align - 1);
        size_t end = start + size;
        if (size > HOOKS_ARENA_BYTES || end > HOOKS_ARENA_BYTES)
            return NULL;
        if (__atomic_compare_exchange_n(&g_hooks.arena_used, &used, end, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
            memcpy(g_hooks.arena + start - 16, &size, sizeof size);
            return g_hooks.arena + start;
        }
    }
}

static size_t hooks_arena_size(const void *p)
{
    size_t size;
    memcpy(&size, (const uint8_t *)p - 16, sizeof size);
    return size;
}

static void *hooks_sym(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static void hooks_resolve_cxx(void)
{
    for (int i = 0; i < NEW_COUNT; i++)
        if (!g_hooks.new_fn[i])
            g_hooks.new_fn[i] = hooks_sym(hooks_new_names[i]);
    for (int i = 0; i < DEL_COUNT; i++)
        if (!g_hooks.del_fn[i])
            g_hooks.del_fn[i] = hooks_sym(hooks_del_names[i]);
    if (!g_hooks.cxx_freeres)
        g_hooks.cxx_freeres = (void (*)(void))hooks_sym("_ZN9__gnu_cxx9__freeresEv");
    if (!g_hooks.get_new_handler)
        g_hooks.get_new_handler = (void *(*)(void))hooks_sym("_ZSt15get_new_handlerv");
    if (g_hooks.new_fn[NEW_N])
        __atomic_store_n(&g_hooks.cxx_resolved, 1, __ATOMIC_RELEASE);
}

static void hooks_resolve(void)
{
#define RESOLVE(field, name) g_hooks.field = (__typeof__(g_hooks.field))hooks_sym(name)
    RESOLVE(malloc, "malloc");
    RESOLVE(calloc, "calloc");
    RESOLVE(realloc, "realloc");
    RESOLVE(reallocarray, "reallocarray");
    RESOLVE(free, "free");
    RESOLVE(posix_memalign, "posix_memalign");
    RESOLVE(aligned_alloc, "aligned_alloc");
    RESOLVE(memalign, "memalign");
    RESOLVE(valloc, "valloc");
    RESOLVE(pvalloc, "pvalloc");
    RESOLVE(malloc_usable_size, "malloc_usable_size");
    RESOLVE(mmap, "mmap");
    RESOLVE(mmap64, "mmap64");
    RESOLVE(munmap, "munmap");
    RESOLVE(mremap, "mremap");
    RESOLVE(dlclose, "dlclose");
    RESOLVE(execve, "execve");
    RESOLVE(execvpe, "execvpe");
    RESOLVE(exit, "exit");
    RESOLVE(exit_, "_exit");
    RESOLVE(exit_upper, "_Exit");
    RESOLVE(signal, "signal");
    RESOLVE(sigaction, "sigaction");
    RESOLVE(libc_freeres, "__libc_freeres");
#undef RESOLVE
    hooks_resolve_cxx();
}

/* First call of any hook, on any thread: resolve the real functions (dlsym calls calloc,
 * answered from the arena), then the core's early init. Other threads wait. */
static HTRI_NOINLINE void hooks_bootstrap(void)
{
    int expected = HOOKS_NONE;
    if (__atomic_compare_exchange_n(&g_hooks.state, &expected, HOOKS_RESOLVING, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        t_bootstrapping = 1;
        htri_agent_guard++;
        hooks_resolve();
        t_bootstrapping = 0;
        /* Ready before the core's init: its own mallocs must find the real functions.
         * Until init is done, htri_agent_tracking() says no and hooks pass through. */
        __atomic_store_n(&g_hooks.state, HOOKS_READY, __ATOMIC_RELEASE);
        htri_agent_init_early();
        g_hooks.guard = htri_agent_guard_on();
        htri_agent_guard--;
        return;
    }
    while (__atomic_load_n(&g_hooks.state, __ATOMIC_ACQUIRE) != HOOKS_READY)
        sched_yield();
}

/* 1 if this call must be answered from the bootstrap arena. */
static inline int hooks_enter(void)
{
    if (htri_likely(__atomic_load_n(&g_hooks.state, __ATOMIC_ACQUIRE) == HOOKS_READY))
        return 0;
    if (t_bootstrapping || (htri_agent_guard && !g_hooks.malloc))
        return 1;
    hooks_bootstrap();
    return 0;
}

/* Should this call go straight to the real function, unrecorded? */
static inline __attribute__((always_inline)) int hooks_pass(void)
{
    if (htri_agent_guard)
        return 1;
    uintptr_t fp = t_new_fp;
    if (htri_unlikely(fp != 0)) {
        if ((uintptr_t)__builtin_frame_address(0) < fp)
            return 1;
        t_new_fp = 0;
    }
    return !htri_agent_tracking();
}

/* Stack of the hook's caller: skip 1 drops the return address into the hook itself. Must
 * be expanded inside the exported hook function, hence a macro. */
#define HOOKS_CAPTURE(pcs, n) \
    uintptr_t pcs[HTR_MAX_DEPTH]; \
    int n = htri_unwind_capture(pcs, htri_agent_depth(), 1)


/* ---- misuse-check mode (guard.h; the wiring notes there) ----
 * With g_hooks.guard set, every hook takes these paths instead: the real allocator is asked
 * for room for redzones, freed blocks wait in the quarantine, bad frees free nothing. Every
 * hooks_g_* runs with the reentrancy guard already set by its caller. */

enum { G_PASS = 0, G_TRACK = 1, G_NEW = 2 };

/* The operator new hook running on this thread (t_new_fp is its frame): what the program
 * asked for and its stack, for the guarded allocation its real operator new makes. */
static __thread struct {
    const uintptr_t *pcs;
    int n_pcs;
    uint8_t family;
    uint8_t armed;     /* the next nested allocation is that of the new */
    uint8_t done;      /* it happened, and was recorded by the nested hook */
    size_t size, align;
} t_gnew __attribute__((tls_model("initial-exec")));

/* Allocation hooks: pass (our own calls, not tracking), track, or the allocation of the
 * operator new hook this one runs under. Other allocations below a new (the exception
 * object of bad_alloc) are tracked: their free would otherwise be a bad free. */
static inline __attribute__((always_inline)) int hooks_g_mode(void)
{
    if (htri_agent_guard)
        return G_PASS;
    uintptr_t fp = t_new_fp;
    if (htri_unlikely(fp != 0)) {
        if ((uintptr_t)__builtin_frame_address(0) < fp && t_gnew.armed)
            return G_NEW;
        if ((uintptr_t)__builtin_frame_address(0) >= fp) {
            t_new_fp = 0;
            t_gnew.armed = 0;
        }
    }
    return htri_agent_tracking() ? G_TRACK : G_PASS;
}

/* Release hooks track whenever the core does. */
static inline __attribute__((always_inline)) int hooks_g_release_tracked(void)
{
    return !htri_agent_guard && htri_agent_tracking();
}

/* Fault injection, limit, then the real allocation with room for the redzones. Records the
 * refusals (FAULT, LIMIT, ALLOC_FAILED); the caller records the block (tag in *tag).
 * Returns the user pointer, or NULL with errno ENOMEM. */
static HTRI_NOINLINE void *hooks_g_make(uint8_t fam, size_t size, size_t align, int zero,
                                        const uintptr_t *pcs, int n, uint16_t *tag)
{
    int why = htri_guard_should_fail(size, pcs, n);
    if (htri_unlikely(why)) {
        htri_agent_guard_fault(why, fam, size, pcs, n);
        errno = ENOMEM;
        return NULL;
    }
    if (htri_unlikely(htri_guard_limit_reserve(size) < 0)) {
        htri_agent_guard_limit(fam, size, pcs, n);
        errno = ENOMEM;
        return NULL;
    }
    int fill = htri_guard_options()->fill_alloc;
    void *raw = NULL, *user = NULL;
    *tag = 0;
    if (htri_guard_layout_on()) {
        size_t raw_size, raw_align;
        if (htri_guard_size_for(size, align, &raw_size, &raw_align) == 0)
            raw = raw_align ? g_hooks.memalign(raw_align, raw_size)
                            : zero ? g_hooks.calloc(1, raw_size) : g_hooks.malloc(raw_size);
        if (raw) {
            user = htri_guard_init_block(raw, size, align, zero ? -1 : fill);
            if (zero && raw_align)
                memset(user, 0, size);
            *tag = htri_guard_tag(align);
        }
    } else {
        raw = align > 16 ? g_hooks.memalign(align, size)
                         : zero ? g_hooks.calloc(1, size) : g_hooks.malloc(size);
        user = raw;
        if (raw && !zero && fill >= 0)
            memset(raw, fill, size);
    }
    if (!raw) {
        htri_guard_limit_release(size);
        htri_agent_on_failed(fam, size, pcs, n);
        errno = ENOMEM;
    }
    return user;
}

static HTRI_NOINLINE void *hooks_g_alloc(uint8_t fam, size_t size, size_t align, int zero,
                                         const uintptr_t *pcs, int n)
{
    uint16_t tag;
    void *p = hooks_g_make(fam, size, align, zero, pcs, n, &tag);
    if (p)
        htri_agent_on_alloc_tag(fam, p, size, tag, pcs, n);
    return p;
}

/* The allocation made by the real operator new of the hook this thread runs under: guarded
 * with the program's size, alignment, family and stack. A failure disarms (the bad_alloc
 * that follows allocates too) unless a new_handler will make libstdc++ try again. */
static HTRI_NOINLINE void *hooks_g_new_nested(void)
{
    void *p = hooks_g_alloc(t_gnew.family, t_gnew.size, t_gnew.align, 0, t_gnew.pcs,
                            t_gnew.n_pcs);
    if (p) {
        t_gnew.armed = 0;
        t_gnew.done = 1;
    } else if (!g_hooks.get_new_handler || !g_hooks.get_new_handler()) {
        t_gnew.armed = 0;
    }
    return p;
}

/* Untracked release (our own frees, after the trace ended): a block the guard laid out goes
 * back as its raw pointer, found by the table or, failing that, by its header. */
static HTRI_NOINLINE void hooks_g_free_pass(void *p)
{
    htri_block b;
    void *raw = NULL;
    if (htri_table_remove((uintptr_t)p, &b) == 0)
        raw = htri_guard_raw_of(p, b.tag);
    else if (htri_guard_layout_on())
        raw = htri_guard_raw(p);
    g_hooks.free(raw ? raw : p);
}

/* The stack of the program's release, taken only when something needs it (an error, or the
 * quarantine's "free'd at"). Frames: hooks_g_where <- hooks_g_release (noinline, hooks_g_retire
 * inlined into it) <- the exported hook (which calls it, never tail-calls it) <- the program:
 * three return addresses to skip. */
typedef struct hooks_where {
    uint32_t node;
    int known;
} hooks_where;

static HTRI_NOINLINE uint32_t hooks_g_where(hooks_where *w)
{
    if (!w->known) {
        uintptr_t pcs[HTR_MAX_DEPTH];
        int n = htri_unwind_capture(pcs, htri_agent_depth(), 3);
        w->node = htri_agent_node(pcs, n);
        w->known = 1;
    }
    return w->node;
}

/* A released block that was live: family, redzones, limit, then the quarantine. */
static inline __attribute__((always_inline)) void
hooks_g_retire(const htri_block *b, uint8_t ffam, hooks_where *w, int check_family)
{
    if (check_family && !htri_guard_families_match(b->family, ffam))
        htri_guard_report_mismatch(b, ffam, hooks_g_where(w));
    if ((b->tag & HTRI_GUARD_TAG_ON) && htri_guard_check_block((void *)b->addr, b->size, NULL))
        htri_guard_verify_block((void *)b->addr, b->size, b->node, b->family, hooks_g_where(w),
                                ffam);
    htri_guard_limit_release(b->size);
    htri_guard_qentry q = { b->addr, b->size, b->node, 0, b->family, ffam,
                            (uint16_t)(b->tag & 0xff) };
    if (htri_guard_options()->quarantine_bytes)
        q.free_node = hooks_g_where(w);
    if (htri_guard_quarantine_push(&q))
        g_hooks.free(htri_guard_raw_of((void *)b->addr, b->tag));
    while (htri_guard_quarantine_evict(&q))
        g_hooks.free(htri_guard_qentry_raw(&q));
}

/* free, delete, realloc(p, 0): a pointer that is no live block is reported and not freed
 * (the program goes on, as under memcheck). `w`: the stack if the caller has it, else NULL
 * (then taken here when needed: call it from the exported hook itself). */
static HTRI_NOINLINE void hooks_g_release(uint8_t ffam, void *p, hooks_where *known)
{
    hooks_where local = { 0, 0 }, *w = known ? known : &local;
    htri_block b;
    if (htri_agent_on_free_block(ffam, p, &b) < 0) {
        if (g_hooks.in_freeres) {
            /* libc's own caches, some filled by our calls (the writer thread's TLS) */
            hooks_g_free_pass(p);
            return;
        }
        htri_block live;
        int inside = htri_agent_guard_find_containing((uintptr_t)p, &live);
        htri_guard_report_invalid_free((uintptr_t)p, ffam, hooks_g_where(w), inside ? &live : NULL);
        return;
    }
    hooks_g_retire(&b, ffam, w, 1);
}

static HTRI_NOINLINE void *hooks_g_realloc_pass(void *old, size_t size)
{
    htri_block b;
    int had = htri_table_remove((uintptr_t)old, &b) == 0;
    void *raw = NULL;
    size_t was = 0;
    if (had && (b.tag & HTRI_GUARD_TAG_ON)) {
        raw = htri_guard_raw_of(old, b.tag);
        was = b.size;
    } else if (!had && htri_guard_layout_on() && (raw = htri_guard_raw(old)) != NULL) {
        was = htri_guard_usable_size(old);
    }
    if (!raw) {
        void *p = g_hooks.realloc(old, size);
        if (!p && size && had)
            htri_table_insert(&b);
        return p;
    }
    if (size == 0) {
        g_hooks.free(raw);
        return NULL;
    }
    void *p = g_hooks.malloc(size);
    if (!p) {
        if (had)
            htri_table_insert(&b);
        return NULL;
    }
    memcpy(p, old, was < size ? was : size);
    g_hooks.free(raw);
    return p;
}

/* realloc never calls the real realloc: the old block goes to the quarantine, so a stale
 * pointer to it is caught. A pointer that is no live block is an invalid free; NULL. */
static HTRI_NOINLINE void *hooks_g_realloc(void *old, size_t size, const uintptr_t *pcs, int n)
{
    if (!old)
        return hooks_g_alloc(HTRI_FAM_REALLOC, size, 0, 0, pcs, n);
    hooks_where w = { htri_agent_node(pcs, n), 1 };
    if (size == 0) {
        hooks_g_release(HTRI_FFAM_REALLOC, old, &w);
        return NULL;
    }
    htri_block b;
    if (htri_table_find((uintptr_t)old, &b) < 0) {
        hooks_g_release(HTRI_FFAM_REALLOC, old, &w);
        errno = ENOMEM;
        return NULL;
    }
    if (!htri_guard_families_match(b.family, HTRI_FFAM_REALLOC))
        htri_guard_report_mismatch(&b, HTRI_FFAM_REALLOC, w.node);
    uint16_t tag;
    size_t align = (b.tag & HTRI_GUARD_TAG_ON) ? htri_guard_tag_align(b.tag) : 0;
    void *p = hooks_g_make(HTRI_FAM_REALLOC, size, align, 0, pcs, n, &tag);
    if (!p)
        return NULL;   /* the old block stays the program's */
    memcpy(p, old, b.size < size ? b.size : size);
    htri_block gone;
    if (htri_agent_on_free_block(HTRI_FFAM_REALLOC, old, &gone) == 0)
        hooks_g_retire(&gone, HTRI_FFAM_REALLOC, &w, 0);
    htri_agent_on_alloc_tag(HTRI_FAM_REALLOC, p, size, tag, pcs, n);
    return p;
}

static HTRI_NOINLINE size_t hooks_g_usable_size(void *p)
{
    htri_block b;
    if (htri_table_find((uintptr_t)p, &b) == 0) {
        if (b.tag & HTRI_GUARD_TAG_ON)
            return b.size;
    } else if (htri_guard_layout_on() && htri_guard_raw(p)) {
        return htri_guard_usable_size(p);
    }
    return g_hooks.malloc_usable_size(p);
}

/* The exit path, before the leak scan and END: every quarantined block's fill is checked as
 * it is freed, every live block's redzones, then the ERROR_SUMMARY record. */
static void hooks_g_at_exit(void)
{
    htri_guard_qentry q;
    while (htri_guard_quarantine_pop(&q))
        g_hooks.free(htri_guard_qentry_raw(&q));
    htri_agent_guard_verify_live(0);
    htri_agent_guard_summary();
}

/* Body of every malloc-shaped hook in misuse-check mode; `real` is the pass-through call. */
#define HOOKS_G_ALLOC(fam, size, align, zero, real) \
    do { \
        int m_ = hooks_g_mode(); \
        if (m_ == G_PASS) \
            return real; \
        htri_agent_guard++; \
        void *p_; \
        if (m_ == G_NEW) { \
            p_ = hooks_g_new_nested(); \
        } else { \
            HOOKS_CAPTURE(pcs_, n_); \
            p_ = hooks_g_alloc(fam, size, align, zero, pcs_, n_); \
        } \
        htri_agent_guard--; \
        return p_; \
    } while (0)

/* ---- malloc family ---- */

HTRI_EXPORT void *malloc(size_t size)
{
    if (hooks_enter())
        return hooks_arena_alloc(size, 16);
    if (htri_unlikely(g_hooks.guard))
        HOOKS_G_ALLOC(HTRI_FAM_MALLOC, size, 0, 0, g_hooks.malloc(size));
    if (hooks_pass())
        return g_hooks.malloc(size);
    htri_agent_guard++;
    void *p = g_hooks.malloc(size);
    HOOKS_CAPTURE(pcs, n);
    if (p)
        htri_agent_on_alloc(HTRI_FAM_MALLOC, p, size, pcs, n);
    else
        htri_agent_on_failed(HTRI_FAM_MALLOC, size, pcs, n);
    htri_agent_guard--;
    return p;
}

HTRI_EXPORT void *calloc(size_t count, size_t size)
{
    if (hooks_enter()) {
        size_t total;
        if (htri_mul_overflow(count, size, &total))
            return NULL;
        return hooks_arena_alloc(total, 16);  /* static memory, already zero */
    }
    if (htri_unlikely(g_hooks.guard)) {
        size_t total;
        if (htri_mul_overflow(count, size, &total))
            return g_hooks.calloc(count, size);   /* its ENOMEM */
        HOOKS_G_ALLOC(HTRI_FAM_CALLOC, total, 0, 1, g_hooks.calloc(count, size));
    }
    if (hooks_pass())
        return g_hooks.calloc(count, size);
    htri_agent_guard++;
    void *p = g_hooks.calloc(count, size);
    size_t total = 0;
    int ovf = htri_mul_overflow(count, size, &total);
    HOOKS_CAPTURE(pcs, n);
    if (p)
        htri_agent_on_alloc(HTRI_FAM_CALLOC, p, total, pcs, n);
    else
        htri_agent_on_failed(HTRI_FAM_CALLOC, ovf ? SIZE_MAX : total, pcs, n);
    htri_agent_guard--;
    return p;
}

/* realloc and reallocarray in misuse-check mode. */
#define HOOKS_G_REALLOC(old, size) \
    do { \
        int tracked_ = hooks_g_release_tracked(); \
        void *p_; \
        htri_agent_guard++; \
        if (!tracked_) { \
            p_ = (old) ? hooks_g_realloc_pass(old, size) : g_hooks.realloc(NULL, size); \
        } else { \
            HOOKS_CAPTURE(pcs_, n_); \
            p_ = hooks_g_realloc(old, size, pcs_, n_); \
        } \
        htri_agent_guard--; \
        return p_; \
    } while (0)

/* realloc and reallocarray share this; `size` is the new size (SIZE_MAX on overflow). */
static inline __attribute__((always_inline)) void *
hooks_realloc_record(void *old, void *p, size_t size, int had, const htri_block *old_blk,
                     const uintptr_t *pcs, int n)
{
    if (!p && size != 0 && old) {
        /* Failed: the old block is still the program's. */
        if (had)
            htri_table_insert(old_blk);
        htri_agent_on_failed(HTRI_FAM_REALLOC, size, pcs, n);
    } else if (!p && !old) {
        htri_agent_on_failed(HTRI_FAM_REALLOC, size, pcs, n);
    } else {
        htri_agent_on_realloc(had ? old_blk : NULL, p, size, pcs, n);
    }
    return p;
}

HTRI_EXPORT void *realloc(void *old, size_t size)
{
    if (hooks_enter() || (old && hooks_in_arena(old))) {
        if (old && hooks_in_arena(old)) {
            size_t was = hooks_arena_size(old);
            void *p = malloc(size ? size : 1);
            if (p)
                memcpy(p, old, was < size ? was : size);
            return p;
        }
        return hooks_arena_alloc(size, 16);
    }
    if (htri_unlikely(g_hooks.guard))
        HOOKS_G_REALLOC(old, size);
    if (hooks_pass())
        return g_hooks.realloc(old, size);
    htri_agent_guard++;
    htri_block old_blk;
    /* Out of the table before the real call: once realloc returns, another thread may be
     * handed the old address, and its insert must not be undone by our remove. */
    int had = old && htri_table_remove((uintptr_t)old, &old_blk) == 0;
    void *p = g_hooks.realloc(old, size);
    HOOKS_CAPTURE(pcs, n);
    hooks_realloc_record(old, p, size, had, &old_blk, pcs, n);
    htri_agent_guard--;
    return p;
}

HTRI_EXPORT void *reallocarray(void *old, size_t count, size_t elem)
{
    size_t size;
    if (htri_mul_overflow(count, elem, &size)) {
        errno = ENOMEM;
        return NULL;
    }
    if (hooks_enter() || (old && hooks_in_arena(old)) || !g_hooks.reallocarray)
        return realloc(old, size);
    if (htri_unlikely(g_hooks.guard))
        HOOKS_G_REALLOC(old, size);
    if (hooks_pass())
        return g_hooks.reallocarray(old, count, elem);
    htri_agent_guard++;
    htri_block old_blk;
    int had = old && htri_table_remove((uintptr_t)old, &old_blk) == 0;
    void *p = g_hooks.reallocarray(old, count, elem);
    HOOKS_CAPTURE(pcs, n);
    hooks_realloc_record(old, p, size, had, &old_blk, pcs, n);
    htri_agent_guard--;
    return p;
}

HTRI_EXPORT void free(void *p)
{
    if (!p || hooks_in_arena(p))
        return;
    if (hooks_enter())
        return;  /* cannot happen for a real pointer: nothing real was handed out yet */
    if (htri_unlikely(g_hooks.guard)) {
        int tracked = hooks_g_release_tracked();
        htri_agent_guard++;
        if (tracked)
            hooks_g_release(HTRI_FFAM_FREE, p, NULL);
        else
            hooks_g_free_pass(p);
        htri_agent_guard--;
        return;
    }
    if (hooks_pass()) {
        g_hooks.free(p);
        return;
    }
    htri_agent_guard++;
    htri_agent_on_free(HTRI_FFAM_FREE, p);
    g_hooks.free(p);
    htri_agent_guard--;
}

/* memalign family: `kind` picks the real function. */
enum { MA_POSIX, MA_ALIGNED, MA_MEMALIGN, MA_VALLOC, MA_PVALLOC };

static inline __attribute__((always_inline)) void *hooks_memalign_real(int kind, size_t align,
                                                                       size_t size, int *rc)
{
    void *p = NULL;
    switch (kind) {
    case MA_POSIX: *rc = g_hooks.posix_memalign(&p, align, size); break;
    case MA_ALIGNED: p = g_hooks.aligned_alloc(align, size); break;
    case MA_MEMALIGN: p = g_hooks.memalign(align, size); break;
    case MA_VALLOC: p = g_hooks.valloc(size); break;
    default: p = g_hooks.pvalloc(size); break;
    }
    return p;
}

/* Misuse-check mode: the alignment and size the real function would use (power of two;
 * pvalloc rounds the size to pages). 0 with *rc = EINVAL for posix_memalign's bad ones. */
static inline int hooks_g_align(int kind, size_t align, size_t *out_align, size_t *size, int *rc)
{
    if (kind >= MA_VALLOC) {
        *out_align = 4096;
        if (kind == MA_PVALLOC)
            *size = *size ? (*size + 4095) & ~(size_t)4095 : 4096;
        return 1;
    }
    if (kind == MA_POSIX && (align < sizeof(void *) || (align & (align - 1)))) {
        *rc = EINVAL;
        return 0;
    }
    if (align > ((size_t)1 << 40)) {
        errno = EINVAL;
        *rc = EINVAL;
        return 0;
    }
    size_t a = 1;
    while (a < align)
        a <<= 1;
    *out_align = a;
    return 1;
}

#define HOOKS_MEMALIGN_BODY(kind, align, size, rcp) \
    do { \
        if (hooks_enter()) { \
            void *a_ = hooks_arena_alloc(size, (kind) >= MA_VALLOC ? 4096 : (align)); \
            *(rcp) = a_ ? 0 : ENOMEM; \
            return_value = a_; \
            break; \
        } \
        if (htri_unlikely(g_hooks.guard)) { \
            size_t ga_, gs_ = (size); \
            if (!hooks_g_align(kind, align, &ga_, &gs_, rcp)) { \
                return_value = NULL; \
                break; \
            } \
            int m_ = hooks_g_mode(); \
            if (m_ == G_PASS) { \
                return_value = hooks_memalign_real(kind, align, size, rcp); \
                break; \
            } \
            htri_agent_guard++; \
            if (m_ == G_NEW) { \
                return_value = hooks_g_new_nested(); \
            } else { \
                HOOKS_CAPTURE(gpcs_, gn_); \
                return_value = hooks_g_alloc(HTRI_FAM_MEMALIGN, gs_, ga_, 0, gpcs_, gn_); \
            } \
            htri_agent_guard--; \
            if (!return_value) \
                *(rcp) = ENOMEM; \
            break; \
        } \
        if (hooks_pass()) { \
            return_value = hooks_memalign_real(kind, align, size, rcp); \
            break; \
        } \
        htri_agent_guard++; \
        void *p_ = hooks_memalign_real(kind, align, size, rcp); \
        HOOKS_CAPTURE(pcs_, n_); \
        if (p_) \
            htri_agent_on_alloc(HTRI_FAM_MEMALIGN, p_, size, pcs_, n_); \
        else \
            htri_agent_on_failed(HTRI_FAM_MEMALIGN, size, pcs_, n_); \
        htri_agent_guard--; \
        return_value = p_; \
    } while (0)

HTRI_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    int rc = 0;
    void *return_value;
    HOOKS_MEMALIGN_BODY(MA_POSIX, align, size, &rc);
    if (rc == 0)
        *out = return_value;
    return rc;
}

HTRI_EXPORT void *aligned_alloc(size_t align, size_t size)
{
    int rc = 0;
    void *return_value;
    HOOKS_MEMALIGN_BODY(MA_ALIGNED, align, size, &rc);
    return return_value;
}

HTRI_EXPORT void *memalign(size_t align, size_t size)
{
    int rc = 0;
    void *return_value;
    HOOKS_MEMALIGN_BODY(MA_MEMALIGN, align, size, &rc);
    return return_value;
}

HTRI_EXPORT void *valloc(size_t size)
{
    int rc = 0;
    void *return_value;
    HOOKS_MEMALIGN_BODY(MA_VALLOC, 4096, size, &rc);
    return return_value;
}

HTRI_EXPORT void *pvalloc(size_t size)
{
    int rc = 0;
    void *return_value;
    HOOKS_MEMALIGN_BODY(MA_PVALLOC, 4096, size, &rc);
    return return_value;
}

HTRI_EXPORT size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (hooks_in_arena(p))
        return hooks_arena_size(p);
    if (hooks_enter())
        return 0;
    if (htri_unlikely(g_hooks.guard)) {
        htri_agent_guard++;
        size_t n = hooks_g_usable_size(p);
        htri_agent_guard--;
        return n;
    }
    return g_hooks.malloc_usable_size(p);
}

/* ---- C++ operator new / delete ---- */

typedef void *(*new_plain_fn)(size_t);
typedef void *(*new_nt_fn)(size_t, const void *);
typedef void *(*new_al_fn)(size_t, size_t);
typedef void *(*new_al_nt_fn)(size_t, size_t, const void *);

static void *hooks_new_fallback(size_t size, size_t align, int nothrow)
{
    void *p = align > 16 ? g_hooks.aligned_alloc(align, (size + align - 1) & ~(align - 1))
                         : g_hooks.malloc(size ? size : 1);
    if (!p && !nothrow) {
        htri_fdprintf(2, "heaptrail: operator new without a C++ runtime ran out of memory\n");
        abort();
    }
    return p;
}

static inline __attribute__((always_inline)) void *hooks_new_real(int v, size_t size,
                                                                  size_t align, const void *nt)
{
    if (htri_unlikely(!__atomic_load_n(&g_hooks.cxx_resolved, __ATOMIC_ACQUIRE)))
        hooks_resolve_cxx();  /* libstdc++ came later, with dlopen */
    void *fn = g_hooks.new_fn[v];
    if (htri_unlikely(!fn))
        return hooks_new_fallback(size, align, v == NEW_N_NT || v == NEW_A_NT ||
                                               v == NEW_N_AL_NT || v == NEW_A_AL_NT);
    switch (v) {
    case NEW_N: case NEW_A: return ((new_plain_fn)fn)(size);
    case NEW_N_NT: case NEW_A_NT: return ((new_nt_fn)fn)(size, nt);
    case NEW_N_AL: case NEW_A_AL: return ((new_al_fn)fn)(size, align);
    default: return ((new_al_nt_fn)fn)(size, align, nt);
    }
}

/* Misuse-check mode: the real operator new runs armed (t_gnew), so the malloc it makes is the
 * guarded allocation of the program's request; libstdc++ keeps its new_handler loop and
 * bad_alloc. A block it got some other way (no libstdc++) is recorded as it is. */
static HTRI_NOINLINE void *hooks_g_new(int v, uint8_t fam, size_t size, size_t align,
                                       const void *nt, const uintptr_t *pcs, int n, uintptr_t fp)
{
    uintptr_t saved_fp = t_new_fp;
    __typeof__(t_gnew) saved = t_gnew;
    t_gnew.pcs = pcs;
    t_gnew.n_pcs = n;
    t_gnew.family = fam;
    t_gnew.size = size;
    t_gnew.align = align;
    t_gnew.done = 0;
    t_gnew.armed = 1;
    t_new_fp = fp;
    void *p = hooks_new_real(v, size, align, nt);
    int done = t_gnew.done;
    t_gnew = saved;
    t_new_fp = saved_fp;
    if (p && !done) {
        htri_agent_guard++;
        htri_agent_on_alloc_tag(fam, p, size, 0, pcs, n);
        htri_agent_guard--;
    }
    return p;
}

/* Body of every operator new: the real one (libstdc++'s new_handler loop and bad_alloc
 * included) runs with t_new_fp set, so its malloc passes through. */
#define HOOKS_NEW_BODY(v, fam, size, align, nt) \
    do { \
        if (hooks_enter()) \
            return hooks_arena_alloc(size, (align) > 16 ? (align) : 16); \
        if (hooks_pass()) \
            return hooks_new_real(v, size, align, nt); \
        if (htri_unlikely(g_hooks.guard)) { \
            htri_agent_guard++; \
            HOOKS_CAPTURE(gpcs_, gn_); \
            htri_agent_guard--; \
            return hooks_g_new(v, fam, size, align, nt, gpcs_, gn_, \
                               (uintptr_t)__builtin_frame_address(0)); \
        } \
        uintptr_t saved_ = t_new_fp; \
        t_new_fp = (uintptr_t)__builtin_frame_address(0); \
        void *p_ = hooks_new_real(v, size, align, nt); \
        t_new_fp = saved_; \
        htri_agent_guard++; \
        HOOKS_CAPTURE(pcs_, n_); \
        if (p_) \
            htri_agent_on_alloc(fam, p_, size, pcs_, n_); \
        else \
            htri_agent_on_failed(fam, size, pcs_, n_); \
        htri_agent_guard--; \
        return p_; \
    } while (0)

HTRI_EXPORT void *_Znwm(size_t size) { HOOKS_NEW_BODY(NEW_N, HTRI_FAM_NEW, size, 0, NULL); }
HTRI_EXPORT void *_Znam(size_t size) { HOOKS_NEW_BODY(NEW_A, HTRI_FAM_NEW_ARRAY, size, 0, NULL); }
HTRI_EXPORT void *_ZnwmRKSt9nothrow_t(size_t size, const void *nt)
{
    HOOKS_NEW_BODY(NEW_N_NT, HTRI_FAM_NEW, size, 0, nt);
}
HTRI_EXPORT void *_ZnamRKSt9nothrow_t(size_t size, const void *nt)
{
    HOOKS_NEW_BODY(NEW_A_NT, HTRI_FAM_NEW_ARRAY, size, 0, nt);
}
HTRI_EXPORT void *_ZnwmSt11align_val_t(size_t size, size_t align)
{
    HOOKS_NEW_BODY(NEW_N_AL, HTRI_FAM_NEW, size, align, NULL);
}
HTRI_EXPORT void *_ZnamSt11align_val_t(size_t size, size_t align)
{
    HOOKS_NEW_BODY(NEW_A_AL, HTRI_FAM_NEW_ARRAY, size, align, NULL);
}
HTRI_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *nt)
{
    HOOKS_NEW_BODY(NEW_N_AL_NT, HTRI_FAM_NEW, size, align, nt);
}
HTRI_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, size_t align, const void *nt)
{
    HOOKS_NEW_BODY(NEW_A_AL_NT, HTRI_FAM_NEW_ARRAY, size, align, nt);
}

typedef void (*del_plain_fn)(void *);
typedef void (*del_2_fn)(void *, size_t);        /* sized, aligned, or nothrow (pointer) */
typedef void (*del_3_fn)(void *, size_t, size_t);

/* Every operator delete: record, then the next definition (libstdc++'s, which frees). */
static inline __attribute__((always_inline)) void hooks_delete(int v, uint8_t ffam, void *p,
                                                                size_t a1, size_t a2)
{
    if (!p || hooks_in_arena(p))
        return;
    if (hooks_enter())
        return;
    if (htri_unlikely(g_hooks.guard)) {
        /* not libstdc++'s delete: it would free the user pointer, not the raw one */
        int tracked = hooks_g_release_tracked();
        htri_agent_guard++;
        if (tracked)
            hooks_g_release(ffam, p, NULL);
        else
            hooks_g_free_pass(p);
        htri_agent_guard--;
        return;
    }
    int pass = hooks_pass();
    if (!pass) {
        htri_agent_guard++;
        htri_agent_on_free(ffam, p);
    }
    if (htri_unlikely(!__atomic_load_n(&g_hooks.cxx_resolved, __ATOMIC_ACQUIRE)))
        hooks_resolve_cxx();
    void *fn = g_hooks.del_fn[v];
    if (!fn) {
        g_hooks.free(p);
    } else {
        switch (v) {
        case DEL_N: case DEL_A: ((del_plain_fn)fn)(p); break;
        case DEL_N_SZ_AL: case DEL_A_SZ_AL: case DEL_N_AL_NT: case DEL_A_AL_NT:
            ((del_3_fn)fn)(p, a1, a2);
            break;
        default: ((del_2_fn)fn)(p, a1); break;
        }
    }
    if (!pass)
        htri_agent_guard--;
}

HTRI_EXPORT void _ZdlPv(void *p) { hooks_delete(DEL_N, HTRI_FFAM_DELETE, p, 0, 0); }
HTRI_EXPORT void _ZdaPv(void *p) { hooks_delete(DEL_A, HTRI_FFAM_DELETE_ARRAY, p, 0, 0); }
HTRI_EXPORT void _ZdlPvm(void *p, size_t s) { hooks_delete(DEL_N_SZ, HTRI_FFAM_DELETE, p, s, 0); }
HTRI_EXPORT void _ZdaPvm(void *p, size_t s)
{
    hooks_delete(DEL_A_SZ, HTRI_FFAM_DELETE_ARRAY, p, s, 0);
}
HTRI_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t al)
{
    hooks_delete(DEL_N_AL, HTRI_FFAM_DELETE, p, al, 0);
}
HTRI_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t al)
{
    hooks_delete(DEL_A_AL, HTRI_FFAM_DELETE_ARRAY, p, al, 0);
}
HTRI_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t s, size_t al)
{
    hooks_delete(DEL_N_SZ_AL, HTRI_FFAM_DELETE, p, s, al);
}
HTRI_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t s, size_t al)
{
    hooks_delete(DEL_A_SZ_AL, HTRI_FFAM_DELETE_ARRAY, p, s, al);
}
HTRI_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *nt)
{
    hooks_delete(DEL_N_NT, HTRI_FFAM_DELETE, p, (size_t)nt, 0);
}
HTRI_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *nt)
{
    hooks_delete(DEL_A_NT, HTRI_FFAM_DELETE_ARRAY, p, (size_t)nt, 0);
}
HTRI_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt)
{
    hooks_delete(DEL_N_AL_NT, HTRI_FFAM_DELETE, p, al, (size_t)nt);
}
HTRI_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t al, const void *nt)
{
    hooks_delete(DEL_A_AL_NT, HTRI_FFAM_DELETE_ARRAY, p, al, (size_t)nt);
}

/* ---- anonymous mappings ---- */

static inline __attribute__((always_inline)) void *hooks_mmap_common(void *(*real)(void *, size_t, int, int, int, off_t),
                                                                     void *addr, size_t len, int prot,
                                                                     int flags, int fd, off_t off)
{
    if (hooks_enter() || !real)
        return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    if (hooks_pass() || !(flags & MAP_ANONYMOUS))
        return real(addr, len, prot, flags, fd, off);
    htri_agent_guard++;
    void *p = real(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED) {
        HOOKS_CAPTURE(pcs, n);
        htri_agent_on_mmap(p, len, pcs, n);
    }
    htri_agent_guard--;
    return p;
}

HTRI_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return hooks_mmap_common(g_hooks.mmap, addr, len, prot, flags, fd, off);
}

HTRI_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return hooks_mmap_common(g_hooks.mmap64, addr, len, prot, flags, fd, off);
}

HTRI_EXPORT int munmap(void *addr, size_t len)
{
    if (hooks_enter() || !g_hooks.munmap)
        return (int)syscall(SYS_munmap, addr, len);
    if (hooks_pass())
        return g_hooks.munmap(addr, len);
    htri_agent_guard++;
    int rc = g_hooks.munmap(addr, len);
    if (rc == 0)
        htri_agent_on_munmap(addr, len);
    htri_agent_guard--;
    return rc;
}

HTRI_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
    void *new_addr = NULL;
    if (flags & MREMAP_FIXED) {
        va_list ap;
        va_start(ap, flags);
        new_addr = va_arg(ap, void *);
        va_end(ap);
    }
    if (hooks_enter() || !g_hooks.mremap)
        return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
    if (hooks_pass())
        return g_hooks.mremap(old, old_len, new_len, flags, new_addr);
    htri_agent_guard++;
    void *p = g_hooks.mremap(old, old_len, new_len, flags, new_addr);
    if (p != MAP_FAILED) {
        HOOKS_CAPTURE(pcs, n);
        htri_agent_on_munmap(old, old_len);
        htri_agent_on_mmap(p, new_len, pcs, n);
    }
    htri_agent_guard--;
    return p;
}

/* ---- dlclose ---- */

HTRI_EXPORT int dlclose(void *handle)
{
    if (hooks_enter() || !g_hooks.dlclose)
        return -1;
    if (!htri_agent_guard) {
        htri_agent_guard++;
        htri_agent_before_dlclose();
        htri_agent_guard--;
    }
    int rc = g_hooks.dlclose(handle);
    if (rc == 0)
        htri_agent_modules_changed();
    return rc;
}

/* ---- exec ---- */

/* With trace_children, the new image must not take our `out` (it keeps our pid): hand it
 * an environment whose HEAPTRAIL_OPTIONS ends in main_pid=-1. Our own pages; NULL if
 * nothing needs changing. */
static char **hooks_exec_env(char *const envp[], size_t *bytes)
{
    *bytes = 0;
    if (!htri_agent_trace_children() || !envp)
        return NULL;
    size_t n = 0;
    while (envp[n])
        n++;
    size_t sz = (n + 2) * sizeof(char *);
    char **env = htri_os_pages_alloc(sz);
    if (!env)
        return NULL;
    int replaced = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(envp[i], "HEAPTRAIL_OPTIONS=", 18) == 0) {
            env[i] = (char *)htri_agent_child_options_env();
            replaced = 1;
        } else {
            env[i] = envp[i];
        }
    }
    env[n] = replaced ? NULL : (char *)htri_agent_child_options_env();
    env[n + 1] = NULL;
    *bytes = sz;
    return env;
}

static int hooks_exec(int path_search, const char *file, char *const argv[], char *const envp[])
{
    if (hooks_enter())
        return -1;
    int (*real)(const char *, char *const[], char *const[]) =
        path_search ? g_hooks.execvpe : g_hooks.execve;
    if (htri_agent_guard)
        return real(file, argv, envp);
    htri_agent_guard++;
    size_t env_bytes;
    char **env = hooks_exec_env(envp, &env_bytes);
    htri_agent_before_exec();
    htri_agent_guard--;
    int rc = real(file, argv, env ? env : envp);
    int saved = errno;
    htri_agent_guard++;
    htri_agent_exec_failed();
    if (env)
        htri_os_pages_free(env, env_bytes);
    htri_agent_guard--;
    errno = saved;
    return rc;
}

HTRI_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    return hooks_exec(0, path, argv, envp);
}
HTRI_EXPORT int execv(const char *path, char *const argv[])
{
    return hooks_exec(0, path, argv, environ);
}
HTRI_EXPORT int execvp(const char *file, char *const argv[])
{
    return hooks_exec(1, file, argv, environ);
}
HTRI_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    return hooks_exec(1, file, argv, envp);
}

/* execl*: collect the variadic arguments into an argv on the stack (no allocation). */
#define HOOKS_EXECL_ARGV(first, last_named, argv_name, extra_envp) \
    size_t argc_ = 1; \
    va_list ap_; \
    va_start(ap_, last_named); \
    while (va_arg(ap_, const char *)) \
        argc_++; \
    va_end(ap_); \
    const char *argv_name[argc_ + 1]; \
    argv_name[0] = first; \
    va_start(ap_, last_named); \
    for (size_t i_ = 1; i_ <= argc_; i_++) \
        argv_name[i_] = va_arg(ap_, const char *); \
    extra_envp; \
    va_end(ap_)

HTRI_EXPORT int execl(const char *path, const char *arg, ...)
{
    HOOKS_EXECL_ARGV(arg, arg, argv, (void)0);
    return hooks_exec(0, path, (char *const *)argv, environ);
}
HTRI_EXPORT int execlp(const char *file, const char *arg, ...)
{
    HOOKS_EXECL_ARGV(arg, arg, argv, (void)0);
    return hooks_exec(1, file, (char *const *)argv, environ);
}
HTRI_EXPORT int execle(const char *path, const char *arg, ...)
{
    char *const *envp;
    HOOKS_EXECL_ARGV(arg, arg, argv, envp = va_arg(ap_, char *const *));
    return hooks_exec(0, path, (char *const *)argv, envp);
}

/* ---- exit ---- */

/* Heap verification and the leak check, as the last thing before the trace ends: after every
 * exit handler on a normal exit, and in _exit()/_Exit(), where memcheck checks too. */
static void hooks_final_checks(void)
{
    if (g_hooks.guard && htri_agent_tracking())
        hooks_g_at_exit();
    if (htri_scan_at_exit && htri_agent_tracking() && htri_agent_leak_check())
        htri_scan_at_exit();
}

/* _exit()/_Exit() skip the exit handlers, so the program's caches stay (no freeres, as the
 * program chose); a vfork child is not our process and leaves everything to its parent. */
static void hooks_quick_exit(int status)
{
    if (!htri_agent_own_process())
        return;
    htri_agent_guard++;
    htri_agent_note_exit_status(status);
    htri_agent_stop_writer();
    hooks_final_checks();
    htri_agent_finish(HTRI_END_EXIT, status);
}

HTRI_EXPORT void exit(int status)
{
    if (hooks_enter())
        syscall(SYS_exit_group, status);
    /* the callers of exit() are live frames for the leak check, as memcheck sees them */
    htri_scan_note_exit_frame((uintptr_t)__builtin_frame_address(0));
    htri_agent_note_exit_status(status);
    g_hooks.exit(status);
}

HTRI_EXPORT void _exit(int status)
{
    if (hooks_enter() || !g_hooks.exit_)
        syscall(SYS_exit_group, status);
    htri_scan_note_exit_frame((uintptr_t)__builtin_frame_address(0));
    hooks_quick_exit(status);
    g_hooks.exit_(status);
}

HTRI_EXPORT void _Exit(int status)
{
    if (hooks_enter() || !g_hooks.exit_upper)
        syscall(SYS_exit_group, status);
    htri_scan_note_exit_frame((uintptr_t)__builtin_frame_address(0));
    hooks_quick_exit(status);
    g_hooks.exit_upper(status);
}

/* main's return value is the exit status when the program never calls exit() itself. */
static int hooks_main(int argc, char **argv, char **envp)
{
    int rc = g_hooks.real_main(argc, argv, envp);
    /* main's frame is dead now: the exit check scans this stack from here up */
    htri_scan_note_exit_frame((uintptr_t)__builtin_frame_address(0));
    htri_agent_note_exit_status(rc);
    return rc;
}

HTRI_EXPORT int __libc_start_main(hooks_main_fn main_fn, int argc, char **argv,
                                  void (*init)(void), void (*fini)(void),
                                  void (*rtld_fini)(void), void *stack_end)
{
    hooks_enter();
    if (!g_hooks.libc_start_main)
        g_hooks.libc_start_main = (__typeof__(g_hooks.libc_start_main))hooks_sym("__libc_start_main");
    g_hooks.real_main = main_fn;
    return g_hooks.libc_start_main(hooks_main, argc, argv, init, fini, rtld_fini, stack_end);
}

/* The final work, as late as possible: glibc runs an exit handler registered while the
 * handlers run (here: from our destructor inside _dl_fini) after the ones already done,
 * so frees made by every other library's destructor are seen. */
static void hooks_at_exit(void)
{
    htri_agent_guard++;
    htri_agent_stop_writer();
    htri_agent_guard--;
    if (htri_agent_freeres() && htri_agent_tracking()) {
        /* As memcheck does: free libc's and libstdc++'s own caches, recorded. */
        g_hooks.in_freeres = 1;
        if (g_hooks.cxx_freeres)
            g_hooks.cxx_freeres();
        if (g_hooks.libc_freeres)
            g_hooks.libc_freeres();
        g_hooks.in_freeres = 0;
    }
    htri_agent_guard++;
    hooks_final_checks();
    htri_agent_finish(HTRI_END_EXIT, 0);
    htri_agent_guard--;
}

__attribute__((constructor)) static void hooks_init(void)
{
    hooks_enter();
    htri_agent_guard++;
    htri_agent_init_late();
    htri_agent_guard--;
}

static void hooks_at_exit_cxa(void *arg)
{
    (void)arg;
    hooks_at_exit();
}

/* Registered with no DSO handle: atexit() from a library would tie the handler to our
 * __dso_handle, and __cxa_finalize (our own .fini_array, right after this function) would
 * run it at once, before the destructors of the libraries finalized after us. */
__attribute__((destructor)) static void hooks_fini(void)
{
    if (__cxa_atexit(hooks_at_exit_cxa, NULL, NULL) != 0)
        hooks_at_exit();
}

/* ---- signals: the program's wishes win over our fatal-signal handlers ---- */

HTRI_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    if (hooks_enter() || !g_hooks.signal)
        return SIG_ERR;
    if (htri_agent_guard)
        return g_hooks.signal(sig, handler);
    int ours = htri_agent_signal_is_ours(sig);
    sighandler_t old = g_hooks.signal(sig, handler);
    if (ours && old != SIG_ERR) {
        htri_agent_signal_taken(sig);
        old = SIG_DFL;
    }
    return old;
}

HTRI_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (hooks_enter() || !g_hooks.sigaction)
        return (int)syscall(SYS_rt_sigaction, sig, act, old, 8);
    if (htri_agent_guard)
        return g_hooks.sigaction(sig, act, old);
    int ours = htri_agent_signal_is_ours(sig);
    int rc = g_hooks.sigaction(sig, act, old);
    if (rc == 0 && ours) {
        if (old) {
            old->sa_handler = SIG_DFL;
            old->sa_flags = 0;
        }
        if (act)
            htri_agent_signal_taken(sig);
    }
    return rc;
}

/* ---- public agent control ---- */

HTRI_EXPORT size_t heaptrail_agent_live_bytes(void)
{
    return htri_agent_active() ? (size_t)htri_table_bytes() : 0;
}

HTRI_EXPORT int heaptrail_agent_active(void)
{
    return htri_agent_active();
}

/* htr_leak_check_now() of libheaptrail.a finds this with dlsym (include/heaptrail.h). */
HTRI_EXPORT int heaptrail_agent_leak_check_now(void)
{
    if (hooks_enter() || !htri_agent_active())
        return -EIO;
    if (htri_agent_guard)
        return -EBUSY;   /* from inside our own code (a hook): never with our locks held */
    htri_agent_guard++;
    int rc = htri_scan_process(HTRI_LEAK_ON_DEMAND, 0, NULL);
    htri_agent_guard--;
    return rc;
}

/* htr_check_heap(): redzones of every live block and the fill of every quarantined one. */
HTRI_EXPORT int heaptrail_agent_check_heap(void)
{
    if (hooks_enter() || !htri_agent_active())
        return -EIO;
    if (!g_hooks.guard)
        return -ENOTSUP;
    if (htri_agent_guard)
        return -EBUSY;
    htri_agent_guard++;
    HOOKS_CAPTURE(pcs, n);
    int live = htri_agent_guard_verify_live(htri_agent_node(pcs, n));
    int held = htri_guard_quarantine_verify_all();
    htri_agent_guard--;
    return live < 0 ? live : live + held;
}
