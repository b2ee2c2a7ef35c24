/* The heaptrail command line: argument parsing only. Each subcommand lives in cmd_*.c;
 * usage errors are one line and exit status 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"
#include "base/common.h"
#include "base/config.h"
#include "cli/cli.h"
#include "heaptrail.h"
#include "render/leaks.h"
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
    "memcheck's leak report (from the agent's leak check at exit):\n"
    "  --leak-check=no|summary|full          default summary\n"
    "  --show-leak-kinds=KINDS, --errors-for-leak-kinds=KINDS\n"
    "                           definite,indirect,possible,reachable | all | none\n"
    "  --leak-resolution=low|med|high        --num-callers=N (default 12)\n"
    "  --suppressions=FILE      memcheck or LeakSanitizer suppressions (repeatable)\n"
    "  --gen-suppressions=no|all\n"
    "\n"
    "misuse checks (the agent's guard): --redzone=N --quarantine=SIZE --fill-alloc[=BYTE]\n"
    "  --fail-after=N --fail-every=N --fail-rate=P --seed=N --fail-in=FUNCTION\n"
    "  --limit=SIZE --limit-action=fail|abort --abort-on-error --error-exitcode=N\n"
    "  (SIZE takes K, M, G)\n"
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

/* "123", "64K", "10M", "1G" (powers of 1024). */
static int main_parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k') shift = 10, end++;
    else if (*end == 'M' || *end == 'm') shift = 20, end++;
    else if (*end == 'G' || *end == 'g') shift = 30, end++;
    if (*end || (shift && v > (~0ull >> shift)))
        return -1;
    *out = v << shift;
    return 0;
}

/* Checks one guard option's value; returns NULL if fine, else what it should be. */
static const char *main_check_guard(const char *name, const char *v)
{
    uint64_t n;
    long l;
    char *end;
    if (!strcmp(name, "redzone"))
        return main_parse_int(v, 0, 4096, &l) < 0 ? "a number of bytes from 0 to 4096" : NULL;
    if (!strcmp(name, "quarantine") || !strcmp(name, "limit"))
        return main_parse_size(v, &n) < 0 ? "a size such as 512K, 64M or 1G" : NULL;
    if (!strcmp(name, "fill-alloc")) {
        if (!v)
            return NULL;
        unsigned long b = strtoul(v, &end, 0);
        return !*v || *end || b > 255 ? "a byte value such as 0xA5" : NULL;
    }
    if (!strcmp(name, "fail-after") || !strcmp(name, "fail-every") || !strcmp(name, "seed"))
        return main_parse_size(v, &n) < 0 ? "a number" : NULL;
    if (!strcmp(name, "fail-rate")) {
        double d = v && *v ? strtod(v, &end) : -1;
        return !v || !*v || *end || !(d >= 0 && d <= 1) ? "a probability from 0 to 1" : NULL;
    }
    if (!strcmp(name, "fail-in"))
        return !v || !*v || strchr(v, ';') || strlen(v) > 120 ? "a function name" : NULL;
    if (!strcmp(name, "limit-action"))
        return !v || (strcmp(v, "fail") && strcmp(v, "abort")) ? "fail or abort" : NULL;
    if (!strcmp(name, "error-exitcode"))
        return main_parse_int(v, 0, 255, &l) < 0 ? "an exit status from 0 to 255" : NULL;
    return "";   /* abort-on-error: takes no value */
}

static const char *const main_guard_opts[] = {
    "redzone", "quarantine", "fill-alloc", "fail-after", "fail-every", "fail-rate", "seed",
    "fail-in", "limit", "limit-action", "abort-on-error", "error-exitcode",
};

/* --NAME[=VALUE] for the agent's guard: checked, then appended to o->guard. Returns 1 if
 * `arg` was one (0 not one, -1 after printing a usage error). */
static int main_guard_option(htri_run_opts *o, const char *arg)
{
    if (strncmp(arg, "--", 2) != 0)
        return 0;
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    for (size_t k = 0; k < HTRI_ARRAY_LEN(main_guard_opts); k++) {
        if (strlen(main_guard_opts[k]) != n || strncmp(name, main_guard_opts[k], n) != 0)
            continue;
        const char *v = eq ? eq + 1 : NULL, *want;
        if (!strcmp(main_guard_opts[k], "abort-on-error")) {
            if (v) {
                main_usage_error("run", "--abort-on-error takes no value ('%s')", arg);
                return -1;
            }
        } else if ((want = main_check_guard(main_guard_opts[k], v)) != NULL) {
            char msg[160];
            snprintf(msg, sizeof msg, "--%s needs %s, not '%%s'", main_guard_opts[k], want);
            main_usage_error("run", msg, v ? v : "");
            return -1;
        }
        if (!strcmp(main_guard_opts[k], "error-exitcode"))
            o->error_exitcode = atoi(v);
        size_t used = strlen(o->guard);
        int w = snprintf(o->guard + used, sizeof o->guard - used, ";%s%s%s", main_guard_opts[k],
                         v ? "=" : "", v ? v : "");
        if (w < 0 || (size_t)w >= sizeof o->guard - used) {
            main_usage_error("run", "%s", "too many guard options");
            return -1;
        }
        return 1;
    }
    return 0;
}

static int main_run(int argc, char **argv)
{
    htri_run_opts o = { 0 };
    htri_leaks_opts lo;
    htri_leaks_opts_default(&lo);
    o.leak_mode = lo.mode;
    o.show_kinds = lo.show_kinds;
    o.error_kinds = lo.error_kinds;
    o.leak_resolution = lo.resolution;
    o.num_callers = lo.num_callers;
    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i], *v;
        int missing = 0, rc;
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
        } else if ((v = main_value(argv, argc, &i, "--leak-check", &missing))) {
            if (htri_leaks_parse_mode(v, &o.leak_mode) < 0)
                return main_usage_error("run", "--leak-check must be no, summary or full, not '%s'", v);
        } else if ((v = main_value(argv, argc, &i, "--show-leak-kinds", &missing))) {
            if (htri_leaks_parse_kinds(v, &o.show_kinds) < 0)
                return main_usage_error("run", "--show-leak-kinds: bad kind list '%s'", v);
        } else if ((v = main_value(argv, argc, &i, "--errors-for-leak-kinds", &missing))) {
            if (htri_leaks_parse_kinds(v, &o.error_kinds) < 0)
                return main_usage_error("run", "--errors-for-leak-kinds: bad kind list '%s'", v);
        } else if ((v = main_value(argv, argc, &i, "--leak-resolution", &missing))) {
            if (htri_leaks_parse_resolution(v, &o.leak_resolution) < 0)
                return main_usage_error("run", "--leak-resolution must be low, med or high, not '%s'", v);
        } else if ((v = main_value(argv, argc, &i, "--num-callers", &missing))) {
            long n;
            if (main_parse_int(v, 1, 256, &n) < 0)
                return main_usage_error("run", "--num-callers must be a number from 1 to 256, not '%s'", v);
            o.num_callers = (int)n;
        } else if ((v = main_value(argv, argc, &i, "--suppressions", &missing))) {
            if (!*v || o.n_supp >= HTRI_CLI_MAX_SUPP)
                return main_usage_error("run", "--suppressions: '%s' (a file name, at most 16 files)", v);
            o.supp_files[o.n_supp++] = v;
        } else if ((v = main_value(argv, argc, &i, "--gen-suppressions", &missing))) {
            if (strcmp(v, "no") && strcmp(v, "all"))
                return main_usage_error("run", "--gen-suppressions must be no or all, not '%s'", v);
            o.gen_suppressions = strcmp(v, "all") == 0;
        } else if (!missing && (rc = main_guard_option(&o, arg)) != 0) {
            if (rc < 0)
                return HTRI_CLI_USAGE;
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
