#!/usr/bin/env bash
# Trains three tiny runs with the small example trainers (full-parameter monolingual and multilingual, LoRA
# multilingual), then runs the evaluator on test sets this script writes (en, fr, and de that no run trained on,
# with one malformed line) and checks:
# - a malformed test line stops the run under --bad-records fail, naming file:line; skip counts it as lost;
# - responses/<run>.jsonl holds one response per prompt in the authors' layout;
# - results.csv has one row per run x language with zero-shot marks, lost prompts, fidelity, loss and perplexity;
# - report.md's answer names the strategy results.csv ranks first; the SVG plots are well-formed;
# - judge scores join on (run, language, id) when the report is rebuilt from the saved responses;
# - a prompt too long for the model stops the run under fail before anything is written, and is left out and
#   counted as lost under skip; judge scores of 1e308 leave the report and its plots well-formed.
# usage: example_evaluate.sh EVALUATOR FULL_TRAINER LORA_TRAINER TOKENIZER_JSON WORK_DIR
set -euo pipefail
evaluate=$1 full=$2 lora=$3 tokenizer=$4 work=$5
rm -rf "$work"
mkdir -p "$work/data" "$work/tests" "$work/val" "$work/runs"
fail() { echo "FAILED: $*" >&2; exit 1; }

words_en=(zero one two three four five six seven eight nine)
words_fr=(zéro un deux trois quatre cinq six sept huit neuf)
words_de=(null eins zwei drei vier fünf sechs sieben acht neun)
for lang in en fr de; do
    for i in $(seq 0 39); do
        a=$((i % 10))
        case $lang in
            en) echo "{\"id\": \"t$i\", \"instruction\": \"Write the number $a in words.\", \"input\": \"\", \"output\": \"The number is ${words_en[$a]}, as you asked.\"}" ;;
            fr) echo "{\"id\": \"t$i\", \"instruction\": \"Écris le nombre $a en lettres.\", \"input\": \"\", \"output\": \"Le nombre est ${words_fr[$a]}, comme demandé.\"}" ;;
            de) echo "{\"id\": \"t$i\", \"instruction\": \"Schreibe die Zahl $a in Worten.\", \"input\": \"\", \"output\": \"Die Zahl ist ${words_de[$a]}, wie gewünscht.\"}" ;;
        esac
    done > "$work/data/$lang.jsonl"
    head -n 6 "$work/data/$lang.jsonl" > "$work/val/$lang.jsonl"
done
cat > "$work/tests/test_en.jsonl" << 'JSON'
{"id": "e1", "prompt": "Write the number 3 in words."}
{"id": "e2", "prompt": "Write the number 7 in words."}
{"id": "e3", "prompt": "Translate the number.", "input": "5"}
JSON
cat > "$work/tests/test_fr.jsonl" << 'JSON'
{"id": "f1", "prompt": "Écris le nombre 3 en lettres."}
{"id": "f2", "prompt": "Écris le nombre 7 en lettres."}
{"id": "f3", "prompt": "Écris le nombre 1 en lettres."}
JSON
cat > "$work/tests/test_de.jsonl" << 'JSON'
{"id": "d1", "prompt": "Schreibe die Zahl 3 in Worten."}
{"id": "d2", "prompt": "Schreibe die Zahl 7 in Worten."}
{"id": "d3", "prompt": "Schreibe die Zahl
JSON

common=(--tokenizer "$tokenizer" --data "en=$work/data/en.jsonl" "fr=$work/data/fr.jsonl" --val-size 4 --global-batch 8
        --micro-batch 4 --cutoff 256 --lr 3e-3 --warmup-steps 1 --eval-every 0 --seed 7 --quiet)
"$full" "${common[@]}" --strategy monolingual --languages en --budget-records 32 --output-dir "$work/runs/full_mono" > /dev/null
"$full" "${common[@]}" --strategy multilingual --budget-records 64 --output-dir "$work/runs/full_multi" > /dev/null
"$lora" "${common[@]}" --strategy multilingual --budget-records 32 --output-dir "$work/runs/lora_multi" > /dev/null
jq -e '.strategy == "monolingual" and .method == "full" and .languages == ["en"] and .seed == 7' \
    "$work/runs/full_mono/run_config.json" > /dev/null || fail "bad run_config.json: $(cat "$work/runs/full_mono/run_config.json")"

mkdir -p "$work/runs/unfinished"  # no run_summary.json: left out, and said so
eval_args=(--runs "$work/runs" --tests "$work/tests" --tokenizer "$tokenizer" --decoding greedy --max-new-tokens 6
           --batch 2 --val "$work/val" --quiet)
if "$evaluate" "${eval_args[@]}" --output "$work/failed" 2> "$work/fail.err"; then
    fail "a malformed test line did not stop the evaluation"
fi
grep -q "test_de.jsonl:3" "$work/fail.err" || fail "the error does not name test_de.jsonl:3: $(cat "$work/fail.err")"
[ ! -e "$work/failed" ] || fail "the stopped evaluation left $work/failed behind: $(ls -A "$work/failed")"

"$evaluate" "${eval_args[@]}" --bad-records skip --output "$work/out" > "$work/evaluate.out"
out=$work/out
for f in report.md results.csv data_report.txt plots/score_by_language.svg plots/budget_vs_score.svg; do
    [ -s "$out/$f" ] || fail "no $f"
done

# Responses: 3 + 3 + 2 per run, in the authors' layout.
for run in full_mono full_multi lora_multi; do
    [ "$(wc -l < "$out/responses/$run.jsonl")" = 8 ] || fail "$run: $(wc -l < "$out/responses/$run.jsonl") responses"
    jq -e --arg run "$run" 'has("instruction") and has("input") and has("response") and .run == $run and
        (.id | type) == "string" and .decoding.max_new_tokens == 6 and .decoding.preset == "greedy"' \
        "$out/responses/$run.jsonl" > /dev/null || fail "$run: a response lacks the layout's keys"
done
jq -s -e 'map(select(.id == "e3"))[0].input == "5"' "$out/responses/full_mono.jsonl" > /dev/null || fail "input not kept"

# results.csv: 9 rows, zero-shot marks, lost prompts, fidelity in [0, 1], perplexity = exp(loss).
csv=$out/results.csv
[ "$(wc -l < "$csv")" = 10 ] || fail "results.csv has $(wc -l < "$csv") lines"
field() { awk -F, -v run="$1" -v lang="$2" -v col="$3" 'NR == 1 { for (i = 1; i <= NF; ++i) c[$i] = i; next }
                                                          $1 == run && $5 == lang { print $c[col] }' "$csv"; }
[ "$(field full_mono fr zero_shot)" = 1 ] || fail "full_mono fr is not zero-shot"
[ "$(field full_multi fr zero_shot)" = 0 ] || fail "full_multi fr is zero-shot"
[ "$(field lora_multi de zero_shot)" = 1 ] || fail "lora_multi de is not zero-shot"
[ "$(field lora_multi de lost_prompts)" = 1 ] || fail "the malformed de line is not counted as lost"
[ "$(field lora_multi de responses)" = 2 ] || fail "de responses"
[ "$(field full_multi en strategy)" = multilingual ] || fail "strategy not read from run_config.json"
[ "$(field lora_multi en method)" = lora ] || fail "method"
for run in full_mono full_multi lora_multi; do
    for lang in en fr de; do
        awk -v f="$(field $run $lang fidelity)" -v l="$(field $run $lang validation_loss)" \
            -v p="$(field $run $lang perplexity)" \
            'BEGIN { exit !(f != "" && f >= 0 && f <= 1 && l > 0 && (p - exp(l))^2 < 1e-6 * p^2) }' ||
            fail "$run $lang: fidelity '$(field $run $lang fidelity)', loss '$(field $run $lang validation_loss)'"
    done
done
# The multilingual full run trained on fr, the monolingual one did not: its fr loss is lower.
awk -v a="$(field full_multi fr validation_loss)" -v b="$(field full_mono fr validation_loss)" 'BEGIN { exit !(a < b) }' ||
    fail "fr loss: multilingual $(field full_multi fr validation_loss) vs monolingual $(field full_mono fr validation_loss)"

# The answer follows results.csv: the full-parameter strategies with the highest mean fidelity are named best on
# average (or a tie of all), with that mean.
expected=$(awk -F, 'NR > 1 && $3 == "full" { if (!($4 in s)) order[++n] = $4; s[$4] += $8; c[$4]++ }
    END { best = -1; for (i = 1; i <= n; ++i) { m = sprintf("%.3f", s[order[i]] / c[order[i]]); mean[i] = m; if (m + 0 > best) best = m + 0 }
          top = ""; k = 0; for (i = 1; i <= n; ++i) if (mean[i] + 0 == best) { top = top (k++ ? " = " : "") order[i] }
          if (k == n && n > 1) printf "no strategy ahead on average: all %d runs at %.3f", n, best
          else printf "best on average: **%s** (%.3f)", top, best }' "$csv")
grep -qF "**bloom-mini, full-parameter**: $expected" "$out/report.md" ||
    fail "the answer does not follow results.csv (expected '$expected'): $(grep -A3 '## Answer' "$out/report.md")"
grep -q "^\*\*bloom-mini, full-parameter\*\*: .*Lowest mean validation loss (de, en, fr): \*\*multilingual\*\*" \
    "$out/report.md" || fail "the answer does not name the multilingual run's lower validation loss"
# Fidelity in results.csv is the matched share of the confusion table in report.md.
for run in full_mono full_multi lora_multi; do
    for lang in en fr de; do
        share=$(sed -n "/^### $run\$/,/^##/p" "$out/report.md" | awk -F'|' -v l=" $lang " '$2 == l { gsub(/ /, "", $(NF-1)); print $(NF-1) }')
        awk -v s="$share" -v f="$(field $run $lang fidelity)" 'BEGIN { split(s, p, "/"); exit !(p[2] > 0 && (p[1] / p[2] - f)^2 < 1e-10) }' ||
            fail "$run $lang: fidelity $(field $run $lang fidelity) but the confusion table says '$share'"
    done
done
grep -q "| monolingual | .* † |" "$out/report.md" || fail "no zero-shot mark in report.md"
grep -q "| de | 2 | 1 |" "$out/report.md" || fail "report.md does not state the lost de prompt"
grep -q "left out unfinished: no run_summary.json" "$out/report.md" || fail "report.md does not name the unfinished run"

if command -v python3 > /dev/null; then
    for svg in "$out"/plots/*.svg; do
        python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$svg" || fail "$svg is not well-formed"
    done
fi

# Judge scores: rebuild the report from the saved responses; scores join on (run, language, id).
cp -r "$out/responses" "$work/responses_before"
printf '%s\n' '{"run": "full_multi", "language": "fr", "id": "f1", "score": 4, "raw": "4"}' \
              '{"run": "full_multi", "language": "fr", "id": "f2", "score": 2, "raw": "2"}' \
              '{"run": "full_multi", "language": "fr", "id": "f3", "score": null, "raw": "?"}' \
              '{"run": "full_multi", "language": "fr", "id": "other", "score": 0, "raw": "0"}' > "$work/scores.jsonl"
"$evaluate" "${eval_args[@]}" --bad-records skip --output "$out" --reuse-responses --judge-scores "$work/scores.jsonl" \
    > /dev/null
diff -r "$work/responses_before" "$out/responses" > /dev/null || fail "--reuse-responses changed the responses"
[ "$(field full_multi fr judge_score)" = 3.000000 ] || fail "judge score $(field full_multi fr judge_score), want 3"
[ "$(field full_multi fr judged)" = 2 ] || fail "judged $(field full_multi fr judged)"
[ -z "$(field full_mono fr judge_score)" ] || fail "a run without scores has one"
grep -q "Ranked by mean judge score" "$out/report.md" || fail "the report does not rank by judge score"
grep -q "fr: multilingual (3.00)" "$out/report.md" || fail "the answer does not name the scored run for fr"

# A prompt too long for the model's positions: under fail an error before anything is written, under skip left out
# and counted as lost for that run.
mkdir -p "$work/long_tests"
cp "$work/tests/test_en.jsonl" "$work/long_tests/"
printf '{"id": "e4", "prompt": "%s"}\n' "$(printf 'word %.0s' $(seq 1 3000))" >> "$work/long_tests/test_en.jsonl"
long_args=("${eval_args[@]/$work\/tests/$work/long_tests}")
if "$evaluate" "${long_args[@]}" --output "$work/long_failed" 2> "$work/long.err"; then
    fail "a prompt longer than the model's positions did not stop the evaluation under fail"
fi
grep -q "test_en.jsonl:4: the prompt has .* exceeds the model's .* positions" "$work/long.err" ||
    fail "unclear: $(cat "$work/long.err")"
[ ! -e "$work/long_failed" ] || fail "the stopped evaluation left $work/long_failed behind"
"$evaluate" "${long_args[@]}" --bad-records skip --output "$work/long" > /dev/null
csv=$work/long/results.csv
[ "$(field lora_multi en lost_prompts)" = 1 ] || fail "the long prompt is not counted as lost"
[ "$(field lora_multi en responses)" = 3 ] || fail "en responses with the long prompt left out"
grep -q "run lora_multi: 1 en prompts left out, too long" "$work/long/report.md" || fail "the report does not say so"

# Judge scores whose mean is beyond any plot's range (1e308): the report and its plots are still written.
printf '%s\n' '{"run": "full_multi", "language": "fr", "id": "f1", "score": 1e308, "raw": "x"}' \
              '{"run": "full_multi", "language": "fr", "id": "f2", "score": 1e308, "raw": "x"}' > "$work/huge.jsonl"
"$evaluate" "${eval_args[@]}" --bad-records skip --output "$out" --reuse-responses --judge-scores "$work/huge.jsonl" \
    > /dev/null || fail "scores of 1e308 stopped the evaluator"
if command -v python3 > /dev/null; then
    for svg in "$out"/plots/*.svg; do
        python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$svg" || fail "$svg is not well-formed"
        ! grep -qiE '"(-?inf|nan)' "$svg" || fail "$svg holds a non-finite coordinate"
    done
fi
echo "1 passed, 0 failed"
