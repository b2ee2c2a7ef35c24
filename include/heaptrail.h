/* heaptrail.h — the one public header of heaptrail.
 * Debug allocators for C code and tests (libheaptrail.a), a leak-growth test harness, and
 * control of the preloaded agent (libheaptrail-preload.so) from the program under test.
 * Self-contained: needs only <stddef.h> and <stdint.h>. */
#ifndef HEAPTRAIL_H
#define HEAPTRAIL_H

#include <stddef.h>
#include <stdint.h>

#define HTR_VERSION_MAJOR 0
#define HTR_VERSION_MINOR 1
#define HTR_VERSION_PATCH 0
#define HTR_VERSION_NUMBER (HTR_VERSION_MAJOR * 10000 + HTR_VERSION_MINOR * 100 + HTR_VERSION_PATCH)
#define HTR_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define HTR_API __attribute__((visibility("default")))
#else
#define HTR_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Debug allocators (libheaptrail.a) ------------------------------------------------ */
/* HTR_ALLOCATORS_BEGIN (owned by src/alloc) */
/* An allocator is a value: a context pointer and a table of four calls. Size and alignment
 * travel with every call (free included), and so does the caller's return address, so any
 * layer can record where a block came from. Layers wrap any parent and stack in any order:
 *
 *     your code -> testing -> tracking -> validating -> libc
 *
 * Contract of the four calls (every layer and parent honours it):
 *   alloc(size, align): size >= 1, align a power of two; returns NULL with errno = ENOMEM.
 *   resize(ptr, old_size, align, new_size): grow or shrink IN PLACE; 1 if done, 0 if not
 *       (the block is then untouched).
 *   remap(ptr, old_size, align, new_size): resize that may move; NULL means "cannot do it
 *       cheaply" and the block is untouched (htr_realloc then allocates, copies and frees).
 *   free(ptr, size, align): size and align exactly as last allocated or resized. */
#define HTR_DEFAULT_ALIGN 16

typedef struct htr_allocator_vtable {
    void *(*alloc)(void *ctx, size_t size, size_t align, uintptr_t ret_addr);
    int (*resize)(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                  uintptr_t ret_addr);
    void *(*remap)(void *ctx, void *ptr, size_t old_size, size_t align, size_t new_size,
                   uintptr_t ret_addr);
    void (*free)(void *ctx, void *ptr, size_t size, size_t align, uintptr_t ret_addr);
} htr_allocator_vtable_t;

typedef struct htr_allocator {
    void *ctx;
    const htr_allocator_vtable_t *vtable;
} htr_allocator_t;

/* Helpers. They pass their caller's return address down. A size of 0 is treated as 1 on
 * alloc, resize and free alike, so "free what you allocated" stays symmetric. */
HTR_API void *htr_alloc(htr_allocator_t a, size_t size);
HTR_API void *htr_alloc_aligned(htr_allocator_t a, size_t size, size_t align); /* EINVAL: bad align */
HTR_API void *htr_alloc_zeroed(htr_allocator_t a, size_t size);
HTR_API void htr_free(htr_allocator_t a, void *ptr, size_t size);            /* NULL: no-op */
HTR_API void htr_free_aligned(htr_allocator_t a, void *ptr, size_t size, size_t align);
/* 1 if the block now has new_size bytes in place, 0 if not (block untouched). */
HTR_API int htr_resize(htr_allocator_t a, void *ptr, size_t old_size, size_t new_size);
/* ptr NULL: alloc. new_size 0: free, returns NULL. Otherwise in place, else remap, else
 * alloc + copy + free. On failure returns NULL with errno = ENOMEM; the old block stays. */
HTR_API void *htr_realloc(htr_allocator_t a, void *ptr, size_t old_size, size_t new_size);
HTR_API void *htr_realloc_aligned(htr_allocator_t a, void *ptr, size_t old_size,
                                  size_t new_size, size_t align);
/* Arrays: count * elem_size is overflow-checked (NULL, errno = ENOMEM on overflow). */
HTR_API void *htr_alloc_array(htr_allocator_t a, size_t count, size_t elem_size, size_t align);
HTR_API void *htr_realloc_array(htr_allocator_t a, void *ptr, size_t old_count,
                                size_t new_count, size_t elem_size, size_t align);
HTR_API void htr_free_array(htr_allocator_t a, void *ptr, size_t count, size_t elem_size,
                            size_t align);
#ifdef __cplusplus
#define HTR_ALIGNOF(T) alignof(T)
#else
#define HTR_ALIGNOF(T) _Alignof(T)
#endif
#define HTR_NEW_ARRAY(a, T, n) ((T *)htr_alloc_array((a), (n), sizeof(T), HTR_ALIGNOF(T)))
#define HTR_RESIZE_ARRAY(a, p, old_n, new_n) \
    ((__typeof__(p))htr_realloc_array((a), (p), (old_n), (new_n), sizeof(*(p)), \
                                      HTR_ALIGNOF(__typeof__(*(p)))))
#define HTR_FREE_ARRAY(a, p, n) \
    htr_free_array((a), (p), (n), sizeof(*(p)), HTR_ALIGNOF(__typeof__(*(p))))

/* Built-in parents (stateless, thread-safe). libc: malloc (posix_memalign above 16-byte
 * alignment), in-place resize up to malloc_usable_size, realloc as remap. pages: mmap'd
 * pages per block, sizes rounded up to the page size; shrinks in place by unmapping. */
HTR_API htr_allocator_t htr_libc_allocator(void);
HTR_API htr_allocator_t htr_page_allocator(void);

/* Where reports go: a line callback if fn is set, else fd if fd > 0, else nowhere (a
 * zero-initialised sink is silent). Lines end with '\n'. A layer calls the callback with
 * its lock held: the callback must not allocate through that layer. */
typedef void (*htr_line_fn)(void *user, const char *line, size_t len);
typedef struct htr_sink {
    int fd;
    htr_line_fn fn;
    void *user;
} htr_sink_t;
#define HTR_SINK_FD(fd_) ((htr_sink_t){ (fd_), 0, 0 })
#define HTR_SINK_FN(fn_, user_) ((htr_sink_t){ -1, (fn_), (user_) })

/* Counters kept by the layers that count (tracking, testing, limit, failing, ...). */
typedef struct htr_alloc_stats {
    size_t bytes_live, bytes_peak;   /* sizes as requested by the layer's caller */
    size_t n_live, n_live_peak;
    uint64_t n_allocs, n_frees, n_resizes, n_failed; /* n_failed: allocs answered NULL */
    uint64_t bytes_total;            /* sum of all sizes ever allocated */
} htr_alloc_stats_t;

/* Options shared by the layers that record stacks and report. */
typedef struct htr_layer_opts {
    htr_sink_t sink;     /* where errors and reports go (silent if zero) */
    int stack_depth;     /* frames kept per block: 0 = default (16), < 0 = none, max 64 */
    const char *name;    /* shown in reports; NULL = the layer kind */
} htr_layer_opts_t;

/* Every layer below: _new returns NULL with errno on failure (opts may be NULL); its state
 * and bookkeeping (block tables, stacks) come from libc malloc, never from the parent, so
 * the parent's numbers count user blocks only (see htr_alloc_bookkeeping_bytes). Layer
 * instances are thread-safe (one mutex each) unless noted. _destroy releases the
 * bookkeeping only: blocks still live in a layer are not freed in its parent. */
HTR_API size_t htr_alloc_bookkeeping_bytes(void); /* libc bytes held by all layers now */

/* testing: for unit tests. Catches double frees, frees of foreign pointers and size
 * mismatches when they happen (the bad free is reported and NOT passed to the parent);
 * htr_testing_finish reports every block still live with its allocation stack and returns
 * leaks + errors, so `CHECK(htr_testing_finish(t, NULL) == 0)` is a test. */
typedef struct htr_testing htr_testing_t;
typedef struct htr_testing_result {
    size_t n_leaks, bytes_leaked;
    size_t n_double_frees, n_foreign_frees, n_size_mismatches;
} htr_testing_result_t;
HTR_API htr_testing_t *htr_testing_new(htr_allocator_t parent, const htr_layer_opts_t *opts);
HTR_API htr_allocator_t htr_testing_allocator(htr_testing_t *t);
HTR_API size_t htr_testing_finish(htr_testing_t *t, htr_testing_result_t *result);
HTR_API void htr_testing_stats(htr_testing_t *t, htr_alloc_stats_t *stats);
HTR_API void htr_testing_destroy(htr_testing_t *t);

/* tracking: every live block with size, address, tag and stack; totals, peak, counts. */
typedef struct htr_tracking htr_tracking_t;
HTR_API htr_tracking_t *htr_tracking_new(htr_allocator_t parent, const htr_layer_opts_t *opts);
HTR_API htr_allocator_t htr_tracking_allocator(htr_tracking_t *t);
HTR_API void htr_tracking_stats(htr_tracking_t *t, htr_alloc_stats_t *stats);
HTR_API size_t htr_tracking_live_bytes(htr_tracking_t *t);
/* Live bytes of blocks allocated under `tag` (see tagging); NULL tag: untagged blocks. */
HTR_API size_t htr_tracking_tag_bytes(htr_tracking_t *t, const char *tag);
/* Report: a summary, bytes per tag, then up to max_blocks live blocks, biggest first, each
 * with its stack. Returns the number of live blocks, or a negative errno. */
HTR_API long htr_tracking_report(htr_tracking_t *t, htr_sink_t sink, size_t max_blocks);
HTR_API void htr_tracking_destroy(htr_tracking_t *t);

/* logging: one line per call, to the sink, e.g.
 *   "alloc 24 align 16 -> 0x55d0c2a0 from 0x401136" */
typedef struct htr_logging htr_logging_t;
HTR_API htr_logging_t *htr_logging_new(htr_allocator_t parent, htr_sink_t sink);
HTR_API htr_allocator_t htr_logging_allocator(htr_logging_t *l);
HTR_API uint64_t htr_logging_lines(htr_logging_t *l);
HTR_API void htr_logging_destroy(htr_logging_t *l);

/* validating: canaries of HTR_ALLOC_FILL_GUARD bytes before and after every block (taken
 * from the parent, in band), checked on free and on demand; fresh blocks are filled with
 * HTR_ALLOC_FILL_FRESH and freed ones with HTR_ALLOC_FILL_FREED. A damaged block is reported
 * with its address, size, allocation stack and the damaged byte offsets; it is still freed. */
#define HTR_ALLOC_FILL_FRESH 0xA5 /* the agent's fill bytes, so a hexdump reads the same */
#define HTR_ALLOC_FILL_FREED 0xDD
#define HTR_ALLOC_FILL_GUARD 0xFB
typedef struct htr_validating htr_validating_t;
HTR_API htr_validating_t *htr_validating_new(htr_allocator_t parent, const htr_layer_opts_t *opts);
HTR_API htr_allocator_t htr_validating_allocator(htr_validating_t *v);
/* Checks every live block now; returns the number of damaged blocks (each reported). */
HTR_API size_t htr_validating_check(htr_validating_t *v);
/* Damaged blocks seen so far (on free, on check), and bad frees (pointer not ours). */
HTR_API size_t htr_validating_errors(htr_validating_t *v);
HTR_API void htr_validating_destroy(htr_validating_t *v);

/* profiling: size histogram and calls per size class (class k holds sizes in
 * (2^(k-1), 2^k]; class 0 is size 1), bytes and calls per tag. */
#define HTR_SIZE_CLASSES 48
#define HTR_PROFILE_MAX_TAGS 64
typedef struct htr_profiling htr_profiling_t;
typedef struct htr_profile_counts {
    uint64_t n_allocs, n_frees, n_resizes;
    uint64_t bytes_allocated, bytes_freed;
} htr_profile_counts_t;
HTR_API htr_profiling_t *htr_profiling_new(htr_allocator_t parent);
HTR_API htr_allocator_t htr_profiling_allocator(htr_profiling_t *p);
HTR_API size_t htr_profiling_size_class(size_t size);
/* 0 or -EINVAL (class out of range) / -ENOENT (tag never seen). NULL tag: untagged. */
HTR_API int htr_profiling_class(htr_profiling_t *p, size_t size_class, htr_profile_counts_t *out);
HTR_API int htr_profiling_tag(htr_profiling_t *p, const char *tag, htr_profile_counts_t *out);
HTR_API int htr_profiling_report(htr_profiling_t *p, htr_sink_t sink);
HTR_API void htr_profiling_destroy(htr_profiling_t *p);

/* tagging: every call through this layer runs with the thread's current tag set to `tag`,
 * so the layers below it (tracking, profiling) attribute the blocks to it. Tags are
 * compared by content and kept by pointer: pass a string that outlives the layers. Code can
 * also tag a region by hand: old = htr_tag_set("parser"); ...; htr_tag_set(old). */
typedef struct htr_tagging htr_tagging_t;
HTR_API htr_tagging_t *htr_tagging_new(htr_allocator_t parent, const char *tag);
HTR_API htr_allocator_t htr_tagging_allocator(htr_tagging_t *t);
HTR_API void htr_tagging_destroy(htr_tagging_t *t);
HTR_API const char *htr_tag_set(const char *tag); /* returns the previous tag */
HTR_API const char *htr_tag_current(void);        /* NULL: untagged */

/* limit: a budget of live bytes; an alloc or growth past it fails (NULL, ENOMEM; resize 0)
 * and nothing is asked of the parent. */
typedef struct htr_limit htr_limit_t;
HTR_API htr_limit_t *htr_limit_new(htr_allocator_t parent, size_t budget_bytes);
HTR_API htr_allocator_t htr_limit_allocator(htr_limit_t *l);
HTR_API void htr_limit_set_budget(htr_limit_t *l, size_t budget_bytes);
HTR_API void htr_limit_stats(htr_limit_t *l, htr_alloc_stats_t *stats);
HTR_API void htr_limit_destroy(htr_limit_t *l);

/* failing: forces out-of-memory. Counts "allocation events" (alloc, and resize or remap
 * that grows) from 0; the event fails when the mode says so. */
typedef enum htr_fail_mode {
    HTR_FAIL_NEVER = 0,
    HTR_FAIL_AFTER = 1,  /* events 0..n-1 succeed, every later one fails */
    HTR_FAIL_EVERY = 2,  /* events n-1, 2n-1, ... fail (every n-th) */
    HTR_FAIL_RATE = 3,   /* each event fails with probability `rate`, reproducibly from seed */
} htr_fail_mode_t;
typedef struct htr_failing_opts {
    htr_fail_mode_t mode;
    uint64_t n;
    double rate;
    uint64_t seed;
} htr_failing_opts_t;
typedef struct htr_failing htr_failing_t;
HTR_API htr_failing_t *htr_failing_new(htr_allocator_t parent, const htr_failing_opts_t *opts);
HTR_API htr_allocator_t htr_failing_allocator(htr_failing_t *f);
/* Reconfigures and restarts the event count (opts NULL: never fail). */
HTR_API void htr_failing_set(htr_failing_t *f, const htr_failing_opts_t *opts);
HTR_API uint64_t htr_failing_events(htr_failing_t *f);   /* events since the last set */
HTR_API uint64_t htr_failing_failures(htr_failing_t *f); /* failures forced since then */
HTR_API void htr_failing_destroy(htr_failing_t *f);

/* fixed buffer: a bump allocator over the caller's buffer with stack semantics: only the
 * last block can be freed (its bytes come back) or grown/shrunk in place. Any other free is
 * legal but strands the block's bytes until the free below them reaches them or until
 * reset; each such free is reported at once to the sink with the freeing stack:
 *   "fixed: space leak: free of 4096 bytes at +0 is not the last block (+4096..+8192
 *    follows); 4096 bytes stranded, 4096 in total"
 * so "allocate the new table, then free the old one" shows up on the first step. */
typedef struct htr_fixed htr_fixed_t;
typedef struct htr_fixed_stats {
    size_t capacity, bytes_used, high_water; /* bytes_used: end of the last block */
    size_t bytes_stranded;                   /* freed out of order, not reclaimable now */
    uint64_t n_stranding_frees, n_failed;
} htr_fixed_stats_t;
HTR_API htr_fixed_t *htr_fixed_new(void *buffer, size_t len, const htr_layer_opts_t *opts);
HTR_API htr_allocator_t htr_fixed_allocator(htr_fixed_t *f);
HTR_API void htr_fixed_stats(htr_fixed_t *f, htr_fixed_stats_t *stats);
HTR_API void htr_fixed_reset(htr_fixed_t *f);
HTR_API void htr_fixed_destroy(htr_fixed_t *f);

/* arena: blocks carved from chunks taken from the parent; individual frees are no-ops
 * (except the last block, which is given back), reset frees everything at once. */
typedef struct htr_arena htr_arena_t;
typedef struct htr_arena_stats {
    size_t bytes_used, high_water;  /* bytes handed out since the last reset / ever */
    size_t bytes_reserved, n_chunks;/* taken from the parent now */
    uint64_t n_allocs, n_resets;
} htr_arena_stats_t;
HTR_API htr_arena_t *htr_arena_new(htr_allocator_t parent, size_t chunk_bytes); /* 0: 64 KiB */
HTR_API htr_allocator_t htr_arena_allocator(htr_arena_t *a);
HTR_API void htr_arena_stats(htr_arena_t *a, htr_arena_stats_t *stats);
HTR_API void htr_arena_reset(htr_arena_t *a);    /* gives every chunk back to the parent */
HTR_API void htr_arena_destroy(htr_arena_t *a);  /* reset, then free the arena itself */

/* pool: objects of one size (and alignment), in slabs taken from the parent, recycled
 * through a free list. A request that does not fit the object fails with EINVAL. */
typedef struct htr_pool htr_pool_t;
typedef struct htr_pool_stats {
    uint64_t hits, misses;   /* served from the free list / from fresh slab space */
    size_t n_live, n_slabs, obj_size;
} htr_pool_stats_t;
HTR_API htr_pool_t *htr_pool_new(htr_allocator_t parent, size_t obj_size, size_t obj_align,
                                 size_t objs_per_slab, const htr_layer_opts_t *opts);
HTR_API htr_allocator_t htr_pool_allocator(htr_pool_t *p);
HTR_API void htr_pool_stats(htr_pool_t *p, htr_pool_stats_t *stats);
/* Reports every object never returned, with its allocation stack; returns their number. */
HTR_API size_t htr_pool_report(htr_pool_t *p, htr_sink_t sink);
HTR_API void htr_pool_destroy(htr_pool_t *p); /* gives the slabs back to the parent */

/* Adapters: drive real libraries' allocator hooks with any htr_allocator_t. The allocator
 * value must outlive the library's use of it. zstd and SQLite free without a size, so those
 * adapters put a 16-byte size header in front of each block (counted by the layers).
 *   Lua:    lua_newstate(htr_lua_alloc, &a)
 *   zstd:   ZSTD_customMem cm = HTR_ZSTD_CUSTOM_MEM(&a); ZSTD_createCCtx_advanced(cm)
 *   SQLite: sqlite3_mem_methods m = HTR_SQLITE_MEM_METHODS(&a);
 *           sqlite3_config(SQLITE_CONFIG_MALLOC, &m)   (one allocator per process) */
HTR_API void *htr_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
HTR_API void *htr_zstd_alloc(void *opaque, size_t size);
HTR_API void htr_zstd_free(void *opaque, void *ptr);
#define HTR_ZSTD_CUSTOM_MEM(aptr) { htr_zstd_alloc, htr_zstd_free, (void *)(aptr) }
HTR_API void *htr_sqlite_malloc(int size);
HTR_API void htr_sqlite_free(void *ptr);
HTR_API void *htr_sqlite_realloc(void *ptr, int size);
HTR_API int htr_sqlite_size(void *ptr);
HTR_API int htr_sqlite_roundup(int size);
HTR_API int htr_sqlite_init(void *app_data);   /* app_data: the htr_allocator_t * */
HTR_API void htr_sqlite_shutdown(void *app_data);
#define HTR_SQLITE_MEM_METHODS(aptr) { htr_sqlite_malloc, htr_sqlite_free, htr_sqlite_realloc, \
    htr_sqlite_size, htr_sqlite_roundup, htr_sqlite_init, htr_sqlite_shutdown, (void *)(aptr) }

/* Growth-test harness: runs op(user, i) for warm-up + iterations, samples live heap bytes
 * (from `tracking` if given, else from the preloaded agent, else mallinfo2) and RSS after
 * each step, and classifies the series with a Theil-Sen slope and a Mann-Kendall test.
 * Returns the verdict, so `assert(htr_growth_test(...) != HTR_GROWING)` is a leak test.
 * Short by default; HTR_GROWTH_LONG (or HTR_GROWTH=long in the environment) soaks.
 * mallinfo2 counts blocks parked in malloc's thread caches as in use; they fill slowly and
 * look like a few bytes per iteration of growth, so with that source a short run calls
 * growth below 8 bytes/iteration bounded (tracking and agent are exact: no floor). */
typedef enum htr_growth_verdict {
    HTR_GROWTH_ERROR = -1, /* bad arguments or out of memory (errno set) */
    HTR_BOUNDED = 0,       /* no significant trend */
    HTR_SAWTOOTH = 1,      /* repeated drops, troughs without a trend */
    HTR_PLATEAU = 2,       /* rose after the warm-up, then flat */
    HTR_GROWING = 3,       /* significant upward trend to the end: a leak */
} htr_growth_verdict_t;
typedef enum htr_growth_mode { HTR_GROWTH_SHORT = 0, HTR_GROWTH_LONG = 1 } htr_growth_mode_t;
typedef struct htr_growth_opts {
    htr_growth_mode_t mode;
    size_t warmup, iterations;  /* 0: mode default (short 100 + 1000; long 1000 + 100000) */
    size_t max_samples;         /* 0: 1000 (short) / 2000 (long); sampled every k steps */
    htr_tracking_t *tracking;   /* live-bytes source; NULL: agent, then mallinfo2 */
    double alpha;               /* significance level, 0: 0.01 */
    double min_bytes_per_iter;  /* slower growth is not called growing; 0: by source (below) */
    htr_sink_t sink;            /* one summary line per test (silent if zero) */
    const char *name;
} htr_growth_opts_t;
typedef struct htr_growth_result {
    htr_growth_verdict_t verdict;
    double bytes_per_iter, ci_low, ci_high; /* Theil-Sen slope and its 95% interval */
    double p_value;                         /* Mann-Kendall, one-sided (upward) */
    double rss_bytes_per_iter;              /* Theil-Sen slope of RSS (informative) */
    size_t n_samples, warmup, iterations, n_drops;
    size_t live_first, live_last;           /* first and last sample */
    const char *source;                     /* "tracking", "agent" or "mallinfo2" */
} htr_growth_result_t;
HTR_API htr_growth_verdict_t htr_growth_test(void (*op)(void *user, size_t iter), void *user,
                                             const htr_growth_opts_t *opts,
                                             htr_growth_result_t *result);
HTR_API const char *htr_growth_verdict_name(htr_growth_verdict_t v);
/* HTR_ALLOCATORS_END */

/* ---- Agent control ------------------------------------------------------------------- */
/* HTR_AGENT_BEGIN (owned by src/agent) */
/* Defined by libheaptrail-preload.so when the program runs under `heaptrail run` (or with
 * LD_PRELOAD). Declared weak: without the agent they are NULL, so test them first:
 *     if (heaptrail_agent_active && heaptrail_agent_active()) ... */
#if defined(__GNUC__)
#define HTR_AGENT_WEAK __attribute__((weak))
#else
#define HTR_AGENT_WEAK
#endif
/* Bytes in heap blocks the program holds now, as the agent counts them (0 when inactive). */
HTR_API size_t heaptrail_agent_live_bytes(void) HTR_AGENT_WEAK;
/* 1 while the agent records (0 once it stopped on an error, or after the trace ended). */
HTR_API int heaptrail_agent_active(void) HTR_AGENT_WEAK;
/* The agent's implementations behind htr_leak_check_now() and htr_check_heap() below (call
 * those: they work with or without the agent). */
HTR_API int heaptrail_agent_leak_check_now(void) HTR_AGENT_WEAK;
HTR_API int heaptrail_agent_check_heap(void) HTR_AGENT_WEAK;

/* In libheaptrail.a; safe to call whether or not the program runs under the agent. Call
 * them from the program's own code (not from a signal handler, not from inside malloc).
 *
 * htr_leak_check_now: a leak check now, as at exit (memcheck's kinds, the same roots): the
 * agent stops the other threads for the scan and appends LEAK_CHECK (reason on-demand),
 * LEAK_GROUP and LEAK_END records to the trace; `heaptrail report` shows it. Blocks until
 * done. Returns 0, -ENOSYS (no agent in this process), -EBUSY (a check is running), -EIO
 * (the agent stopped recording), or -ENOMEM.
 *
 * htr_check_heap: checks the redzones of every live block and the freed-fill of every
 * quarantined one now (the misuse checks, `heaptrail run --redzone/--quarantine`); each
 * damage found is recorded as an error, with this call's stack, and reported once. Returns
 * the errors found (0: clean), -ENOSYS (no agent), -ENOTSUP (misuse checks off), -EIO or
 * -ENOMEM. */
HTR_API int htr_leak_check_now(void);
HTR_API int htr_check_heap(void);
/* HTR_AGENT_END */

#ifdef __cplusplus
}
#endif
#endif /* HEAPTRAIL_H */
