#!/usr/bin/env bash
# How much the embedded study's summary moves when only the floating-point sums change: runs the study three times
# on this machine (twice alike, then with another OpenBLAS kernel and one thread instead of two) and prints, per
# pair, how many summary cells differ and by how many points at most.
#
# usage: bench/study_reproducibility.sh [--quick] [WORK_DIR]     (build/examples/polyalpaca_study_embedded first)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
quick=()
if [[ "${1:-}" == "--quick" ]]; then quick=(--quick); shift; fi
work="${1:-/tmp/polyalpaca-reproducibility}"
study=build/examples/polyalpaca_study_embedded
[[ -x "$study" ]] || { echo "build $study first" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work"
. scripts/cpu_env.sh

run() {  # name, then environment assignments
    local name="$1"; shift
    local start=$SECONDS
    env "$@" "$study" "${quick[@]}" --quiet --output "$work/$name" > "$work/$name.log" 2>&1
    echo "$name: $(( SECONDS - start )) s ($*)"
}
run a "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE" OMP_NUM_THREADS=2
run b "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE" OMP_NUM_THREADS=2
other=Haswell
[[ "$OPENBLAS_CORETYPE" == Haswell ]] && other=Sandybridge
run c "OPENBLAS_CORETYPE=$other" OMP_NUM_THREADS=1

# The summary's cells: "12.5 [3.1, 25.0]" -> 12.5, one line per (table row, column).
cells() {
    sed -n '/^| method | budget | strategy |/,/^$/p' "$work/$1.log" | grep '^| ' | grep -v '^| method\|^|---' |
        awk -F'|' '{ for (i = 5; i < NF; ++i) { split($i, v, " "); print NR "," i "," v[1] } }'
}
compare() {
    paste -d' ' <(cells "$1") <(cells "$2") | awk -v pair="$1 vs $2" '
        { split($1, x, ","); split($2, y, ","); if (x[3] == "–") next; n++
          d = x[3] - y[3]; if (d < 0) d = -d; if (d > 0) differ++; if (d > worst) worst = d; sum += d }
        END { printf "%s: %d cells, %d differ, largest difference %.1f points, mean %.2f\n", pair, n, differ,
              worst, n ? sum / n : 0 }'
}
compare a b
compare a c
