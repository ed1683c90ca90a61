#!/usr/bin/env bash
# The study runner data parallel: the embedded study's quick form (pretraining, then three full-parameter runs,
# evaluated) run by `LAUNCH 2 polyalpaca_study`, and again with --zero1, must equal the one-process run: the same
# runs, each with the same steps and records, tokens and FLOPs (exactly), every training and validation loss within
# 1e-5 relative, the same test losses in results.csv within 1e-5. The tolerance: the ranks sum float gradients in
# another order (~1e-7 relative a step), which the pretrained base carries into every tuning run: 1.2e-7 measured.
# Rank 0 alone prints and writes: one study header in the output, run_config.json records 2 ranks.
# Every process computes with one thread, the reference too: the thread count changes the order of the CPU's sums
# as well (Eigen's and OpenBLAS's), and the study's early Adam steps amplify such differences of 1e-16 to percents
# of the loss within a few dozen steps (one thread against two: 1e-15 at step 2, 3e-4 at step 20; docs/study.md),
# which would hide what this test checks, the exchange between the ranks.
# usage: study_distributed.sh POLYALPACA_STUDY WORK_DIR LAUNCH...  (LAUNCH: the launcher up to the rank count)
set -euo pipefail
study=$1 work=$2
shift 2
launch=("$@")
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1

"$study" --quick --quiet --output "$work/one" > "$work/one.log" 2>&1 || { cat "$work/one.log"; fail "one process"; }

# within REF RUN WHAT: the columns of two files of numbers (one per line, the same count) agree within 1e-5 relative.
within() {
    [ "$(wc -l < "$1")" = "$(wc -l < "$2")" ] || fail "$3: $(wc -l < "$1") figures against $(wc -l < "$2")"
    local worst
    worst=$(paste "$1" "$2" | awk 'BEGIN { w = 0 } { d = $1 - $2; if (d < 0) d = -d; m = $1 < 0 ? -$1 : $1;
                                        r = m > 0 ? d / m : d; if (r > w) w = r } END { printf "%.3e", w }')
    awk -v w="$worst" 'BEGIN { exit !(w <= 1e-5) }' || fail "$3: they differ by $worst relative (> 1e-5)"
    echo "$worst"
}

for mode in ranks zero1; do
    flags=()
    [ "$mode" = zero1 ] && flags=(--zero1)
    out="$work/$mode"
    "${launch[@]}" 2 "$study" --quick --quiet "${flags[@]}" --output "$out" > "$out.log" 2>&1 ||
        { cat "$out.log"; fail "$mode: two ranks"; }
    [ "$(grep -c '^study embedded-quick:' "$out.log")" = 1 ] || fail "$mode: not one study header (rank 0 alone prints)"
    grep -q "^data parallel over 2 rank(s)" "$out.log" || fail "$mode: the output does not say 2 ranks"
    worst_curve=0
    for run in "$work"/one/runs/*/ "$work/one/pretrain/"; do
        name=${run#"$work/one/"}
        for field in .steps .spent.records .spent.tokens .spent.flops; do
            a=$(jq -r "$field" "$run/run_summary.json") b=$(jq -r "$field" "$out/$name/run_summary.json")
            [ "$a" = "$b" ] || fail "$mode: $name run_summary.json $field is $b, the one-process run's $a"
        done
        jq -r 'select(.type == "step" or .type == "eval") | .loss' "$run/metrics.jsonl" > "$work/a"
        jq -r 'select(.type == "step" or .type == "eval") | .loss' "$out/$name/metrics.jsonl" > "$work/b"
        w=$(within "$work/a" "$work/b" "$mode: $name's losses")
        worst_curve=$(awk -v a="$w" -v b="$worst_curve" 'BEGIN { print (a > b ? a : b) }')
    done
    [ "$(jq -r .ranks "$out/runs/full-multilingual-records-160/run_config.json")" = 2 ] ||
        fail "$mode: run_config.json does not record 2 ranks"
    # results.csv: the same runs and languages; the validation_loss column (the test prompts' mean token loss) within the tolerance.
    cut -d, -f1-5 "$work/one/results.csv" > "$work/a"
    cut -d, -f1-5 "$out/results.csv" > "$work/b"
    cmp -s "$work/a" "$work/b" || fail "$mode: results.csv lists other runs or languages"
    column=$(head -1 "$work/one/results.csv" | tr , '\n' | grep -nx 'validation_loss' | cut -d: -f1)
    [ -n "$column" ] || fail "results.csv has no loss column"
    tail -n +2 "$work/one/results.csv" | cut -d, -f"$column" > "$work/a"
    tail -n +2 "$out/results.csv" | cut -d, -f"$column" > "$work/b"
    worst_test=$(within "$work/a" "$work/b" "$mode: results.csv's test losses")
    echo "$mode: two ranks against one process: the same budgets; training and validation losses within" \
         "$worst_curve, test losses within $worst_test relative"
done
