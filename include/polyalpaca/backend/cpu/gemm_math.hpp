/// @file backend/cpu/gemm_math.hpp
/// @brief How the CPU backend multiplies its large matrices: fp32 (oneDNN's matmul where the build has it, else Eigen
///        over OpenBLAS) or bf16 operands with fp32 accumulation (oneDNN), and whether this CPU and build can do
///        the latter at speed.
#pragma once

#include <string>

#ifdef POLYALPACA_ONEDNN
#include <dnnl.h>  // the C API: nvcc's front end compiles it (not the C++ one), so .cu files see this same code
#endif

#include "polyalpaca/core/error.hpp"

namespace polyalpaca::cpu {

/// Storage stays fp32 (the master weights) in both modes.
enum class GemmMath {
    Fp32,  // fp32 operands and accumulation (the default; what the parity tests hold to 1e-5)
    Bf16,  // operands rounded to bf16 (nearest even; weights from the context's bf16 working copies), products
           // accumulated in fp32 into fp32 outputs: oneDNN's matmul, on AVX512_BF16 or AMX units where present.
           // Attention's products too (attention_bf16.hpp), and the cross-entropy takes its exps in float (loss.hpp)
};

inline char const* to_string(GemmMath math) { return math == GemmMath::Bf16 ? "bf16" : "fp32"; }

/// True when this build has oneDNN (POLYALPACA_ONEDNN; Debian: libdnnl-dev), so GemmMath::Bf16 can run at all.
inline constexpr bool bf16_gemms_built =
#ifdef POLYALPACA_ONEDNN
    true;
#else
    false;
#endif

/// True when oneDNN can multiply bf16 matrices on this CPU at all, on bf16 units or emulated (oneDNN 2.6 needs
/// AVX-512 for the latter; an AVX2 CPU has no bf16 matmul). Tests of GemmMath::Bf16 run where this holds.
inline bool bf16_gemms_runnable() {
#ifdef POLYALPACA_ONEDNN
    static bool const runnable = [] {
        dnnl_engine_t engine = nullptr;
        if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) return false;
        dnnl_dims_t const dims{16, 16};
        dnnl_memory_desc_t in, out;
        dnnl_matmul_desc_t matmul;
        dnnl_primitive_desc_t pd = nullptr;
        bool const ok = dnnl_memory_desc_init_by_tag(&in, 2, dims, dnnl_bf16, dnnl_ab) == dnnl_success &&
                        dnnl_memory_desc_init_by_tag(&out, 2, dims, dnnl_f32, dnnl_ab) == dnnl_success &&
                        dnnl_matmul_desc_init(&matmul, &in, &in, nullptr, &out) == dnnl_success &&
                        dnnl_primitive_desc_create(&pd, &matmul, nullptr, engine, nullptr) == dnnl_success;
        if (pd) dnnl_primitive_desc_destroy(pd);
        dnnl_engine_destroy(engine);
        return ok;
    }();
    return runnable;
#else
    return false;
#endif
}

/// Why bf16 GEMMs would not be faster here than fp32 ones, or "" when they run on bf16 dot-product units
/// (AVX512_BF16 or AMX, as oneDNN detects them). Elsewhere oneDNN emulates bf16, slower than the fp32 path.
inline std::string bf16_gemms_missing() {
#ifdef POLYALPACA_ONEDNN
    // oneDNN's ISA values are feature masks: AMX's includes AVX512_BF16's.
    auto const isa = unsigned(dnnl_get_effective_cpu_isa()), bf16 = unsigned(dnnl_cpu_isa_avx512_core_bf16);
    return (isa & bf16) == bf16 ? std::string() : "this CPU has neither AVX512_BF16 nor AMX";
#else
    return "this build has no oneDNN (Debian: apt-get install libdnnl-dev, then configure again)";
#endif
}

/// The math a program asked for by name: "fp32", "bf16" (refused where bf16_gemms_missing() says why) or "auto"
/// (bf16 where the CPU has the units, else fp32). `option` names the setting in the message.
inline GemmMath gemm_math_from_name(std::string const& name, char const* option) {
    if (name == "fp32") return GemmMath::Fp32;
    if (name == "auto") return bf16_gemms_missing().empty() ? GemmMath::Bf16 : GemmMath::Fp32;
    require(name == "bf16", option, " must be fp32, bf16 or auto on the CPU, got '", name, "'");
    auto const missing = bf16_gemms_missing();
    require(missing.empty(), option, " bf16: ", missing, "; use fp32 (or auto, which picks what the CPU has)");
    return GemmMath::Bf16;
}

}  // namespace polyalpaca::cpu
