#!/usr/bin/env bash
# The study engine keeps one network per method from run to run (study/model_engine.hpp); each run must start
# where a new network would. A study of two runs per method (random base weights, both methods) is run; then its
# second run of each method is deleted and trained again by a new process, where it is the first run of its
# network. The weights and responses of both must be the same, bit for bit.
# usage: study_reuse.sh POLYALPACA_STUDY WORK_DIR
set -euo pipefail
study=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }

cat > reuse.json <<'EOF'
{"name": "network reuse", "base_model": {"preset": "bloom-study"}, "methods": ["lora", "full"],
 "languages": ["en", "ru"], "zero_shot": [],
 "suite": {"train_per_language": 60, "test_per_language": 4, "pretrain_sentences_per_language": 20, "seed": 0},
 "strategies": ["monolingual"], "budgets": [{"records": 24}],
 "hyperparameters": {
   "lora": {"lr": 1e-2, "warmup_steps": 0, "micro_batch": 4, "global_batch": 8, "cutoff": 128, "val_size": 4, "eval_every": 2,
            "template": "compact"},
   "full": {"lr": 1e-3, "micro_batch": 4, "global_batch": 8, "cutoff": 128, "val_size": 4, "eval_every": 2,
            "template": "compact"}},
 "decoding": {"preset": "greedy", "max_new_tokens": 8, "batch": 4},
 "output": "first", "seed": 7}
EOF
"$study" reuse.json --device cpu --quiet > first.log 2>&1 || { cat first.log; fail "the study"; }
grep -q 'runs trained 4, skipped as finished 0' first.log || { cat first.log; fail "the study did not train 4 runs"; }

cp -r first second
rm -rf second/runs/lora-monolingual-ru-records-24 second/runs/full-monolingual-ru-records-24
"$study" reuse.json --device cpu --quiet --output second > second.log 2>&1 || { cat second.log; fail "the rerun"; }
grep -q 'runs trained 2, skipped as finished 2' second.log || { cat second.log; fail "the rerun did not train 2 runs"; }

for run in lora-monolingual-ru-records-24 full-monolingual-ru-records-24; do
    weights=adapter/adapter_model.safetensors
    [[ $run == full-* ]] && weights=model/model.safetensors
    cmp -s "first/runs/$run/$weights" "second/runs/$run/$weights" \
        || fail "$run: trained after another run of its method, its weights differ from a new network's"
    cmp -s "first/runs/$run/responses.jsonl" "second/runs/$run/responses.jsonl" \
        || fail "$run: its responses differ from a new network's"
done
echo "study network reuse: OK"
