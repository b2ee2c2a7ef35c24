#!/bin/sh
# The heaptrail demo (`make demo`): runs the bundled example program (examples/demo.c, built as
# BUILD/bin/heaptrail-demo) under `heaptrail run`, then prints `heaptrail report` of its trace.
# Builds nothing itself.  usage: scripts/demo.sh BUILD_DIR
set -eu
build=${1:?usage: scripts/demo.sh BUILD_DIR}
heaptrail=$build/bin/heaptrail
demo=$build/bin/heaptrail-demo
for f in "$heaptrail" "$demo"; do
    if [ ! -x "$f" ]; then
        echo "demo: $f is missing: build first (make build)" >&2
        exit 1
    fi
done
out=$(mktemp -d "${TMPDIR:-/tmp}/heaptrail-demo.XXXXXX")
trace=$out/demo.htr
echo "\$ heaptrail run -o $trace -- $demo"
status=0
"$heaptrail" run -o "$trace" -- "$demo" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
    echo "demo: heaptrail run exited with status $status" >&2
    exit "$status"
fi
echo
echo "\$ heaptrail report --top 3 $trace"
"$heaptrail" report --top 3 "$trace"
echo
echo "(trace kept in $trace; try: $heaptrail report --json $trace)"
