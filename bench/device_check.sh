#!/usr/bin/env bash
# The one-call GPU check: configure and build the CUDA targets offline, run the CUDA parity suite (ctest -L cuda),
# the end-to-end training-step benchmark, the PyTorch + transformers + PEFT peer step, the BLOOM-560m LoRA and full
# steps again with the flash attention kernels (--attention flash), the bf16-weights PEFT peer, the kernel
# benchmarks, PEFT's full-parameter step and NCCL data parallel as one rank (where MPI and NCCL are found), then
# print a summary table last (parity, kernel rates, our tokens/s / MFU / peak memory against PEFT's, and each target
# met or not). Meant for one H100 in under 8 minutes, with nothing fetched from outside.
#
# Before: on a machine with the dependencies installed, run bench/make_device_kit.sh; it writes .devkit/ (Eigen,
# xtensor, xtl, Catch2, nlohmann json, oniguruma), which must travel with the tree. Logs go to $OUT when it is set
# (else build-device/logs). A failing stage is marked FAIL and the rest still run.
#
#   bash bench/device_check.sh                                 # everything, summary within 460 s
#   DEVICE_CHECK_DEADLINE_S=400 bash bench/device_check.sh     # a tighter deadline
#   DEVICE_CHECK_ONLY=study bash bench/device_check.sh         # only the study on the GPU (below)
# The study stages build the study runner with CUDA engines for bloom-study and bloom-560m (a second build, with
# the evaluation side from the kit), run the embedded study's quick form on the GPU, then a BLOOM-560m-shaped study
# at a reduced budget (pretrained on the synthetic suite, LoRA mono / multi / downsampled, the paper's 4-beam
# decoding), and print wall time, tokens/s per run and predicted against measured peak memory.
# Every stage runs under min(its own limit, the time left before the deadline); the optional stages (the
# flash-attention steps, PEFT LoRA with bf16 weights, kernels, PEFT full-parameter) start only when their whole
# limit still fits.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="$root/build-device"
logs="${OUT:-$build/logs}"
mkdir -p "$logs"
deadline_s="${DEVICE_CHECK_DEADLINE_S:-460}"
only="${DEVICE_CHECK_ONLY:-}"  # "study": the study stages alone
jobs="$(nproc 2>/dev/null || echo 16)"
python="${PYTHON:-python3}"

declare -A status=()
stages=()

say() { printf '[%4ds] %s\n' "$SECONDS" "$*"; }

# stage NAME TIMEOUT_S LOG COMMAND...: runs COMMAND with a time limit, output appended to LOG; records PASS/FAIL.
stage() {
  local name="$1" limit="$2" log="$3"
  shift 3
  stages+=("$name")
  local left=$((deadline_s - SECONDS))
  if (( left < 15 )); then
    status[$name]="SKIPPED (deadline of ${deadline_s}s reached)"
    say "skip  $name: deadline reached"
    return 0
  fi
  if (( limit > left )); then limit=$left; fi
  say "start $name (limit ${limit}s, log $(basename "$log"))"
  local rc=0
  { echo "### $name: $*"; } >>"$log"
  timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1 || rc=$?
  if [[ $rc -eq 0 ]]; then
    status[$name]="PASS"
  elif [[ $rc -eq 124 || $rc -eq 137 ]]; then
    status[$name]="FAIL (timed out after ${limit}s)"
  else
    status[$name]="FAIL (exit $rc)"
  fi
  say "end   $name: ${status[$name]}"
}

# optional NAME LIMIT ...: like stage, but only started when all of LIMIT fits before the deadline.
optional() {
  if (( SECONDS + $2 > deadline_s )); then
    stages+=("$1")
    status[$1]="SKIPPED (${2}s would pass the ${deadline_s}s deadline)"
    say "skip  $1: ${2}s would pass the deadline"
    return 0
  fi
  stage "$@"
}

build_log="$logs/build.log"
parity_log="$logs/parity.log"
train_log="$logs/train_step.log"
peft_log="$logs/peft.log"
kernels_log="$logs/kernels.log"
summary_log="$logs/summary.txt"
: >"$build_log"; : >"$parity_log"; : >"$train_log"; : >"$peft_log"; : >"$kernels_log"

say "device_check: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'nvidia-smi unavailable')"
say "nvcc: $(nvcc --version 2>/dev/null | tail -1 || /usr/local/cuda/bin/nvcc --version 2>/dev/null | tail -1 || echo 'not on PATH')"
say "cmake: $(cmake --version | head -1), ninja $(ninja --version 2>/dev/null || echo missing), $jobs cores"

if [[ ! -d "$root/.devkit/include/eigen3" ]]; then
  say "FAIL: .devkit/ is missing: run bench/make_device_kit.sh where the dependencies are installed and carry .devkit"
  exit 1
fi

kit="$root/.devkit"
# ICU's data library travels gzipped (bench/make_device_kit.sh). libicuuc needs it, and a library's own needs are
# not looked up along the program's rpath: the linker and the loader find it on LD_LIBRARY_PATH.
for packed in "$kit"/lib/*.so.*.gz; do
  if [[ -e "$packed" && ! -e "${packed%.gz}" ]]; then gunzip -k "$packed"; fi
done
export LD_LIBRARY_PATH="$kit/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
study_log="$logs/study.log"
: >"$study_log"

# The study on the GPU: its own build (the evaluation side and the runner), the embedded study's quick form, and a
# BLOOM-560m-shaped study; optional, so the core checks keep their time.
study_stages() {
  local study_build="$root/build-device-study" work="$root/build-device-study/runs"
  optional study_build 300 "$study_log" bash -c \
    'cmake -S "$0" -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$2" \
       -DCMAKE_CXX_FLAGS="-isystem $2/include" -DCMAKE_CUDA_FLAGS="-isystem $2/include" \
       -DPOLYALPACA_BUILD_TESTS=OFF -DPOLYALPACA_USE_OPENBLAS=OFF -DPOLYALPACA_TRAINERS=none \
       -DPOLYALPACA_STUDY_PRESETS=bloom-560m -DPOLYALPACA_STUDY_BACKENDS=cuda -DCMAKE_CUDA_ARCHITECTURES=90 &&
     ninja -C "$1" -j "$3" polyalpaca_study' "$root" "$study_build" "$kit" "$jobs"
  [[ "${status[study_build]}" == PASS ]] || return 0
  rm -rf "$work"
  mkdir -p "$work"
  local runner="$study_build/examples/polyalpaca_study"
  optional study_embedded 120 "$study_log" bash -c \
    'echo "### plan"; "$0" --quick --device cuda --plan --output "$1/embedded" &&
     { t=$SECONDS; "$0" --quick --device cuda --quiet --output "$1/embedded"; rc=$?; echo "wall $((SECONDS - t)) s";
       exit $rc; }' "$runner" "$work"
  cat >"$work/bloom560m.json" <<'JSON'
{"name": "device check: BLOOM-560m shape", "base_model": {"preset": "bloom-560m"}, "methods": ["lora"],
 "languages": ["en", "ru", "zh"], "zero_shot": ["bg"],
 "suite": {"train_per_language": 400, "test_per_language": 16, "pretrain_sentences_per_language": 800, "seed": 0},
 "pretrain": {"steps": 150, "sequence": 128, "micro_batch": 16, "accumulation": 1, "lr": 1e-3},
 "strategies": ["monolingual", "multilingual", "downsampled"], "budgets": [{"records": 512}],
 "hyperparameters": {"lora": {"lr": 1e-3, "warmup_steps": 2, "micro_batch": 4, "global_batch": 32, "cutoff": 512,
                              "val_size": 16, "eval_every": 8, "template": "compact"}},
 "decoding": {"preset": "paper", "batch": 8, "max_prompts": 8, "max_new_tokens": 64},
 "output": "bloom560m", "seed": 42}
JSON
  optional study_bloom560m 200 "$study_log" bash -c \
    'cd "$1" && echo "### plan" && { "$0" bloom560m.json --device cuda --plan || true; } &&
     { t=$SECONDS; "$0" bloom560m.json --device cuda --quiet; rc=$?; echo "wall $((SECONDS - t)) s"; exit $rc; }' \
    "$runner" "$work"
}

if [[ "$only" == study ]]; then
  deadline_s="${DEVICE_CHECK_DEADLINE_S:-540}"
  study_stages
  grep -E "^### |^Plan of study|^\| bloom|^study |^on cuda|trained:|memory:|^runs trained|^wall |error|Error" "$study_log" |
    tee "$logs/summary.txt"
  say "device_check: done (study stages only; logs in $logs)"
  exit 0
fi

stage configure 120 "$build_log" \
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$kit" \
    -DCMAKE_CXX_FLAGS="-isystem $kit/include" -DCMAKE_CUDA_FLAGS="-isystem $kit/include" \
    -DPOLYALPACA_EVAL=OFF -DPOLYALPACA_BUILD_EXAMPLES=OFF -DPOLYALPACA_USE_OPENBLAS=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DPOLYALPACA_CUDA_TEST_BUILD=full

targets=(polyalpaca_bench_cuda_kernels polyalpaca_bench_cuda_train_step)
for source in "$root"/tests/cuda/*.cu; do
  targets+=("cuda_$(basename "$source" .cu)")
done
# Data parallel on NCCL: configured only where MPI and NCCL are found on the device machine.
data_parallel=0
if [[ "${status[configure]}" == PASS ]] &&
   ninja -C "$build" -t targets all 2>/dev/null | grep -q '^polyalpaca_bench_cuda_data_parallel:'; then
  data_parallel=1
  targets+=(polyalpaca_bench_cuda_data_parallel)
fi
if [[ "${status[configure]}" == PASS ]]; then
  stage build 300 "$build_log" ninja -C "$build" -j "$jobs" -k 0 "${targets[@]}"
else
  stages+=(build); status[build]="SKIPPED (configure failed)"
fi
say "build log tail:"; grep -E "error|FAILED" "$build_log" | head -20 || true

bench_dir="$build/bench/cuda"

# Each test takes seconds; 60 s each means a kernel that hangs costs one minute, not the stage. --verbose: the log
# keeps every measured error, of passing tests too.
stage parity 180 "$parity_log" ctest --test-dir "$build" -L cuda --verbose --timeout 60
grep -E "^ *[0-9]+/[0-9]+ Test|tests passed|tests failed" "$parity_log" || true

stage train_step 200 "$train_log" "$bench_dir/polyalpaca_bench_cuda_train_step" --warmup 3 --steps 10
grep -E "^\|" "$train_log" || true

stage peft_lora 120 "$peft_log" "$python" "$root/tools/peft_train_step.py" --mode lora --precision autocast
# The optional stages, most telling first: our steps on the flash kernels (the main speed lever), the full-parameter
# step with the study's gradient accumulation, the fastest PEFT LoRA setup (bf16 weights: the LoRA target is judged
# against the fastest peer), the kernel rates, and PEFT's full-parameter step (the MFU target does not need it).
# (timeout runs programs, not shell functions: the two runs go through bash -c, the binary as $0.)
optional train_step_flash 110 "$train_log" bash -c \
  '"$0" --config bloom-560m-lora --attention flash --warmup 3 --steps 10 &&
   "$0" --config bloom-560m-full --attention flash --warmup 3 --steps 10 &&
   "$0" --config llama-7b-lora --attention flash --warmup 3 --steps 10' \
  "$bench_dir/polyalpaca_bench_cuda_train_step"
grep -E "^\| (bloom-560m-(lora|full)|llama-7b-lora)-flash" "$train_log" || true
# Full-parameter as the study steps: 32 micro-batches of 4 x 512 per AdamW update (a global batch of 128), which
# spreads the update of 559M fp32 weights over 32 micro-batches; on both attention paths.
optional train_step_accumulate 60 "$train_log" bash -c \
  '"$0" --config bloom-560m-full --accumulate 32 --warmup 1 --steps 2 &&
   "$0" --config bloom-560m-full --accumulate 32 --warmup 1 --steps 2 --attention flash' \
  "$bench_dir/polyalpaca_bench_cuda_train_step"
grep -E "^\| bloom-560m-full(-flash)?-acc32" "$train_log" || true
optional peft_lora_bf16 90 "$peft_log" "$python" "$root/tools/peft_train_step.py" --mode lora --precision bf16
optional kernels 120 "$kernels_log" "$bench_dir/polyalpaca_bench_cuda_kernels" --repeat 10
optional peft_full 100 "$peft_log" "$python" "$root/tools/peft_train_step.py" --mode full --precision autocast
# NCCL on this GPU as one rank: the all-reduce by size, replicated and ZeRO-1 steps against no communicator (bit for
# bit), and the step time of each (bench/cuda/data_parallel.cu).
dp_log="$logs/data_parallel.log"
: >"$dp_log"
if (( data_parallel )); then
  optional data_parallel 90 "$dp_log" "$bench_dir/polyalpaca_bench_cuda_data_parallel" --max-bytes 268435456 --steps 5
  grep -E "^parity|^\||^ +[0-9]+ " "$dp_log" || true
else
  stages+=(data_parallel); status[data_parallel]="SKIPPED (MPI or NCCL not found on this machine at configure)"
fi
study_stages

# The summary: parsed from the logs by Python (present wherever PyTorch is).
stage_lines=""
for s in "${stages[@]}"; do stage_lines+="$s=${status[$s]}"$'\n'; done
set +e
STAGES="$stage_lines" "$python" - "$parity_log" "$train_log" "$peft_log" "$kernels_log" "$study_log" <<'PY' | tee "$summary_log"
import json, os, re, sys

parity_log, train_log, peft_log, kernels_log, study_log = sys.argv[1:6]
read = lambda p: open(p, errors="replace").read() if os.path.exists(p) else ""

print("\n================ device check summary ================")
print("stages:")
for line in os.environ.get("STAGES", "").strip().splitlines():
    name, _, state = line.partition("=")
    print(f"  {name:<16} {state}")

print("\nparity (ctest -L cuda):")
tests = re.findall(r"Test\s+#\d+: (\S+) [.\s*]*(Passed|Failed|Not Run|Skipped|Timeout|Exception\S*)", read(parity_log))
for name, result in tests:
    print(f"  {name:<34} {result}")
if not tests:
    print("  (no test results)")

def results(text):
    out = []
    for line in text.splitlines():
        if line.startswith("RESULT "):
            out.append(dict(kv.split("=", 1) for kv in line[7:].split()))
    return out

kern = results(read(kernels_log))
print("\nkernels (H100 SXM peaks: bf16 989.4, tf32 494.7, fp32 66.9 TFLOP/s, HBM 3.35 TB/s):")
for r in kern:
    print(f"  {r['kernel']:<34} {r['math']:<12} {float(r['ms']):9.3f} ms {float(r['rate']):9.1f} {r['unit']:<8} "
          f"{float(r['peak_pct']):5.1f}% of peak")
if not kern:
    print("  (no kernel results)")

ours = {r["config"]: r for r in results(read(train_log))}
peers = []
for line in read(peft_log).splitlines():
    line = line.strip()
    if line.startswith("{") and line.endswith("}"):
        try:
            peers.append(json.loads(line))
        except json.JSONDecodeError:
            pass
peer = {(p["mode"], p["precision"]): p for p in peers}
if peers:
    p0 = peers[0]
    print(f"\npeer: torch {p0.get('torch')}, transformers {p0.get('transformers')}, peft {p0.get('peft')}, "
          f"CUDA {p0.get('cuda')}, attention {p0.get('attention')}, on {p0.get('device')}")

gib = lambda b: float(b) / 2**30
print("\nend-to-end training step, micro-batch 4 x 512 (-acc32: 32 micro-batches per AdamW update):")
print("  (peer peak: torch max_memory_allocated / max_memory_reserved; memory x = ours / peer allocated)")
print(f"  {'config':<27} {'tokens/s':>10} {'MFU':>7} {'peak GiB':>9} | {'peer':<20} {'tokens/s':>10} {'alloc/res GiB':>13} | "
      f"{'speed x':>7} {'memory x':>8}")
pairs = [("bloom-560m-lora", ("lora", "autocast")), ("bloom-560m-lora", ("lora", "bf16")),
         ("bloom-560m-full", ("full", "autocast")), ("llama-7b-lora", None),
         ("bloom-560m-lora-flash", ("lora", "autocast")), ("bloom-560m-full-flash", ("full", "autocast")),
         ("llama-7b-lora-flash", None),
         ("bloom-560m-full-acc32", None), ("bloom-560m-full-flash-acc32", None)]
for cfg, key in pairs:
    o = ours.get(cfg)
    if cfg.endswith(("-flash", "-acc32")) and not o:
        continue  # an optional stage did not run (its status is listed above)
    p = peer.get(key) if key else None
    left = (f"  {cfg:<27} {float(o['tokens_per_s']):10.0f} {100 * float(o['mfu']):6.1f}% {gib(o['peak_bytes']):9.2f}"
            if o else f"  {cfg:<27} {'FAIL':>10} {'-':>7} {'-':>9}")
    if p:
        mem = f"{gib(p['max_memory_allocated']):.2f}/{gib(p.get('max_memory_reserved', 0)):.2f}"
        right = f" | {'peft ' + p['mode'] + ' ' + p['precision']:<20} {p['tokens_per_s']:10.0f} {mem:>13} |"
        ratio = (f" {float(o['tokens_per_s']) / p['tokens_per_s']:7.2f} "
                 f"{float(o['peak_bytes']) / p['max_memory_allocated']:8.2f}") if o else f" {'-':>7} {'-':>8}"
    else:
        right, ratio = f" | {'-':<20} {'-':>10} {'-':>13} |", f" {'-':>7} {'-':>8}" if key else ""
    print(left + right + ratio)

for cfg in ("bloom-560m-lora", "bloom-560m-full", "llama-7b-lora"):
    g, f = ours.get(cfg), ours.get(cfg + "-flash")
    if g and f:
        print(f"  {cfg}: flash attention {float(f['tokens_per_s']) / float(g['tokens_per_s']):.2f}x the GEMM "
              f"attention's tokens/s ({float(f['ms_per_step']):.2f} vs {float(g['ms_per_step']):.2f} ms per step)")

time_rows = [(cfg, o) for cfg, o in ours.items() if "forward_backward_ms" in o]
if time_rows:
    print("\nwhere a step's time goes (ms): forward with the loss, backward (both times the micro-batches), "
          "clip + AdamW:")
    for cfg, o in time_rows:
        n = int(o.get("accumulate", 1))
        step, fwd, fb = float(o["ms_per_step"]), n * float(o["forward_ms"]), n * float(o["forward_backward_ms"])
        print(f"  {cfg:<27} {step:8.2f} = {fwd:8.2f} + {fb - fwd:8.2f} + {step - fb:6.2f}")

profiles = {}
for line in read(train_log).splitlines():
    if line.startswith("PROFILE "):
        row = dict(kv.split("=", 1) for kv in line[8:].split())
        profiles.setdefault(row["config"], []).append(row)
if profiles:
    print("\nby region (one more step, profiled; device ms, exclusive of inner regions; "
          "= forward + backward + update):")
    for cfg, rows in profiles.items():
        parts = {r["region"]: [float(r[k]) for k in ("forward_ms", "backward_ms", "update_ms")] for r in rows}
        total = sum(sum(v) for v in parts.values())
        print(f"  {cfg} ({total:.2f} ms)")
        for region, (f, b, u) in sorted(parts.items(), key=lambda kv: -sum(kv[1])):
            t = f + b + u
            print(f"    {region:<11} {t:8.2f} {100 * t / total if total else 0:5.1f}% = {f:7.2f} + {b:7.2f} + {u:6.2f}")

mem_rows = [(cfg, o) for cfg, o in ours.items() if "parameter_bytes" in o]
if mem_rows:
    print("\nmemory (GiB): peak, fp32 weights (+ trainable grads), AdamW moments, bf16 weight copies, saved "
          "activations, backward temporaries, rest (op scratch, LM head chunk, workspace, pool slack):")
    keys = ("parameter_bytes", "optimizer_bytes", "bf16_copy_bytes", "activation_bytes", "temporaries_bytes")
    for cfg, o in mem_rows:
        parts = [gib(o.get(k, 0)) for k in keys]
        peak = gib(o["peak_bytes"])
        print(f"  {cfg:<27} {peak:7.2f} = {parts[0]:6.2f} + {parts[1]:5.2f} + {parts[2]:6.2f} + {parts[3]:6.2f} "
              f"+ {parts[4]:5.2f} + {peak - sum(parts):6.2f}")

study = [l for l in read(study_log).splitlines()
         if re.search(r"^study |^on cuda|trained:|memory:|^runs trained|^wall |^\| bloom-(study|560m) \| lora|^\| bloom-study \| full", l)]
if study:
    print("\nthe study on the GPU (embedded quick form, then the BLOOM-560m-shaped study; memory: predicted by --plan "
          "against measured):")
    for line in study:
        print("  " + line)

print("\ntargets:")
def verdict(ok):
    return "met" if ok else "NOT met"
def fastest(cfg, suffix=""):  # our faster attention path for cfg: the GEMM path or the flash kernels
    runs = [ours[c] for c in (cfg + suffix, cfg + "-flash" + suffix) if c in ours]
    return max(runs, key=lambda r: float(r["tokens_per_s"])) if runs else None
o = fastest("bloom-560m-lora")
lora_peers = [p for k, p in peer.items() if k[0] == "lora"]
if o and lora_peers:
    best = max(lora_peers, key=lambda p: p["tokens_per_s"])
    ratio = float(o["tokens_per_s"]) / best["tokens_per_s"]
    print(f"  BLOOM-560m LoRA >= 2x HF PEFT tokens/s ({o['config']}; fastest peer: {best['precision']}): "
          f"{ratio:.2f}x -> {verdict(ratio >= 2)}")
else:
    print("  BLOOM-560m LoRA >= 2x HF PEFT tokens/s: not measured -> NOT met")
# Judged on the better of one micro-batch per update and the study's 32; the line names both.
single, study = fastest("bloom-560m-full"), fastest("bloom-560m-full", "-acc32")
runs = [o for o in (single, study) if o]
if runs:
    o = max(runs, key=lambda r: float(r["mfu"]))
    mfu = 100 * float(o["mfu"])
    seen = "; ".join(f"{r['config']} {100 * float(r['mfu']):.1f}%" for r in runs)
    print(f"  full-parameter MFU >= 45% ({seen}): {mfu:.1f}% -> {verdict(mfu >= 45)}")
else:
    print("  full-parameter MFU >= 45%: not measured -> NOT met")
runs = [ours[c] for c in ("llama-7b-lora", "llama-7b-lora-flash") if c in ours]
if runs:
    o = min(runs, key=lambda r: float(r["peak_bytes"]))
    peak = float(o["peak_bytes"])
    seen = "; ".join(f"{r['config']} {float(r['peak_bytes']) / 1e9:.1f} GB" for r in runs)
    print(f"  LLaMA-7B LoRA at 4 x 512 within 80 GB ({seen}): {verdict(peak <= 80e9)}")
else:
    print("  LLaMA-7B LoRA at 4 x 512 within 80 GB: did not run to completion -> NOT met")
PY
[[ ${PIPESTATUS[0]} -eq 0 ]] || say "the summary script failed (see above)"
say "device_check: done (logs in $logs)"
