/// @file backend/cuda/rope.cuh
/// @brief Rotary position embedding (RoPE) on the GPU, in place, in the HF rotate-half or the Meta
/// adjacent-pairs layout; same names, arguments and checks as backend/cpu/rope.hpp. A first kernel writes the
/// (seq, rotary_dim / 2) cos and sin tables, computed in double and rounded once to float as the CPU does; a
/// second turns one pair per thread.
#pragma once

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace detail {

/// Scratch slot holding the cos and sin tables.
inline constexpr int rope_scratch_slot = scratch_slot::rope_tables;

inline void check_rope_input(View<float> const& x, int seq, int position_offset, RopeSpec const& spec,
                             char const* what) {
    require(spec.heads > 0, what, ": heads must be positive, got ", spec.heads);
    require(spec.head_dim > 0, what, ": head_dim must be positive, got ", spec.head_dim);
    require(spec.rotary_dim % 2 == 0, what, ": rotary_dim must be even, got ", spec.rotary_dim);
    require(spec.rotary_dim > 0 && spec.rotary_dim <= spec.head_dim, what,
            ": rotary_dim must be in (0, head_dim = ", spec.head_dim, "], got ", spec.rotary_dim);
    require(spec.base > 0, what, ": base must be positive, got ", spec.base);
    require(seq > 0, what, ": seq must be positive, got ", seq);
    require(position_offset >= 0, what, ": position_offset must not be negative, got ", position_offset);
    require(x.cols == Index(spec.heads) * spec.head_dim, what, ": x has ", x.cols,
            " columns but heads * head_dim = ", Index(spec.heads) * spec.head_dim);
    require(x.rows > 0 && x.data != nullptr, what, ": x is an empty batch (no rows)");
    require(x.rows % seq == 0, what, ": x has ", x.rows, " rows, which is not a multiple of seq = ", seq);
}

/// cos_table, sin_table (seq, half): pair i at position p + offset turns by direction * (p + offset) * inv_freq_i.
template <class T>
__global__ void rope_table_kernel(T* cos_table, T* sin_table, int seq, int half, int rotary_dim, int position_offset,
                                  double base, double direction) {
    for (Index e = Index(blockIdx.x) * blockDim.x + threadIdx.x; e < Index(seq) * half;
         e += Index(gridDim.x) * blockDim.x) {
        int const p = int(e / half);
        int const i = int(e - Index(p) * half);
        double const inv_freq = pow(base, -2.0 * i / rotary_dim);
        double const angle = double(p + position_offset) * inv_freq;
        cos_table[e] = T(cos(angle));
        sin_table[e] = T(direction * sin(angle));
    }
}

/// x (rows, heads * head_dim): each pair (a, b) becomes (a cos - b sin, a sin + b cos); one pair per thread.
template <class T>
__global__ void rope_rotate_kernel(T* x, T const* cos_table, T const* sin_table, Index rows, int seq, int heads,
                                   int head_dim, int half, bool rotate_half) {
    Index const pairs = rows * heads * half;
    for (Index e = Index(blockIdx.x) * blockDim.x + threadIdx.x; e < pairs; e += Index(gridDim.x) * blockDim.x) {
        Index const rh = e / half;
        int const i = int(e - rh * half);
        Index const r = rh / heads;
        int const h = int(rh - r * heads);
        Index const t = (r % seq) * half + i;
        T* head = x + r * heads * head_dim + Index(h) * head_dim;
        int const ia = rotate_half ? i : 2 * i;
        int const ib = rotate_half ? i + half : 2 * i + 1;
        T const a = head[ia];
        T const b = head[ib];
        head[ia] = a * cos_table[t] - b * sin_table[t];
        head[ib] = a * sin_table[t] + b * cos_table[t];
    }
}

inline void rope_rotate(Context& ctx, View<float> x, int seq, int position_offset, RopeSpec const& spec,
                        double direction) {
    int const half = spec.rotary_dim / 2;
    Index const table = Index(seq) * half;
    ctx.make_current();
    auto* cos_table = static_cast<float*>(ctx.scratch(rope_scratch_slot, rope_table_bytes(seq, spec.rotary_dim)));
    float* sin_table = cos_table + table;
    rope_table_kernel<float><<<grid_for(table), block_threads, 0, ctx.stream()>>>(
        cos_table, sin_table, seq, half, spec.rotary_dim, position_offset, spec.base, direction);
    check_launch("rope_table_kernel");
    rope_rotate_kernel<float><<<grid_for(x.rows * spec.heads * half), block_threads, 0, ctx.stream()>>>(
        x.data, cos_table, sin_table, x.rows, seq, spec.heads, spec.head_dim, half,
        spec.style == RopeStyle::RotateHalf);
    check_launch("rope_rotate_kernel");
}

}  // namespace detail

/// Rotates x (N, heads * head_dim) in place; row r sits at position r % seq + position_offset.
inline void rope_forward(Context& ctx, View<float> x, int seq, int position_offset, RopeSpec const& spec) {
    detail::check_rope_input(x, seq, position_offset, spec, "rope_forward");
    detail::rope_rotate(ctx, x, seq, position_offset, spec, 1.0);
}

/// The gradient of rope_forward: the inverse (transposed) rotation of dx (N, heads * head_dim), in place.
inline void rope_backward(Context& ctx, View<float> dx, int seq, int position_offset, RopeSpec const& spec) {
    detail::check_rope_input(dx, seq, position_offset, spec, "rope_backward");
    detail::rope_rotate(ctx, dx, seq, position_offset, spec, -1.0);
}

}  // namespace polyalpaca::cuda
