#!/usr/bin/env python3
"""CLI tests of heaptrail: exact one-line errors and exit codes, report sections, JSON, and
end-to-end runs under the agent compared with valgrind memcheck. One case per CTest test:
    cli_test.py --heaptrail BIN --mktrace BIN --work DIR [--progs DIR] CASE
Exit 0 pass, 1 fail, 77 skip (CTest SKIP_RETURN_CODE)."""
import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys

SKIP = 77
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, file=sys.stderr)


def run(args, timeout=60, env=None, cwd=None):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env=env, cwd=cwd)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def expect_error(args, code, line, **kw):
    """The command must fail with `code` and print exactly `line` (a regex) and nothing else."""
    rc, out, err = run(args, **kw)
    lines = err.splitlines()
    check(rc == code, "%r: exit %d, want %d (stderr %r)" % (args[1:], rc, code, err))
    check(len(lines) == 1, "%r: want one stderr line, got %r" % (args[1:], err))
    check(bool(lines) and re.fullmatch(line, lines[0]) is not None,
          "%r: stderr %r does not match %r" % (args[1:], err, line))
    return out


def case_usage(a):
    h = a.heaptrail
    rc, out, err = run([h])
    check(rc == 2 and "usage: heaptrail" in err, "no arguments: usage on stderr, exit 2")
    rc, out, err = run([h, "--help"])
    check(rc == 0 and out.startswith("usage: heaptrail") and not err, "--help")
    rc, out, err = run([h, "--version"])
    check(rc == 0 and re.fullmatch(r"heaptrail \d+\.\d+\.\d+\n", out) is not None, "--version: %r" % out)
    rc, out, err = run([h, "help", "run"])
    check(rc == 0 and "--unwind=cached|dwarf|fp" in out, "help run")
    rc, out, err = run([h, "help", "report"])
    check(rc == 0 and "--short-lived=DURATION" in out, "help report")
    rc, out, err = run([h, "report", "--help"])
    check(rc == 0 and "--top N" in out, "report --help")
    E = r"heaptrail: error: "
    expect_error([h, "bogus"], 2, E + r"unknown command 'bogus' \(see heaptrail help\)")
    expect_error([h, "--bogus"], 2, E + r"unknown option '--bogus' \(see heaptrail help\)")
    expect_error([h, "help", "bogus"], 2, E + r"unknown command 'bogus' \(see heaptrail help\)")
    expect_error([h, "report"], 2, E + r"report: no trace file given \(see heaptrail help report\)")
    expect_error([h, "report", "--top", "0", "x"], 2,
                 E + r"report: --top must be a positive number, not '0' \(see heaptrail help report\)")
    expect_error([h, "report", "--top"], 2, E + r"report: option --top needs a value .*")
    expect_error([h, "report", "--short-lived=5h", "x"], 2,
                 E + r"report: --short-lived needs a duration such as 500us, 2ms or 1s, not '5h' .*")
    expect_error([h, "report", "--bogus", "x"], 2, E + r"report: unknown option '--bogus' .*")
    expect_error([h, "report", "a", "b"], 2, E + r"report: one trace file at a time \('b' is extra\) .*")
    expect_error([h, "run"], 2, E + r"run: no program to run \(see heaptrail help run\)")
    expect_error([h, "run", "--"], 2, E + r"run: no program to run .*")
    expect_error([h, "run", "--unwind=xx", "true"], 2, E + r"run: --unwind must be dwarf, cached or fp, not 'xx' .*")
    expect_error([h, "run", "--depth=0", "true"], 2, E + r"run: --depth must be a number from 1 to 256, not '0' .*")
    expect_error([h, "run", "--depth=1x", "true"], 2, E + r"run: --depth must be .*")
    expect_error([h, "run", "--bogus", "true"], 2, E + r"run: unknown option '--bogus' .*")
    expect_error([h, "run", "-o"], 2, E + r"run: option -o needs a value .*")
    expect_error([h, "run", "--leak-check=maybe", "true"], 2,
                 E + r"run: --leak-check must be no, summary or full, not 'maybe' .*")
    expect_error([h, "run", "--show-leak-kinds=lost", "true"], 2, E + r"run: --show-leak-kinds: bad kind list 'lost' .*")
    expect_error([h, "run", "--leak-resolution=max", "true"], 2, E + r"run: --leak-resolution must be low, med or high.*")
    expect_error([h, "run", "--num-callers=0", "true"], 2, E + r"run: --num-callers must be a number from 1 to 256.*")
    expect_error([h, "run", "--gen-suppressions=yes", "true"], 2, E + r"run: --gen-suppressions must be no or all.*")
    expect_error([h, "run", "--redzone=x", "true"], 2, E + r"run: --redzone needs a number of bytes from 0 to 4096, not 'x' .*")
    expect_error([h, "run", "--limit=10Q", "true"], 2, E + r"run: --limit needs a size such as 512K, 64M or 1G, not '10Q' .*")
    expect_error([h, "run", "--fail-rate=2", "true"], 2, E + r"run: --fail-rate needs a probability from 0 to 1, not '2' .*")
    expect_error([h, "run", "--limit-action=explode", "true"], 2, E + r"run: --limit-action needs fail or abort.*")
    expect_error([h, "run", "--abort-on-error=1", "true"], 2, E + r"run: --abort-on-error takes no value .*")
    expect_error([h, "run", "--error-exitcode=300", "true"], 2, E + r"run: --error-exitcode needs an exit status from 0 to 255.*")
    expect_error([h, "run", "--record=some", "true"], 2, E + r"run: --record must be full or none, not 'some' .*")
    expect_error([h, "run", "--run-libc-freeres=maybe", "true"], 2,
                 E + r"run: --run-libc-freeres must be yes or no, not 'maybe' .*")
    for sig in ("KILL", "SIGSTOP", "9", "USR9", "0", "65", ""):
        expect_error([h, "run", "--leak-check-signal=" + sig, "true"], 2,
                     E + r"run: --leak-check-signal needs a signal that can be caught \(USR1, SIGUSR2, 10\.\.\.\), not '%s' .*" % sig)
    for heur in ("some", "stdstring,", "stdstring,,length64", "all,none", ""):
        expect_error([h, "run", "--leak-check-heuristics=" + heur, "true"], 2,
                     E + r"run: --leak-check-heuristics must be all, none or a list of .*, not '%s' .*" % re.escape(heur))
    expect_error([h, "run", "--suppressions"], 2, E + r"run: option --suppressions needs a value .*")
    rc, out, err = run([h, "help", "leaks"])
    check(rc == 0 and "usage: heaptrail leaks [OPTIONS] FILE" in out and "--error-exitcode=N" in out, "help leaks")
    rc, out, err = run([h, "leaks", "--help"])
    check(rc == 0 and "--errors-for-leak-kinds" in out, "leaks --help")
    rc, out, err = run([h, "--help"])
    check("  leaks [OPTIONS] FILE" in out, "--help lists leaks")
    rc, out, err = run([h, "help", "run"])
    for opt in ("--record=full|none", "--run-libc-freeres=yes|no", "--leak-check-signal=SIG",
                "--leak-check-heuristics="):
        check(opt in out, "help run: %s" % opt)
    expect_error([h, "leaks"], 2, E + r"leaks: no trace file given \(see heaptrail help leaks\)")
    expect_error([h, "leaks", "a", "b"], 2, E + r"leaks: one trace file at a time \('b' is extra\) .*")
    expect_error([h, "leaks", "--leak-check=no", "x"], 2, E + r"leaks: --leak-check must be summary or full, not 'no' .*")
    expect_error([h, "leaks", "--bogus", "x"], 2, E + r"leaks: unknown option '--bogus' .*")
    expect_error([h, "leaks", "--error-exitcode=256", "x"], 2,
                 E + r"leaks: --error-exitcode needs an exit status from 0 to 255, not '256' .*")
    expect_error([h, "leaks", "--show-leak-kinds=everything", "x"], 2, E + r"leaks: --show-leak-kinds: bad kind list .*")
    expect_error([h, "leaks", "--num-callers"], 2, E + r"leaks: option --num-callers needs a value .*")
    expect_error([h, "leaks", "--show-reachable=maybe", "x"], 2, E + r"leaks: --show-reachable must be yes or no, not 'maybe' .*")
    expect_error([h, "run", "--show-possibly-lost=1", "true"], 2, E + r"run: --show-possibly-lost must be yes or no, not '1' .*")


def case_files(a):
    h, w = a.heaptrail, a.work
    E = r"heaptrail: error: "
    expect_error([h, "report", "/nonexistent/x.htr"], 1, E + r"/nonexistent/x\.htr: No such file or directory")
    txt = os.path.join(w, "text.txt")
    with open(txt, "w") as f:
        f.write("this is not a trace, just some text that is long enough to have a header\n")
    expect_error([h, "report", txt], 1, E + re.escape(txt) + r": not a heaptrail trace")
    expect_error([h, "report", w], 1, E + re.escape(w) + r": Is a directory")
    expect_error([h, "report", os.path.join(w, "corrupt.htr")], 1,
                 E + r".*corrupt\.htr: corrupt trace: bad frame header at byte \d+")
    expect_error([h, "report", os.path.join(w, "badzstd.htr")], 1,
                 E + r".*badzstd\.htr: corrupt trace: frame 0 at byte 64: bad zstd data")
    short = os.path.join(w, "short.htr")
    with open(os.path.join(w, "sample.htr"), "rb") as f:
        head = f.read(30)
    with open(short, "wb") as f:
        f.write(head)
    expect_error([h, "report", short], 1, E + r".*short\.htr: truncated: too short to be a trace")
    # a cut trace: a warning saying where, then the report of the prefix, exit 0
    rc, out, err = run([h, "report", os.path.join(w, "cut.htr")])
    check(rc == 0, "cut trace: exit %d" % rc)
    check(re.fullmatch(r"heaptrail: warning: .*cut\.htr: trace cut at byte \d+: frame data runs past "
                       r"the end of the file; analysed up to there\n", err) is not None, "cut warning %r" % err)
    check("total heap usage: 5 allocs, 3 frees, 2,650 bytes allocated" in out, "cut trace: events before the cut")
    rc, out, err = run([h, "report", os.path.join(w, "empty.htr")])
    check(rc == 0 and "total heap usage: 0 allocs, 0 frees, 0 bytes allocated" in out, "empty trace")


SECTIONS = ["SUMMARY", "PEAK CONTRIBUTORS", "TOP SITES BY BYTES ALLOCATED",
            "TOP SITES BY NUMBER OF ALLOCATIONS", "TEMPORARY ALLOCATIONS", "SHORT-LIVED ALLOCATIONS",
            "STILL ALLOCATED AT EXIT", "SIZE HISTOGRAM", "MEMORY OVER TIME", "THREADS"]


def case_report(a):
    h, w = a.heaptrail, a.work
    sample = os.path.join(w, "sample.htr")
    rc, out, err = run([h, "report", sample])
    check(rc == 0 and err == "", "report sample: exit %d, stderr %r" % (rc, err))
    pos = -1
    for s in SECTIONS:
        i = out.find("\n" + s)
        check(i > pos, "section %r present and in order" % s)
        pos = max(pos, i)
    for line in ["    in use at exit: 100 bytes in 2 blocks",
                 "  total heap usage: 5 allocs, 3 frees, 2,650 bytes allocated",
                 "         peak heap: 1,600 bytes (1.56 KiB) in 2 blocks at 2.5 us",
                 "       temporaries: 2 (40.0% of allocations)",
                 "1,500 bytes (93.8% of the peak) in 1 blocks",
                 "100 bytes (6.2% of the peak) in 1 blocks",
                 "   at 0x403000: ??? (in /usr/bin/sample)",
                 "   by 0x401000: ??? (in /usr/bin/sample)",
                 "  [4.0 us] warning: sample warning"]:
        check(line + "\n" in out, "report line %r" % line)
    rc, out, err = run([h, "report", "--short-lived=50ns", sample])
    check("short-lived: 0 freed within 50 ns" in out, "--short-lived=50ns")
    rc, out, err = run([h, "report", "--short-lived", "500us", sample])
    check("short-lived: 3 freed within 500.0 us" in out, "--short-lived 500us")
    rc, out, err = run([h, "report", "--top", "1", sample])
    check("... and 1 more (--top N shows more)" in out, "--top 1 cuts sections")


def case_json(a):
    h, w = a.heaptrail, a.work
    rc, out, err = run([h, "report", "--json", "--top=5", os.path.join(w, "sample.htr")])
    check(rc == 0, "json exit")
    p = subprocess.run([sys.executable, "-m", "json.tool"], input=out.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    check(p.returncode == 0, "json.tool accepts the report: %s" % p.stderr.decode())
    try:
        d = json.loads(out)
    except ValueError as e:
        check(False, "json parses: %s" % e)
        return
    s = d["summary"]
    check(d["format"] == "heaptrail-report" and d["version"] == 1, "format/version")
    check((s["allocs"], s["frees"], s["bytes_allocated"]) == (5, 3, 2650), "json totals %r" % s)
    check(s["in_use_at_exit"] == {"bytes": 100, "blocks": 2}, "json in use")
    check(s["peak"] == {"bytes": 1600, "blocks": 2, "t_ns": 2500}, "json peak")
    pc = d["peak_contributors"]["sites"]
    check([x["bytes"] for x in pc] == [2550, 100] and abs(pc[0]["share"] - 0.9375) < 1e-4,
          "json peak contributors %r" % pc)
    for x in pc:
        check(str(x["stack"]) in d["stacks"], "stack %d listed" % x["stack"])
    check(d["stacks"]["3"][0]["pc"] == "0x403000" and d["stacks"]["3"][0]["module"] == "/usr/bin/sample",
          "json frames")
    check(len(d["timeline"]) == 60 and d["timeline"][-1]["heap_bytes"] == 100, "json timeline")
    check([b["count"] for b in d["histogram"]] == [1, 1, 1, 1, 1], "json histogram")
    check(d["end"]["how"] == "exit" and d["mmap"]["peak_bytes"] == 1 << 20, "json end/mmap")
    rc, out, err = run([h, "report", "--json", os.path.join(w, "cut.htr")])
    d = json.loads(out)
    check(d["trace"]["cut"]["offset"] > 0 and d["trace"]["cut"]["corrupt"] is False, "json cut")


def case_run_errors(a):
    h, w = a.heaptrail, a.work
    E = r"heaptrail: error: "
    expect_error([h, "run", "/nonexistent/prog"], 127, E + r"/nonexistent/prog: program not found")
    expect_error([h, "run", "no-such-program-xyz"], 127, E + r"no-such-program-xyz: program not found in PATH")
    noexec = os.path.join(w, "noexec.sh")
    with open(noexec, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(noexec, 0o644)
    expect_error([h, "run", noexec], 126, E + r".*noexec\.sh: cannot execute: Permission denied")
    if a.progs and os.path.exists(os.path.join(a.progs, "htr-cli-static")):
        expect_error([h, "run", os.path.join(a.progs, "htr-cli-static")], 1,
                     E + r".*htr-cli-static: cannot trace: it is statically linked \(no PT_INTERP\), so nothing can preload the agent")
    if os.geteuid() == 0 and shutil.which("true"):
        # setuid to another user: the loader would run it in secure mode and ignore LD_PRELOAD
        su = os.path.join(w, "suid-true")
        shutil.copy(shutil.which("true"), su)
        os.chown(su, 65534, 65534)
        os.chmod(su, 0o4755)
        expect_error([h, "run", su], 1, E + r".*suid-true: cannot trace: it is setuid/setgid, so the loader ignores LD_PRELOAD")
    env = dict(os.environ, HEAPTRAIL_AGENT="/nonexistent/agent.so")
    expect_error([h, "run", "true"], 1, E + r"agent not found at /nonexistent/agent\.so .*", env=env)
    # an "agent" that loads but records nothing: the run says so, and keeps the program's status
    libm = "/lib/x86_64-linux-gnu/libm.so.6"
    if os.path.exists(libm):
        env = dict(os.environ, HEAPTRAIL_AGENT=libm)
        for prog, status in (("true", 0), ("false", 1)):
            rc, out, err = run([h, "run", prog], env=env)
            check(rc == status, "run %s without a working agent: exit %d, want %d" % (prog, rc, status))
            check(re.fullmatch(r"heaptrail: warning: no trace was written: the agent did not load into "
                               + prog + r" \(.*\)\n", err) is not None, "no-trace warning: %r" % err)
    expect_error([h, "run", "--suppressions=/nonexistent/supp", "true"], 1,
                 E + r"--suppressions=/nonexistent/supp: No such file or directory")
    bad = os.path.join(w, "bad.supp")
    with open(bad, "w") as f:
        f.write("{\n   name\n   Memcheck:Leak\n   fun:malloc\n")   # never closed
    expect_error([h, "run", "--suppressions=" + bad, "true"], 1, E + r"--suppressions: .*bad\.supp:\d+: .*")
    expect_error([h, "run", "--log-file=/nonexistent/dir/log", "true"], 1,
                 E + r"--log-file=/nonexistent/dir/log: No such file or directory")


SUMMARY_RE = re.compile(r"==(\d+)==     in use at exit: ([\d,]+) bytes in ([\d,]+) blocks\n"
                        r"==\1==   total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated\n")


def heap_summary(text):
    m = SUMMARY_RE.search(text)
    return m.groups()[1:] if m else None


def need_agent(a):
    if not a.agent or not os.path.exists(a.agent):
        print("agent not built: skipped", file=sys.stderr)
        sys.exit(SKIP)


def run_traced(a, prog, args=(), opts=(), timeout=60):
    trace = os.path.join(a.work, os.path.basename(prog) + ".htr")
    rc, out, err = run([a.heaptrail, "run", "-o", trace] + list(opts) + ["--", prog] + list(args),
                       timeout=timeout, cwd=a.work)
    return rc, out, err, trace


def case_e2e_c(a):
    need_agent(a)
    prog = os.path.join(a.progs, "htr-cli-e2e-c")
    rc, out, err, trace = run_traced(a, prog)
    check(rc == 3, "program status passes through: %d (stderr %r)" % (rc, err))
    check(heap_summary(err) == ("1,000", "1", "1,112", "1,111", "76,600"),
          "C summary %r in %r" % (heap_summary(err), err))
    check(re.search(r"==\d+==          peak heap: 2,100 bytes in 2 blocks at ", err) is not None, "peak line")
    check("==%s== trace: %s (exit status 3)" % (re.search(r"==(\d+)==", err).group(1), trace) in err
          if "==" in err else False, "trace line")
    check(re.search(r"==\d+== LEAK SUMMARY:\n", err) is not None, "LEAK SUMMARY after the heap summary")
    # every line of the summary carries the pid prefix
    for line in err.splitlines():
        check(re.match(r"==\d+== ", line) is not None, "prefixed line %r" % line)
    rc, out, err = run([a.heaptrail, "report", trace])
    check(rc == 0 and "make_leak (e2e_c.c:" in out, "report symbolizes the leak's stack: %r" % out[:3000])
    # memcheck's leak options: the leak sits in a global, so it is still reachable
    rc, out, err, trace = run_traced(a, prog, opts=["--leak-check=full", "--show-leak-kinds=all"])
    check(re.search(r"==\d+== 1,000 bytes in 1 blocks are still reachable in loss record 1 of 1\n"
                    r"==\d+==    at 0x[0-9A-F]+: malloc \(in .*libheaptrail-preload\.so\)\n"
                    r"==\d+==    by 0x[0-9A-F]+: make_leak \(e2e_c\.c:\d+\)\n", err) is not None,
          "--leak-check=full loss record: %r" % err)
    rc, out, err, trace = run_traced(a, prog, opts=["--leak-check=full", "--errors-for-leak-kinds=all",
                                                    "--error-exitcode=42"])
    check(rc == 42, "--error-exitcode with a leak counted as an error: exit %d" % rc)
    supp = os.path.join(a.work, "leak.supp")
    with open(supp, "w") as f:
        f.write("{\n   the_leak\n   Memcheck:Leak\n   ...\n   fun:make_leak\n}\n")
    # suppressions apply in every mode, as memcheck's: the default summary counts it too
    for opts in ([], ["--leak-check=full", "--show-leak-kinds=all"]):
        rc, out, err, trace = run_traced(a, prog, opts=opts + ["--suppressions=" + supp])
        check(re.search(r"==\d+==         suppressed: 1,000 bytes in 1 blocks\n", err) is not None,
              "suppressed by fun:make_leak with %r: %r" % (opts, err))
    # a signal: valgrind's line and 128 + signal
    rc, out, err, trace = run_traced(a, prog, ["crash"])
    check(rc == 128 + 11, "killed by SIGSEGV: exit %d" % rc)
    check("Process terminating with default action of signal 11 (SIGSEGV)" in err, "signal line %r" % err)


def case_e2e_cpp(a):
    need_agent(a)
    prog = os.path.join(a.progs, "htr-cli-e2e-cpp")
    rc, out, err, trace = run_traced(a, prog)
    check(rc == 0, "C++ exit %d (%r)" % (rc, err))
    s = heap_summary(err)
    check(s is not None and s[0] == "400" and s[1] == "1", "C++ in use at exit %r" % (s,))
    rc, out, err = run([a.heaptrail, "report", "--json", trace])
    d = json.loads(out)
    check(d["summary"]["allocs"] >= 1000, "C++ allocs %r" % d["summary"])
    check(any(f["function"] and "Widget" in f["function"] for st in d["stacks"].values() for f in st),
          "demangled C++ frames")


LEAK_RE = re.compile(r"==\d+==    definitely lost: (.*)\n==\d+==    indirectly lost: (.*)\n"
                     r"==\d+==      possibly lost: (.*)\n==\d+==    still reachable: (.*)\n")


def leak_summaries(text):
    return sorted(m.groups() for m in LEAK_RE.finditer(text))


def all_summaries(text):
    return sorted(m.groups()[1:] for m in SUMMARY_RE.finditer(text))


def case_e2e_fork(a):
    need_agent(a)
    prog = os.path.join(a.progs, "htr-cli-e2e-fork")
    log = os.path.join(a.work, "fork.log")
    rc, out, err, trace = run_traced(a, prog, opts=["--log-file=" + log])
    check(rc == 0, "fork exit %d (%r)" % (rc, err))
    check("==" not in err, "--log-file: nothing on stderr: %r" % err)
    with open(log) as f:
        text = f.read()
    check(all_summaries(text) == [("100", "1", "2", "1", "150"), ("300", "2", "3", "1", "350")],
          "parent and forked child summaries: %r" % all_summaries(text))
    pids = set(re.findall(r"==(\d+)== trace: ", text))
    check(len(pids) == 2, "one summary per process: %r" % text)


def case_e2e_exec(a):
    need_agent(a)
    prog = os.path.join(a.progs, "htr-cli-e2e-c")
    cmd = "%s; true" % prog       # the shell forks, the child execs prog
    rc, out, err, trace = run_traced(a, "/bin/sh", ["-c", cmd], opts=["--trace-children"])
    s = all_summaries(err)
    check(rc == 0 and len(s) == 2, "--trace-children: the shell and the exec'd program: %r" % err)
    check(("1,000", "1", "1,112", "1,111", "76,600") in s, "exec'd program's summary %r" % s)
    rc, out, err, trace = run_traced(a, "/bin/sh", ["-c", cmd])
    s = all_summaries(err)
    check(len(s) == 1 and ("1,000", "1", "1,112", "1,111", "76,600") not in s,
          "without --trace-children only the shell: %r" % s)


def case_e2e_signal(a):
    need_agent(a)
    import signal
    import time
    prog = os.path.join(a.progs, "htr-cli-e2e-c")
    trace = os.path.join(a.work, "wait.htr")
    p = subprocess.Popen([a.heaptrail, "run", "-o", trace, prog, "wait"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)   # to heaptrail alone: it must forward it
    out, err = p.communicate(timeout=60)
    err = err.decode()
    check(p.returncode == 128 + 15, "SIGTERM forwarded: exit %d, stderr %r" % (p.returncode, err))
    check("Process terminating with default action of signal 15 (SIGTERM)" in err, "SIGTERM line %r" % err)
    s = heap_summary(err)
    check(s is not None and s[2] == "1,112", "summary after SIGTERM %r" % (s,))
    # SIGKILL to the program itself: no END record, but the flushed prefix is summarised
    trace = os.path.join(a.work, "killed.htr")
    p = subprocess.Popen([a.heaptrail, "run", "-o", trace, prog, "wait"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    time.sleep(1.0)
    with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
        child = int(f.read().split()[0])
    os.kill(child, signal.SIGKILL)
    out, err = p.communicate(timeout=60)
    err = err.decode()
    check(p.returncode == 128 + 9, "SIGKILL: exit %d" % p.returncode)
    check("Process terminating with default action of signal 9 (SIGKILL)" in err, "SIGKILL line %r" % err)
    s = heap_summary(err)
    check(s is not None and s[2] == "1,112", "summary of a killed program's trace %r" % (s,))
    check("(no end record: the process was killed, or the trace was cut)" in err, "no END noted: %r" % err)
    # no END, so no HEAP_TOTALS: the summary replays the events, peak included
    check(re.search(r"==\d+==          peak heap: 2,100 bytes in 2 blocks at ", err) is not None,
          "peak of a killed program's trace %r" % err)


PEAK_RE = re.compile(r"==\d+==          peak heap: ([\d,]+) bytes in ([\d,]+) blocks at (.*)\n")
MMAP_RE = re.compile(r"==\d+==     anonymous mmap: ([\d,]+) bytes in ([\d,]+) mappings "
                     r"\(peak ([\d,]+) bytes mapped, ([\d,]+) at exit\)\n")


def num(s):
    return int(s.replace(",", ""))


def case_run_summary(a):
    """The run summary comes from the agent's HEAP_TOTALS: the same figures as the full
    analysis of the same trace, and it needs no EVENTS frame at all."""
    need_agent(a)
    prog = os.path.join(a.progs, "htr-cli-run-summary")
    rc, out, err, trace = run_traced(a, prog)
    check(rc == 0, "exit %d (%r)" % (rc, err))
    expected = ("100", "1", "1,005", "1,004", "464,000")
    check(heap_summary(err) == expected, "summary %r in %r" % (heap_summary(err), err))
    peak, mm = PEAK_RE.search(err), MMAP_RE.search(err)
    check(peak is not None and mm is not None, "peak and mmap lines in %r" % err)
    if not peak or not mm:
        return
    rc, out, rerr = run([a.heaptrail, "report", "--json", trace])
    check(rc == 0, "report --json: %r" % rerr)
    d = json.loads(out)
    # single-threaded: the agent's peak is the replay's, bytes, blocks and time
    check((num(peak.group(1)), num(peak.group(2))) == (300000, 3), "peak %r" % (peak.groups(),))
    check((d["summary"]["peak"]["bytes"], d["summary"]["peak"]["blocks"]) ==
          (num(peak.group(1)), num(peak.group(2))), "report's peak %r" % d["summary"]["peak"])
    rc, out, rerr = run([a.heaptrail, "report", trace])
    m = re.search(r"peak heap: [\d,]+ bytes \([^)]*\) in [\d,]+ blocks at (.*)\n", out)
    check(m is not None and m.group(1) == peak.group(3),
          "peak time: run %r, report %r" % (peak.group(3), m.group(1) if m else None))
    mmap = d["mmap"]
    check((mmap["bytes"], mmap["count"], mmap["peak_bytes"], mmap["live_bytes"]) ==
          tuple(num(x) for x in mm.groups()) == (1114112, 2, 1114112, 65536),
          "mmap: run %r, report %r" % (mm.groups(), mmap))
    # The program scrambles a flushed EVENTS frame of its own trace before it goes on: the
    # summary is still whole (it decompresses no EVENTS frame), a replay refuses the trace.
    trace2 = os.path.join(a.work, "scrambled.htr")
    if os.path.exists(trace2):
        os.unlink(trace2)      # the program must find the frames of this run only
    rc, out, err2 = run([a.heaptrail, "run", "-o", trace2, "--", prog, "corrupt", trace2], cwd=a.work)
    check(rc == 0, "scrambling run: exit %d (%r)" % (rc, err2))
    check(heap_summary(err2) == expected, "summary of the scrambled trace %r in %r"
          % (heap_summary(err2), err2))
    p2, m2 = PEAK_RE.search(err2), MMAP_RE.search(err2)
    check(p2 is not None and p2.groups()[:2] == peak.groups()[:2], "scrambled peak %r" % err2)
    check(m2 is not None and m2.groups() == mm.groups(), "scrambled mmap %r" % err2)
    check("heaptrail: error" not in err2, "no error: %r" % err2)
    rc, out, rerr = run([a.heaptrail, "report", trace2])
    check(rc != 0 and "bad zstd data" in rerr, "report of the scrambled trace: %d %r" % (rc, rerr))


def case_valgrind(a):
    need_agent(a)
    vg = shutil.which("valgrind")
    if not vg:
        print("valgrind not installed: skipped", file=sys.stderr)
        sys.exit(SKIP)
    for name in ["htr-cli-e2e-c", "htr-cli-e2e-cpp", "htr-cli-e2e-fork"]:
        prog = os.path.join(a.progs, name)
        rc, out, ours_err, trace = run_traced(a, prog, timeout=120)
        ours = all_summaries(ours_err)
        rc, out, err = run([vg, prog], timeout=300)
        theirs = all_summaries(err)
        check(len(theirs) > 0, "valgrind summary found for %s" % name)
        # the agent's leak check, rendered as memcheck's LEAK SUMMARY (default: summary mode);
        # the fork program's child leaves by _exit(), where both tools check too
        ours_leaks = leak_summaries(ours_err)
        theirs_leaks = leak_summaries(err)
        check(ours_leaks == theirs_leaks, "%s: LEAK SUMMARY heaptrail %r == memcheck %r"
              % (name, ours_leaks, theirs_leaks))
        check(ours == theirs, "%s: heaptrail %r == memcheck %r" % (name, ours, theirs))


def leak_prog(a):
    need_agent(a)
    return os.path.join(a.progs, "htr-cli-leak-kinds")


# memcheck's report from the HEAP SUMMARY's end to ERROR SUMMARY: loss records, LEAK SUMMARY,
# hints and the closing lines. Stack lines keep their function and source line; the address
# and the allocator's object differ between the tools by nature.
def memcheck_tail(text):
    lines = [re.sub(r"^==\d+== ?", "", l) for l in text.splitlines() if re.match(r"==\d+==", l)]
    start = None
    for i, l in enumerate(lines):
        if l.startswith("  total heap usage:") or l.startswith("  total heap usage "):
            start = i
    if start is None:
        return None
    while start < len(lines) and lines[start] != "":
        start += 1
    out = []
    for l in lines[start + 1:]:
        l = re.sub(r"^(   (?:at|by) )0x[0-9A-F]+: ", r"\g<1>0xADDR: ", l)
        l = re.sub(r"^(   at 0xADDR: .*) \(in [^()]*\)$", r"\1 (in ALLOCATOR)", l)
        out.append(l)
        if l.startswith("ERROR SUMMARY:"):
            break
    return out


LEAK_OPTION_SETS = [
    [],
    ["--leak-check=full"],
    ["--leak-check=no"],
    ["--leak-check=full", "--show-leak-kinds=all"],
    ["--leak-check=full", "--show-leak-kinds=all", "--errors-for-leak-kinds=all"],
    ["--leak-check=full", "--show-leak-kinds=none"],
    ["--leak-check=full", "--errors-for-leak-kinds=none"],
    ["--leak-check=full", "--show-leak-kinds=definite", "--errors-for-leak-kinds=reachable"],
    ["--leak-check=summary", "--errors-for-leak-kinds=all"],
    ["--leak-check=full", "--show-reachable=yes"],
    ["--leak-check=full", "--show-reachable=yes", "--show-possibly-lost=no"],
]


def case_leak_closing(a):
    """The closing lines as memcheck prints them, byte for byte, for several option sets."""
    prog = leak_prog(a)
    vg = shutil.which("valgrind")
    # without valgrind: the lines memcheck 3.19 prints for this program (checked against it)
    rc, out, err, trace = run_traced(a, prog, ["clean"])
    check(memcheck_tail(err) == ["All heap blocks were freed -- no leaks are possible", "",
                                 "For lists of detected and suppressed errors, rerun with: -s",
                                 "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 0 from 0)"],
          "no leaks: memcheck's closing lines %r" % memcheck_tail(err))
    rc, out, err, trace = run_traced(a, prog, opts=["--leak-check=full"])
    tail = memcheck_tail(err) or []
    check(tail[-2:] == ["For lists of detected and suppressed errors, rerun with: -s",
                        "ERROR SUMMARY: 3 errors from 3 contexts (suppressed: 0 from 0)"],
          "full: 2 definite + 1 possible records are errors: %r" % tail[-2:])
    check(rc == 0, "errors alone do not change the exit status: %d" % rc)
    # suppressions apply to every loss record, in any mode and whatever is shown, as memcheck's
    # do: the suppressed bytes are counted; suppressed errors only where records count as errors
    supp = os.path.join(a.work, "lost_possible.supp")
    with open(supp, "w") as f:
        f.write("{\n   lost\n   Memcheck:Leak\n   match-leak-kinds: definite\n   fun:malloc\n"
                "   fun:make_lost\n   fun:main\n}\n"
                "{\n   possible\n   Memcheck:Leak\n   match-leak-kinds: possible\n   fun:malloc\n"
                "   fun:make_possible\n}\n")
    for opts, closing in [
            ([], "0 errors from 0 contexts (suppressed: 0 from 0)"),
            (["--leak-check=full", "--show-leak-kinds=none"], "1 errors from 1 contexts (suppressed: 2 from 2)"),
            (["--leak-check=full", "--errors-for-leak-kinds=none"], "0 errors from 0 contexts (suppressed: 0 from 0)"),
            (["--leak-check=full", "--show-leak-kinds=reachable", "--errors-for-leak-kinds=reachable"],
             "1 errors from 1 contexts (suppressed: 0 from 0)")]:
        rc, out, err, trace = run_traced(a, prog, opts=opts + ["--suppressions=" + supp])
        tail = memcheck_tail(err) or []
        check("   definitely lost: 32 bytes in 1 blocks" in tail and "     possibly lost: 0 bytes in 0 blocks" in tail
              and "        suppressed: 88 bytes in 2 blocks" in tail and tail[-1:] == ["ERROR SUMMARY: " + closing],
              "suppressions with %s: %r" % (" ".join(opts) or "the defaults", tail))
        rc, out, err = run([a.heaptrail, "leaks", "--suppressions=" + supp] + opts + [trace])
        check(memcheck_tail("==1==   total heap usage: x\n==1== \n" + out) == tail,
              "heaptrail leaks %s: the same: %r" % (" ".join(opts), out))
    if not vg:
        print("valgrind not installed: the comparison with memcheck skipped", file=sys.stderr)
        return
    for opts in ([], ["--leak-check=full", "--show-leak-kinds=none"], ["--leak-check=full", "--errors-for-leak-kinds=none"],
                 ["--leak-check=full", "--show-leak-kinds=reachable", "--errors-for-leak-kinds=reachable"]):
        opts = opts + ["--suppressions=" + supp]
        rc, out, ours, trace = run_traced(a, prog, opts=opts)
        rc, out, theirs = run([vg] + opts + [prog], timeout=300)
        mine, want = memcheck_tail(ours), memcheck_tail(theirs)
        check(want is not None and mine == want,
              "%s: heaptrail\n%s\nmemcheck\n%s" % (" ".join(opts), "\n".join(mine or []), "\n".join(want or [])))
    for args in ([], ["clean"]):
        for opts in LEAK_OPTION_SETS:
            rc, out, ours, trace = run_traced(a, prog, args, opts=opts)
            rc, out, theirs = run([vg] + opts + [prog] + args, timeout=300)
            mine, want = memcheck_tail(ours), memcheck_tail(theirs)
            check(want is not None and mine == want,
                  "%s %s: heaptrail\n%s\nmemcheck\n%s" % (" ".join(opts), " ".join(args),
                                                           "\n".join(mine or []), "\n".join(want or [])))
    # a suppression file memcheck wrote for a record suppresses it in both tools
    rc, out, theirs = run([vg, "--leak-check=full", "--gen-suppressions=all", prog], timeout=300)
    blocks = re.findall(r"^\{\n.*?^\}\n", theirs, re.M | re.S)
    check(len(blocks) == 3, "memcheck generated 3 suppressions: %r" % theirs)
    supp = os.path.join(a.work, "memcheck.supp")
    with open(supp, "w") as f:
        f.write("".join(b for b in blocks if "make_lost" in b))
    for opts in (["--leak-check=full"], ["--leak-check=full", "--show-leak-kinds=all", "--errors-for-leak-kinds=all"]):
        opts = opts + ["--suppressions=" + supp]
        rc, out, ours, trace = run_traced(a, prog, opts=opts)
        rc, out, theirs = run([vg] + opts + [prog], timeout=300)
        mine, want = memcheck_tail(ours), memcheck_tail(theirs)
        check(want is not None and mine == want,
              "%s: heaptrail\n%s\nmemcheck\n%s" % (" ".join(opts), "\n".join(mine or []), "\n".join(want or [])))


# tests/programs/leaks cases whose whole memcheck report heaptrail reproduces (the others
# differ by nature, see each case's first comment, or by a known gap: aligned, posix_memalign's
# own frame; cpp_string, frames of a library without line info)
LEAK_CASES = ["zero_size", "direct", "tree", "cycle", "chained_cycles", "possible_chain", "no_leaks", "globals_only",
              "new_delete", "heur_stdstring", "heur_newarray", "heur_multiple_inheritance",
              "realloc_chain", "many_blocks", "interior_from_leaked", "lost_under_possible",
              "list_reachable", "xor_hidden", "main_local"]


def case_leak_cases(a):
    """The leak cases of tests/programs/leaks under both tools: identical reports from the end
    of the HEAP SUMMARY to the ERROR SUMMARY, for memcheck's option sets."""
    need_agent(a)
    vg = shutil.which("valgrind")
    if not vg or not a.leak_cases or not os.path.isdir(a.leak_cases):
        print("valgrind or the leak cases missing: skipped", file=sys.stderr)
        sys.exit(SKIP)
    sets = [[], ["--leak-check=full", "--show-leak-kinds=all", "--errors-for-leak-kinds=all"],
            ["--leak-check=full", "--leak-resolution=low", "--num-callers=3"]]
    for name in LEAK_CASES:
        prog = os.path.join(a.leak_cases, name)
        if not os.path.exists(prog):
            check(False, "leak case %s not built" % prog)
            continue
        for opts in sets:
            rc, out, ours, trace = run_traced(a, prog, opts=opts, timeout=120)
            rc, out, theirs = run([vg] + opts + [prog], timeout=300)
            mine, want = memcheck_tail(ours), memcheck_tail(theirs)
            check(want is not None and mine == want,
                  "%s %s: heaptrail\n%s\nmemcheck\n%s" % (name, " ".join(opts), "\n".join(mine or []),
                                                          "\n".join(want or [])))


def case_error_exitcode(a):
    """--error-exitcode: loss records counted as errors and misuse errors, both ways."""
    prog = leak_prog(a)
    for opts, args, want in [
            (["--error-exitcode=9"], [], 0),                              # summary: leaks are no errors
            (["--leak-check=full", "--error-exitcode=9"], [], 9),         # definite/possible records
            (["--leak-check=full", "--errors-for-leak-kinds=none", "--error-exitcode=9"], [], 0),
            (["--leak-check=full", "--errors-for-leak-kinds=reachable", "--error-exitcode=9"], [], 9),
            (["--leak-check=full", "--error-exitcode=9"], ["clean"], 0),
            (["--error-exitcode=9"], ["double-free"], 9),                 # a misuse error
            (["--leak-check=no", "--error-exitcode=9"], ["double-free"], 9),
            (["--leak-check=full"], [], 0),                               # no --error-exitcode
            (["--error-exitcode=0", "--leak-check=full"], [], 0)]:       # 0 turns it off
        rc, out, err, trace = run_traced(a, prog, args, opts=opts)
        check(rc == want, "%s %s: exit %d, want %d (%r)" % (" ".join(opts), " ".join(args), rc, want, err[-600:]))
    rc, out, err, trace = run_traced(a, prog, ["double-free"], opts=["--leak-check=full"])
    check(re.search(r"==\d+== Invalid free\(\) / delete / delete\[\] / realloc\(\)\n", err) is not None
          and "ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0)\n" in err,
          "double free counted in the one ERROR SUMMARY: %r" % err)
    check(err.count("ERROR SUMMARY") == 1, "one ERROR SUMMARY per trace: %r" % err)
    # the misuse error comes first, as memcheck prints errors while the program runs
    check(err.find("Invalid free()") < err.find("HEAP SUMMARY:"), "error before the HEAP SUMMARY")
    # then how the program ended, as memcheck orders them; a signal wins over --error-exitcode
    rc, out, err, trace = run_traced(a, prog, ["double-free-abort"], opts=["--error-exitcode=9"])
    check(rc == 128 + 6, "killed by SIGABRT: exit %d" % rc)
    check(re.search(r"==(\d+)== Invalid free\(\) / delete / delete\[\] / realloc\(\)\n(==\1==  .*\n)*"
                    r"==\1== \n==\1== \n==\1== Process terminating with default action of signal 6 \(SIGABRT\)\n"
                    r"==\1== \n==\1== HEAP SUMMARY:\n", err) is not None,
          "error, then the signal, then the HEAP SUMMARY: %r" % err)


def case_leaks_cmd(a):
    """`heaptrail leaks FILE` prints run's leak report again, with other options."""
    prog = leak_prog(a)
    h = a.heaptrail
    E = r"heaptrail: error: "
    rc, out, run_full, trace_full = run_traced(a, prog, opts=["--leak-check=full", "--show-leak-kinds=all"])
    rc, out, run_err, trace = run_traced(a, prog)   # the default: summary
    check(rc == 0, "run: exit %d" % rc)
    rc, out, err = run([h, "leaks", "--leak-check=full", "--show-leak-kinds=all", trace])
    check(rc == 0 and err == "", "leaks full: exit %d, stderr %r" % (rc, err))
    check(memcheck_tail(run_full) == memcheck_tail("==1==   total heap usage: x\n==1== \n" + out),
          "leaks --leak-check=full == run --leak-check=full:\n%s\n----\n%s" % (out, run_full))
    check(re.match(r"==\d+== 24 bytes in 1 blocks are definitely lost in loss record \d of 5\n", out) is not None,
          "leaks: first loss record %r" % out[:200])
    rc, out, err = run([h, "leaks", trace])
    check(rc == 0 and memcheck_tail("==1==   total heap usage: x\n==1== \n" + out) == memcheck_tail(run_err),
          "leaks FILE == run's default summary: %r" % out)
    for opts, want in [(["--error-exitcode=5"], 0), (["--leak-check=full", "--error-exitcode=5"], 5),
                       (["--leak-check=full", "--errors-for-leak-kinds=none", "--error-exitcode=5"], 0),
                       (["--leak-check=full", "--errors-for-leak-kinds=reachable", "--error-exitcode=5"], 5),
                       (["--leak-check=full"], 0)]:
        rc, out, err = run([h, "leaks"] + opts + [trace])
        check(rc == want, "leaks %s: exit %d, want %d" % (" ".join(opts), rc, want))
    rc, out, err = run([h, "leaks", "--leak-check=full", "--errors-for-leak-kinds=all", trace])
    check("ERROR SUMMARY: 5 errors from 5 contexts (suppressed: 0 from 0)\n" in out, "all kinds counted: %r" % out)
    # --gen-suppressions=all output suppresses, fed back with --suppressions
    rc, out, err = run([h, "leaks", "--leak-check=full", "--show-leak-kinds=all", "--gen-suppressions=all", trace])
    blocks = re.findall(r"^\{\n.*?^\}\n", out, re.M | re.S)
    check(len(blocks) == 5 and all("Memcheck:Leak" in b for b in blocks), "5 suppression blocks: %r" % out)
    supp = os.path.join(a.work, "gen.supp")
    with open(supp, "w") as f:
        f.write("".join(blocks))
    rc, out, err = run([h, "leaks", "--leak-check=full", "--show-leak-kinds=all", "--suppressions=" + supp,
                        "--errors-for-leak-kinds=all", "--error-exitcode=5", trace])
    check(rc == 0 and "        suppressed: 268 bytes in 5 blocks\n" in out
          and "ERROR SUMMARY: 0 errors from 0 contexts (suppressed: 5 from 5)\n" in out,
          "all suppressed: exit %d %r" % (rc, out))
    # failures: one line, status 1
    rc, out, err, nocheck = run_traced(a, prog, opts=["--leak-check=no"])
    expect_error([h, "leaks", nocheck], 1, E + re.escape(nocheck) + r": no complete leak check in this trace "
                 r"\(the process did not reach its exit, or ran with --leak-check=no\)")
    expect_error([h, "leaks", "/nonexistent/x.htr"], 1, E + r"/nonexistent/x\.htr: No such file or directory")
    expect_error([h, "leaks", os.path.join(a.work, "corrupt.htr")], 1, E + r".*corrupt\.htr: corrupt trace: .*")
    expect_error([h, "leaks", "--suppressions=/nonexistent/s", trace], 1,
                 E + r"--suppressions=/nonexistent/s: No such file or directory")


def case_agent_opts(a):
    """The leak options `run` hands to the agent, seen in the trace."""
    prog = leak_prog(a)
    h = a.heaptrail

    def doc(trace):
        rc, out, err = run([h, "report", "--json", trace])
        check(rc == 0, "report --json %s: %r" % (trace, err))
        return json.loads(out) if rc == 0 else {}

    rc, out, err, trace = run_traced(a, prog, opts=["--leak-check=no"])
    check(doc(trace).get("leak_check", 1) is None, "--leak-check=no: the agent ran no leak check")
    check("heaptrail: " not in err, "the agent knows leak_check: %r" % err)
    check(re.search(r"==\d+== For a detailed leak analysis, rerun with: --leak-check=full\n==\d+== \n"
                    r"==\d+== For lists of detected and suppressed errors, rerun with: -s\n", err) is not None,
          "--leak-check=no wording: %r" % err)
    rc, out, err, trace = run_traced(a, prog, opts=["--run-libc-freeres=no"])
    d = doc(trace)
    check(d.get("leak_check") and d["leak_check"]["freeres_run"] is False, "--run-libc-freeres=no reaches the agent")
    rc, out, err, trace = run_traced(a, prog, opts=["--run-libc-freeres=yes"])
    d = doc(trace)
    check(d.get("leak_check") and d["leak_check"]["freeres_run"] is True, "--run-libc-freeres=yes reaches the agent")
    for heur in ("none", "all", "stdstring,newarray"):
        rc, out, err, trace = run_traced(a, prog, opts=["--leak-check-heuristics=" + heur])
        check(rc == 0 and "heaptrail: " not in err and "LEAK SUMMARY:" in err,
              "--leak-check-heuristics=%s accepted by the agent: %r" % (heur, err))
    # --record=none: no events; totals from the agent's counters, in use from its leak check
    rc, out, err, trace = run_traced(a, prog, opts=["--record=none"])
    check(rc == 0 and "heaptrail: " not in err, "--record=none: %r" % err)
    check(re.search(r"==\d+==     in use at exit: 268 bytes in 5 blocks\n"
                    r"==\d+==   total heap usage: 5 allocs, 0 frees, 268 bytes allocated\n"
                    r"==\d+==           peak RSS: .*\n"
                    r"==\d+== \(no peak heap or anonymous mmap lines: --record=none records no events\)\n",
                    err) is not None, "--record=none summary: %r" % err)
    check("peak heap:" not in err and "LEAK SUMMARY:" in err, "no peak line, a leak summary")
    d = doc(trace)
    check(d.get("trace", {}).get("record") == "none" and d["summary"]["events"] == 0
          and d["end"]["agent_allocs"] == 5, "--record=none trace: %r" % d.get("end"))
    rc, out, err = run([h, "report", trace])
    check("a --record=none trace" in out and "total heap usage: 5 allocs, 0 frees, 268 bytes allocated" in out
          and "peak heap:" not in out, "report of a --record=none trace: %r" % out[:800])
    # --leak-check-signal: a check on SIGUSR1 and one at exit; the summary reports the last
    for sig in ("USR1", "SIGUSR1", "usr1", "10"):
        rc, out, err, trace = run_traced(a, prog, ["signal"], opts=["--leak-check-signal=" + sig])
        check(rc == 0 and "heaptrail: " not in err, "--leak-check-signal=%s: %r" % (sig, err))
        d = doc(trace)
        check(d.get("leak_check") and d["leak_check"]["checks"] == 2 and d["leak_check"]["reason"] == 0,
              "--leak-check-signal=%s: two checks, the exit one last: %r" % (sig, d.get("leak_check", {}).get("checks")))
    # the signal sent to heaptrail alone is forwarded to the program
    import signal
    import time
    trace = os.path.join(a.work, "fwd.htr")
    p = subprocess.Popen([a.heaptrail, "run", "-o", trace, "--leak-check-signal=USR1", prog, "wait"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=a.work)
    time.sleep(0.5)
    p.send_signal(signal.SIGUSR1)
    out, err = p.communicate(timeout=60)
    check(p.returncode == 0, "forwarded USR1: exit %d, %r" % (p.returncode, err))
    d = doc(trace)
    check(d.get("leak_check") and d["leak_check"]["checks"] == 2,
          "USR1 sent to heaptrail reached the program: %r" % d.get("leak_check", {}).get("checks"))
    # without the option SIGUSR1 kills the program, as it would without heaptrail
    rc, out, err, trace = run_traced(a, prog, ["signal"])
    check(rc == 128 + 10, "SIGUSR1 without --leak-check-signal: exit %d" % rc)


def case_misuse_report(a):
    """`heaptrail report`: a section for misuse errors and one for loss records; JSON lists errors."""
    prog = leak_prog(a)
    h = a.heaptrail
    rc, out, err, trace = run_traced(a, prog, ["double-free"])
    rc, out, err = run([h, "report", trace])
    check(rc == 0, "report: %r" % err)
    i, j = out.find("\nMISUSE ERRORS"), out.find("\nLEAK CHECK")
    check(0 < i < j, "sections MISUSE ERRORS then LEAK CHECK: %r" % out)
    check(re.search(r"\nInvalid free\(\) / delete / delete\[\] / realloc\(\)\n   at 0x[0-9A-F]+: main \(leak_kinds\.c:\d+\)\n",
                    out[i:j]) is not None, "the double free in its section: %r" % out[i:j])
    check("All heap blocks were freed -- no leaks are possible" in out[j:], "leak section: %r" % out[j:])
    check("ERROR SUMMARY: 1 errors from 1 contexts (suppressed: 0 from 0)" in out, "report's ERROR SUMMARY")
    rc, out, err = run([h, "report", "--json", trace])
    d = json.loads(out)
    e = d.get("errors")
    check(isinstance(e, list) and len(e) == 1, "json errors: %r" % e)
    if e:
        e = e[0]
        check(e["kind"] == "invalid_free" and e["address_class"] == "freed" and e["block"]["size"] == 10
              and e["free_function"] == "free" and e["alloc_function"] == "malloc"
              and e["context"] == 0 and e["first_in_context"] is True, "json error fields: %r" % e)
        check(int(e["address"], 16) == int(e["block"]["address"], 16), "address of the double free")
        for k in ("where", "alloc", "free"):
            st = e["stacks"][k]
            check(st and st[0]["function"] == "main" and st[0]["file"].endswith("leak_kinds.c")
                  and st[0]["line"] > 0, "json %s stack: %r" % (k, st[:1]))
    # loss records of a leaking run in the report
    rc, out, err, trace = run_traced(a, prog)
    rc, out, err = run([h, "report", trace])
    j = out.find("\nLEAK CHECK")
    check(j > 0 and "(none recorded" in out[out.find("\nMISUSE ERRORS"):j], "no misuse errors said: %r" % out)
    check(re.search(r"24 bytes in 1 blocks are definitely lost in loss record \d of 5\n"
                    r"   at 0x[0-9A-F]+: malloc \(in .*libheaptrail-preload\.so\)\n"
                    r"   by 0x[0-9A-F]+: make_lost \(leak_kinds\.c:\d+\)\n", out[j:]) is not None,
          "loss records in the report: %r" % out[j:])
    check("ERROR SUMMARY: 3 errors from 3 contexts (suppressed: 0 from 0)" in out[j:], "report counts full mode")
    d = json.loads(run([h, "report", "--json", trace])[1])
    check(d["errors"] == [] and d["leak_check"]["checks"] == 1, "json: no errors, one check")
    # injected failures and limit hits: one JSON entry per text report
    for opts, key, words in ((["--fail-every=2"], "faults", "Injected failure of malloc("),
                             (["--limit=16"], "limits", "Memory limit: malloc(")):
        rc, out, err, trace = run_traced(a, prog, ["clean"], opts=opts)
        n = err.count(words)
        d = json.loads(run([h, "report", "--json", trace])[1])
        lst = d.get(key, [])
        check(n > 0 and len(lst) == n and d["misuse"][key] == n, "%s: %d in the text, %r" % (key, n, lst))
        check(all(x["function"] == "malloc" and x["stack"] and x["stack"][0]["function"] == "main" for x in lst),
              "%s entries: %r" % (key, lst))


def case_nofile(a):
    """The soft RLIMIT_NOFILE is raised for symbolizing, not for the traced program."""
    import resource
    prog = leak_prog(a)
    h = a.heaptrail
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 64:
        print("hard RLIMIT_NOFILE %r: skipped" % hard, file=sys.stderr)
        sys.exit(SKIP)

    def low():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))

    trace = os.path.join(a.work, "sh.htr")
    p = subprocess.run([h, "run", "-o", trace, "sh", "-c", "ulimit -Sn"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, preexec_fn=low, timeout=60)
    check(p.stdout.decode().strip() == "64", "the program keeps its soft limit: %r" % p.stdout)
    strace = shutil.which("strace")
    if not strace:
        print("strace not installed: the raise itself is not observed", file=sys.stderr)
        return
    rc, out, err, trace = run_traced(a, prog)
    for cmd in (["report", trace], ["leaks", trace]):
        p = subprocess.run([strace, "-f", "-e", "trace=prlimit64,setrlimit", h] + cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, preexec_fn=low, timeout=60)
        err = p.stderr.decode(errors="replace")
        check(re.search(r"(prlimit64\(0, RLIMIT_NOFILE, \{rlim_cur=%d, rlim_max=%d\}|"
                        r"setrlimit\(RLIMIT_NOFILE, \{rlim_cur=%d, rlim_max=%d\})" % (hard, hard, hard, hard), err)
              is not None, "%s raises the soft limit to %d: %r" % (cmd[0], hard, err[-800:]))


def case_timing(a):
    """The event clock: a peak the program times itself lands at that time in the summary and
    the report (the agent starts a little before main, so a little later there)."""
    need_agent(a)
    prog = os.path.join(a.progs, "htr-cli-timing")
    rc, out, err, trace = run_traced(a, prog)
    check(rc == 0, "timing ran: %d %r" % (rc, err))
    m = re.search(r"peak_at_ms ([0-9.]+)", out)
    p = re.search(r"peak heap: 1,0[0-9,]+ bytes in \d+ blocks at ([0-9.]+) (ms|s)\n", err)
    check(m is not None and p is not None, "program's and summary's peak times: %r %r" % (out, err))
    if m and p:
        at = float(m.group(1))
        got = float(p.group(1)) * (1000.0 if p.group(2) == "s" else 1.0)
        check(at >= 600 and at - 2 <= got <= at + 200,
              "peak at %.3f ms by the program's clock, %.3f ms in the summary" % (at, got))
    rc, out, err = run([a.heaptrail, "report", trace])
    check(rc == 0, "report of the timing trace: %r" % err)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heaptrail", required=True)
    ap.add_argument("--mktrace", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--progs")
    ap.add_argument("--agent")
    ap.add_argument("--leak-cases")
    ap.add_argument("case")
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)
    if a.progs:
        a.progs = os.path.abspath(a.progs)   # the programs run from the work directory
    os.makedirs(a.work, exist_ok=True)
    rc = subprocess.run([a.mktrace, a.work]).returncode
    if rc != 0:
        print("mktrace failed", file=sys.stderr)
        return 1
    globals()["case_" + a.case](a)
    if failures:
        print("%d check(s) failed" % len(failures), file=sys.stderr)
        return 1
    print("ok", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
