#!/usr/bin/env bash
# Overhead benchmark: native vs heaptrack vs heaptrail on bench/churn.c and bench/deep.c,
# measured side by side in one run (interleaved repetitions, medians); prints a markdown table.
#
# Usage: bench/run.sh BUILD_DIR [--quick]
#   BUILD_DIR   the CMake build tree; heaptrail is taken from BUILD_DIR/bin/heaptrail
#               (its agent from BUILD_DIR/lib), bench programs are built into BUILD_DIR/bench/.
#   --quick     3 repetitions instead of 7 (same workloads, so numbers stay comparable).
# Environment: REPS (repetitions), CHURN_N, DEEP_N (workload sizes), CC (compiler, default cc).
# The table is also written to BUILD_DIR/bench/overhead-last.md; logs go to BUILD_DIR/bench/logs/.
# A row that cannot run prints 'n/a' (tool or option absent) or 'FAIL' (non-zero exit or wrong
# checksum; the log holds stderr).  Never trust one absolute time on a shared machine: compare
# rows of the same run, and read the load averages printed with the table.
set -u

die() { echo "bench/run.sh: error: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: bench/run.sh BUILD_DIR [--quick]"
BUILD_ARG=$1; shift
QUICK=0
for arg in "$@"; do
    case $arg in
        --quick) QUICK=1 ;;
        *) die "unknown argument '$arg'" ;;
    esac
done

SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$BUILD_ARG" || die "cannot create $BUILD_ARG"
BUILD=$(cd "$BUILD_ARG" && pwd)
OUT=$BUILD/bench
LOGS=$OUT/logs
TRACES=$OUT/traces
mkdir -p "$OUT" "$LOGS" "$TRACES" || die "cannot create $OUT"
rm -f "$TRACES"/* "$LOGS"/*

if [ $QUICK = 1 ]; then REPS=${REPS:-3}; else REPS=${REPS:-7}; fi
CHURN_N=${CHURN_N:-5000000}
DEEP_N=${DEEP_N:-2000000}
CC=${CC:-cc}
HTRAIL=$BUILD/bin/heaptrail
AGENT=$BUILD/lib/libheaptrail-preload.so
TIME=/usr/bin/time

# ---- build the workloads (plain -O2 -g, and a frame-pointer twin for --unwind=fp) -------------
for wl in churn deep; do
    "$CC" -O2 -g -pthread -o "$OUT/$wl" "$SRC_DIR/bench/$wl.c" ||
        die "building $wl failed"
    "$CC" -O2 -g -fno-omit-frame-pointer -pthread -o "$OUT/$wl-fp" "$SRC_DIR/bench/$wl.c" ||
        die "building $wl-fp failed"
done
[ -x $TIME ] || die "$TIME is needed (apt-get install time)"

# ---- which tools and options exist --------------------------------------------------------------
HAVE_HEAPTRACK=0
command -v heaptrack >/dev/null && command -v heaptrack_print >/dev/null && HAVE_HEAPTRACK=1
HAVE_HTRAIL=0
[ -x "$HTRAIL" ] && HAVE_HTRAIL=1

# Configurations, in the order they run inside each repetition and appear in the table.
# Since the guard (redzones, quarantine) is on by default, the unwind and record=none rows
# turn it off when the CLI accepts --redzone=0 --quarantine=0, to time recording alone; the
# 'default' row is what a user gets from plain `heaptrail run`.
CONFIGS="native native-fp heaptrack default dwarf cached fp none guard"
declare -A OPTS=(
    [default]=""
    [dwarf]="--unwind=dwarf"
    [cached]="--unwind=cached"
    [fp]="--unwind=fp"
    [none]="--record=none"
    [guard]="--redzone=16 --quarantine=64M"
)
declare -A LABEL=(
    [native]="native"
    [native-fp]="native, -fno-omit-frame-pointer build"
    [heaptrack]="heaptrack (record + interpret)"
    [default]="heaptrail run, no options (defaults)"
    [dwarf]="heaptrail --unwind=dwarf"
    [cached]="heaptrail --unwind=cached"
    [fp]="heaptrail --unwind=fp (fp build)"
    [none]="heaptrail --record=none (leak check only)"
    [guard]="heaptrail --redzone=16 --quarantine=64M"
)
declare -A AVAIL
AVAIL[native]=1
AVAIL[native-fp]=1
AVAIL[heaptrack]=$HAVE_HEAPTRACK
# A heaptrail option counts as supported when a dry run with it exits 0 and nothing on the
# way (CLI or agent) says it ignored an unknown option.
probe_opts() {
    local opts=$1
    rm -f "$TRACES/probe.htr"
    # shellcheck disable=SC2086
    "$HTRAIL" run -o "$TRACES/probe.htr" $opts -- /bin/true >"$LOGS/probe.out" 2>&1 || return
    ! grep -qi 'unknown option\|ignored' "$LOGS/probe.out" || return 99
}
# The leak-check-only mode straight through the agent, for a CLI without --record.
NONE_VIA_AGENT=0
probe_agent_none() {
    [ -f "$AGENT" ] || return 1
    rm -f "$TRACES/probe.htr"
    env LD_PRELOAD="$AGENT" HEAPTRAIL_OPTIONS="record=none;out=$TRACES/probe.htr" /bin/true \
        >"$LOGS/probe-agent.out" 2>&1 || return
    ! grep -qi 'unknown\|ignored' "$LOGS/probe-agent.out"
}
declare -A WHY   # why a configuration is n/a
[ $HAVE_HEAPTRACK = 1 ] || WHY[heaptrack]="not installed"
GUARD_OFF=""
if [ $HAVE_HTRAIL = 1 ] && probe_opts "--redzone=0 --quarantine=0"; then
    GUARD_OFF="--redzone=0 --quarantine=0"
    for cfg in dwarf cached fp none; do
        OPTS[$cfg]+=" $GUARD_OFF"
        LABEL[$cfg]+=", guard off"
    done
fi
for cfg in default dwarf cached fp none guard; do
    AVAIL[$cfg]=0
    if [ $HAVE_HTRAIL = 0 ]; then WHY[$cfg]="not built"; continue; fi
    probe_opts "${OPTS[$cfg]}"; rc=$?
    if [ $rc = 0 ]; then
        AVAIL[$cfg]=1
    elif [ "$cfg" = guard ] && probe_opts "--redzone=16 --quarantine=67108864"; then
        OPTS[guard]="--redzone=16 --quarantine=67108864"
        AVAIL[$cfg]=1
    elif [ "$cfg" = none ] && probe_agent_none; then
        NONE_VIA_AGENT=1
        AVAIL[$cfg]=1
        LABEL[none]="heaptrail agent, HEAPTRAIL_OPTIONS=record=none (CLI has no --record yet)"
    else
        WHY[$cfg]="dry run exit $rc: $(grep -i -m1 'unknown\|ignored\|error' "$LOGS/probe.out" | tr -d '|' | sed 's/ (see.*//' | cut -c1-70)"
    fi
done
rm -f "$TRACES/probe.htr"

# The program a configuration runs (fp rows use the frame-pointer build).
prog_of() {
    case $2 in native-fp|fp) echo "$OUT/$1-fp" ;; *) echo "$OUT/$1" ;; esac
}
n_of() { if [ "$1" = churn ]; then echo "$CHURN_N"; else echo "$DEEP_N"; fi; }
# Trace file a configuration leaves (heaptrack appends .zst to its -o name).
trace_of() {
    case $2 in
        native|native-fp) echo "" ;;
        heaptrack) echo "$TRACES/$1-heaptrack.zst" ;;
        *) echo "$TRACES/$1-$2.htr" ;;
    esac
}
# Print the command line of a configuration, one word per line (for mapfile).
cmd_of() {
    local wl=$1 cfg=$2 prog n
    prog=$(prog_of "$wl" "$cfg"); n=$(n_of "$wl")
    case $cfg in
        native|native-fp) printf '%s\n' "$prog" "$n" ;;
        heaptrack) printf '%s\n' heaptrack -o "$TRACES/$wl-heaptrack" "$prog" "$n" ;;
        none)
            if [ $NONE_VIA_AGENT = 1 ]; then
                printf '%s\n' env "LD_PRELOAD=$AGENT" "HEAPTRAIL_OPTIONS=record=none;out=$(trace_of "$wl" "$cfg")" "$prog" "$n"
            else
                printf '%s\n' "$HTRAIL" run -o "$(trace_of "$wl" "$cfg")" ${OPTS[$cfg]} -- "$prog" "$n"
            fi ;;
        *)
            printf '%s\n' "$HTRAIL" run -o "$(trace_of "$wl" "$cfg")"
            # shellcheck disable=SC2086
            [ -n "${OPTS[$cfg]}" ] && printf '%s\n' ${OPTS[$cfg]}
            printf '%s\n' -- "$prog" "$n" ;;
    esac
}
. "$SRC_DIR/bench/common.sh"
declare -A TIMES RSS CPU FAILED EXPECT
# Run one configuration once; appends its wall time and max RSS, or marks it failed.
run_one() {
    local wl=$1 cfg=$2 t0 t1 rc cmd trace
    mapfile -t cmd < <(cmd_of "$wl" "$cfg")
    trace=$(trace_of "$wl" "$cfg")
    [ -n "$trace" ] && rm -f "$trace"
    t0=$EPOCHREALTIME
    $TIME -f '%M %U %S' -o "$LOGS/$wl-$cfg.rss" "${cmd[@]}" >"$LOGS/$wl-$cfg.out" 2>"$LOGS/$wl-$cfg.err"
    rc=$?
    t1=$EPOCHREALTIME
    local sum
    # Tools print their own lines on stdout (heaptrack does); the checksum is the all-digit one.
    sum=$(grep -E '^[0-9]+$' "$LOGS/$wl-$cfg.out" | tail -n 1)
    if [ $rc != 0 ]; then
        FAILED[$wl.$cfg]="exit $rc"
    elif [ -n "${EXPECT[$wl]:-}" ] && [ "$sum" != "${EXPECT[$wl]}" ]; then
        FAILED[$wl.$cfg]="checksum $sum, expected ${EXPECT[$wl]}"
    else
        TIMES[$wl.$cfg]+=" $(elapsed "$t0" "$t1")"
        RSS[$wl.$cfg]+=" $(tail -n 1 "$LOGS/$wl-$cfg.rss" | cut -d' ' -f1)"
        CPU[$wl.$cfg]+=" $(tail -n 1 "$LOGS/$wl-$cfg.rss" | awk '{ printf "%.2f", $2 + $3 }')"
    fi
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
DATE_BEFORE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
for wl in churn deep; do
    EXPECT[$wl]=$("$OUT/$wl" "$(n_of "$wl")") || die "native $wl failed"
done
echo "bench/run.sh: $REPS repetitions, churn N=$CHURN_N, deep N=$DEEP_N; load $LOAD_BEFORE" >&2
for ((rep = 1; rep <= REPS; rep++)); do
    echo "bench/run.sh: repetition $rep/$REPS" >&2
    for wl in churn deep; do
        for cfg in $CONFIGS; do
            [ "${AVAIL[$cfg]}" = 1 ] || continue
            [ -n "${FAILED[$wl.$cfg]:-}" ] && continue
            run_one "$wl" "$cfg"
        done
    done
done

# ---- analysis time: heaptrack_print vs heaptrail report, on the traces just written ------------
declare -A ATIMES AFAILED
# The heaptrail trace analysed is the first that exists among these configurations.
ANALYSED_CFG=""
for cfg in dwarf cached fp; do
    if [ "${AVAIL[$cfg]}" = 1 ] && [ -z "${FAILED[churn.$cfg]:-}${FAILED[deep.$cfg]:-}" ]; then
        ANALYSED_CFG=$cfg; break
    fi
done
analyse_one() {
    local wl=$1 tool=$2 t0 t1 rc
    t0=$EPOCHREALTIME
    if [ "$tool" = heaptrack_print ]; then
        heaptrack_print "$(trace_of "$wl" heaptrack)" >/dev/null 2>"$LOGS/$wl-$tool.err"
    else
        "$HTRAIL" report "$(trace_of "$wl" "$ANALYSED_CFG")" >/dev/null 2>"$LOGS/$wl-$tool.err"
    fi
    rc=$?
    t1=$EPOCHREALTIME
    if [ $rc != 0 ]; then AFAILED[$wl.$tool]="exit $rc"; else ATIMES[$wl.$tool]+=" $(elapsed "$t0" "$t1")"; fi
}
for ((rep = 1; rep <= REPS; rep++)); do
    for wl in churn deep; do
        if [ $HAVE_HEAPTRACK = 1 ] && [ -z "${FAILED[$wl.heaptrack]:-}" ] && [ -z "${AFAILED[$wl.heaptrack_print]:-}" ]; then
            analyse_one "$wl" heaptrack_print
        fi
        if [ -n "$ANALYSED_CFG" ] && [ -z "${AFAILED[$wl.report]:-}" ]; then
            analyse_one "$wl" report
        fi
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
DATE_AFTER=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

# ---- the table -----------------------------------------------------------------------------------
cell_time() {   # median wall time, or n/a / FAIL
    local key=$1.$2
    if [ "${AVAIL[$2]}" != 1 ]; then echo "n/a${WHY[$2]:+ (${WHY[$2]})}"
    elif [ -n "${FAILED[$key]:-}" ]; then echo "FAIL (${FAILED[$key]})"
    else median ${TIMES[$key]}; fi
}
trace_size() {  # bytes of the trace the last repetition left, or empty
    local f
    f=$(trace_of "$1" "$2")
    [ -n "$f" ] && [ -f "$f" ] && stat -c %s "$f"
}
{
    echo "### Overhead: wall time, median of $REPS interleaved runs"
    echo
    echo "Started $DATE_BEFORE (load $LOAD_BEFORE), finished $DATE_AFTER (load $LOAD_AFTER);"
    echo "Source: $(git_rev); heaptrail binary built $(stat -c %y "$HTRAIL" 2>/dev/null | cut -d. -f1 || echo never)."
    echo "$(nproc) CPUs; $(uname -sr); $("$CC" --version | head -n 1)."
    echo "Workloads: \`churn $CHURN_N\` (2 threads, random malloc/free, sizes 16..4096)," \
         "\`deep $DEEP_N\` (1 thread, every malloc 30 frames deep)."
    echo
    echo "| workload | configuration | wall median (s) | min..max (s) | x native | heaptrail / heaptrack | CPU median (s) | CPU x native | max RSS (MiB) | trace size | trace / heaptrack's |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for wl in churn deep; do
        t_native=$(cell_time "$wl" native)
        t_native_fp=$(cell_time "$wl" native-fp)
        t_heaptrack=$(cell_time "$wl" heaptrack)
        c_native=$(median ${CPU[$wl.native]:-}); c_native_fp=$(median ${CPU[$wl.native-fp]:-})
        s_heaptrack=$(trace_size "$wl" heaptrack)
        for cfg in $CONFIGS; do
            t=$(cell_time "$wl" "$cfg")
            range="" rss="" vs_ht="" size="" vs_size="" cpu="" xcpu=""
            if [ -n "${TIMES[$wl.$cfg]:-}" ]; then
                range=$(printf '%s\n' ${TIMES[$wl.$cfg]} | sort -g | sed -n '1p;$p' | paste -sd' ' | sed 's/ /../')
                rss=$(median ${RSS[$wl.$cfg]} | awk '{ printf "%.1f", $1 / 1024 }')
                cpu=$(median ${CPU[$wl.$cfg]})
                case $cfg in native-fp|fp) xcpu=$(ratio "$cpu" "$c_native_fp") ;; *) xcpu=$(ratio "$cpu" "$c_native") ;; esac
            fi
            case $cfg in native-fp|fp) base=$t_native_fp ;; *) base=$t_native ;; esac
            xnat=$(ratio "$t" "$base")
            case $cfg in native|native-fp|heaptrack) vs_ht="" ;; *) vs_ht=$(ratio "$t" "$t_heaptrack") ;; esac
            sz=$(trace_size "$wl" "$cfg")
            if [ -n "$sz" ]; then
                size=$(human "$sz")
                [ "$cfg" != heaptrack ] && vs_size=$(ratio "$sz" "$s_heaptrack")
            fi
            echo "| $wl | ${LABEL[$cfg]} | $t | $range | $xnat | $vs_ht | $cpu | $xcpu | $rss | $size | $vs_size |"
        done
    done
    echo
    echo "x native: against the native run of the same binary (fp rows: the -fno-omit-frame-pointer build)."
    echo "CPU: user+sys of the run and all its waited-for children (/usr/bin/time %U+%S): less"
    echo "sensitive to other load than wall time, but it hides time spent waiting."
    echo "Max RSS: the largest process of the run (for heaptrack usually heaptrack_interpret)."
    echo
    echo "### Analysis time: median of $REPS runs, output to /dev/null"
    echo
    echo "| workload | heaptrack_print FILE (s) | heaptrail report FILE (s) | heaptrack_print / heaptrail report |"
    echo "|---|---:|---:|---:|"
    for wl in churn deep; do
        if [ -n "${AFAILED[$wl.heaptrack_print]:-}" ]; then a="FAIL (${AFAILED[$wl.heaptrack_print]})"
        elif [ -n "${ATIMES[$wl.heaptrack_print]:-}" ]; then a=$(median ${ATIMES[$wl.heaptrack_print]})
        else a="n/a"; fi
        if [ -n "${AFAILED[$wl.report]:-}" ]; then b="FAIL (${AFAILED[$wl.report]})"
        elif [ -n "${ATIMES[$wl.report]:-}" ]; then b=$(median ${ATIMES[$wl.report]})
        else b="n/a"; fi
        echo "| $wl | $a | $b | $(ratio "$a" "$b") |"
    done
    [ -n "$ANALYSED_CFG" ] && echo && echo "heaptrail report read the traces of the '${LABEL[$ANALYSED_CFG]}' rows."
    echo
    echo "### Commands"
    echo
    echo '```'
    for wl in churn deep; do
        for cfg in $CONFIGS; do
            [ "${AVAIL[$cfg]}" = 1 ] || continue
            mapfile -t c < <(cmd_of "$wl" "$cfg")
            printf "%q " "${c[@]}"; echo
        done
        [ $HAVE_HEAPTRACK = 1 ] && echo "heaptrack_print $(trace_of "$wl" heaptrack) >/dev/null"
        [ -n "$ANALYSED_CFG" ] && echo "$HTRAIL report $(trace_of "$wl" "$ANALYSED_CFG") >/dev/null"
    done
    echo '```'
    # Failures: first lines of stderr, so the table is self-explaining.
    for key in "${!FAILED[@]}" "${!AFAILED[@]}"; do
        wl=${key%%.*} cfg=${key#*.}
        echo
        echo "FAIL $wl / $cfg: ${FAILED[$key]:-${AFAILED[$key]:-}}; stderr ($LOGS/$wl-$cfg.err):"
        echo '```'
        head -n 8 "$LOGS/$wl-$cfg.err"
        echo '```'
    done
    # Targets from the issue.
    echo
    echo "### Targets from the issue"
    echo
    for wl in churn deep; do
        t_ht=$(cell_time "$wl" heaptrack)
        s_ht=$(trace_size "$wl" heaptrack)
        for cfg in default dwarf cached fp; do
            [ -n "${TIMES[$wl.$cfg]:-}" ] || continue
            t=$(median ${TIMES[$wl.$cfg]})
            case $cfg in fp) base=$(cell_time "$wl" native-fp) ;; *) base=$(cell_time "$wl" native) ;; esac
            r=$(ratio "$t" "$t_ht"); x=$(ratio "$t" "$base"); rs=$(ratio "$(trace_size "$wl" "$cfg")" "$s_ht")
            echo "- $wl, ${LABEL[$cfg]}: wall $r x heaptrack's (target <= 0.5: $(verdict "$r" 0.5));" \
                 "$x x native (aim < 3: $(verdict "$x" 3));" \
                 "trace $rs x heaptrack's (target <= 1: $(verdict "$rs" 1))"
        done
        a=$(median ${ATIMES[$wl.heaptrack_print]:-}); b=$(median ${ATIMES[$wl.report]:-})
        r=$(ratio "$b" "$a")
        [ "$r" != n/a ] && echo "- $wl, report: $r x heaptrack_print's time (target <= 0.5: $(verdict "$r" 0.5))"
    done
} | tee "$OUT/overhead-last.md"
