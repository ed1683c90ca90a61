#!/usr/bin/env bash
# Runs the small DoRA and IA3 trainers for real on top of a briefly trained full-parameter base, and checks that each:
# - writes a PEFT adapter of its type (adapter_config.json's peft_type, use_dora, feedforward_modules; the tensors
#   PEFT names: lora_A, lora_B and lora_magnitude_vector, or ia3_l) and records its method in run_config.json;
# - trains only its adapter (the trainable count it prints) and lowers the validation loss of every language;
# - with --merge writes the merged HF model, which differs from the base;
# - resumes exactly after an interruption (the same adapter bytes as the uninterrupted run).
# usage: example_adapters.sh FULL_TRAINER DORA_TRAINER IA3_TRAINER TOKENIZER_JSON WORK_DIR
set -euo pipefail
full=$1 dora=$2 ia3=$3 tokenizer=$4 work=$5
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }

. "$(dirname "${BASH_SOURCE[0]}")/number_words_data.sh"
write_number_words "$work" 80
common=(--tokenizer "$tokenizer" --data "en=$work/en.jsonl" "fr=$work/fr.jsonl" --val-size 16 --global-batch 8
        --micro-batch 4 --cutoff 128 --warmup-steps 2 --eval-every 4 --seed 7)

"$full" "${common[@]}" --quiet --lr 3e-3 --budget-records 64 --output-dir "$work/base" > /dev/null

first_last() {  # the first and the last validation loss of language $2 in run $1
    grep '"type":"eval"' "$1/metrics.jsonl" | jq -s -r "[.[0].languages.$2.loss, .[-1].languages.$2.loss] | @tsv"
}

for method in dora ia3; do
    trainer=${!method}
    run=("$trainer" "${common[@]}" --quiet --model-dir "$work/base/model" --lr 1e-2 --epochs 2)
    "${run[@]}" --merge --output-dir "$work/$method" > /dev/null
    "$trainer" "${common[@]}" --model-dir "$work/base/model" --budget-records 24 --output-dir "$work/${method}_count" \
        > "$work/$method.out" 2>&1
    config="$work/$method/adapter/adapter_config.json"
    weights="$work/$method/adapter/adapter_model.safetensors"
    if [ "$method" = dora ]; then
        jq -e '.peft_type == "LORA" and .use_dora == true and .r == 8 and .lora_alpha == 16' "$config" > /dev/null ||
            fail "DoRA's adapter_config.json: $(cat "$config")"
        for name in lora_A.weight lora_B.weight lora_magnitude_vector; do
            grep -aq "self_attention.query_key_value.$name" "$weights" || fail "no $name tensor in $weights"
        done
        grep -q "trainable of" "$work/$method.out" || fail "no parameter count: $(cat "$work/$method.out")"
    else
        jq -e '.peft_type == "IA3" and .feedforward_modules == ["dense_4h_to_h"] and
               (.target_modules | sort) == ["dense_4h_to_h", "query_key_value"]' "$config" > /dev/null ||
            fail "IA3's adapter_config.json: $(cat "$config")"
        grep -aq "mlp.dense_4h_to_h.ia3_l" "$weights" || fail "no ia3_l tensor in $weights"
        # IA3 trains one scale per output of query_key_value (3 x 64) and per input of dense_4h_to_h (256), per layer.
        grep -q " 896 trainable of " "$work/$method.out" || fail "IA3 does not train 2 x 448 scales: $(cat "$work/$method.out")"
    fi
    jq -e ".method == \"$method\"" "$work/$method/run_config.json" > /dev/null || fail "run_config.json's method"
    for lang in en fr; do
        read -r first last < <(first_last "$work/$method" "$lang")
        awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' ||
            fail "$method: the $lang validation loss did not fall ($first -> $last)"
    done
    [ -s "$work/$method/merged/model.safetensors" ] || fail "$method --merge wrote no merged/model.safetensors"
    ! cmp -s "$work/base/model/model.safetensors" "$work/$method/merged/model.safetensors" ||
        fail "$method: the merged model equals the base"

    # Interrupted after its first checkpoint (a budget that stops there), then resumed to the end: the same adapter.
    "${run[@]}" --output-dir "$work/${method}_resumed" --keep-last 8 > /dev/null
    rm -f "$work/${method}_resumed/run_summary.json" "$work/${method}_resumed/adapter/"*
    last=$(find "$work/${method}_resumed/checkpoints" -mindepth 1 -maxdepth 1 -type d | sort -V | tail -1)
    rm -rf "$last"
    "${run[@]}" --output-dir "$work/${method}_resumed" --keep-last 8 > /dev/null
    [ "$(jq -r .resumed "$work/${method}_resumed/run_summary.json")" = true ] || fail "$method: the rerun did not resume"
    cmp -s "$work/$method/adapter/adapter_model.safetensors" "$work/${method}_resumed/adapter/adapter_model.safetensors" ||
        fail "$method: the resumed run ended with another adapter"
done
echo "example_adapters: DoRA and IA3 trained, saved, merged and resumed"
