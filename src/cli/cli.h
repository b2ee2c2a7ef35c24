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

typedef struct htri_run_opts {
    const char *out;            /* -o FILE; NULL: the agent's default name */
    const char *unwind;         /* dwarf | cached | fp; NULL: the agent's default */
    int depth;                  /* 0: default */
    int trace_children;
    const char *log_file;       /* summary destination; NULL: stderr */
    char **argv;                /* the program and its arguments, NULL-terminated */
    /* the agent's guard options (issue 4), checked here and handed on as ";name=value" */
    char guard[1024];
    int error_exitcode;         /* --error-exitcode: status when misuse errors were found */
    /* memcheck's leak-report options, applied when the summary is printed */
    int leak_mode;              /* HTRI_LEAKCHECK_*; default summary */
    unsigned show_kinds, error_kinds;
    int leak_resolution, num_callers, gen_suppressions;
    const char *supp_files[HTRI_CLI_MAX_SUPP];
    int n_supp;
} htri_run_opts;

typedef struct htri_report_opts {
    size_t top;
    int json;
    uint64_t short_lived_ns;
    const char *path;
} htri_report_opts;

int htri_cmd_run(const htri_run_opts *o);
int htri_cmd_report(const htri_report_opts *o);

/* Prints "heaptrail: error: <message>" to stderr (one line). Returns HTRI_CLI_FAIL so a
 * command can `return htri_cli_error(...)`. */
int htri_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "heaptrail: warning: <message>". */
void htri_cli_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Text for a library error code: strerror for -errno, words for HTRI_E_*. */
const char *htri_cli_strerror(int err);

#endif
