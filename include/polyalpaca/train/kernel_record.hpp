/// @file train/kernel_record.hpp
/// @brief What a program records of the kernels it runs (run_config.json's "attention" and "gemm_math"), for any
///        backend context: on a context that chooses its kernels (cuda::Context), through the very rule the kernels
///        follow (backend/cuda/kernel_choice.hpp); on the CPU backend, its one attention path and its GEMM math.
///        Plain C++: the CUDA context is recognised by its members, so this compiles in a .cpp and in a .cu.
#pragma once

#include <concepts>
#include <string>

#include "polyalpaca/backend/cpu/gemm_math.hpp"
#include "polyalpaca/backend/cuda/kernel_choice.hpp"

namespace polyalpaca {

/// A backend context that chooses its attention kernels and GEMM math (cuda::Context).
template <class Context>
concept ChoosesKernels = requires(Context const& ctx) {
    { ctx.attention_kernel() } -> std::same_as<cuda::AttentionKernel>;
    { ctx.gemm_math() } -> std::same_as<cuda::GemmMath>;
};

/// The head_dim of Model's attention layers: hidden / heads in every family.
template <class Model>
inline constexpr int attention_head_dim = Model::config::hidden / Model::config::heads;

/// The attention kernels that run for this head_dim: "flash" or "gemm" on a context that chooses
/// (cuda::attention_kernel_that_runs), "cpu" on the CPU backend, whose attention has one path.
template <class Backend>
std::string attention_that_runs([[maybe_unused]] typename Backend::Context const& ctx, [[maybe_unused]] int head_dim) {
    if constexpr (ChoosesKernels<typename Backend::Context>)
        return cuda::attention_kernel_that_runs(ctx.attention_kernel(), ctx.gemm_math(), head_dim);
    else
        return "cpu";
}

/// A backend context with a choice of GEMM math (cuda::Context: fp32, tf32, bf16; cpu::Context: fp32, bf16).
template <class Context>
concept ChoosesGemmMath = requires(Context const& ctx) { to_string(ctx.gemm_math()); };

/// How the GEMMs multiply: the context's choice ("fp32", "tf32", "bf16") where it chooses, else "fp32".
template <class Backend>
std::string gemm_math_name([[maybe_unused]] typename Backend::Context const& ctx) {
    if constexpr (ChoosesGemmMath<typename Backend::Context>)
        return to_string(ctx.gemm_math());
    else
        return "fp32";
}

/// Sets the GEMM math by name (a program's --gemm-math): on CUDA "bf16" (also "auto"), "tf32" or "fp32"; on the
/// CPU "fp32", "bf16" (refused where the CPU lacks bf16 units, naming why) or "auto" (bf16 where it has them).
template <class Backend>
void select_gemm_math(typename Backend::Context& ctx, std::string const& name) {
    if constexpr (ChoosesKernels<typename Backend::Context>)
        ctx.set_gemm_math(cuda::gemm_math_from_name(name, "--gemm-math"));
    else if constexpr (ChoosesGemmMath<typename Backend::Context>)
        ctx.set_gemm_math(cpu::gemm_math_from_name(name, "--gemm-math"));
    else
        require(name == "fp32" || name == "auto", "--gemm-math ", name, ": the ", Backend::name,
                " backend multiplies in fp32 only");
}

/// Refuses, before any work, a --gemm-math name that select_gemm_math would refuse on `backend` ("cpu", "cuda").
inline void require_gemm_math(std::string const& backend, std::string const& name) {
    if (backend == "cuda") (void)cuda::gemm_math_from_name(name, "--gemm-math");
    else (void)cpu::gemm_math_from_name(name, "--gemm-math");
}

/// Flash selected for a head_dim whose flash kernels this program lacks is an error naming the head_dim
/// (cuda::require_flash_compiled); a backend with one attention path has nothing to check.
template <class Backend>
void require_attention_compiled([[maybe_unused]] typename Backend::Context const& ctx, [[maybe_unused]] int head_dim) {
    if constexpr (ChoosesKernels<typename Backend::Context>)
        cuda::require_flash_compiled(ctx.attention_kernel(), head_dim);
}

/// Selects the attention kernels by name ("auto", "gemm", "flash") on a context that chooses them; a backend with
/// one attention path accepts only "auto".
template <class Backend>
void select_attention_kernel(typename Backend::Context& ctx, std::string const& name) {
    if constexpr (ChoosesKernels<typename Backend::Context>) {
        if (name == "auto") ctx.set_attention_kernel(cuda::AttentionKernel::Auto);
        else if (name == "gemm") ctx.set_attention_kernel(cuda::AttentionKernel::Gemm);
        else if (name == "flash") ctx.set_attention_kernel(cuda::AttentionKernel::Flash);
        else fail("--attention must be auto, gemm or flash, got '", name, "'");
    } else {
        require(name == "auto", "--attention ", name, ": the ", Backend::name,
                " backend has one attention path; leave --attention at auto");
    }
}

}  // namespace polyalpaca
