/// @file backend/cpu/attention.hpp
/// @brief Causal multi-head self-attention with grouped-query heads and optional ALiBi, forward and backward: fp32
///        with Eigen's products per head, or in GemmMath::Bf16 on bf16 operands (attention_bf16.hpp).
#pragma once

#include <algorithm>
#include <type_traits>

#include <Eigen/Core>

#include "polyalpaca/backend/cpu/attention_bf16.hpp"
#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

namespace detail {

template <class T>
using HeadMap = Eigen::Map<Matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <class T>
using ConstHeadMap = Eigen::Map<Matrix<T> const, Eigen::Unaligned, Eigen::OuterStride<>>;

/// Where a per-head product is written. Its inner stride is 1 but known only at run time, and EIGEN_USE_BLAS
/// reroutes only products whose destination has a compile-time unit inner stride, so these products run on
/// Eigen's own GEMM kernel. BLAS called from inside the per-head OpenMP loop would start its own threads on
/// cores that are already busy, and products this small gain nothing from it.
/// Element-wise work uses the unit-stride maps above instead, which vectorise.
template <class T>
using GemmTarget = Eigen::Map<Matrix<T>, Eigen::Unaligned, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>>;

template <class T>
GemmTarget<T> gemm_target(T* data, Index rows, Index cols, Index row_stride) {
    return GemmTarget<T>(data, rows, cols, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>(row_stride, 1));
}

/// Query rows handled per GEMM: a block of rows only sees keys up to its last row, which skips most of
/// the masked upper triangle while keeping the products large enough to run at GEMM speed.
inline constexpr Index attention_row_block = 64;

/// Below this many multiply-adds (batch * heads * seq^2 * head_dim) a call runs on one thread: starting a
/// parallel region costs more than it saves.
inline constexpr Index attention_parallel_work = Index(1) << 16;

inline Index attention_work(AttentionShape const& shape) {
    return Index(shape.batch) * shape.heads * shape.seq * shape.seq * shape.head_dim;
}

/// The (seq, head_dim) slice of head `head` in sequence `b` of an activation (batch * seq, heads * head_dim).
template <class T>
auto head_slice(View<T> x, AttentionShape const& shape, int b, int head) {
    using Map = std::conditional_t<std::is_const_v<T>, ConstHeadMap<T>, HeadMap<T>>;
    return Map(x.row(Index(b) * shape.seq) + Index(head) * shape.head_dim, shape.seq, shape.head_dim,
               Eigen::OuterStride<>(x.cols));
}

/// head_slice as a GemmTarget.
template <class T>
GemmTarget<T> head_target(View<T> x, AttentionShape const& shape, int b, int head) {
    return gemm_target(x.row(Index(b) * shape.seq) + Index(head) * shape.head_dim, shape.seq, shape.head_dim, x.cols);
}

inline void check_attention_shape(AttentionShape const& shape, char const* what) {
    require(shape.batch > 0 && shape.seq > 0, what, ": empty batch (batch = ", shape.batch, ", seq = ", shape.seq,
            "); both must be positive");
    require(shape.heads > 0 && shape.kv_heads > 0 && shape.head_dim > 0, what,
            ": heads, kv_heads and head_dim must be positive, got ", shape.heads, ", ", shape.kv_heads, ", ",
            shape.head_dim);
    require(shape.heads % shape.kv_heads == 0, what, ": heads (", shape.heads, ") must be a multiple of kv_heads (",
            shape.kv_heads, ")");
}

template <class T>
void check_attention_view(View<T> const& v, Index rows, Index cols, char const* what) {
    require_shape(v, rows, cols, what);
    require(v.data != nullptr, what, ": data is null");
}

}  // namespace detail

/// Columns of the state (`probs`) attention_forward saves per (batch, head, query) row: the seq probabilities.
/// (The CUDA backend's twin may answer less; callers allocate (batch*heads*seq, attention_state_cols).)
inline Index attention_state_cols(Context const&, AttentionShape const& shape) { return Index(shape.seq); }

/// Causal attention. q (N, heads*hd), k and v (N, kv_heads*hd), out (N, heads*hd), N = batch * seq.
/// score(i, j) = scale * q_i . k_j + slope_h * j for key j <= i; probs (batch*heads*seq, seq) keeps the softmax
/// of each head (row (b*heads + h)*seq + i), with exactly 0 on masked keys j > i, for attention_backward.
template <class T>
void attention_forward([[maybe_unused]] Context& ctx, View<T const> q, View<T const> k, View<T const> v,
                       View<T> out, View<T> probs, AttentionShape const& shape, T const* alibi_slopes, T scale) {
    detail::check_attention_shape(shape, "attention_forward");
    Index const n = Index(shape.batch) * shape.seq;
    Index const q_cols = Index(shape.heads) * shape.head_dim;
    Index const kv_cols = Index(shape.kv_heads) * shape.head_dim;
    detail::check_attention_view(q, n, q_cols, "attention_forward: q (batch*seq, heads*head_dim)");
    detail::check_attention_view(k, n, kv_cols, "attention_forward: k (batch*seq, kv_heads*head_dim)");
    detail::check_attention_view(v, n, kv_cols, "attention_forward: v (batch*seq, kv_heads*head_dim)");
    detail::check_attention_view(out, n, q_cols, "attention_forward: out (batch*seq, heads*head_dim)");
    detail::check_attention_view(probs, Index(shape.batch) * shape.heads * shape.seq, Index(shape.seq),
                                 "attention_forward: probs (batch*heads*seq, seq)");
    if constexpr (std::is_same_v<T, float>) {
        if (detail::bf16_attention(ctx, shape))
            return detail::bf16_attention_forward(ctx, q, k, v, out, probs, shape, alibi_slopes, scale);
    }

    Index const seq = shape.seq;
    int const group = shape.heads / shape.kv_heads;
    Vector<T> const key_positions = Vector<T>::LinSpaced(seq, T(0), T(seq - 1));  // (seq)
    [[maybe_unused]] bool const parallel = detail::attention_work(shape) >= detail::attention_parallel_work;
#pragma omp parallel for collapse(2) num_threads(ctx.threads) schedule(dynamic) if (parallel)
    for (int b = 0; b < shape.batch; ++b) {
        for (int h = 0; h < shape.heads; ++h) {
            auto const qh = detail::head_slice(q, shape, b, h);          // (seq, hd)
            auto const kh = detail::head_slice(k, shape, b, h / group);  // (seq, hd)
            auto const vh = detail::head_slice(v, shape, b, h / group);  // (seq, hd)
            auto oh = detail::head_target(out, shape, b, h);             // (seq, hd)
            Eigen::Map<Matrix<T>> p(probs.row((Index(b) * shape.heads + h) * seq), seq, seq);  // (seq, seq)
            for (Index r0 = 0; r0 < seq; r0 += detail::attention_row_block) {
                Index const rows = std::min(detail::attention_row_block, seq - r0);
                Index const keys = r0 + rows;  // the last row of the block sees keys [0, keys)
                detail::gemm_target(p.row(r0).data(), rows, keys, seq).noalias() =
                    scale * qh.middleRows(r0, rows) * kh.topRows(keys).transpose();
                for (Index i = r0; i < r0 + rows; ++i) {
                    auto visible = p.row(i).head(i + 1).array();
                    if (alibi_slopes) visible += alibi_slopes[h] * key_positions.head(i + 1).transpose().array();
                    visible = (visible - visible.maxCoeff()).exp();
                    visible /= visible.sum();
                    p.row(i).tail(seq - i - 1).setZero();
                }
                oh.middleRows(r0, rows).noalias() = p.block(r0, 0, rows, keys) * vh.topRows(keys);
            }
        }
    }
}

/// Gradients of attention_forward from dout (N, heads*hd) and the saved probs, added into dq, dk and dv;
/// a gradient whose data is nullptr is skipped. ALiBi slopes are constants, so they need no gradient.
template <class T>
void attention_backward([[maybe_unused]] Context& ctx, View<T const> dout, View<T const> q, View<T const> k,
                        View<T const> v, View<T const> probs, View<T> dq, View<T> dk, View<T> dv,
                        AttentionShape const& shape, T scale) {
    detail::check_attention_shape(shape, "attention_backward");
    Index const n = Index(shape.batch) * shape.seq;
    Index const q_cols = Index(shape.heads) * shape.head_dim;
    Index const kv_cols = Index(shape.kv_heads) * shape.head_dim;
    detail::check_attention_view(dout, n, q_cols, "attention_backward: dout (batch*seq, heads*head_dim)");
    detail::check_attention_view(q, n, q_cols, "attention_backward: q (batch*seq, heads*head_dim)");
    detail::check_attention_view(k, n, kv_cols, "attention_backward: k (batch*seq, kv_heads*head_dim)");
    detail::check_attention_view(v, n, kv_cols, "attention_backward: v (batch*seq, kv_heads*head_dim)");
    detail::check_attention_view(probs, Index(shape.batch) * shape.heads * shape.seq, Index(shape.seq),
                                 "attention_backward: probs (batch*heads*seq, seq)");
    if (dq.data) require_shape(dq, n, q_cols, "attention_backward: dq (batch*seq, heads*head_dim)");
    if (dk.data) require_shape(dk, n, kv_cols, "attention_backward: dk (batch*seq, kv_heads*head_dim)");
    if (dv.data) require_shape(dv, n, kv_cols, "attention_backward: dv (batch*seq, kv_heads*head_dim)");
    if (!dq.data && !dk.data && !dv.data) return;
    if constexpr (std::is_same_v<T, float>) {
        if (detail::bf16_attention(ctx, shape))
            return detail::bf16_attention_backward(ctx, dout, q, k, v, probs, dq, dk, dv, shape, scale);
    }

    Index const seq = shape.seq;
    int const group = shape.heads / shape.kv_heads;
    // One task per (sequence, kv head): the query heads of a group add into the same dk and dv slices, so
    // they run one after another inside the task and no two threads write the same memory.
    [[maybe_unused]] bool const parallel = detail::attention_work(shape) >= detail::attention_parallel_work;
#pragma omp parallel num_threads(ctx.threads) if (parallel)
    {
        Index const block = std::min(detail::attention_row_block, seq);
        Matrix<T> dscores(block, seq);  // (block, seq) scratch
        Vector<T> row_dot(block);       // (block) scratch
#pragma omp for collapse(2) schedule(dynamic)
        for (int b = 0; b < shape.batch; ++b) {
            for (int g = 0; g < shape.kv_heads; ++g) {
                auto const kh = detail::head_slice(k, shape, b, g);  // (seq, hd)
                auto const vh = detail::head_slice(v, shape, b, g);  // (seq, hd)
                for (int h = g * group; h < (g + 1) * group; ++h) {
                    auto const qh = detail::head_slice(q, shape, b, h);      // (seq, hd)
                    auto const doh = detail::head_slice(dout, shape, b, h);  // (seq, hd)
                    Eigen::Map<Matrix<T> const> p(probs.row((Index(b) * shape.heads + h) * seq), seq, seq);
                    for (Index r0 = 0; r0 < seq; r0 += detail::attention_row_block) {
                        Index const rows = std::min(detail::attention_row_block, seq - r0);
                        Index const keys = r0 + rows;
                        auto const pb = p.block(r0, 0, rows, keys);  // (rows, keys), 0 beyond the diagonal
                        auto const dob = doh.middleRows(r0, rows);   // (rows, hd)
                        if (dv.data)
                            detail::head_target(dv, shape, b, g).topRows(keys).noalias() += pb.transpose() * dob;
                        if (!dq.data && !dk.data) continue;
                        // dS = P * (dP - rowsum(P * dP)) with dP = dO V^T; it is 0 wherever P is.
                        auto ds = dscores.topLeftCorner(rows, keys);  // (rows, keys)
                        detail::gemm_target(dscores.data(), rows, keys, seq).noalias() =
                            dob * vh.topRows(keys).transpose();
                        row_dot.head(rows) = (pb.array() * ds.array()).rowwise().sum();
                        ds.array() = pb.array() * (ds.array().colwise() - row_dot.head(rows).array());
                        if (dq.data)
                            detail::head_target(dq, shape, b, h).middleRows(r0, rows).noalias() +=
                                scale * ds * kh.topRows(keys);
                        if (dk.data)
                            detail::head_target(dk, shape, b, g).topRows(keys).noalias() +=
                                scale * ds.transpose() * qh.middleRows(r0, rows);
                    }
                }
            }
        }
    }
}

}  // namespace polyalpaca::cpu
