/// @file backend/cuda/bf16.cuh
/// @brief fp32 -> bf16 conversion (round to nearest even) for the GEMM operands of GemmMath::Bf16: activations
/// into scratch per call, weights into the Context's cached bf16 working copies.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda::detail {

/// Scratch slots for the converted first and second operands of one GEMM (Context::scratch).
inline constexpr int bf16_scratch_first = scratch_slot::bf16_first;
inline constexpr int bf16_scratch_second = scratch_slot::bf16_second;

/// x as D: the value itself for float, round to nearest even for bf16.
template <class D>
__device__ inline D from_float(float x) {
    return D(x);
}
template <>
__device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}

/// dst[i] = bf16(src[i]) for i < n, four values per thread (one 16-byte load, one 8-byte store). src must be
/// 16-byte aligned and dst 8-byte aligned. (A template, as every kernel in these headers, so that it is inline.)
template <class T>
__global__ void to_bf16_vec4_kernel(T const* src, Index n, __nv_bfloat16* dst) {
    Index const quads = n / 4;
    auto const* src4 = reinterpret_cast<float4 const*>(src);
    auto* dst4 = reinterpret_cast<uint2*>(dst);
    for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < quads; i += Index(gridDim.x) * blockDim.x) {
        float4 const v = src4[i];  // T is float
        __nv_bfloat162 const lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
        uint2 packed;
        packed.x = *reinterpret_cast<unsigned const*>(&lo);
        packed.y = *reinterpret_cast<unsigned const*>(&hi);
        dst4[i] = packed;
    }
    Index const tail = quads * 4 + Index(blockIdx.x) * blockDim.x + threadIdx.x;
    if (tail < n) dst[tail] = __float2bfloat16_rn(float(src[tail]));
}

/// dst[i] = bf16(src[i]) for i < n, any alignment.
template <class T>
__global__ void to_bf16_kernel(T const* src, Index n, __nv_bfloat16* dst) {
    for (Index i = Index(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += Index(gridDim.x) * blockDim.x)
        dst[i] = __float2bfloat16_rn(float(src[i]));
}

/// Queues dst[i] = bf16(src[i]) for n values on ctx's stream.
inline void to_bf16(Context& ctx, float const* src, Index n, void* dst) {
    if (n <= 0) return;
    auto* out = static_cast<__nv_bfloat16*>(dst);
    bool const vectorised =
        reinterpret_cast<std::uintptr_t>(src) % 16 == 0 && reinterpret_cast<std::uintptr_t>(dst) % 8 == 0;
    if (vectorised) {
        to_bf16_vec4_kernel<float>
            <<<grid_for(n, Index(block_threads) * 4), block_threads, 0, ctx.stream()>>>(src, n, out);
        check_launch("to_bf16_vec4_kernel");
    } else {
        to_bf16_kernel<float><<<grid_for(n), block_threads, 0, ctx.stream()>>>(src, n, out);
        check_launch("to_bf16_kernel");
    }
}

/// The bf16 copy of n activation values at src, converted now into scratch `slot` (256-byte aligned).
inline void const* bf16_scratch(Context& ctx, int slot, float const* src, Index n) {
    void* dst = ctx.scratch(slot, bf16_bytes(n));
    to_bf16(ctx, src, n, dst);
    return dst;
}

/// The bf16 working copy of the n-value weight at w (Context::bf16_copy), converted first when it is stale.
inline void const* bf16_weight(Context& ctx, float const* w, Index n) {
    auto const slot = ctx.bf16_copy(w, std::size_t(n));
    if (slot.stale) to_bf16(ctx, w, n, slot.data);
    return slot.data;
}

}  // namespace polyalpaca::cuda::detail
