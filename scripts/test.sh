#!/usr/bin/env bash
# Builds the test build (Release, Ninja) in build/ and runs the whole CTest suite; exits with ctest's status.
# The test build is every target, with the programs no test runs compiled front end only
# (cmake/PolyalpacaTestBuild.cmake); `cmake --build build` builds those in full.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install_deps.sh
. scripts/cpu_env.sh
jobs="$(nproc)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs" --target polyalpaca_test_build
status=0
ctest --test-dir build --output-on-failure -j "$jobs" || status=$?
exit "$status"
