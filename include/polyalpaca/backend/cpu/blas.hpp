/// @file backend/cpu/blas.hpp
/// @brief Warns once when OpenBLAS runs a generic kernel on a CPU it does not recognise; sets OpenBLAS's threads.
#pragma once

#include <cstdio>
#include <cstring>
#include <string>

#ifdef POLYALPACA_OPENBLAS
extern "C" char* openblas_get_corename(void);
extern "C" void openblas_set_num_threads(int);
#endif

namespace polyalpaca::cpu {

/// OpenBLAS picks its GEMM kernel from the CPU model at load time. A release older than the CPU falls back to
/// a generic SSE kernel ("Prescott") that runs GEMMs several times slower on AVX-512 hardware (docs/performance.md,
/// "Two settings that decide CPU speed"); OPENBLAS_CORETYPE overrides it.
/// Returns the advice to print, or "" when the kernel fits the CPU (or OpenBLAS is not in use).
inline std::string blas_kernel_advice() {
#ifdef POLYALPACA_OPENBLAS
    char const* core = openblas_get_corename();
    bool const generic = core == nullptr || std::strcmp(core, "Prescott") == 0 || std::strcmp(core, "prescott") == 0 ||
                         std::strcmp(core, "Core2") == 0 || std::strcmp(core, "Nehalem") == 0;
    char const* better = __builtin_cpu_supports("avx512f") ? "SkylakeX" : __builtin_cpu_supports("avx2") ? "Haswell" : nullptr;
    if (generic && better)
        return std::string("polyalpaca: OpenBLAS uses its generic '") + (core ? core : "?") +
               "' kernel on a CPU with " + (std::strcmp(better, "SkylakeX") == 0 ? "AVX-512" : "AVX2") +
               "; GEMMs run several times slower. Set OPENBLAS_CORETYPE=" + better +
               " before starting the program (scripts/cpu_env.sh does, for scripts/main.sh and scripts/test.sh).";
#endif
    return {};
}

/// Makes OpenBLAS's GEMMs run on `threads` threads (nothing without OpenBLAS).
inline void set_blas_threads([[maybe_unused]] int threads) {
#ifdef POLYALPACA_OPENBLAS
    openblas_set_num_threads(threads);
#endif
}

/// Prints blas_kernel_advice() to stderr, once per process.
inline void warn_once_about_blas_kernel() {
    static bool const warned = [] {
        auto const advice = blas_kernel_advice();
        if (!advice.empty()) std::fprintf(stderr, "%s\n", advice.c_str());
        return true;
    }();
    (void)warned;
}

}  // namespace polyalpaca::cpu
