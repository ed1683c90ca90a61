# Sourced by main.sh and test.sh: CPU settings that make training several times faster on this kind of machine,
# each applied only when the user has not chosen a value (docs/performance.md has the measurements).
# - OpenBLAS releases older than the CPU fall back to a generic SSE kernel; name the right kernel family.
# - OpenMP threads that spin after a parallel loop steal the cores OpenBLAS's own threads need; let them sleep.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && [ -r /proc/cpuinfo ]; then
    if grep -qm1 -w avx512f /proc/cpuinfo; then
        export OPENBLAS_CORETYPE=SkylakeX
    elif grep -qm1 -w avx2 /proc/cpuinfo; then
        export OPENBLAS_CORETYPE=Haswell
    fi
fi
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
