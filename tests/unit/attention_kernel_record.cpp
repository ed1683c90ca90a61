/// @file tests/unit/attention_kernel_record.cpp
/// @brief What a trainer records in run_config.json as the attention that ran (train/kernel_record.hpp) is what
/// the CUDA kernels' rule chooses (backend/cuda/kernel_choice.hpp), for every kernel, GEMM math and head_dim, and
/// Flash for a head_dim without flash kernels is an error naming it. A stand-in for cuda::Context with the same
/// two members takes the CUDA branch in this plain C++ build. This file sets no POLYALPACA_FLASH_HEAD_DIMS, so the
/// default five are compiled and 48 is not.
#include <string>

#include <catch2/catch.hpp>

#include "polyalpaca/backend/cpu_eigen.hpp"
#include "polyalpaca/models/bloom.hpp"
#include "polyalpaca/models/gpt_neox.hpp"
#include "polyalpaca/models/llama.hpp"
#include "polyalpaca/train/kernel_record.hpp"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;
using cu::AttentionKernel;
using cu::GemmMath;

namespace {

/// A backend whose context chooses its kernels as cuda::Context does, without CUDA.
struct ChoosingBackend {
    struct Context {
        AttentionKernel kernel = AttentionKernel::Auto;
        GemmMath math = GemmMath::Bf16;
        AttentionKernel attention_kernel() const { return kernel; }
        GemmMath gemm_math() const { return math; }
    };
};
static_assert(pa::ChoosesKernels<ChoosingBackend::Context>);
static_assert(!pa::ChoosesKernels<pa::cpu::Context>);

constexpr AttentionKernel all_kernels[] = {AttentionKernel::Auto, AttentionKernel::Gemm, AttentionKernel::Flash};
constexpr GemmMath all_maths[] = {GemmMath::Fp32, GemmMath::Tf32, GemmMath::Bf16};
constexpr int compiled_head_dims[] = {32, 64, 80, 96, 128};
constexpr int head_dims[] = {32, 64, 80, 96, 128, 48};

/// The head_dim the model's attention layers are built with.
template <class Model>
constexpr int layer_head_dim = Model::template Parts<pa::CpuEigen, float>::Attention::head_dim;

std::string chosen_by_rule(AttentionKernel kernel, GemmMath math, int head_dim) {
    return cu::flash_attention_chosen(kernel, math, head_dim) ? "flash" : "gemm";
}

}  // namespace

TEST_CASE("kernel record: the attention recorded is the one the kernels' rule runs", "[unit]") {
    for (auto kernel : all_kernels)
        for (auto math : all_maths)
            for (int head_dim : head_dims) {
                INFO(cu::to_string(kernel) << ", GEMM math " << cu::to_string(math) << ", head_dim " << head_dim);
                auto const chosen = chosen_by_rule(kernel, math, head_dim);
                CHECK(cu::attention_kernel_that_runs(kernel, math, head_dim) == chosen);
                ChoosingBackend::Context const ctx{kernel, math};
                CHECK(pa::attention_that_runs<ChoosingBackend>(ctx, head_dim) == chosen);
                CHECK(pa::gemm_math_name<ChoosingBackend>(ctx) == cu::to_string(math));
            }
}

TEST_CASE("kernel record: the rule itself (Auto: flash in Bf16 up to head_dim 64; by hand: as selected)", "[unit]") {
    auto runs = [](AttentionKernel kernel, GemmMath math, int head_dim) {
        return pa::attention_that_runs<ChoosingBackend>({kernel, math}, head_dim);
    };
    CHECK(runs(AttentionKernel::Auto, GemmMath::Bf16, 32) == "flash");
    CHECK(runs(AttentionKernel::Auto, GemmMath::Bf16, 64) == "flash");
    CHECK(runs(AttentionKernel::Auto, GemmMath::Bf16, 80) == "gemm");
    CHECK(runs(AttentionKernel::Auto, GemmMath::Bf16, 128) == "gemm");
    CHECK(runs(AttentionKernel::Auto, GemmMath::Fp32, 64) == "gemm");
    CHECK(runs(AttentionKernel::Auto, GemmMath::Tf32, 64) == "gemm");
    for (int head_dim : compiled_head_dims)
        for (auto math : all_maths) {
            CHECK(runs(AttentionKernel::Flash, math, head_dim) == "flash");
            CHECK(runs(AttentionKernel::Gemm, math, head_dim) == "gemm");
        }
    CHECK(runs(AttentionKernel::Auto, GemmMath::Bf16, 48) == "gemm");  // no flash kernels for 48
}

TEST_CASE("kernel record: Flash for a head_dim without flash kernels is an error naming it", "[unit]") {
    REQUIRE_FALSE(cu::flash::supported_head_dim(48));
    CHECK_THROWS_WITH(cu::require_flash_compiled(AttentionKernel::Flash, 48), Catch::Contains("head_dim 48"));
    ChoosingBackend::Context const flash{AttentionKernel::Flash, GemmMath::Bf16};
    CHECK_THROWS_WITH(pa::require_attention_compiled<ChoosingBackend>(flash, 48), Catch::Contains("head_dim 48"));
    for (int head_dim : compiled_head_dims)
        CHECK_NOTHROW(pa::require_attention_compiled<ChoosingBackend>(flash, head_dim));
    for (auto kernel : {AttentionKernel::Auto, AttentionKernel::Gemm})
        CHECK_NOTHROW(pa::require_attention_compiled<ChoosingBackend>({kernel, GemmMath::Bf16}, 48));
}

TEST_CASE("kernel record: the CPU backend records its one attention path and fp32 GEMMs", "[unit]") {
    pa::cpu::Context ctx;
    for (int head_dim : head_dims) {
        CHECK(pa::attention_that_runs<pa::CpuEigen>(ctx, head_dim) == "cpu");
        CHECK_NOTHROW(pa::require_attention_compiled<pa::CpuEigen>(ctx, head_dim));
    }
    CHECK(pa::gemm_math_name<pa::CpuEigen>(ctx) == "fp32");
}

TEST_CASE("kernel record: a model's head_dim is its attention layers'", "[unit]") {
    using Bloom560m = pa::Bloom<pa::bloom::Size560m>;
    using BloomMini = pa::Bloom<pa::bloom::SizeMini>;
    using Pythia410m = pa::GptNeoX<pa::gpt_neox::Size410m>;
    using Llama7b = pa::Llama<pa::llama::Size7b>;
    using OpenLlama3b = pa::Llama<pa::llama::OpenLlama3b>;
    STATIC_REQUIRE(pa::attention_head_dim<Bloom560m> == 64);
    STATIC_REQUIRE(pa::attention_head_dim<BloomMini> == 16);
    STATIC_REQUIRE(pa::attention_head_dim<Pythia410m> == 64);
    STATIC_REQUIRE(pa::attention_head_dim<Llama7b> == 128);
    STATIC_REQUIRE(pa::attention_head_dim<OpenLlama3b> == 100);
    STATIC_REQUIRE(pa::attention_head_dim<Bloom560m> == layer_head_dim<Bloom560m>);
    STATIC_REQUIRE(pa::attention_head_dim<BloomMini> == layer_head_dim<BloomMini>);
    STATIC_REQUIRE(pa::attention_head_dim<Pythia410m> == layer_head_dim<Pythia410m>);
    STATIC_REQUIRE(pa::attention_head_dim<Llama7b> == layer_head_dim<Llama7b>);
    STATIC_REQUIRE(pa::attention_head_dim<OpenLlama3b> == layer_head_dim<OpenLlama3b>);
}
