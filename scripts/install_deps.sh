#!/usr/bin/env bash
# Installs what polyalpaca needs to build and test on Debian 12 / Ubuntu. Idempotent: when every package is
# already installed it does nothing (no apt at all), so reruns are fast.
set -euo pipefail

packages=(
    build-essential cmake ninja-build pkg-config git jq
    libeigen3-dev libxtensor-dev libboost-program-options-dev catch2 nlohmann-json3-dev libopenblas-dev libonig-dev
    libicu-dev libcld2-dev libcurl4-openssl-dev libopenmpi-dev openmpi-bin libdnnl-dev ocl-icd-opencl-dev
    clang libclang-rt-dev
)

missing=()
for package in "${packages[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
    if [ "$status" != "install ok installed" ]; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "install_deps: all ${#packages[@]} packages are installed"
    exit 0
fi
echo "install_deps: installing ${missing[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_deps: apt-get not found; install these by hand: ${missing[*]}" >&2
    exit 1
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "install_deps: not root and no sudo; install these as root: ${missing[*]}" >&2
        exit 1
    fi
fi

# Refresh the package lists only when apt does not know one of the missing packages yet.
needs_update=0
for package in "${missing[@]}"; do
    if ! apt-cache show "$package" >/dev/null 2>&1; then
        needs_update=1
        break
    fi
done
if [ "$needs_update" -eq 1 ]; then
    "${as_root[@]}" apt-get update
fi
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
