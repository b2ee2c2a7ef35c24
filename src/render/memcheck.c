/* The bridge from the analysis model to memcheck's end-of-run reports: the misuse records to
 * render/errors.c, the last complete leak check to render/leaks.c (the model's stack trie
 * and symbolizer behind their stack callbacks), and memcheck's two closing lines. */
#include <errno.h>
#include <string.h>

#include "render/errors.h"
#include "render/leaks.h"
#include "render/render.h"

static int memcheck_pcs(void *user, uint32_t node, uint64_t *out, int max)
{
    return htri_render_stack_pcs_of(user, node, out, max);
}

static int memcheck_resolve(void *user, uint64_t pc, htri_frame *out, int max)
{
    return htri_render_resolve_pc(user, pc, out, max);
}

static void memcheck_print_stack(void *user, FILE *out, const char *prefix, uint32_t node)
{
    uint64_t pcs[HTRI_RENDER_MAX_FRAMES];
    int n = htri_render_stack_pcs_of(user, node, pcs, HTRI_RENDER_MAX_FRAMES);
    if (n > 0)
        htri_render_stack_pcs(out, prefix, htri_render_symtab(user), pcs, (size_t)n);
}

int htri_render_misuse(FILE *out, const htri_model *m, htri_render_syms *syms, const char *prefix,
                       htri_memcheck_counts *c)
{
    htri_errors_view v = { m->errors, m->n_errors, m->faults, m->n_faults, m->limits,
                           m->n_limits, memcheck_print_stack, syms, prefix };
    long contexts = htri_render_errors_body(out, &v);
    if (contexts < 0)
        return -ENOMEM;
    uint64_t errors = m->n_errors, ctx = (uint64_t)contexts;
    /* past HTRI_MAX_MISUSE records the model only counts: the agent's own tally is whole */
    if (m->has_error_summary && m->agent_errors > errors) {
        errors = m->agent_errors;
        ctx = m->agent_error_contexts > ctx ? m->agent_error_contexts : ctx;
    }
    if (c) {
        c->errors += errors;
        c->contexts += ctx;
    }
    return ferror(out) ? -EIO : 0;
}

int htri_render_leak_report(FILE *out, const htri_model *m, htri_render_syms *syms,
                            const htri_leaks_opts *lo, const char *prefix, htri_memcheck_counts *c)
{
    htri_leaks_opts o;
    if (lo)
        o = *lo;
    else
        htri_leaks_opts_default(&o);
    o.prefix = prefix;
    if (!m->has_leak_check && o.mode != HTRI_LEAKCHECK_NO)
        return 0;
    htri_leaks_stacks st = { memcheck_pcs, memcheck_resolve, syms, NULL };
    /* memcheck names its preload object in the first frame; ours, as the trace saw it */
    for (size_t i = 0; i < m->n_modules && !st.alloc_obj; i++)
        if (strstr(m->modules[i].path, "/libheaptrail-preload"))
            st.alloc_obj = m->modules[i].path;
    htri_leaks_result res;
    int rc = htri_render_leaks(out, m->leak_groups, m->has_leak_check ? m->n_leak_groups : 0, &st,
                               &o, &res);
    if (rc < 0)
        return rc;
    if (c) {
        /* memcheck: each loss record counted as an error is one error of its own context */
        c->errors += res.n_errors;
        c->contexts += res.n_errors;
        c->leak_errors += res.n_errors;
        c->suppressed += res.n_suppressed;
        c->suppressed_contexts += res.n_suppressed;
        c->leak_checked = m->has_leak_check;
    }
    return 0;
}

int htri_render_error_summary(FILE *out, const char *prefix, const htri_memcheck_counts *c)
{
    const char *pre = prefix ? prefix : "";
    /* memcheck (verbosity 1, no -s) prints both lines, errors or not; unlike its heap
     * numbers, these counts have no thousands separators */
    fprintf(out, "%sFor lists of detected and suppressed errors, rerun with: -s\n", pre);
    fprintf(out, "%sERROR SUMMARY: %llu errors from %llu contexts (suppressed: %llu from %llu)\n",
            pre, (unsigned long long)c->errors, (unsigned long long)c->contexts,
            (unsigned long long)c->suppressed, (unsigned long long)c->suppressed_contexts);
    return ferror(out) ? -EIO : 0;
}

int htri_render_memcheck(FILE *out, const htri_model *m, htri_render_syms *syms,
                         const htri_leaks_opts *lo, const char *prefix, htri_memcheck_counts *c)
{
    htri_memcheck_counts local;
    if (!c)
        c = &local;
    memset(c, 0, sizeof *c);
    int rc = htri_render_misuse(out, m, syms, prefix, c);
    if (rc == 0)
        rc = htri_render_leak_report(out, m, syms, lo, prefix, c);
    if (rc == 0)
        rc = htri_render_error_summary(out, prefix, c);
    return rc;
}
