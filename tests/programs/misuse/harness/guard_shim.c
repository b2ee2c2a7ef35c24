/* Test harness, not the agent: a small LD_PRELOAD library that wires src/agent/guard.c around
 * glibc's allocator exactly as the agent's hooks are meant to (see the guard wiring notes), so
 * the misuse programs, python3 and the churn benchmark can be judged before the hooks call
 * the guard. At exit it symbolizes in process and prints the report (the real agent records
 * instead and lets the CLI do that). Options: HTR_GUARD_OPTIONS="--redzone=16 --limit=1M". */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "base/fmt.h"
#include "base/hash.h"
#include "base/os.h"
#include "agent/guard.h"
#include "render/errors.h"
#include "symbols/symbols.h"
#include "unwind/unwind.h"

/* glibc's own entry points: no dlsym, so no bootstrap problem. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

#define SHIM_DEPTH 12
#define SHIM_TABLE (1u << 22)     /* live blocks at most (python3 stays far below) */
#define SHIM_STACKS (1u << 16)
#define SHIM_ERRORS 4096

typedef struct shim_stack { uint64_t hash; int n; uintptr_t pcs[SHIM_DEPTH]; } shim_stack;

static struct {
    atomic_int init_lock, ready;
    atomic_int finished;          /* report printed: from now on blocks are only unwrapped */
    atomic_int table_lock, stack_lock, rec_lock;
    htri_block *table;            /* open addressing, addr 0 = empty, backward-shift delete */
    shim_stack *stacks;           /* node id = index; 0 = empty stack */
    uint32_t n_stacks;
    htri_error_rec *errors;
    size_t n_errors;
    htri_fault_rec faults[64];
    size_t n_faults;
    htri_limit_rec limits[8];
    size_t n_limits;
    uint64_t n_live;
    void *(*real_new)(size_t);
    int fill;
} g_shim;

static __thread int t_in;         /* inside the shim: our own allocations pass through */
static __thread int t_throwing;   /* making libstdc++'s operator new throw: malloc fails */

static void shim_lock(atomic_int *l)
{
    while (atomic_exchange_explicit(l, 1, memory_order_acquire))
        __builtin_ia32_pause();
}
static void shim_unlock(atomic_int *l) { atomic_store_explicit(l, 0, memory_order_release); }

/* ---- live-block table ---- */

static size_t shim_home(uintptr_t a) { return htri_hash64(a) & (SHIM_TABLE - 1); }

static void shim_table_insert(const htri_block *b)
{
    shim_lock(&g_shim.table_lock);
    size_t i = shim_home(b->addr);
    while (g_shim.table[i].addr) i = (i + 1) & (SHIM_TABLE - 1);
    g_shim.table[i] = *b;
    g_shim.n_live++;
    shim_unlock(&g_shim.table_lock);
}

static int shim_table_get(uintptr_t a, htri_block *out, int remove)
{
    shim_lock(&g_shim.table_lock);
    size_t i = shim_home(a);
    while (g_shim.table[i].addr && g_shim.table[i].addr != a) i = (i + 1) & (SHIM_TABLE - 1);
    if (!g_shim.table[i].addr) {
        shim_unlock(&g_shim.table_lock);
        return -ENOENT;
    }
    *out = g_shim.table[i];
    if (remove) {
        size_t j = i;
        for (;;) {
            j = (j + 1) & (SHIM_TABLE - 1);
            if (!g_shim.table[j].addr) break;
            size_t k = shim_home(g_shim.table[j].addr);
            if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
                g_shim.table[i] = g_shim.table[j];
                i = j;
            }
        }
        g_shim.table[i].addr = 0;
        g_shim.n_live--;
    }
    shim_unlock(&g_shim.table_lock);
    return 0;
}

/* The live block containing a (interior pointers); error path only, so a scan. */
static int shim_table_containing(uintptr_t a, htri_block *out)
{
    int found = 0;
    shim_lock(&g_shim.table_lock);
    for (size_t i = 0; i < SHIM_TABLE && !found; i++) {
        const htri_block *b = &g_shim.table[i];
        if (b->addr && a > b->addr && a < b->addr + b->size) {
            *out = *b;
            found = 1;
        }
    }
    shim_unlock(&g_shim.table_lock);
    return found;
}

/* ---- stacks ---- */

static uint32_t shim_intern(const uintptr_t *pcs, int n)
{
    if (n <= 0) return 0;
    uint64_t h = htri_hash_words(pcs, (size_t)n);
    shim_lock(&g_shim.stack_lock);
    uint32_t id = 0;
    for (uint32_t i = 1; i < g_shim.n_stacks; i++) {
        if (g_shim.stacks[i].hash == h && g_shim.stacks[i].n == n &&
            !memcmp(g_shim.stacks[i].pcs, pcs, (size_t)n * sizeof *pcs)) {
            id = i;
            break;
        }
    }
    if (!id && g_shim.n_stacks < SHIM_STACKS) {
        id = g_shim.n_stacks++;
        g_shim.stacks[id].hash = h;
        g_shim.stacks[id].n = n;
        memcpy(g_shim.stacks[id].pcs, pcs, (size_t)n * sizeof *pcs);
    }
    shim_unlock(&g_shim.stack_lock);
    return id;
}

/* Only error paths need a stack id; the allocation path keeps pcs and interns them lazily
 * only for blocks (the real agent interns every stack, for its trace). */
#define SHIM_CAPTURE(pcs, n) \
    uintptr_t pcs[SHIM_DEPTH]; \
    int n = htri_unwind_capture(pcs, SHIM_DEPTH, 1)

/* ---- reports ---- */

static void shim_report(void *user, const htri_error_rec *e)
{
    (void)user;
    shim_lock(&g_shim.rec_lock);
    if (g_shim.n_errors < SHIM_ERRORS) {
        g_shim.errors[g_shim.n_errors] = *e;
        g_shim.errors[g_shim.n_errors].tid = (uint32_t)htri_os_gettid();
        g_shim.n_errors++;
    }
    shim_unlock(&g_shim.rec_lock);
    if (htri_guard_options()->abort_on_error) {
        htri_fdprintf(2, "heaptrail: misuse error (kind %u) and --abort-on-error\n", e->kind);
        abort();
    }
}

static void shim_init(void)
{
    extern char **environ;
    if (atomic_load(&g_shim.ready)) return;
    shim_lock(&g_shim.init_lock);
    if (!atomic_load(&g_shim.ready)) {
        htri_guard_opts o;
        htri_guard_opts_default(&o);
        for (char **e = environ; e && *e; e++) {
            if (strncmp(*e, "HTR_GUARD_OPTIONS=", 18)) continue;
            char buf[512];
            htri_fmt(buf, sizeof buf, "%s", *e + 18);
            for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
                if (strncmp(tok, "--", 2)) continue;
                char *eq = strchr(tok + 2, '=');
                if (eq) *eq++ = 0;
                if (htri_guard_parse_option(&o, tok + 2, eq) < 0)
                    htri_fdprintf(2, "heaptrail-shim: bad option --%s\n", tok + 2);
            }
        }
        g_shim.fill = o.fill_alloc;
        g_shim.table = htri_os_pages_reserve(SHIM_TABLE * sizeof(htri_block));
        g_shim.stacks = htri_os_pages_reserve(SHIM_STACKS * sizeof(shim_stack));
        g_shim.errors = htri_os_pages_reserve(SHIM_ERRORS * sizeof(htri_error_rec));
        g_shim.n_stacks = 1;
        htri_unwind_init(HTRI_UNWIND_DWARF);
        int rc = htri_guard_init(&o, shim_report, NULL);
        if (rc == -ENOENT)
            htri_fdprintf(2, "heaptrail-shim: --fail-in=%s names no function\n", o.fail_in);
        atomic_store(&g_shim.ready, 1);
    }
    shim_unlock(&g_shim.init_lock);
}

/* ---- the wiring: allocation ---- */

static void shim_limit_report(size_t size, uint8_t fam, const uintptr_t *pcs, int n)
{
    shim_lock(&g_shim.rec_lock);
    if (g_shim.n_limits >= HTRI_ARRAY_LEN(g_shim.limits)) {
        shim_unlock(&g_shim.rec_lock);
        return;
    }
    shim_unlock(&g_shim.rec_lock);
    /* snapshot the table for the top holders (error path: an mmap'd copy) */
    size_t cap = 1u << 16, nb = 0;
    htri_block *snap = htri_os_pages_alloc(cap * sizeof *snap);
    htri_limit_rec l;
    memset(&l, 0, sizeof l);
    if (snap) {
        shim_lock(&g_shim.table_lock);
        for (size_t i = 0; i < SHIM_TABLE && nb < cap; i++)
            if (g_shim.table[i].addr) snap[nb++] = g_shim.table[i];
        shim_unlock(&g_shim.table_lock);
        int k = htri_guard_top_holders(snap, nb, l.holders, HTRI_LIMIT_MAX_HOLDERS);
        l.n_holders = k > 0 ? (uint32_t)k : 0;
        htri_os_pages_free(snap, cap * sizeof *snap);
    }
    l.tid = (uint32_t)htri_os_gettid();
    l.size = size;
    l.node = shim_intern(pcs, n);
    l.family = fam;
    l.live_bytes = htri_guard_live_bytes();
    l.limit_bytes = htri_guard_options()->limit_bytes;
    shim_lock(&g_shim.rec_lock);
    if (g_shim.n_limits < HTRI_ARRAY_LEN(g_shim.limits)) g_shim.limits[g_shim.n_limits++] = l;
    shim_unlock(&g_shim.rec_lock);
}

/* Every allocation of the program: fault injection, limit, real allocation with room for the
 * redzones, layout, table. Returns NULL with errno ENOMEM on any refusal. */
static void *shim_alloc(uint8_t fam, size_t size, size_t align, int zero, const uintptr_t *pcs, int n)
{
    int why = htri_guard_should_fail(size, pcs, n);
    if (why) {
        htri_fault_rec f = { 0, (uint32_t)htri_os_gettid(), (uint8_t)why, fam, size, shim_intern(pcs, n) };
        shim_lock(&g_shim.rec_lock);
        if (g_shim.n_faults < HTRI_ARRAY_LEN(g_shim.faults)) g_shim.faults[g_shim.n_faults++] = f;
        shim_unlock(&g_shim.rec_lock);
        errno = ENOMEM;
        return NULL;
    }
    if (htri_guard_limit_reserve(size)) {
        shim_limit_report(size, fam, pcs, n);
        if (htri_guard_options()->limit_action == HTRI_LIMIT_ABORT) {
            htri_fdprintf(2, "heaptrail: --limit reached and --limit-action=abort\n");
            abort();
        }
        errno = ENOMEM;
        return NULL;
    }
    size_t raw_size, raw_align;
    void *raw = NULL;
    if (htri_guard_size_for(size, align, &raw_size, &raw_align) == 0) {
        if (raw_align) raw = __libc_memalign(raw_align, raw_size);
        else if (zero) raw = __libc_calloc(1, raw_size);
        else raw = __libc_malloc(raw_size);
    }
    if (!raw) {
        htri_guard_limit_release(size);
        errno = ENOMEM;
        return NULL;
    }
    void *user = htri_guard_init_block(raw, size, align, zero ? -1 : g_shim.fill);
    if (zero && raw_align) memset(user, 0, size);
    htri_block b = { (uintptr_t)user, size, shim_intern(pcs, n), fam, 0,
                     htri_guard_tag(align) };
    shim_table_insert(&b);
    return user;
}

static void shim_real_free_user(uintptr_t user, unsigned align_log2)
{
    htri_guard_qentry q = { .user = user, .align_log2 = (uint16_t)align_log2 };
    __libc_free(htri_guard_qentry_raw(&q));
}

/* Every release: table, mismatch, redzones, limit, quarantine, eviction. `check_family` is
 * 0 when realloc already judged the family. Returns 0, or -ENOENT for a bad pointer (then
 * nothing is freed). */
static int shim_release(uint8_t ffam, void *p, const uintptr_t *pcs, int n, int check_family)
{
    htri_block b;
    if (shim_table_get((uintptr_t)p, &b, 1)) {
        htri_block live;
        int in_live = shim_table_containing((uintptr_t)p, &live);
        htri_guard_report_invalid_free((uintptr_t)p, ffam, shim_intern(pcs, n), in_live ? &live : NULL);
        return -ENOENT;
    }
    uint32_t where = shim_intern(pcs, n);
    if (check_family && !htri_guard_families_match(b.family, ffam))
        htri_guard_report_mismatch(&b, ffam, where);
    htri_guard_verify_block(p, b.size, b.node, b.family, where, ffam);
    htri_guard_limit_release(b.size);
    htri_guard_qentry q = { (uintptr_t)p, b.size, b.node, where, b.family, ffam,
                            (uint16_t)(b.tag & 0xff) };
    if (htri_guard_quarantine_push(&q))
        shim_real_free_user(q.user, q.align_log2);
    htri_guard_qentry out;
    while (htri_guard_quarantine_evict(&out))
        shim_real_free_user(out.user, out.align_log2);
    return 0;
}

/* After the report (destructors and exit handlers still run): no more checks, but a guarded
 * block must still reach the real free as its raw pointer, never as the user pointer. */
static void shim_free_finished(void *p)
{
    htri_block b;
    t_in = 1;
    if (shim_table_get((uintptr_t)p, &b, 1) == 0 && (b.tag & HTRI_GUARD_TAG_ON))
        shim_real_free_user((uintptr_t)p, b.tag & 0xff);
    else
        __libc_free(p);
    t_in = 0;
}

static void *shim_realloc_finished(void *old, size_t size)
{
    htri_block b;
    t_in = 1;
    void *p;
    if (shim_table_get((uintptr_t)old, &b, 1) == 0 && (b.tag & HTRI_GUARD_TAG_ON)) {
        p = __libc_malloc(size ? size : 1);
        if (p) {
            memcpy(p, old, b.size < size ? b.size : size);
            shim_real_free_user((uintptr_t)old, b.tag & 0xff);
        } else {
            shim_table_insert(&b);
        }
    } else {
        p = __libc_realloc(old, size);
    }
    t_in = 0;
    return p;
}

/* ---- interposed symbols ---- */

#define SHIM_ENTER_OR(pass) \
    if (t_in || atomic_load_explicit(&g_shim.finished, memory_order_relaxed)) { pass; } \
    shim_init(); \
    t_in = 1

HTRI_EXPORT void *malloc(size_t size)
{
    if (t_throwing) {
        errno = ENOMEM;
        return NULL;
    }
    SHIM_ENTER_OR(return __libc_malloc(size));
    SHIM_CAPTURE(pcs, n);
    void *p = shim_alloc(HTRI_FAM_MALLOC, size, 0, 0, pcs, n);
    t_in = 0;
    return p;
}

HTRI_EXPORT void *calloc(size_t count, size_t size)
{
    SHIM_ENTER_OR(return __libc_calloc(count, size));
    size_t total;
    void *p = NULL;
    if (htri_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
    } else {
        SHIM_CAPTURE(pcs, n);
        p = shim_alloc(HTRI_FAM_CALLOC, total, 0, 1, pcs, n);
    }
    t_in = 0;
    return p;
}

HTRI_EXPORT void free(void *p)
{
    if (!p) return;
    SHIM_ENTER_OR(if (t_in) __libc_free(p); else shim_free_finished(p); return);
    SHIM_CAPTURE(pcs, n);
    shim_release(HTRI_FFAM_FREE, p, pcs, n, 1);
    t_in = 0;
}

HTRI_EXPORT void *realloc(void *old, size_t size)
{
    if (!old) return malloc(size);
    SHIM_ENTER_OR(return t_in ? __libc_realloc(old, size) : shim_realloc_finished(old, size));
    SHIM_CAPTURE(pcs, n);
    void *p = NULL;
    htri_block b;
    if (size == 0) {
        shim_release(HTRI_FFAM_REALLOC, old, pcs, n, 1);
    } else if (shim_table_get((uintptr_t)old, &b, 0)) {
        /* a freed or foreign pointer: memcheck's verdict, and NULL */
        shim_release(HTRI_FFAM_REALLOC, old, pcs, n, 1);
        errno = ENOMEM;
    } else {
        if (!htri_guard_families_match(b.family, HTRI_FFAM_REALLOC))
            htri_guard_report_mismatch(&b, HTRI_FFAM_REALLOC, shim_intern(pcs, n));
        /* always moves: the old block goes to quarantine, so stale pointers are caught */
        p = shim_alloc(HTRI_FAM_REALLOC, size, htri_guard_tag_align(b.tag), 0, pcs, n);
        if (p) {
            memcpy(p, old, b.size < size ? b.size : size);
            shim_release(HTRI_FFAM_REALLOC, old, pcs, n, 0);
        }
    }
    t_in = 0;
    return p;
}

HTRI_EXPORT void *reallocarray(void *old, size_t count, size_t elem)
{
    size_t size;
    if (htri_mul_overflow(count, elem, &size)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(old, size);
}

static void *shim_memalign(size_t align, size_t size)
{
    SHIM_ENTER_OR(return __libc_memalign(align, size));
    SHIM_CAPTURE(pcs, n);
    void *p = shim_alloc(HTRI_FAM_MEMALIGN, size, align, 0, pcs, n);
    t_in = 0;
    return p;
}

HTRI_EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
    if (align < sizeof(void *) || (align & (align - 1))) return EINVAL;
    void *p = shim_memalign(align, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

HTRI_EXPORT void *aligned_alloc(size_t align, size_t size)
{
    if (align == 0 || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    return shim_memalign(align, size);
}

HTRI_EXPORT void *memalign(size_t align, size_t size)
{
    while (align & (align - 1)) align++; /* glibc rounds up to a power of two */
    return shim_memalign(align, size);
}

HTRI_EXPORT void *valloc(size_t size) { return shim_memalign(4096, size); }
HTRI_EXPORT void *pvalloc(size_t size) { return shim_memalign(4096, (size + 4095) & ~(size_t)4095); }

HTRI_EXPORT size_t malloc_usable_size(void *p)
{
    htri_block b;
    if (!p) return 0;
    if (!shim_table_get((uintptr_t)p, &b, 0) && (b.tag & HTRI_GUARD_TAG_ON))
        return htri_guard_usable_size(p);
    /* not a block of ours (our own, or made after the report): glibc's answer */
    static size_t (*real_usable)(void *);
    int was_in = t_in;
    t_in = 1;
    if (!real_usable) real_usable = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    t_in = was_in;
    return real_usable ? real_usable(p) : 0;
}

/* ---- C++ ---- */

void *_Znwm(size_t);
void *_Znam(size_t);
void *_ZnwmRKSt9nothrow_t(size_t, const void *);
void *_ZnamRKSt9nothrow_t(size_t, const void *);
void *_ZnwmSt11align_val_t(size_t, size_t);
void *_ZnamSt11align_val_t(size_t, size_t);
void _ZdlPv(void *);
void _ZdaPv(void *);
void _ZdlPvm(void *, size_t);
void _ZdaPvm(void *, size_t);
void _ZdlPvSt11align_val_t(void *, size_t);
void _ZdaPvSt11align_val_t(void *, size_t);
void _ZdlPvmSt11align_val_t(void *, size_t, size_t);
void _ZdaPvmSt11align_val_t(void *, size_t, size_t);


/* A refused operator new must behave like the real one: std::bad_alloc. Asking libstdc++'s
 * own operator new for an impossible size makes it throw (its malloc is told to fail). */
static void *shim_new_failed(int nothrow)
{
    if (nothrow) return NULL;
    if (!g_shim.real_new) g_shim.real_new = (void *(*)(size_t))dlsym(RTLD_NEXT, "_Znwm");
    t_in = 0;
    t_throwing = 1;
    void *p = g_shim.real_new((size_t)-1 / 2);
    t_throwing = 0;
    return p;
}

static void *shim_new(uint8_t fam, size_t size, size_t align, int nothrow)
{
    SHIM_ENTER_OR(return t_throwing ? NULL : __libc_memalign(align > 16 ? align : 16, size ? size : 1));
    SHIM_CAPTURE(pcs, n);
    void *p = shim_alloc(fam, size, align, 0, pcs, n);
    t_in = 0;
    return p ? p : shim_new_failed(nothrow);
}

static void shim_delete(uint8_t ffam, void *p)
{
    if (!p) return;
    SHIM_ENTER_OR(if (t_in) __libc_free(p); else shim_free_finished(p); return);
    SHIM_CAPTURE(pcs, n);
    shim_release(ffam, p, pcs, n, 1);
    t_in = 0;
}

HTRI_EXPORT void *_Znwm(size_t s) { return shim_new(HTRI_FAM_NEW, s, 0, 0); }
HTRI_EXPORT void *_Znam(size_t s) { return shim_new(HTRI_FAM_NEW_ARRAY, s, 0, 0); }
HTRI_EXPORT void *_ZnwmRKSt9nothrow_t(size_t s, const void *nt) { (void)nt; return shim_new(HTRI_FAM_NEW, s, 0, 1); }
HTRI_EXPORT void *_ZnamRKSt9nothrow_t(size_t s, const void *nt) { (void)nt; return shim_new(HTRI_FAM_NEW_ARRAY, s, 0, 1); }
HTRI_EXPORT void *_ZnwmSt11align_val_t(size_t s, size_t al) { return shim_new(HTRI_FAM_NEW, s, al, 0); }
HTRI_EXPORT void *_ZnamSt11align_val_t(size_t s, size_t al) { return shim_new(HTRI_FAM_NEW_ARRAY, s, al, 0); }
HTRI_EXPORT void _ZdlPv(void *p) { shim_delete(HTRI_FFAM_DELETE, p); }
HTRI_EXPORT void _ZdaPv(void *p) { shim_delete(HTRI_FFAM_DELETE_ARRAY, p); }
HTRI_EXPORT void _ZdlPvm(void *p, size_t s) { (void)s; shim_delete(HTRI_FFAM_DELETE, p); }
HTRI_EXPORT void _ZdaPvm(void *p, size_t s) { (void)s; shim_delete(HTRI_FFAM_DELETE_ARRAY, p); }
HTRI_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) { (void)a; shim_delete(HTRI_FFAM_DELETE, p); }
HTRI_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) { (void)a; shim_delete(HTRI_FFAM_DELETE_ARRAY, p); }
HTRI_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t s, size_t a) { (void)s; (void)a; shim_delete(HTRI_FFAM_DELETE, p); }
HTRI_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t s, size_t a) { (void)s; (void)a; shim_delete(HTRI_FFAM_DELETE_ARRAY, p); }

/* ---- at exit: drain, verify, report ---- */

static htri_symtab *g_symtab;

static void shim_print_stack(void *user, FILE *out, const char *prefix, uint32_t node)
{
    (void)user;
    if (!node || node >= g_shim.n_stacks) return;
    uint64_t pcs[SHIM_DEPTH];
    for (int i = 0; i < g_shim.stacks[node].n; i++) pcs[i] = g_shim.stacks[node].pcs[i];
    htri_render_stack_pcs(out, prefix, g_symtab, pcs, (size_t)g_shim.stacks[node].n);
}

__attribute__((destructor)) static void shim_fini(void)
{
    if (!atomic_load(&g_shim.ready)) return;
    t_in = 1;
    htri_guard_qentry q;
    while (htri_guard_quarantine_pop(&q))
        shim_real_free_user(q.user, q.align_log2);
    /* live blocks: their redzones, as htr_check_heap() would */
    for (size_t i = 0; i < SHIM_TABLE; i++) {
        htri_block b = g_shim.table[i];
        if (b.addr) htri_guard_verify_block((void *)b.addr, b.size, b.node, b.family, 0, HTRI_NOFAM);
    }
    g_symtab = htri_symtab_open();
    if (g_symtab) htri_symtab_add_self(g_symtab);
    char prefix[32];
    htri_fmt(prefix, sizeof prefix, "==%d== ", htri_os_getpid());
    htri_errors_view v = { g_shim.errors, g_shim.n_errors, g_shim.faults, g_shim.n_faults,
                           g_shim.limits, g_shim.n_limits, shim_print_stack, NULL, prefix };
    fflush(stdout);
    htri_render_errors(stderr, &v);
    fflush(stderr);
    uint64_t n_err;
    htri_guard_error_counts(&n_err, NULL);
    int code = htri_guard_options()->error_exitcode;
    if (n_err && code) _exit(code);
    atomic_store(&g_shim.finished, 1);
    t_in = 0;
}
