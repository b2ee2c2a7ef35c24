# Shell helpers shared by bench/run.sh and bench/realprograms.sh (sourced, not run):
# wall-time arithmetic, medians, ratios, verdicts and byte formatting; all print to stdout.

# Seconds between two $EPOCHREALTIME stamps, 3 decimals.
elapsed() {
    local a=${1/./} b=${2/./}
    local us=$((10#$b - 10#$a))
    printf '%d.%03d' $((us / 1000000)) $(((us % 1000000) / 1000))
}
median() {
    [ $# -gt 0 ] || { echo "n/a"; return; }
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) print "n/a";
              else if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2];
              else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0 || a ~ /[a-z]/ || b ~ /[a-z]/) print "n/a"; else printf "%.2f\n", a / b }'; }
verdict() { awk -v r="$1" -v lim="$2" 'BEGIN { if (r == "n/a" || r == "") print "not measured"; else print (r + 0 <= lim + 0) ? "met" : "NOT met" }'; }
human() { awk -v b="$1" 'BEGIN { if (b == "") { print "n/a"; exit }
    if (b >= 1048576) printf "%.1f MiB\n", b / 1048576; else if (b >= 1024) printf "%.1f KiB\n", b / 1024;
    else printf "%d B\n", b }'; }

# The commit the tree is at, and whether src/ has uncommitted changes (a build tree is built
# from the working tree, so results must say which code they measured).
git_rev() {
    local rev dirty
    rev=$(git -C "$SRC_DIR" rev-parse --short HEAD 2>/dev/null) || { echo "not a git tree"; return; }
    dirty=$(git -C "$SRC_DIR" status --porcelain -- src include 2>/dev/null | wc -l)
    if [ "$dirty" -gt 0 ]; then echo "commit $rev + $dirty uncommitted file(s) in src/ include/"
    else echo "commit $rev, src/ and include/ clean"; fi
}
