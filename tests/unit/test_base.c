/* Unit tests for src/base: varints, zigzag, the no-alloc formatter, os helpers. */
#include <stdint.h>
#include <unistd.h>
#include <errno.h>
#include "check.h"
#include "base/varint.h"
#include "base/fmt.h"
#include "base/os.h"
#include "base/hash.h"

static void test_varint(void)
{
    uint64_t vals[] = { 0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, UINT64_MAX, 0x7fffdeadbeefull };
    uint8_t buf[16];
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t *e = htri_varint_put(buf, vals[i]);
        CHECK(e - buf <= HTRI_VARINT_MAX);
        const uint8_t *p = buf;
        uint64_t got = 0;
        CHECK(htri_varint_get(&p, e, &got) == 0);
        CHECK_EQ_U(got, vals[i]);
        CHECK(p == e);
        /* every strict prefix is a truncation */
        p = buf;
        CHECK(htri_varint_get(&p, e - 1, &got) == -1);
    }
    int64_t s[] = { 0, -1, 1, -64, 64, INT64_MIN, INT64_MAX };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        CHECK(htri_unzigzag(htri_zigzag(s[i])) == s[i]);
    CHECK_EQ_U(htri_zigzag(-1), 1);
    /* an over-long varint is rejected */
    uint8_t bad[12];
    memset(bad, 0xff, sizeof bad);
    const uint8_t *p = bad;
    uint64_t v;
    CHECK(htri_varint_get(&p, bad + sizeof bad, &v) == -1);
}

static void test_fmt(void)
{
    char b[128];
    htri_fmt(b, sizeof b, "%s=%d %u %x %lu %zu %lld", "a", -42, 7u, 255u, 10ul, (size_t)3, -5ll);
    CHECK_STR(b, "a=-42 7 ff 10 3 -5");
    htri_fmt(b, sizeof b, "[%5d][%-5d][%05d][%'lu]", 42, 42, -42, 1234567ul);
    CHECK_STR(b, "[   42][42   ][-0042][1,234,567]");
    htri_fmt(b, sizeof b, "%p %c %% %.*s", (void *)0x1000, 'z', 3, "abcdef");
    CHECK_STR(b, "0x1000 z % abc");
    size_t n = htri_fmt(b, 5, "hello world");
    CHECK_EQ_U(n, 11);
    CHECK_STR(b, "hell");
    const char *volatile nul = NULL; /* hidden from -Wformat-overflow: we test the NULL path */
    htri_fmt(b, sizeof b, "%s", nul);
    CHECK_STR(b, "(null)");
}

static void test_os(void)
{
    uint64_t a = htri_os_now_ns(), c = htri_os_now_ns();
    CHECK(c >= a);
    CHECK(htri_os_gettid() == getpid());
    int fd = -1;
    CHECK(htri_os_rss_bytes(&fd) > 0);
    CHECK(htri_os_peak_rss_bytes() > 0);
    char name[32];
    CHECK(htri_os_thread_name(htri_os_gettid(), name, sizeof name) > 0);
    CHECK(strstr("test_base", name) != NULL || strstr(name, "test_base") != NULL);
    char exe[256];
    CHECK(htri_os_exe_path(exe, sizeof exe) > 0);
    CHECK(strstr(exe, "test_base") != NULL);
    char buf[8];
    CHECK(htri_os_read_small_file("/nonexistent/file", buf, sizeof buf) < 0);
    void *pg = htri_os_pages_alloc(1 << 20);
    CHECK(pg != NULL);
    CHECK(((char *)pg)[12345] == 0);
    htri_os_region regs[HTRI_OS_MAX_REGIONS];
    int n = htri_os_own_regions(regs, HTRI_OS_MAX_REGIONS), seen = 0;
    for (int i = 0; i < n; i++)
        seen += regs[i].start == (uintptr_t)pg && regs[i].end == (uintptr_t)pg + (1 << 20);
    CHECK(seen == 1);
    htri_os_pages_free(pg, 1 << 20);
    CHECK(htri_os_own_regions(regs, HTRI_OS_MAX_REGIONS) == n - 1);
    CHECK(htri_os_write_all(-1, "x", 1) == -EBADF);
}

static void test_hash(void)
{
    uintptr_t s1[] = { 1, 2, 3 }, s2[] = { 1, 2, 4 };
    CHECK(htri_hash_words(s1, 3) != htri_hash_words(s2, 3));
    CHECK(htri_hash_words(s1, 2) != htri_hash_words(s1, 3));
    CHECK(htri_hash64(1) != htri_hash64(2));
}

int main(void)
{
    test_varint();
    test_fmt();
    test_os();
    test_hash();
    return CHECK_DONE();
}
