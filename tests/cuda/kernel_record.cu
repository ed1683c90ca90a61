/// @file tests/cuda/kernel_record.cu
/// @brief train/kernel_record.hpp on the real cuda::Context (tests/unit/attention_kernel_record.cpp uses a
/// stand-in): the context takes the CUDA branch (a static_assert, checked wherever nvcc builds the tests), and for
/// every kernel, GEMM math and head_dim the attention recorded is the path attention_forward takes, as
/// attention_state_cols sizes its saved state for it. This program compiles no flash head dims
/// (tests/cuda/CMakeLists.txt), as a trainer with HEAD_DIMS NONE: every choice records gemm, and Flash is an error
/// naming the head_dim. Skipped (77) without a GPU.
#include <cstdio>
#include <string>

#include "cuda_test.cuh"

#include "polyalpaca/backend/cuda.cuh"
#include "polyalpaca/train/kernel_record.hpp"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;
using pa::cuda_test::expect;
using pa::cuda_test::expect_error;

static_assert(pa::ChoosesKernels<cu::Context>, "cuda::Context must take kernel_record.hpp's CUDA branch");

int main() {
    if (pa::cuda_test::no_gpu("cuda.kernel_record")) return 77;
    try {
        cu::Context ctx;
        for (auto kernel : {cu::AttentionKernel::Auto, cu::AttentionKernel::Gemm, cu::AttentionKernel::Flash})
            for (auto math : {cu::GemmMath::Fp32, cu::GemmMath::Tf32, cu::GemmMath::Bf16}) {
                ctx.set_attention_kernel(kernel);
                ctx.set_gemm_math(math);
                std::string const what = std::string(cu::to_string(kernel)) + ", " + cu::to_string(math);
                expect(pa::gemm_math_name<pa::Cuda>(ctx) == cu::to_string(math), what + ": gemm_math recorded");
                for (int head_dim : {32, 64, 80, 96, 128, 48}) {
                    bool const flash_runs = cu::attention_state_cols(ctx, {1, 16, 2, 2, head_dim}) == 2;
                    std::string const recorded = pa::attention_that_runs<pa::Cuda>(ctx, head_dim);
                    expect(recorded == (flash_runs ? "flash" : "gemm"),
                           what + ", head_dim " + std::to_string(head_dim) + ": recorded " + recorded);
                    expect(recorded == "gemm", what + ": no flash head dims are compiled here");
                    if (kernel == cu::AttentionKernel::Flash)
                        expect_error([&] { pa::require_attention_compiled<pa::Cuda>(ctx, head_dim); },
                                     "head_dim " + std::to_string(head_dim), what + ": Flash without its kernels");
                }
            }
    } catch (std::exception const& e) {
        std::printf("FAIL: cuda.kernel_record threw: %s\n", e.what());
        return 1;
    }
    return pa::cuda_test::finish("cuda.kernel_record");
}
