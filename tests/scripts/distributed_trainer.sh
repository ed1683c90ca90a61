#!/usr/bin/env bash
# The generated LoRA trainer, data parallel: the same run on two ranks (mpiexec) and on one (no launcher) must
# spend the same budget (records, tokens and FLOPs of run_summary.json, exactly), take the same steps, and follow the
# same loss curve: every step's training loss and every validation loss within 1e-6 relative. The tolerance: the two
# runs sum the same float gradients in another order (~1e-7 relative of the summed terms, far less on a loss that
# averages thousands of token losses); about 4e-10 measured over 14 steps (the script prints the largest). Adapter
# dropout is off: each rank draws its masks from its own generator (docs/distributed.md), so with dropout two ranks
# match one in distribution, not value. Rank 0 alone writes: one metrics.jsonl line per step, one adapter. Then a
# run stopped at a checkpoint on two ranks is resumed on one.
# usage: distributed_trainer.sh LORA_TRAINER TOKENIZER_JSON WORK_DIR LAUNCH...  (LAUNCH: the launcher up to the count)
set -euo pipefail
lora=$1 tokenizer=$2 work=$3
shift 3
launch=("$@")
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }

words=(zero one two three four five six seven eight nine)
for lang in en de; do
    : > "$work/$lang.jsonl"
    for i in $(seq 0 63); do
        a=$((i % 10))
        echo "{\"id\": \"t$i\", \"instruction\": \"Write $a in words ($lang).\", \"input\": \"\", \"output\": \"${words[$a]}\"}" >> "$work/$lang.jsonl"
    done
done
# A global batch of 8 = 4 micro-batches of 2: 2 on each of 2 ranks. 106 training records (11 of each language's 64
# held out): the epoch's last step is short, one micro-batch of 2 records, which rank 0 takes alone.
args=(--tokenizer "$tokenizer" --data "en=$work/en.jsonl" "de=$work/de.jsonl" --val-size 11 --global-batch 8
      --micro-batch 2 --cutoff 64 --lr 3e-3 --warmup-steps 2 --eval-every 5 --seed 3 --quiet --lora-dropout 0)

"$lora" "${args[@]}" --epochs 1 --output-dir "$work/one" > "$work/one.log" 2>&1 || { cat "$work/one.log"; fail "one rank"; }
"${launch[@]}" 2 "$lora" "${args[@]}" --epochs 1 --output-dir "$work/two" > "$work/two.log" 2>&1 ||
    { cat "$work/two.log"; fail "two ranks"; }

for field in .steps .spent.records .spent.tokens .spent.flops .spent.languages.en.records .spent.languages.de.tokens; do
    one=$(jq -r "$field" "$work/one/run_summary.json") two=$(jq -r "$field" "$work/two/run_summary.json")
    [ "$one" = "$two" ] || fail "run_summary.json $field: $one on one rank, $two on two"
done
[ "$(jq -r .ranks "$work/two/run_config.json")" = 2 ] || fail "run_config.json does not record 2 ranks"
steps=$(jq -r .steps "$work/one/run_summary.json")
[ "$(grep -c '"type":"step"' "$work/two/metrics.jsonl")" = "$steps" ] || fail "two ranks logged other than $steps steps"
[ -f "$work/two/adapter/adapter_model.safetensors" ] || fail "two ranks wrote no adapter"

# Each step's micro-batches were trained once over the ranks, not once on each: the same tokens a step.
batch_tokens() { jq -r 'select(.type == "step") | .batch_tokens' "$1/metrics.jsonl"; }
[ "$(batch_tokens "$work/one")" = "$(batch_tokens "$work/two")" ] ||
    fail "the ranks' steps trained other tokens than the one-rank run's (batch_tokens in metrics.jsonl)"

# The loss curves: training loss of every step, then validation loss of every evaluation, in order.
curve() { jq -r 'select(.type == "step" or .type == "eval") | .loss' "$1/metrics.jsonl"; }
worst=$(paste <(curve "$work/one") <(curve "$work/two") |
        awk 'BEGIN { w = 0 } { d = $1 - $2; if (d < 0) d = -d; r = d / ($1 < 0 ? -$1 : $1); if (r > w) w = r }
             END { printf "%.3e", w }')
[ "$(curve "$work/one" | wc -l)" = "$(curve "$work/two" | wc -l)" ] || fail "the loss curves differ in length"
awk -v w="$worst" 'BEGIN { exit !(w <= 1e-6) }' || fail "the loss curves differ by $worst relative (> 1e-6)"
echo "two ranks against one: $steps steps, the same budget spent; losses within $worst relative"

# Resume at another number of ranks: a two-rank run that stops at a checkpoint (its budget, 40 records, spent: 5
# steps), resumed on one rank with the whole budget (2 epochs), ends as the uninterrupted one-rank run: the same
# budget, and the loss curve within the same tolerance. The schedule is constant, so the learning rate of a step does
# not depend on the budget the run started with.
long=("${args[@]}" --epochs 2 --schedule constant)
"$lora" "${long[@]}" --output-dir "$work/long_one" > /dev/null 2>&1 || fail "the one-rank run of 2 epochs"
"${launch[@]}" 2 "$lora" "${long[@]}" --budget-records 40 --output-dir "$work/moved" > "$work/moved.log" 2>&1 ||
    { cat "$work/moved.log"; fail "the two-rank run of 40 records"; }
[ "$(jq -r .steps "$work/moved/run_summary.json")" = 5 ] || fail "the two-rank run of 40 records took other than 5 steps"
rm "$work/moved/run_summary.json"
"$lora" "${long[@]}" --output-dir "$work/moved" > "$work/moved.log" 2>&1 || { cat "$work/moved.log"; fail "resume"; }
[ "$(jq -r .resumed "$work/moved/run_summary.json")" = true ] || fail "the one-rank rerun did not resume"
for field in .steps .spent.records .spent.tokens .spent.flops; do
    one=$(jq -r "$field" "$work/long_one/run_summary.json") moved=$(jq -r "$field" "$work/moved/run_summary.json")
    [ "$one" = "$moved" ] || fail "resumed at one rank: run_summary.json $field is $moved, the one-rank run's $one"
done
[ "$(curve "$work/long_one" | wc -l)" = "$(curve "$work/moved" | wc -l)" ] || fail "the resumed loss curve's length"
worst=$(paste <(curve "$work/long_one") <(curve "$work/moved") |
        awk 'BEGIN { w = 0 } { d = $1 - $2; if (d < 0) d = -d; r = d / ($1 < 0 ? -$1 : $1); if (r > w) w = r }
             END { printf "%.3e", w }')
awk -v w="$worst" 'BEGIN { exit !(w <= 1e-6) }' || fail "resumed at one rank: losses differ by $worst (> 1e-6)"
echo "two ranks to a checkpoint, resumed on one: the one-rank run's budget; losses within $worst relative"
