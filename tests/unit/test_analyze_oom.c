/* Out-of-memory paths of the reader, the analysis and the renderers: the test replaces malloc
 * and friends with versions that fail the Nth allocation, and makes every N fail in turn.
 * Each run must end in -ENOMEM (or success once N is past the last allocation), never crash. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "../cli/trace_enc.h"
#include "analyze/analyze.h"
#include "render/render.h"

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void __libc_free(void *p);

static struct {
    long countdown;    /* fail when it reaches 0; < 0: never */
    long seen;
} g_oom = { -1, 0 };

static int oom_fail(void)
{
    g_oom.seen++;
    if (g_oom.countdown < 0)
        return 0;
    return g_oom.countdown-- == 0;
}

void *malloc(size_t n);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t n);
void free(void *p);
void *malloc(size_t n) { return oom_fail() ? NULL : __libc_malloc(n); }
void *calloc(size_t n, size_t size) { return oom_fail() ? NULL : __libc_calloc(n, size); }
void *realloc(void *p, size_t n) { return oom_fail() ? NULL : __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }

static int run_once(const enc *e, long fail_at, int render)
{
    htri_reader *r = NULL;
    htri_model *m = NULL;
    g_oom.countdown = fail_at;
    g_oom.seen = 0;
    int rc = htri_reader_open_mem(e->buf, e->len, &r);
    if (rc == 0) {
        rc = htri_analyze(r, NULL, &m, NULL, 0);
        if (rc == 0 && render) {
            FILE *devnull = fopen("/dev/null", "w");
            htri_render_opts o = { 3, "x.htr", 1 };
            if (!devnull)
                rc = -ENOMEM;
            else {
                rc = htri_render_text(devnull, m, &o);
                if (rc == 0)
                    rc = htri_render_json(devnull, m, &o);
                fclose(devnull);
            }
        }
        htri_model_free(m);
        htri_reader_close(r);
    }
    g_oom.countdown = -1;
    return rc;
}

int main(void)
{
    enc e;
    enc_sample(&e);
    long total = (run_once(&e, -1, 0), g_oom.seen);
    CHECK(total > 5);
    int enomem = 0, ok = 0;
    for (long k = 0; k <= total; k++) {
        int rc = run_once(&e, k, 0);
        if (rc == -ENOMEM)
            enomem++;
        else if (rc == 0)
            ok++;
        else
            CHECK_EQ_U((uint64_t)rc, (uint64_t)-ENOMEM);
    }
    CHECK(enomem > 5);
    CHECK(ok >= 1);          /* failing past the last allocation changes nothing */
    /* the renderers too: every failure is reported or harmless (fopen may be the one failing) */
    long total_r = (run_once(&e, -1, 1), g_oom.seen);
    for (long k = total; k <= total_r; k++) {
        int rc = run_once(&e, k, 1);
        CHECK(rc == 0 || rc == -ENOMEM || rc == -EIO);
    }
    free(e.buf);
    return CHECK_DONE();
}
