/// @file backend/cpu/attention_bf16.hpp
/// @brief Causal attention on bf16 operands (GemmMath::Bf16): each product of attention.hpp's contract as one of
///        oneDNN's batched matmuls over a sequence's heads, accumulated in fp32, with the softmax and its backward
///        in fp32.
///
/// The design of cuda/attention.cuh's GEMM path, on the CPU:
/// 1. q, k, v are rounded to bf16 once per call. Per sequence, scores = Q K^T go straight into probs; one pass per
///    row then scales, adds slope_h * j, masks j > i to 0, takes the softmax in place and rounds the row to bf16.
/// 2. out = P V.
/// Backward, per sequence: dV += P^T dO, dP = dO V^T, dS = scale P (dP - rowsum(P dP)) rounded to bf16,
/// dQ += dS K, dK += dS^T Q.
/// A product covers one sequence's full (seq, seq) square: the masked half is zeros, and one call over the heads
/// runs faster on bf16 units than the per-block products of the fp32 path. The query heads of a GQA group take
/// turns (head j, j + group, ... in one call), so each call's batch is the kv heads, with no copies; such a batch
/// is not a permuted dense layout, which oneDNN 2.6 runs on its generic GEMM rather than brgemm (onednn_matmul.hpp).
/// Temporaries (take_bf16_attention_buffers, which the sizing backend takes too): q, k, v, dO in bf16, and one
/// sequence's probabilities in bf16 and, backward, its dP in fp32.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include <Eigen/Core>

#include "polyalpaca/backend/cpu/bf16_gemm.hpp"
#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/backend/cpu/linear.hpp"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu::detail {

/// True when attention of this shape runs on bf16 operands in GemmMath::Bf16: its products have every side long
/// enough (bf16_shape), as the linear layers' do.
inline bool bf16_attention_shape(AttentionShape const& s) { return bf16_shape(s.seq, s.head_dim, s.seq); }

/// True when attention_forward and attention_backward take this file's path.
inline bool bf16_attention(Context const& ctx, AttentionShape const& s) {
    return ctx.gemm_math() == GemmMath::Bf16 && bf16_attention_shape(s);
}

/// The temporaries of one call: q, k, v (and, backward, dO) rounded to bf16, one sequence's probabilities in bf16
/// (backward: then its dS) and, backward, one sequence's dP.
struct Bf16AttentionBuffers {
    View<std::uint16_t> q, k, v, dout, probs;
    View<float> dprobs;
};

template <class Frame>
Bf16AttentionBuffers take_bf16_attention_buffers(Frame& frame, AttentionShape const& s, bool backward) {
    Index const n = Index(s.batch) * s.seq, q_cols = Index(s.heads) * s.head_dim;
    Index const kv_cols = Index(s.kv_heads) * s.head_dim, head_rows = Index(s.heads) * s.seq;
    Bf16AttentionBuffers b;
    b.q = frame.template take<std::uint16_t>(n, q_cols);
    b.k = frame.template take<std::uint16_t>(n, kv_cols);
    b.v = frame.template take<std::uint16_t>(n, kv_cols);
    if (backward) b.dout = frame.template take<std::uint16_t>(n, q_cols);
    b.probs = frame.template take<std::uint16_t>(head_rows, s.seq);
    if (backward) b.dprobs = frame.template take<float>(head_rows, s.seq);
    return b;
}

/// Where the heads j, j + group, j + 2 group, ... of sequence b live, as batches over the kv heads.
struct HeadBatches {
    AttentionShape s;
    int b, j;

    Index group() const { return s.heads / s.kv_heads; }
    Index q_cols() const { return Index(s.heads) * s.head_dim; }
    Index kv_cols() const { return Index(s.kv_heads) * s.head_dim; }
    Index square() const { return Index(s.seq) * s.seq; }

    /// The (seq, head_dim) query-side slices (q, dO, out, dq) of an activation (batch*seq, heads*head_dim).
    template <class T>
    T* query_data(T* x) const {
        return x + Index(b) * s.seq * q_cols() + Index(j) * s.head_dim;
    }
    MatmulOperand query(void const* x) const {
        return {x, s.seq, s.head_dim, false, q_cols(), s.kv_heads, group() * s.head_dim};
    }
    MatmulResult query_result(float* x) const { return {query_data(x), q_cols(), group() * s.head_dim}; }

    /// The (seq, head_dim) slices of the kv heads (k, v, dk, dv) of an activation (batch*seq, kv_heads*head_dim).
    template <class T>
    T* kv_data(T* x) const {
        return x + Index(b) * s.seq * kv_cols();
    }
    MatmulOperand kv(void const* x, bool transposed = false) const {
        return transposed ? MatmulOperand{x, s.head_dim, s.seq, true, kv_cols(), s.kv_heads, s.head_dim}
                          : MatmulOperand{x, s.seq, s.head_dim, false, kv_cols(), s.kv_heads, s.head_dim};
    }
    MatmulResult kv_result(float* x) const { return {kv_data(x), kv_cols(), s.head_dim}; }

    /// The (seq, seq) squares of these heads in one sequence's (heads * seq, seq) probabilities.
    template <class T>
    T* square_data(T* p) const {
        return p + Index(j) * square();
    }
    MatmulOperand squares(void const* p, bool transposed = false) const {
        return {p, s.seq, s.seq, transposed, s.seq, s.kv_heads, group() * square()};
    }
    MatmulResult square_result(float* p) const { return {square_data(p), s.seq, group() * square()}; }
};

/// q, k and v rounded into the call's buffers.
inline void round_heads(Context& ctx, Bf16AttentionBuffers const& buf, View<float const> q, View<float const> k,
                        View<float const> v) {
    round_to_bf16(ctx.threads, q.data, buf.q.data, q.size());
    round_to_bf16(ctx.threads, k.data, buf.k.data, k.size());
    round_to_bf16(ctx.threads, v.data, buf.v.data, v.size());
}

/// attention_forward (attention.hpp) on bf16 operands.
inline void bf16_attention_forward(Context& ctx, View<float const> q, View<float const> k, View<float const> v,
                                   View<float> out, View<float> probs, AttentionShape const& s,
                                   float const* alibi_slopes, float scale) {
    ScratchFrame frame(ctx.temporaries);
    auto const buf = take_bf16_attention_buffers(frame, s, false);
    round_heads(ctx, buf, q, k, v);
    auto& gemms = ctx.bf16_gemms();
    Index const seq = s.seq, head_rows = Index(s.heads) * seq;
    int const group = s.heads / s.kv_heads;
    for (int b = 0; b < s.batch; ++b) {
        float* p = probs.row(Index(b) * head_rows);  // this sequence's (heads * seq, seq)
        for (int j = 0; j < group; ++j) {
            HeadBatches const at{s, b, j};
            gemms.multiply(at.query(at.query_data(buf.q.data)), at.kv(at.kv_data(buf.k.data), true),
                           at.square_result(p), false);
        }
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
        for (Index r = 0; r < head_rows; ++r) {
            // The row's visible keys, and the masked ones up to a whole number of vectors as -inf (exp takes them
            // to 0, or near it), so that no loop below has a scalar tail.
            Index const keys = r % seq + 1, width = std::min(seq, (keys + 15) / 16 * 16);
            float const slope = alibi_slopes ? alibi_slopes[r / seq] : 0.0f;
            float* row = p + r * seq;
            float top = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : top)
            for (Index c = 0; c < width; ++c) {
                float const x = c < keys ? scale * row[c] + slope * float(c) : -std::numeric_limits<float>::infinity();
                row[c] = x;
                top = x > top ? x : top;
            }
            Eigen::Map<Eigen::ArrayXf> visible(row, width);
            visible = (visible - top).exp();
            float sum = 0;
#pragma omp simd reduction(+ : sum)
            for (Index c = 0; c < keys; ++c) sum += row[c];
            float const inverse = 1.0f / sum;
            std::uint16_t* rounded = buf.probs.data + r * seq;
#pragma omp simd
            for (Index c = 0; c < keys; ++c) {
                row[c] *= inverse;
                rounded[c] = to_bf16_bits(row[c]);
            }
            std::fill(row + keys, row + seq, 0.0f);
            std::fill(rounded + keys, rounded + seq, std::uint16_t(0));
        }
        for (int j = 0; j < group; ++j) {
            HeadBatches const at{s, b, j};
            gemms.multiply(at.squares(at.square_data(buf.probs.data)), at.kv(at.kv_data(buf.v.data)),
                           at.query_result(out.data), false);
        }
    }
}

/// attention_backward (attention.hpp) on bf16 operands.
inline void bf16_attention_backward(Context& ctx, View<float const> dout, View<float const> q, View<float const> k,
                                    View<float const> v, View<float const> probs, View<float> dq, View<float> dk,
                                    View<float> dv, AttentionShape const& s, float scale) {
    ScratchFrame frame(ctx.temporaries);
    auto const buf = take_bf16_attention_buffers(frame, s, true);
    round_heads(ctx, buf, q, k, v);
    round_to_bf16(ctx.threads, dout.data, buf.dout.data, dout.size());
    auto& gemms = ctx.bf16_gemms();
    Index const seq = s.seq, head_rows = Index(s.heads) * seq;
    int const group = s.heads / s.kv_heads;
    for (int b = 0; b < s.batch; ++b) {
        float const* p = probs.row(Index(b) * head_rows);
        round_to_bf16(ctx.threads, p, buf.probs.data, head_rows * seq);
        for (int j = 0; dv.data && j < group; ++j) {  // dV += P^T dO
            HeadBatches const at{s, b, j};
            gemms.multiply(at.squares(at.square_data(buf.probs.data), true), at.query(at.query_data(buf.dout.data)),
                           at.kv_result(dv.data), true);
        }
        if (!dq.data && !dk.data) continue;
        for (int j = 0; j < group; ++j) {  // dP = dO V^T
            HeadBatches const at{s, b, j};
            gemms.multiply(at.query(at.query_data(buf.dout.data)), at.kv(at.kv_data(buf.v.data), true),
                           at.square_result(buf.dprobs.data), false);
        }
        // dS = scale P (dP - rowsum(P dP)), 0 where P is (j > i), rounded over the probabilities' copy.
#pragma omp parallel for num_threads(ctx.threads) schedule(static)
        for (Index r = 0; r < head_rows; ++r) {
            Index const i = r % seq;
            Eigen::Map<Eigen::ArrayXf const> pr(p + r * seq, i + 1);
            Eigen::Map<Eigen::ArrayXf> dpr(buf.dprobs.data + r * seq, i + 1);
            float const row_dot = (pr * dpr).sum();
            dpr = scale * pr * (dpr - row_dot);
            std::uint16_t* rounded = buf.probs.data + r * seq;
#pragma omp simd
            for (Index c = 0; c <= i; ++c) rounded[c] = to_bf16_bits(dpr[c]);
            std::fill(rounded + i + 1, rounded + seq, std::uint16_t(0));
        }
        for (int j = 0; j < group; ++j) {
            HeadBatches const at{s, b, j};
            auto const ds = at.square_data(buf.probs.data);
            if (dq.data) gemms.multiply(at.squares(ds), at.kv(at.kv_data(buf.k.data)), at.query_result(dq.data), true);
            if (dk.data)
                gemms.multiply(at.squares(ds, true), at.query(at.query_data(buf.q.data)), at.kv_result(dk.data), true);
        }
    }
}

}  // namespace polyalpaca::cpu::detail
