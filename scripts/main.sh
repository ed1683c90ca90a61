#!/usr/bin/env bash
# Builds the study runner and runs it with the arguments given: with no study file, the embedded study
# (docs/study.md), which needs nothing outside the repository, on polyalpaca_study_embedded (one small engine); with
# a study file, on polyalpaca_study (an engine per preset of POLYALPACA_STUDY_PRESETS, CPU and, with nvcc, CUDA).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install_deps.sh
. scripts/cpu_env.sh
runner=polyalpaca_study_embedded
for arg in "$@"; do
    case "$arg" in
        -*) ;;
        *.json) runner=polyalpaca_study ;;
    esac
done
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target "$runner"
exec "build/examples/$runner" "$@"
