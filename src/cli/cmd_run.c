/* `heaptrail run PROG`: checks that the agent can load into PROG, starts it with LD_PRELOAD
 * and HEAPTRAIL_OPTIONS, forwards SIGINT/SIGTERM, waits, then prints a valgrind-like summary
 * of every trace the session file lists. Exits with the program's own status. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analyze/analyze.h"
#include "cli/cli.h"
#include "analyze/suppress.h"
#include "render/leaks.h"
#include "render/render.h"
#include "trace/reader.h"

#define RUN_AGENT_NAME "libheaptrail-preload.so"

static struct {
    volatile sig_atomic_t child;   /* pid the forwarded signals go to */
} g_run;

/* Finds the program as execvp would: a name with a slash is used as is, otherwise each PATH
 * entry is tried. Returns 0 (path in out), -ENOENT or -EACCES. */
static int run_find_program(const char *name, char *out, size_t cap)
{
    struct stat st;
    if (strchr(name, '/')) {
        if (stat(name, &st) != 0)
            return -errno;
        if (S_ISDIR(st.st_mode) || access(name, X_OK) != 0)
            return -EACCES;
        snprintf(out, cap, "%s", name);
        return 0;
    }
    const char *path = getenv("PATH");
    int seen_noexec = 0;
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        if (n == 0)
            snprintf(out, cap, "./%s", name);    /* an empty entry means the cwd */
        else
            snprintf(out, cap, "%.*s/%s", (int)n, path, name);
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(out, X_OK) == 0)
                return 0;
            seen_noexec = 1;
        }
        path += n + (colon ? 1 : 0);
    }
    return seen_noexec ? -EACCES : -ENOENT;
}

/* Can the dynamic loader put our agent into this file? Returns NULL if so, or why not. */
static const char *run_check_loadable(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return NULL;     /* exec will say */
    /* in secure-execution mode (AT_SECURE) the loader ignores LD_PRELOAD */
    if (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
        ((st.st_mode & S_ISGID) && st.st_gid != getegid()))
        return "it is setuid/setgid, so the loader ignores LD_PRELOAD";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    Elf64_Ehdr eh;
    const char *why = NULL;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
        close(fd);
        return NULL;     /* a script: its interpreter is what runs, and it is checked by exec */
    }
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr)) {
        close(fd);
        return "it is not a 64-bit ELF program";
    }
    int has_interp = 0;
    for (unsigned i = 0; i < eh.e_phnum && i < 4096; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * sizeof ph)) != (ssize_t)sizeof ph)
            break;
        if (ph.p_type == PT_INTERP)
            has_interp = 1;
    }
    close(fd);
    if (!has_interp && eh.e_type == ET_EXEC)
        why = "it is statically linked (no PT_INTERP), so nothing can preload the agent";
    else if (!has_interp && eh.e_type == ET_DYN)
        why = "it has no program interpreter (static-pie or a shared library), so nothing can preload the agent";
    else if (!has_interp)
        why = "it is not an executable program";
    return why;
}

/* The agent sits in ../lib next to our binary (build/bin + build/lib, or PREFIX/bin +
 * PREFIX/lib[/multiarch]); HEAPTRAIL_AGENT overrides it. */
static int run_find_agent(char *out, size_t cap)
{
    static const char *subdirs[] = { "/../lib/", "/../lib/x86_64-linux-gnu/", "/../lib64/" };
    const char *env = getenv("HEAPTRAIL_AGENT");
    char exe[PATH_MAX - 64];   /* room for the suffixes below */
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return access(out, R_OK) == 0 ? 0 : -ENOENT;
    }
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -ENOENT;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    for (size_t i = 0; i < HTRI_ARRAY_LEN(subdirs); i++) {
        char cand[PATH_MAX + 64];
        snprintf(cand, sizeof cand, "%s%s%s", exe, subdirs[i], RUN_AGENT_NAME);
        if (access(cand, R_OK) == 0) {
            if (realpath(cand, out))
                return 0;
            return snprintf(out, cap, "%s", cand) < (int)cap ? 0 : -ENAMETOOLONG;
        }
    }
    if (snprintf(out, cap, "%s/../lib/%s", exe, RUN_AGENT_NAME) >= (int)cap)
        return -ENAMETOOLONG;
    return -ENOENT;
}

static void run_forward(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    /* a terminal's ^C already reached the child (same process group): forward only what
     * was sent to us alone, by kill(1) or a supervisor */
    if (g_run.child > 0 && si->si_code != SI_KERNEL)
        kill((pid_t)g_run.child, sig);
}

/* Child side of the fork: environment, then exec. Reports exec's errno through `errfd`. */
static void run_child(const htri_run_opts *o, const char *prog, const char *agent,
                      const char *session, int errfd)
{
    char opts[PATH_MAX * 2 + 256];
    size_t n = 0;
    if (o->out)
        n += (size_t)snprintf(opts + n, sizeof opts - n, "out=%s;", o->out);
    n += (size_t)snprintf(opts + n, sizeof opts - n, "main_pid=%d;session=%s;trace_children=%d",
                          (int)getpid(), session, o->trace_children);
    if (o->unwind && n < sizeof opts)
        n += (size_t)snprintf(opts + n, sizeof opts - n, ";unwind=%s", o->unwind);
    if (o->depth && n < sizeof opts)
        n += (size_t)snprintf(opts + n, sizeof opts - n, ";depth=%d", o->depth);
    /* the agent's leak-check and recording keys (src/agent/agent.c, agent_parse_option) */
    if (o->leak.mode == HTRI_LEAKCHECK_NO && n < sizeof opts)
        n += (size_t)snprintf(opts + n, sizeof opts - n, ";leak_check=no");
    if (o->freeres >= 0 && n < sizeof opts)
        n += (size_t)snprintf(opts + n, sizeof opts - n, ";freeres=%d", o->freeres);
    if (o->record_none && n < sizeof opts)
        n += (size_t)snprintf(opts + n, sizeof opts - n, ";record=none");
    if (o->leak_check_signal && n < sizeof opts)
        n += (size_t)snprintf(opts + n, sizeof opts - n, ";leak_check_signal=%d", o->leak_check_signal);
    if (o->heuristics && n < sizeof opts)
        n += (size_t)snprintf(opts + n, sizeof opts - n, ";heuristics=%s", o->heuristics);
    if (o->guard[0] && n < sizeof opts)
        snprintf(opts + n, sizeof opts - n, "%s", o->guard);
    const char *old = getenv("LD_PRELOAD");
    char *preload = NULL;
    if (old && *old) {
        size_t len = strlen(agent) + strlen(old) + 2;
        preload = malloc(len);
        if (preload)
            snprintf(preload, len, "%s:%s", agent, old);
    }
    setenv("LD_PRELOAD", preload ? preload : agent, 1);
    setenv("HEAPTRAIL_OPTIONS", opts, 1);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execv(prog, o->argv);
    int e = errno;
    if (write(errfd, &e, sizeof e) < 0) {
        /* nothing more to say: the parent sees the child die with 127 */
    }
    _exit(HTRI_CLI_NOTFOUND);
}

/* Whether `path` appears in the session file before byte `limit`. Sessions list a few
 * traces, so reading them again is cheaper than keeping a set. */
static int run_listed_before(const char *session, long limit, const char *path)
{
    FILE *f = fopen(session, "r");
    char line[PATH_MAX + 64];
    int found = 0;
    while (f && !found && ftell(f) < limit && fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (tab) {
            tab[1 + strcspn(tab + 1, "\n")] = 0;
            found = strcmp(tab + 1, path) == 0;
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* Reads "PID<TAB>PATH" lines and prints one summary per trace. Returns how many; adds the
 * errors memcheck would count to *errors. *main_ending (may point to NULL): how the program
 * ended, printed in the summary of main_pid's last image and then set to NULL. */
static int run_summaries(const char *session, FILE *log, const htri_leaks_opts *lo,
                         pid_t main_pid, const char **main_ending, uint64_t *errors)
{
    FILE *f = fopen(session, "r");
    char line[PATH_MAX + 64];
    int n = 0;
    if (!f)
        return 0;
    long start = 0;
    while (fgets(line, sizeof line, f)) {
        long next = ftell(f);
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        char *path = tab + 1;
        path[strcspn(path, "\n")] = 0;
        if (run_listed_before(session, start, path)) {
            start = next;
            continue;     /* a process that re-registered its trace (exec) */
        }
        start = next;
        n++;
        htri_reader *r = NULL;
        htri_model *m = NULL;
        char err[160];
        int rc = htri_reader_open(path, &r);
        if (rc < 0) {
            htri_cli_error("%s: %s", path, htri_cli_strerror(rc));
            continue;
        }
        /* the summary names no stacks, and its heap figures are the agent's when the trace
         * ends cleanly: no EVENTS frame is decompressed then */
        htri_analyze_opts ao = { .skip_peak_sites = 1, .summary_only = 1 };
        rc = htri_analyze(r, &ao, &m, err, sizeof err);
        if (rc < 0) {
            htri_cli_error("%s: %s: %s", path, htri_cli_strerror(rc),
                           htri_reader_error(r)[0] ? htri_reader_error(r) : err);
            htri_reader_close(r);
            continue;
        }
        htri_reader_close(r);
        uint64_t n_err = 0;
        int is_main = *main_ending && m->header.pid == (uint32_t)main_pid && !m->forked &&
                      !(m->has_end && m->end_how == HTRI_END_EXEC);
        htri_render_run_summary(log, m, path, lo, is_main ? *main_ending : NULL, &n_err);
        if (is_main)
            *main_ending = NULL;
        *errors += n_err;
        htri_model_free(m);
    }
    fclose(f);
    return n;
}

int htri_cmd_run(const htri_run_opts *o)
{
    char prog[PATH_MAX], agent[PATH_MAX];
    const char *name = o->argv[0];
    int rc = run_find_program(name, prog, sizeof prog);
    if (rc == -ENOENT) {
        htri_cli_error("%s: program not found%s", name, strchr(name, '/') ? "" : " in PATH");
        return HTRI_CLI_NOTFOUND;
    }
    if (rc < 0) {
        htri_cli_error("%s: cannot execute: %s", name, strerror(-rc));
        return HTRI_CLI_NOEXEC;
    }
    const char *why = run_check_loadable(prog);
    if (why)
        return htri_cli_error("%s: cannot trace: %s", name, why);
    if (run_find_agent(agent, sizeof agent) < 0)
        return htri_cli_error("agent not found at %s (build it, or set HEAPTRAIL_AGENT)", agent);
    if (o->out && strchr(o->out, ';'))
        return htri_cli_error("-o %s: the trace name cannot contain ';'", o->out);

    htri_supp_set *supp = NULL;
    if (htri_cli_load_supp(&o->leak, &supp) != HTRI_CLI_OK)
        return HTRI_CLI_FAIL;
    FILE *log = stderr;
    if (o->log_file && !(log = fopen(o->log_file, "w"))) {
        htri_supp_close(supp);
        return htri_cli_error("--log-file=%s: %s", o->log_file, strerror(errno));
    }

    const char *tmp = getenv("TMPDIR");
    char session[PATH_MAX];
    snprintf(session, sizeof session, "%s/heaptrail-session-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int sfd = mkstemp(session);
    if (sfd < 0) {
        rc = htri_cli_error("cannot create a session file in %s: %s", tmp && *tmp ? tmp : "/tmp",
                            strerror(errno));
        goto out_log;
    }
    close(sfd);

    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        rc = htri_cli_error("pipe: %s", strerror(errno));
        goto out_session;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        rc = htri_cli_error("fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        goto out_session;
    }
    if (pid == 0) {
        close(pfd[0]);
        run_child(o, prog, agent, session, pfd[1]);
    }
    close(pfd[1]);
    g_run.child = pid;
    struct sigaction sa, old_int, old_term, old_check;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = run_forward;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    /* kill -SIG to heaptrail asks the program for a leak check (SIGINT/SIGTERM: see above) */
    int fwd_check = o->leak_check_signal && o->leak_check_signal != SIGINT &&
                    o->leak_check_signal != SIGTERM;
    if (fwd_check)
        sigaction(o->leak_check_signal, &sa, &old_check);

    int exec_errno = 0;
    ssize_t got;
    do
        got = read(pfd[0], &exec_errno, sizeof exec_errno);
    while (got < 0 && errno == EINTR);
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (fwd_check)
        sigaction(o->leak_check_signal, &old_check, NULL);
    g_run.child = 0;
    if (got == (ssize_t)sizeof exec_errno) {
        htri_cli_error("%s: cannot execute: %s", name, strerror(exec_errno));
        rc = exec_errno == ENOENT ? HTRI_CLI_NOTFOUND : HTRI_CLI_NOEXEC;
        goto out_session;
    }

    char ending_buf[160];
    const char *ending = NULL;
    if (WIFSIGNALED(status)) {
        char sig[32];
        int s = WTERMSIG(status);
        /* memcheck's words, after the errors the program made and before the HEAP SUMMARY */
        snprintf(ending_buf, sizeof ending_buf,
                 "==%d== \n==%d== Process terminating with default action of signal %d (%s)\n",
                 (int)pid, (int)pid, s, htri_render_signame(sig, sizeof sig, s));
        ending = ending_buf;
        rc = 128 + s;
    } else {
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : HTRI_CLI_FAIL;
    }
    fflush(log);
    htri_cli_raise_nofile();     /* the program ran with the limits it was given */
    htri_leaks_opts lo;
    htri_cli_leaks_opts(&o->leak, supp, &lo);
    uint64_t errors = 0;
    int n_traces = run_summaries(session, log, &lo, pid, &ending, &errors);
    if (ending)
        fputs(ending, log);     /* no trace of the program's last image */
    /* memcheck's --error-exitcode: errors (misuse, and loss records of the kinds of
     * --errors-for-leak-kinds under --leak-check=full) turn an exit into this status; a
     * program killed by a signal still dies of it */
    if (o->leak.error_exitcode && errors && WIFEXITED(status))
        rc = o->leak.error_exitcode;
    if (n_traces == 0)
        htri_cli_warning("no trace was written: the agent did not load into %s (was LD_PRELOAD "
                         "cleared, or the program replaced by a static or setuid one?)", name);
out_session:
    unlink(session);
out_log:
    if (log != stderr && fclose(log) != 0)
        htri_cli_error("--log-file=%s: %s", o->log_file, strerror(errno));
    htri_supp_close(supp);
    return rc;
}
