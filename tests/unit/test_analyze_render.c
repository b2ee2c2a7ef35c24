/* Renderers over an analysed hand-made trace: number formatting as memcheck prints it, the
 * run summary's exact lines, and the text/JSON reports' content (symbols off). */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "../cli/trace_enc.h"
#include "render/render.h"

static char *render_to_string(int (*fn)(FILE *, const htri_model *, const htri_render_opts *),
                              const htri_model *m, const htri_render_opts *o)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    CHECK_EQ_U(fn(f, m, o), 0);
    fclose(f);
    return buf;
}

static void test_numbers(void)
{
    char b[64];
    CHECK_STR(htri_render_commas(b, sizeof b, 0), "0");
    CHECK_STR(htri_render_commas(b, sizeof b, 999), "999");
    CHECK_STR(htri_render_commas(b, sizeof b, 1000), "1,000");
    CHECK_STR(htri_render_commas(b, sizeof b, 1234567), "1,234,567");
    CHECK_STR(htri_render_commas(b, sizeof b, 18446744073709551615ull), "18,446,744,073,709,551,615");
    CHECK_STR(htri_render_commas(b, 4, 1234567), "1,2");       /* cut, still terminated */
    CHECK_STR(htri_render_bytes(b, sizeof b, 1023), "1023 B");
    CHECK_STR(htri_render_bytes(b, sizeof b, 1536), "1.50 KiB");
    CHECK_STR(htri_render_bytes(b, sizeof b, 3ull << 30), "3.00 GiB");
    CHECK_STR(htri_render_duration(b, sizeof b, 750), "750 ns");
    CHECK_STR(htri_render_duration(b, sizeof b, 12500), "12.5 us");
    CHECK_STR(htri_render_duration(b, sizeof b, 3200000), "3.20 ms");
    CHECK_STR(htri_render_duration(b, sizeof b, 1234000000), "1.234 s");
    CHECK_STR(htri_render_signame(b, sizeof b, 11), "SIGSEGV");
    CHECK_STR(htri_render_signame(b, sizeof b, 15), "SIGTERM");
}

static void test_reports(void)
{
    enc e;
    enc_sample(&e);
    htri_reader *r = NULL;
    htri_model *m = NULL;
    CHECK_EQ_U(htri_reader_open_mem(e.buf, e.len, &r), 0);
    CHECK_EQ_U(htri_analyze(r, NULL, &m, NULL, 0), 0);
    htri_reader_close(r);
    if (!m) {
        free(e.buf);
        return;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_EQ_U(htri_render_summary(f, m, "/tmp/x.htr", NULL, NULL), 0);
    fclose(f);
    CHECK(strstr(buf, "==4242== HEAP SUMMARY:\n"
                      "==4242==     in use at exit: 100 bytes in 2 blocks\n"
                      "==4242==   total heap usage: 5 allocs, 3 frees, 2,650 bytes allocated\n"
                      "==4242==          peak heap: 1,600 bytes in 2 blocks at 2.5 us\n"
                      "==4242==           peak RSS: 4.00 MiB\n"
                      "==4242==     anonymous mmap: 1,048,576 bytes in 1 mappings (peak 1,048,576 bytes mapped, 524,288 at exit)\n"
                      "==4242== agent: sample warning\n") != NULL);
    CHECK(strstr(buf, "==4242== trace: /tmp/x.htr (exit status 0)\n") != NULL);
    free(buf);

    htri_render_opts o = { 1, "sample.htr", 1 };
    buf = render_to_string(htri_render_text, m, &o);
    CHECK(buf && strstr(buf, "1,500 bytes (93.8% of the peak) in 1 blocks\n"
                             "   at 0x403000: ??? (in /usr/bin/sample)\n"
                             "   by 0x401000: ??? (in /usr/bin/sample)\n"));
    CHECK(buf && strstr(buf, "... and 1 more (--top N shows more)\n"));
    CHECK(buf && strstr(buf, "                  32..63             1 allocs           50 bytes  #"));
    free(buf);

    buf = render_to_string(htri_render_json, m, &o);
    CHECK(buf && strstr(buf, "\"summary\": {\"allocs\": 5, \"frees\": 3, \"bytes_allocated\": 2650,"));
    CHECK(buf && strstr(buf, "\"share\": 0.9375"));
    CHECK(buf && strstr(buf, "\"3\": [\n      {\"pc\": \"0x403000\", \"function\": null, \"file\": null, "
                             "\"line\": 0, \"inlined\": false, \"module\": \"/usr/bin/sample\", "
                             "\"module_offset\": \"0x3000\"}"));
    free(buf);
    htri_model_free(m);
    free(e.buf);
}

int main(void)
{
    test_numbers();
    test_reports();
    return CHECK_DONE();
}
