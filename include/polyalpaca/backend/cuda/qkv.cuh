/// @file backend/cuda/qkv.cuh
/// @brief Splitting a fused query_key_value projection into q, k, v on the GPU, and merging their gradients
/// back; same names, arguments and checks as backend/cpu/qkv.hpp. One thread per fused element.
#pragma once

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace detail {

/// fused (n, heads * 3 * head_dim) laid out per head as [q_h | k_h | v_h]; q, k, v (n, heads * head_dim).
/// Split (Merge false) copies fused into q, k, v; Merge true copies q, k, v into fused.
template <class T, bool Merge>
__global__ void fused_qkv_kernel(T* fused, T* q, T* k, T* v, Index n, int heads, int head_dim) {
    Index const width = Index(heads) * head_dim;
    for (Index e = Index(blockIdx.x) * blockDim.x + threadIdx.x; e < n * 3 * width;
         e += Index(gridDim.x) * blockDim.x) {
        Index const r = e / (3 * width);
        Index const c = e - r * 3 * width;
        Index const h = c / (3 * head_dim);
        Index const within = c - h * 3 * head_dim;  // [0, 3 * head_dim)
        Index const part = within / head_dim;       // 0 q, 1 k, 2 v
        Index const d = within - part * head_dim;
        T* const target = part == 0 ? q : (part == 1 ? k : v);
        Index const at = r * width + h * head_dim + d;
        if constexpr (Merge)
            fused[e] = target[at];
        else
            target[at] = fused[e];
    }
}

}  // namespace detail

/// fused (N, heads*3*head_dim) -> q, k, v (N, heads*head_dim).
inline void split_fused_qkv(Context& ctx, View<float const> fused, View<float> q, View<float> k, View<float> v,
                            int heads, int head_dim) {
    Index const width = Index(heads) * head_dim;
    require_shape(fused, q.rows, 3 * width, "split_fused_qkv: fused");
    for (auto const& out : {q, k, v}) require_shape(out, fused.rows, width, "split_fused_qkv: q/k/v");
    if (fused.size() == 0) return;
    ctx.make_current();
    detail::fused_qkv_kernel<float, false><<<detail::grid_for(fused.size()), detail::block_threads, 0, ctx.stream()>>>(
        const_cast<float*>(fused.data), q.data, k.data, v.data, fused.rows, heads, head_dim);
    detail::check_launch("split_fused_qkv");
}

/// The inverse layout: writes dq, dk, dv (N, heads*head_dim) into dfused (N, heads*3*head_dim).
inline void merge_fused_qkv(Context& ctx, View<float const> dq, View<float const> dk, View<float const> dv,
                            View<float> dfused, int heads, int head_dim) {
    Index const width = Index(heads) * head_dim;
    require_shape(dfused, dq.rows, 3 * width, "merge_fused_qkv: dfused");
    for (auto const& in : {dq, dk, dv}) require_shape(in, dfused.rows, width, "merge_fused_qkv: dq/dk/dv");
    if (dfused.size() == 0) return;
    ctx.make_current();
    // The kernel only reads dq, dk, dv when merging; one pointer type serves both directions.
    detail::fused_qkv_kernel<float, true><<<detail::grid_for(dfused.size()), detail::block_threads, 0, ctx.stream()>>>(
        dfused.data, const_cast<float*>(dq.data), const_cast<float*>(dk.data), const_cast<float*>(dv.data), dfused.rows,
        heads, head_dim);
    detail::check_launch("merge_fused_qkv");
}

}  // namespace polyalpaca::cuda
