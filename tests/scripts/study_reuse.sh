#!/usr/bin/env bash
# The study engine keeps one network per method from run to run (study/model_engine.hpp); each run must start
# where a new network would. A study of two runs per method (random base weights, every method: LoRA, DoRA, IA3 and
# full-parameter) is run; then its second run of each method is deleted and trained again by a new process, where it
# is the first run of its network. The weights and responses of both must be the same, bit for bit. Each adapter run
# writes the PEFT adapter of its type.
# usage: study_reuse.sh POLYALPACA_STUDY WORK_DIR
set -euo pipefail
study=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }

cat > reuse.json <<'EOF'
{"name": "network reuse", "base_model": {"preset": "bloom-study"}, "methods": ["lora", "dora", "ia3", "full"],
 "languages": ["en", "ru"], "zero_shot": [],
 "suite": {"train_per_language": 60, "test_per_language": 4, "pretrain_sentences_per_language": 20, "seed": 0},
 "strategies": ["monolingual"], "budgets": [{"records": 24}],
 "hyperparameters": {
   "lora": {"lr": 1e-2, "warmup_steps": 0, "micro_batch": 4, "global_batch": 8, "cutoff": 128, "val_size": 4, "eval_every": 2,
            "template": "compact"},
   "dora": {"lr": 1e-2, "warmup_steps": 0, "micro_batch": 4, "global_batch": 8, "cutoff": 128, "val_size": 4, "eval_every": 2,
            "template": "compact"},
   "ia3": {"lr": 3e-2, "warmup_steps": 0, "micro_batch": 4, "global_batch": 8, "cutoff": 128, "val_size": 4, "eval_every": 2,
           "template": "compact"},
   "full": {"lr": 1e-3, "micro_batch": 4, "global_batch": 8, "cutoff": 128, "val_size": 4, "eval_every": 2,
            "template": "compact"}},
 "decoding": {"preset": "greedy", "max_new_tokens": 8, "batch": 4},
 "output": "first", "seed": 7}
EOF
"$study" reuse.json --device cpu --quiet > first.log 2>&1 || { cat first.log; fail "the study"; }
grep -q 'runs trained 8, skipped as finished 0' first.log || { cat first.log; fail "the study did not train 8 runs"; }
jq -e '.peft_type == "LORA" and .use_dora == false' first/runs/lora-monolingual-en-records-24/adapter/adapter_config.json \
    > /dev/null || fail "the LoRA run's adapter is not LoRA"
jq -e '.peft_type == "LORA" and .use_dora == true' first/runs/dora-monolingual-en-records-24/adapter/adapter_config.json \
    > /dev/null || fail "the DoRA run's adapter is not DoRA"
jq -e '.peft_type == "IA3"' first/runs/ia3-monolingual-en-records-24/adapter/adapter_config.json > /dev/null ||
    fail "the IA3 run's adapter is not IA3"

cp -r first second
for method in lora dora ia3 full; do rm -rf "second/runs/$method-monolingual-ru-records-24"; done
"$study" reuse.json --device cpu --quiet --output second > second.log 2>&1 || { cat second.log; fail "the rerun"; }
grep -q 'runs trained 4, skipped as finished 4' second.log || { cat second.log; fail "the rerun did not train 4 runs"; }

for method in lora dora ia3 full; do
    run=$method-monolingual-ru-records-24
    weights=adapter/adapter_model.safetensors
    [[ $run == full-* ]] && weights=model/model.safetensors
    cmp -s "first/runs/$run/$weights" "second/runs/$run/$weights" \
        || fail "$run: trained after another run of its method, its weights differ from a new network's"
    cmp -s "first/runs/$run/responses.jsonl" "second/runs/$run/responses.jsonl" \
        || fail "$run: its responses differ from a new network's"
done
echo "study network reuse: OK"
