/* Private: the analysis model built from one trace by replaying it (src/analyze/), and read
 * by the renderers (src/render/). Stacks are trie node ids; a node's frames are found by
 * walking parents. Nothing here knows about symbols or output formats. */
#ifndef HTR_ANALYZE_ANALYZE_H
#define HTR_ANALYZE_ANALYZE_H
#include <stddef.h>
#include <stdint.h>

#include "trace/error_record.h"
#include "trace/leak_record.h"
#include "trace/reader.h"
#include "trace/totals_record.h"

#define HTRI_HIST_BUCKETS 65          /* [0] size 0; [k] sizes in [2^(k-1), 2^k) */
#define HTRI_DEFAULT_SHORT_LIVED_NS 1000000ull
#define HTRI_DEFAULT_TIMELINE_POINTS 60
#define HTRI_MAX_MESSAGES 256
#define HTRI_MAX_INFOS 256
#define HTRI_MAX_MISUSE 100000        /* misuse records kept (more are counted only) */

typedef struct htri_node {
    uint32_t parent;
    int32_t module;       /* index into htri_model.modules valid when the node appeared, or -1 */
    uint64_t pc;
    uint8_t defined;
} htri_node;

/* Per-stack numbers, indexed like the nodes (a stack id is its innermost node). */
typedef struct htri_site {
    uint64_t allocs, bytes;              /* ALLOC records made with this stack */
    uint64_t live_blocks, live_bytes;    /* still allocated at the end */
    uint64_t peak_blocks, peak_bytes;    /* live at the moment of the heap peak */
    uint64_t temporaries, short_lived;
} htri_site;

typedef struct htri_module_info {
    uint64_t id, bias, start, end, t_load, t_unload;
    char *path;
    uint8_t *build_id;
    size_t build_id_len;
    uint8_t unloaded;
} htri_module_info;

typedef struct htri_thread_info {
    uint32_t tid;
    char name[64];
    uint64_t t_first, t_end;
    uint64_t allocs, bytes;
    uint8_t ended;
    /* replay state for the "temporary" rule: the number of its latest ALLOC, if any */
    uint64_t last_alloc_no;
    uint8_t has_alloc;
} htri_thread_info;

typedef struct htri_message {
    uint64_t t;
    uint32_t level;
    char *text;
} htri_message;

typedef struct htri_info {
    char *key, *value;
    size_t value_len;     /* values such as cmdline hold NULs */
} htri_info;

typedef struct htri_point {
    uint64_t t;                 /* end of the bucket, ns since start */
    uint64_t heap_bytes;        /* highest heap in the bucket */
    uint64_t rss_bytes;         /* highest RSS sample in the bucket (0: none yet) */
} htri_point;

typedef struct htri_analyze_opts {
    uint64_t short_lived_ns;    /* 0: HTRI_DEFAULT_SHORT_LIVED_NS */
    size_t n_points;            /* 0: HTRI_DEFAULT_TIMELINE_POINTS */
    int skip_peak_sites;        /* 1: sites' peak_bytes/peak_blocks left 0 (summaries) */
    /* 1: only what the run summary prints. When the trace ends cleanly (uncut, a last END with
     * nothing dropped, the agent's HEAP_TOTALS right before it and exact), only META frames
     * are decoded: totals, live, peak and mmap figures come from END and HEAP_TOTALS, and
     * what only events give (sites, histogram, timeline heap, threads' counts, temporaries,
     * family counts) stays 0; m->from_totals is set. Otherwise the full replay runs. */
    int summary_only;
} htri_analyze_opts;

typedef struct htri_model {
    htri_file_header header;
    htri_reader_cut cut;
    uint64_t duration_ns;
    uint64_t short_lived_ns;

    /* memcheck-style totals: FORK_BASE counters included */
    uint64_t allocs, frees, bytes_allocated;
    uint8_t forked;
    uint64_t fork_parent_pid, fork_allocs, fork_frees, fork_bytes;
    uint64_t inherited_blocks, inherited_bytes;
    uint64_t failed_allocs, failed_bytes;
    uint64_t unknown_frees;     /* frees of blocks not known live (or not in the trace) */
    uint64_t unknown_nodes;     /* events naming a stack node never defined */
    uint64_t family_allocs[8], family_frees[8];

    uint64_t live_blocks, live_bytes;           /* in use at exit (end of trace) */
    uint64_t peak_bytes, peak_blocks, peak_t;   /* heap peak */
    uint64_t peak_event;                        /* ordinal of the event that reached it */
    uint64_t temporaries, short_lived;
    uint64_t hist_count[HTRI_HIST_BUCKETS], hist_bytes[HTRI_HIST_BUCKETS];

    uint64_t mmap_count, munmap_count, mmap_bytes, mmap_live_bytes, mmap_peak_bytes;
    uint64_t rss_samples, rss_peak, rss_peak_t, rss_last;

    uint8_t has_end;
    uint64_t end_t, end_how, end_status, end_peak_rss, end_dropped;
    uint64_t end_allocs, end_frees, end_bytes;
    /* the agent's HEAP_TOTALS written with the last END (has_totals), and whether the heap
     * figures above come from it and END rather than from replayed events */
    uint8_t has_totals, from_totals;
    htri_totals_rec totals;

    htri_node *nodes;
    htri_site *sites;
    size_t n_nodes;
    htri_module_info *modules;
    size_t n_modules;
    htri_thread_info *threads;
    size_t n_threads;
    htri_message *messages;
    size_t n_messages, n_messages_dropped;
    htri_info *infos;
    size_t n_infos;
    htri_point *timeline;
    size_t n_points;

    /* the agent's leak check: the last complete one (LEAK_CHECK ... LEAK_END) */
    uint8_t has_leak_check;
    size_t n_leak_checks, n_leak_checks_incomplete;
    htri_leak_check_rec leak_check;
    htri_leak_group_rec *leak_groups;
    size_t n_leak_groups;
    /* misuse records of the agent's guard layer, in trace order */
    htri_error_rec *errors;
    size_t n_errors;
    htri_fault_rec *faults;
    size_t n_faults;
    htri_limit_rec *limits;
    size_t n_limits;
    size_t n_misuse_dropped, n_bad_records;   /* beyond HTRI_MAX_MISUSE; bodies that did not decode */
    uint8_t has_error_summary;
    uint64_t agent_errors, agent_error_contexts;

    uint64_t n_events;
    size_t max_open_frames;
    uint64_t max_live_blocks;
} htri_model;

/* Replays the trace once and builds the model, who held memory at the heap peak included
 * (per-stack copy-on-write snapshots, analyze.c); with opts->summary_only, decodes only the
 * META frames when the agent's totals can stand for the events (see htri_analyze_opts).
 * Returns 0 and *out (free with htri_model_free), or
 * a negative error: reader errors (htri_reader_error() says where), HTRI_E_CORRUPT with
 * `err` filled for model-level damage, -ENOMEM. `err` may be NULL. */
int htri_analyze(htri_reader *r, const htri_analyze_opts *opts, htri_model **out,
                 char *err, size_t err_cap);
void htri_model_free(htri_model *m);

enum { HTRI_SORT_BYTES, HTRI_SORT_ALLOCS, HTRI_SORT_PEAK, HTRI_SORT_LEAKED,
       HTRI_SORT_TEMPORARY, HTRI_SORT_SHORT_LIVED };
/* Stack ids whose value for `key` is non-zero, largest first (ties: lower id first). Writes
 * up to max; returns how many such stacks exist in all. */
size_t htri_model_top(const htri_model *m, int key, uint32_t *out, size_t max);
uint64_t htri_model_site_value(const htri_model *m, uint32_t stack, int key);

/* The pcs of stack `stack`, innermost first; returns the depth (<= max written). */
size_t htri_model_stack(const htri_model *m, uint32_t stack, uint32_t *nodes_out, size_t max);

/* The value of INFO key `key`, or NULL. */
const htri_info *htri_model_info(const htri_model *m, const char *key);
const htri_thread_info *htri_model_thread(const htri_model *m, uint32_t tid);

/* Parses "500us", "2ms", "1s", "750ns", "1.5ms", or a bare number of milliseconds into ns.
 * Returns 0 or -EINVAL. */
int htri_parse_duration(const char *s, uint64_t *ns);

#endif
