/* Private: memcheck's leak report from one leak check's LEAK_GROUP records: loss records
 * (grouped by allocation stack at --leak-resolution, ordered and numbered as memcheck does),
 * suppressions, --gen-suppressions blocks, and the LEAK SUMMARY lines, word for word. */
#ifndef HTR_RENDER_LEAKS_H
#define HTR_RENDER_LEAKS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "analyze/suppress.h"
#include "symbols/symbols.h"
#include "trace/format.h"
#include "trace/leak_record.h"

/* Where the stacks come from (the CLI wires the model's trie and symbolizer here). */
typedef struct htri_leaks_stacks {
    /* Return addresses of stack `node`, innermost first, the agent's own frames dropped (the
     * stack as it starts in the program: its first pc is the call to malloc). Returns how
     * many were written (<= max), 0 for node 0. */
    int (*pcs)(void *user, uint32_t node, uint64_t *out, int max);
    /* The frames of one return address, inlined ones expanded, innermost first (as
     * htri_symtab_resolve_pc gives them). Returns how many (>= 1), or <= 0 if unknown.
     * NULL: frames are printed as raw addresses. */
    int (*resolve)(void *user, uint64_t pc, htri_frame *out, int max);
    void *user;
    /* The object shown for the allocation function that starts every memcheck stack
     * ("at 0x...: malloc (in OBJ)"); NULL: "libheaptrail-preload.so". */
    const char *alloc_obj;
} htri_leaks_stacks;

enum { HTRI_LEAKCHECK_NO = 0, HTRI_LEAKCHECK_SUMMARY = 1, HTRI_LEAKCHECK_FULL = 2 };
#define HTRI_LEAK_KINDS_DEFAULT ((1u << HTRI_LEAK_DEFINITE) | (1u << HTRI_LEAK_POSSIBLE))

typedef struct htri_leaks_opts {
    int mode;                /* --leak-check=no|summary|full: HTRI_LEAKCHECK_* */
    unsigned show_kinds;     /* --show-leak-kinds: bits 1 << HTRI_LEAK_* */
    unsigned error_kinds;    /* --errors-for-leak-kinds */
    int resolution;          /* --leak-resolution: frames compared, 2 low, 4 med, 0 high */
    int num_callers;         /* frames per stack, the allocation function included; 0: 12 */
    htri_supp_set *supp;     /* --suppressions (may be NULL) */
    int gen_suppressions;    /* --gen-suppressions=all: a block after each printed record */
    const char *prefix;      /* start of every report line, e.g. "==1234== "; NULL: "" */
} htri_leaks_opts;

/* memcheck's defaults: --leak-check=summary, show and errors definite,possible, high
 * resolution, 12 callers, no suppressions. */
void htri_leaks_opts_default(htri_leaks_opts *o);

typedef struct htri_leaks_result {
    uint64_t bytes[HTRI_LEAK_KINDS], blocks[HTRI_LEAK_KINDS];  /* not suppressed */
    uint64_t suppressed_bytes, suppressed_blocks;
    uint64_t heur_bytes[HTRI_HEUR_COUNT], heur_blocks[HTRI_HEUR_COUNT];
    uint64_t n_records;      /* loss records */
    uint64_t n_errors;       /* records counted as errors (each is one error, one context) */
    uint64_t n_suppressed;   /* suppressed records that would have counted as errors
                              * (memcheck's "suppressed: N from N") */
} htri_leaks_result;

/* Prints the leak part of memcheck's exit report for one check: the loss records shown by
 * the options (each followed by "prefix\n", and by a suppression block with
 * gen_suppressions), then "LEAK SUMMARY:" and its lines, memcheck's hints and an empty line;
 * or "All heap blocks were freed -- no leaks are possible" when the check saw no block; or,
 * with mode NO, memcheck's "For a detailed leak analysis..." line. Fills *res (may be NULL).
 * Returns 0, -ENOMEM or -EIO. */
int htri_render_leaks(FILE *out, const htri_leak_group_rec *groups, size_t n_groups,
                      const htri_leaks_stacks *stacks, const htri_leaks_opts *o,
                      htri_leaks_result *res);

/* Parsers for the options, memcheck's syntax. Return 0 or -EINVAL. */
int htri_leaks_parse_kinds(const char *s, unsigned *mask);      /* "definite,possible", "all", "none" */
int htri_leaks_parse_mode(const char *s, int *mode);            /* "no", "summary", "full" (and "yes") */
int htri_leaks_parse_resolution(const char *s, int *frames);    /* "low", "med", "high" */

#endif
