#!/usr/bin/env bash
# Runs the small generated trainers for real on two-language Alpaca data this script makes, and checks:
# - the monolingual, multilingual and downsampled strategies spend exactly the matched budgets they are given;
# - the same seed gives the same weights (determinism);
# - a run killed with SIGKILL resumes from its last checkpoint and ends exactly as the uninterrupted run;
# - validation loss falls in every language; the LoRA trainer writes a PEFT adapter naming its base by absolute path,
#   with --merge the merged HF model, and the profile of the step
#   --profile-step names; run_config.json records the attention asked for and the one that ran (the CPU's);
#   --attention other than auto is refused on the CPU; a bad --strategy or --gemm-math is refused before anything is
#   written, and --gemm-math auto records the math that ran; a resume under changed defining options is refused
#   (--allow-changed-options records them); a damaged newest checkpoint is passed over for the one before; a bad
#   --save-dtype or --model-dir, or a cutoff that leaves no token for the loss, leaves no output directory; a killed
#   run's temp files are removed by the next start.
# usage: example_trainers.sh FULL_TRAINER LORA_TRAINER TOKENIZER_JSON WORK_DIR
set -euo pipefail
full=$1 lora=$2 tokenizer=$3 work=$4
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }

# 120 parallel records per language: the same id means the same task in both languages.
. "$(dirname "${BASH_SOURCE[0]}")/number_words_data.sh"
write_number_words "$work" 120
printf '{"id": "t120", "instruction": "no output here"}' >> "$work/en.jsonl"  # a bad record, no final newline

common=(--tokenizer "$tokenizer" --data "en=$work/en.jsonl" "fr=$work/fr.jsonl" --val-size 16 --global-batch 8
        --micro-batch 4 --cutoff 256 --lr 3e-3 --warmup-steps 2 --eval-every 4 --seed 7 --quiet --bad-records skip)
spent() { jq -r "$1" "$2/run_summary.json"; }

# Bad records: the default policy stops, naming the place; skip lists it.
if "$full" "${common[@]/skip/fail}" --output-dir "$work/fail" --budget-records 8 2> "$work/fail.err"; then
    fail "a bad record did not stop the run"
fi
grep -q "en.jsonl:121" "$work/fail.err" || fail "the error does not name en.jsonl:121: $(cat "$work/fail.err")"

# A strategy's spelling is checked before any work: one sentence, nothing written.
if "$full" "${common[@]}" --strategy temperature:0.5 --output-dir "$work/bad_strategy" 2> "$work/strategy.err"; then
    fail "temperature:0.5 was accepted"
fi
grep -q -- "--strategy: \"temperature:0.5\": the temperature must be at least 1" "$work/strategy.err" \
    || fail "the strategy error does not say why: $(cat "$work/strategy.err")"
[ ! -e "$work/bad_strategy" ] || fail "a refused strategy left $work/bad_strategy behind"

# Inputs are checked before anything is written: a --save-dtype read only at the end, a --model-dir without a
# checkpoint read after the data.
if "$full" "${common[@]}" --save-dtype int3 --output-dir "$work/bad_dtype" 2> "$work/dtype.err"; then
    fail "--save-dtype int3 was accepted"
fi
grep -q -- "--save-dtype must be f32, bf16 or f16, got 'int3'" "$work/dtype.err" || fail "unclear: $(cat "$work/dtype.err")"
[ ! -e "$work/bad_dtype" ] || fail "a refused --save-dtype left $work/bad_dtype behind"
mkdir -p "$work/empty_model"
if "$full" "${common[@]}" --model-dir "$work/empty_model" --output-dir "$work/bad_model" 2> "$work/model.err"; then
    fail "a --model-dir without a checkpoint was accepted"
fi
[ ! -e "$work/bad_model" ] || fail "a refused --model-dir left $work/bad_model behind: $(ls -A "$work/bad_model")"

# A cutoff that every prompt fills leaves no token for the loss: refused before any work, not trained at loss 0.
if "$full" "${common[@]/256/8}" --output-dir "$work/no_labels" 2> "$work/no_labels.err"; then
    fail "a run with no scored token was accepted"
fi
grep -q "none of the 240 examples has a token the loss scores: each prompt fills --cutoff 8" "$work/no_labels.err" \
    || fail "unclear: $(cat "$work/no_labels.err")"
[ ! -e "$work/no_labels" ] || fail "a run with no scored token left $work/no_labels behind"

# A killed run's temp files are removed by the next start (here one left beside run_config.json).
mkdir -p "$work/stale" && touch "$work/stale/.run_config.json.tmp.AbC123"
"$full" "${common[@]}" --budget-records 8 --output-dir "$work/stale" > /dev/null
[ ! -e "$work/stale/.run_config.json.tmp.AbC123" ] || fail "a stale temp file was left in $work/stale"

# Matched budgets, the paper's design with C = one epoch of one language (120 - 16 held out = 104 records):
# monolingual C, multilingual 2C, downsampled C (52 records of each language).
"$full" "${common[@]}" --strategy monolingual --languages en --budget-records 104 --output-dir "$work/mono" > /dev/null
"$full" "${common[@]}" --strategy multilingual --budget-records 208 --output-dir "$work/multi" > /dev/null
"$full" "${common[@]}" --strategy downsampled --budget-records 104 --output-dir "$work/down" > /dev/null
[ "$(spent .spent.records "$work/mono")" = 104 ] || fail "monolingual spent $(spent .spent.records "$work/mono") records"
[ "$(spent .spent.records "$work/multi")" = 208 ] || fail "multilingual spent $(spent .spent.records "$work/multi")"
[ "$(spent .spent.records "$work/down")" = 104 ] || fail "downsampled spent $(spent .spent.records "$work/down")"
[ "$(spent '.spent.languages.en.records' "$work/down")" = 52 ] || fail "downsampled did not take 52 records of en"
grep -q "en.jsonl:121" "$work/mono/data_report.txt" || fail "the skipped record is not in data_report.txt"

# Determinism and exact resume after SIGKILL: eight epochs, a checkpoint every 4 steps.
run=("$full" "${common[@]}" --strategy multilingual --epochs 8)
"${run[@]}" --output-dir "$work/straight" > /dev/null
"${run[@]}" --output-dir "$work/again" > /dev/null
cmp -s "$work/straight/model/model.safetensors" "$work/again/model/model.safetensors" || fail "same seed, different weights"
cmp -s "$tokenizer" "$work/straight/model/tokenizer.json" || fail "the model has not the run's tokenizer.json"
( exec "${run[@]}" --output-dir "$work/killed" > /dev/null 2>&1 ) &  # exec: $! is the trainer itself
pid=$!
for _ in $(seq 1 600); do
    n=$( (find "$work/killed/checkpoints" -name state.json 2> /dev/null || true) | wc -l)
    [ "$n" -ge 1 ] && break
    sleep 0.02
done
kill -9 "$pid" 2> /dev/null || fail "the run finished before it could be killed"
wait "$pid" 2> /dev/null || true
[ ! -f "$work/killed/run_summary.json" ] || fail "the killed run had already finished"
"${run[@]}" --output-dir "$work/killed" > /dev/null
[ "$(spent .resumed "$work/killed")" = true ] || fail "the rerun did not resume"
cmp -s "$work/straight/model/model.safetensors" "$work/killed/model/model.safetensors" ||
    fail "the resumed run did not end with the uninterrupted run's weights"

# A resume under changed options that define the run is refused, naming each change, before anything is written;
# --allow-changed-options continues and records the change in run_config.json.
cp -r "$work/straight" "$work/changed"
cp "$work/changed/run_config.json" "$work/changed_config_before.json"
with() {  # with OPTION VALUE ...: the run's command with OPTION's value replaced
    local option=$1 value=$2 out=() i
    shift 2
    local args=("$@")
    for ((i = 0; i < ${#args[@]}; i++)); do
        out+=("${args[i]}")
        if [ "${args[i]}" = "$option" ]; then out+=("$value"); i=$((i + 1)); fi
    done
    printf '%s\0' "${out[@]}"
}
mapfile -d '' new_lr < <(with --lr 1e-3 "${run[@]}")
mapfile -d '' new_lr_seed < <(with --seed 8 "${new_lr[@]}")
if "${new_lr_seed[@]}" --output-dir "$work/changed" > /dev/null 2> "$work/changed.err"; then
    fail "a resume with another --lr and --seed was accepted"
fi
grep -q -- "--lr 0.003 when the run started, 0.001 now" "$work/changed.err" ||
    fail "the refused resume does not name the --lr change: $(cat "$work/changed.err")"
grep -q -- "--seed 7 when the run started, 8 now" "$work/changed.err" ||
    fail "the refused resume does not name the --seed change: $(cat "$work/changed.err")"
cmp -s "$work/changed/run_config.json" "$work/changed_config_before.json" || fail "a refused resume rewrote run_config.json"
"${new_lr[@]}" --output-dir "$work/changed" --allow-changed-options > /dev/null 2> "$work/changed_allowed.err"
jq -e '.options.lr == 0.001 and .changed_on_resume[0].checkpoint_step == 208 and
       (.changed_on_resume[0].changes | length == 1)' "$work/changed/run_config.json" > /dev/null ||
    fail "run_config.json does not record the allowed change: $(jq -c .changed_on_resume "$work/changed/run_config.json")"

# A damaged newest checkpoint is passed over for the one before, saying so; the run then ends as the uninterrupted.
cp -r "$work/straight" "$work/damaged"
rm -f "$work/damaged/run_summary.json" "$work/damaged/model/model.safetensors"
head -c 100 "$work/straight/checkpoints/checkpoint-208/trainable.safetensors"     > "$work/damaged/checkpoints/checkpoint-208/trainable.safetensors"
"${run[@]}" --output-dir "$work/damaged" > /dev/null 2> "$work/damaged.err"
grep -q "resuming from .*checkpoint-204 instead: checkpoint-208 cannot be resumed from" "$work/damaged.err" ||
    fail "the fallback to checkpoint-204 was not reported: $(cat "$work/damaged.err")"
cmp -s "$work/straight/model/model.safetensors" "$work/damaged/model/model.safetensors" ||
    fail "resumed from the checkpoint before the damaged one, the run did not end with the uninterrupted weights"

# Validation loss falls in every language (first evaluation vs the best).
for lang in en fr; do
    first=$(grep -m1 '"type":"eval"' "$work/straight/metrics.jsonl" | jq ".languages.$lang.loss")
    best=$(spent ".best_validation_loss_per_language.$lang" "$work/straight")
    awk -v f="$first" -v b="$best" 'BEGIN { exit !(b < 0.7 * f) }' || fail "$lang validation loss $first -> $best"
    echo "$lang validation loss: $first -> $best"
done

# LoRA on the full run's model, given as a relative --model-dir, writes a PEFT adapter whose base_model_name_or_path
# is absolute (PEFT then finds the base from any directory), and with --merge the merged model beside it.
( cd "$work" && "$lora" "${common[@]}" --model-dir straight/model --merge --budget-records 32 --profile-step 2 \
    --output-dir "$work/lora" > /dev/null )
jq -e '.peft_type == "LORA" and .r == 8 and .lora_alpha == 16' "$work/lora/adapter/adapter_config.json" > /dev/null ||
    fail "bad adapter_config.json"
base=$(jq -r .base_model_name_or_path "$work/lora/adapter/adapter_config.json")
[ "$base" = "$(cd "$work/straight/model" && pwd)" ] || fail "base_model_name_or_path is '$base', not the absolute --model-dir"
[ -s "$work/lora/adapter/adapter_model.safetensors" ] || fail "no adapter_model.safetensors"
[ -s "$work/lora/merged/model.safetensors" ] || fail "--merge wrote no merged/model.safetensors"
jq -e '.model_type == "bloom" and .n_layer == 2' "$work/lora/merged/config.json" > /dev/null ||
    fail "the merged config.json is not the base model's: $(cat "$work/lora/merged/config.json")"
cmp -s "$tokenizer" "$work/lora/merged/tokenizer.json" || fail "the merged model has not the run's tokenizer.json"
! cmp -s "$work/straight/model/model.safetensors" "$work/lora/merged/model.safetensors" ||
    fail "the merged model equals the base: the adapter was not merged"
if "$full" "${common[@]}" --merge --output-dir "$work/full_merge" > /dev/null 2> "$work/full_merge.err"; then
    fail "a full-parameter trainer took --merge"
fi
grep -q "^adapter branches " "$work/lora/profile.txt" || fail "profile.txt has no adapter row: $(cat "$work/lora/profile.txt")"
jq -se 'map(select(.type == "profile")) | length == 1 and .[0].step == 2 and .[0].regions.adapter.backward_ms > 0' \
    "$work/lora/metrics.jsonl" > /dev/null || fail "metrics.jsonl lacks the profile of step 2"
jq -e '.attention_requested == "auto" and .attention == "cpu" and .gemm_math == "fp32"' "$work/lora/run_config.json" \
    > /dev/null || fail "run_config.json does not record the attention and GEMM math that ran on the CPU"

# --attention picks CUDA kernels: the CPU trainer takes only auto, and refuses before it writes anything.
if "$lora" "${common[@]}" --attention flash --output-dir "$work/attention" > /dev/null 2> "$work/attention.err"; then
    fail "--attention flash ran on the CPU"
fi
grep -q -- "--attention flash: the cpu-eigen backend has one attention path" "$work/attention.err" ||
    fail "unclear --attention error: $(cat "$work/attention.err")"
[ ! -e "$work/attention" ] || fail "a refused --attention still created its output directory"

# --gemm-math: an unknown name is refused before anything is written; auto trains in bf16 where the CPU has
# AVX512_BF16 (oneDNN's bf16 units; AMX CPUs have it too), else in fp32, and run_config.json records which.
if "$lora" "${common[@]}" --gemm-math fp16 --output-dir "$work/gemm_math" > /dev/null 2> "$work/gemm_math.err"; then
    fail "--gemm-math fp16 ran on the CPU"
fi
grep -q -- "--gemm-math must be fp32, bf16 or auto on the CPU, got 'fp16'" "$work/gemm_math.err" ||
    fail "unclear --gemm-math error: $(cat "$work/gemm_math.err")"
[ ! -e "$work/gemm_math" ] || fail "a refused --gemm-math still created its output directory"
expected_math=fp32
grep -qw avx512_bf16 /proc/cpuinfo && expected_math=bf16
"$lora" "${common[@]}" --gemm-math auto --budget-records 32 --output-dir "$work/auto_math" > /dev/null
jq -e --arg math "$expected_math" '.gemm_math == $math' "$work/auto_math/run_config.json" > /dev/null ||
    fail "--gemm-math auto recorded $(jq .gemm_math "$work/auto_math/run_config.json"), expected $expected_math"
[ -s "$work/auto_math/adapter/adapter_model.safetensors" ] || fail "the --gemm-math auto run wrote no adapter"
echo "1 passed, 0 failed"
