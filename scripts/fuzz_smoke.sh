#!/usr/bin/env bash
# Smoke pass of the libFuzzer targets in fuzz/ (fuzz/README.md, "CI smoke pass"): builds every target listed by
# fuzz/CMakeLists.txt with clang++ in its own build folder, then runs each for a few seconds over a copy of its seed
# corpus (fuzz/corpus is never written) and prints one line a target. Exits non-zero when a target finds anything
# (crash, leak, timeout, out-of-memory, sanitizer report), after printing its report and keeping its output and
# input under the build folder. Without clang++ or libFuzzer it says so and exits 0.
#   POLYALPACA_FUZZ_BUILD_DIR  build folder (default build-fuzz)
#   POLYALPACA_FUZZ_SECONDS    seconds each target runs, -max_total_time (default 5)
#   POLYALPACA_FUZZ_TIMEOUT    seconds one input may take before libFuzzer reports a timeout, -timeout (default 30)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build_dir="${POLYALPACA_FUZZ_BUILD_DIR:-build-fuzz}"
seconds="${POLYALPACA_FUZZ_SECONDS:-5}"
input_timeout="${POLYALPACA_FUZZ_TIMEOUT:-30}"

if ! command -v clang++ >/dev/null 2>&1; then
    echo "fuzz_smoke: skipped: clang++ not found (Debian: apt-get install clang libclang-rt-dev)"
    exit 0
fi
tmp="$(mktemp -d "${TMPDIR:-/tmp}/polyalpaca_fuzz_smoke.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# libFuzzer ships apart from clang (Debian: libclang-rt-dev): link a do-nothing target to see that it is there.
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$tmp/probe.cpp"
if ! clang++ -fsanitize=fuzzer,address,undefined "$tmp/probe.cpp" -o "$tmp/probe" >"$tmp/probe.log" 2>&1; then
    echo "fuzz_smoke: skipped: clang++ cannot link -fsanitize=fuzzer,address,undefined" \
         "($(head -n 1 "$tmp/probe.log")) (Debian: apt-get install libclang-rt-dev)"
    exit 0
fi

jobs="$(nproc)"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DPOLYALPACA_BUILD_FUZZERS=ON \
      -DPOLYALPACA_BUILD_TESTS=OFF -DPOLYALPACA_BUILD_EXAMPLES=OFF -DPOLYALPACA_BUILD_BENCH=OFF \
      -DPOLYALPACA_ENABLE_CUDA=OFF
build_start="$EPOCHREALTIME"
cmake --build "$build_dir" -j "$jobs" --target polyalpaca_fuzzers
mapfile -t fuzzers <"$build_dir/fuzz/fuzzers.txt"
echo "fuzz_smoke: ${#fuzzers[@]} targets built in $(awk -v a="$build_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s"

# Sets `options` to the target's own options, as fuzz/README.md runs it.
set_fuzzer_options() {
    case "$1" in
        safetensors_header_fuzzer) options=(-max_len=65536 -dict=fuzz/safetensors.dict) ;;
        hf_config_fuzzer) options=(-max_len=4096) ;;
        study_file_fuzzer) options=(-max_len=8192) ;;
        *) options=(-max_len=65536) ;;
    esac
}

export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
findings_dir="$build_dir/fuzz_smoke_findings"   # what a run found: its output and input, kept after the run
rm -rf "$findings_dir"
failed=()
printf '%-28s %8s %12s  %s\n' target seconds executions result
for fuzzer in "${fuzzers[@]}"; do
    seeds="fuzz/corpus/${fuzzer%_fuzzer}"
    work="$tmp/$fuzzer"
    mkdir -p "$work/corpus" "$work/tmp"
    if [ -d "$seeds" ]; then
        cp -R "$seeds/." "$work/corpus/"
    fi
    set_fuzzer_options "$fuzzer"
    limit="$((seconds + input_timeout + 60))"
    start="$EPOCHREALTIME"
    status=0
    # TMPDIR: the targets' own temporary files (fuzz/temp_file.hpp) go under $work too. The outer timeout only
    # guards against a target that stops answering libFuzzer's own limits.
    TMPDIR="$work/tmp" timeout --kill-after=10 "$limit" \
        "$build_dir/fuzz/$fuzzer" "$work/corpus" "${options[@]}" -rss_limit_mb=2048 \
        -max_total_time="$seconds" -timeout="$input_timeout" -print_final_stats=1 \
        -artifact_prefix="$work/" >"$work/log" 2>&1 || status=$?
    elapsed="$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
    executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)"
    if [ "$status" -eq 0 ]; then
        result=clean
    else
        # UBSan's "runtime error" line, else the sanitizer's or libFuzzer's SUMMARY line.
        summary="$(grep -m1 -oE 'runtime error: .*' "$work/log" || grep -m1 '^SUMMARY: ' "$work/log" || true)"
        if [ -z "$summary" ] && { [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; }; then
            summary="killed by timeout after $limit s"
        fi
        summary="${summary:0:100}"
        result="FOUND (exit $status): ${summary:-see its output below}"
        failed+=("$fuzzer")
    fi
    printf '%-28s %8s %12s  %s\n' "$fuzzer" "$elapsed" "${executions:-?}" "$result"
    if [ "$status" -ne 0 ]; then
        mkdir -p "$findings_dir/$fuzzer"
        cp "$work/log" "$findings_dir/$fuzzer/output.log"
        # The report from its first line (the whole output is kept), else the output's last lines.
        report_start='runtime error: |==ERROR: |ERROR: libFuzzer: |^terminate called'
        echo "---- $fuzzer: its report (the whole output: $findings_dir/$fuzzer/output.log) ----"
        if grep -qE "$report_start" "$work/log"; then
            sed -n "$(grep -nE -m1 "$report_start" "$work/log" | cut -d: -f1),\$p" "$work/log" | head -n 50
        else
            tail -n 50 "$work/log"
        fi
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/log" | tail -n 1)"
        if [ -n "$artifact" ] && [ -f "$artifact" ]; then
            cp "$artifact" "$findings_dir/$fuzzer/"
            echo "---- $fuzzer: the input is $findings_dir/$fuzzer/$(basename "$artifact");" \
                 "replay: $build_dir/fuzz/$fuzzer ${options[*]} $findings_dir/$fuzzer/$(basename "$artifact")"
        else
            echo "---- $fuzzer: libFuzzer wrote no input"
        fi
        echo "----"
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz_smoke: ${#failed[@]} of ${#fuzzers[@]} targets found something: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz_smoke: all ${#fuzzers[@]} targets clean, ${seconds} s each"
