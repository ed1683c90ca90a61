/// @file backend/cuda/block_reduce.cuh
/// @brief Block-wide sum and max for kernels that give one block to one row (softmax, cross-entropy).
///
/// Warps reduce with shuffles, then every thread adds the per-warp results in warp order: the result is the same
/// on every thread and the same from run to run (deterministic). blockDim.x must be a multiple of 32, at most 1024.
#pragma once

#include <cuda_runtime.h>

namespace polyalpaca::cuda::detail {

template <class T>
__device__ T warp_sum(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}
template <class T>
__device__ T warp_max(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

/// The sum of v over the block, returned to every thread. Calls __syncthreads; every thread must call it.
template <class T>
__device__ T block_sum(T v) {
    __shared__ T partial[32];
    v = warp_sum(v);
    __syncthreads();  // an earlier call's readers are done with `partial`
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
    __syncthreads();
    T total = T(0);
    for (unsigned w = 0; w < blockDim.x / 32; ++w) total += partial[w];
    return total;
}

/// The max of v over the block, returned to every thread. Calls __syncthreads; every thread must call it.
template <class T>
__device__ T block_max(T v) {
    __shared__ T partial[32];
    v = warp_max(v);
    __syncthreads();
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
    __syncthreads();
    T total = partial[0];
    for (unsigned w = 1; w < blockDim.x / 32; ++w) total = max(total, partial[w]);
    return total;
}

}  // namespace polyalpaca::cuda::detail
