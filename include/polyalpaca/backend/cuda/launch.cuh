/// @file backend/cuda/launch.cuh
/// @brief Grid sizes for grid-stride loops, launch checks and an elementwise kernel (block sums are in
/// block_reduce.cuh).
#pragma once

#include <algorithm>
#include <cstdint>

#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/block_reduce.cuh"
#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda::detail {

/// Threads per block of the elementwise, norm and reduction kernels: a multiple of 32, as block_sum needs.
inline constexpr int block_threads = 256;
/// Grid-stride kernels never need more blocks than this (132 SMs x 16 resident blocks, rounded up).
inline constexpr Index max_blocks = Index(1) << 14;

/// Blocks for a grid-stride loop over `work` items, `per_block` items per block per pass; at least 1.
inline unsigned grid_for(Index work, Index per_block = block_threads) {
    return unsigned(std::clamp<Index>((work + per_block - 1) / per_block, 1, max_blocks));
}

/// Throws naming `kernel` when its launch failed (bad configuration, no kernel image for this GPU).
inline void check_launch(char const* kernel) {
    cudaError_t const status = cudaGetLastError();
    require(status == cudaSuccess, "CUDA kernel `", kernel, "` failed to launch: ", cudaGetErrorName(status), " (",
            cudaGetErrorString(status), ")");
}

/// Calls f(i) for i in [0, n) with a grid-stride loop.
template <class F>
__global__ void for_each_kernel(Index n, F f) {
    for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x) f(i);
}

/// Queues f(i) for every i in [0, n) on ctx's stream; n = 0 launches nothing.
template <class F>
void for_each(Context& ctx, Index n, F const& f, char const* kernel) {
    if (n <= 0) return;
    for_each_kernel<<<grid_for(n), block_threads, 0, ctx.stream()>>>(n, f);
    check_launch(kernel);
}

}  // namespace polyalpaca::cuda::detail
