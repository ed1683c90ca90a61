#!/usr/bin/env bash
# Builds the test build (Release, Ninja) in build/ and runs the whole CTest suite, then the fuzz targets' smoke pass
# (scripts/fuzz_smoke.sh); exits with ctest's status, else the smoke pass's.
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
# Then the libFuzzer targets' smoke pass (build-fuzz/, clang; skipped without it): ctest's status comes first.
fuzz_status=0
bash scripts/fuzz_smoke.sh || fuzz_status=$?
if [ "$status" -eq 0 ]; then
    status="$fuzz_status"
fi
exit "$status"
