/* Unit test of the allocator interface: helpers, overflow-checked arrays, realloc paths,
 * the libc and page parents, the block table, and bookkeeping accounting. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "heaptrail.h"
#include "alloc/alloc_internal.h"
#include "check.h"

static void test_parent(htr_allocator_t a, const char *name)
{
    unsigned char *p = htr_alloc(a, 100);
    CHECK(p != NULL);
    CHECK(((uintptr_t)p & 15) == 0);
    memset(p, 7, 100);
    p = htr_realloc(a, p, 100, 10000);
    CHECK(p != NULL);
    CHECK(p[99] == 7);
    p = htr_realloc(a, p, 10000, 50);
    CHECK(p != NULL && p[49] == 7);
    htr_free(a, p, 50);
    for (size_t align = 1; align <= 65536; align *= 4) {
        void *q = htr_alloc_aligned(a, 33, align);
        CHECK(q != NULL);
        CHECK(((uintptr_t)q & (align - 1)) == 0);
        q = htr_realloc_aligned(a, q, 33, 5000, align);
        CHECK(q != NULL && ((uintptr_t)q & (align - 1)) == 0);
        htr_free_aligned(a, q, 5000, align);
    }
    unsigned char *z = htr_alloc_zeroed(a, 64);
    CHECK(z && z[0] == 0 && z[63] == 0);
    htr_free(a, z, 64);
    fprintf(stderr, "parent %s ok\n", name);
}

static void test_helpers(void)
{
    htr_allocator_t a = htr_libc_allocator();
    errno = 0;
    CHECK(htr_alloc_array(a, SIZE_MAX / 2, 3, 8) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(htr_alloc_aligned(a, 10, 3) == NULL);
    CHECK(errno == EINVAL);
    uint32_t *v = HTR_NEW_ARRAY(a, uint32_t, 10);
    CHECK(v != NULL);
    for (int i = 0; i < 10; i++)
        v[i] = (uint32_t)i;
    v = HTR_RESIZE_ARRAY(a, v, 10, 1000);
    CHECK(v != NULL && v[9] == 9);
    errno = 0;
    CHECK(HTR_RESIZE_ARRAY(a, v, 1000, SIZE_MAX / 2) == NULL);
    CHECK(errno == ENOMEM);
    HTR_FREE_ARRAY(a, v, 1000);
    /* realloc edge cases: NULL is alloc, 0 is free */
    void *p = htr_realloc(a, NULL, 0, 16);
    CHECK(p != NULL);
    CHECK(htr_realloc(a, p, 16, 0) == NULL);
    htr_free(a, NULL, 10); /* no-op */
    /* size 0 is size 1 on both sides */
    p = htr_alloc(a, 0);
    CHECK(p != NULL);
    htr_free(a, p, 0);
    /* page parent: resize in place shrinks, refuses to grow past the page */
    htr_allocator_t pg = htr_page_allocator();
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *q = htr_alloc(pg, 3 * page);
    CHECK(q != NULL);
    CHECK(htr_resize(pg, q, 3 * page, page) == 1);
    CHECK(htr_resize(pg, q, page, page - 10) == 1);
    CHECK(htr_resize(pg, q, page - 10, 2 * page) == 0);
    q[page - 1] = 1;
    htr_free(pg, q, page - 10);
    errno = 0;
    CHECK(htr_alloc(pg, SIZE_MAX - 10) == NULL);
    CHECK(errno == ENOMEM);
}

/* The block table against a reference array, through growth and backward-shift deletion. */
static void test_blocktab(void)
{
    htri_blocktab t;
    CHECK(htri_blocktab_init(&t, 4) == 0);
    enum { N = 5000 };
    static uintptr_t keys[N];
    static int live[N];
    uint64_t r = 12345;
    for (int round = 0; round < 40000; round++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int i = (int)((r >> 33) % N);
        keys[i] = ((uintptr_t)i + 1) * 16;
        if (live[i]) {
            htri_block *b = htri_blocktab_find(&t, keys[i]);
            CHECK(b != NULL && b->size == (size_t)i);
            if (b)
                htri_blocktab_remove(&t, b);
            live[i] = 0;
        } else {
            htri_block *b = htri_blocktab_insert(&t, keys[i]);
            CHECK(b != NULL);
            if (b)
                b->size = (size_t)i;
            live[i] = 1;
        }
        if (round % 1000 == 0)
            CHECK(htri_blocktab_is_valid(&t));
    }
    CHECK(htri_blocktab_is_valid(&t));
    size_t n_live = 0;
    for (int i = 0; i < N; i++) {
        htri_block *b = htri_blocktab_find(&t, ((uintptr_t)i + 1) * 16);
        CHECK((b != NULL) == (live[i] != 0));
        n_live += live[i] != 0;
    }
    CHECK_EQ_U(t.n, n_live);
    /* rekey keeps the record */
    htri_block *b = htri_blocktab_insert(&t, 8);
    b->size = 77;
    b = htri_blocktab_rekey(&t, b, 24);
    CHECK(htri_blocktab_find(&t, 8) == NULL);
    CHECK(htri_blocktab_find(&t, 24) && htri_blocktab_find(&t, 24)->size == 77);
    htri_blocktab_fini(&t);
    /* out of bookkeeping memory: init fails cleanly */
    htri_alloc_meta_fail_after(0);
    CHECK(htri_blocktab_init(&t, 4) == -ENOMEM);
    htri_alloc_meta_fail_after(-1);
}

int main(void)
{
    size_t meta0 = htr_alloc_bookkeeping_bytes();
    test_parent(htr_libc_allocator(), "libc");
    test_parent(htr_page_allocator(), "pages");
    test_helpers();
    test_blocktab();
    CHECK_EQ_U(htr_alloc_bookkeeping_bytes(), meta0);
    return CHECK_DONE();
}
