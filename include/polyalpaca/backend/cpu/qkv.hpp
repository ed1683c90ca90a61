/// @file backend/cpu/qkv.hpp
/// @brief Splitting a fused query_key_value projection into q, k, v, and merging their gradients back.
#pragma once

#include <algorithm>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

/// BLOOM and GPT-NeoX lay a fused row out per head: [q_h | k_h | v_h] for h = 0..heads-1, each head_dim wide.
/// fused (N, heads*3*head_dim) -> q, k, v (N, heads*head_dim).
template <class T>
void split_fused_qkv(Context&, View<T const> fused, View<T> q, View<T> k, View<T> v, int heads, int head_dim) {
    Index const width = Index(heads) * head_dim;
    require_shape(fused, q.rows, 3 * width, "split_fused_qkv: fused");
    for (auto const& out : {q, k, v}) require_shape(out, fused.rows, width, "split_fused_qkv: q/k/v");
#pragma omp parallel for if (fused.size() >= (Index(1) << 16))
    for (Index r = 0; r < fused.rows; ++r) {
        T const* src = fused.row(r);
        for (int h = 0; h < heads; ++h) {
            T const* head = src + Index(h) * 3 * head_dim;
            std::copy(head, head + head_dim, q.row(r) + Index(h) * head_dim);
            std::copy(head + head_dim, head + 2 * head_dim, k.row(r) + Index(h) * head_dim);
            std::copy(head + 2 * head_dim, head + 3 * head_dim, v.row(r) + Index(h) * head_dim);
        }
    }
}

/// The inverse layout: writes dq, dk, dv (N, heads*head_dim) into dfused (N, heads*3*head_dim).
template <class T>
void merge_fused_qkv(Context&, View<T const> dq, View<T const> dk, View<T const> dv, View<T> dfused, int heads,
                     int head_dim) {
    Index const width = Index(heads) * head_dim;
    require_shape(dfused, dq.rows, 3 * width, "merge_fused_qkv: dfused");
    for (auto const& in : {dq, dk, dv}) require_shape(in, dfused.rows, width, "merge_fused_qkv: dq/dk/dv");
#pragma omp parallel for if (dfused.size() >= (Index(1) << 16))
    for (Index r = 0; r < dfused.rows; ++r) {
        T* dst = dfused.row(r);
        for (int h = 0; h < heads; ++h) {
            T* head = dst + Index(h) * 3 * head_dim;
            T const* q = dq.row(r) + Index(h) * head_dim;
            T const* k = dk.row(r) + Index(h) * head_dim;
            T const* v = dv.row(r) + Index(h) * head_dim;
            std::copy(q, q + head_dim, head);
            std::copy(k, k + head_dim, head + head_dim);
            std::copy(v, v + head_dim, head + 2 * head_dim);
        }
    }
}

}  // namespace polyalpaca::cpu
