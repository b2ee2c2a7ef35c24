/* Steps the commands share: a trace opened and analysed with the CLI's wording for every
 * failure, --suppressions files loaded, and the descriptor limit raised for the symbolizer. */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "analyze/analyze.h"
#include "analyze/suppress.h"
#include "cli/cli.h"
#include "render/leaks.h"
#include "trace/reader.h"

int htri_cli_load(const char *path, const htri_analyze_opts *ao, htri_model **out)
{
    htri_reader *r = NULL;
    htri_model *m = NULL;
    char err[160];
    *out = NULL;
    int rc = htri_reader_open(path, &r);
    if (rc < 0)
        return htri_cli_error("%s: %s", path, htri_cli_strerror(rc));
    const htri_reader_cut *cut = htri_reader_cut_info(r);
    if (cut->status == HTRI_E_CORRUPT) {
        rc = htri_cli_error("%s: corrupt trace: %s at byte %llu", path, cut->why,
                            (unsigned long long)cut->offset);
        htri_reader_close(r);     /* cut points into the reader */
        return rc;
    }
    err[0] = 0;
    rc = htri_analyze(r, ao, &m, err, sizeof err);
    if (rc < 0) {
        const char *where = rc == HTRI_E_CORRUPT && htri_reader_error(r)[0] ? htri_reader_error(r) : err;
        rc = htri_cli_error("%s: %s%s%s", path, htri_cli_strerror(rc), where[0] ? ": " : "", where);
        htri_reader_close(r);
        return rc;
    }
    htri_reader_close(r);
    if (m->cut.status == HTRI_E_TRUNCATED)
        htri_cli_warning("%s: trace cut at byte %llu: %s; analysed up to there", path,
                         (unsigned long long)m->cut.offset, m->cut.why);
    *out = m;
    return HTRI_CLI_OK;
}

void htri_cli_leaks_opts(const htri_cli_leak_opts *lo, htri_supp_set *supp, htri_leaks_opts *out)
{
    htri_leaks_opts_default(out);
    out->mode = lo->mode;
    out->show_kinds = lo->show_kinds;
    out->error_kinds = lo->error_kinds;
    out->resolution = lo->resolution;
    out->num_callers = lo->num_callers;
    out->gen_suppressions = lo->gen_suppressions;
    out->supp = supp;
}

int htri_cli_load_supp(const htri_cli_leak_opts *lo, htri_supp_set **out)
{
    char err[256];
    *out = NULL;
    if (!lo->n_supp)
        return HTRI_CLI_OK;
    htri_supp_set *supp = htri_supp_open();
    if (!supp)
        return htri_cli_error("out of memory");
    for (int i = 0; i < lo->n_supp; i++) {
        err[0] = 0;
        long n = htri_supp_load_file(supp, lo->supp_files[i], err, sizeof err);
        if (n < 0) {
            htri_supp_close(supp);
            if (n == -EINVAL)
                return htri_cli_error("--suppressions: %s", err);
            return htri_cli_error("--suppressions=%s: %s", lo->supp_files[i], strerror((int)-n));
        }
    }
    *out = supp;
    return HTRI_CLI_OK;
}

void htri_cli_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);   /* the symbolizer copes with fewer */
    }
}
