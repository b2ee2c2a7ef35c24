/* Unit tests of the leak scan (src/agent/scan*.c) without the agent: real malloc'd blocks,
 * pointed at from explicit roots, other blocks, registers, thread stacks, TLS and mmap'd
 * memory; each case checks memcheck's kind exactly. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "agent/scan.h"
#include "base/os.h"

#define KEY ((uintptr_t)0x5a5a5a5a5a5a5a5aull)   /* XOR-hides a pointer from the scan */
#define HTRI_NOINLINE_T __attribute__((noinline))

/* ---- Explicit-root scans (htri_scan_blocks) --------------------------------------------- */

typedef struct blockset {
    htri_block b[64];
    size_t n;
} blockset;

static void *bs_add(blockset *bs, size_t size, uint32_t node)
{
    void *p = malloc(size);
    memset(p, 0, malloc_usable_size(p));
    bs->b[bs->n++] = (htri_block){ (uintptr_t)p, size, node, 0, 0, 0, 0 };
    return p;
}

/* kind of the block at address p after a scan (blocks were sorted) */
static int kind_of(const blockset *bs, const htri_scan_result *r, void *p)
{
    for (size_t i = 0; i < bs->n; i++)
        if (bs->b[i].addr == (uintptr_t)p) return r->extra[i].kind;
    return -1;
}
static const htri_scan_extra *extra_of(const blockset *bs, const htri_scan_result *r, void *p)
{
    for (size_t i = 0; i < bs->n; i++)
        if (bs->b[i].addr == (uintptr_t)p) return &r->extra[i];
    return NULL;
}

static uintptr_t g_roots[16];   /* the "globals" of these cases */

static int run(blockset *bs, unsigned heuristics, htri_scan_result *r)
{
    htri_scan_root root = { (uintptr_t)g_roots, (uintptr_t)(g_roots + 16), 0 };
    htri_scan_options opt = { .roots = &root, .n_roots = 1, .heuristics = heuristics };
    return htri_scan_blocks(bs->b, bs->n, &opt, r);
}

static void free_all(blockset *bs)
{
    for (size_t i = 0; i < bs->n; i++) free((void *)bs->b[i].addr);
    bs->n = 0;
    memset(g_roots, 0, sizeof g_roots);
}

static void test_basic_kinds(void)
{
    blockset bs = { .n = 0 };
    htri_scan_result r;
    void *lost = bs_add(&bs, 32, 1);
    void *held = bs_add(&bs, 48, 2);
    void *inner = bs_add(&bs, 64, 3);
    void *hidden = bs_add(&bs, 16, 4);
    void *zero_held = bs_add(&bs, 0, 5);
    void *zero_lost = bs_add(&bs, 0, 6);
    g_roots[0] = (uintptr_t)held;
    g_roots[1] = (uintptr_t)inner + 8;         /* interior: possibly lost */
    g_roots[2] = (uintptr_t)hidden ^ KEY;
    g_roots[3] = (uintptr_t)zero_held;         /* a pointer equal to a 0-byte block's address */
    g_roots[4] = 3;                            /* junk */
    CHECK(run(&bs, HTRI_HEUR_ALL, &r) == 0);
    CHECK_EQ_U(kind_of(&bs, &r, lost), HTRI_LEAK_DEFINITE);
    CHECK_EQ_U(kind_of(&bs, &r, held), HTRI_LEAK_REACHABLE);
    CHECK_EQ_U(kind_of(&bs, &r, inner), HTRI_LEAK_POSSIBLE);
    CHECK_EQ_U(kind_of(&bs, &r, hidden), HTRI_LEAK_DEFINITE);
    CHECK_EQ_U(kind_of(&bs, &r, zero_held), HTRI_LEAK_REACHABLE);
    CHECK_EQ_U(kind_of(&bs, &r, zero_lost), HTRI_LEAK_DEFINITE);
    CHECK_EQ_U(r.blocks[HTRI_LEAK_DEFINITE], 3);
    CHECK_EQ_U(r.bytes[HTRI_LEAK_DEFINITE], 48);
    CHECK_EQ_U(r.bytes[HTRI_LEAK_REACHABLE], 48);
    CHECK_EQ_U(r.blocks[HTRI_LEAK_REACHABLE], 2);
    CHECK_EQ_U(r.bytes[HTRI_LEAK_POSSIBLE], 64);
    htri_scan_result_free(&r);
    free_all(&bs);
}

static void test_tree_and_cycles(void)
{
    blockset bs = { .n = 0 };
    htri_scan_result r;
    /* a lost tree: root -> a, b; a -> c */
    void **root = bs_add(&bs, 32, 1);
    void **a = bs_add(&bs, 24, 2), **b = bs_add(&bs, 40, 3), **c = bs_add(&bs, 8, 4);
    root[0] = a;
    root[1] = (char *)b + 4;   /* interior pointers count inside a lost group */
    a[0] = c;
    /* a lost cycle x <-> y */
    void **x = bs_add(&bs, 16, 5), **y = bs_add(&bs, 16, 6);
    x[0] = y;
    y[0] = x;
    /* chained cycles: p <-> q -> s <-> t */
    void **p = bs_add(&bs, 16, 7), **q = bs_add(&bs, 16, 7), **s = bs_add(&bs, 16, 8),
         **t = bs_add(&bs, 16, 8);
    p[0] = q; q[0] = p; q[1] = s; s[0] = t; t[0] = s;
    CHECK(run(&bs, HTRI_HEUR_ALL, &r) == 0);
    CHECK_EQ_U(kind_of(&bs, &r, root), HTRI_LEAK_DEFINITE);
    CHECK_EQ_U(extra_of(&bs, &r, root)->indirect_bytes, 24 + 40 + 8);
    CHECK_EQ_U(kind_of(&bs, &r, a), HTRI_LEAK_INDIRECT);
    CHECK_EQ_U(kind_of(&bs, &r, b), HTRI_LEAK_INDIRECT);
    CHECK_EQ_U(kind_of(&bs, &r, c), HTRI_LEAK_INDIRECT);
    /* the lowest-addressed block of the cycle leads it */
    void **lead = x < y ? x : y, **other = x < y ? y : x;
    CHECK_EQ_U(kind_of(&bs, &r, lead), HTRI_LEAK_DEFINITE);
    CHECK_EQ_U(kind_of(&bs, &r, other), HTRI_LEAK_INDIRECT);
    CHECK_EQ_U(extra_of(&bs, &r, lead)->indirect_bytes, 16);
    /* p <-> q -> s <-> t: one definite leads 3 indirect, whatever the addresses */
    int n_def = 0;
    uint64_t ind = 0;
    void **chain[4] = { p, q, s, t };
    for (int i = 0; i < 4; i++)
        if (kind_of(&bs, &r, chain[i]) == HTRI_LEAK_DEFINITE) {
            n_def++;
            ind = extra_of(&bs, &r, chain[i])->indirect_bytes;
        }
    /* memcheck: the leader is the lowest address from which the others are reached; s/t
     * can only lead s,t (they do not reach p,q), so p or q leads when lower than s and t */
    void **low_pq = p < q ? p : q, **low_st = s < t ? s : t;
    if (low_pq < low_st) {
        CHECK_EQ_U(n_def, 1);
        CHECK_EQ_U(ind, 48);
    } else {
        /* s/t led first, then was swallowed by p/q's clique with its indirect bytes */
        CHECK_EQ_U(n_def, 1);
        CHECK_EQ_U(ind, 48);
    }
    CHECK_EQ_U(r.blocks[HTRI_LEAK_DEFINITE], 3);
    CHECK_EQ_U(r.blocks[HTRI_LEAK_INDIRECT], 7);
    CHECK_EQ_U(r.bytes[HTRI_LEAK_INDIRECT], 24 + 40 + 8 + 16 + 48);
    htri_scan_result_free(&r);
    free_all(&bs);
}

static void test_possible_chains(void)
{
    blockset bs = { .n = 0 };
    htri_scan_result r;
    /* root -> interior of a; a -> start of b: b is only possibly reachable (its prior is) */
    void **a = bs_add(&bs, 32, 1), **b = bs_add(&bs, 32, 2);
    a[1] = b;
    g_roots[0] = (uintptr_t)a + 16;
    /* held d -> interior of e: e possibly lost */
    void **d = bs_add(&bs, 32, 3), **e = bs_add(&bs, 32, 4);
    d[0] = (char *)e + 24;
    g_roots[1] = (uintptr_t)d;
    /* possible then upgraded: f reached through an interior pointer and a start pointer */
    void **f = bs_add(&bs, 32, 5);
    g_roots[2] = (uintptr_t)f + 8;
    g_roots[3] = (uintptr_t)f;
    CHECK(run(&bs, HTRI_HEUR_ALL, &r) == 0);
    CHECK_EQ_U(kind_of(&bs, &r, a), HTRI_LEAK_POSSIBLE);
    CHECK_EQ_U(kind_of(&bs, &r, b), HTRI_LEAK_POSSIBLE);
    CHECK_EQ_U(kind_of(&bs, &r, d), HTRI_LEAK_REACHABLE);
    CHECK_EQ_U(kind_of(&bs, &r, e), HTRI_LEAK_POSSIBLE);
    CHECK_EQ_U(kind_of(&bs, &r, f), HTRI_LEAK_REACHABLE);
    htri_scan_result_free(&r);
    free_all(&bs);
}

/* A table of function pointers in a read-only file mapping, as a vtable is. */
static void vt_f1(void) {}
static void vt_f2(void) {}
static void (*const g_vtable1[])(void) = { vt_f1, vt_f2, vt_f1 };
static void (*const g_vtable2[])(void) = { vt_f2, vt_f1, vt_f2 };

static void test_heuristics(void)
{
    for (int pass = 0; pass < 2; pass++) {
        unsigned heur = pass == 0 ? HTRI_HEUR_ALL : 0;
        blockset bs = { .n = 0 };
        htri_scan_result r;
        /* stdstring: length capacity refcount chars[capacity] \0 */
        uintptr_t *str = bs_add(&bs, 3 * 8 + 10 + 1, 1);
        str[0] = 5; str[1] = 10;
        g_roots[0] = (uintptr_t)str + 24;
        /* length64: a 64-bit length of the rest */
        uint64_t *len64 = bs_add(&bs, 8 + 40, 2);
        len64[0] = 40;
        g_roots[1] = (uintptr_t)len64 + 8;
        /* newarray: element count, then elements (3 of 16 bytes) */
        uintptr_t *arr = bs_add(&bs, 8 + 48, 3);
        arr[0] = 3;
        g_roots[2] = (uintptr_t)arr + 8;
        /* multipleinheritance: vptr at 0 and a second base's vptr at 16 */
        uintptr_t *obj = bs_add(&bs, 32, 4);
        obj[0] = (uintptr_t)g_vtable1;
        obj[2] = (uintptr_t)g_vtable2;
        g_roots[3] = (uintptr_t)obj + 16;
        /* not a string: capacity does not match the size */
        uintptr_t *nostr = bs_add(&bs, 3 * 8 + 10 + 1, 5);
        nostr[0] = 5; nostr[1] = 11;
        g_roots[4] = (uintptr_t)nostr + 24;
        CHECK(run(&bs, heur, &r) == 0);
        int k_yes = pass == 0 ? HTRI_LEAK_REACHABLE : HTRI_LEAK_POSSIBLE;
        CHECK_EQ_U(kind_of(&bs, &r, str), k_yes);
        CHECK_EQ_U(kind_of(&bs, &r, len64), k_yes);
        CHECK_EQ_U(kind_of(&bs, &r, arr), k_yes);
        CHECK_EQ_U(kind_of(&bs, &r, obj), k_yes);
        CHECK_EQ_U(kind_of(&bs, &r, nostr), HTRI_LEAK_POSSIBLE);
        if (pass == 0) {
            CHECK_EQ_U(extra_of(&bs, &r, str)->heuristic, HTRI_HEUR_STDSTRING);
            CHECK_EQ_U(extra_of(&bs, &r, len64)->heuristic, HTRI_HEUR_LENGTH64);
            CHECK_EQ_U(extra_of(&bs, &r, arr)->heuristic, HTRI_HEUR_NEWARRAY);
            CHECK_EQ_U(extra_of(&bs, &r, obj)->heuristic, HTRI_HEUR_MULTIPLEINHERITANCE);
            CHECK_EQ_U(r.heur_blocks[HTRI_HEUR_STDSTRING], 1);
            CHECK_EQ_U(r.heur_bytes[HTRI_HEUR_LENGTH64], 48);
        }
        htri_scan_result_free(&r);
        free_all(&bs);
    }
}

static void test_registers_roots_and_groups(void)
{
    blockset bs = { .n = 0 };
    htri_scan_result r;
    void *in_reg = bs_add(&bs, 24, 1);
    void **container = bs_add(&bs, 32, 2);   /* lies inside the root range: not a root */
    void *via_container = bs_add(&bs, 8, 3);
    container[0] = via_container;
    uintptr_t words[2] = { (uintptr_t)in_reg, 12345 };
    htri_scan_root root = { container ? (uintptr_t)container : 0, (uintptr_t)container + 32, 0 };
    htri_scan_options opt = { .roots = &root, .n_roots = 1, .root_words = words,
                              .n_root_words = 2, .heuristics = HTRI_HEUR_ALL };
    CHECK(htri_scan_blocks(bs.b, bs.n, &opt, &r) == 0);
    CHECK_EQ_U(kind_of(&bs, &r, in_reg), HTRI_LEAK_REACHABLE);
    CHECK_EQ_U(kind_of(&bs, &r, container), HTRI_LEAK_DEFINITE);
    CHECK_EQ_U(kind_of(&bs, &r, via_container), HTRI_LEAK_INDIRECT);
    CHECK_EQ_U(r.bytes_roots, 0);
    htri_leak_group_rec *groups;
    size_t gbytes;
    long ng = htri_scan_group(bs.b, &r, &groups, &gbytes);
    CHECK_EQ_U(ng, 3);
    for (long i = 0; i < ng; i++)
        if (groups[i].kind == HTRI_LEAK_DEFINITE) {
            CHECK_EQ_U(groups[i].node, 2);
            CHECK_EQ_U(groups[i].indirect_bytes, 8);
        }
    htri_os_pages_free(groups, gbytes);
    htri_scan_result_free(&r);
    free_all(&bs);
}

/* glibc's main_arena points at chunk headers (top, bins); such a pointer lands 8 bytes before
 * the end of the previous block's usable area, inside it for malloc(24). */
static void test_glibc_next_chunk(void)
{
    for (int pass = 0; pass < 2; pass++) {
        blockset bs = { .n = 0 };
        htri_scan_result r;
        void *blk = bs_add(&bs, 24, 1);
        uintptr_t chunk_size = ((uintptr_t *)blk)[-1] & ~(uintptr_t)7;
        g_roots[0] = (uintptr_t)blk - 16 + chunk_size;
        CHECK(g_roots[0] < (uintptr_t)blk + 24);
        htri_scan_root root = { (uintptr_t)g_roots, (uintptr_t)(g_roots + 16),
                                pass == 0 ? HTRI_ROOT_LIBC : 0 };
        htri_scan_options opt = { .roots = &root, .n_roots = 1, .glibc_chunks = 1 };
        CHECK(htri_scan_blocks(bs.b, bs.n, &opt, &r) == 0);
        CHECK_EQ_U(kind_of(&bs, &r, blk), pass == 0 ? HTRI_LEAK_DEFINITE : HTRI_LEAK_POSSIBLE);
        htri_scan_result_free(&r);
        free_all(&bs);
    }
}

static void test_careful_roots(void)
{
    blockset bs = { .n = 0 };
    htri_scan_result r;
    void *blk = bs_add(&bs, 40, 1);
    /* a root range with an unreadable page in the middle */
    size_t page = htri_os_page_size();
    uint8_t *m = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    ((uintptr_t *)(m + 2 * page))[3] = (uintptr_t)blk;
    CHECK(mprotect(m + page, page, PROT_NONE) == 0);
    htri_scan_root root = { (uintptr_t)m, (uintptr_t)m + 3 * page, HTRI_ROOT_CAREFUL };
    htri_scan_options opt = { .roots = &root, .n_roots = 1 };
    CHECK(htri_scan_blocks(bs.b, bs.n, &opt, &r) == 0);
    CHECK_EQ_U(kind_of(&bs, &r, blk), HTRI_LEAK_REACHABLE);
    htri_scan_result_free(&r);
    munmap(m, 3 * page);
    free_all(&bs);
}

static void test_many_blocks(void)
{
    /* 200k blocks: a list from one root (reachable) and as many lost singles */
    enum { N = 100000 };
    size_t bytes = 2 * N * sizeof(htri_block);
    htri_block *b = htri_os_pages_alloc(bytes);
    void **prev = NULL;
    for (size_t i = 0; i < N; i++) {
        void **node = malloc(16);
        node[0] = prev;
        node[1] = NULL;
        prev = node;
        b[i] = (htri_block){ (uintptr_t)node, 16, 1, 0, 0, 0, 0 };
        void *single = malloc(16);
        memset(single, 0, 16);
        b[N + i] = (htri_block){ (uintptr_t)single, 16, 2, 0, 0, 0, 0 };
    }
    g_roots[0] = (uintptr_t)prev;
    htri_scan_root root = { (uintptr_t)g_roots, (uintptr_t)(g_roots + 16), 0 };
    htri_scan_options opt = { .roots = &root, .n_roots = 1, .heuristics = HTRI_HEUR_ALL };
    htri_scan_result r;
    CHECK(htri_scan_blocks(b, 2 * N, &opt, &r) == 0);
    CHECK_EQ_U(r.blocks[HTRI_LEAK_REACHABLE], N);
    CHECK_EQ_U(r.blocks[HTRI_LEAK_DEFINITE], N);
    for (size_t i = 1; i < 2 * N; i++) CHECK(b[i - 1].addr < b[i].addr);
    htri_scan_result_free(&r);
    for (size_t i = 0; i < 2 * N; i++) free((void *)b[i].addr);
    htri_os_pages_free(b, bytes);
    memset(g_roots, 0, sizeof g_roots);
}

static void test_errors(void)
{
    htri_scan_result r;
    htri_scan_options opt = { 0 };
    CHECK(htri_scan_blocks(NULL, 1, &opt, &r) == -EINVAL);
    CHECK(htri_scan_blocks(NULL, 0, NULL, &r) == -EINVAL);
    /* overlapping blocks are refused */
    static char arena[64];
    htri_block b[2] = { { (uintptr_t)arena, 32, 0, 0, 0, 0, 0 }, { (uintptr_t)arena + 16, 8, 0, 0, 0, 0, 0 } };
    CHECK(htri_scan_blocks(b, 2, &opt, &r) == -EINVAL);
    /* no blocks: all zero */
    CHECK(htri_scan_blocks(NULL, 0, &opt, &r) == 0);
    CHECK_EQ_U(r.blocks[HTRI_LEAK_DEFINITE] + r.blocks[HTRI_LEAK_REACHABLE], 0);
    htri_scan_result_free(&r);
}

/* ---- Whole-process scans (htri_scan_world): threads, TLS, registers, mmap -------------- */

static struct {
    htri_block *b;
    size_t n;
    volatile int ready, stop;
} g_world;

static size_t world_snap(void *user, htri_block *out, size_t cap)
{
    (void)user;
    for (size_t i = 0; i < g_world.n && i < cap; i++) out[i] = g_world.b[i];
    return g_world.n;
}

static size_t world_add(void *p, size_t size, uint32_t node)
{
    g_world.b[g_world.n] = (htri_block){ (uintptr_t)p, size, node, 0, 0, 0, 0 };
    return g_world.n++;
}

static uintptr_t g_hidden_stack, g_hidden_reg, g_hidden_tls, g_hidden_dead;
static __thread void *volatile t_tls_ptr;   /* volatile: the store must happen */

/* Leaves a pointer in a dead frame far below where the thread then waits. */
static __attribute__((noinline)) void deep_store(int depth)
{
    volatile uintptr_t frame[64];
    if (depth > 0) {
        deep_store(depth - 1);
        frame[0] = 0;
        return;
    }
    frame[7] = g_hidden_dead ^ KEY;
    __asm__ volatile("" : : "r"(frame) : "memory");
}

static void *stack_thread(void *arg)
{
    (void)arg;
    volatile uintptr_t local = g_hidden_stack ^ KEY;   /* the only copy: on this stack */
    t_tls_ptr = (void *)(g_hidden_tls ^ KEY);          /* the only copy: in this thread's TLS */
    deep_store(8);
    __atomic_add_fetch(&g_world.ready, 1, __ATOMIC_SEQ_CST);
    while (!g_world.stop) usleep(1000);
    __asm__ volatile("" : : "r"(local));
    t_tls_ptr = NULL;
    return NULL;
}

static void *reg_thread(void *arg)
{
    (void)arg;
    __atomic_add_fetch(&g_world.ready, 1, __ATOMIC_SEQ_CST);
#if defined(__x86_64__)
    /* the only copy of the pointer sits in r12 while the thread spins */
    __asm__ volatile("movq %0, %%r12\n\txorq %1, %%r12\n"
                     "1:\n\tpause\n\tcmpl $0, %2\n\tje 1b\n\txorq %%r12, %%r12"
                     : : "r"(g_hidden_reg), "r"(KEY), "m"(g_world.stop) : "r12", "memory");
#endif
    return NULL;
}

static void test_world(void)
{
    size_t bytes = 64 * sizeof(htri_block);
    g_world.b = htri_os_pages_alloc(bytes);   /* our own memory: never a root */
    g_world.n = 0;
    void *global_held = malloc(11);
    world_add(global_held, 11, 1);
    g_roots[5] = (uintptr_t)global_held;
    void *on_stack = malloc(22);
    world_add(on_stack, 22, 2);
    g_hidden_stack = (uintptr_t)on_stack ^ KEY;
    void *in_reg = malloc(33);
    world_add(in_reg, 33, 3);
    g_hidden_reg = (uintptr_t)in_reg ^ KEY;
    void *in_tls = malloc(44);
    world_add(in_tls, 44, 4);
    g_hidden_tls = (uintptr_t)in_tls ^ KEY;
    void *dead = malloc(55);
    world_add(dead, 55, 5);
    g_hidden_dead = (uintptr_t)dead ^ KEY;
    void *lost = malloc(66);
    world_add(lost, 66, 6);
    uintptr_t lost_hidden = (uintptr_t)lost ^ KEY;
    void *in_mmap = malloc(77);
    world_add(in_mmap, 77, 7);
    void **m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    m[100] = in_mmap;
    void *self_local = malloc(88);
    world_add(self_local, 88, 8);
    volatile uintptr_t keep = (uintptr_t)self_local;   /* main's frame: above the scan's */
    in_reg = on_stack = in_tls = dead = lost = in_mmap = self_local = NULL;

    g_world.ready = g_world.stop = 0;
    pthread_t t1, t2;
    pthread_create(&t1, NULL, stack_thread, NULL);
    pthread_create(&t2, NULL, reg_thread, NULL);
    while (g_world.ready < 2) usleep(1000);
    usleep(20000);

    htri_scan_world_result r;
    CHECK(htri_scan_world(world_snap, NULL, HTRI_HEUR_ALL, 0, &r) == 0);
    CHECK_EQ_U(r.n_threads, 3);
    CHECK_EQ_U(r.n_blocks, 8);
    int kinds[9] = { 0 };
    for (size_t i = 0; i < r.n_blocks; i++) kinds[r.blocks[i].node] = r.scan.extra[i].kind;
    CHECK_EQ_U(kinds[1], HTRI_LEAK_REACHABLE);   /* global */
    CHECK_EQ_U(kinds[2], HTRI_LEAK_REACHABLE);   /* thread stack */
#if defined(__x86_64__)
    CHECK_EQ_U(kinds[3], HTRI_LEAK_REACHABLE);   /* register */
#endif
    CHECK_EQ_U(kinds[4], HTRI_LEAK_REACHABLE);   /* TLS */
    CHECK_EQ_U(kinds[5], HTRI_LEAK_DEFINITE);    /* below a stack pointer */
    CHECK_EQ_U(kinds[6], HTRI_LEAK_DEFINITE);    /* XOR-hidden */
    CHECK_EQ_U(kinds[7], HTRI_LEAK_REACHABLE);   /* mmap'd region */
    CHECK_EQ_U(kinds[8], HTRI_LEAK_REACHABLE);   /* the scanning thread's own stack */
    CHECK(r.scan.bytes_roots > 0);
    fprintf(stderr, "world scan: %u threads, %llu root bytes, %llu us\n", r.n_threads,
            (unsigned long long)r.scan.bytes_roots, (unsigned long long)r.scan.scan_ns / 1000);
    htri_scan_world_free(&r);

    g_world.stop = 1;
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    (void)keep;
    (void)lost_hidden;
    for (size_t i = 0; i < g_world.n; i++) free((void *)g_world.b[i].addr);
    munmap(m, 4096);
    htri_os_pages_free(g_world.b, bytes);
    g_roots[5] = 0;
}

/* ---- the exiting thread's stack is scanned from a given frame; the agent's threads not ---- */

static HTRI_NOINLINE_T int hold_and_scan(uintptr_t from, uintptr_t hidden, htri_scan_world_result *r)
{
    volatile uintptr_t held = hidden ^ KEY;   /* the only copy: in this frame */
    int rc = htri_scan_world(world_snap, NULL, HTRI_HEUR_ALL, from, r);
    __asm__ volatile("" : : "r"(held));
    return rc;
}

static volatile uintptr_t g_agent_hidden;

/* A block known only XOR-hidden: no register or stack slot of the caller keeps its address. */
static HTRI_NOINLINE_T uintptr_t alloc_hidden(size_t size, uint32_t node)
{
    void *p = malloc(size);
    world_add(p, size, node);
    return (uintptr_t)p ^ KEY;
}

/* Overwrites dead stack below the caller (malloc's frames may have left the address there). */
static HTRI_NOINLINE_T void scrub_stack(void)
{
    volatile char junk[4096];
    memset((char *)junk, 0, sizeof junk);
    __asm__ volatile("" : : "r"(junk) : "memory");
}
static void *agent_like_thread(void *arg)
{
    (void)arg;
    CHECK(htri_scan_ignore_self() == 0);
    volatile uintptr_t held = g_agent_hidden ^ KEY;   /* e.g. an address being encoded */
    __atomic_add_fetch(&g_world.ready, 1, __ATOMIC_SEQ_CST);
    while (!g_world.stop) usleep(1000);
    __asm__ volatile("" : : "r"(held));
    return NULL;
}

/* The agent's writer thread running a check itself: its own frames are not roots either. */
static void *agent_scanning_thread(void *arg)
{
    htri_scan_world_result *r = arg;
    CHECK(htri_scan_ignore_self() == 0);
    volatile uintptr_t held = g_agent_hidden ^ KEY;
    CHECK(htri_scan_world(world_snap, NULL, HTRI_HEUR_ALL, 0, r) == 0);
    __asm__ volatile("" : : "r"(held));
    return NULL;
}

static HTRI_NOINLINE_T void test_exit_frame_and_ignored(void)
{
    size_t bytes = 4 * sizeof(htri_block);
    g_world.b = htri_os_pages_alloc(bytes);
    g_world.n = 0;
    uintptr_t hidden = alloc_hidden(40, 1);
    g_agent_hidden = alloc_hidden(50, 2);
    scrub_stack();
    g_world.ready = g_world.stop = 0;
    pthread_t t;
    pthread_create(&t, NULL, agent_like_thread, NULL);
    while (g_world.ready < 1) usleep(1000);

    htri_scan_world_result r;
    for (int pass = 0; pass < 2; pass++) {
        uintptr_t from = pass == 0 ? 0 : (uintptr_t)__builtin_frame_address(0);
        CHECK(hold_and_scan(from, hidden, &r) == 0);
        int kinds[3] = { -1, -1, -1 };
        for (size_t i = 0; i < r.n_blocks; i++) kinds[r.blocks[i].node] = r.scan.extra[i].kind;
        /* pass 0: hold_and_scan's frame is above the scan's: a root; pass 1: below `from` */
        CHECK_EQ_U(kinds[1], pass == 0 ? HTRI_LEAK_REACHABLE : HTRI_LEAK_DEFINITE);
        CHECK_EQ_U(kinds[2], HTRI_LEAK_DEFINITE);   /* only on an ignored thread's stack */
        htri_scan_world_free(&r);
    }
    g_world.stop = 1;
    pthread_join(t, NULL);
    pthread_t t2;
    pthread_create(&t2, NULL, agent_scanning_thread, &r);
    pthread_join(t2, NULL);
    for (size_t i = 0; i < r.n_blocks; i++)
        if (r.blocks[i].node == 2) CHECK_EQ_U(r.scan.extra[i].kind, HTRI_LEAK_DEFINITE);
    htri_scan_world_free(&r);
    for (size_t i = 0; i < g_world.n; i++) free((void *)g_world.b[i].addr);
    htri_os_pages_free(g_world.b, bytes);
}

/* A thread that blocks every signal cannot be stopped: the check must not wait for it, and
 * scans its whole stack (conservatively) and every root without faulting. */
static volatile uintptr_t g_masked_hidden;
static void *masked_thread(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    volatile uintptr_t held = g_masked_hidden ^ KEY;
    __atomic_add_fetch(&g_world.ready, 1, __ATOMIC_SEQ_CST);
    while (!g_world.stop) usleep(1000);
    __asm__ volatile("" : : "r"(held));
    return NULL;
}

static void test_unstoppable_thread(void)
{
    size_t bytes = 4 * sizeof(htri_block);
    g_world.b = htri_os_pages_alloc(bytes);
    g_world.n = 0;
    g_masked_hidden = alloc_hidden(60, 1);
    g_world.ready = g_world.stop = 0;
    pthread_t t;
    pthread_create(&t, NULL, masked_thread, NULL);
    while (g_world.ready < 1) usleep(1000);
    htri_scan_world_result r;
    uint64_t t0 = htri_os_now_ns();
    CHECK(htri_scan_world(world_snap, NULL, HTRI_HEUR_ALL, 0, &r) == 0);
    CHECK(htri_os_now_ns() - t0 < 1000000000ull);   /* no 2 s stop timeout */
    CHECK(r.flags & HTRI_LEAK_WORLD_PARTIAL);
    CHECK_EQ_U(r.n_blocks, 1);
    CHECK_EQ_U(r.scan.extra[0].kind, HTRI_LEAK_REACHABLE);   /* its stack scanned whole */
    htri_scan_world_free(&r);
    g_world.stop = 1;
    pthread_join(t, NULL);
    for (size_t i = 0; i < g_world.n; i++) free((void *)g_world.b[i].addr);
    htri_os_pages_free(g_world.b, bytes);
}

/* Under AddressSanitizer the process maps terabytes of shadow memory (a whole-process scan
 * would read it all) and malloc is ASan's, not glibc's: those cases run in normal builds. */
#if defined(__SANITIZE_ADDRESS__)
#define SCAN_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SCAN_TEST_ASAN 1
#endif
#endif
#ifndef SCAN_TEST_ASAN
#define SCAN_TEST_ASAN 0
#endif

int main(void)
{
    test_basic_kinds();
    test_tree_and_cycles();
    test_possible_chains();
    test_heuristics();
    test_registers_roots_and_groups();
    if (!SCAN_TEST_ASAN) test_glibc_next_chunk();
    test_careful_roots();
    test_many_blocks();
    test_errors();
    if (!SCAN_TEST_ASAN) {
        test_world();
        test_exit_frame_and_ignored();
        test_unstoppable_thread();
    }
    return CHECK_DONE();
}
