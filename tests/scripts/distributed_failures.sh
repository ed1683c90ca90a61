#!/usr/bin/env bash
# A failing rank ends the whole data-parallel run: run by CTest (distributed.rank_failures) as
#   distributed_failures.sh PROGRAM LAUNCH...
# where LAUNCH is the launcher's command up to the rank count (cmake/PolyalpacaMpi.cmake). For each of the hidden
# cases of tests/distributed/data_parallel.cpp, rank 1 fails in its third step while rank 0 trains on: every rank
# must end, the launcher non-zero, within 60 s; an error one rank meets is printed once, with that rank's message.
set -uo pipefail
program=$1
shift
launch=("$@")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

run_case() {  # case-tag -> sets rc, seconds; output in $work/out
    local start=$SECONDS
    timeout 120 "${launch[@]}" 2 "$program" "[$1]" > "$work/out" 2>&1
    rc=$?
    seconds=$((SECONDS - start))
}

for case in .rank_killed .rank_error; do
    run_case "$case"
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || [ "$seconds" -gt 60 ]; then
        echo "FAIL: [$case]: the launcher returned $rc after ${seconds} s (want non-zero within 60 s)"
        cat "$work/out"
        failed=1
        continue
    fi
    echo "[$case]: every rank ended, the launcher returned $rc after ${seconds} s"
    if [ "$case" = .rank_error ]; then
        count=$(grep -c 'rank 1 of 2: shard.jsonl:3: a record without "output"' "$work/out")
        if [ "$count" -ne 1 ]; then
            echo "FAIL: [$case]: rank 1's message appears $count times (want once):"
            cat "$work/out"
            failed=1
        fi
    fi
done
exit "$failed"
