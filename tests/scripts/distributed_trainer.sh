#!/usr/bin/env bash
# The generated LoRA trainer, data parallel: the same run on two ranks (mpiexec) and on one (no launcher) must
# spend the same budget (records, tokens and FLOPs of run_summary.json, exactly), take the same steps, and follow the
# same loss curve: every step's training loss and every validation loss within 1e-4 relative. The tolerance: the two
# runs sum the same float gradients in another order (~1e-7 relative of the terms), which AdamW turns into weight
# differences of about lr * 1e-7 a step where gradients are large and at most lr * dg / eps where they cancel; over
# the 13 steps of this small model that moves losses by a few 1e-5 (2.5e-5 measured; the script prints the largest).
# Rank 0 alone writes: one metrics.jsonl line per step, one adapter.
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
# A global batch of 8 = 4 micro-batches of 2: 2 on each of 2 ranks. 104 training records: the epoch's last step is
# short (one micro-batch, which rank 0 takes alone).
args=(--tokenizer "$tokenizer" --data "en=$work/en.jsonl" "de=$work/de.jsonl" --val-size 12 --global-batch 8
      --micro-batch 2 --cutoff 64 --lr 3e-3 --warmup-steps 2 --eval-every 5 --seed 3 --quiet --epochs 1)

"$lora" "${args[@]}" --output-dir "$work/one" > "$work/one.log" 2>&1 || { cat "$work/one.log"; fail "one rank"; }
"${launch[@]}" 2 "$lora" "${args[@]}" --output-dir "$work/two" > "$work/two.log" 2>&1 ||
    { cat "$work/two.log"; fail "two ranks"; }

for field in .steps .spent.records .spent.tokens .spent.flops .spent.languages.en.records .spent.languages.de.tokens; do
    one=$(jq -r "$field" "$work/one/run_summary.json") two=$(jq -r "$field" "$work/two/run_summary.json")
    [ "$one" = "$two" ] || fail "run_summary.json $field: $one on one rank, $two on two"
done
[ "$(jq -r .ranks "$work/two/run_config.json")" = 2 ] || fail "run_config.json does not record 2 ranks"
steps=$(jq -r .steps "$work/one/run_summary.json")
[ "$(grep -c '"type":"step"' "$work/two/metrics.jsonl")" = "$steps" ] || fail "two ranks logged other than $steps steps"
[ -f "$work/two/adapter/adapter_model.safetensors" ] || fail "two ranks wrote no adapter"

# The loss curves: training loss of every step, then validation loss of every evaluation, in order.
curve() { jq -r 'select(.type == "step" or .type == "eval") | .loss' "$1/metrics.jsonl"; }
worst=$(paste <(curve "$work/one") <(curve "$work/two") |
        awk 'BEGIN { w = 0 } { d = $1 - $2; if (d < 0) d = -d; r = d / ($1 < 0 ? -$1 : $1); if (r > w) w = r }
             END { printf "%.3e", w }')
[ "$(curve "$work/one" | wc -l)" = "$(curve "$work/two" | wc -l)" ] || fail "the loss curves differ in length"
awk -v w="$worst" 'BEGIN { exit !(w <= 1e-4) }' || fail "the loss curves differ by $worst relative (> 1e-4)"
echo "two ranks against one: $steps steps, the same budget spent; losses within $worst relative"
