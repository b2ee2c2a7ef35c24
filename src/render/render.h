/* Private: the renderers. Each reads an analysis model (never the trace) and writes one
 * output format to a stream the CLI owns: the valgrind-like run summary, the full text
 * report, JSON (docs/report-json.md). Stack frames are symbolized here, offline. */
#ifndef HTR_RENDER_RENDER_H
#define HTR_RENDER_RENDER_H
#include <stdint.h>
#include <stdio.h>

#include "analyze/analyze.h"
#include "symbols/symbols.h"

#define HTRI_RENDER_DEFAULT_TOP 10
#define HTRI_RENDER_MAX_FRAMES 24     /* frames printed per stack, inlined ones included */

typedef struct htri_render_opts {
    size_t top;                 /* entries per section; 0: HTRI_RENDER_DEFAULT_TOP */
    const char *trace_path;     /* shown in the report; may be NULL */
    int no_symbols;             /* 1: raw module+offset only (tests, speed) */
} htri_render_opts;

/* `heaptrail report`: every section as text. Returns 0 or -EIO (stream error), -ENOMEM. */
int htri_render_text(FILE *out, const htri_model *m, const htri_render_opts *o);
/* The same content as one JSON document. */
int htri_render_json(FILE *out, const htri_model *m, const htri_render_opts *o);
struct htri_leaks_opts;
/* `heaptrail run`'s valgrind-like summary of one trace, every line prefixed "==pid== ": the
 * misuse errors, the heap summary, memcheck's leak report with options `lo` (NULL:
 * memcheck's defaults; its prefix is set here) and memcheck's closing ERROR SUMMARY.
 * *n_errors (may be NULL) receives the errors memcheck would count (misuse records + leak
 * records counted as errors, suppressed ones not). A --record=none trace (no events) gives
 * the agent's END counters as the total heap usage and the leak check's live blocks as
 * in use at exit, and says why the peak lines are missing. */
int htri_render_summary(FILE *out, const htri_model *m, const char *trace_path,
                        const struct htri_leaks_opts *lo, uint64_t *n_errors);
/* The same with `ending` (may be NULL), lines printed after the misuse errors and before the
 * HEAP SUMMARY, where memcheck says how the process ended ("==pid== Process terminating
 * with default action of signal 11 (SIGSEGV)"). */
int htri_render_run_summary(FILE *out, const htri_model *m, const char *trace_path,
                            const struct htri_leaks_opts *lo, const char *ending, uint64_t *n_errors);

/* ---- shared by the renderers (render_util.c) ---- */

/* 1234567 -> "1,234,567", as memcheck prints counts. Returns buf. */
const char *htri_render_commas(char *buf, size_t cap, uint64_t v);
/* 1536 -> "1.50 KiB" (B, KiB, MiB, GiB, TiB). Returns buf. */
const char *htri_render_bytes(char *buf, size_t cap, uint64_t bytes);
/* ns -> "750 ns", "12.5 us", "3.20 ms", "1.234 s". Returns buf. */
const char *htri_render_duration(char *buf, size_t cap, uint64_t ns);
/* "exit status 3", "killed by signal 11 (SIGSEGV)", "exec", "unknown". */
const char *htri_render_end(char *buf, size_t cap, const htri_model *m);
/* Signal number -> "SIGSEGV" ("SIG42" if unknown). */
const char *htri_render_signame(char *buf, size_t cap, int sig);

/* Symbolized stacks of a model: a symtab loaded with the model's modules on first use. */
typedef struct htri_render_syms htri_render_syms;
htri_render_syms *htri_render_syms_open(const htri_model *m, int no_symbols);
void htri_render_syms_close(htri_render_syms *s);
/* The frames of stack `stack`, innermost first, with the agent's own frames dropped.
 * Returns how many were written (<= max). The strings live until htri_render_syms_close. */
int htri_render_stack(htri_render_syms *s, uint32_t stack, htri_frame *out, int max);
/* The return addresses of stack `stack`, innermost first, the agent's frames dropped. */
int htri_render_stack_pcs_of(htri_render_syms *s, uint32_t stack, uint64_t *out, int max);
/* The frames of one pc (inlined ones expanded); >= 1, or 0 without a symbol table. */
int htri_render_resolve_pc(htri_render_syms *s, uint64_t pc, htri_frame *out, int max);
/* The symbol table behind s (loaded on first use); NULL when symbols are off or failed. */
htri_symtab *htri_render_symtab(htri_render_syms *s);

/* The counts behind memcheck's closing "ERROR SUMMARY: N errors from M contexts
 * (suppressed: S from C)": misuse errors (one context per place, as the agent keys them)
 * plus the loss records counted as errors (--leak-check=full, kinds of
 * --errors-for-leak-kinds: each one error and one context, suppressed ones apart). */
typedef struct htri_memcheck_counts {
    uint64_t errors, contexts;
    uint64_t suppressed, suppressed_contexts;
    uint64_t leak_errors;       /* of errors: the loss records */
    int leak_checked;           /* a leak check of the trace was reported */
} htri_memcheck_counts;

/* memcheck's end-of-run reports from the agent's records, with leak options `lo` (NULL:
 * memcheck's defaults), every line starting with `prefix` (may be ""):
 *   htri_render_misuse: injected failures, limit hits and each misuse error context once
 *     (as memcheck prints errors during the run), no summary line;
 *   htri_render_leak_report: the loss records and LEAK SUMMARY of the last complete leak
 *     check ("All heap blocks were freed -- no leaks are possible" when it saw no block;
 *     memcheck's "For a detailed leak analysis" line with lo->mode NO); nothing when the
 *     trace has no leak check and the mode is not NO;
 *   htri_render_error_summary: memcheck's two closing lines ("For lists of detected and
 *     suppressed errors, rerun with: -s" and the ERROR SUMMARY) from *c;
 *   htri_render_memcheck: the three in that order, *c (may be NULL) zeroed first.
 * The first two add what they report to *c (may be NULL). Return 0, -ENOMEM or -EIO. */
int htri_render_misuse(FILE *out, const htri_model *m, htri_render_syms *syms, const char *prefix,
                       htri_memcheck_counts *c);
int htri_render_leak_report(FILE *out, const htri_model *m, htri_render_syms *syms,
                            const struct htri_leaks_opts *lo, const char *prefix,
                            htri_memcheck_counts *c);
int htri_render_error_summary(FILE *out, const char *prefix, const htri_memcheck_counts *c);
int htri_render_memcheck(FILE *out, const htri_model *m, htri_render_syms *syms,
                         const struct htri_leaks_opts *lo, const char *prefix,
                         htri_memcheck_counts *c);

#endif
