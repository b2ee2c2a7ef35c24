/* Unit tests of memcheck's leak report rebuilt from LEAK_GROUP records (src/render/leaks.c):
 * loss-record merging at each resolution, memcheck's order and numbering, the exact record,
 * suppression and LEAK SUMMARY lines, the summary/no modes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "render/leaks.h"

/* Fake stacks: node n has pcs { 0x1000*n + 1, 0x40 + (n % 2), 0x99 }, and resolves to a frame
 * named f<pc> in /bin/app, file t.c, line = pc & 0xff. */
static int fake_pcs(void *user, uint32_t node, uint64_t *out, int max)
{
    (void)user;
    if (node == 0 || max < 3) return 0;
    out[0] = 0x1000u * node + 1;
    out[1] = 0x40 + (node % 2);
    out[2] = 0x99;
    return 3;
}

static char g_names[64][32];
static int g_n_names;
static int fake_resolve(void *user, uint64_t pc, htri_frame *out, int max)
{
    (void)user;
    if (max < 1) return 0;
    char *name = g_names[g_n_names++ % 64];
    snprintf(name, 32, "f%llx", (unsigned long long)pc);
    memset(out, 0, sizeof *out);
    out->function = name;
    out->file = "/src/t.c";
    out->line = (uint32_t)(pc & 0xff);
    out->module = "/bin/app";
    out->pc = pc;
    return 1;
}

static char *render(const htri_leak_group_rec *g, size_t n, const htri_leaks_opts *o,
                    htri_leaks_result *res)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    htri_leaks_stacks st = { fake_pcs, fake_resolve, NULL, "/lib/libheaptrail-preload.so" };
    CHECK(htri_render_leaks(f, g, n, &st, o, res) == 0);
    fclose(f);
    return buf;
}

static const htri_leak_group_rec g_groups[] = {
    /* kind heur family node blocks bytes indirect */
    { HTRI_LEAK_DEFINITE, 0, HTRI_FAM_MALLOC, 2, 1, 32, 32 },     /* 64 total */
    { HTRI_LEAK_INDIRECT, 0, HTRI_FAM_MALLOC, 3, 2, 32, 0 },
    { HTRI_LEAK_DEFINITE, 0, HTRI_FAM_CALLOC, 4, 3, 1000, 0 },
    { HTRI_LEAK_POSSIBLE, 0, HTRI_FAM_NEW, 5, 1, 64, 0 },         /* 64 total, before definite
                                                                   * (memcheck: Reachable, Possible,
                                                                   * IndirectLeak, Unreached) */
    { HTRI_LEAK_REACHABLE, 1, HTRI_FAM_MALLOC, 6, 1, 35, 0 },
    { HTRI_LEAK_REACHABLE, 0, HTRI_FAM_MALLOC, 6, 2, 20, 0 },     /* same record as above */
    { HTRI_LEAK_DEFINITE, 0, HTRI_FAM_MALLOC, 7, 1, 16, 0 },
};
#define N_GROUPS (sizeof g_groups / sizeof g_groups[0])

static void test_full(void)
{
    htri_leaks_opts o;
    htri_leaks_opts_default(&o);
    o.mode = HTRI_LEAKCHECK_FULL;
    o.prefix = "==1== ";
    htri_leaks_result res;
    char *text = render(g_groups, N_GROUPS, &o, &res);
    const char *want =
        "==1== 16 bytes in 1 blocks are definitely lost in loss record 1 of 6\n"
        "==1==    at 0x0: malloc (in /lib/libheaptrail-preload.so)\n"
        "==1==    by 0x7001: f7001 (t.c:1)\n"
        "==1==    by 0x41: f41 (t.c:65)\n"
        "==1==    by 0x99: f99 (t.c:153)\n"
        "==1== \n"
        "==1== 64 bytes in 1 blocks are possibly lost in loss record 4 of 6\n"
        "==1==    at 0x0: operator new(unsigned long) (in /lib/libheaptrail-preload.so)\n"
        "==1==    by 0x5001: f5001 (t.c:1)\n"
        "==1==    by 0x41: f41 (t.c:65)\n"
        "==1==    by 0x99: f99 (t.c:153)\n"
        "==1== \n"
        "==1== 64 (32 direct, 32 indirect) bytes in 1 blocks are definitely lost in loss record 5 of 6\n"
        "==1==    at 0x0: malloc (in /lib/libheaptrail-preload.so)\n"
        "==1==    by 0x2001: f2001 (t.c:1)\n"
        "==1==    by 0x40: f40 (t.c:64)\n"
        "==1==    by 0x99: f99 (t.c:153)\n"
        "==1== \n"
        "==1== 1,000 bytes in 3 blocks are definitely lost in loss record 6 of 6\n"
        "==1==    at 0x0: calloc (in /lib/libheaptrail-preload.so)\n"
        "==1==    by 0x4001: f4001 (t.c:1)\n"
        "==1==    by 0x40: f40 (t.c:64)\n"
        "==1==    by 0x99: f99 (t.c:153)\n"
        "==1== \n"
        "==1== LEAK SUMMARY:\n"
        "==1==    definitely lost: 1,048 bytes in 5 blocks\n"
        "==1==    indirectly lost: 32 bytes in 2 blocks\n"
        "==1==      possibly lost: 64 bytes in 1 blocks\n"
        "==1==    still reachable: 55 bytes in 3 blocks\n"
        "==1==                       of which reachable via heuristic:\n"
        "==1==                         stdstring          : 35 bytes in 1 blocks\n"
        "==1==         suppressed: 0 bytes in 0 blocks\n"
        "==1== Reachable blocks (those to which a pointer was found) are not shown.\n"
        "==1== To see them, rerun with: --leak-check=full --show-leak-kinds=all\n"
        "==1== \n";
    CHECK_STR(text, want);
    CHECK_EQ_U(res.n_records, 6);
    CHECK_EQ_U(res.n_errors, 4);
    free(text);
}

static void test_suppressed_and_gen(void)
{
    htri_leaks_opts o;
    htri_leaks_opts_default(&o);
    o.mode = HTRI_LEAKCHECK_FULL;
    o.gen_suppressions = 1;
    o.show_kinds = 1u << HTRI_LEAK_DEFINITE;
    o.supp = htri_supp_open();
    const char *s = "{\n calloc-site\n Memcheck:Leak\n match-leak-kinds: definite\n fun:calloc\n fun:f4001\n}\n"
                    "{\n reach\n Memcheck:Leak\n match-leak-kinds: reachable\n fun:malloc\n}\n";
    CHECK_EQ_U(htri_supp_parse(o.supp, s, strlen(s), "t", NULL, 0), 2);
    htri_leaks_result res;
    char *text = render(g_groups + 6, 1, &o, &res);
    CHECK(strstr(text, "{\n   <insert_a_suppression_name_here>\n   Memcheck:Leak\n"
                       "   match-leak-kinds: definite\n   fun:malloc\n   fun:f7001\n"
                       "   fun:f41\n   fun:f99\n}\n") != NULL);
    free(text);
    text = render(g_groups, N_GROUPS, &o, &res);
    /* the calloc record is suppressed: not printed, counted apart; the reachable record too,
     * though neither shown nor an error: memcheck matches every loss record against the
     * suppressions, in any mode (MC_(record_leak_error) for each), and counts a suppressed
     * error only for records that would have been errors */
    CHECK(strstr(text, "1,000 bytes in 3 blocks are") == NULL);
    CHECK(strstr(text, "   definitely lost: 48 bytes in 2 blocks\n") != NULL);
    CHECK(strstr(text, "        suppressed: 1,055 bytes in 6 blocks\n") != NULL);
    CHECK(strstr(text, "   still reachable: 0 bytes in 0 blocks\n") != NULL);
    CHECK_EQ_U(res.n_suppressed, 1);
    uint64_t uses;
    htri_supp_name(o.supp, 1, &uses);
    CHECK_EQ_U(uses, 1);
    free(text);
    /* summary mode prints no record and counts none as an error, but suppresses all the same */
    o.mode = HTRI_LEAKCHECK_SUMMARY;
    text = render(g_groups, N_GROUPS, &o, &res);
    CHECK(strstr(text, "        suppressed: 1,055 bytes in 6 blocks\n") != NULL);
    CHECK(strstr(text, "   definitely lost: 48 bytes in 2 blocks\n") != NULL);
    CHECK_EQ_U(res.n_suppressed, 0);
    CHECK_EQ_U(res.n_errors, 0);
    free(text);
    htri_supp_close(o.supp);
}

static void test_modes_and_resolution(void)
{
    htri_leaks_opts o;
    htri_leaks_opts_default(&o);
    htri_leaks_result res;
    char *text = render(g_groups, N_GROUPS, &o, &res);   /* summary: no records */
    CHECK(strncmp(text, "LEAK SUMMARY:\n", 14) == 0);
    CHECK(strstr(text, "Rerun with --leak-check=full to see details of leaked memory\n") != NULL);
    CHECK_EQ_U(res.n_errors, 0);
    free(text);
    o.mode = HTRI_LEAKCHECK_NO;
    text = render(g_groups, N_GROUPS, &o, &res);
    CHECK_STR(text, "For a detailed leak analysis, rerun with: --leak-check=full\n\n");
    free(text);
    o.mode = HTRI_LEAKCHECK_FULL;
    text = render(NULL, 0, &o, &res);
    CHECK_STR(text, "All heap blocks were freed -- no leaks are possible\n\n");
    free(text);
    /* low resolution: malloc + 1 frame; nodes 2 and 8 share no first pc, so 2 records; two
     * malloc'd definite groups whose first pc agree merge into one record */
    htri_leak_group_rec g[3] = {
        { HTRI_LEAK_DEFINITE, 0, HTRI_FAM_MALLOC, 2, 1, 10, 0 },
        { HTRI_LEAK_DEFINITE, 0, HTRI_FAM_MALLOC, 2, 2, 20, 0 },
        { HTRI_LEAK_DEFINITE, 0, HTRI_FAM_MALLOC, 3, 1, 5, 0 },
    };
    o.resolution = 2;
    text = render(g, 3, &o, &res);
    CHECK(strstr(text, "30 bytes in 3 blocks are definitely lost in loss record 2 of 2\n") != NULL);
    free(text);
    /* parsers */
    unsigned mask;
    int v;
    CHECK(htri_leaks_parse_kinds("definite,reachable", &mask) == 0 && mask == 9);
    CHECK(htri_leaks_parse_kinds("all", &mask) == 0 && mask == 15);
    CHECK(htri_leaks_parse_kinds("none", &mask) == 0 && mask == 0);
    CHECK(htri_leaks_parse_kinds("lost", &mask) == -EINVAL);
    CHECK(htri_leaks_parse_mode("full", &v) == 0 && v == HTRI_LEAKCHECK_FULL);
    CHECK(htri_leaks_parse_mode("maybe", &v) == -EINVAL);
    CHECK(htri_leaks_parse_resolution("med", &v) == 0 && v == 4);
    CHECK(htri_leaks_parse_resolution("x", &v) == -EINVAL);
}

/* Stacks that share their first frames: nodes 10 and 11 agree on 2 pcs, then differ. */
static int shared_pcs(void *user, uint32_t node, uint64_t *out, int max)
{
    (void)user;
    if (max < 4) return 0;
    out[0] = 0x500;
    out[1] = 0x600;
    out[2] = 0x700 + node;
    out[3] = 0x900;
    return 4;
}
static int named_resolve(void *user, uint64_t pc, htri_frame *out, int max)
{
    (void)user;
    if (max < 1) return 0;
    memset(out, 0, sizeof *out);
    out->function = pc == 0x900 ? "__libc_start_call_main" : pc == 0x700 + 11 ? "main" : "f";
    out->pc = pc;
    return 1;
}

static void test_resolution_and_below_main(void)
{
    htri_leak_group_rec g[2] = {
        { HTRI_LEAK_DEFINITE, 0, HTRI_FAM_MALLOC, 10, 1, 8, 0 },
        { HTRI_LEAK_DEFINITE, 0, HTRI_FAM_MALLOC, 11, 1, 8, 0 },
    };
    htri_leaks_stacks st = { shared_pcs, named_resolve, NULL, "agent.so" };
    htri_leaks_opts o;
    htri_leaks_opts_default(&o);
    o.mode = HTRI_LEAKCHECK_FULL;
    int res_frames[3] = { 2, 4, 0 };
    int want_records[3] = { 1, 2, 2 };   /* low: malloc + 1 frame; med, high: they differ */
    for (int i = 0; i < 3; i++) {
        o.resolution = res_frames[i];
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        htri_leaks_result res;
        CHECK(htri_render_leaks(f, g, 2, &st, &o, &res) == 0);
        fclose(f);
        CHECK_EQ_U(res.n_records, want_records[i]);
        if (i == 0) CHECK(strstr(buf, "16 bytes in 2 blocks are definitely lost in loss record 1 of 1\n"));
        if (i == 2) {
            /* node 11's stack ends at main; node 10's glibc start-up frame reads (below main) */
            CHECK(strstr(buf, ": main\n") != NULL);
            CHECK(strstr(buf, ": (below main)\n") != NULL);
            CHECK(strstr(buf, "__libc_start_call_main") == NULL);
        }
        free(buf);
    }
}

/* A C++ program's stack: pc 0x100 in a template member (mangled name known), 0x200 an
 * inlined lambda with no linkage name in run(int), then a start-up frame. */
static int cxx_pcs(void *user, uint32_t node, uint64_t *out, int max)
{
    (void)user;
    (void)node;
    if (max < 3) return 0;
    out[0] = 0x100;
    out[1] = 0x200;
    out[2] = 0x300;
    return 3;
}
static int cxx_resolve(void *user, uint64_t pc, htri_frame *out, int max)
{
    (void)user;
    if (max < 2) return 0;
    memset(out, 0, 2 * sizeof *out);
    out[0].pc = pc;
    out[0].module = "/bin/app";
    if (pc == 0x100) {
        out[0].function = "ns::Widget<int>::grow(unsigned long)";
        out[0].linkage = "_ZN2ns6WidgetIiE4growEm";
        return 1;
    }
    if (pc == 0x200) {
        out[0].function = "run::{lambda}::operator()";
        out[0].inlined = 1;
        out[1] = out[0];
        out[1].function = "run(int)";
        out[1].linkage = "_Z3runi";
        out[1].inlined = 0;
        return 2;
    }
    /* a start-up frame with a linkage name, as if C++: "(below main)" must not keep it */
    out[0].function = "__libc_start_call_main";
    out[0].linkage = "_Z22__libc_start_call_mainv";
    return 1;
}

static char *render_cxx(const htri_leak_group_rec *g, const htri_leaks_opts *o,
                        htri_leaks_result *res)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    htri_leaks_stacks st = { cxx_pcs, cxx_resolve, NULL, "/lib/libheaptrail-preload.so" };
    CHECK(htri_render_leaks(f, g, 1, &st, o, res) == 0);
    fclose(f);
    return buf;
}

/* fun: lines match C++ frames by their mangled names, as memcheck's suppressions are
 * written, and by the demangled ones users write; --gen-suppressions prints mangled. */
static void test_mangled_names(void)
{
    htri_leak_group_rec g = { HTRI_LEAK_DEFINITE, 0, HTRI_FAM_NEW, 9, 1, 24, 0 };
    htri_leaks_opts o;
    htri_leaks_opts_default(&o);
    o.mode = HTRI_LEAKCHECK_FULL;
    o.gen_suppressions = 1;
    htri_leaks_result res;
    char *text = render_cxx(&g, &o, &res);
    /* the report shows demangled names; the suppression block memcheck's mangled ones */
    CHECK(strstr(text, "   at 0x0: operator new(unsigned long) (in /lib/libheaptrail-preload.so)\n"
                       "   by 0x100: ns::Widget<int>::grow(unsigned long) (in /bin/app+0x0)\n"
                       "   by 0x200: run::{lambda}::operator() (in /bin/app+0x0)\n"
                       "   by 0x200: run(int) (in /bin/app+0x0)\n"
                       "   by 0x300: (below main) (in /bin/app+0x0)\n") != NULL);
    CHECK(strstr(text, "   match-leak-kinds: definite\n   fun:_Znwm\n"
                       "   fun:_ZN2ns6WidgetIiE4growEm\n   fun:run::{lambda}::operator()\n"
                       "   fun:_Z3runi\n   fun:(below main)\n}\n") != NULL);
    free(text);

    static const char *const hits[] = {
        /* memcheck's own output, mangled */
        "{\n m\n Memcheck:Leak\n fun:_Znwm\n fun:_ZN2ns6WidgetIiE4growEm\n}\n",
        "{\n m\n Memcheck:Leak\n fun:_Znwm\n fun:_ZN2ns6Widget*\n ...\n fun:_Z3runi\n}\n",
        /* demangled, with wildcards */
        "{\n d\n Memcheck:Leak\n fun:operator new*\n fun:ns::Widget<*>::grow*\n}\n",
        /* both in one */
        "{\n b\n Memcheck:Leak\n ...\n fun:run::{lambda}*\n fun:_Z3runi\n fun:(below main)\n}\n",
        /* LSan's leak: on either */
        "leak:_ZN2ns6WidgetIiE4growEm\n",
        "leak:^run(int)$\n",
    };
    static const char *const misses[] = {
        "{\n m\n Memcheck:Leak\n fun:_Znwm\n fun:_Z3runi\n}\n",
        "{\n m\n Memcheck:Leak\n fun:_Znam\n fun:_ZN2ns6WidgetIiE4growEm\n}\n",
        /* "(below main)" lost its start-up function's linkage */
        "{\n m\n Memcheck:Leak\n ...\n fun:_Z22__libc_start_call_mainv\n}\n",
    };
    size_t n_hits = sizeof hits / sizeof hits[0], n_misses = sizeof misses / sizeof misses[0];
    o.gen_suppressions = 0;
    for (size_t i = 0; i < n_hits + n_misses; i++) {
        int hit = i < n_hits;
        const char *s = hit ? hits[i] : misses[i - n_hits];
        o.supp = htri_supp_open();
        CHECK_EQ_U(htri_supp_parse(o.supp, s, strlen(s), "t", NULL, 0), 1);
        text = render_cxx(&g, &o, &res);
        if ((res.n_suppressed == 1) != hit)
            fprintf(stderr, "this suppression should %s:\n%s", hit ? "match" : "not match", s);
        CHECK_EQ_U(res.n_suppressed, (unsigned)hit);
        free(text);
        htri_supp_close(o.supp);
    }
}

/* Whether suppression `text` hides a record of `family` on the C++ stack above. */
static int suppresses(uint8_t family, const char *text)
{
    htri_leak_group_rec g = { HTRI_LEAK_DEFINITE, 0, family, 9, 1, 64, 0 };
    htri_leaks_opts o;
    htri_leaks_opts_default(&o);
    o.mode = HTRI_LEAKCHECK_FULL;
    o.supp = htri_supp_open();
    CHECK_EQ_U(htri_supp_parse(o.supp, text, strlen(text), "t", NULL, 0), 1);
    htri_leaks_result res;
    free(render_cxx(&g, &o, &res));
    htri_supp_close(o.supp);
    return res.n_suppressed == 1;
}

/* Families: a trace records HTRI_FAM_MEMALIGN for posix_memalign, aligned_alloc, memalign,
 * valloc and pvalloc alike, and HTRI_FAM_NEW for every operator new, so the head frame can
 * only say "memalign" / _Znwm, as memcheck 3.19 does for all but posix_memalign (it shows
 * "memalign" then "posix_memalign") and the nothrow / align_val_t operators. Suppressions
 * memcheck wrote for any member of a family match its records. */
static void test_family_heads(void)
{
    htri_leak_group_rec g = { HTRI_LEAK_DEFINITE, 0, HTRI_FAM_MEMALIGN, 9, 1, 64, 0 };
    htri_leaks_opts o;
    htri_leaks_opts_default(&o);
    o.mode = HTRI_LEAKCHECK_FULL;
    o.gen_suppressions = 1;
    htri_leaks_result res;
    char *text = render_cxx(&g, &o, &res);
    CHECK(strstr(text, "   at 0x0: memalign (in /lib/libheaptrail-preload.so)\n") != NULL);
    CHECK(strstr(text, "   match-leak-kinds: definite\n   fun:memalign\n"
                       "   fun:_ZN2ns6WidgetIiE4growEm\n") != NULL);
    free(text);

    static const struct { uint8_t family; int hit; const char *text; } cases[] = {
        /* memcheck's aligned_alloc / memalign / valloc stack, and its posix_memalign one */
        { HTRI_FAM_MEMALIGN, 1, "{\n a\n Memcheck:Leak\n fun:memalign\n fun:_ZN2ns6WidgetIiE4growEm\n}\n" },
        { HTRI_FAM_MEMALIGN, 1, "{\n a\n Memcheck:Leak\n fun:memalign\n fun:posix_memalign\n"
                                " fun:_ZN2ns6WidgetIiE4growEm\n fun:run::*\n fun:_Z3runi\n}\n" },
        { HTRI_FAM_MEMALIGN, 1, "{\n a\n Memcheck:Leak\n fun:memalign\n fun:posix_memalign\n}\n" },
        { HTRI_FAM_MEMALIGN, 0, "{\n a\n Memcheck:Leak\n fun:memalign\n fun:posix_memalign\n fun:_Z3runi\n}\n" },
        { HTRI_FAM_MALLOC, 0, "{\n a\n Memcheck:Leak\n fun:malloc\n fun:posix_memalign\n}\n" },
        { HTRI_FAM_MALLOC, 0, "{\n a\n Memcheck:Leak\n fun:memalign\n}\n" },
        /* operator new: plain, nothrow, aligned; mangled and demangled */
        { HTRI_FAM_NEW, 1, "{\n a\n Memcheck:Leak\n fun:_Znwm\n fun:_ZN2ns6WidgetIiE4growEm\n}\n" },
        { HTRI_FAM_NEW, 1, "{\n a\n Memcheck:Leak\n fun:_ZnwmSt11align_val_t\n fun:_ZN2ns6WidgetIiE4growEm\n}\n" },
        { HTRI_FAM_NEW, 1, "{\n a\n Memcheck:Leak\n fun:_ZnwmRKSt9nothrow_t\n fun:_ZN2ns6Widget*\n}\n" },
        { HTRI_FAM_NEW, 1, "{\n a\n Memcheck:Leak\n fun:operator new(unsigned long, std::align_val_t)\n}\n" },
        { HTRI_FAM_NEW, 0, "{\n a\n Memcheck:Leak\n fun:_ZnamSt11align_val_t\n}\n" },
        { HTRI_FAM_NEW, 0, "{\n a\n Memcheck:Leak\n fun:_ZnwmSt11align_val_t\n fun:_Z3runi\n}\n" },
        { HTRI_FAM_NEW_ARRAY, 1, "{\n a\n Memcheck:Leak\n fun:_ZnamSt11align_val_tRKSt9nothrow_t\n}\n" },
        { HTRI_FAM_NEW_ARRAY, 0, "{\n a\n Memcheck:Leak\n fun:_ZnwmSt11align_val_t\n}\n" },
        { HTRI_FAM_CALLOC, 0, "{\n a\n Memcheck:Leak\n fun:_Znwm\n}\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int hit = suppresses(cases[i].family, cases[i].text);
        if (hit != cases[i].hit)
            fprintf(stderr, "family %d: this suppression should %s:\n%s", cases[i].family,
                    cases[i].hit ? "match" : "not match", cases[i].text);
        CHECK_EQ_U(hit, cases[i].hit);
    }
}

int main(void)
{
    test_mangled_names();
    test_family_heads();
    test_resolution_and_below_main();
    test_full();
    test_suppressed_and_gen();
    test_modes_and_resolution();
    return CHECK_DONE();
}
