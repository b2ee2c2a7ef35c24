/* `heaptrail report FILE`: opens a trace, runs the analysis and renders it as text or JSON on
 * stdout. A cut trace is analysed up to the cut with a warning; damage is an error. */
#include <errno.h>
#include <stdio.h>

#include "analyze/analyze.h"
#include "cli/cli.h"
#include "render/render.h"
#include "trace/reader.h"

int htri_cmd_report(const htri_report_opts *o)
{
    htri_reader *r = NULL;
    htri_model *m = NULL;
    char err[160];
    int rc = htri_reader_open(o->path, &r);
    if (rc < 0)
        return htri_cli_error("%s: %s", o->path, htri_cli_strerror(rc));
    const htri_reader_cut *cut = htri_reader_cut_info(r);
    if (cut->status == HTRI_E_CORRUPT) {
        rc = htri_cli_error("%s: corrupt trace: %s at byte %llu", o->path, cut->why,
                            (unsigned long long)cut->offset);
        htri_reader_close(r);     /* cut points into the reader */
        return rc;
    }
    htri_analyze_opts ao = { .short_lived_ns = o->short_lived_ns };
    rc = htri_analyze(r, &ao, &m, err, sizeof err);
    if (rc < 0) {
        const char *where = rc == HTRI_E_CORRUPT && htri_reader_error(r)[0] ? htri_reader_error(r) : err;
        rc = htri_cli_error("%s: %s%s%s", o->path, htri_cli_strerror(rc), where[0] ? ": " : "", where);
        htri_reader_close(r);
        return rc;
    }
    htri_reader_close(r);
    if (m->cut.status == HTRI_E_TRUNCATED)
        htri_cli_warning("%s: trace cut at byte %llu: %s; analysed up to there", o->path,
                         (unsigned long long)m->cut.offset, m->cut.why);
    htri_render_opts ro = { o->top, o->path, 0 };
    rc = o->json ? htri_render_json(stdout, m, &ro) : htri_render_text(stdout, m, &ro);
    htri_model_free(m);
    if (rc == 0 && fflush(stdout) != 0)
        rc = -EIO;
    if (rc < 0)
        return htri_cli_error("writing the report: %s", htri_cli_strerror(rc));
    return HTRI_CLI_OK;
}
