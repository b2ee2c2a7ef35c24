#!/bin/sh
# Judges one misuse program against the verdict stated in its first comment.
#   check_misuse.sh RUNNER PROGRAM SOURCE
# RUNNER "valgrind" (or a path ending in /valgrind): memcheck runs PROGRAM and must agree with
# the source's "memcheck:" line. Any other RUNNER is a command prefix that runs PROGRAM under
# heaptrail and prints the text report (render/errors.c wording) on stdout or stderr; it gets
# the source's "options:" line before PROGRAM and must agree with the "heaptrail:" line.
# Verdict keys: errors= contexts= (from ERROR SUMMARY), invalid-write= invalid-read=
# invalid-free= mismatched-free= overrun= underrun= write-after-free= fault= limit= (number of
# reports of that kind), offset= length= (first "Damaged:" line), exit= (status, default 0).
# Exit: 0 agrees, 1 disagrees (the run's output is shown), 77 no verdict for this runner.
set -u
if [ $# -ne 3 ]; then
    echo "usage: check_misuse.sh RUNNER PROGRAM SOURCE" >&2
    exit 2
fi
runner=$1 prog=$2 src=$3
first_word=${runner%% *}
case "$(basename "$first_word")" in
    valgrind) mode=memcheck ;;
    *) mode=heaptrail ;;
esac

verdict=$(sed -n "s/^ \* $mode: *//p" "$src" | head -n 1)
if [ -z "$verdict" ]; then
    echo "SKIP: $(basename "$src") states no $mode verdict"
    exit 77
fi
options=$(sed -n 's/^ \* options: *//p' "$src" | head -n 1)

out=$(mktemp)
trap 'rm -f "$out"' EXIT
if [ $mode = memcheck ]; then
    # shellcheck disable=SC2086
    $runner --leak-check=no --num-callers=12 "$prog" >"$out" 2>&1
else
    # shellcheck disable=SC2086
    $runner $options "$prog" >"$out" 2>&1
fi
status=$?

count() { grep -c -F -e "$1" "$out"; }
summary=$(grep -o 'ERROR SUMMARY: [0-9]* errors from [0-9]* contexts' "$out" | tail -n 1)
# heaptrail's report may leave the summary out when the trace holds no misuse record at all
if [ -z "$summary" ] && [ $mode = heaptrail ] && ! grep -q -e 'Invalid ' -e 'Mismatched ' "$out"; then
    summary="ERROR SUMMARY: 0 errors from 0 contexts"
fi
fail=0
want_exit=0
for kv in $verdict; do
    key=${kv%%=*} want=${kv#*=}
    case $key in
        errors)   got=$(echo "$summary" | sed -n 's/ERROR SUMMARY: \([0-9]*\) errors.*/\1/p') ;;
        contexts) got=$(echo "$summary" | sed -n 's/.* from \([0-9]*\) contexts/\1/p') ;;
        invalid-write)    got=$(count "Invalid write of size") ;;
        invalid-read)     got=$(count "Invalid read of size") ;;
        invalid-free)     got=$(count "Invalid free() / delete / delete[] / realloc()") ;;
        mismatched-free)  got=$(count "Mismatched free() / delete / delete []") ;;
        overrun)          got=$(count "Invalid write after the end of a block") ;;
        underrun)         got=$(count "Invalid write before the start of a block") ;;
        write-after-free) got=$(count "Invalid write to a freed block") ;;
        fault)            got=$(count "Injected failure of") ;;
        limit)            got=$(count "Memory limit:") ;;
        offset) got=$(sed -n 's/.* Damaged: [0-9]* bytes* at offset \(-*[0-9]*\).*/\1/p' "$out" | head -n 1) ;;
        length) got=$(sed -n 's/.* Damaged: \([0-9]*\) byte.*/\1/p' "$out" | head -n 1) ;;
        exit) want_exit=$want; continue ;;
        *) echo "$(basename "$src"): unknown verdict key '$key'" >&2; fail=1; continue ;;
    esac
    if [ "$got" != "$want" ]; then
        echo "$(basename "$src") under $mode: $key is '${got}', the verdict says '$want'"
        fail=1
    fi
done
if [ "$status" != "$want_exit" ]; then
    echo "$(basename "$src") under $mode: exit status $status, the verdict says $want_exit"
    fail=1
fi
if [ $fail -ne 0 ]; then
    echo "---- output of: $runner ${options:+$options }$prog"
    cat "$out"
    exit 1
fi
echo "ok: $(basename "$src") under $mode: $verdict"
exit 0
