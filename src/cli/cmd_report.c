/* `heaptrail report FILE`: opens a trace, runs the analysis and renders it as text or JSON on
 * stdout. A cut trace is analysed up to the cut with a warning; damage is an error. */
#include <errno.h>
#include <stdio.h>

#include "analyze/analyze.h"
#include "cli/cli.h"
#include "render/render.h"

int htri_cmd_report(const htri_report_opts *o)
{
    htri_model *m = NULL;
    htri_analyze_opts ao = { .short_lived_ns = o->short_lived_ns };
    htri_cli_raise_nofile();
    int rc = htri_cli_load(o->path, &ao, &m);
    if (rc != HTRI_CLI_OK)
        return rc;
    htri_render_opts ro = { o->top, o->path, 0 };
    rc = o->json ? htri_render_json(stdout, m, &ro) : htri_render_text(stdout, m, &ro);
    htri_model_free(m);
    if (rc == 0 && fflush(stdout) != 0)
        rc = -EIO;
    if (rc < 0)
        return htri_cli_error("writing the report: %s", htri_cli_strerror(rc));
    return HTRI_CLI_OK;
}
