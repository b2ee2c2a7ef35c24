/* The agent's misuse checks (see guard.h): redzone layout and checks, the quarantine of freed
 * blocks, bad-free diagnosis, fault injection, the memory limit and the error counts. Runs on
 * the hook path: no malloc, no stdio, no locks held while the reporter runs. The design
 * follows AddressSanitizer's allocator (redzones around each chunk, a FIFO quarantine with a
 * byte budget) without its shadow memory: damage is found by checking patterns, not at the
 * faulting instruction, which is why reports say where the damage was *found*. */
#include <stdatomic.h>
#include <string.h>
#include <link.h>

#include "base/common.h"
#include "base/hash.h"
#include "base/os.h"
#include "base/spin.h"
#include "trace/format.h"
#include "agent/guard.h"

/* Capacities, sized so the address space is reserved once and touched only as used. */
#define GUARD_Q_SHARDS 8                  /* quarantine rings; threads are spread over them */
#define GUARD_Q_SLOTS (1u << 20)          /* blocks per ring at most (32 MiB reserved each) */
#define GUARD_PREFETCH_AHEAD 4             /* evictions between a prefetch and its check */
#define GUARD_CTX_SLOTS 4096              /* distinct error contexts counted exactly */
#define GUARD_HEADER_MAGIC 0x48545247u    /* "GRTH" */
#define GUARD_STACK_GUESS (8u << 20)      /* how far above sp an address counts as "stack" */

typedef struct guard_qring {
    volatile int lock;
    htri_guard_qentry *ring;        /* reserved when a thread is first dealt it */
    uint64_t head, tail, bytes;
} __attribute__((aligned(64))) guard_qring;

static struct {
    htri_guard_opts opts;
    size_t rz;                      /* redzone actually used (multiple of 16), 0 = layout off */
    htri_guard_report_fn report;
    void *report_user;

    /* quarantine: FIFO rings, each of entries [head, tail) by sequence number, and one byte
     * budget over all of them. A thread queues into and evicts from its own ring (threads are
     * dealt rings in turn), so two threads freeing at once no longer meet on one lock: with a
     * single ring, that lock was a quarter of a 2-thread churn run. While the total is over
     * budget a thread evicts its own oldest block if its ring holds its share of the bytes,
     * else the fullest ring's oldest (and another ring's when its own is empty), so a
     * single-threaded program has one exact FIFO of the whole budget. No index by
     * address: an index keyed by ever-new addresses costs cache misses on every free, while
     * only bad frees (rare) look blocks up, and they can afford a scan of every ring. */
    guard_qring q[GUARD_Q_SHARDS];
    _Alignas(64) _Atomic uint64_t q_total;   /* bytes queued, all rings */
    atomic_uint q_dealt;                      /* rings handed to threads so far */
    uint64_t q_budget;

    /* fault injection */
    bool fail_any, fail_in_set;
    _Atomic uint64_t fail_counted;
    int n_fail_ranges;
    uintptr_t fail_ranges[64][2];

    /* limit */
    _Atomic uint64_t live_bytes;

    /* error counts */
    volatile int ctx_lock;
    uint64_t n_errors, n_contexts;
    uint64_t ctx_keys[GUARD_CTX_SLOTS];
} g_guard;

static inline void guard_lock(volatile int *l) { htri_spin_lock(l); }
static inline void guard_unlock(volatile int *l) { htri_spin_unlock(l); }

/* ---- Options ------------------------------------------------------------------------- */

void htri_guard_opts_default(htri_guard_opts *o)
{
    memset(o, 0, sizeof *o);
    o->redzone = 16;
    o->quarantine_bytes = 64u << 20;
    o->fill_alloc = -1;
    o->limit_action = HTRI_LIMIT_FAIL;
}

static int guard_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    int base = 10;
    if (!s || !*s) return -EINVAL;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        if (!*s) return -EINVAL;
    }
    for (; *s; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9') d = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f') d = (unsigned)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F') d = (unsigned)(*s - 'A' + 10);
        else return -EINVAL;
        if (__builtin_mul_overflow(v, (uint64_t)base, &v) || __builtin_add_overflow(v, d, &v))
            return -EINVAL;
    }
    *out = v;
    return 0;
}

/* "512M", "64m", "1G", "4096", "16k": powers of 1024. */
static int guard_parse_size(const char *s, uint64_t *out)
{
    char num[32];
    size_t n = s ? strlen(s) : 0;
    unsigned shift = 0;
    if (n == 0 || n >= sizeof num) return -EINVAL;
    memcpy(num, s, n + 1);
    char last = num[n - 1];
    if (last == 'b' || last == 'B') { num[--n] = 0; if (!n) return -EINVAL; last = num[n - 1]; }
    switch (last) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    default: break;
    }
    if (shift) num[--n] = 0;
    uint64_t v;
    if (guard_parse_u64(num, &v)) return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift)) return -EINVAL;
    *out = v << shift;
    return 0;
}

/* "0.01", "1e-3" is not accepted; "1", "0", ".5", "50%" are. Result in parts per million. */
static int guard_parse_rate(const char *s, uint32_t *ppm)
{
    uint64_t ip = 0, frac = 0, scale = 1000000;
    if (!s || !*s) return -EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        ip = ip * 10 + (uint64_t)(*s - '0');
        if (ip > 100) return -EINVAL;
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++) {
            scale /= 10;
            frac += (uint64_t)(*s - '0') * scale;
        }
    }
    uint64_t v = ip * 1000000 + frac;
    if (*s == '%') { v /= 100; s++; }
    if (*s || v > 1000000) return -EINVAL;
    *ppm = (uint32_t)v;
    return 0;
}

static int guard_parse_bool(const char *s, bool *out)
{
    if (!s || !strcmp(s, "yes") || !strcmp(s, "1") || !strcmp(s, "true")) { *out = true; return 0; }
    if (!strcmp(s, "no") || !strcmp(s, "0") || !strcmp(s, "false")) { *out = false; return 0; }
    return -EINVAL;
}

int htri_guard_parse_option(htri_guard_opts *o, const char *name, const char *value)
{
    uint64_t v;
    if (!strcmp(name, "redzone")) {
        if (guard_parse_size(value, &v) || v > 4096) return -EINVAL;
        o->redzone = (size_t)v;
    } else if (!strcmp(name, "quarantine")) {
        if (guard_parse_size(value, &v) || v > ((uint64_t)1 << 44)) return -EINVAL;
        o->quarantine_bytes = (size_t)v;
    } else if (!strcmp(name, "fill-alloc")) {
        if (!value) { o->fill_alloc = HTR_FILL_FRESH; return 0; }
        if (guard_parse_u64(value, &v) || v > 255) return -EINVAL;
        o->fill_alloc = (int)v;
    } else if (!strcmp(name, "fail-after")) {
        if (guard_parse_u64(value, &v)) return -EINVAL;
        o->fail_after = v;
        o->fail_after_set = true;
    } else if (!strcmp(name, "fail-every")) {
        if (guard_parse_u64(value, &v) || v == 0) return -EINVAL;
        o->fail_every = v;
    } else if (!strcmp(name, "fail-rate")) {
        if (guard_parse_rate(value, &o->fail_rate_ppm)) return -EINVAL;
    } else if (!strcmp(name, "seed")) {
        if (guard_parse_u64(value, &v)) return -EINVAL;
        o->seed = v;
    } else if (!strcmp(name, "fail-in")) {
        size_t n = value ? strlen(value) : 0;
        if (n == 0 || n >= sizeof o->fail_in) return -EINVAL;
        memcpy(o->fail_in, value, n + 1);
    } else if (!strcmp(name, "limit")) {
        if (guard_parse_size(value, &v) || v == 0) return -EINVAL;
        o->limit_bytes = v;
    } else if (!strcmp(name, "limit-action")) {
        if (value && !strcmp(value, "fail")) o->limit_action = HTRI_LIMIT_FAIL;
        else if (value && !strcmp(value, "abort")) o->limit_action = HTRI_LIMIT_ABORT;
        else return -EINVAL;
    } else if (!strcmp(name, "abort-on-error")) {
        return guard_parse_bool(value, &o->abort_on_error);
    } else if (!strcmp(name, "error-exitcode")) {
        if (guard_parse_u64(value, &v) || v > 255) return -EINVAL;
        o->error_exitcode = (int)v;
    } else {
        return -ENOENT;
    }
    return 0;
}

/* ---- Set-up -------------------------------------------------------------------------- */

static void guard_quarantine_release(void)
{
    for (int i = 0; i < GUARD_Q_SHARDS; i++) {
        if (g_guard.q[i].ring)
            htri_os_pages_free(g_guard.q[i].ring, GUARD_Q_SLOTS * sizeof(htri_guard_qentry));
        g_guard.q[i].ring = NULL;
    }
    g_guard.q_budget = 0;
}

int htri_guard_init(const htri_guard_opts *o, htri_guard_report_fn report, void *user)
{
    int rc = 0;
    guard_quarantine_release();
    memset(&g_guard, 0, sizeof g_guard);
    g_guard.opts = *o;
    g_guard.rz = (o->redzone + 15) & ~(size_t)15;
    g_guard.report = report;
    g_guard.report_user = user;

    if (o->quarantine_bytes) {
        /* ring 0 now, so the quarantine works (on one ring) even if no other can be had */
        g_guard.q[0].ring = htri_os_pages_reserve(GUARD_Q_SLOTS * sizeof(htri_guard_qentry));
        if (!g_guard.q[0].ring) {
            guard_quarantine_release();
            rc = -ENOMEM;
        } else {
            g_guard.q_budget = o->quarantine_bytes;
        }
    }

    g_guard.fail_any = o->fail_after_set || o->fail_every || o->fail_rate_ppm;
    if (o->fail_in[0]) {
        g_guard.fail_in_set = true;
        g_guard.n_fail_ranges = htri_guard_resolve_function(
            o->fail_in, g_guard.fail_ranges, (int)HTRI_ARRAY_LEN(g_guard.fail_ranges));
        if (g_guard.n_fail_ranges == 0 && rc == 0) rc = -ENOENT;
        /* --fail-in alone means "fail every allocation made under FUNCTION" */
        if (!g_guard.fail_any) {
            g_guard.opts.fail_after_set = true;
            g_guard.opts.fail_after = 0;
            g_guard.fail_any = true;
        }
    }
    return rc;
}

void htri_guard_shutdown(void) { guard_quarantine_release(); }

const htri_guard_opts *htri_guard_options(void) { return &g_guard.opts; }

/* ---- Errors -------------------------------------------------------------------------- */

static uint64_t guard_context_key(const htri_error_rec *e)
{
    uint64_t k = htri_hash64(((uint64_t)e->kind << 56) ^ ((uint64_t)e->where_node << 24) ^
                             (e->where_node ? 0 : (uint64_t)e->alloc_node));
    return k ? k : 1;
}

/* Counts the error in its context, then hands it to the reporter (no lock held). */
static void guard_report(htri_error_rec *e)
{
    uint64_t key = guard_context_key(e);
    guard_lock(&g_guard.ctx_lock);
    g_guard.n_errors++;
    size_t i = key & (GUARD_CTX_SLOTS - 1), probes = 0;
    for (; probes < GUARD_CTX_SLOTS; probes++, i = (i + 1) & (GUARD_CTX_SLOTS - 1)) {
        if (g_guard.ctx_keys[i] == key) break;
        if (g_guard.ctx_keys[i] == 0) {
            g_guard.ctx_keys[i] = key;
            g_guard.n_contexts++;
            break;
        }
    }
    if (probes == GUARD_CTX_SLOTS) g_guard.n_contexts++; /* set full: assume a new context */
    guard_unlock(&g_guard.ctx_lock);
    if (g_guard.report) g_guard.report(g_guard.report_user, e);
}

static void guard_q_lock_all(void)
{
    for (int i = 0; i < GUARD_Q_SHARDS; i++) guard_lock(&g_guard.q[i].lock);
}

static void guard_q_unlock_all(void)
{
    for (int i = GUARD_Q_SHARDS - 1; i >= 0; i--) guard_unlock(&g_guard.q[i].lock);
}

void htri_guard_fork_prepare(void)
{
    guard_q_lock_all();
    guard_lock(&g_guard.ctx_lock);
}

void htri_guard_fork_parent(void)
{
    guard_unlock(&g_guard.ctx_lock);
    guard_q_unlock_all();
}

void htri_guard_fork_child(void)
{
    g_guard.n_errors = 0;
    g_guard.n_contexts = 0;
    memset(g_guard.ctx_keys, 0, sizeof g_guard.ctx_keys);
    guard_unlock(&g_guard.ctx_lock);
    guard_q_unlock_all();
}

void htri_guard_error_counts(uint64_t *n_errors, uint64_t *n_contexts)
{
    guard_lock(&g_guard.ctx_lock);
    if (n_errors) *n_errors = g_guard.n_errors;
    if (n_contexts) *n_contexts = g_guard.n_contexts;
    guard_unlock(&g_guard.ctx_lock);
}

/* ---- Block layout -------------------------------------------------------------------- */

typedef struct guard_header {
    uint64_t size;
    uint32_t front;
    uint32_t check;
} guard_header;
_Static_assert(sizeof(guard_header) == HTRI_GUARD_HEADER, "header layout");

static uint32_t guard_header_check(uintptr_t user, uint64_t size, uint32_t front)
{
    return (uint32_t)htri_hash64(user ^ (size << 20) ^ front) ^ GUARD_HEADER_MAGIC;
}

static size_t guard_front(size_t align)
{
    size_t a = align > 16 ? align : 16;
    return (HTRI_GUARD_HEADER + g_guard.rz + a - 1) & ~(a - 1);
}

bool htri_guard_layout_on(void) { return g_guard.rz != 0; }

int htri_guard_size_for(size_t size, size_t align, size_t *raw_size, size_t *raw_align)
{
    if (align & (align - 1)) return -EINVAL;
    *raw_align = align > 16 ? align : 0;
    if (!g_guard.rz) {
        *raw_size = size;
        return 0;
    }
    /* the offset to raw is kept in 32 bits of the header */
    if (align > (1u << 30)) return -ENOMEM;
    size_t total;
    if (htri_add_overflow(size, guard_front(align) + g_guard.rz, &total)) return -ENOMEM;
    *raw_size = total;
    return 0;
}

void *htri_guard_init_block(void *raw, size_t size, size_t align, int fill)
{
    uint8_t *user = raw;
    if (g_guard.rz) {
        size_t front = guard_front(align);
        user = (uint8_t *)raw + front;
        guard_header h = { size, (uint32_t)front, guard_header_check((uintptr_t)user, size, (uint32_t)front) };
        memcpy(user - g_guard.rz - HTRI_GUARD_HEADER, &h, sizeof h);
        memset(user - g_guard.rz, HTR_FILL_GUARD, g_guard.rz);
        memset(user + size, HTR_FILL_GUARD, g_guard.rz);
    }
    if (fill >= 0) memset(user, fill, size);
    return user;
}

static int guard_header_get(const void *user, guard_header *h)
{
    if (!g_guard.rz || !user) return -1;
    memcpy(h, (const uint8_t *)user - g_guard.rz - HTRI_GUARD_HEADER, sizeof *h);
    if (h->check != guard_header_check((uintptr_t)user, h->size, h->front)) return -1;
    return 0;
}

void *htri_guard_raw(const void *user)
{
    guard_header h;
    if (!g_guard.rz) return (void *)user;
    if (guard_header_get(user, &h)) return NULL;
    return (uint8_t *)user - h.front;
}

void *htri_guard_raw_for(const void *user, size_t align)
{
    return g_guard.rz ? (uint8_t *)user - guard_front(align) : (void *)user;
}

void *htri_guard_raw_of(void *user, uint16_t tag)
{
    if (!(tag & HTRI_GUARD_TAG_ON)) return user;
    void *raw = htri_guard_raw(user);
    return raw ? raw : htri_guard_raw_for(user, htri_guard_tag_align(tag));
}

size_t htri_guard_usable_size(const void *user)
{
    guard_header h;
    return guard_header_get(user, &h) ? 0 : (size_t)h.size;
}

/* First and last byte in p[0..n) that differ from `want`; returns 0 if none. Word-wide, as
 * the quarantine verifies every freed byte and that cost shows on churn. */
static int guard_find_damage(const uint8_t *p, size_t n, uint8_t want, size_t *first, size_t *last)
{
    uint64_t pat = 0x0101010101010101ull * want;
    size_t i = 0;
    while (i < n && ((uintptr_t)(p + i) & 7)) {
        if (p[i] != want) goto found;
        i++;
    }
    /* 64 bytes per step in vector registers, one branch: this loop is most of what the
     * quarantine costs. Any difference stops it; the word and byte loops below locate it. */
    typedef uint64_t guard_v2 __attribute__((vector_size(16)));
    const guard_v2 vpat = { pat, pat };
    for (; i + 64 <= n; i += 64) {
        guard_v2 a, b, c, d;
        memcpy(&a, p + i, 16);
        memcpy(&b, p + i + 16, 16);
        memcpy(&c, p + i + 32, 16);
        memcpy(&d, p + i + 48, 16);
        guard_v2 x = (a ^ vpat) | (b ^ vpat) | (c ^ vpat) | (d ^ vpat);
        if (x[0] | x[1]) break;
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w != pat) break;
    }
    for (; i < n; i++)
        if (p[i] != want) goto found;
    return 0;
found:
    *first = i;
    size_t j = n;
    while (j > i + 1 && p[j - 1] == want) j--;
    *last = j - 1;
    return 1;
}

static void guard_fill_damage(htri_guard_damage *d, uint8_t kind, const uint8_t *base, int64_t off_from_user,
                              size_t first, size_t last)
{
    d->kind = kind;
    d->offset = off_from_user;
    d->length = last - first + 1;
    d->n_bytes = d->length > HTRI_ERR_MAX_BYTES ? HTRI_ERR_MAX_BYTES : (uint8_t)d->length;
    memcpy(d->bytes, base + first, d->n_bytes);
}

/* Checks one side: 0 intact, 1 damaged (*out set). */
static int guard_check_side(const uint8_t *user, size_t size, bool rear, htri_guard_damage *out)
{
    size_t rz = g_guard.rz, first, last;
    const uint8_t *zone = rear ? user + size : user - rz;
    if (!guard_find_damage(zone, rz, HTR_FILL_GUARD, &first, &last)) return 0;
    if (out) {
        int64_t off = rear ? (int64_t)(size + first) : (int64_t)first - (int64_t)rz;
        guard_fill_damage(out, rear ? HTRI_ERR_OVERRUN : HTRI_ERR_UNDERRUN, zone, off, first, last);
    }
    return 1;
}

int htri_guard_check_block(const void *user, size_t size, htri_guard_damage *out)
{
    if (!g_guard.rz) return 0;
    return guard_check_side(user, size, false, out) || guard_check_side(user, size, true, out);
}

static void guard_damage_to_error(const htri_guard_damage *d, const void *user, size_t size,
                                  htri_error_rec *e)
{
    e->kind = d->kind;
    e->addr = (uintptr_t)user + (uintptr_t)d->offset;
    e->block_addr = (uintptr_t)user;
    e->block_size = size;
    e->offset = d->offset;
    e->length = d->length;
    e->n_bytes = d->n_bytes;
    memcpy(e->bytes, d->bytes, d->n_bytes);
}

int htri_guard_verify_block(const void *user, size_t size, uint32_t alloc_node,
                            uint8_t alloc_family, uint32_t where_node, uint8_t free_family)
{
    int n = 0;
    if (!g_guard.rz || !user) return 0;
    for (int side = 0; side < 2; side++) {
        htri_guard_damage d;
        if (!guard_check_side(user, size, side == 1, &d)) continue;
        htri_error_rec e = { 0 };
        guard_damage_to_error(&d, user, size, &e);
        e.alloc_family = alloc_family;
        e.free_family = free_family;
        e.alloc_node = alloc_node;
        e.where_node = where_node;
        e.addr_class = HTRI_ADDR_INTERIOR;
        /* repair first: the block may be freed by the time the reporter returns */
        memset(side ? (uint8_t *)user + size : (uint8_t *)user - g_guard.rz, HTR_FILL_GUARD, g_guard.rz);
        guard_report(&e);
        n++;
    }
    return n;
}

int htri_guard_verify_blocks(const htri_block *blocks, size_t n, uint32_t where_node)
{
    int errs = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(blocks[i].tag & HTRI_GUARD_TAG_ON)) continue;
        if (htri_guard_usable_size((const void *)blocks[i].addr) != blocks[i].size) continue;
        errs += htri_guard_verify_block((const void *)blocks[i].addr, blocks[i].size, blocks[i].node,
                                        blocks[i].family, where_node, HTRI_NOFAM);
    }
    return errs;
}

/* ---- Bad frees ----------------------------------------------------------------------- */

bool htri_guard_families_match(uint8_t fam, uint8_t ffam)
{
    switch (ffam) {
    case HTRI_FFAM_FREE:
    case HTRI_FFAM_REALLOC:
        return fam != HTRI_FAM_NEW && fam != HTRI_FAM_NEW_ARRAY;
    case HTRI_FFAM_DELETE:
        return fam == HTRI_FAM_NEW;
    case HTRI_FFAM_DELETE_ARRAY:
        return fam == HTRI_FAM_NEW_ARRAY;
    default:
        return true;
    }
}

typedef struct guard_phdr_probe { uintptr_t addr; int found; } guard_phdr_probe;

static int guard_phdr_cb(struct dl_phdr_info *info, size_t sz, void *arg)
{
    guard_phdr_probe *pr = arg;
    (void)sz;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (pr->addr >= lo && pr->addr < hi) {
            pr->found = 1;
            return 1;
        }
    }
    return 0;
}

int htri_guard_classify_addr(uintptr_t addr)
{
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    /* the caller's frames lie above ours; a little below covers a leaf's red zone */
    if (addr + 4096 >= sp && addr < sp + GUARD_STACK_GUESS) return HTRI_ADDR_STACK;
    guard_phdr_probe pr = { addr, 0 };
    dl_iterate_phdr(guard_phdr_cb, &pr);
    return pr.found ? HTRI_ADDR_DATA : HTRI_ADDR_UNKNOWN;
}

int htri_guard_report_invalid_free(uintptr_t addr, uint8_t ffam, uint32_t where_node,
                                   const htri_block *live)
{
    htri_error_rec e = { 0 };
    htri_guard_qentry q;
    e.kind = HTRI_ERR_INVALID_FREE;
    e.free_family = ffam;
    e.alloc_family = HTRI_NOFAM;
    e.where_node = where_node;
    e.addr = addr;
    if (htri_guard_quarantine_find(addr, false, &q) || htri_guard_quarantine_find(addr, true, &q)) {
        e.addr_class = HTRI_ADDR_FREED;
        e.block_addr = q.user;
        e.block_size = q.size;
        e.alloc_node = q.alloc_node;
        e.free_node = q.free_node;
        e.alloc_family = q.family;
    } else if (live) {
        e.addr_class = HTRI_ADDR_INTERIOR;
        e.block_addr = live->addr;
        e.block_size = live->size;
        e.alloc_node = live->node;
        e.alloc_family = live->family;
    } else {
        e.addr_class = (uint8_t)htri_guard_classify_addr(addr);
    }
    e.offset = e.block_addr ? (int64_t)(addr - e.block_addr) : 0;
    guard_report(&e);
    return 1;
}

int htri_guard_report_mismatch(const htri_block *b, uint8_t ffam, uint32_t where_node)
{
    htri_error_rec e = { 0 };
    e.kind = HTRI_ERR_MISMATCHED_FREE;
    e.free_family = ffam;
    e.alloc_family = b->family;
    e.where_node = where_node;
    e.alloc_node = b->node;
    e.addr = b->addr;
    e.block_addr = b->addr;
    e.block_size = b->size;
    e.addr_class = HTRI_ADDR_INTERIOR;
    guard_report(&e);
    return 1;
}

/* ---- Quarantine ---------------------------------------------------------------------- */

/* What a queued block costs against the budget: its bytes plus what the layout adds. */
static uint64_t guard_q_cost(const htri_guard_qentry *e)
{
    return e->size + (g_guard.rz ? 2 * g_guard.rz + HTRI_GUARD_HEADER : 0);
}

/* This thread's ring: dealt in turn at its first free (ring 0 if no other can be had), so
 * the first GUARD_Q_SHARDS threads each get one of their own. */
static __thread unsigned t_qring __attribute__((tls_model("initial-exec")));   /* 1-based */

static guard_qring *guard_q_mine(void)
{
    unsigned i = t_qring;
    if (htri_likely(i && g_guard.q[i - 1].ring)) return &g_guard.q[i - 1];
    i = atomic_fetch_add_explicit(&g_guard.q_dealt, 1, memory_order_relaxed) % GUARD_Q_SHARDS;
    guard_qring *r = &g_guard.q[i];
    if (!r->ring) {
        guard_lock(&r->lock);
        if (!r->ring) r->ring = htri_os_pages_reserve(GUARD_Q_SLOTS * sizeof(htri_guard_qentry));
        guard_unlock(&r->lock);
        if (!r->ring) i = 0;
    }
    t_qring = i + 1;
    return &g_guard.q[i];
}

int htri_guard_quarantine_push(const htri_guard_qentry *e)
{
    if (!g_guard.q_budget || guard_q_cost(e) > g_guard.q_budget / 4) return 1;
    memset((void *)e->user, HTR_FILL_FREED, e->size);
    guard_qring *r = guard_q_mine();
    guard_lock(&r->lock);
    if (r->tail - r->head >= GUARD_Q_SLOTS) {
        guard_unlock(&r->lock);
        return 1;
    }
    r->ring[r->tail & (GUARD_Q_SLOTS - 1)] = *e;
    /* atomic stores: guard_q_take reads these two without the lock */
    __atomic_store_n(&r->tail, r->tail + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&r->bytes, r->bytes + guard_q_cost(e), __ATOMIC_RELAXED);
    /* under the ring lock, so a take of this block never subtracts it before it is added
     * (the unsigned total would wrap and read as far over budget) */
    atomic_fetch_add_explicit(&g_guard.q_total, guard_q_cost(e), memory_order_relaxed);
    guard_unlock(&r->lock);
    return 0;
}

/* Verifies a block leaving the quarantine (or checked in place): its fill and redzones. */
static int guard_q_check(const htri_guard_qentry *q, htri_error_rec *e)
{
    const uint8_t *user = (const uint8_t *)q->user;
    size_t first, last;
    htri_guard_damage d;
    memset(e, 0, sizeof *e);
    if (guard_find_damage(user, q->size, HTR_FILL_FREED, &first, &last)) {
        guard_fill_damage(&d, HTRI_ERR_WRITE_AFTER_FREE, user, (int64_t)first, first, last);
    } else if (g_guard.rz && q->align_log2 && guard_check_side(user, q->size, false, &d)) {
        d.kind = HTRI_ERR_WRITE_AFTER_FREE;
    } else if (g_guard.rz && q->align_log2 && guard_check_side(user, q->size, true, &d)) {
        d.kind = HTRI_ERR_WRITE_AFTER_FREE;
    } else {
        return 0;
    }
    guard_damage_to_error(&d, user, q->size, e);
    e->alloc_node = q->alloc_node;
    e->free_node = q->free_node;
    e->alloc_family = q->family;
    e->free_family = q->ffamily;
    e->addr_class = HTRI_ADDR_FREED;
    return 1;
}

/* Takes ring r's oldest block into *out if it has one and, with only_over_budget, if the
 * quarantine is over budget (bytes in all rings, or this ring's slots). Ring unlocked. */
static bool guard_q_take_from(guard_qring *r, htri_guard_qentry *out, bool only_over_budget)
{
    if (!r->ring) return false;
    guard_lock(&r->lock);
    uint64_t n = r->tail - r->head;
    bool over = atomic_load_explicit(&g_guard.q_total, memory_order_relaxed) > g_guard.q_budget ||
                n > GUARD_Q_SLOTS / 8 * 7;
    if (n == 0 || (only_over_budget && !over)) {
        guard_unlock(&r->lock);
        return false;
    }
    *out = r->ring[r->head & (GUARD_Q_SLOTS - 1)];
    __atomic_store_n(&r->head, r->head + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&r->bytes, r->bytes - guard_q_cost(out), __ATOMIC_RELAXED);
    if (n > GUARD_PREFETCH_AHEAD) {
        /* blocks leave cold, a whole budget of frees after they came: start loading one a
         * few evictions ahead (header, fill, redzone), so its check does not wait on memory */
        const uint8_t *ahead = (const uint8_t *)
            r->ring[(r->head + GUARD_PREFETCH_AHEAD - 1) & (GUARD_Q_SLOTS - 1)].user;
        for (int line = -1; line < 5; line++) __builtin_prefetch(ahead + 64 * line);
    }
    atomic_fetch_sub_explicit(&g_guard.q_total, guard_q_cost(out), memory_order_relaxed);
    guard_unlock(&r->lock);
    return true;
}

static int guard_q_take(htri_guard_qentry *out, bool only_over_budget)
{
    if (!g_guard.q[0].ring) return 0;
    guard_qring *mine = guard_q_mine();
    /* the common answer, "within budget", without a lock (racy reads: the locked test in
     * guard_q_take_from decides; a miss here only delays an eviction to the next free) */
    if (only_over_budget &&
        atomic_load_explicit(&g_guard.q_total, memory_order_relaxed) <= g_guard.q_budget &&
        __atomic_load_n(&mine->tail, __ATOMIC_RELAXED) -
        __atomic_load_n(&mine->head, __ATOMIC_RELAXED) <= GUARD_Q_SLOTS / 8 * 7)
        return 0;
    bool got = false;
    if (only_over_budget) {
        /* Own ring first only while it holds its share of the budget; otherwise the fullest
         * ring's oldest. A thread whose ring is small (it started freeing after others had
         * filled the budget) would else evict the block it has just freed, and a write to it
         * would go unseen: one FIFO would keep it for a whole budget of frees. */
        unsigned n_dealt = atomic_load_explicit(&g_guard.q_dealt, memory_order_relaxed);
        uint64_t share = atomic_load_explicit(&g_guard.q_total, memory_order_relaxed) /
                         (n_dealt < 1 ? 1 : n_dealt > GUARD_Q_SHARDS ? GUARD_Q_SHARDS : n_dealt);
        if (__atomic_load_n(&mine->bytes, __ATOMIC_RELAXED) < share) {
            guard_qring *fat = mine;
            uint64_t fat_bytes = __atomic_load_n(&mine->bytes, __ATOMIC_RELAXED);
            for (int i = 0; i < GUARD_Q_SHARDS; i++) {
                uint64_t b = __atomic_load_n(&g_guard.q[i].bytes, __ATOMIC_RELAXED);
                if (g_guard.q[i].ring && b > fat_bytes) {
                    fat = &g_guard.q[i];
                    fat_bytes = b;
                }
            }
            if (fat != mine) got = guard_q_take_from(fat, out, true);
        }
    }
    if (!got) got = guard_q_take_from(mine, out, only_over_budget);
    /* own ring empty (or, at exit, drained): the others', in turn */
    for (int i = 0; !got && i < GUARD_Q_SHARDS; i++)
        if (&g_guard.q[i] != mine) got = guard_q_take_from(&g_guard.q[i], out, only_over_budget);
    if (!got) return 0;

    htri_error_rec e;
    if (guard_q_check(out, &e)) guard_report(&e);
    return 1;
}

void *htri_guard_qentry_raw(const htri_guard_qentry *q)
{
    return q->align_log2 ? htri_guard_raw_of((void *)q->user, (uint16_t)(HTRI_GUARD_TAG_ON | q->align_log2))
                         : (void *)q->user;
}

int htri_guard_quarantine_evict(htri_guard_qentry *out) { return guard_q_take(out, true); }
int htri_guard_quarantine_pop(htri_guard_qentry *out) { return guard_q_take(out, false); }

int htri_guard_quarantine_find(uintptr_t addr, bool interior, htri_guard_qentry *out)
{
    int found = 0;
    for (int i = 0; i < GUARD_Q_SHARDS && !found; i++) {
        guard_qring *r = &g_guard.q[i];
        if (!r->ring) continue;
        guard_lock(&r->lock);
        /* newest first: a double free usually follows its first free closely */
        for (uint64_t s = r->tail; s != r->head; s--) {
            const htri_guard_qentry *q = &r->ring[(s - 1) & (GUARD_Q_SLOTS - 1)];
            if (q->user == addr ||
                (interior && addr > q->user && addr < q->user + (q->size ? q->size : 1))) {
                *out = *q;
                found = 1;
                break;
            }
        }
        guard_unlock(&r->lock);
    }
    return found;
}

void htri_guard_quarantine_stats(size_t *n_blocks, uint64_t *bytes)
{
    size_t n = 0;
    uint64_t b = 0;
    for (int i = 0; i < GUARD_Q_SHARDS; i++) {
        guard_qring *r = &g_guard.q[i];
        guard_lock(&r->lock);
        n += (size_t)(r->tail - r->head);
        b += r->bytes;
        guard_unlock(&r->lock);
    }
    if (n_blocks) *n_blocks = n;
    if (bytes) *bytes = b;
}

int htri_guard_quarantine_verify_all(void)
{
    /* Blocks are checked under their ring's lock (eviction would free them under our feet),
     * their errors reported after it, a batch at a time, repaired so each is reported once. */
    enum { BATCH = 16 };
    htri_error_rec errs[BATCH];
    int total = 0;
    for (int i = 0; i < GUARD_Q_SHARDS; i++) {
        guard_qring *r = &g_guard.q[i];
        if (!r->ring) continue;
        uint64_t s = 0;
        bool started = false;
        for (;;) {
            int n = 0;
            guard_lock(&r->lock);
            if (!started || s < r->head) s = r->head;
            started = true;
            for (; s != r->tail && n < BATCH; s++) {
                const htri_guard_qentry *q = &r->ring[s & (GUARD_Q_SLOTS - 1)];
                if (guard_q_check(q, &errs[n])) {
                    memset((void *)q->user, HTR_FILL_FREED, q->size);
                    if (g_guard.rz && q->align_log2) {
                        memset((uint8_t *)q->user - g_guard.rz, HTR_FILL_GUARD, g_guard.rz);
                        memset((uint8_t *)q->user + q->size, HTR_FILL_GUARD, g_guard.rz);
                    }
                    n++;
                }
            }
            bool done = s == r->tail;
            guard_unlock(&r->lock);
            for (int k = 0; k < n; k++) guard_report(&errs[k]);
            total += n;
            if (done) break;
        }
    }
    return total;
}

/* ---- Fault injection ----------------------------------------------------------------- */

bool htri_guard_stack_in_fail_fn(const uintptr_t *pcs, int npcs)
{
    if (!g_guard.fail_in_set) return true;
    for (int i = 0; i < npcs; i++) {
        /* return addresses point after the call: the call itself is at pc - 1 */
        uintptr_t pc = pcs[i] - 1;
        for (int r = 0; r < g_guard.n_fail_ranges; r++)
            if (pc >= g_guard.fail_ranges[r][0] && pc < g_guard.fail_ranges[r][1]) return true;
    }
    return false;
}

int htri_guard_should_fail(size_t size, const uintptr_t *pcs, int npcs)
{
    (void)size;
    if (!g_guard.fail_any) return 0;
    if (!htri_guard_stack_in_fail_fn(pcs, npcs)) return 0;
    uint64_t k = atomic_fetch_add_explicit(&g_guard.fail_counted, 1, memory_order_relaxed) + 1;
    const htri_guard_opts *o = &g_guard.opts;
    if (o->fail_after_set && k > o->fail_after) return HTRI_FAULT_AFTER;
    if (o->fail_every && k % o->fail_every == 0) return HTRI_FAULT_EVERY;
    /* the k-th draw is a pure function of (seed, k): the same allocations fail on every run
     * whatever the threads' interleaving does to anything else */
    if (o->fail_rate_ppm && htri_hash64(htri_hash64(o->seed) ^ k) % 1000000 < o->fail_rate_ppm)
        return HTRI_FAULT_RATE;
    return 0;
}

/* ---- Memory limit -------------------------------------------------------------------- */

int htri_guard_limit_reserve(size_t size)
{
    uint64_t limit = g_guard.opts.limit_bytes;
    if (!limit) return 0;
    uint64_t now = atomic_fetch_add_explicit(&g_guard.live_bytes, size, memory_order_relaxed) + size;
    if (now > limit || now < size) {
        atomic_fetch_sub_explicit(&g_guard.live_bytes, size, memory_order_relaxed);
        return -ENOMEM;
    }
    return 0;
}

void htri_guard_limit_release(size_t size)
{
    if (g_guard.opts.limit_bytes)
        atomic_fetch_sub_explicit(&g_guard.live_bytes, size, memory_order_relaxed);
}

uint64_t htri_guard_live_bytes(void)
{
    return atomic_load_explicit(&g_guard.live_bytes, memory_order_relaxed);
}

int htri_guard_top_holders(const htri_block *blocks, size_t n, htri_limit_holder *out, int k)
{
    size_t cap = 64;
    while (cap < 2 * n) cap <<= 1;
    size_t bytes = cap * sizeof(htri_limit_holder);
    htri_limit_holder *agg = htri_os_pages_alloc(bytes);
    if (!agg) return -ENOMEM;
    /* node 0 (no stack) is a real key, so slots are marked used by blocks != 0 */
    for (size_t i = 0; i < n; i++) {
        size_t s = htri_hash64(blocks[i].node) & (cap - 1);
        while (agg[s].blocks && agg[s].node != blocks[i].node) s = (s + 1) & (cap - 1);
        agg[s].node = blocks[i].node;
        agg[s].bytes += blocks[i].size;
        agg[s].blocks++;
    }
    int m = 0;
    for (size_t s = 0; s < cap; s++) {
        if (!agg[s].blocks) continue;
        /* insertion into the sorted top k */
        int j = m < k ? m++ : k;
        if (j == k && (k == 0 || agg[s].bytes <= out[k - 1].bytes)) continue;
        if (j == k) j = k - 1;
        while (j > 0 && out[j - 1].bytes < agg[s].bytes) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = agg[s];
    }
    htri_os_pages_free(agg, bytes);
    return m;
}
