/* Private: the text renderer of misuse records (ERROR, FAULT, LIMIT), worded like valgrind's
 * memcheck so its users read them at a glance, ending in memcheck's ERROR SUMMARY line. */
#ifndef HTR_RENDER_ERRORS_H
#define HTR_RENDER_ERRORS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "trace/error_record.h"
#include "symbols/symbols.h"

/* Prints the stack of trie node `node` as memcheck does, one line per frame, each line
 * starting with `prefix`: "   at 0x4848899: malloc (vg_replace_malloc.c:381)" then
 * "   by ...". node 0 is the empty stack (print nothing). */
typedef void (*htri_errors_stack_fn)(void *user, FILE *out, const char *prefix, uint32_t node);

typedef struct htri_errors_view {
    const htri_error_rec *errors;   /* in trace order */
    size_t n_errors;
    const htri_fault_rec *faults;
    size_t n_faults;
    const htri_limit_rec *limits;
    size_t n_limits;
    htri_errors_stack_fn print_stack;
    void *user;
    const char *prefix;             /* start of every line, e.g. "==1234== "; NULL = "" */
} htri_errors_view;

/* The context an error belongs to (kind, where_node, and alloc_node when where_node is 0):
 * the same key the agent counts with, so both ERROR SUMMARY lines agree. Never 0. */
uint64_t htri_errors_context_key(const htri_error_rec *e);
/* Counts contexts among errors[0..n). Uses malloc; returns -ENOMEM on failure. */
long htri_errors_count_contexts(const htri_error_rec *errors, size_t n);

/* Prints injected failures and limit hits, then each error context once (its first error,
 * as memcheck prints it), then "ERROR SUMMARY: N errors from M contexts (suppressed: 0
 * from 0)". Returns N (>= 0) or -ENOMEM. */
long htri_render_errors(FILE *out, const htri_errors_view *v);
/* The same without the ERROR SUMMARY line (the CLI prints one for misuse and leak errors
 * together). Returns the number of contexts (>= 0) or -ENOMEM. */
long htri_render_errors_body(FILE *out, const htri_errors_view *v);

/* One error as memcheck-style lines (no summary), for the CLI and the tests. */
void htri_render_error(FILE *out, const htri_errors_view *v, const htri_error_rec *e);

/* A ready print_stack for the CLI: `user` is an htri_render_syms * of the model the error
 * records came from (render.h); frames come from htri_render_stack, the agent's dropped. */
void htri_errors_print_syms_stack(void *user, FILE *out, const char *prefix, uint32_t node);

/* A helper for print_stack: prints pcs[0..n) (return addresses, innermost first) through the
 * symbolizer, inlined frames expanded, as "   at 0xADDR: function (file:line)" / "   by ...". */
void htri_render_stack_pcs(FILE *out, const char *prefix, htri_symtab *st, const uint64_t *pcs,
                           size_t n);

#endif
