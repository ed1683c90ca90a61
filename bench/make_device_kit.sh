#!/usr/bin/env bash
# Copies the header-only and small native dependencies the build needs into .devkit/ (repository root), laid out
# as an install prefix, so that a machine without them (and without network) can configure and build with
#   cmake -DCMAKE_PREFIX_PATH=$PWD/.devkit -DCMAKE_CXX_FLAGS="-isystem $PWD/.devkit/include" ...
# (bench/device_check.sh does exactly that). Contents: Eigen 3 (headers + CMake package), xtensor and xtl,
# Catch2 2.x (headers + CMake package), nlohmann json, oniguruma and ICU (headers + shared libraries), and for the
# study runner CLD2 (headers + shared library) and Boost.Program_options (the headers it includes, its shared library
# and its CMake package). Run from anywhere on a Debian/Ubuntu machine with libeigen3-dev, xtensor-dev, libxtl-dev,
# catch2, nlohmann-json3-dev, libonig-dev, libicu-dev, libcld2-dev and libboost-program-options-dev installed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kit="$root/.devkit"
multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
libdir="/usr/lib/$multiarch"

need() {
  if [[ ! -e "$1" ]]; then
    echo "make_device_kit.sh: $1 is missing (install the package that provides it: $2)" >&2
    exit 1
  fi
}
need /usr/include/eigen3/Eigen/Core libeigen3-dev
need /usr/share/eigen3/cmake/Eigen3Config.cmake libeigen3-dev
need /usr/include/xtensor/xtensor.hpp xtensor-dev
need /usr/include/xtl/xtl_config.hpp libxtl-dev
need /usr/include/catch2/catch.hpp catch2
need /usr/lib/cmake/Catch2/Catch2Config.cmake catch2
need /usr/include/nlohmann/json.hpp nlohmann-json3-dev
need /usr/include/oniguruma.h libonig-dev
need "$libdir/libonig.so" libonig-dev
need /usr/include/unicode/uchar.h libicu-dev
need "$libdir/libicuuc.so" libicu-dev
need /usr/include/cld2/public/compact_lang_det.h libcld2-dev
need "$libdir/libcld2.so" libcld2-dev
need /usr/include/boost/program_options.hpp libboost-program-options-dev
boost_cmake="$(ls -d "$libdir"/cmake/boost_program_options-* 2>/dev/null | head -1)"
need "${boost_cmake:-$libdir/cmake/boost_program_options-<version>}" libboost-program-options-dev

rm -rf "$kit.tmp"
mkdir -p "$kit.tmp/include" "$kit.tmp/lib/cmake" "$kit.tmp/share/eigen3"

# Headers. Eigen keeps its include/eigen3 layout, which its CMake package (Eigen3Targets.cmake: <prefix>/include/eigen3)
# expects; the others go straight under include/.
cp -rL /usr/include/eigen3 "$kit.tmp/include/"
cp -rL /usr/include/xtensor /usr/include/xtl /usr/include/catch2 /usr/include/nlohmann "$kit.tmp/include/"
cp -L /usr/include/oniguruma.h /usr/include/oniggnu.h /usr/include/onigposix.h "$kit.tmp/include/"

# CMake packages: each Targets file finds its prefix relative to itself, so the same depth below the kit works.
cp -rL /usr/share/eigen3/cmake "$kit.tmp/share/eigen3/"
cp -rL /usr/lib/cmake/Catch2 "$kit.tmp/lib/cmake/"
if [[ -e /usr/lib/libCatch2WithMain.a ]]; then cp -L /usr/lib/libCatch2WithMain.a "$kit.tmp/lib/"; fi  # named by Catch2Targets

# Oniguruma's shared library (found by cmake/PolyalpacaOniguruma.cmake's find_library fallback).
for f in "$libdir"/libonig.so*; do cp -L "$f" "$kit.tmp/lib/"; done  # real files: links may not travel

# ICU: the headers tokenizer/unicode.hpp includes (with those they include), libicuuc under the name the linker looks
# for and under its soname, and the data library it needs (31 MB) gzipped under its soname, which
# bench/device_check.sh unpacks (and puts on LD_LIBRARY_PATH): the kit has to stay small enough to travel.
grep -h '^#include <unicode/' "$root/include/polyalpaca/tokenizer/unicode.hpp" | g++ -std=c++20 -x c++ -M - |
  tr ' \\' '\n\n' | grep '^/usr/include/unicode/' | sort -u | while read -r header; do
    mkdir -p "$kit.tmp/include/unicode"
    cp -L "$header" "$kit.tmp/include/unicode/"
  done
soname() { objdump -p "$1" | awk '$1 == "SONAME" { print $2 }'; }
cp -L "$libdir/libicuuc.so" "$kit.tmp/lib/"
cp -L "$libdir/libicuuc.so" "$kit.tmp/lib/$(soname "$libdir/libicuuc.so")"
data="$(ldd "$libdir/libicuuc.so" | awk '/libicudata/ { print $3 }')"
gzip -9 -c "$data" >"$kit.tmp/lib/$(soname "$data").gz"

# CLD2: headers and the shared library (cmake/PolyalpacaEval.cmake finds both under the prefix).
cp -rL /usr/include/cld2 "$kit.tmp/include/"
for f in "$libdir"/libcld2.so*; do cp -L "$f" "$kit.tmp/lib/"; done

# Boost.Program_options: the headers a translation unit including it reads (with Boost's whole config/), the
# shared library and the CMake packages, kept at lib/<multiarch>/ where those packages look for both (they find
# include/ three levels above their own folder).
mkdir -p "$kit.tmp/lib/$multiarch/cmake"
echo '#include <boost/program_options.hpp>' | g++ -std=c++20 -x c++ -M - | tr ' \\' '\n\n' |
  grep '^/usr/include/boost/' | sort -u | while read -r header; do
    mkdir -p "$kit.tmp/include/$(dirname "${header#/usr/include/}")"
    cp -L "$header" "$kit.tmp/include/${header#/usr/include/}"
  done
cp -rL /usr/include/boost/config "$kit.tmp/include/boost/"
for f in "$libdir"/libboost_program_options.so*; do cp -L "$f" "$kit.tmp/lib/$multiarch/"; done
version="${boost_cmake##*-}"
for package in Boost boost_headers boost_program_options; do
  cp -rL "$libdir/cmake/$package-$version" "$kit.tmp/lib/$multiarch/cmake/"
done
cp -L "$libdir/cmake/BoostDetectToolset-$version.cmake" "$kit.tmp/lib/$multiarch/cmake/" 2>/dev/null || true

rm -rf "$kit"
mv "$kit.tmp" "$kit"
echo "make_device_kit.sh: wrote $kit ($(du -sh "$kit" | cut -f1))"
