#!/usr/bin/env bash
# The study runner's device choice and plan, without a GPU:
# - --device cuda with no GPU visible: one sentence on stderr, a non-zero exit, nothing written;
# - --plan of the paper's study file (placeholder paths): 5 models x 2 methods of memory, 5 x 22 runs, and then
#   the missing files by key and path, exit 2, nothing written; the same for --device cuda (a GPU plan needs no GPU);
# - --plan --ranks 4: memory per rank with and without ZeRO-1; --ranks without --plan is refused;
# - a study naming a preset this runner has no engine for: the error names POLYALPACA_STUDY_PRESETS, nothing written;
# - a study whose run would not fit this machine's memory: refused before any work, naming the run and the remedy;
# - a suite BPE larger than the model's vocabulary: refused before any work;
# - a bad --device, --attention, --jobs or --threads-per-run value, and flash attention on the CPU: refused before
#   any work.
# usage: study_devices_plan.sh POLYALPACA_STUDY SOURCE_DIR WORK_DIR
set -euo pipefail
study=$1 source=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }

# The device this machine offers the runner (auto): a plan says which.
"$study" --plan --quick --output "$work/auto" > auto_plan.log 2>&1 || { cat auto_plan.log; fail "--plan of the embedded study"; }
cat auto_plan.log
grep -q '^Plan of study "embedded-quick" (embedded default) on ' auto_plan.log || fail "no plan header"
[[ ! -e "$work/auto" ]] || fail "--plan wrote its output directory"
if grep -q '^Plan of study .* on cuda:' auto_plan.log; then
    echo "a GPU is visible: the no-GPU checks are skipped"
else
    if "$study" --quick --device cuda --output "$work/cuda_out" > cuda.log 2>&1; then fail "--device cuda ran without a GPU"; fi
    cat cuda.log
    [[ $(wc -l < cuda.log) -eq 1 ]] || fail "--device cuda without a GPU printed more than one line"
    grep -Eq '^polyalpaca_study: --device cuda: (no CUDA GPU is visible to this process|this polyalpaca_study was built without the CUDA backend)' cuda.log \
        || fail "--device cuda without a GPU did not say why"
    [[ ! -e "$work/cuda_out" ]] || fail "--device cuda without a GPU wrote its output directory"
fi

# The paper's study file: every model, every run, memory; then the missing files.
for device in cpu cuda; do
    status=0
    "$study" "$source/docs/paper_study.json" --plan --device $device > plan_$device.log 2> plan_$device.err || status=$?
    cat plan_$device.log plan_$device.err
    [[ $status -eq 2 ]] || fail "--plan --device $device of the paper's study exited $status, expected 2 (missing files)"
    for model in bloom-560m bloom-1b1 bloom-1b7 bloom-3b bloom-7b1; do
        for method in lora full; do
            grep -Eq "^\| $model \| $method \| 4 x 512 \| (cpu|flash|gemm) \| [0-9]+\.[0-9]+ \|.* \| [0-9]+\.[0-9]+ \| (yes|\*\*no\*\*|\?) \|$" plan_$device.log \
                || fail "$device: no memory row for $model $method"
        done
        runs=$(grep -Ec "^\| [0-9]+ \| $model \| (lora|full)-" plan_$device.log || true)
        [[ $runs -eq 22 ]] || fail "$device: $model has $runs runs in the plan, expected 22"
    done
    grep -q '^total: 110 runs;' plan_$device.log || fail "$device: the plan's total is not 110 runs"
    grep -q "^polyalpaca_study: $source/docs/paper_study.json: base_model\[0\].checkpoint: /path/to/bigscience/bloom-560m does not exist$" \
        plan_$device.err || fail "$device: the missing checkpoint is not named by key and path"
    grep -q "^polyalpaca_study: $source/docs/paper_study.json: data.en: /path/to/data/alpaca_data_cleaned.en.json does not exist$" \
        plan_$device.err || fail "$device: the missing data file is not named by key and path"
done
grep -q ' on cuda' plan_cuda.log || fail "the --device cuda plan does not say it plans for cuda"
[[ ! -e "$work/paper-study" ]] || fail "--plan wrote the study's output directory"
# On a GPU the full-parameter model keeps bf16 working copies of its weights; the plans must differ.
cpu_peak=$(grep -E '^\| bloom-560m \| full \|' plan_cpu.log | awk -F'|' '{print $12}')
cuda_peak=$(grep -E '^\| bloom-560m \| full \|' plan_cuda.log | awk -F'|' '{print $12}')
[[ "$cpu_peak" != "$cuda_peak" ]] || fail "the cpu and cuda plans of bloom-560m full predict the same peak"

# Per rank of 4 data-parallel ranks: the ZeRO-1 columns, a smaller peak for every full-parameter run (a quarter of
# AdamW's moments), the replicated peak unchanged; --ranks without --plan is refused.
"$study" "$source/docs/paper_study.json" --plan --device cuda --ranks 4 > plan_ranks.log 2> /dev/null || true
grep -q '^Per rank of 4 data-parallel ranks' plan_ranks.log || fail "--ranks 4: no per-rank note"
for model in bloom-560m bloom-1b1 bloom-1b7 bloom-3b bloom-7b1; do
    row=$(grep -E "^\| $model \| full \|" plan_ranks.log) || fail "--ranks 4: no row for $model full"
    peak=$(awk -F'|' '{print $12}' <<< "$row") zero1=$(awk -F'|' '{print $15}' <<< "$row")
    [[ "$peak" = "$(grep -E "^\| $model \| full \|" plan_cuda.log | awk -F'|' '{print $12}')" ]] ||
        fail "--ranks 4: $model full's replicated peak differs from the one-rank plan's"
    awk -v p="$peak" -v z="$zero1" 'BEGIN { exit !(z + 0 > 0 && z + 0 < p + 0) }' ||
        fail "--ranks 4: $model full's ZeRO-1 peak ($zero1) is not below its peak ($peak)"
done
if "$study" --quick --ranks 2 --output "$work/ranks_out" > ranks.log 2>&1; then fail "--ranks 2 without --plan ran"; fi
grep -q -- '--ranks 2 plans memory per rank (with --plan)' ranks.log || fail "--ranks without --plan: no reason given"

# A preset without an engine here: the error names the option that adds one.
cat > no_engine.json <<'EOF'
{"name": "no engine", "base_model": {"preset": "bloom-560m"}, "methods": ["lora"], "languages": ["en"],
 "suite": {"train_per_language": 20, "test_per_language": 4, "pretrain_sentences_per_language": 20},
 "strategies": ["monolingual"], "budgets": [{"records": 8}], "output": "no_engine_out"}
EOF
if "$study" no_engine.json --device cpu > no_engine.log 2>&1; then fail "a preset without an engine ran"; fi
cat no_engine.log
grep -q 'base_model.preset "bloom-560m" is not compiled into this runner for the cpu backend (compiled: bloom-study); add it to the CMake option POLYALPACA_STUDY_PRESETS' \
    no_engine.log || fail "the missing engine's error does not name POLYALPACA_STUDY_PRESETS"
[[ ! -e no_engine_out ]] || fail "a study without an engine wrote its output directory"

# A run that would not fit this machine's memory: refused before any work, naming the run and what would fit.
"$study" --print-default --quick | sed -e 's/"micro_batch": 1,/"micro_batch": 20000,/' -e 's/"global_batch": 2,/"global_batch": 20000,/' \
    -e 's/"output": "polyalpaca-study-quick"/"output": "too_big_out"/' > too_big.json
grep -q '"micro_batch": 20000,' too_big.json || fail "could not make the oversized study file"
if "$study" too_big.json --device cpu > too_big.log 2>&1; then fail "a study that cannot fit ran"; fi
cat too_big.log
grep -Eq '^polyalpaca_study: run full-monolingual-en-records-160 \(bloom-study, full\) is predicted to need [0-9.]+ GiB on cpu but [0-9.]+ GiB are available; lower hyperparameters.full.micro_batch \(now 20000\)' \
    too_big.log || fail "the oversized study's refusal does not name the run, the figures and the remedy"
[[ ! -e too_big_out ]] || fail "the oversized study wrote its output directory"

# A suite BPE larger than the model's vocabulary: refused before any work, naming the key and both sizes.
"$study" --print-default --quick | sed -e 's/"bpe_vocab": 1024/"bpe_vocab": 5000/' \
    -e 's/"output": "polyalpaca-study-quick"/"output": "big_vocab_out"/' > big_vocab.json
grep -q '"bpe_vocab": 5000' big_vocab.json || fail "could not make the study file with a large BPE"
if "$study" big_vocab.json --device cpu > big_vocab.log 2>&1; then fail "a BPE larger than the model ran"; fi
cat big_vocab.log
grep -q "big_vocab.json: suite.bpe_vocab is 5000 tokens but bloom-study's vocabulary holds 1024" big_vocab.log \
    || fail "the oversized BPE's refusal does not name the key and both sizes"
[[ ! -e big_vocab_out ]] || fail "the study with an oversized BPE wrote its output directory"

# Bad --jobs and --threads-per-run values: refused before any work.
if "$study" --quick --jobs -3 --output "$work/jobs_out" > jobs.log 2>&1; then fail "--jobs -3 was accepted"; fi
grep -q -- '--jobs must be from 0 (as many as fit) to 1024, not -3' jobs.log || fail "--jobs -3: no reason given"
if "$study" --quick --threads-per-run 5000 --output "$work/jobs_out" > jobs.log 2>&1; then
    fail "--threads-per-run 5000 was accepted"
fi
grep -q -- '--threads-per-run must be from 0' jobs.log || fail "--threads-per-run 5000: no reason given"
[[ ! -e "$work/jobs_out" ]] || fail "a bad --jobs wrote its output directory"

# A bad attention choice, and one the CPU cannot honour: refused before any work.
if "$study" --quick --attention fast --plan > attention.log 2>&1; then fail "--attention fast was accepted"; fi
grep -q "attention must be auto, gemm or flash" attention.log || fail "--attention fast: no clear error"
if "$study" --quick --device cpu --attention flash --output "$work/flash" > cpu_flash.log 2>&1; then
    fail "--attention flash ran on the CPU"
fi
grep -q "the CPU has one attention path" cpu_flash.log || fail "--attention flash on the CPU: no clear error"
[[ ! -e "$work/flash" ]] || fail "--attention flash on the CPU wrote its output directory"

# A bad device.
if "$study" --quick --device tpu --output "$work/tpu" > tpu.log 2>&1; then fail "--device tpu was accepted"; fi
grep -q "device must be cpu, cuda or auto" tpu.log || fail "--device tpu: no clear error"
[[ ! -e "$work/tpu" ]] || fail "--device tpu wrote its output directory"
echo "study devices and plan: OK"
