#!/usr/bin/env bash
# run.sh - run every cmocka test binary in a folder; print per-binary results and a closing
# "N passed, N failed, N skipped" line; exit non-zero if anything failed.
set -u
dir=${1:?usage: tests/run.sh DIR}
passed=0 failed=0 skipped=0 bad_bins=()
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d|*.o) continue ;; esac
    out=$(mktemp)
    "$t" >"$out" 2>&1 </dev/null
    rc=$?
    cat "$out"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
    if [ $rc -ne 0 ] && [ -z "$f" ]; then
        failed=$((failed + 1)); bad_bins+=("$(basename "$t") (exit $rc)")
    elif [ $rc -ne 0 ]; then
        bad_bins+=("$(basename "$t")")
    fi
    rm -f "$out"
done
[ ${#bad_bins[@]} -gt 0 ] && echo "failing: ${bad_bins[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
