/* Helpers shared by every renderer: number, size and duration formatting as people read
 * them, how a process ended, and the model's stacks turned into symbolized frames. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "render/render.h"

const char *htri_render_commas(char *buf, size_t cap, uint64_t v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t j = 0;
    for (int i = 0; i < n && j + 1 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0 && j + 2 < cap)
            buf[j++] = ',';
        buf[j++] = digits[i];
    }
    if (cap)
        buf[j < cap ? j : cap - 1] = 0;
    return buf;
}

const char *htri_render_bytes(char *buf, size_t cap, uint64_t bytes)
{
    static const char *units[] = { "KiB", "MiB", "GiB", "TiB" };
    if (bytes < 1024) {
        snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    double v = (double)bytes / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < HTRI_ARRAY_LEN(units)) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, "%.2f %s", v, units[u]);
    return buf;
}

const char *htri_render_duration(char *buf, size_t cap, uint64_t ns)
{
    if (ns < 1000)
        snprintf(buf, cap, "%llu ns", (unsigned long long)ns);
    else if (ns < 1000000)
        snprintf(buf, cap, "%.1f us", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, cap, "%.2f ms", (double)ns / 1e6);
    else
        snprintf(buf, cap, "%.3f s", (double)ns / 1e9);
    return buf;
}

const char *htri_render_signame(char *buf, size_t cap, int sig)
{
    const char *abbrev = sig > 0 ? sigabbrev_np(sig) : NULL;
    if (abbrev)
        snprintf(buf, cap, "SIG%s", abbrev);
    else
        snprintf(buf, cap, "SIG%d", sig);
    return buf;
}

const char *htri_render_end(char *buf, size_t cap, const htri_model *m)
{
    char sig[32];
    if (!m->has_end) {
        snprintf(buf, cap, "no end record: the process was killed, or the trace was cut");
        return buf;
    }
    switch (m->end_how) {
    case HTRI_END_EXIT:
        snprintf(buf, cap, "exit status %llu", (unsigned long long)m->end_status);
        break;
    case HTRI_END_SIGNAL:
        snprintf(buf, cap, "killed by signal %llu (%s)", (unsigned long long)m->end_status,
                 htri_render_signame(sig, sizeof sig, (int)(m->end_status & 0x7fffffff)));
        break;
    case HTRI_END_EXEC:
        snprintf(buf, cap, "replaced by exec");
        break;
    default:
        snprintf(buf, cap, "unknown");
        break;
    }
    return buf;
}

/* ---- symbolized stacks ---- */

struct htri_render_syms {
    const htri_model *m;
    htri_symtab *st;
    int *handles;           /* model module index -> symtab handle, or -1 */
    int no_symbols;
    int loaded;
};

htri_render_syms *htri_render_syms_open(const htri_model *m, int no_symbols)
{
    htri_render_syms *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->m = m;
    s->no_symbols = no_symbols;
    return s;
}

void htri_render_syms_close(htri_render_syms *s)
{
    if (!s)
        return;
    if (s->st)
        htri_symtab_close(s->st);
    free(s->handles);
    free(s);
}

/* Opening modules costs file reads, so it waits for the first stack actually printed. */
static void render_syms_load(htri_render_syms *s)
{
    const htri_model *m = s->m;
    s->loaded = 1;
    if (m->n_modules && !(s->handles = calloc(m->n_modules, sizeof *s->handles)))
        return;
    if (!s->no_symbols)
        s->st = htri_symtab_open();
    for (size_t i = 0; i < m->n_modules; i++) {
        const htri_module_info *mod = &m->modules[i];
        s->handles[i] = s->st ? htri_symtab_add_module(s->st, mod->path, mod->bias, mod->start,
                                                       mod->end, mod->build_id, mod->build_id_len)
                              : -1;
    }
}

static int render_is_agent(const char *path)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : path;
    return base && strncmp(base, "libheaptrail-preload", 20) == 0;
}

int htri_render_stack(htri_render_syms *s, uint32_t stack, htri_frame *out, int max)
{
    const htri_model *m = s->m;
    uint32_t nodes[HTRI_RENDER_MAX_FRAMES * 2];
    if (!s->loaded)
        render_syms_load(s);
    size_t depth = htri_model_stack(m, stack, nodes, HTRI_ARRAY_LEN(nodes));
    int n = 0;
    for (size_t i = 0; i < depth && n < max; i++) {
        const htri_node *nd = &m->nodes[nodes[i]];
        const htri_module_info *mod = nd->module >= 0 ? &m->modules[nd->module] : NULL;
        /* the agent's frames (its hooks innermost, its main() wrapper outermost) are not
         * the program's: memcheck hides its replacement functions the same way */
        if (mod && render_is_agent(mod->path))
            continue;
        int h = mod && s->handles ? s->handles[nd->module] : -1;
        if (h >= 0) {
            int k = htri_symtab_resolve(s->st, h, nd->pc, 1, out + n, max - n);
            if (k > 0) {
                n += k;
                continue;
            }
        }
        htri_frame *f = &out[n++];
        memset(f, 0, sizeof *f);
        f->pc = nd->pc;
        if (mod) {
            f->module = mod->path;
            f->module_offset = nd->pc - mod->bias;
        } else {
            f->module_offset = nd->pc;
        }
    }
    return n;
}

int htri_render_stack_pcs_of(htri_render_syms *s, uint32_t stack, uint64_t *out, int max)
{
    const htri_model *m = s->m;
    uint32_t nodes[HTR_MAX_DEPTH + 8];
    size_t depth = htri_model_stack(m, stack, nodes, HTRI_ARRAY_LEN(nodes));
    int n = 0;
    for (size_t i = 0; i < depth && n < max; i++) {
        const htri_node *nd = &m->nodes[nodes[i]];
        if (nd->module >= 0 && render_is_agent(m->modules[nd->module].path))
            continue;
        out[n++] = nd->pc;
    }
    return n;
}

htri_symtab *htri_render_symtab(htri_render_syms *s)
{
    if (!s->loaded)
        render_syms_load(s);
    return s->st;
}

int htri_render_resolve_pc(htri_render_syms *s, uint64_t pc, htri_frame *out, int max)
{
    htri_symtab *st = htri_render_symtab(s);
    return st ? htri_symtab_resolve_pc(st, pc, 1, out, max) : 0;
}
