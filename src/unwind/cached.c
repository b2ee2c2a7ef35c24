/* The cached engine, called from htri_unwind_capture(): each return address's unwind rule is
 * computed once from .eh_frame (cfi.c) and kept in a lock-free hash table on mmap'd memory,
 * so a step costs a probe and two loads; a per-thread memo of the last walk's rules takes
 * the probe off the critical path for the frames a capture shares with the previous one. */
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

/* One rule, split into the fields the walk loads (the halves of the rule word of
 * unwind_int.h). Every field is accessed with __atomic builtins: the key with acquire and
 * release, the rest relaxed, valid once the key is published without PENDING. */
struct cached_slot {
    uint64_t key;    /* 0 = empty; the return address (not pc - 1) | epoch << 48 */
    uint8_t flags;   /* rule bits 0..7: kind, CFA = rbp, rbp saved */
    int8_t ra_words; /* rule bits 8..15 */
    int8_t bp_words; /* rule bits 16..23 */
    uint8_t unused;
    int32_t cfa_off; /* rule bits 32..63 */
};

/* What a lookup gives the walk. */
struct cached_hit {
    uint8_t flags;
    int8_t ra_words, bp_words;
    int32_t cfa_off;
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

void htri_unwind_cached_after_fork(void)
{
    /* Only this thread exists in the child, and it is not inside a rebuild. */
    atomic_flag_clear_explicit(&g_cached.rebuilding, memory_order_release);
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
        uint64_t key = __atomic_load_n(&g_cached.slots[i].key, __ATOMIC_RELAXED);
        if (key && !(key & CACHED_KEY_PENDING) &&
            (key >> CACHED_KEY_EPOCH_SHIFT & CACHED_KEY_EPOCH_MASK) != epoch)
            __atomic_compare_exchange_n(&g_cached.slots[i].key, &key, 0, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED);
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

/* The low bits of the return address, as is: within one module return addresses differ
 * there already, collisions across modules just probe on, and it keeps the hash to one
 * instruction on the walk's critical path (pc -> slot -> CFA -> next pc). */
static inline uint32_t cached_hash(uintptr_t pc)
{
    return (uint32_t)pc & (CACHED_SLOTS - 1);
}

static void cached_insert(uint64_t key, uint64_t rule)
{
    uint32_t i = cached_hash((uintptr_t)(key & (CACHED_PC_LIMIT - 1)));
    for (int probe = 0; probe < CACHED_PROBES; probe++, i = (i + 1) & (CACHED_SLOTS - 1)) {
        struct cached_slot *slot = &g_cached.slots[i];
        uint64_t seen = __atomic_load_n(&slot->key, __ATOMIC_RELAXED);
        if (seen == key)
            return; /* a racing thread got there first with the same answer */
        if (seen != 0)
            continue;
        if (!__atomic_compare_exchange_n(&slot->key, &seen, key | CACHED_KEY_PENDING, false,
                                         __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            continue;
        __atomic_store_n(&slot->flags, (uint8_t)rule, __ATOMIC_RELAXED);
        __atomic_store_n(&slot->ra_words, (int8_t)(rule >> 8), __ATOMIC_RELAXED);
        __atomic_store_n(&slot->bp_words, (int8_t)(rule >> 16), __ATOMIC_RELAXED);
        __atomic_store_n(&slot->cfa_off, (int32_t)(rule >> 32), __ATOMIC_RELAXED);
        __atomic_store_n(&slot->key, key, __ATOMIC_RELEASE);
        return;
    }
}

static inline struct cached_hit cached_hit_of(uint64_t rule)
{
    return (struct cached_hit){ (uint8_t)rule, (int8_t)(rule >> 8), (int8_t)(rule >> 16),
                                (int32_t)(rule >> 32) };
}

/* The slow path of cached_rule(): compute and publish the rule for the call before return
 * address `pc`. Gives RULE_NONE when the pc is in no module (the walk stops there),
 * RULE_UNSUPPORTED when we must fall back without caching.
 * Misses are rare (once per return address), so each one first asks the loader whether
 * any module came or went (one dl_iterate_phdr step): a module list that still lists an
 * unloaded library would send the parser into whatever is mapped at its old address now. */
static HTRI_NOINLINE struct cached_hit cached_miss(uintptr_t pc, uint64_t key)
{
    const struct cached_snapshot *s = cached_current();
    if (cached_is_stale(s)) {
        if (cached_rebuild() < 0)
            return cached_hit_of(HTRI_UNWIND_RULE_UNSUPPORTED);
        s = cached_current();
        /* The rebuild may have started a new epoch (a module went away): this rule, computed
         * from the new list, belongs under it, not under the caller's older epoch. */
        key = (key & (CACHED_PC_LIMIT - 1)) |
              atomic_load_explicit(&g_cached.epoch, memory_order_acquire)
                  << CACHED_KEY_EPOCH_SHIFT;
    }
    const struct cached_seg *seg = cached_find_seg(s, pc - 1);
    if (!seg)
        return cached_hit_of(HTRI_UNWIND_RULE_NONE);
    uint64_t rule = htri_unwind_cfi_rule(seg->eh_frame_hdr, pc - 1);
    if (pc < CACHED_PC_LIMIT)
        cached_insert(key, rule);
    return cached_hit_of(rule);
}

/* The rule for return address `pc`. The fields are read between two loads of the key: a
 * slot cleared and reused by a new epoch meanwhile fails the second comparison. */
static inline struct cached_hit cached_rule(uintptr_t pc, uint64_t epoch_bits)
{
    uint64_t key = (uint64_t)pc | epoch_bits;
    uint32_t i = cached_hash(pc);
    for (int probe = 0; probe < CACHED_PROBES; probe++, i = (i + 1) & (CACHED_SLOTS - 1)) {
        const struct cached_slot *slot = &g_cached.slots[i];
        uint64_t seen = __atomic_load_n(&slot->key, __ATOMIC_ACQUIRE);
        if (htri_likely(seen == key)) {
            struct cached_hit hit = {
                __atomic_load_n(&slot->flags, __ATOMIC_RELAXED),
                __atomic_load_n(&slot->ra_words, __ATOMIC_RELAXED),
                __atomic_load_n(&slot->bp_words, __ATOMIC_RELAXED),
                __atomic_load_n(&slot->cfa_off, __ATOMIC_RELAXED),
            };
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (htri_likely(__atomic_load_n(&slot->key, __ATOMIC_RELAXED) == key))
                return hit;
            break;
        }
        if (seen == 0)
            break;
    }
    return cached_miss(pc, key);
}

/* ---- per-thread memo of the last walk ----
 *
 * Consecutive captures in a thread mostly run through the same return addresses: the same
 * outer frames, often the same inner ones at another depth. The memo keeps the last walk's
 * frames (pc, sp, rbp and the rule used), and a walk uses it two ways:
 *
 *  - following: while the walk's pc equals the memo's next pc, the rule comes from the memo
 *    instead of the hash table, which takes the probe off the critical path;
 *  - replaying: when a whole state (pc, sp, rbp) equals a memo frame's, the step's result is
 *    known up to the two slots it reads (caller's pc and saved rbp, at the next memo frame's
 *    sp plus the rule's offsets): those are re-read and compared with the next memo frame,
 *    independent loads that cost about what a frame-pointer step costs.
 *
 * Either way every step is taken from the real registers and stack with the rule of its real
 * pc (a memo of another epoch is dropped), so the result is exactly that of a walk without
 * memo; the first mismatch goes back to table lookups.
 *
 *   frame k: | pc | sp | rbp | rule for pc, as the table gives it (flags 0: look it up) |
 *
 * Where to start following: the memo frame at the same depth plus the shift of the last
 * match, or the one at the same sp (outer frames stay put while inner ones change). Two
 * buffers: the walk writes the new memo while reading the old one, then flips. A capture
 * from a signal handler that interrupted a walk in this thread leaves the memo alone. */
#define CACHED_MEMO_FRAMES 64

struct cached_memo_frame {
    uintptr_t pc, sp, bp;
    struct cached_hit rule;
};

struct cached_memo {
    uint64_t epoch;     /* rules of another epoch are not to be trusted */
    uintptr_t stack_hi; /* the stack whose slots the replayed steps read */
    uint32_t n;         /* frames[0..n) are valid; each but the last has a FRAME rule */
    struct cached_memo_frame frames[CACHED_MEMO_FRAMES];
};

static __thread struct {
    bool busy;    /* a walk is using the memo (a nested one from a signal handler must not) */
    uint8_t cur;  /* index of the memo of the last walk */
    struct cached_memo memos[2];
} g_memo __attribute__((tls_model("initial-exec")));

/* One step with an ordinary frame's rule: from (pc, sp, bp) to the caller's. Returns false,
 * leaving them alone, when a slot to read would lie outside [read_lo, read_hi] or the CFA
 * does not move up the stack. */
static inline __attribute__((always_inline)) bool
cached_step(struct cached_hit rule, uintptr_t *pc, uintptr_t *sp, uintptr_t *bp, uintptr_t read_lo,
            uintptr_t read_hi)
{
    /* A branch, not a conditional move: a cmov would wait for rbp's load even in the
     * common rsp-based frame, putting every saved rbp on the critical path. */
    uintptr_t base = *sp;
    if (rule.flags & HTRI_UNWIND_RULE_CFA_RBP) {
        base = *bp;
        __asm__ volatile("" : "+r"(base));
    }
    uintptr_t cfa = base + (uintptr_t)(intptr_t)rule.cfa_off;
    uintptr_t ra_at = cfa + (uintptr_t)(intptr_t)rule.ra_words * 8;
    if (cfa <= *sp || ra_at < read_lo || ra_at > read_hi)
        return false;
    if (rule.flags & HTRI_UNWIND_RULE_RBP_SAVED) {
        uintptr_t bp_at = cfa + (uintptr_t)(intptr_t)rule.bp_words * 8;
        if (bp_at < read_lo || bp_at > read_hi)
            return false;
        *bp = *(const uintptr_t *)bp_at;
    }
    *pc = *(const uintptr_t *)ra_at;
    *sp = cfa;
    return true;
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
    const uint64_t epoch = atomic_load_explicit(&g_cached.epoch, memory_order_acquire);
    const uint64_t epoch_bits = epoch << CACHED_KEY_EPOCH_SHIFT;
    /* Every slot we read lies in [regs->sp, stack.hi): above us, inside our stack. */
    const uintptr_t read_lo = regs->sp, read_hi = stack.hi - sizeof(uintptr_t);

    const struct cached_memo *old = NULL;
    struct cached_memo *memo = NULL; /* the one being written */
    if (!g_memo.busy) {
        g_memo.busy = true;
        atomic_signal_fence(memory_order_seq_cst);
        old = &g_memo.memos[g_memo.cur];
        memo = &g_memo.memos[g_memo.cur ^ 1];
        if (old->epoch != epoch || old->n == 0)
            old = NULL;
    }
    const bool same_stack = old && old->stack_hi == stack.hi;
    const int memo_limit = memo ? CACHED_MEMO_FRAMES : 0;
    uint32_t n_memo = 0; /* frames written to `memo`, consecutively from 0 (= k while k fits) */
    uint32_t j = 0;      /* the memo frame we follow (when following), or the sp cursor */
    int shift = 0;       /* j - k at the last match */
    bool following = false;
    uintptr_t pc = regs->pc, sp = regs->sp, bp = regs->bp;
    int stored = 0, k = 0; /* k: index of the current frame, counting skipped ones */
    struct cached_hit rule;
    int result;

    while (pc != 0) {
        if (old && !following) {
            uint32_t guess = (uint32_t)(k + shift);
            if (guess < old->n && old->frames[guess].pc == pc) {
                j = guess;
                following = true;
            } else {
                while (j < old->n && old->frames[j].sp < sp)
                    j++;
                following = j < old->n && old->frames[j].sp == sp && old->frames[j].pc == pc;
            }
            if (following)
                shift = (int)j - k;
        }
        if (following && old->frames[j].sp == sp && old->frames[j].bp == bp && same_stack)
            goto replay;
        if (following && htri_unwind_rule_kind(old->frames[j].rule.flags) == HTRI_UNWIND_RULE_FRAME)
            goto follow;
    general:
        if (following && old->frames[j].rule.flags)
            rule = old->frames[j].rule;
        else
            rule = cached_rule(pc, epoch_bits);
        if (k < memo_limit) {
            memo->frames[k] = (struct cached_memo_frame){ pc, sp, bp, rule };
            n_memo++;
        }
        if (k >= skip) {
            pcs[stored++] = pc;
            if (stored == max)
                break;
        }
    step:;
        unsigned kind = htri_unwind_rule_kind(rule.flags);
        if (htri_unlikely(kind != HTRI_UNWIND_RULE_FRAME)) {
            if (kind == HTRI_UNWIND_RULE_UNSUPPORTED) {
                result = -EAGAIN;
                n_memo = 0;
                goto out;
            }
            break; /* outermost frame, or a pc in no module */
        }
        if (!cached_step(rule, &pc, &sp, &bp, read_lo, read_hi))
            break;
        k++;
        if (following) {
            j++;
            following = j < old->n && old->frames[j].pc == pc;
        }
        continue;

    follow:
        /* Frame k has old[j]'s pc and old[j]'s rule is an ordinary frame's: the same steps as
         * above, less what following makes certain, while the pcs keep matching. */
        for (;;) {
            rule = old->frames[j].rule;
            if (k < memo_limit) {
                memo->frames[k] = (struct cached_memo_frame){ pc, sp, bp, rule };
                n_memo++;
            }
            if (k >= skip) {
                pcs[stored++] = pc;
                if (stored == max)
                    goto walked;
            }
            if (!cached_step(rule, &pc, &sp, &bp, read_lo, read_hi))
                goto walked;
            k++;
            j++;
            if (j >= old->n || old->frames[j].pc != pc || pc == 0) {
                following = false;
                break;
            }
            if (old->frames[j].sp == sp && old->frames[j].bp == bp && same_stack)
                goto replay;
            if (htri_unwind_rule_kind(old->frames[j].rule.flags) != HTRI_UNWIND_RULE_FRAME)
                goto general;
        }
        continue;

    replay:
        /* Frame k equals old[j]. The memo's slots were bounds-checked against this same
         * stack when recorded, and lie above the matched sp, so they need no check. */
        for (const struct cached_memo_frame *f = &old->frames[j],
                                            *last = &old->frames[old->n - 1];;) {
            if (k < memo_limit) {
                memo->frames[k] = *f;
                n_memo++;
            }
            if (k >= skip) {
                pcs[stored++] = f->pc;
                if (stored == max)
                    goto walked;
            }
            if (htri_unlikely(f == last)) {
                /* The memo ends here: take this frame's step the ordinary way. */
                pc = f->pc, sp = f->sp, bp = f->bp;
                rule = f->rule.flags ? f->rule : cached_rule(pc, epoch_bits);
                following = false;
                j = old->n;
                goto step;
            }
            const struct cached_memo_frame *next = f + 1;
            uintptr_t next_pc = *(const uintptr_t *)(next->sp +
                                                     (uintptr_t)(intptr_t)f->rule.ra_words * 8);
            uintptr_t next_bp = f->bp;
            if (f->rule.flags & HTRI_UNWIND_RULE_RBP_SAVED)
                next_bp = *(const uintptr_t *)(next->sp +
                                               (uintptr_t)(intptr_t)f->rule.bp_words * 8);
            f = next;
            k++;
            if (next_pc != next->pc || next_bp != next->bp) {
                /* next->sp is the step's CFA whatever the slots held. */
                pc = next_pc, sp = next->sp, bp = next_bp;
                j = (uint32_t)(next - old->frames);
                following = false;
                break;
            }
        }
    }
walked:
    result = stored;
out:
    if (memo) {
        memo->n = n_memo;
        memo->epoch = epoch;
        memo->stack_hi = stack.hi;
        g_memo.cur ^= 1;
        atomic_signal_fence(memory_order_seq_cst);
        g_memo.busy = false;
    }
    return result;
}
