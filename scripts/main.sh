#!/usr/bin/env bash
# Builds the study runner (examples/polyalpaca_study.cpp) and runs it with the arguments given: with none, the
# embedded study (docs/study.md), which needs nothing outside the repository.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install_deps.sh
. scripts/cpu_env.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target polyalpaca_study
exec build/examples/polyalpaca_study "$@"
