/* The heaptrail command line: argument parsing only. Each subcommand lives in cmd_*.c;
 * usage errors are one line and exit status 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"
#include "base/config.h"
#include "cli/cli.h"
#include "heaptrail.h"
#include "render/render.h"

static const char main_usage[] =
    "usage: heaptrail [--help] [--version] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  run [OPTIONS] [--] PROG [ARGS]   run PROG under the heaptrail agent, write a trace,\n"
    "                                   print a valgrind-like heap summary\n"
    "  report [OPTIONS] FILE            analyse a trace: peak, top sites, temporaries, leaks\n"
    "  help COMMAND                     options of one command\n";

static const char run_usage[] =
    "usage: heaptrail run [OPTIONS] [--] PROG [ARGS]\n"
    "\n"
    "  -o FILE, --output=FILE   trace file (default: heaptrail.PROG.PID.htr in the cwd)\n"
    "  --unwind=dwarf|cached|fp stack capture: DWARF (exact), cached DWARF, frame pointers\n"
    "  --depth=N                frames kept per stack (1..256, default 64)\n"
    "  --trace-children         also trace programs started with exec\n"
    "  --log-file=FILE          write the summary to FILE instead of stderr\n"
    "\n"
    "Exits with PROG's status (128+N if a signal N killed it).\n";

static const char report_usage[] =
    "usage: heaptrail report [OPTIONS] FILE\n"
    "\n"
    "  --top N                  entries per section (default 10)\n"
    "  --json                   one JSON document (see docs/report-json.md)\n"
    "  --short-lived=DURATION   lifetime under which a block is short-lived\n"
    "                           (default 1ms; units ns, us, ms, s)\n";

static int main_usage_error(const char *cmd, const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    htri_cli_error("%s%s%s (see heaptrail help%s%s)", cmd ? cmd : "", cmd ? ": " : "", msg,
                   cmd ? " " : "", cmd ? cmd : "");
    return HTRI_CLI_USAGE;
}

/* "--name=value" or "--name value": returns the value and advances *i, or NULL if `arg` is
 * not this option. Sets *missing when the value is absent. */
static const char *main_value(char **argv, int argc, int *i, const char *name, int *missing)
{
    size_t n = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] != 0)
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static int main_parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int main_run(int argc, char **argv)
{
    htri_run_opts o = { 0 };
    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i], *v;
        int missing = 0;
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (arg[0] != '-' || arg[1] == 0)
            break;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(run_usage, stdout);
            return HTRI_CLI_OK;
        }
        if (strcmp(arg, "--trace-children") == 0) {
            o.trace_children = 1;
        } else if ((v = main_value(argv, argc, &i, "-o", &missing)) ||
                   (v = main_value(argv, argc, &i, "--output", &missing))) {
            if (!*v)
                return main_usage_error("run", "%s needs a file name", arg);
            o.out = v;
        } else if ((v = main_value(argv, argc, &i, "--unwind", &missing))) {
            if (strcmp(v, "dwarf") && strcmp(v, "cached") && strcmp(v, "fp"))
                return main_usage_error("run", "--unwind must be dwarf, cached or fp, not '%s'", v);
            o.unwind = v;
        } else if ((v = main_value(argv, argc, &i, "--depth", &missing))) {
            long d;
            if (main_parse_int(v, 1, HTR_MAX_DEPTH, &d) < 0)
                return main_usage_error("run", "--depth must be a number from 1 to 256, not '%s'", v);
            o.depth = (int)d;
        } else if ((v = main_value(argv, argc, &i, "--log-file", &missing))) {
            if (!*v)
                return main_usage_error("run", "%s needs a file name", arg);
            o.log_file = v;
        } else if (missing) {
            return main_usage_error("run", "option %s needs a value", arg);
        } else {
            return main_usage_error("run", "unknown option '%s'", arg);
        }
        if (missing)
            return main_usage_error("run", "option %s needs a value", arg);
    }
    if (i >= argc)
        return main_usage_error("run", "%s", "no program to run");
    o.argv = argv + i;
    return htri_cmd_run(&o);
}

static int main_report(int argc, char **argv)
{
    htri_report_opts o = { HTRI_RENDER_DEFAULT_TOP, 0, 0, NULL };
    int only_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v;
        int missing = 0;
        if (!only_files && strcmp(arg, "--") == 0) {
            only_files = 1;
            continue;
        }
        if (only_files || arg[0] != '-' || arg[1] == 0) {
            if (o.path)
                return main_usage_error("report", "one trace file at a time ('%s' is extra)", arg);
            o.path = arg;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(report_usage, stdout);
            return HTRI_CLI_OK;
        }
        if (strcmp(arg, "--json") == 0) {
            o.json = 1;
        } else if ((v = main_value(argv, argc, &i, "--top", &missing))) {
            long n;
            if (main_parse_int(v, 1, 1000000, &n) < 0)
                return main_usage_error("report", "--top must be a positive number, not '%s'", v);
            o.top = (size_t)n;
        } else if ((v = main_value(argv, argc, &i, "--short-lived", &missing))) {
            if (htri_parse_duration(v, &o.short_lived_ns) < 0 || o.short_lived_ns == 0)
                return main_usage_error("report", "--short-lived needs a duration such as 500us, 2ms or 1s, not '%s'", v);
        } else if (missing) {
            return main_usage_error("report", "option %s needs a value", arg);
        } else {
            return main_usage_error("report", "unknown option '%s'", arg);
        }
    }
    if (!o.path)
        return main_usage_error("report", "%s", "no trace file given");
    return htri_cmd_report(&o);
}

static int main_help(int argc, char **argv)
{
    if (argc < 2) {
        fputs(main_usage, stdout);
        return HTRI_CLI_OK;
    }
    if (strcmp(argv[1], "run") == 0)
        fputs(run_usage, stdout);
    else if (strcmp(argv[1], "report") == 0)
        fputs(report_usage, stdout);
    else if (strcmp(argv[1], "help") == 0)
        fputs("usage: heaptrail help COMMAND\n", stdout);
    else
        return main_usage_error(NULL, "unknown command '%s'", argv[1]);
    return HTRI_CLI_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(main_usage, stderr);
        return HTRI_CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return main_help(1, argv + 1);
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("heaptrail %s\n", HTR_VERSION_STRING);
        return HTRI_CLI_OK;
    }
    if (strcmp(cmd, "run") == 0)
        return main_run(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return main_report(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0)
        return main_help(argc - 1, argv + 1);
    if (cmd[0] == '-')
        return main_usage_error(NULL, "unknown option '%s'", cmd);
    return main_usage_error(NULL, "unknown command '%s'", cmd);
}
