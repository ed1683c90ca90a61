#!/usr/bin/env bash
# Builds the tiny end-to-end trainer (examples/train_tiny.cpp) and runs it with the arguments given.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install_deps.sh
. scripts/cpu_env.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target polyalpaca_train_tiny
exec build/examples/polyalpaca_train_tiny "$@"
