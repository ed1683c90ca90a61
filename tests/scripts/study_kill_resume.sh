#!/usr/bin/env bash
# Kills the embedded quick study with SIGKILL in the middle of its first tuning run (after that run's first
# checkpoint, before its run_summary.json), then runs it again and checks that the run resumed from its checkpoint
# (the trainer says "(resumed)"), the pretraining was not redone, and the study finished with its report.
# usage: study_kill_resume.sh POLYALPACA_STUDY WORK_DIR
set -euo pipefail
study=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }
run_dir="$work/out/runs/full-monolingual-en-records-160"

( exec "$study" --quick --quiet --output "$work/out" > "$work/first.log" 2>&1 ) &
pid=$!
killed=0
for _ in $(seq 1 3000); do
    if compgen -G "$run_dir/checkpoints/checkpoint-*" > /dev/null && [[ ! -e "$run_dir/run_summary.json" ]]; then
        kill -KILL "$pid"
        killed=1
        break
    fi
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
done
wait "$pid" 2> /dev/null || true
cat "$work/first.log"
[[ $killed -eq 1 ]] || fail "the study ended before its first tuning run wrote a checkpoint"
[[ ! -e "$run_dir/run_summary.json" ]] || fail "the killed run finished anyway"
echo "killed during $(ls "$run_dir/checkpoints")"

"$study" --quick --quiet --output "$work/out" > "$work/second.log" 2>&1 || { cat "$work/second.log"; fail "the resumed study failed"; }
cat "$work/second.log"
grep -q 'pretraining: done before' "$work/second.log" || fail "the pretraining was redone"
grep -q '\[1/3 full-monolingual-en-records-160\] trained: .*(resumed)' "$work/second.log" \
    || fail "the interrupted run did not resume from its checkpoint"
grep -q 'runs trained 3, skipped as finished 0' "$work/second.log" || fail "unexpected run counts"
[[ -s "$work/out/report.md" && -s "$work/out/results.csv" ]] || fail "no report after resuming"
echo "study killed and resumed: OK"
