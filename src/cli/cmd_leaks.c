/* `heaptrail leaks FILE`: memcheck's leak report again, from the last complete leak check of
 * a trace, with memcheck's leak options (the same renderer as `run`), then memcheck's
 * closing ERROR SUMMARY over the loss records counted as errors. Output on stdout. */
#include <errno.h>
#include <stdio.h>

#include "analyze/analyze.h"
#include "analyze/suppress.h"
#include "cli/cli.h"
#include "render/leaks.h"
#include "render/render.h"

int htri_cmd_leaks(const htri_leaks_cmd_opts *o)
{
    htri_model *m = NULL;
    htri_supp_set *supp = NULL;
    int rc = htri_cli_load_supp(&o->leak, &supp);
    if (rc != HTRI_CLI_OK)
        return rc;
    htri_cli_raise_nofile();
    htri_analyze_opts ao = { .skip_peak_sites = 1 };   /* only the leak check is printed */
    rc = htri_cli_load(o->path, &ao, &m);
    if (rc != HTRI_CLI_OK) {
        htri_supp_close(supp);
        return rc;
    }
    if (!m->has_leak_check) {
        rc = htri_cli_error("%s: no complete leak check in this trace (%s)", o->path,
                            m->n_leak_checks_incomplete ? "the last one was cut short"
                            : "the process did not reach its exit, or ran with --leak-check=no");
        htri_model_free(m);
        htri_supp_close(supp);
        return rc;
    }
    htri_leaks_opts lo;
    htri_cli_leaks_opts(&o->leak, supp, &lo);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "==%u== ", m->header.pid);
    htri_memcheck_counts counts = { 0 };
    htri_render_syms *syms = htri_render_syms_open(m, 0);
    rc = syms ? htri_render_leak_report(stdout, m, syms, &lo, prefix, &counts) : -ENOMEM;
    if (rc == 0)
        rc = htri_render_error_summary(stdout, prefix, &counts);
    htri_render_syms_close(syms);
    htri_model_free(m);
    htri_supp_close(supp);
    if (rc == 0 && fflush(stdout) != 0)
        rc = -EIO;
    if (rc < 0)
        return htri_cli_error("writing the leak report: %s", htri_cli_strerror(rc));
    /* memcheck's --error-exitcode: any error counted gives this status */
    return o->leak.error_exitcode && counts.errors ? o->leak.error_exitcode : HTRI_CLI_OK;
}
