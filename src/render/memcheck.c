/* The bridge from the analysis model to memcheck's end-of-run reports: hands the last
 * complete leak check to render/leaks.c and the misuse records to render/errors.c, with the
 * model's stack trie and symbolizer behind their stack callbacks. */
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

int htri_render_memcheck(FILE *out, const htri_model *m, htri_render_syms *syms,
                         const htri_leaks_opts *lo, const char *prefix, uint64_t *n_errors)
{
    uint64_t errors = 0;
    if (m->has_leak_check) {
        htri_leaks_stacks st = { memcheck_pcs, memcheck_resolve, syms, NULL };
        /* memcheck names its preload object in the first frame; ours, as the trace saw it */
        for (size_t i = 0; i < m->n_modules && !st.alloc_obj; i++)
            if (strstr(m->modules[i].path, "/libheaptrail-preload"))
                st.alloc_obj = m->modules[i].path;
        htri_leaks_opts o;
        htri_leaks_result res;
        if (lo)
            o = *lo;
        else
            htri_leaks_opts_default(&o);
        o.prefix = prefix;
        int rc = htri_render_leaks(out, m->leak_groups, m->n_leak_groups, &st, &o, &res);
        if (rc < 0)
            return rc;
        errors += res.n_errors;
    }
    if (m->n_errors || m->n_faults || m->n_limits) {
        htri_errors_view v = { m->errors, m->n_errors, m->faults, m->n_faults, m->limits,
                               m->n_limits, memcheck_print_stack, syms, prefix };
        long n = htri_render_errors(out, &v);
        if (n < 0)
            return -ENOMEM;
        errors += (uint64_t)n;
    }
    if (n_errors)
        *n_errors = errors;
    return ferror(out) ? -EIO : 0;
}
