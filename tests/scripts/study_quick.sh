#!/usr/bin/env bash
# Runs the embedded study's quick form and checks:
# - report.md, results.csv (with an exact_match column and 95% intervals around it and fidelity), study_state.json
#   and the plots are written;
# - every run's run_config.json names the device, backend, attention kernels and GEMM math that ran, and the
#   report the device; the base checkpoint is read once;
# - the printed summary table has a row per strategy with a parsable accuracy and its interval for every test
#   language, the base-model baseline, a "Best at" line, a fidelity table, and the report's path last;
# - a second invocation on the same output directory trains nothing (every run is skipped as finished) and prints
#   the same summary;
# - a decoding length that leaves no room for a prompt is refused before anything is written.
# usage: study_quick.sh POLYALPACA_STUDY WORK_DIR
set -euo pipefail
study=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }

"$study" --quick --quiet --output "$work/out" > "$work/first.log" 2>&1 || { cat "$work/first.log"; fail "first run"; }
cat "$work/first.log"
for f in report.md results.csv tasks.csv study_state.json plots/score_by_language.svg plots/budget_vs_score.svg \
         plots/exact_match_by_language.svg plots/fidelity_by_language.svg tokenizer.json suite/suite.json \
         pretrain/model/config.json; do
    [[ -s "$work/out/$f" ]] || fail "$f was not written"
done
# The summary's bars carry their 95% intervals as error bars.
grep -q '<path d="M' "$work/out/plots/exact_match_by_language.svg" || fail "the exact-match plot has no interval bars"
head -1 "$work/out/results.csv" | grep -q ',exact_match,exact_match_low,exact_match_high,fidelity_low,fidelity_high$' ||
    fail "results.csv lacks the exact_match column and the intervals"
rows=$(tail -n +2 "$work/out/results.csv" | wc -l)
[[ $rows -eq 9 ]] || fail "results.csv has $rows rows, expected 3 runs x 3 languages"
# Exact match and fidelity each lie inside their 95% bootstrap interval (columns counted from the end).
tail -n +2 "$work/out/results.csv" | awk -F, '
    { em = $(NF - 4); el = $(NF - 3); eh = $(NF - 2); fl = $(NF - 1); fh = $NF }
    em !~ /^[0-9]+\.[0-9]+$/ || el !~ /^[0-9]+\.[0-9]+$/ || fl !~ /^[0-9]+\.[0-9]+$/ { bad = 1 }
    el + 0 > em + 0 || em + 0 > eh + 0 || fl + 0 > fh + 0 { bad = 1 }
    END { exit bad }' || fail "an exact_match or interval cell of results.csv is not a number, or not around its value"
grep -q '"state": "evaluated"' "$work/out/study_state.json" || fail "study_state.json lists no evaluated run"
grep -q '"state": "pending"\|"state": "training"' "$work/out/study_state.json" && fail "study_state.json has unfinished runs"

# The summary table: header, baseline, one row per strategy; every language cell a number (zero-shot marked).
grep -q '^| method | budget | strategy | en | ru | bg | mean tuned | mean zero-shot | mean |$' "$work/first.log" \
    || fail "no summary table header"
# A cell: the percentage and its 95% interval, "12.5 [3.1, 25.0]".
cell='[0-9]+\.[0-9] \[[0-9]+\.[0-9], [0-9]+\.[0-9]\]'
grep -Eq "^\| – \| – \| no tuning \(base model\) \| $cell \| $cell \| $cell \|" "$work/first.log" \
    || fail "no baseline row"
for strategy in monolingual multilingual; do
    grep -Eq "^\| full \| records 160 \| $strategy \| $cell \| $cell \| $cell † \| $cell \| $cell \| $cell \|$" \
        "$work/first.log" || fail "no parsable summary row for $strategy"
done
# Language fidelity, measured on the sentence tasks, has a table of its own.
grep -q "^Language fidelity (%) per test language (the share of responses CLD2 identified" "$work/first.log" \
    || fail "no fidelity table"
grep -Eq '^Best at full, records 160: overall \*\*(monolingual|multilingual)\*\*' "$work/first.log" || fail "no best-strategy line"
grep -q 'runs trained 3, skipped as finished 0; base checkpoint read 1 time(s) here and once by each run.s process;' "$work/first.log" \
    || fail "the first run did not train 3 runs from a base read once"
# Each run records where it ran: the device, the kernels that ran and the GEMM math.
for config in "$work"/out/runs/*/run_config.json; do
    for key in '"device": "cpu"' '"backend": "cpu-eigen"' '"attention": "cpu"' '"gemm_math": "fp32"'; do
        grep -q "$key" "$config" || fail "$config lacks $key"
    done
done
grep -q '^- device: cpu' "$work/out/report.md" || fail "report.md does not name the device"
[[ "$(tail -1 "$work/first.log")" == "report $work/out/report.md" ]] || fail "the output does not end with the report's path"
grep -q '^## Summary' "$work/out/report.md" && grep -q '^## Exact match per task' "$work/out/report.md" \
    || fail "report.md lacks its summary or exact-match sections"
head -1 "$work/out/tasks.csv" | grep -q '^run,method,strategy,budget,language,zero_shot,task,exact_match$' \
    && [[ $(wc -l < "$work/out/tasks.csv") -gt 13 ]] || fail "tasks.csv lacks its header or the tasks"

# Resume: nothing is trained again.
"$study" --quick --quiet --output "$work/out" > "$work/second.log" 2>&1 || { cat "$work/second.log"; fail "second run"; }
cat "$work/second.log"
grep -q 'runs trained 0, skipped as finished 3' "$work/second.log" || fail "the second run trained again"
grep -q 'pretraining: done before' "$work/second.log" || fail "the second run pretrained again"
grep -q '\] training:' "$work/second.log" && fail "the second run started a training"
diff <(sed -n '/^Exact-match accuracy/,/^Best at/p' "$work/first.log") \
     <(sed -n '/^Exact-match accuracy/,/^Best at/p' "$work/second.log") || fail "the summaries differ"

# A decoding length that leaves no room for a prompt in the model's 2048 positions is refused before any work (it
# would have skipped every test prompt as too long after training).
"$study" --print-default | jq --arg out "$work/no_room" '.decoding.max_new_tokens = 4096 | .output = $out' \
    > "$work/no_room.json"
if "$study" "$work/no_room.json" > "$work/no_room.log" 2>&1; then fail "max_new_tokens 4096 was accepted"; fi
grep -qE "decoding.max_new_tokens \(4096 for (lora|full)\) leaves no room for a prompt in bloom-study's 2048 positions" \
    "$work/no_room.log" || fail "unclear: $(cat "$work/no_room.log")"
[[ ! -e "$work/no_room" ]] || fail "the refused study left $work/no_room behind"
echo "study quick run and resume: OK"
