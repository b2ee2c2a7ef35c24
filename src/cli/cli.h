/* Private: the CLI's shared declarations: parsed options of each subcommand, the commands,
 * and the one place that prints diagnostics ("heaptrail: error: ..."). */
#ifndef HTR_CLI_CLI_H
#define HTR_CLI_CLI_H
#include <stddef.h>
#include <stdint.h>

/* Exit codes of the CLI itself (a traced program's own status passes through `run`). */
enum { HTRI_CLI_OK = 0, HTRI_CLI_FAIL = 1, HTRI_CLI_USAGE = 2,
       HTRI_CLI_NOEXEC = 126, HTRI_CLI_NOTFOUND = 127 };

#define HTRI_CLI_MAX_SUPP 16

/* memcheck's leak-report options, shared by `run` and `leaks` (defaults: memcheck's). */
typedef struct htri_cli_leak_opts {
    int mode;                   /* HTRI_LEAKCHECK_*; default summary */
    unsigned show_kinds, error_kinds;
    int resolution, num_callers, gen_suppressions;
    const char *supp_files[HTRI_CLI_MAX_SUPP];
    int n_supp;
    int error_exitcode;         /* --error-exitcode: status when errors were counted; 0: off */
} htri_cli_leak_opts;

typedef struct htri_run_opts {
    const char *out;            /* -o FILE; NULL: the agent's default name */
    const char *unwind;         /* dwarf | cached | fp; NULL: the agent's default */
    int depth;                  /* 0: default */
    int trace_children;
    const char *log_file;       /* summary destination; NULL: stderr */
    char **argv;                /* the program and its arguments, NULL-terminated */
    /* the agent's guard options (issue 4), checked here and handed on as ";name=value" */
    char guard[1024];
    htri_cli_leak_opts leak;    /* applied when the summary is printed */
    /* what the agent is told about its leak check and recording (-1: its default) */
    int freeres;                /* --run-libc-freeres=yes|no */
    int record_none;            /* --record=none */
    int leak_check_signal;      /* --leak-check-signal=SIG; 0: none */
    const char *heuristics;     /* --leak-check-heuristics=...; NULL: the agent's default */
} htri_run_opts;

typedef struct htri_report_opts {
    size_t top;
    int json;
    uint64_t short_lived_ns;
    const char *path;
} htri_report_opts;

typedef struct htri_leaks_cmd_opts {
    htri_cli_leak_opts leak;
    const char *path;
} htri_leaks_cmd_opts;

int htri_cmd_run(const htri_run_opts *o);
int htri_cmd_report(const htri_report_opts *o);
int htri_cmd_leaks(const htri_leaks_cmd_opts *o);

/* ---- shared by the commands (cli_common.c) ---- */

struct htri_model;
struct htri_supp_set;
struct htri_analyze_opts;
/* Opens and analyses a trace. A cut trace gives a warning (analysed up to the cut); damage,
 * an unreadable file or out-of-memory give the one error line. Returns HTRI_CLI_OK with
 * *out (htri_model_free), or HTRI_CLI_FAIL after printing. */
int htri_cli_load(const char *path, const struct htri_analyze_opts *ao, struct htri_model **out);
/* Loads --suppressions files into a new set (*out NULL when there are none). Returns
 * HTRI_CLI_OK, or HTRI_CLI_FAIL after printing which file and why. */
int htri_cli_load_supp(const htri_cli_leak_opts *lo, struct htri_supp_set **out);
/* The renderer's leak options from the command line's, with the loaded suppressions. */
struct htri_leaks_opts;
void htri_cli_leaks_opts(const htri_cli_leak_opts *lo, struct htri_supp_set *supp,
                         struct htri_leaks_opts *out);
/* Raises the soft RLIMIT_NOFILE to the hard limit: the symbolizer keeps one to three
 * descriptors open per module. Call after forking the traced program (which keeps the
 * limits it was given). Failure is harmless and silent. */
void htri_cli_raise_nofile(void);

/* Prints "heaptrail: error: <message>" to stderr (one line). Returns HTRI_CLI_FAIL so a
 * command can `return htri_cli_error(...)`. */
int htri_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "heaptrail: warning: <message>". */
void htri_cli_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Text for a library error code: strerror for -errno, words for HTRI_E_*. */
const char *htri_cli_strerror(int err);

#endif
