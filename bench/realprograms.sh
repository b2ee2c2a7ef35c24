#!/usr/bin/env bash
# Real-program benchmark: sqlite3, python3 and gcc's cc1, each native vs heaptrail vs heaptrack,
# measured side by side (interleaved repetitions, medians); prints a markdown table.
#
# Usage: bench/realprograms.sh BUILD_DIR [--reps N] [--only sqlite|python|cc1|cc1real]
#   heaptrail is BUILD_DIR/bin/heaptrail; inputs, traces and logs go to BUILD_DIR/bench/real/
#   (BUILD_DIR/bench/real-NAME/ with --only NAME).
# Environment: HTR_OPTS (extra options for `heaptrail run`, e.g. --unwind=cached),
#   MEM_CAP (address-space cap for traced runs, default 8G), TIME_CAP (seconds, default 900),
#   SQL_ROWS (200000), PY_ROUNDS (30), CC1_FUNCS (155), CC1 (path of cc1),
#   CC1_REAL_SOURCE (a big real C file, e.g. the sqlite3.c amalgamation: adds program cc1real,
#   cc1 -O2 on it after `gcc -E -P`; slow, minutes per run), COUNT_ALLOCS (1; 0 skips the
#   alloc_count.so sizing run, which costs one more native run per program).
#   CONFIGS (default "native heaptrail heaptrail-dwarf heaptrail-cached heaptrack"; native first).
# Every traced run is capped with `prlimit --as=MEM_CAP timeout TIME_CAP`, because heaptrack's
# interpreter has been seen to grow past 18 GB on cc1.  A tool run whose first repetition takes
# over 60 s is not repeated.  The table is also written to BUILD_DIR/bench/real/realprograms-last.md.
set -u

die() { echo "bench/realprograms.sh: error: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: bench/realprograms.sh BUILD_DIR [--reps N] [--only NAME]"
BUILD_ARG=$1; shift
REPS=3
ONLY=""
while [ $# -gt 0 ]; do
    case $1 in
        --reps) REPS=$2; shift ;;
        --only) ONLY=$2; shift ;;
        *) die "unknown argument '$1'" ;;
    esac
    shift
done

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC_DIR/bench/common.sh"
mkdir -p "$BUILD_ARG" || die "cannot create $BUILD_ARG"
BUILD=$(cd "$BUILD_ARG" && pwd)
OUT=$BUILD/bench/real${ONLY:+-$ONLY}   # --only runs keep their own directory
LOGS=$OUT/logs
TRACES=$OUT/traces
mkdir -p "$LOGS" "$TRACES" || die "cannot create $OUT"
rm -f "$TRACES"/* "$LOGS"/*

MEM_CAP=${MEM_CAP:-8G}
TIME_CAP=${TIME_CAP:-900}
SQL_ROWS=${SQL_ROWS:-200000}
PY_ROUNDS=${PY_ROUNDS:-30}
CC1_FUNCS=${CC1_FUNCS:-155}
CC1=${CC1:-$(gcc -print-prog-name=cc1 2>/dev/null)}
HTR_OPTS=${HTR_OPTS:-}
CC1_REAL_SOURCE=${CC1_REAL_SOURCE:-}
COUNT_ALLOCS=${COUNT_ALLOCS:-1}
PY=/usr/bin/python3
HTRAIL=$BUILD/bin/heaptrail
TIME=/usr/bin/time
CAP=(prlimit "--as=$(numfmt --from=iec "$MEM_CAP")" timeout "$TIME_CAP")

[ -x $TIME ] || die "$TIME is needed (apt-get install time)"
[ -x "$PY" ] || die "$PY is needed"
command -v sqlite3 >/dev/null || die "sqlite3 is needed"
[ -x "$CC1" ] || die "cc1 not found (set CC1)"

# ---- inputs ---------------------------------------------------------------------------------------
"${CC:-cc}" -O2 -shared -fPIC -o "$OUT/alloc_count.so" "$SRC_DIR/bench/alloc_count.c" ||
    die "building alloc_count.so failed"
"$PY" - "$SQL_ROWS" >"$OUT/insert.sql" <<'EOF' || die "generating insert.sql failed"
import random, sys
rows = int(sys.argv[1]); rng = random.Random(7); w = sys.stdout.write
w("BEGIN;\nCREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, note TEXT);\n")
w("CREATE INDEX t_name ON t(name);\n")
for i in range(rows):
    w("INSERT INTO t VALUES(%d,'item%07d',%d,%.2f,'%s');\n"
      % (i, rng.randrange(10**7), rng.randrange(1000), rng.random() * 1000, "x" * rng.randrange(60)))
w("COMMIT;\nSELECT count(*), sum(qty) FROM t;\n")
EOF
"$PY" "$SRC_DIR/bench/gen_cfile.py" "$CC1_FUNCS" >"$OUT/big.c" || die "generating big.c failed"
PROGRAMS="sqlite python cc1"
if [ -n "$CC1_REAL_SOURCE" ]; then
    gcc -E -P "$CC1_REAL_SOURCE" -o "$OUT/real.i" || die "preprocessing $CC1_REAL_SOURCE failed"
    PROGRAMS="$PROGRAMS cc1real"
fi
[ -n "$ONLY" ] && PROGRAMS=$ONLY
declare -A DESC=(
    [sqlite]="sqlite3 $(sqlite3 --version | cut -d' ' -f1): $SQL_ROWS-row INSERT script in one transaction, indexed table, fresh db"
    [python]="$("$PY" --version) PYTHONMALLOC=malloc, bench/py_churn.py $PY_ROUNDS (dict/list/string churn)"
    [cc1]="gcc $(gcc -dumpfullversion 2>/dev/null) cc1 -O2 on a generated $CC1_FUNCS-function C file ($(stat -c %s "$OUT/big.c") bytes)"
    [cc1real]="gcc $(gcc -dumpfullversion 2>/dev/null) cc1 -fpreprocessed -O2 on \`gcc -E -P $CC1_REAL_SOURCE\` ($(stat -c %s "$OUT/real.i" 2>/dev/null) bytes)"
)
# The program's own command line, one word per line; stdin and env are set by run_one.
prog_cmd() {
    case $1 in
        sqlite) printf '%s\n' sqlite3 "$OUT/sqlite-$2.db" ;;
        python) printf '%s\n' "$PY" -S "$SRC_DIR/bench/py_churn.py" "$PY_ROUNDS" ;;
        cc1) printf '%s\n' "$CC1" -quiet -O2 "$OUT/big.c" -o "$OUT/cc1-$2.s" ;;
        cc1real) printf '%s\n' "$CC1" -quiet -fpreprocessed -O2 "$OUT/real.i" -o "$OUT/cc1real-$2.s" ;;
    esac
}
stdin_of() { if [ "$1" = sqlite ]; then echo "$OUT/insert.sql"; else echo /dev/null; fi; }
trace_of() {
    case $2 in
        native) echo "" ;;
        heaptrack) echo "$TRACES/$1-heaptrack.zst" ;;
        heaptrail) echo "$TRACES/$1.htr" ;;
        heaptrail-cached) echo "$TRACES/$1-cached.htr" ;;
        heaptrail-dwarf) echo "$TRACES/$1-dwarf.htr" ;;
    esac
}
# Full command line of a configuration, one word per line.
cmd_of() {
    local p=$1 cfg=$2
    case $cfg in
        native) prog_cmd "$p" "$cfg" ;;
        heaptrack) printf '%s\n' "${CAP[@]}" heaptrack -o "$TRACES/$p-heaptrack"; prog_cmd "$p" "$cfg" ;;
        heaptrail)
            printf '%s\n' "${CAP[@]}" "$HTRAIL" run -o "$(trace_of "$p" heaptrail)"
            # shellcheck disable=SC2086
            [ -n "$HTR_OPTS" ] && printf '%s\n' $HTR_OPTS
            printf '%s\n' --
            prog_cmd "$p" "$cfg" ;;
        heaptrail-dwarf|heaptrail-cached)
            printf '%s\n' "${CAP[@]}" "$HTRAIL" run -o "$(trace_of "$p" "$cfg")"
            printf '%s\n' "--unwind=${cfg#heaptrail-}"
            # shellcheck disable=SC2086
            [ -n "$GUARD_OFF" ] && printf '%s\n' $GUARD_OFF
            # shellcheck disable=SC2086
            [ -n "$HTR_OPTS" ] && printf '%s\n' $HTR_OPTS
            printf '%s\n' --
            prog_cmd "$p" "$cfg" ;;
    esac
}
show_cmd() {   # the command as a shell line, with env and stdin, for the results
    local env="" in
    [ "$1" = python ] && env="PYTHONMALLOC=malloc "
    in=$(stdin_of "$1")
    mapfile -t c < <(cmd_of "$1" "$2")
    echo "$env${c[*]}$([ "$in" != /dev/null ] && echo " < $in")"
}

# heaptrail: as a user runs it (its defaults, which include the guard's redzones and
# quarantine); recording alone (guard off), comparable to heaptrack, with each of
# --unwind=dwarf and --unwind=cached.
CONFIGS=${CONFIGS:-native heaptrail heaptrail-dwarf heaptrail-cached heaptrack}
declare -A AVAIL=([native]=1 [heaptrail]=0 [heaptrail-dwarf]=0 [heaptrail-cached]=0 [heaptrack]=0)
probe() {
    # shellcheck disable=SC2068
    "$HTRAIL" run -o "$TRACES/probe.htr" $@ -- /bin/true >"$LOGS/probe.out" 2>&1 &&
        ! grep -qi 'unknown option\|ignored' "$LOGS/probe.out"
}
GUARD_OFF=""
if [ -x "$HTRAIL" ]; then
    AVAIL[heaptrail]=1
    probe --redzone=0 --quarantine=0 && GUARD_OFF="--redzone=0 --quarantine=0"
    probe --unwind=dwarf $GUARD_OFF && AVAIL[heaptrail-dwarf]=1
    probe --unwind=cached $GUARD_OFF && AVAIL[heaptrail-cached]=1
fi
rm -f "$TRACES/probe.htr"
command -v heaptrack >/dev/null && AVAIL[heaptrack]=1
declare -A TIMES RSS CPU FRSS FAILED EXPECT NRUNS SLOW

# Run one configuration once: wall time, max RSS, exit status, output compared with native's.
run_one() {
    local p=$1 cfg=$2 t0 t1 rc trace got
    mapfile -t cmd < <(cmd_of "$p" "$cfg")
    trace=$(trace_of "$p" "$cfg")
    [ -n "$trace" ] && rm -f "$trace"
    rm -f "$OUT/sqlite-$cfg.db" "$OUT/$p-$cfg.s"
    t0=$EPOCHREALTIME
    PYTHONMALLOC=malloc $TIME -f '%M %U %S' -o "$LOGS/$p-$cfg.rss" "${cmd[@]}" \
        <"$(stdin_of "$p")" >"$LOGS/$p-$cfg.out" 2>"$LOGS/$p-$cfg.err"
    rc=$?
    t1=$EPOCHREALTIME
    NRUNS[$p.$cfg]=$((${NRUNS[$p.$cfg]:-0} + 1))
    case $p in
        cc1|cc1real) got=$(md5sum <"$OUT/$p-$cfg.s" 2>/dev/null | cut -c1-32) ;;
        *) got=$(grep -E '^[0-9|]+$' "$LOGS/$p-$cfg.out" | tail -n 1) ;;
    esac
    local secs rss cpu
    secs=$(elapsed "$t0" "$t1")
    rss=$(tail -n 1 "$LOGS/$p-$cfg.rss" | cut -d' ' -f1)
    cpu=$(tail -n 1 "$LOGS/$p-$cfg.rss" | awk '{ printf "%.2f", $2 + $3 }')
    if [ $rc != 0 ]; then
        FAILED[$p.$cfg]="exit $rc after $secs s$([ $rc = 124 ] && echo ", timeout ${TIME_CAP}s")"
        FRSS[$p.$cfg]=$rss
        cp "$LOGS/$p-$cfg.err" "$LOGS/$p-$cfg.failed.err"
    elif [ "$cfg" = native ]; then
        EXPECT[$p]=$got
        TIMES[$p.$cfg]+=" $secs"; RSS[$p.$cfg]+=" $rss"; CPU[$p.$cfg]+=" $cpu"
    elif [ "$got" != "${EXPECT[$p]:-}" ]; then
        FAILED[$p.$cfg]="output '$got' differs from native's '${EXPECT[$p]:-}'"
    else
        TIMES[$p.$cfg]+=" $secs"; RSS[$p.$cfg]+=" $rss"; CPU[$p.$cfg]+=" $cpu"
    fi
    awk -v s="$secs" 'BEGIN { exit !(s > 60) }' && SLOW[$p.$cfg]=1
    return 0
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
DATE_BEFORE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
declare -A NALLOC
for p in $PROGRAMS; do
    NALLOC[$p]="not counted"
    [ "$COUNT_ALLOCS" = 1 ] || continue
    mapfile -t cmd < <(prog_cmd "$p" count)
    rm -f "$OUT/sqlite-count.db"
    PYTHONMALLOC=malloc LD_PRELOAD=$OUT/alloc_count.so "${cmd[@]}" <"$(stdin_of "$p")" \
        >/dev/null 2>"$LOGS/$p-count.err"
    NALLOC[$p]=$(grep '^alloc_count:' "$LOGS/$p-count.err" | awk '{ s += $NF } END { print s + 0 }')
done
for ((rep = 1; rep <= REPS; rep++)); do
    for p in $PROGRAMS; do
        for cfg in $CONFIGS; do
            [ "${AVAIL[$cfg]}" = 1 ] || continue
            [ -n "${FAILED[$p.$cfg]:-}" ] && continue
            [ -n "${SLOW[$p.$cfg]:-}" ] && continue
            echo "bench/realprograms.sh: repetition $rep/$REPS: $p $cfg" >&2
            run_one "$p" "$cfg"
        done
    done
done

# ---- analysis of the traces: heaptrail report and heaptrack_print, once each, timed --------------
declare -A ATIME AFAIL
# heaptrail report reads the trace of the first heaptrail configuration that ran.
REPORT_CFG=""
for cfg in $CONFIGS; do
    case $cfg in heaptrail*) [ "${AVAIL[$cfg]}" = 1 ] && { REPORT_CFG=$cfg; break; } ;; esac
done
analyse() {
    local p=$1 tool=$2 f t0 t1 rc
    if [ "$tool" = report ]; then f=$(trace_of "$p" "$REPORT_CFG"); else f=$(trace_of "$p" heaptrack); fi
    [ -f "$f" ] || return 0
    t0=$EPOCHREALTIME
    if [ "$tool" = report ]; then
        "${CAP[@]}" "$HTRAIL" report "$f" >"$LOGS/$p-report.out" 2>"$LOGS/$p-report.err"
    else
        "${CAP[@]}" heaptrack_print "$f" >"$LOGS/$p-heaptrack_print.out" 2>"$LOGS/$p-heaptrack_print.err"
    fi
    rc=$?
    t1=$EPOCHREALTIME
    ATIME[$p.$tool]=$(elapsed "$t0" "$t1")
    [ $rc != 0 ] && AFAIL[$p.$tool]="exit $rc"
    return 0
}
for p in $PROGRAMS; do
    [ -n "$REPORT_CFG" ] && analyse "$p" report
    [ "${AVAIL[heaptrack]}" = 1 ] && analyse "$p" heaptrack_print
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
DATE_AFTER=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

# ---- the table -------------------------------------------------------------------------------------
cell() {
    local key=$1.$2
    if [ "${AVAIL[$2]}" != 1 ]; then echo "n/a (not built/installed)"
    elif [ -n "${FAILED[$key]:-}" ]; then echo "FAIL ($(echo "${FAILED[$key]}" | tr -d '|'))"
    else median ${TIMES[$key]:-}; fi
}
size_of() { local f; f=$(trace_of "$1" "$2"); [ -n "$f" ] && [ -f "$f" ] && stat -c %s "$f"; }
{
    echo "### Real programs: wall time, median of up to $REPS interleaved runs"
    echo
    echo "Started $DATE_BEFORE (load $LOAD_BEFORE), finished $DATE_AFTER (load $LOAD_AFTER); $(nproc) CPUs."
    echo "Source: $(git_rev); heaptrail binary built $(stat -c %y "$HTRAIL" 2>/dev/null | cut -d. -f1 || echo never)."
    echo "Traced runs capped with \`${CAP[*]}\`.${HTR_OPTS:+ heaptrail options: \`$HTR_OPTS\`.}"
    echo
    for p in $PROGRAMS; do echo "- **$p**: ${DESC[$p]}; calls to allocation functions (bench/alloc_count.so): ${NALLOC[$p]}."; done
    echo
    echo "| program | tool | runs | wall median (s) | x native | heaptrail / heaptrack | CPU median (s) | CPU x native | max RSS (MiB) | RSS x native | trace size | analysis (s) |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for p in $PROGRAMS; do
        t_nat=$(cell "$p" native); t_ht=$(cell "$p" heaptrack)
        r_nat=$(median ${RSS[$p.native]:-}); c_nat=$(median ${CPU[$p.native]:-})
        for cfg in $CONFIGS; do
            t=$(cell "$p" "$cfg")
            rss=$(median ${RSS[$p.$cfg]:-}); cpu=$(median ${CPU[$p.$cfg]:-})
            # A failed run still had a max RSS: show it, it is often why it failed.
            [ "$rss" = n/a ] && [ -n "${FRSS[$p.$cfg]:-}" ] && rss=${FRSS[$p.$cfg]}
            sz=$(size_of "$p" "$cfg")
            an=""
            case $cfg in
                "$REPORT_CFG") an=${ATIME[$p.report]:-}; [ -n "${AFAIL[$p.report]:-}" ] && an="FAIL (${AFAIL[$p.report]}) after $an" ;;
                heaptrack) an=${ATIME[$p.heaptrack_print]:-}; [ -n "${AFAIL[$p.heaptrack_print]:-}" ] && an="FAIL (${AFAIL[$p.heaptrack_print]}) after $an" ;;
            esac
            vs=""; case $cfg in heaptrail*) vs=$(ratio "$t" "$t_ht") ;; esac
            echo "| $p | $cfg | ${NRUNS[$p.$cfg]:-0} | $t | $(ratio "$t" "$t_nat") | $vs | $cpu | $(ratio "$cpu" "$c_nat") |" \
                 "$(awk -v k="$rss" 'BEGIN { if (k ~ /^[0-9.]+$/) printf "%.1f", k / 1024; else print "n/a" }') |" \
                 "$(ratio "$rss" "$r_nat") | $([ -n "$sz" ] && human "$sz") | $an |"
        done
    done
    echo
    echo "Analysis: \`heaptrail report TRACE\` on the $REPORT_CFG row, \`heaptrack_print TRACE\` on the heaptrack row,"
    echo "output to a file, one run each.  Max RSS: largest single process of the run (/usr/bin/time %M;"
    echo "for a failed run, that run's).  CPU: user+sys of the run and its waited-for children."
    echo "heaptrail = \`heaptrail run\` with its defaults (guard on: redzones and quarantine);"
    echo "heaptrail-dwarf, heaptrail-cached = recording alone (--unwind=dwarf or cached, ${GUARD_OFF:-guard options not accepted}),"
    echo "the rows to set against heaptrack, which only records."
    echo
    echo "### Commands"
    echo
    echo '```'
    for p in $PROGRAMS; do
        for cfg in $CONFIGS; do [ "${AVAIL[$cfg]}" = 1 ] && show_cmd "$p" "$cfg"; done
        [ -n "$REPORT_CFG" ] && echo "${CAP[*]} $HTRAIL report $(trace_of "$p" "$REPORT_CFG")"
        [ "${AVAIL[heaptrack]}" = 1 ] && echo "${CAP[*]} heaptrack_print $(trace_of "$p" heaptrack)"
    done
    echo '```'
    for p in $PROGRAMS; do
        for cfg in heaptrail heaptrail-dwarf heaptrail-cached heaptrack; do
            f=$LOGS/$p-$cfg.err
            [ -f "$LOGS/$p-$cfg.failed.err" ] && f=$LOGS/$p-$cfg.failed.err
            [ -f "$f" ] || continue
            if [ -n "${FAILED[$p.$cfg]:-}" ]; then
                echo; echo "FAIL $p / $cfg: ${FAILED[$p.$cfg]}; last lines of stderr ($f):"
                echo '```'; tail -n 12 "$f"; echo '```'
            elif [ "$cfg" != heaptrack ] && grep -q 'total heap usage' "$f"; then
                echo; echo "$cfg's own summary for $p:$(grep -m1 'total heap usage' "$f" | sed 's/^==[0-9]*==//' | tr -s ' ')"
            elif [ "$cfg" = heaptrack ] && grep -q 'allocations:' "$f"; then
                echo; echo "heaptrack's own summary for $p: $(grep -E 'allocations:' "$f" | tr -s ' \t' ' ' | paste -sd';')"
            fi
        done
        for tool in report heaptrack_print; do
            [ -n "${AFAIL[$p.$tool]:-}" ] || continue
            echo; echo "FAIL $p / $tool: ${AFAIL[$p.$tool]}; last lines of stderr ($LOGS/$p-$tool.err):"
            echo '```'; tail -n 12 "$LOGS/$p-$tool.err"; echo '```'
        done
    done
} | tee "$OUT/realprograms-last.md"
