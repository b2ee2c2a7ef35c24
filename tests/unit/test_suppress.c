/* Unit tests of the leak suppressions (src/analyze/suppress.c): memcheck blocks and LSan
 * lines, frame wildcards, globs, leak kinds, errors with their line numbers. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "analyze/suppress.h"
#include "trace/leak_record.h"

static const htri_supp_frame g_stack[] = {
    { "malloc", "malloc", "/usr/lib/libheaptrail-preload.so", NULL, 0 },
    { "make_node", "make_node", "/opt/app/bin/app", "/src/app/tree.c", 42 },
    { "std::vector<int>::push_back(int const&)", "_ZNSt6vectorIiE9push_backERKi",
      "/opt/app/bin/app", "/usr/include/c++/12/bits/stl_vector.h", 1287 },
    { "load_config", "load_config", "/usr/lib/libconf.so.3", "conf.c", 7 },
    { "main", "main", "/opt/app/bin/app", "/src/app/main.c", 10 },
};
#define N_FRAMES (sizeof g_stack / sizeof g_stack[0])

static int match_one(const char *text, int kind)
{
    htri_supp_set *s = htri_supp_open();
    char err[256] = "";
    long n = htri_supp_parse(s, text, strlen(text), "t.supp", err, sizeof err);
    if (n < 0) fprintf(stderr, "parse: %s\n", err);
    int hit = n > 0 ? htri_supp_match_leak(s, kind, g_stack, N_FRAMES) : -2;
    htri_supp_close(s);
    return hit;
}

static void test_memcheck_blocks(void)
{
    CHECK(match_one("{\n  a\n  Memcheck:Leak\n  fun:malloc\n  fun:make_node\n}\n",
                    HTRI_LEAK_DEFINITE) == 0);
    /* shorter than the stack: matches its innermost part */
    CHECK(match_one("{\n a\n Memcheck:Leak\n fun:malloc\n}\n", HTRI_LEAK_DEFINITE) == 0);
    /* wrong second frame */
    CHECK(match_one("{\n a\n Memcheck:Leak\n fun:malloc\n fun:main\n}\n", HTRI_LEAK_DEFINITE) == -1);
    /* frame wildcard and globs */
    CHECK(match_one("{\n a\n Memcheck:Leak\n fun:malloc\n ...\n fun:main\n}\n", HTRI_LEAK_DEFINITE) == 0);
    CHECK(match_one("{\n a\n Memcheck:Leak\n ...\n obj:*/libconf.so*\n}\n", HTRI_LEAK_DEFINITE) == 0);
    CHECK(match_one("{\n a\n Memcheck:Leak\n ...\n fun:load_*\n fun:ma?n\n}\n", HTRI_LEAK_DEFINITE) == 0);
    CHECK(match_one("{\n a\n Memcheck:Leak\n ...\n fun:load_*\n fun:mbin\n}\n", HTRI_LEAK_DEFINITE) == -1);
    /* mangled names, as memcheck writes them */
    CHECK(match_one("{\n a\n Memcheck:Leak\n ...\n fun:_ZNSt6vector*push_back*\n}\n", HTRI_LEAK_DEFINITE) == 0);
    /* src: with and without a line */
    CHECK(match_one("{\n a\n Memcheck:Leak\n fun:malloc\n src:tree.c:42\n}\n", HTRI_LEAK_DEFINITE) == 0);
    CHECK(match_one("{\n a\n Memcheck:Leak\n fun:malloc\n src:tree.c:43\n}\n", HTRI_LEAK_DEFINITE) == -1);
    CHECK(match_one("{\n a\n Memcheck:Leak\n fun:malloc\n src:*.c\n}\n", HTRI_LEAK_DEFINITE) == 0);
    /* match-leak-kinds */
    const char *kinds = "{\n a\n Memcheck:Leak\n match-leak-kinds: definite,indirect\n fun:malloc\n}\n";
    CHECK(match_one(kinds, HTRI_LEAK_DEFINITE) == 0);
    CHECK(match_one(kinds, HTRI_LEAK_INDIRECT) == 0);
    CHECK(match_one(kinds, HTRI_LEAK_POSSIBLE) == -1);
    CHECK(match_one("{\n a\n Memcheck:Leak\n match-leak-kinds: all\n fun:malloc\n}\n", HTRI_LEAK_REACHABLE) == 0);
    /* other tools' and kinds' blocks are skipped, comments too */
    const char *mixed = "# comment\n{\n cond\n Memcheck:Cond\n fun:strlen\n}\n"
                        "{\n hg\n Helgrind:Race\n fun:x\n}\n"
                        "{\n  multi\n  Helgrind,Memcheck:Leak\n  fun:malloc\n}\n";
    htri_supp_set *s = htri_supp_open();
    CHECK_EQ_U(htri_supp_parse(s, mixed, strlen(mixed), "m", NULL, 0), 1);
    CHECK(htri_supp_match_leak(s, HTRI_LEAK_DEFINITE, g_stack, N_FRAMES) == 0);
    CHECK(htri_supp_match_leak(s, HTRI_LEAK_DEFINITE, g_stack, N_FRAMES) == 0);
    uint64_t uses = 0;
    CHECK_STR(htri_supp_name(s, 0, &uses), "multi");
    CHECK_EQ_U(uses, 2);
    CHECK(htri_supp_name(s, 1, NULL) == NULL);
    htri_supp_close(s);
}

/* C++ frames carry both names: fun: matches the mangled one (memcheck's suppressions) or
 * the demangled one (users' patterns); a frame without a linkage name only the latter. */
static void test_cxx_names(void)
{
    static const htri_supp_frame cxx[] = {
        { "operator new(unsigned long)", "_Znwm", "/usr/lib/libheaptrail-preload.so", NULL, 0 },
        { "ns::push_edge", NULL, "/opt/app/bin/app", "/src/app/graph.cpp", 12 },
        { "ns::Widget<int>::grow(unsigned long)", "_ZN2ns6WidgetIiE4growEm",
          "/opt/app/bin/app", "/src/app/widget.h", 30 },
        { NULL, "_Z3runi", "/opt/app/bin/app", NULL, 0 },
    };
    static const struct { const char *text; int hit; } cases[] = {
        { "{\n a\n Memcheck:Leak\n fun:_Znwm\n fun:ns::push_edge\n fun:_ZN2ns6WidgetIiE4growEm\n}\n", 1 },
        { "{\n a\n Memcheck:Leak\n fun:operator new*\n ...\n fun:ns::Widget<int>::grow(unsigned long)\n}\n", 1 },
        { "{\n a\n Memcheck:Leak\n fun:_Znwm\n ...\n fun:_ZN2ns6Widget?iE4grow*\n fun:_Z3runi\n}\n", 1 },
        { "{\n a\n Memcheck:Leak\n ...\n fun:ns::Widget<*>::grow*\n fun:run*\n}\n", 0 },
        { "{\n a\n Memcheck:Leak\n fun:_Znwm\n fun:_ZN2ns9push_edge*\n}\n", 0 },
        { "{\n a\n Memcheck:Leak\n fun:_Znam\n}\n", 0 },
        { "leak:_ZN2ns6WidgetIiE4grow\n", 1 },
        { "leak:Widget<int>::grow\n", 1 },
        { "leak:^_Z3runi$\n", 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        htri_supp_set *s = htri_supp_open();
        CHECK(htri_supp_parse(s, cases[i].text, strlen(cases[i].text), "c", NULL, 0) == 1);
        int got = htri_supp_match_leak(s, HTRI_LEAK_DEFINITE, cxx, sizeof cxx / sizeof cxx[0]);
        if ((got == 0) != cases[i].hit)
            fprintf(stderr, "case %zu should %s:\n%s", i, cases[i].hit ? "match" : "not match",
                    cases[i].text);
        CHECK(got == (cases[i].hit ? 0 : -1));
        htri_supp_close(s);
    }
}

static void test_lsan_lines(void)
{
    CHECK(match_one("leak:make_node\n", HTRI_LEAK_DEFINITE) == 0);
    CHECK(match_one("leak:libconf.so\n", HTRI_LEAK_DEFINITE) == 0);
    CHECK(match_one("leak:tree.c\n", HTRI_LEAK_DEFINITE) == 0);
    CHECK(match_one("leak:^make\n", HTRI_LEAK_DEFINITE) == 0);
    CHECK(match_one("leak:^ake\n", HTRI_LEAK_DEFINITE) == -1);
    CHECK(match_one("leak:node$\n", HTRI_LEAK_DEFINITE) == 0);
    CHECK(match_one("leak:std::vector*push_back\n", HTRI_LEAK_DEFINITE) == 0);
    CHECK(match_one("leak:nothing_like_it\n", HTRI_LEAK_DEFINITE) == -1);
    /* other LSan/ASan types are accepted and ignored */
    CHECK(match_one("# asan\ninterceptor_via_fun:foo\nleak:main\n", HTRI_LEAK_POSSIBLE) == 0);
}

static void test_errors(void)
{
    htri_supp_set *s = htri_supp_open();
    char err[256];
    const char *bad[] = {
        "{\n a\n Memcheck:Leak\n fun:malloc\n",          /* no closing brace */
        "{\n}\n",                                          /* no name */
        "{\n a\n Memcheck:Leak\n match-leak-kinds: sometimes\n fun:x\n}\n",
        "{\n a\n Memcheck:Leak\n bogus:x\n}\n",
        "{\n a\n Memcheck:Leak\n}\n",                      /* no frames */
        "{\n a\n NoColon\n}\n",
        "frobnicate:x\n",
        "just words\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK(htri_supp_parse(s, bad[i], strlen(bad[i]), "bad.supp", err, sizeof err) == -EINVAL);
        CHECK(strncmp(err, "bad.supp:", 9) == 0);
    }
    err[0] = 0;
    htri_supp_parse(s, bad[3], strlen(bad[3]), "bad.supp", err, sizeof err);
    CHECK_STR(err, "bad.supp:4: unknown frame line 'bogus:x' in 'a'");
    CHECK(htri_supp_load_file(s, "/nonexistent/x.supp", err, sizeof err) == -ENOENT);
    /* a file round trip */
    char path[] = "/tmp/htr_supp_XXXXXX";
    int fd = mkstemp(path);
    const char *text = "{\n f\n Memcheck:Leak\n fun:malloc\n fun:make_node\n}\nleak:main\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    CHECK_EQ_U(htri_supp_load_file(s, path, err, sizeof err), 2);
    unlink(path);
    htri_supp_close(s);
}

static void test_glob(void)
{
    CHECK(htri_supp_glob("*", ""));
    CHECK(htri_supp_glob("a*b*c", "axxbyyc"));
    CHECK(!htri_supp_glob("a*b*c", "axxbyy"));
    CHECK(htri_supp_glob("a?c", "abc"));
    CHECK(!htri_supp_glob("a?c", "ac"));
    CHECK(htri_supp_glob("a\\*c", "a*c"));
    CHECK(!htri_supp_glob("a\\*c", "abc"));
    CHECK(htri_supp_glob("*libc.so*", "/lib/x86_64-linux-gnu/libc.so.6"));
}

int main(void)
{
    test_memcheck_blocks();
    test_cxx_names();
    test_lsan_lines();
    test_errors();
    test_glob();
    return CHECK_DONE();
}
