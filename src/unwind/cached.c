/* The cached engine: each return address's unwind rule is computed once from .eh_frame
 * (cfi.c) and kept in a lock-free hash table on mmap'd memory, so a later unwind step costs a
 * probe and two loads, like a frame-pointer walk. Called from htri_unwind_capture(). */
#include <link.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>
#include "unwind/unwind_int.h"

/* Rule table: open addressing, linear probing, never resized. 2^16 slots of 16 bytes (1 MiB
 * of address space, touched as used) hold far more distinct return addresses than a large
 * C++ program has on its allocation paths; when a probe run is full we compute the rule
 * again each time rather than evict. */
#define CACHED_SLOTS_LOG2 16
#define CACHED_SLOTS      (1u << CACHED_SLOTS_LOG2)
#define CACHED_PROBES     32

/* Slot key: pc | epoch << 48 | PENDING while its rule is being written. User-space pcs on
 * x86-64 are below 2^47 (2^56 only for mappings a program asks for explicitly with 5-level
 * paging; those are simply not cached). */
#define CACHED_KEY_PENDING    ((uint64_t)1 << 63)
#define CACHED_KEY_EPOCH_SHIFT 48
#define CACHED_KEY_EPOCH_MASK  ((uint64_t)0x7fff)
#define CACHED_PC_LIMIT       ((uintptr_t)1 << CACHED_KEY_EPOCH_SHIFT)

/* Module list: executable PT_LOAD ranges with their module's .eh_frame_hdr, sorted by
 * address. Rebuilt into the next of a ring of snapshots and published with one atomic
 * store; a reader holds a snapshot for one capture only, and a snapshot is rewritten only
 * after CACHED_SNAPSHOTS - 1 later rebuilds (rebuilds happen on dlopen/dlclose only). */
#define CACHED_SEGS_MAX  4096
#define CACHED_SNAPSHOTS 4

struct cached_slot {
    _Atomic uint64_t key;  /* 0 = empty */
    _Atomic uint64_t rule; /* valid once key is published without PENDING; never changes */
};

struct cached_seg {
    uintptr_t lo, hi;
    const uint8_t *eh_frame_hdr; /* NULL: the module has none (libunwind's problem then) */
};

struct cached_snapshot {
    unsigned long long adds, subs; /* dl_iterate_phdr's load/unload counters when built */
    uint32_t n_segs;
    struct cached_seg segs[CACHED_SEGS_MAX];
};

static struct {
    struct cached_slot *slots;          /* CACHED_SLOTS */
    struct cached_snapshot *snapshots;  /* CACHED_SNAPSHOTS */
    _Atomic unsigned published;         /* 1 + index of the current snapshot; 0 = none yet */
    _Atomic uint64_t epoch;             /* bumped when a module went away: old rules die */
    atomic_flag rebuilding;             /* one rebuilder at a time; others fall back */
    _Atomic int changed;                /* set by htri_unwind_modules_changed() */
} g_cached;

int htri_unwind_cached_init(void)
{
    size_t slot_bytes = (size_t)CACHED_SLOTS * sizeof(struct cached_slot);
    size_t snap_bytes = (size_t)CACHED_SNAPSHOTS * sizeof(struct cached_snapshot);
    void *slots = mmap(NULL, slot_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    if (slots == MAP_FAILED)
        return -ENOMEM;
    void *snaps = mmap(NULL, snap_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    if (snaps == MAP_FAILED) {
        munmap(slots, slot_bytes);
        return -ENOMEM;
    }
    g_cached.slots = slots;
    g_cached.snapshots = snaps;
    return 0;
}

void htri_unwind_cached_modules_changed(void)
{
    atomic_store_explicit(&g_cached.changed, 1, memory_order_relaxed);
}

static const struct cached_snapshot *cached_current(void)
{
    unsigned p = atomic_load_explicit(&g_cached.published, memory_order_acquire);
    return p ? &g_cached.snapshots[p - 1] : NULL;
}

struct cached_counters {
    unsigned long long adds, subs;
};

static bool cached_read_counters(const struct dl_phdr_info *info, size_t size,
                                 struct cached_counters *out)
{
    if (size < offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        return false;
    out->adds = info->dlpi_adds;
    out->subs = info->dlpi_subs;
    return true;
}

static int cached_probe_counters(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)cached_read_counters(info, size, arg);
    return 1; /* every object reports the same counters: the first one is enough */
}

static int cached_collect(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct cached_snapshot *s = arg;
    struct cached_counters counters;
    if (cached_read_counters(info, size, &counters)) {
        s->adds = counters.adds;
        s->subs = counters.subs;
    }
    const uint8_t *hdr = NULL;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME)
            hdr = (const uint8_t *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    }
    for (int i = 0; i < info->dlpi_phnum && s->n_segs < CACHED_SEGS_MAX; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        s->segs[s->n_segs++] = (struct cached_seg){ lo, lo + ph->p_memsz, hdr };
    }
    return 0;
}

/* Forgets every rule of an older epoch, so the slots can be reused. A slot a racing
 * inserter has claimed (PENDING) is left alone; it will just never match. */
static void cached_new_epoch(void)
{
    uint64_t epoch = (atomic_load_explicit(&g_cached.epoch, memory_order_relaxed) + 1) &
                     CACHED_KEY_EPOCH_MASK;
    atomic_store_explicit(&g_cached.epoch, epoch, memory_order_release);
    for (uint32_t i = 0; i < CACHED_SLOTS; i++) {
        uint64_t key = atomic_load_explicit(&g_cached.slots[i].key, memory_order_relaxed);
        if (key && !(key & CACHED_KEY_PENDING) &&
            (key >> CACHED_KEY_EPOCH_SHIFT & CACHED_KEY_EPOCH_MASK) != epoch)
            atomic_compare_exchange_strong(&g_cached.slots[i].key, &key, 0);
    }
}

/* Rebuilds the module list. Returns 0, or -EBUSY when another thread (or the code this
 * signal handler interrupted) is rebuilding: the caller falls back instead of waiting. */
static int cached_rebuild(void)
{
    if (atomic_flag_test_and_set_explicit(&g_cached.rebuilding, memory_order_acquire))
        return -EBUSY;
    unsigned p = atomic_load_explicit(&g_cached.published, memory_order_relaxed);
    unsigned next = p % CACHED_SNAPSHOTS; /* (p - 1 + 1) % N: the one after the current */
    struct cached_snapshot *s = &g_cached.snapshots[next];
    s->n_segs = 0;
    s->adds = s->subs = 0;
    dl_iterate_phdr(cached_collect, s);
    for (uint32_t i = 1; i < s->n_segs; i++) { /* insertion sort: tens of modules */
        struct cached_seg seg = s->segs[i];
        uint32_t j = i;
        for (; j > 0 && s->segs[j - 1].lo > seg.lo; j--)
            s->segs[j] = s->segs[j - 1];
        s->segs[j] = seg;
    }
    bool unloaded = p && g_cached.snapshots[p - 1].subs != s->subs;
    atomic_store_explicit(&g_cached.published, next + 1, memory_order_release);
    if (unloaded)
        cached_new_epoch();
    atomic_flag_clear_explicit(&g_cached.rebuilding, memory_order_release);
    return 0;
}

static bool cached_is_stale(const struct cached_snapshot *s)
{
    struct cached_counters now = { 0, 0 };
    if (!s)
        return true;
    dl_iterate_phdr(cached_probe_counters, &now);
    return now.adds != s->adds || now.subs != s->subs;
}

static const struct cached_seg *cached_find_seg(const struct cached_snapshot *s, uintptr_t pc)
{
    if (!s || s->n_segs == 0)
        return NULL;
    uint32_t lo = 0, hi = s->n_segs; /* last segment starting at or below pc */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->segs[mid].lo <= pc)
            lo = mid;
        else
            hi = mid;
    }
    const struct cached_seg *seg = &s->segs[lo];
    return seg->lo <= pc && pc < seg->hi ? seg : NULL;
}

static inline uint32_t cached_hash(uintptr_t pc)
{
    return (uint32_t)(((uint64_t)pc * 0x9e3779b97f4a7c15ull) >> (64 - CACHED_SLOTS_LOG2));
}

static void cached_insert(uint64_t key, uint64_t rule)
{
    uint32_t i = cached_hash((uintptr_t)(key & (CACHED_PC_LIMIT - 1)));
    for (int probe = 0; probe < CACHED_PROBES; probe++, i = (i + 1) & (CACHED_SLOTS - 1)) {
        struct cached_slot *slot = &g_cached.slots[i];
        uint64_t seen = atomic_load_explicit(&slot->key, memory_order_relaxed);
        if (seen == key)
            return; /* a racing thread got there first with the same answer */
        if (seen != 0)
            continue;
        if (!atomic_compare_exchange_strong(&slot->key, &seen, key | CACHED_KEY_PENDING))
            continue;
        atomic_store_explicit(&slot->rule, rule, memory_order_relaxed);
        atomic_store_explicit(&slot->key, key, memory_order_release);
        return;
    }
}

/* The slow path of cached_rule(): find the module, refreshing the list if the pc is in
 * none, compute and publish the rule. Returns RULE_NONE when the pc is in no module (the
 * walk stops there), RULE_UNSUPPORTED when we must fall back without caching. */
static HTRI_NOINLINE uint64_t cached_miss(uintptr_t pc, uint64_t key)
{
    const struct cached_snapshot *s = cached_current();
    const struct cached_seg *seg = cached_find_seg(s, pc);
    if (!seg && cached_is_stale(s)) {
        if (cached_rebuild() < 0)
            return HTRI_UNWIND_RULE_UNSUPPORTED;
        s = cached_current();
        seg = cached_find_seg(s, pc);
    }
    if (!seg)
        return HTRI_UNWIND_RULE_NONE;
    uint64_t rule = htri_unwind_cfi_rule(seg->eh_frame_hdr, pc);
    if (pc < CACHED_PC_LIMIT)
        cached_insert(key, rule);
    return rule;
}

static inline uint64_t cached_rule(uintptr_t pc, uint64_t epoch_bits)
{
    uint64_t key = (uint64_t)pc | epoch_bits;
    uint32_t i = cached_hash(pc);
    for (int probe = 0; probe < CACHED_PROBES; probe++, i = (i + 1) & (CACHED_SLOTS - 1)) {
        const struct cached_slot *slot = &g_cached.slots[i];
        uint64_t seen = atomic_load_explicit(&slot->key, memory_order_acquire);
        if (htri_likely(seen == key))
            return atomic_load_explicit(&slot->rule, memory_order_relaxed);
        if (seen == 0)
            break;
    }
    return cached_miss(pc, key);
}

int htri_unwind_cached_walk(const struct htri_unwind_regs *regs, uintptr_t *pcs, int max,
                            int skip)
{
    if (htri_unlikely(atomic_load_explicit(&g_cached.changed, memory_order_relaxed)) &&
        atomic_exchange_explicit(&g_cached.changed, 0, memory_order_relaxed)) {
        if (cached_is_stale(cached_current()) && cached_rebuild() < 0) {
            atomic_store_explicit(&g_cached.changed, 1, memory_order_relaxed);
            return -EAGAIN;
        }
    }
    struct htri_unwind_stack stack;
    if (htri_unwind_stack_bounds(regs->sp, &stack) < 0)
        return -EAGAIN;
    const uint64_t epoch_bits = atomic_load_explicit(&g_cached.epoch, memory_order_acquire)
                                << CACHED_KEY_EPOCH_SHIFT;
    /* Every slot we read lies in [regs->sp, stack.hi): above us, inside our stack. */
    const uintptr_t read_lo = regs->sp, read_hi = stack.hi - sizeof(uintptr_t);
    uintptr_t pc = regs->pc, sp = regs->sp, bp = regs->bp;
    int stored = 0, seen = 0;
    while (pc != 0) {
        if (seen++ >= skip) {
            pcs[stored++] = pc;
            if (stored == max)
                break;
        }
        /* pc is a return address: the call that made it is the instruction before. */
        uint64_t rule = cached_rule(pc - 1, epoch_bits);
        unsigned kind = htri_unwind_rule_kind(rule);
        if (htri_unlikely(kind != HTRI_UNWIND_RULE_FRAME)) {
            if (kind == HTRI_UNWIND_RULE_UNSUPPORTED)
                return -EAGAIN;
            break; /* outermost frame, or a pc in no module */
        }
        uintptr_t cfa = ((rule & HTRI_UNWIND_RULE_CFA_RBP) ? bp : sp) +
                        (uintptr_t)(intptr_t)htri_unwind_rule_cfa_off(rule);
        uintptr_t ra_at = cfa + (uintptr_t)(intptr_t)htri_unwind_rule_ra_off(rule);
        if (cfa <= sp || ra_at < read_lo || ra_at > read_hi)
            break;
        if (rule & HTRI_UNWIND_RULE_RBP_SAVED) {
            uintptr_t bp_at = cfa + (uintptr_t)(intptr_t)htri_unwind_rule_rbp_off(rule);
            if (bp_at < read_lo || bp_at > read_hi)
                break;
            bp = *(const uintptr_t *)bp_at;
        }
        pc = *(const uintptr_t *)ra_at;
        sp = cfa;
    }
    return stored;
}
