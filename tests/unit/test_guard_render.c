/* Unit tests for src/render/errors.c: memcheck's wording for each misuse record, one report
 * per context, the ERROR SUMMARY line, injected failures and limit hits. */
#include <stdio.h>
#include <stdlib.h>
#include "check.h"
#include "trace/format.h"
#include "render/errors.h"

/* Stacks are node ids printed as one fake frame, so the layout is visible in the tests. */
static void fake_stack(void *user, FILE *out, const char *prefix, uint32_t node)
{
    (void)user;
    fprintf(out, "%s   at 0x%X: fn%u (t.c:%u)\n", prefix, node * 16, node, node);
}

static char *render(const htri_errors_view *v, long *ret)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *ret = htri_render_errors(f, v);
    fclose(f);
    return buf;
}

static htri_error_rec err(uint8_t kind, uint32_t where, uint32_t alloc, uint32_t freed)
{
    htri_error_rec e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    e.where_node = where;
    e.alloc_node = alloc;
    e.free_node = freed;
    e.tid = 1;
    e.alloc_family = HTRI_FAM_MALLOC;
    e.free_family = HTRI_FFAM_FREE;
    e.addr = e.block_addr = 0x4a4a040;
    e.block_size = 10;
    return e;
}

static void test_double_free(void)
{
    htri_error_rec e[3];
    e[0] = err(HTRI_ERR_INVALID_FREE, 3, 1, 2);
    e[0].addr_class = HTRI_ADDR_FREED;
    e[1] = e[0];               /* same context */
    e[2] = err(HTRI_ERR_INVALID_FREE, 4, 0, 0);
    e[2].addr = 0x1ffefffd4c;
    e[2].block_addr = 0;
    e[2].addr_class = HTRI_ADDR_STACK;
    htri_errors_view v = { e, 3, NULL, 0, NULL, 0, fake_stack, NULL, "==7== " };
    long n;
    char *s = render(&v, &n);
    CHECK_EQ_U(n, 3);
    CHECK_STR(s,
        "==7== Invalid free() / delete / delete[] / realloc()\n"
        "==7==    at 0x30: fn3 (t.c:3)\n"
        "==7==  Address 0x4a4a040 is 0 bytes inside a block of size 10 free'd\n"
        "==7==    at 0x20: fn2 (t.c:2)\n"
        "==7==  Block was alloc'd at\n"
        "==7==    at 0x10: fn1 (t.c:1)\n"
        "==7== \n"
        "==7== Invalid free() / delete / delete[] / realloc()\n"
        "==7==    at 0x40: fn4 (t.c:4)\n"
        "==7==  Address 0x1ffefffd4c is on thread 1's stack\n"
        "==7== \n"
        "==7== ERROR SUMMARY: 3 errors from 2 contexts (suppressed: 0 from 0)\n");
    free(s);
    CHECK_EQ_U(htri_errors_count_contexts(e, 3), 2);
}

static void test_mismatch_and_redzones(void)
{
    htri_error_rec e[4];
    e[0] = err(HTRI_ERR_MISMATCHED_FREE, 5, 1, 0);
    e[0].free_family = HTRI_FFAM_DELETE;
    e[0].addr_class = HTRI_ADDR_INTERIOR;
    e[1] = err(HTRI_ERR_OVERRUN, 6, 1, 0);
    e[1].addr = 0x4a4a04a;
    e[1].offset = 10;
    e[1].length = 1;
    e[1].n_bytes = 1;
    e[1].bytes[0] = 0x41;
    e[2] = err(HTRI_ERR_UNDERRUN, 0, 1, 0);
    e[2].addr = 0x4a4a03f;
    e[2].offset = -1;
    e[2].length = 1;
    e[2].n_bytes = 1;
    e[2].free_family = HTRI_NOFAM;
    e[3] = err(HTRI_ERR_WRITE_AFTER_FREE, 0, 1, 2);
    e[3].addr = 0x4a4a044;
    e[3].offset = 4;
    e[3].length = 2;
    e[3].n_bytes = 2;
    e[3].bytes[0] = 'W';
    e[3].bytes[1] = 'X';
    htri_errors_view v = { e, 4, NULL, 0, NULL, 0, fake_stack, NULL, NULL };
    long n;
    char *s = render(&v, &n);
    CHECK_STR(s,
        "Mismatched free() / delete / delete []\n"
        "   at 0x50: fn5 (t.c:5)\n"
        " Address 0x4a4a040 is 0 bytes inside a block of size 10 alloc'd\n"
        "   at 0x10: fn1 (t.c:1)\n"
        "\n"
        "Invalid write after the end of a block of size 10 (found at free())\n"
        "   at 0x60: fn6 (t.c:6)\n"
        " Address 0x4a4a04a is 0 bytes after a block of size 10 alloc'd\n"
        "   at 0x10: fn1 (t.c:1)\n"
        " Damaged: 1 byte at offset 10, found 41 (expected fb)\n"
        "\n"
        "Invalid write before the start of a block of size 10 (found at exit)\n"
        " Address 0x4a4a03f is 1 bytes before a block of size 10 alloc'd\n"
        "   at 0x10: fn1 (t.c:1)\n"
        " Damaged: 1 byte at offset -1, found 00 (expected fb)\n"
        "\n"
        "Invalid write to a freed block of size 10 (found in quarantine)\n"
        " Address 0x4a4a044 is 4 bytes inside a block of size 10 free'd\n"
        "   at 0x20: fn2 (t.c:2)\n"
        " Block was alloc'd at\n"
        "   at 0x10: fn1 (t.c:1)\n"
        " Damaged: 2 bytes at offset 4..5, found 57 58 (expected dd)\n"
        "\n"
        "ERROR SUMMARY: 4 errors from 4 contexts (suppressed: 0 from 0)\n");
    free(s);
}

static void test_faults_and_limits(void)
{
    htri_fault_rec f = { 1, 1, HTRI_FAULT_EVERY, HTRI_FAM_MALLOC, 64, 9 };
    htri_limit_rec l;
    memset(&l, 0, sizeof l);
    l.size = 1000;
    l.node = 8;
    l.family = HTRI_FAM_NEW;
    l.live_bytes = 600;
    l.limit_bytes = 1024;
    l.n_holders = 1;
    l.holders[0] = (htri_limit_holder){ 7, 600, 3 };
    htri_errors_view v = { NULL, 0, &f, 1, &l, 1, fake_stack, NULL, NULL };
    long n;
    char *s = render(&v, &n);
    CHECK_EQ_U(n, 0);
    CHECK_STR(s,
        "Injected failure of malloc(64) (--fail-every)\n"
        "   at 0x90: fn9 (t.c:9)\n"
        "\n"
        "Memory limit: operator new(1000) refused, 600 bytes live, limit 1024 bytes\n"
        "   at 0x80: fn8 (t.c:8)\n"
        " Top holders at that moment:\n"
        " 1: 600 bytes in 3 blocks allocated at\n"
        "   at 0x70: fn7 (t.c:7)\n"
        "\n"
        "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0)\n");
    free(s);
}

static void test_stack_pcs(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    uint64_t pcs[2] = { 0x10, 0x20 };
    htri_render_stack_pcs(f, "==1== ", NULL, pcs, 2);
    fclose(f);
    CHECK_STR(buf, "==1==    at 0x10: ???\n==1==    by 0x20: ???\n");
    free(buf);
}

int main(void)
{
    test_double_free();
    test_mismatch_and_redzones();
    test_faults_and_limits();
    test_stack_pcs();
    return CHECK_DONE();
}
