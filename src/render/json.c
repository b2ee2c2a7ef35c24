/* The JSON renderer: the whole report as one document (schema: docs/report-json.md). Stacks
 * are written once, in a "stacks" object keyed by stack id, and referenced by id. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "render/errors.h"
#include "render/render.h"

typedef struct json_ctx {
    FILE *out;
    const htri_model *m;
    htri_render_syms *syms;
    size_t top;
    uint8_t *used;        /* stacks referenced so far, one flag per node */
} json_ctx;

static void json_str(FILE *out, const char *s, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", out);
        else if (ch == '\t')
            fputs("\\t", out);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(out, "\\u%04x", ch);
        else if (ch >= 0x80) {
            /* paths and names may hold bytes that are not UTF-8: keep the output valid JSON
             * by escaping every non-ASCII byte as a code point of its own (Latin-1 reading) */
            fprintf(out, "\\u%04x", ch);
        } else
            fputc(ch, out);
    }
    fputc('"', out);
}

static void json_cstr(FILE *out, const char *s)
{
    if (s)
        json_str(out, s, strlen(s));
    else
        fputs("null", out);
}

static void json_sites(json_ctx *c, const char *name, int key)
{
    const htri_model *m = c->m;
    uint32_t *ids = calloc(c->top ? c->top : 1, sizeof *ids);
    size_t total = ids ? htri_model_top(m, key, ids, c->top) : 0;
    size_t shown = total < c->top ? total : c->top;
    fprintf(c->out, ",\n  \"%s\": {\"total\": %zu, \"sites\": [", name, total);
    for (size_t i = 0; i < shown; i++) {
        const htri_site *s = &m->sites[ids[i]];
        c->used[ids[i]] = 1;
        fprintf(c->out, "%s\n    {\"stack\": %u, \"allocs\": %llu, \"bytes\": %llu, \"peak_bytes\": %llu, "
                "\"peak_blocks\": %llu, \"leaked_bytes\": %llu, \"leaked_blocks\": %llu, "
                "\"temporary\": %llu, \"short_lived\": %llu",
                i ? "," : "", ids[i], (unsigned long long)s->allocs, (unsigned long long)s->bytes,
                (unsigned long long)s->peak_bytes, (unsigned long long)s->peak_blocks,
                (unsigned long long)s->live_bytes, (unsigned long long)s->live_blocks,
                (unsigned long long)s->temporaries, (unsigned long long)s->short_lived);
        if (key == HTRI_SORT_PEAK)
            fprintf(c->out, ", \"share\": %.4f",
                    m->peak_bytes ? (double)s->peak_bytes / (double)m->peak_bytes : 0.0);
        fputc('}', c->out);
    }
    fprintf(c->out, "%s]}", shown ? "\n  " : "");
    free(ids);
}

/* The frames of one stack as a JSON array, innermost first (schema: docs/report-json.md). */
static void json_frames(json_ctx *c, uint32_t stack, const char *indent)
{
    htri_frame frames[HTRI_RENDER_MAX_FRAMES];
    int n = stack ? htri_render_stack(c->syms, stack, frames, HTRI_RENDER_MAX_FRAMES) : 0;
    fputc('[', c->out);
    for (int i = 0; i < n; i++) {
        const htri_frame *f = &frames[i];
        fprintf(c->out, "%s\n%s{\"pc\": \"0x%llx\", \"function\": ", i ? "," : "", indent,
                (unsigned long long)f->pc);
        json_cstr(c->out, f->function);
        fputs(", \"file\": ", c->out);
        json_cstr(c->out, f->file);
        fprintf(c->out, ", \"line\": %u, \"inlined\": %s, \"module\": ", f->line,
                f->inlined ? "true" : "false");
        json_cstr(c->out, f->module);
        fprintf(c->out, ", \"module_offset\": \"0x%llx\"}", (unsigned long long)f->module_offset);
    }
    if (n)
        fprintf(c->out, "\n%.*s", (int)(strlen(indent) >= 2 ? strlen(indent) - 2 : 0), indent);
    fputc(']', c->out);
}

static void json_stacks(json_ctx *c)
{
    const htri_model *m = c->m;
    int first = 1;
    fputs(",\n  \"stacks\": {", c->out);
    for (size_t id = 0; id < m->n_nodes; id++) {
        if (!c->used[id])
            continue;
        fprintf(c->out, "%s\n    \"%zu\": ", first ? "" : ",", id);
        first = 0;
        json_frames(c, (uint32_t)id, "      ");
    }
    fputs(first ? "}" : "\n  }", c->out);
}

static const char *json_alloc_fn(uint8_t fam)
{
    static const char *const names[HTRI_FAM_COUNT] = { "malloc", "calloc", "realloc", "memalign",
                                                       "new", "new[]" };
    return fam < HTRI_FAM_COUNT ? names[fam] : NULL;
}

static const char *json_free_fn(uint8_t ffam)
{
    static const char *const names[HTRI_FFAM_COUNT] = { "free", "realloc", "delete", "delete[]" };
    return ffam < HTRI_FFAM_COUNT ? names[ffam] : NULL;
}

/* Every misuse error of the trace (ERROR records, in trace order), stacks inline. Contexts
 * are numbered in order of first appearance, as the text report prints each once. */
static int json_errors(json_ctx *c)
{
    static const char *const kinds[] = { "unknown", "invalid_free", "mismatched_free", "overrun",
                                         "underrun", "write_after_free" };
    static const char *const classes[] = { "unknown", "stack", "data", "freed", "interior" };
    const htri_model *m = c->m;
    /* open addressing: context key (never 0) -> its number */
    size_t cap = 16, n_keys = 0;
    while (cap < 2 * m->n_errors + 2)
        cap <<= 1;
    uint64_t *keys = calloc(cap, sizeof *keys);
    size_t *nums = calloc(cap, sizeof *nums);
    if (!keys || !nums) {
        free(keys);
        free(nums);
        return -ENOMEM;
    }
    fputs(",\n  \"errors\": [", c->out);
    for (size_t i = 0; i < m->n_errors; i++) {
        const htri_error_rec *e = &m->errors[i];
        uint64_t key = htri_errors_context_key(e);
        size_t slot = key & (cap - 1);
        while (keys[slot] && keys[slot] != key)
            slot = (slot + 1) & (cap - 1);
        int first = !keys[slot];
        if (first) {
            keys[slot] = key;
            nums[slot] = n_keys++;
        }
        size_t ctx = nums[slot];
        fprintf(c->out, "%s\n    {\"kind\": \"%s\", \"context\": %zu, \"first_in_context\": %s, "
                "\"t_ns\": %llu, \"tid\": %u, \"address\": \"0x%llx\", \"address_class\": \"%s\", "
                "\"block\": {\"address\": \"0x%llx\", \"size\": %llu}, \"offset\": %lld, "
                "\"length\": %llu, \"alloc_function\": ",
                i ? "," : "", e->kind <= HTRI_ERR_KIND_MAX ? kinds[e->kind] : "unknown", ctx,
                first ? "true" : "false", (unsigned long long)e->t, e->tid,
                (unsigned long long)e->addr, e->addr_class <= HTRI_ADDR_INTERIOR ? classes[e->addr_class] : "unknown",
                (unsigned long long)e->block_addr, (unsigned long long)e->block_size,
                (long long)e->offset, (unsigned long long)e->length);
        json_cstr(c->out, json_alloc_fn(e->alloc_family));
        fputs(", \"free_function\": ", c->out);
        json_cstr(c->out, json_free_fn(e->free_family));
        fputs(", \"bytes_found\": \"", c->out);
        for (unsigned b = 0; b < e->n_bytes && b < HTRI_ERR_MAX_BYTES; b++)
            fprintf(c->out, "%02x", e->bytes[b]);
        fputs("\",\n     \"stacks\": {\"where\": ", c->out);
        json_frames(c, e->where_node, "        ");
        fputs(", \"alloc\": ", c->out);
        json_frames(c, e->alloc_node, "        ");
        fputs(", \"free\": ", c->out);
        json_frames(c, e->free_node, "        ");
        fputs("}}", c->out);
    }
    fputs(m->n_errors ? "\n  ]" : "]", c->out);
    free(keys);
    free(nums);
    return 0;
}

/* Injected allocation failures and allocations refused by --limit, stacks inline. */
static void json_faults_limits(json_ctx *c)
{
    static const char *const reasons[] = { "unknown", "fail_after", "fail_every", "fail_rate" };
    const htri_model *m = c->m;
    fputs(",\n  \"faults\": [", c->out);
    for (size_t i = 0; i < m->n_faults; i++) {
        const htri_fault_rec *f = &m->faults[i];
        fprintf(c->out, "%s\n    {\"reason\": \"%s\", \"t_ns\": %llu, \"tid\": %u, \"size\": %llu, "
                "\"function\": ", i ? "," : "", f->reason <= HTRI_FAULT_RATE ? reasons[f->reason] : "unknown",
                (unsigned long long)f->t, f->tid, (unsigned long long)f->size);
        json_cstr(c->out, json_alloc_fn(f->family));
        fputs(", \"stack\": ", c->out);
        json_frames(c, f->node, "      ");
        fputc('}', c->out);
    }
    fputs(m->n_faults ? "\n  ]" : "]", c->out);
    fputs(",\n  \"limits\": [", c->out);
    for (size_t i = 0; i < m->n_limits; i++) {
        const htri_limit_rec *l = &m->limits[i];
        fprintf(c->out, "%s\n    {\"t_ns\": %llu, \"tid\": %u, \"size\": %llu, \"live_bytes\": %llu, "
                "\"limit_bytes\": %llu, \"function\": ", i ? "," : "", (unsigned long long)l->t, l->tid,
                (unsigned long long)l->size, (unsigned long long)l->live_bytes,
                (unsigned long long)l->limit_bytes);
        json_cstr(c->out, json_alloc_fn(l->family));
        fputs(", \"stack\": ", c->out);
        json_frames(c, l->node, "      ");
        fputs(", \"holders\": [", c->out);
        for (uint32_t h = 0; h < l->n_holders && h < HTRI_LIMIT_MAX_HOLDERS; h++) {
            fprintf(c->out, "%s\n      {\"bytes\": %llu, \"blocks\": %llu, \"stack\": ", h ? "," : "",
                    (unsigned long long)l->holders[h].bytes, (unsigned long long)l->holders[h].blocks);
            json_frames(c, l->holders[h].node, "        ");
            fputc('}', c->out);
        }
        fputs(l->n_holders ? "\n    ]}" : "]}", c->out);
    }
    fputs(m->n_limits ? "\n  ]" : "]", c->out);
}

int htri_render_json(FILE *out, const htri_model *m, const htri_render_opts *o)
{
    static const char *hows[] = { "exit", "signal", "exec", "unknown" };
    static const char *levels[] = { "info", "warning", "error" };
    json_ctx c = { out, m, NULL, o && o->top ? o->top : HTRI_RENDER_DEFAULT_TOP, NULL };
    c.used = calloc(m->n_nodes ? m->n_nodes : 1, 1);
    c.syms = htri_render_syms_open(m, o ? o->no_symbols : 0);
    if (!c.used || !c.syms) {
        free(c.used);
        htri_render_syms_close(c.syms);
        return -ENOMEM;
    }
    const htri_info *exe = htri_model_info(m, "exe"), *cmd = htri_model_info(m, "cmdline");
    fputs("{\n  \"format\": \"heaptrail-report\",\n  \"version\": 1,\n  \"trace\": {\"path\": ", out);
    json_cstr(out, o ? o->trace_path : NULL);
    fprintf(out, ", \"pid\": %u, \"ppid\": %u, \"forked\": %s, \"record\": \"%s\", "
            "\"start_realtime_ns\": %llu, \"duration_ns\": %llu, \"exe\": ", m->header.pid,
            m->header.ppid, m->header.flags & HTRI_FILE_FORKED ? "true" : "false",
            m->header.flags & HTRI_FILE_LEAK_ONLY ? "none" : "full",
            (unsigned long long)m->header.start_realtime_ns, (unsigned long long)m->duration_ns);
    json_cstr(out, exe ? exe->value : NULL);
    fputs(", \"cmdline\": [", out);
    if (cmd) {
        /* NUL-separated arguments */
        size_t start = 0;
        int firstarg = 1;
        for (size_t i = 0; i <= cmd->value_len; i++) {
            if (i == cmd->value_len || cmd->value[i] == 0) {
                if (i > start || (i < cmd->value_len)) {
                    fputs(firstarg ? "" : ", ", out);
                    json_str(out, cmd->value + start, i - start);
                    firstarg = 0;
                }
                start = i + 1;
            }
        }
    }
    fputs("], \"cut\": ", out);
    if (m->cut.status) {
        fprintf(out, "{\"offset\": %llu, \"reason\": ", (unsigned long long)m->cut.offset);
        json_cstr(out, m->cut.why);
        fprintf(out, ", \"corrupt\": %s}", m->cut.status == HTRI_E_CORRUPT ? "true" : "false");
    } else {
        fputs("null", out);
    }
    fprintf(out, "},\n  \"summary\": {\"allocs\": %llu, \"frees\": %llu, \"bytes_allocated\": %llu, "
            "\"in_use_at_exit\": {\"bytes\": %llu, \"blocks\": %llu}, "
            "\"peak\": {\"bytes\": %llu, \"blocks\": %llu, \"t_ns\": %llu}, "
            "\"peak_rss_bytes\": %llu, \"temporary\": %llu, \"short_lived\": %llu, "
            "\"short_lived_threshold_ns\": %llu, \"failed_allocs\": %llu, \"unknown_frees\": %llu, "
            "\"events\": %llu}",
            (unsigned long long)m->allocs, (unsigned long long)m->frees,
            (unsigned long long)m->bytes_allocated, (unsigned long long)m->live_bytes,
            (unsigned long long)m->live_blocks, (unsigned long long)m->peak_bytes,
            (unsigned long long)m->peak_blocks, (unsigned long long)m->peak_t,
            (unsigned long long)(m->end_peak_rss > m->rss_peak ? m->end_peak_rss : m->rss_peak),
            (unsigned long long)m->temporaries, (unsigned long long)m->short_lived,
            (unsigned long long)m->short_lived_ns, (unsigned long long)m->failed_allocs,
            (unsigned long long)m->unknown_frees, (unsigned long long)m->n_events);
    fputs(",\n  \"fork\": ", out);
    if (m->forked)
        fprintf(out, "{\"parent_pid\": %llu, \"allocs\": %llu, \"frees\": %llu, \"bytes\": %llu, "
                "\"inherited_blocks\": %llu, \"inherited_bytes\": %llu}",
                (unsigned long long)m->fork_parent_pid, (unsigned long long)m->fork_allocs,
                (unsigned long long)m->fork_frees, (unsigned long long)m->fork_bytes,
                (unsigned long long)m->inherited_blocks, (unsigned long long)m->inherited_bytes);
    else
        fputs("null", out);
    fputs(",\n  \"end\": ", out);
    if (m->has_end)
        fprintf(out, "{\"how\": \"%s\", \"status\": %llu, \"t_ns\": %llu, \"peak_rss_bytes\": %llu, "
                "\"dropped_events\": %llu, \"agent_allocs\": %llu, \"agent_frees\": %llu, "
                "\"agent_bytes\": %llu}",
                hows[m->end_how < 4 ? m->end_how : 3], (unsigned long long)m->end_status,
                (unsigned long long)m->end_t, (unsigned long long)m->end_peak_rss,
                (unsigned long long)m->end_dropped, (unsigned long long)m->end_allocs,
                (unsigned long long)m->end_frees, (unsigned long long)m->end_bytes);
    else
        fputs("null", out);
    fprintf(out, ",\n  \"mmap\": {\"count\": %llu, \"munmaps\": %llu, \"bytes\": %llu, "
            "\"peak_bytes\": %llu, \"live_bytes\": %llu}",
            (unsigned long long)m->mmap_count, (unsigned long long)m->munmap_count,
            (unsigned long long)m->mmap_bytes, (unsigned long long)m->mmap_peak_bytes,
            (unsigned long long)m->mmap_live_bytes);
    fputs(",\n  \"leak_check\": ", out);
    if (m->has_leak_check) {
        static const char *kinds[] = { "definitely_lost", "indirectly_lost", "possibly_lost", "still_reachable" };
        uint64_t bytes[HTRI_LEAK_KINDS] = { 0 }, blocks[HTRI_LEAK_KINDS] = { 0 };
        fprintf(out, "{\"t_ns\": %llu, \"reason\": %u, \"checks\": %zu, \"incomplete_checks\": %zu, "
                "\"freeres_run\": %s, \"world_partial\": %s, \"blocks_scanned\": %llu, "
                "\"bytes_scanned\": %llu, \"groups\": [",
                (unsigned long long)m->leak_check.t, m->leak_check.reason, m->n_leak_checks,
                m->n_leak_checks_incomplete,
                m->leak_check.flags & HTRI_LEAK_FREERES_RUN ? "true" : "false",
                m->leak_check.flags & HTRI_LEAK_WORLD_PARTIAL ? "true" : "false",
                (unsigned long long)m->leak_check.n_blocks, (unsigned long long)m->leak_check.bytes_blocks);
        for (size_t i = 0; i < m->n_leak_groups; i++) {
            const htri_leak_group_rec *g = &m->leak_groups[i];
            c.used[g->node] = 1;
            bytes[g->kind] += g->bytes;
            blocks[g->kind] += g->n_blocks;
            fprintf(out, "%s\n    {\"kind\": \"%s\", \"stack\": %u, \"blocks\": %llu, \"bytes\": %llu, "
                    "\"indirect_bytes\": %llu}", i ? "," : "", kinds[g->kind], g->node,
                    (unsigned long long)g->n_blocks, (unsigned long long)g->bytes,
                    (unsigned long long)g->indirect_bytes);
        }
        fputs(m->n_leak_groups ? "\n  ], \"summary\": {" : "], \"summary\": {", out);
        for (int k = 0; k < HTRI_LEAK_KINDS; k++)
            fprintf(out, "%s\"%s\": {\"bytes\": %llu, \"blocks\": %llu}", k ? ", " : "", kinds[k],
                    (unsigned long long)bytes[k], (unsigned long long)blocks[k]);
        fputs("}}", out);
    } else {
        fputs("null", out);
    }
    fprintf(out, ",\n  \"misuse\": {\"errors\": %zu, \"faults\": %zu, \"limits\": %zu}",
            m->n_errors, m->n_faults, m->n_limits);
    if (json_errors(&c) < 0) {
        free(c.used);
        htri_render_syms_close(c.syms);
        return -ENOMEM;
    }
    json_faults_limits(&c);
    json_sites(&c, "peak_contributors", HTRI_SORT_PEAK);
    json_sites(&c, "top_by_bytes", HTRI_SORT_BYTES);
    json_sites(&c, "top_by_calls", HTRI_SORT_ALLOCS);
    json_sites(&c, "temporary", HTRI_SORT_TEMPORARY);
    json_sites(&c, "short_lived", HTRI_SORT_SHORT_LIVED);
    json_sites(&c, "leaks", HTRI_SORT_LEAKED);

    fputs(",\n  \"histogram\": [", out);
    int first = 1;
    for (size_t k = 0; k < HTRI_HIST_BUCKETS; k++) {
        if (!m->hist_count[k])
            continue;
        uint64_t lo = k ? 1ull << (k - 1) : 0, hi = k == 0 ? 0 : k == 64 ? UINT64_MAX : (1ull << k) - 1;
        fprintf(out, "%s\n    {\"min\": %llu, \"max\": %llu, \"count\": %llu, \"bytes\": %llu}",
                first ? "" : ",", (unsigned long long)lo, (unsigned long long)hi,
                (unsigned long long)m->hist_count[k], (unsigned long long)m->hist_bytes[k]);
        first = 0;
    }
    fputs(first ? "]" : "\n  ]", out);
    fputs(",\n  \"timeline\": [", out);
    for (size_t i = 0; i < m->n_points; i++)
        fprintf(out, "%s\n    {\"t_ns\": %llu, \"heap_bytes\": %llu, \"rss_bytes\": %llu}", i ? "," : "",
                (unsigned long long)m->timeline[i].t, (unsigned long long)m->timeline[i].heap_bytes,
                (unsigned long long)m->timeline[i].rss_bytes);
    fputs(m->n_points ? "\n  ]" : "]", out);
    fputs(",\n  \"threads\": [", out);
    for (size_t i = 0; i < m->n_threads; i++) {
        const htri_thread_info *t = &m->threads[i];
        fprintf(out, "%s\n    {\"tid\": %u, \"name\": ", i ? "," : "", t->tid);
        json_cstr(out, t->name);
        fprintf(out, ", \"allocs\": %llu, \"bytes\": %llu, \"ended\": %s}", (unsigned long long)t->allocs,
                (unsigned long long)t->bytes, t->ended ? "true" : "false");
    }
    fputs(m->n_threads ? "\n  ]" : "]", out);
    fputs(",\n  \"messages\": [", out);
    for (size_t i = 0; i < m->n_messages; i++) {
        fprintf(out, "%s\n    {\"t_ns\": %llu, \"level\": \"%s\", \"text\": ", i ? "," : "",
                (unsigned long long)m->messages[i].t, levels[m->messages[i].level]);
        json_cstr(out, m->messages[i].text);
        fputc('}', out);
    }
    fputs(m->n_messages ? "\n  ]" : "]", out);
    json_stacks(&c);
    fputs("\n}\n", out);
    free(c.used);
    htri_render_syms_close(c.syms);
    return ferror(out) ? -EIO : 0;
}
