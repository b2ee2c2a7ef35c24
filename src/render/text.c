/* The text renderers: `heaptrail report`'s full analysis (summary, peak contributors, top
 * sites, temporaries, short-lived, leaks, histogram, charts) and `heaptrail run`'s
 * valgrind-like summary. Stacks print as memcheck does: "at 0xPC: function (file:line)". */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "render/leaks.h"
#include "render/render.h"

#define TEXT_CHART_ROWS 8

typedef struct text_ctx {
    FILE *out;
    const htri_model *m;
    htri_render_syms *syms;
    size_t top;
} text_ctx;

static void text_stack(text_ctx *c, uint32_t stack, const char *indent)
{
    htri_frame frames[HTRI_RENDER_MAX_FRAMES];
    char line[1024];
    int n = htri_render_stack(c->syms, stack, frames, HTRI_RENDER_MAX_FRAMES);
    if (n == 0) {
        fprintf(c->out, "%s(no stack recorded)\n", indent);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (frames[i].function)
            htri_frame_format(&frames[i], line, sizeof line);
        else   /* memcheck's wording for a pc without a symbol */
            snprintf(line, sizeof line, "??? (in %s)", frames[i].module ? frames[i].module : "?");
        fprintf(c->out, "%s%s 0x%llx: %s\n", indent, i == 0 ? "at" : "by",
                (unsigned long long)frames[i].pc, line);
    }
}

static double text_pct(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void text_header(text_ctx *c, const char *title)
{
    fprintf(c->out, "\n%s\n", title);
    for (size_t i = 0; title[i]; i++)
        fputc('-', c->out);
    fputc('\n', c->out);
}

static void text_summary(text_ctx *c, const htri_render_opts *o)
{
    const htri_model *m = c->m;
    char a[48], b[48], d[48], e[160];
    const htri_info *exe = htri_model_info(m, "exe");
    fprintf(c->out, "heaptrail report");
    if (o && o->trace_path)
        fprintf(c->out, " of %s", o->trace_path);
    fputc('\n', c->out);
    fprintf(c->out, "program: %s, pid %u%s, ran %s, %s\n", exe ? exe->value : "(unknown)",
            m->header.pid, m->forked ? " (forked child)" : "",
            htri_render_duration(a, sizeof a, m->duration_ns), htri_render_end(e, sizeof e, m));
    const htri_info *cmd = htri_model_info(m, "cmdline");
    if (cmd && cmd->value_len) {
        /* NUL-separated arguments, shown space-separated as valgrind's "Command:" line */
        fputs("command:", c->out);
        for (size_t i = 0; i < cmd->value_len;) {
            size_t n = strnlen(cmd->value + i, cmd->value_len - i);
            fprintf(c->out, " %.*s", (int)n, cmd->value + i);
            i += n + 1;
        }
        fputc('\n', c->out);
    }
    if (m->cut.status)
        fprintf(c->out, "warning: trace cut at byte %llu (%s): analysed up to there\n",
                (unsigned long long)m->cut.offset, m->cut.why);

    text_header(c, "SUMMARY");
    if (m->header.flags & HTRI_FILE_LEAK_ONLY) {
        /* no events: the agent's END counters and its leak check are all there is */
        fprintf(c->out, "    (a --record=none trace: no events were recorded, so the numbers below\n"
                        "     come from the agent's counters and leak check; no peak, sites or timeline)\n");
        if (m->has_leak_check)
            fprintf(c->out, "    in use at exit: %s bytes in %s blocks\n",
                    htri_render_commas(a, sizeof a, m->leak_check.bytes_blocks),
                    htri_render_commas(b, sizeof b, m->leak_check.n_blocks));
        if (m->has_end)
            fprintf(c->out, "  total heap usage: %s allocs, %s frees, %s bytes allocated\n",
                    htri_render_commas(a, sizeof a, m->end_allocs), htri_render_commas(b, sizeof b, m->end_frees),
                    htri_render_commas(d, sizeof d, m->end_bytes));
    } else {
        fprintf(c->out, "    in use at exit: %s bytes in %s blocks\n",
                htri_render_commas(a, sizeof a, m->live_bytes), htri_render_commas(b, sizeof b, m->live_blocks));
        fprintf(c->out, "  total heap usage: %s allocs, %s frees, %s bytes allocated\n",
                htri_render_commas(a, sizeof a, m->allocs), htri_render_commas(b, sizeof b, m->frees),
                htri_render_commas(d, sizeof d, m->bytes_allocated));
    }
    uint64_t rss = m->end_peak_rss > m->rss_peak ? m->end_peak_rss : m->rss_peak;
    if (m->header.flags & HTRI_FILE_LEAK_ONLY) {
        fprintf(c->out, "          peak RSS: %s\n", rss ? htri_render_bytes(a, sizeof a, rss) : "unknown");
        return;
    }
    fprintf(c->out, "         peak heap: %s bytes (%s) in %s blocks at %s\n",
            htri_render_commas(a, sizeof a, m->peak_bytes), htri_render_bytes(b, sizeof b, m->peak_bytes),
            htri_render_commas(d, sizeof d, m->peak_blocks), htri_render_duration(e, sizeof e, m->peak_t));
    fprintf(c->out, "          peak RSS: %s\n", rss ? htri_render_bytes(a, sizeof a, rss) : "unknown");
    fprintf(c->out, "    anonymous mmap: %s mappings, %s mapped in all, peak %s, %s still mapped\n",
            htri_render_commas(a, sizeof a, m->mmap_count), htri_render_bytes(b, sizeof b, m->mmap_bytes),
            htri_render_bytes(d, sizeof d, m->mmap_peak_bytes),
            htri_render_bytes(e, sizeof e, m->mmap_live_bytes));
    fprintf(c->out, "       temporaries: %s (%.1f%% of allocations)\n",
            htri_render_commas(a, sizeof a, m->temporaries), text_pct(m->temporaries, m->allocs));
    fprintf(c->out, "       short-lived: %s freed within %s (%.1f%%)\n",
            htri_render_commas(a, sizeof a, m->short_lived),
            htri_render_duration(b, sizeof b, m->short_lived_ns), text_pct(m->short_lived, m->allocs));
    if (m->failed_allocs)
        fprintf(c->out, "    failed allocs: %s (%s requested)\n",
                htri_render_commas(a, sizeof a, m->failed_allocs),
                htri_render_bytes(b, sizeof b, m->failed_bytes));
    if (m->forked)
        fprintf(c->out, "  inherited at fork: %s allocs, %s frees, %s bytes from pid %llu; %s blocks live\n",
                htri_render_commas(a, sizeof a, m->fork_allocs), htri_render_commas(b, sizeof b, m->fork_frees),
                htri_render_commas(d, sizeof d, m->fork_bytes), (unsigned long long)m->fork_parent_pid,
                htri_render_commas(e, sizeof e, m->inherited_blocks));
    if (m->has_end && m->end_dropped)
        fprintf(c->out, "warning: the agent dropped %llu events: numbers are incomplete\n",
                (unsigned long long)m->end_dropped);
    if (m->has_end && m->header.flags == 0 && !m->cut.status &&
        (m->end_allocs != m->allocs || m->end_frees != m->frees || m->end_bytes != m->bytes_allocated))
        fprintf(c->out, "note: the agent counted %llu allocs, %llu frees, %llu bytes\n",
                (unsigned long long)m->end_allocs, (unsigned long long)m->end_frees,
                (unsigned long long)m->end_bytes);
    if (m->unknown_frees)
        fprintf(c->out, "note: %s frees of blocks allocated before tracing began\n",
                htri_render_commas(a, sizeof a, m->unknown_frees));
}

/* One ranked section: each entry's number, then its stack. */
static void text_sites(text_ctx *c, const char *title, int key)
{
    const htri_model *m = c->m;
    uint32_t *ids = calloc(c->top ? c->top : 1, sizeof *ids);
    char a[48], b[48], d[48];
    if (!ids)
        return;
    size_t total = htri_model_top(m, key, ids, c->top);
    size_t shown = total < c->top ? total : c->top;
    text_header(c, title);
    if (total == 0)
        fprintf(c->out, "  (none)\n");
    for (size_t i = 0; i < shown; i++) {
        const htri_site *s = &m->sites[ids[i]];
        switch (key) {
        case HTRI_SORT_PEAK:
            fprintf(c->out, "%s bytes (%.1f%% of the peak) in %s blocks\n",
                    htri_render_commas(a, sizeof a, s->peak_bytes), text_pct(s->peak_bytes, m->peak_bytes),
                    htri_render_commas(b, sizeof b, s->peak_blocks));
            break;
        case HTRI_SORT_BYTES:
            fprintf(c->out, "%s bytes (%.1f%%) in %s allocations\n",
                    htri_render_commas(a, sizeof a, s->bytes), text_pct(s->bytes, m->bytes_allocated),
                    htri_render_commas(b, sizeof b, s->allocs));
            break;
        case HTRI_SORT_ALLOCS:
            fprintf(c->out, "%s allocations (%.1f%%), %s bytes\n",
                    htri_render_commas(a, sizeof a, s->allocs), text_pct(s->allocs, m->allocs),
                    htri_render_commas(b, sizeof b, s->bytes));
            break;
        case HTRI_SORT_TEMPORARY:
            fprintf(c->out, "%s temporary of %s allocations (%.1f%%)\n",
                    htri_render_commas(a, sizeof a, s->temporaries),
                    htri_render_commas(b, sizeof b, s->allocs), text_pct(s->temporaries, s->allocs));
            break;
        case HTRI_SORT_SHORT_LIVED:
            fprintf(c->out, "%s short-lived of %s allocations (%.1f%%)\n",
                    htri_render_commas(a, sizeof a, s->short_lived),
                    htri_render_commas(b, sizeof b, s->allocs), text_pct(s->short_lived, s->allocs));
            break;
        case HTRI_SORT_LEAKED:
            fprintf(c->out, "%s bytes in %s blocks still allocated at exit (%s allocated here in all)\n",
                    htri_render_commas(a, sizeof a, s->live_bytes), htri_render_commas(b, sizeof b, s->live_blocks),
                    htri_render_commas(d, sizeof d, s->bytes));
            break;
        }
        text_stack(c, ids[i], "   ");
        fputc('\n', c->out);
    }
    if (total > shown)
        fprintf(c->out, "... and %zu more (--top N shows more)\n", total - shown);
    free(ids);
}

static void text_histogram(text_ctx *c)
{
    const htri_model *m = c->m;
    uint64_t most = 0;
    char range[64], a[48], b[48];
    text_header(c, "SIZE HISTOGRAM (allocations by requested size)");
    for (size_t k = 0; k < HTRI_HIST_BUCKETS; k++)
        if (m->hist_count[k] > most)
            most = m->hist_count[k];
    if (!most) {
        fprintf(c->out, "  (no allocations)\n");
        return;
    }
    for (size_t k = 0; k < HTRI_HIST_BUCKETS; k++) {
        if (!m->hist_count[k])
            continue;
        if (k == 0)
            snprintf(range, sizeof range, "0");
        else if (k == 64)
            snprintf(range, sizeof range, ">= 2^63");
        else
            snprintf(range, sizeof range, "%llu..%llu", 1ull << (k - 1), (1ull << k) - 1);
        int bar = (int)(40.0 * (double)m->hist_count[k] / (double)most + 0.999);
        fprintf(c->out, "  %22s  %12s allocs %12s bytes  ", range,
                htri_render_commas(a, sizeof a, m->hist_count[k]), htri_render_commas(b, sizeof b, m->hist_bytes[k]));
        for (int i = 0; i < bar; i++)
            fputc('#', c->out);
        fputc('\n', c->out);
    }
}

/* A column chart of one series of the timeline, TEXT_CHART_ROWS high. */
static void text_chart(text_ctx *c, const char *title, int rss)
{
    const htri_model *m = c->m;
    uint64_t hi = 0;
    char a[48], b[48];
    for (size_t i = 0; i < m->n_points; i++) {
        uint64_t v = rss ? m->timeline[i].rss_bytes : m->timeline[i].heap_bytes;
        if (v > hi)
            hi = v;
    }
    fprintf(c->out, "\n%s, max %s\n", title, htri_render_bytes(a, sizeof a, hi));
    if (!hi) {
        fprintf(c->out, "  (no %s)\n", rss ? "RSS samples" : "heap");
        return;
    }
    for (int row = TEXT_CHART_ROWS; row >= 1; row--) {
        double level = (double)hi * (row - 0.5) / TEXT_CHART_ROWS;
        fprintf(c->out, "%10s |", row == TEXT_CHART_ROWS ? htri_render_bytes(a, sizeof a, hi) : "");
        for (size_t i = 0; i < m->n_points; i++) {
            uint64_t v = rss ? m->timeline[i].rss_bytes : m->timeline[i].heap_bytes;
            fputc((double)v >= level ? '#' : ' ', c->out);
        }
        fputc('\n', c->out);
    }
    fprintf(c->out, "%10s +", "0");
    for (size_t i = 0; i < m->n_points; i++)
        fputc('-', c->out);
    fprintf(c->out, "\n%12s0%*s\n", "", (int)m->n_points - 1,
            htri_render_duration(b, sizeof b, m->duration_ns));
}

static void text_threads(text_ctx *c)
{
    const htri_model *m = c->m;
    char a[48], b[48];
    text_header(c, "THREADS");
    for (size_t i = 0; i < m->n_threads; i++) {
        const htri_thread_info *t = &m->threads[i];
        fprintf(c->out, "  %-8u %-16s %12s allocs %14s bytes%s\n", t->tid, t->name[0] ? t->name : "-",
                htri_render_commas(a, sizeof a, t->allocs), htri_render_commas(b, sizeof b, t->bytes),
                t->ended ? "  (ended)" : "");
    }
    if (!m->n_threads)
        fprintf(c->out, "  (none)\n");
}

static void text_messages(text_ctx *c)
{
    static const char *levels[] = { "info", "warning", "error" };
    const htri_model *m = c->m;
    char a[48];
    if (!m->n_messages)
        return;
    text_header(c, "AGENT MESSAGES");
    for (size_t i = 0; i < m->n_messages; i++)
        fprintf(c->out, "  [%s] %s: %s\n", htri_render_duration(a, sizeof a, m->messages[i].t),
                levels[m->messages[i].level], m->messages[i].text);
    if (m->n_messages_dropped)
        fprintf(c->out, "  ... and %zu more\n", m->n_messages_dropped);
}

/* The agent's own findings, in memcheck's words: one section for the misuse errors, one for
 * the leak check (loss records at memcheck's --leak-check=full defaults), then memcheck's
 * ERROR SUMMARY over both. */
static int text_memcheck(text_ctx *c)
{
    const htri_model *m = c->m;
    htri_memcheck_counts counts;
    memset(&counts, 0, sizeof counts);
    text_header(c, "MISUSE ERRORS (memcheck's wording)");
    if (!m->n_errors && !m->n_faults && !m->n_limits)
        fprintf(c->out, "  (none recorded%s)\n",
                m->has_error_summary ? "" : "; the misuse checks may have been off");
    int rc = htri_render_misuse(c->out, m, c->syms, "", &counts);
    if (rc < 0)
        return rc;
    text_header(c, "LEAK CHECK (memcheck's loss records and LEAK SUMMARY)");
    if (!m->has_leak_check) {
        fprintf(c->out, "  (none: %s)\n", m->n_leak_checks_incomplete
                ? "the leak check was cut short" : "the process did not reach its exit, or ran with --leak-check=no");
    } else {
        htri_leaks_opts lo;
        htri_leaks_opts_default(&lo);
        lo.mode = HTRI_LEAKCHECK_FULL;
        rc = htri_render_leak_report(c->out, m, c->syms, &lo, "", &counts);
        if (rc < 0)
            return rc;
    }
    rc = htri_render_error_summary(c->out, "", &counts);
    if (rc == 0 && m->has_leak_check)
        fprintf(c->out, "(other leak options: heaptrail leaks --leak-check=full --show-leak-kinds=all ... FILE)\n");
    return rc;
}

int htri_render_text(FILE *out, const htri_model *m, const htri_render_opts *o)
{
    char a[48], t[48], title[128];
    text_ctx c = { out, m, NULL, o && o->top ? o->top : HTRI_RENDER_DEFAULT_TOP };
    c.syms = htri_render_syms_open(m, o ? o->no_symbols : 0);
    if (!c.syms)
        return -ENOMEM;
    text_summary(&c, o);
    snprintf(title, sizeof title, "PEAK CONTRIBUTORS (who held the %s bytes of the peak at %s)",
             htri_render_commas(a, sizeof a, m->peak_bytes), htri_render_duration(t, sizeof t, m->peak_t));
    text_sites(&c, title, HTRI_SORT_PEAK);
    text_sites(&c, "TOP SITES BY BYTES ALLOCATED", HTRI_SORT_BYTES);
    text_sites(&c, "TOP SITES BY NUMBER OF ALLOCATIONS", HTRI_SORT_ALLOCS);
    text_sites(&c, "TEMPORARY ALLOCATIONS (freed before the thread allocated again)", HTRI_SORT_TEMPORARY);
    snprintf(title, sizeof title, "SHORT-LIVED ALLOCATIONS (freed within %s)",
             htri_render_duration(a, sizeof a, m->short_lived_ns));
    text_sites(&c, title, HTRI_SORT_SHORT_LIVED);
    text_sites(&c, "STILL ALLOCATED AT EXIT", HTRI_SORT_LEAKED);
    int rc = text_memcheck(&c);
    text_histogram(&c);
    text_header(&c, "MEMORY OVER TIME");
    text_chart(&c, "heap", 0);
    text_chart(&c, "RSS", 1);
    text_threads(&c);
    text_messages(&c);
    htri_render_syms_close(c.syms);
    if (rc < 0)
        return rc;
    return ferror(out) ? -EIO : 0;
}

/* The HEAP SUMMARY of a --record=none trace: the agent kept tables and counters but wrote no
 * events, so the totals are its END counters, what was in use at exit is what its leak
 * check saw, and the peak and mmap lines (replayed from events) cannot be given. */
static void text_summary_leak_only(FILE *out, const htri_model *m, unsigned pid, uint64_t rss)
{
    char a[48], b[48], d[48];
    if (m->has_leak_check)
        fprintf(out, "==%u==     in use at exit: %s bytes in %s blocks\n", pid,
                htri_render_commas(a, sizeof a, m->leak_check.bytes_blocks),
                htri_render_commas(b, sizeof b, m->leak_check.n_blocks));
    else
        fprintf(out, "==%u==     in use at exit: unknown (no leak check in the trace)\n", pid);
    if (m->has_end)
        fprintf(out, "==%u==   total heap usage: %s allocs, %s frees, %s bytes allocated\n", pid,
                htri_render_commas(a, sizeof a, m->end_allocs), htri_render_commas(b, sizeof b, m->end_frees),
                htri_render_commas(d, sizeof d, m->end_bytes));
    else
        fprintf(out, "==%u==   total heap usage: unknown (no end record)\n", pid);
    fprintf(out, "==%u==           peak RSS: %s\n", pid, rss ? htri_render_bytes(a, sizeof a, rss) : "unknown");
    fprintf(out, "==%u== (no peak heap or anonymous mmap lines: --record=none records no events)\n", pid);
}

int htri_render_summary(FILE *out, const htri_model *m, const char *trace_path,
                        const htri_leaks_opts *lo, uint64_t *n_errors)
{
    return htri_render_run_summary(out, m, trace_path, lo, NULL, n_errors);
}

int htri_render_run_summary(FILE *out, const htri_model *m, const char *trace_path,
                            const htri_leaks_opts *lo, const char *ending, uint64_t *n_errors)
{
    char prefix[32];
    char a[48], b[48], d[48], e[160];
    unsigned pid = m->header.pid;
    uint64_t rss = m->end_peak_rss > m->rss_peak ? m->end_peak_rss : m->rss_peak;
    htri_memcheck_counts counts;
    memset(&counts, 0, sizeof counts);
    if (n_errors)
        *n_errors = 0;
    htri_render_syms *syms = htri_render_syms_open(m, 0);   /* modules load at the first stack */
    if (!syms)
        return -ENOMEM;
    snprintf(prefix, sizeof prefix, "==%u== ", pid);
    /* memcheck prints errors as they happen, so before its exit report */
    int rc = htri_render_misuse(out, m, syms, prefix, &counts);
    if (ending)
        fputs(ending, out);
    fprintf(out, "==%u== \n", pid);
    if (m->cut.status)
        fprintf(out, "==%u== warning: trace cut at byte %llu (%s)\n", pid,
                (unsigned long long)m->cut.offset, m->cut.why);
    fprintf(out, "==%u== HEAP SUMMARY:\n", pid);
    if (m->header.flags & HTRI_FILE_LEAK_ONLY) {
        text_summary_leak_only(out, m, pid, rss);
    } else {
        fprintf(out, "==%u==     in use at exit: %s bytes in %s blocks\n", pid,
                htri_render_commas(a, sizeof a, m->live_bytes), htri_render_commas(b, sizeof b, m->live_blocks));
        fprintf(out, "==%u==   total heap usage: %s allocs, %s frees, %s bytes allocated\n", pid,
                htri_render_commas(a, sizeof a, m->allocs), htri_render_commas(b, sizeof b, m->frees),
                htri_render_commas(d, sizeof d, m->bytes_allocated));
        fprintf(out, "==%u==          peak heap: %s bytes in %s blocks at %s\n", pid,
                htri_render_commas(a, sizeof a, m->peak_bytes), htri_render_commas(b, sizeof b, m->peak_blocks),
                htri_render_duration(d, sizeof d, m->peak_t));
        fprintf(out, "==%u==           peak RSS: %s\n", pid, rss ? htri_render_bytes(a, sizeof a, rss) : "unknown");
        fprintf(out, "==%u==     anonymous mmap: %s bytes in %s mappings (peak %s bytes mapped, %s at exit)\n",
                pid, htri_render_commas(a, sizeof a, m->mmap_bytes), htri_render_commas(b, sizeof b, m->mmap_count),
                htri_render_commas(d, sizeof d, m->mmap_peak_bytes),
                htri_render_commas(e, sizeof e, m->mmap_live_bytes));
    }
    if (m->has_end && m->end_dropped)
        fprintf(out, "==%u== warning: the agent dropped %llu events\n", pid,
                (unsigned long long)m->end_dropped);
    for (size_t i = 0; i < m->n_messages; i++)
        if (m->messages[i].level >= HTRI_MSG_WARNING)
            fprintf(out, "==%u== agent: %s\n", pid, m->messages[i].text);
    fprintf(out, "==%u== \n", pid);
    if (rc == 0)
        rc = htri_render_leak_report(out, m, syms, lo, prefix, &counts);
    if (rc == 0 && !m->has_leak_check && (!lo || lo->mode != HTRI_LEAKCHECK_NO))
        fprintf(out, "==%u== no leak check in the trace: the process did not reach its exit "
                "(or the trace was cut)\n==%u== \n", pid, pid);
    if (rc == 0)
        rc = htri_render_error_summary(out, prefix, &counts);
    htri_render_syms_close(syms);
    if (n_errors)
        *n_errors = counts.errors;
    fprintf(out, "==%u== trace: %s (%s)\n", pid, trace_path ? trace_path : "?",
            htri_render_end(e, sizeof e, m));
    fprintf(out, "==%u== for the full analysis: heaptrail report %s\n", pid, trace_path ? trace_path : "FILE");
    if (rc < 0)
        return rc;
    return ferror(out) ? -EIO : 0;
}
