/* The heaptrail command line: argument parsing only. Each subcommand lives in cmd_*.c;
 * usage errors are one line and exit status 2. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    "  leaks [OPTIONS] FILE             memcheck's leak report of a trace again, with other\n"
    "                                   leak options\n"
    "  help COMMAND                     options of one command\n";

/* memcheck's leak-report options, in `run` and `leaks` alike */
#define MAIN_LEAK_OPTIONS \
    "  --show-leak-kinds=KINDS, --errors-for-leak-kinds=KINDS\n" \
    "                           definite,indirect,possible,reachable | all | none\n" \
    "                           (default definite,possible; also --show-reachable=yes|no,\n" \
    "                           --show-possibly-lost=yes|no)\n" \
    "  --leak-resolution=low|med|high        --num-callers=N (default 12)\n" \
    "  --suppressions=FILE      memcheck or LeakSanitizer suppressions (repeatable)\n" \
    "  --gen-suppressions=no|all\n" \
    "  --error-exitcode=N       exit with N if errors were counted: misuse errors, and\n" \
    "                           with --leak-check=full loss records of the kinds of\n" \
    "                           --errors-for-leak-kinds\n"

static const char run_usage[] =
    "usage: heaptrail run [OPTIONS] [--] PROG [ARGS]\n"
    "\n"
    "  -o FILE, --output=FILE   trace file (default: heaptrail.PROG.PID.htr in the cwd)\n"
    "  --unwind=cached|dwarf|fp stack capture: cached .eh_frame rules (default), DWARF\n"
    "                           unwinding alone (libunwind), frame pointers\n"
    "  --depth=N                frames kept per stack (1..256, default 64)\n"
    "  --trace-children         also trace programs started with exec\n"
    "  --log-file=FILE          write the summary to FILE instead of stderr\n"
    "  --record=full|none       none: record no events, only the leak check and errors\n"
    "                           (a leak-check-only run: no peak, sites or timeline)\n"
    "\n"
    "memcheck's leak check (the agent scans the heap at exit):\n"
    "  --leak-check=no|summary|full          default summary; no: no scan at exit\n"
    MAIN_LEAK_OPTIONS
    "  --leak-check-heuristics=all|none|LIST stdstring,length64,newarray,\n"
    "                           multipleinheritance (default all)\n"
    "  --run-libc-freeres=yes|no  free glibc's and libstdc++'s own memory before the\n"
    "                           scan (default yes)\n"
    "  --leak-check-signal=SIG  also check for leaks each time SIG (USR1, SIGUSR2, 10...)\n"
    "                           arrives; the summary reports the last check\n"
    "\n"
    "misuse checks (the agent's guard): --redzone=N --quarantine=SIZE --fill-alloc[=BYTE]\n"
    "  --fail-after=N --fail-every=N --fail-rate=P --seed=N --fail-in=FUNCTION\n"
    "  --limit=SIZE --limit-action=fail|abort --abort-on-error\n"
    "  (SIZE takes K, M, G)\n"
    "\n"
    "Exits with PROG's status (128+N if a signal N killed it), or --error-exitcode's.\n";

static const char report_usage[] =
    "usage: heaptrail report [OPTIONS] FILE\n"
    "\n"
    "  --top N                  entries per section (default 10)\n"
    "  --json                   one JSON document (see docs/report-json.md)\n"
    "  --short-lived=DURATION   lifetime under which a block is short-lived\n"
    "                           (default 1ms; units ns, us, ms, s)\n";

static const char leaks_usage[] =
    "usage: heaptrail leaks [OPTIONS] FILE\n"
    "\n"
    "Prints memcheck's loss records and LEAK SUMMARY from the last leak check in a trace\n"
    "(as `heaptrail run` did), then memcheck's ERROR SUMMARY, on stdout.\n"
    "\n"
    "  --leak-check=summary|full             default summary\n"
    MAIN_LEAK_OPTIONS
    "\n"
    "Exits with 0, or with --error-exitcode's N when errors were counted.\n";

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
            o->leak.error_exitcode = atoi(v);
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

static void main_leak_defaults(htri_cli_leak_opts *l)
{
    htri_leaks_opts lo;
    htri_leaks_opts_default(&lo);
    memset(l, 0, sizeof *l);
    l->mode = lo.mode;
    l->show_kinds = lo.show_kinds;
    l->error_kinds = lo.error_kinds;
    l->resolution = lo.resolution;
    l->num_callers = lo.num_callers;
}

/* One of memcheck's leak-report options at argv[*i] for command `cmd`. Returns 1 if it was
 * one (consumed), 0 if not, or -1 after printing a usage error (also for a missing value). */
static int main_leak_option(const char *cmd, char **argv, int argc, int *i, htri_cli_leak_opts *l)
{
    const char *arg = argv[*i], *v, *bad = NULL;
    int missing = 0, is_leaks = strcmp(cmd, "leaks") == 0;
    long n;
    if ((v = main_value(argv, argc, i, "--leak-check", &missing))) {
        if (htri_leaks_parse_mode(v, &l->mode) < 0 || (is_leaks && l->mode == HTRI_LEAKCHECK_NO))
            bad = is_leaks ? "--leak-check must be summary or full, not '%s'"
                           : "--leak-check must be no, summary or full, not '%s'";
    } else if ((v = main_value(argv, argc, i, "--show-leak-kinds", &missing))) {
        if (htri_leaks_parse_kinds(v, &l->show_kinds) < 0)
            bad = "--show-leak-kinds: bad kind list '%s'";
    } else if ((v = main_value(argv, argc, i, "--errors-for-leak-kinds", &missing))) {
        if (htri_leaks_parse_kinds(v, &l->error_kinds) < 0)
            bad = "--errors-for-leak-kinds: bad kind list '%s'";
    } else if ((v = main_value(argv, argc, i, "--show-reachable", &missing))) {
        /* memcheck's older spellings of --show-leak-kinds */
        if (strcmp(v, "yes") && strcmp(v, "no"))
            bad = "--show-reachable must be yes or no, not '%s'";
        else
            l->show_kinds = strcmp(v, "yes") == 0 ? 0xfu : HTRI_LEAK_KINDS_DEFAULT;
    } else if ((v = main_value(argv, argc, i, "--show-possibly-lost", &missing))) {
        if (strcmp(v, "yes") && strcmp(v, "no"))
            bad = "--show-possibly-lost must be yes or no, not '%s'";
        else if (strcmp(v, "yes") == 0)
            l->show_kinds |= 1u << HTRI_LEAK_POSSIBLE;
        else
            l->show_kinds &= ~(1u << HTRI_LEAK_POSSIBLE);
    } else if ((v = main_value(argv, argc, i, "--leak-resolution", &missing))) {
        if (htri_leaks_parse_resolution(v, &l->resolution) < 0)
            bad = "--leak-resolution must be low, med or high, not '%s'";
    } else if ((v = main_value(argv, argc, i, "--num-callers", &missing))) {
        if (main_parse_int(v, 1, 256, &n) < 0)
            bad = "--num-callers must be a number from 1 to 256, not '%s'";
        else
            l->num_callers = (int)n;
    } else if ((v = main_value(argv, argc, i, "--suppressions", &missing))) {
        if (!*v || l->n_supp >= HTRI_CLI_MAX_SUPP)
            bad = "--suppressions: '%s' (a file name, at most 16 files)";
        else
            l->supp_files[l->n_supp++] = v;
    } else if ((v = main_value(argv, argc, i, "--gen-suppressions", &missing))) {
        if (strcmp(v, "no") && strcmp(v, "all"))
            bad = "--gen-suppressions must be no or all, not '%s'";
        else
            l->gen_suppressions = strcmp(v, "all") == 0;
    } else if (is_leaks && (v = main_value(argv, argc, i, "--error-exitcode", &missing))) {
        /* (run takes it with the guard's options: the agent also applies it) */
        if (main_parse_int(v, 0, 255, &n) < 0)
            bad = "--error-exitcode needs an exit status from 0 to 255, not '%s'";
        else
            l->error_exitcode = (int)n;
    } else if (!missing) {
        return 0;
    }
    if (missing)
        bad = "option %s needs a value", v = arg;
    if (bad) {
        main_usage_error(cmd, bad, v);
        return -1;
    }
    return 1;
}

/* --leak-check-signal's value: a number, or a name with or without SIG ("USR1", "SIGUSR1",
 * any case). Signals that cannot be caught are refused. Returns the number or -1. */
static int main_parse_signal(const char *v)
{
    long n;
    if (main_parse_int(v, 1, 64, &n) == 0)
        return n == SIGKILL || n == SIGSTOP ? -1 : (int)n;
    if (strncasecmp(v, "SIG", 3) == 0)
        v += 3;
    for (int sig = 1; sig < 32; sig++) {
        const char *name = sigabbrev_np(sig);
        if (name && strcasecmp(name, v) == 0)
            return sig == SIGKILL || sig == SIGSTOP ? -1 : sig;
    }
    return -1;
}

/* memcheck's --leak-check-heuristics syntax: all, none, or a comma list of the four. */
static int main_check_heuristics(const char *v)
{
    static const char *const names[] = { "stdstring", "length64", "newarray", "multipleinheritance" };
    if (!strcmp(v, "all") || !strcmp(v, "none"))
        return 0;
    if (!*v)
        return -1;
    while (*v) {
        size_t w = strcspn(v, ","), k = 0;
        for (; k < HTRI_ARRAY_LEN(names); k++)
            if (strlen(names[k]) == w && !strncmp(v, names[k], w))
                break;
        if (k == HTRI_ARRAY_LEN(names))
            return -1;
        v += w;
        if (*v == ',' && !*++v)
            return -1;    /* a trailing comma */
    }
    return 0;
}

static int main_run(int argc, char **argv)
{
    htri_run_opts o;
    memset(&o, 0, sizeof o);
    main_leak_defaults(&o.leak);
    o.freeres = -1;
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
        if ((rc = main_leak_option("run", argv, argc, &i, &o.leak)) != 0) {
            if (rc < 0)
                return HTRI_CLI_USAGE;
            continue;
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
        } else if ((v = main_value(argv, argc, &i, "--record", &missing))) {
            if (strcmp(v, "full") && strcmp(v, "none"))
                return main_usage_error("run", "--record must be full or none, not '%s'", v);
            o.record_none = strcmp(v, "none") == 0;
        } else if ((v = main_value(argv, argc, &i, "--run-libc-freeres", &missing))) {
            if (strcmp(v, "yes") && strcmp(v, "no"))
                return main_usage_error("run", "--run-libc-freeres must be yes or no, not '%s'", v);
            o.freeres = strcmp(v, "yes") == 0;
        } else if ((v = main_value(argv, argc, &i, "--leak-check-signal", &missing))) {
            if ((o.leak_check_signal = main_parse_signal(v)) < 0)
                return main_usage_error("run", "--leak-check-signal needs a signal that can be caught "
                                        "(USR1, SIGUSR2, 10...), not '%s'", v);
        } else if ((v = main_value(argv, argc, &i, "--leak-check-heuristics", &missing))) {
            if (main_check_heuristics(v) < 0)
                return main_usage_error("run", "--leak-check-heuristics must be all, none or a list of "
                                        "stdstring, length64, newarray, multipleinheritance, not '%s'", v);
            o.heuristics = v;
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

static int main_leaks(int argc, char **argv)
{
    htri_leaks_cmd_opts o;
    memset(&o, 0, sizeof o);
    main_leak_defaults(&o.leak);
    int only_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int rc;
        if (!only_files && strcmp(arg, "--") == 0) {
            only_files = 1;
            continue;
        }
        if (only_files || arg[0] != '-' || arg[1] == 0) {
            if (o.path)
                return main_usage_error("leaks", "one trace file at a time ('%s' is extra)", arg);
            o.path = arg;
            continue;
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(leaks_usage, stdout);
            return HTRI_CLI_OK;
        }
        if ((rc = main_leak_option("leaks", argv, argc, &i, &o.leak)) < 0)
            return HTRI_CLI_USAGE;
        if (rc == 0)
            return main_usage_error("leaks", "unknown option '%s'", arg);
    }
    if (!o.path)
        return main_usage_error("leaks", "%s", "no trace file given");
    return htri_cmd_leaks(&o);
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
    else if (strcmp(argv[1], "leaks") == 0)
        fputs(leaks_usage, stdout);
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
    if (strcmp(cmd, "leaks") == 0)
        return main_leaks(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0)
        return main_help(argc - 1, argv + 1);
    if (cmd[0] == '-')
        return main_usage_error(NULL, "unknown option '%s'", cmd);
    return main_usage_error(NULL, "unknown command '%s'", cmd);
}
