/// @file backend/cuda/kernel_choice.hpp
/// @brief The CUDA backend's kernel choices as plain C++ (no CUDA headers): the GEMM math, the attention kernel
///        and the rule that says which attention kernels run for a head_dim. The Context holds the choices
///        (context.cuh); the rule is here so that host-only code (a memory plan, a test, a trainer's record of
///        what ran) applies the very rule the kernels follow.
#pragma once

#include <string>

#include "polyalpaca/backend/cuda/flash_attention_tile.hpp"
#include "polyalpaca/core/error.hpp"

namespace polyalpaca::cuda {

/// How cuBLASLt multiplies fp32 matrices. Storage stays fp32 (the master weights) in every mode.
enum class GemmMath {
    Fp32,  // CUBLAS_COMPUTE_32F: exact fp32, no tensor cores (parity tests)
    Tf32,  // CUBLAS_COMPUTE_32F_FAST_TF32: tf32 tensor cores, fp32 accumulation
    Bf16,  // bf16 operands (rounded to nearest even; weights from the context's bf16 working copies), bf16 tensor
           // cores, fp32 accumulation, fp32 output (CUBLAS_COMPUTE_32F with A/B in CUDA_R_16BF)
};

/// How attention_forward / attention_backward (attention.cuh) compute causal attention. Gemm: cuBLASLt GEMMs and
/// a softmax kernel, saving the (seq x seq) probabilities. Flash: the fused kernels of flash_attention.cuh, saving
/// 2 floats per query row (attention_state_cols). Auto (the default): Flash where it measured faster, Gemm
/// elsewhere (flash_attention_chosen below). A head_dim without a flash instantiation runs Gemm under Auto;
/// selecting Flash for it is an error (require_flash_compiled). Keep the same kernel (and GemmMath, under Auto)
/// between a forward and its backward.
enum class AttentionKernel { Auto, Gemm, Flash };

inline char const* to_string(GemmMath math) {
    switch (math) {
        case GemmMath::Fp32: return "fp32";
        case GemmMath::Tf32: return "tf32";
        case GemmMath::Bf16: return "bf16";
    }
    return "?";
}

/// The math a program asked for by name: "bf16" (also "auto"), "tf32" or "fp32"; `option` names the setting.
inline GemmMath gemm_math_from_name(std::string const& name, char const* option) {
    if (name == "auto" || name == "bf16") return GemmMath::Bf16;
    if (name == "tf32") return GemmMath::Tf32;
    require(name == "fp32", option, " must be auto, bf16, tf32 or fp32 on CUDA, got '", name, "'");
    return GemmMath::Fp32;
}

inline char const* to_string(AttentionKernel kernel) {
    switch (kernel) {
        case AttentionKernel::Auto: return "auto";
        case AttentionKernel::Gemm: return "gemm";
        case AttentionKernel::Flash: return "flash";
    }
    return "?";
}

/// The largest head_dim AttentionKernel::Auto runs on the flash kernels (in GemmMath::Bf16). At head_dim 64
/// (BLOOM-560m) the tensor-core flash kernels beat the GEMM path forward and backward, with less memory; at 128
/// (LLaMA-7B) the 32 x 32 tiles that shared memory allows lose the backward, and the step is slower (H100
/// measurements: bench/README.md). Select Flash by hand there when the (seq x seq) probabilities do not fit.
inline constexpr int auto_flash_max_head_dim = 64;

/// True when attention of this head_dim runs on the flash kernels: instantiated for it (this translation unit's
/// POLYALPACA_FLASH_HEAD_DIMS), and Flash selected, or Auto in GemmMath::Bf16 with head_dim <=
/// auto_flash_max_head_dim.
inline bool flash_attention_chosen(AttentionKernel kernel, GemmMath math, int head_dim) {
    if (!flash::supported_head_dim(head_dim)) return false;
    switch (kernel) {
        case AttentionKernel::Flash: return true;
        case AttentionKernel::Gemm: return false;
        case AttentionKernel::Auto: break;
    }
    return math == GemmMath::Bf16 && head_dim <= auto_flash_max_head_dim;
}

/// "flash" or "gemm": the attention kernels that run for this choice and head_dim.
inline std::string attention_kernel_that_runs(AttentionKernel kernel, GemmMath math, int head_dim) {
    return flash_attention_chosen(kernel, math, head_dim) ? "flash" : "gemm";
}

/// Flash selected for a head_dim whose kernels this program was not compiled with is an error, not a silent
/// fall back to the GEMM path.
inline void require_flash_compiled(AttentionKernel kernel, int head_dim) {
    require(kernel != AttentionKernel::Flash || flash::supported_head_dim(head_dim),
            "the flash attention kernels are not compiled for head_dim ", head_dim,
            " in this program (POLYALPACA_FLASH_HEAD_DIMS; polyalpaca_flash_head_dims() in CMake)");
}

}  // namespace polyalpaca::cuda
