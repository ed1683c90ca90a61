/// @file backend/cuda/attention.cuh
/// @brief Causal multi-head self-attention (grouped-query heads, optional ALiBi) on CUDA, forward and backward,
/// with the contract of cpu/attention.hpp: probs (batch*heads*seq, seq) is saved, exactly 0 above the diagonal.
///
/// Design (simple first; a fused flash-style kernel can replace it later):
/// 1. q, k, v (batch*seq, heads*hd) are packed into per-head (batch*heads, seq, hd) scratch; GQA is expanded
///    there (query head h reads kv head h / (heads / kv_heads)), so every product below is ONE strided-batched
///    cuBLASLt GEMM over batch*heads (a head's rows are hd floats apart in the activations, a sequence's
///    seq*cols: two batch levels, which one strided call cannot express).
/// 2. scores = scale Q K^T is written straight into probs (its rows are already (b*heads + h)*seq + i);
///    one block per row then adds slope_h * j, masks j > i to 0 and takes the softmax in place.
/// 3. context = P V into scratch, unpacked into out.
/// Backward: dV = P^T dO, dP = dO V^T, dS = scale P (dP - rowsum(P dP)) (one block per row), dQ = dS K,
/// dK = dS^T Q, each one batched GEMM; the unpack adds into dq, dk, dv and sums the query heads of a GQA group.
/// The GEMMs follow ctx.gemm_math(); in Bf16 the heads are packed straight to bf16 (the saved probs and dS are
/// converted by the GEMM). The softmax and its backward are fp32 with fp32 sums.
/// Scratch: slot 4 (packed heads, dP, the slopes), reused by the next call.
///
/// When flash_attention_chosen(ctx, head_dim) (Flash selected, or Auto's rule, for an instantiated head_dim),
/// both ops run the fused kernels there instead and the saved state is (batch*heads*seq, 2) [lse, slope] rather
/// than the probabilities; attention_state_cols says which width a caller must allocate. The flash kernels take
/// any state of at least 2 columns (a (rows, seq) buffer sized for the GEMM path too, using its first 2), and the
/// backward chooses its path by the same rule on the same view, so a forward and its backward always agree.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "polyalpaca/backend/cuda/bf16.cuh"
#include "polyalpaca/backend/cuda/block_reduce.cuh"
#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/flash_attention.cuh"
#include "polyalpaca/backend/cuda/gemm.cuh"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace detail {

inline constexpr int attention_scratch_slot = scratch_slot::attention;
inline constexpr int softmax_threads = 256;

/// dst (batch*heads, seq, hd) from src (batch*seq, src_heads*hd): head h of dst is head h / group of src.
template <class S, class D>
__global__ void pack_heads_kernel(S const* src, int batch, int seq, int heads, int src_heads, int head_dim, int group,
                                  D* dst) {
    Index const total = Index(batch) * heads * seq * head_dim;
    for (Index idx = Index(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += Index(gridDim.x) * blockDim.x) {
        Index const e = idx % head_dim;
        Index const t = (idx / head_dim) % seq;
        Index const bh = idx / (Index(head_dim) * seq);
        Index const h = bh % heads, b = bh / heads;
        Index const from = (b * seq + t) * (Index(src_heads) * head_dim) + (h / group) * head_dim + e;
        dst[idx] = from_float<D>(float(src[from]));
    }
}

/// dst (batch*seq, dst_heads*hd) = (or +=) the sum over the `group` packed heads g*group .. g*group+group-1 of
/// src (batch*dst_heads*group, seq, hd) for dst head g.
template <class T>
__global__ void unpack_heads_kernel(T const* src, int batch, int seq, int dst_heads, int head_dim, int group,
                                    bool accumulate, T* dst) {
    Index const cols = Index(dst_heads) * head_dim;
    Index const total = Index(batch) * seq * cols;
    int const heads = dst_heads * group;
    for (Index idx = Index(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += Index(gridDim.x) * blockDim.x) {
        Index const col = idx % cols, row = idx / cols;
        Index const g = col / head_dim, e = col % head_dim;
        Index const t = row % seq, b = row / seq;
        float sum = 0.0f;
        for (int j = 0; j < group; ++j) sum += float(src[((b * heads + g * group + j) * seq + t) * head_dim + e]);
        dst[idx] = accumulate ? T(float(dst[idx]) + sum) : T(sum);
    }
}

/// In place on each (seq)-row of p (rows = batch*heads*seq): row r is query i = r % seq of head (r / seq) % heads;
/// p[j] = softmax_j(p[j] + slope_h * j) over keys j <= i, and exactly 0 for j > i.
template <class T>
__global__ void causal_softmax_kernel(T* p, int seq, int heads, T const* slopes) {
    Index const r = blockIdx.x;
    int const i = int(r % seq);
    int const h = int((r / seq) % heads);
    T* row = p + r * seq;
    float const slope = slopes ? float(slopes[h]) : 0.0f;
    float local_max = -INFINITY;
    for (int j = threadIdx.x; j <= i; j += blockDim.x) {
        float const x = float(row[j]) + slope * float(j);
        row[j] = T(x);
        local_max = fmaxf(local_max, x);
    }
    float const row_max = block_max(local_max);
    float local_sum = 0.0f;
    for (int j = threadIdx.x; j <= i; j += blockDim.x) {
        float const e = expf(float(row[j]) - row_max);
        row[j] = T(e);
        local_sum += e;
    }
    float const inv = 1.0f / block_sum(local_sum);
    for (int j = threadIdx.x; j < seq; j += blockDim.x) row[j] = j <= i ? T(float(row[j]) * inv) : T(0);
}

/// In place on each row of dp: dS_j = scale p_j (dp_j - sum_k p_k dp_k); 0 above the diagonal (where p is 0).
template <class T>
__global__ void causal_softmax_backward_kernel(T const* p, T* dp, int seq, float scale) {
    Index const r = blockIdx.x;
    int const i = int(r % seq);
    T const* prow = p + r * seq;
    T* drow = dp + r * seq;
    float local = 0.0f;
    for (int j = threadIdx.x; j <= i; j += blockDim.x) local += float(prow[j]) * float(drow[j]);
    float const dot = block_sum(local);
    for (int j = threadIdx.x; j < seq; j += blockDim.x)
        drow[j] = j <= i ? T(scale * float(prow[j]) * (float(drow[j]) - dot)) : T(0);
}

/// Device memory for one call, carved from one scratch slot in 256-byte pieces.
struct AttentionScratch {
    char* base;
    std::size_t used = 0;
    float* take(std::size_t floats) {
        auto* p = reinterpret_cast<float*>(base + used);
        used += attention_floats_bytes(floats);
        return p;
    }
};

inline void check_attention_shape(AttentionShape const& s, char const* what) {
    require(s.batch > 0 && s.seq > 0, what, ": empty batch (batch = ", s.batch, ", seq = ", s.seq,
            "); both must be positive");
    require(s.heads > 0 && s.kv_heads > 0 && s.head_dim > 0, what,
            ": heads, kv_heads and head_dim must be positive, got ", s.heads, ", ", s.kv_heads, ", ", s.head_dim);
    require(s.heads % s.kv_heads == 0, what, ": heads (", s.heads, ") must be a multiple of kv_heads (", s.kv_heads,
            ")");
    require(Index(s.batch) * s.heads * s.seq < (Index(1) << 31), what,
            ": batch*heads*seq = ", Index(s.batch) * s.heads * s.seq, " rows exceed the grid limit 2^31 - 1");
}

inline void check_attention_view(View<float const> v, Index rows, Index cols, char const* what) {
    require_shape(v, rows, cols, what);
    require(v.data != nullptr, what, ": data is null");
}

/// Packed heads (or any GEMM input of the attention) and their element type.
struct Heads {
    void const* data;
    cudaDataType_t type = CUDA_R_32F;
};

/// Packs src into dst (room for the fp32 heads): fp32, or bf16 when ctx.gemm_math() is Bf16 (the GEMM's operand
/// type, so the GEMM converts nothing).
inline Heads pack(Context& ctx, float const* src, AttentionShape const& s, int src_heads, float* dst) {
    Index const total = Index(s.batch) * s.heads * s.seq * s.head_dim;
    int const group = s.heads / src_heads;
    if (ctx.gemm_math() == GemmMath::Bf16) {
        auto* out = reinterpret_cast<__nv_bfloat16*>(dst);
        pack_heads_kernel<float, __nv_bfloat16><<<grid_for(total), block_threads, 0, ctx.stream()>>>(
            src, s.batch, s.seq, s.heads, src_heads, s.head_dim, group, out);
        check_launch("pack_heads_kernel");
        return {out, CUDA_R_16BF};
    }
    pack_heads_kernel<float, float><<<grid_for(total), block_threads, 0, ctx.stream()>>>(
        src, s.batch, s.seq, s.heads, src_heads, s.head_dim, group, dst);
    check_launch("pack_heads_kernel");
    return {dst, CUDA_R_32F};
}

inline void unpack(Context& ctx, float const* src, AttentionShape const& s, int dst_heads, bool accumulate,
                   float* dst) {
    Index const total = Index(s.batch) * s.seq * dst_heads * s.head_dim;
    unpack_heads_kernel<float><<<grid_for(total), block_threads, 0, ctx.stream()>>>(
        src, s.batch, s.seq, dst_heads, s.head_dim, s.heads / dst_heads, accumulate, dst);
    POLYALPACA_CUDA_CHECK(cudaGetLastError());
}

/// One strided-batched product over the batch*heads packed heads: c_i = alpha op(a_i) op(b_i) + beta c_i.
inline void head_gemm(Context& ctx, AttentionShape const& s, Trans ta, Trans tb, Heads a, Index a_rows,
                      Index a_cols, Heads b, Index b_rows, Index b_cols, float* c, Index c_rows, Index c_cols,
                      float alpha) {
    Operand const first{a.data, a_rows, a_cols, a_cols, a_rows * a_cols, a.type};
    Operand const second{b.data, b_rows, b_cols, b_cols, b_rows * b_cols, b.type};
    gemm_batched(ctx, ta, tb, first, second, View<float>(c, c_rows, c_cols), c_rows * c_cols, s.batch * s.heads,
                 alpha, 0.0f, "attention: head GEMM");
}

}  // namespace detail

/// True when attention of this head_dim runs on the flash kernels under ctx's choices (the rule is
/// kernel_choice.hpp's, shared with host-only code).
inline bool flash_attention_chosen(Context const& ctx, int head_dim) {
    return flash_attention_chosen(ctx.attention_kernel(), ctx.gemm_math(), head_dim);
}

namespace detail {

/// True when the flash kernels handle this call: chosen for head_dim, and a state of >= 2 columns.
inline bool use_flash(Context const& ctx, AttentionShape const& s, Index state_cols) {
    return flash_attention_chosen(ctx, s.head_dim) && state_cols >= flash::state_cols;
}

inline void check_flash_state(View<float const> state, AttentionShape const& s, char const* what) {
    require(state.rows == Index(s.batch) * s.heads * s.seq && state.cols >= flash::state_cols, what,
            ": the flash attention state must be (batch*heads*seq, >= ", flash::state_cols, ") = (",
            Index(s.batch) * s.heads * s.seq, ", >= 2), got (", state.rows, ", ", state.cols, ")");
    require(state.data != nullptr, what, ": data is null");
}

}  // namespace detail

/// Columns of the state (`probs`) attention_forward saves per (batch, head, query) row for attention_backward:
/// seq (the probabilities) on the GEMM path, 2 ([logsumexp, ALiBi slope]) when the flash kernels handle `shape`.
inline Index attention_state_cols(Context const& ctx, AttentionShape const& shape) {
    return flash_attention_chosen(ctx, shape.head_dim) ? Index(flash::state_cols) : Index(shape.seq);
}

/// Causal attention. q (N, heads*hd), k and v (N, kv_heads*hd), out (N, heads*hd), N = batch * seq, all device.
/// score(i, j) = scale * q_i . k_j + slope_h * j for key j <= i; probs (batch*heads*seq, seq) keeps the softmax of
/// each head (row (b*heads + h)*seq + i), exactly 0 on masked keys j > i, for attention_backward. out is written.
/// On the flash path probs is (batch*heads*seq, attention_state_cols) instead (see the file comment).
/// alibi_slopes is a HOST array of `heads` slopes (the layer keeps them in a std::vector) or nullptr.
inline void attention_forward(Context& ctx, View<float const> q, View<float const> k, View<float const> v,
                              View<float> out, View<float> probs, AttentionShape const& shape,
                              float const* alibi_slopes, float scale) {
    detail::check_attention_shape(shape, "attention_forward");
    Index const n = Index(shape.batch) * shape.seq, seq = shape.seq;
    Index const q_cols = Index(shape.heads) * shape.head_dim, kv_cols = Index(shape.kv_heads) * shape.head_dim;
    detail::check_attention_view(q, n, q_cols, "attention_forward: q (batch*seq, heads*head_dim)");
    detail::check_attention_view(k, n, kv_cols, "attention_forward: k (batch*seq, kv_heads*head_dim)");
    detail::check_attention_view(v, n, kv_cols, "attention_forward: v (batch*seq, kv_heads*head_dim)");
    detail::check_attention_view(out, n, q_cols, "attention_forward: out (batch*seq, heads*head_dim)");
    if (detail::use_flash(ctx, shape, probs.cols)) {
        detail::check_flash_state(probs, shape, "attention_forward: probs");
        flash_attention_forward(ctx, q, k, v, out, probs, shape, alibi_slopes, scale);
        return;
    }
    detail::check_attention_view(probs, Index(shape.batch) * shape.heads * seq, seq,
                                 "attention_forward: probs (batch*heads*seq, seq)");
    ctx.make_current();

    std::size_t const packed = attention_packed_floats(shape);
    using S = detail::AttentionScratch;
    S scratch{static_cast<char*>(ctx.scratch(detail::attention_scratch_slot, attention_gemm_forward_bytes(shape)))};
    float* qp = scratch.take(packed);  // (batch*heads, seq, hd)
    float* kp = scratch.take(packed);
    float* vp = scratch.take(packed);
    float* op = scratch.take(packed);
    float* slopes = scratch.take(std::size_t(shape.heads));
    if (alibi_slopes)
        POLYALPACA_CUDA_CHECK(cudaMemcpyAsync(slopes, alibi_slopes, std::size_t(shape.heads) * sizeof(float),
                                              cudaMemcpyHostToDevice, ctx.stream()));

    auto const qh = detail::pack(ctx, q.data, shape, shape.heads, qp);
    auto const kh = detail::pack(ctx, k.data, shape, shape.kv_heads, kp);
    auto const vh = detail::pack(ctx, v.data, shape, shape.kv_heads, vp);
    Index const hd = shape.head_dim;
    detail::head_gemm(ctx, shape, Trans::No, Trans::Yes, qh, seq, hd, kh, seq, hd, probs.data, seq, seq, scale);
    detail::causal_softmax_kernel<float><<<unsigned(probs.rows), detail::softmax_threads, 0, ctx.stream()>>>(
        probs.data, shape.seq, shape.heads, alibi_slopes ? slopes : nullptr);
    POLYALPACA_CUDA_CHECK(cudaGetLastError());
    detail::head_gemm(ctx, shape, Trans::No, Trans::No, {probs.data}, seq, seq, vh, seq, hd, op, seq, hd, 1.0f);
    detail::unpack(ctx, op, shape, shape.heads, false, out.data);
}

/// Gradients of attention_forward from dout (N, heads*hd) and the saved probs, ADDED into dq, dk and dv; a
/// gradient whose data is nullptr is skipped. ALiBi slopes are constants, so they need no gradient. `out` is
/// the forward's output or empty: the flash kernels then take D = rowsum(dout * out) from it instead of a pass
/// over the keys (layers/attention.hpp passes it); the GEMM path does not read it.
inline void attention_backward(Context& ctx, View<float const> dout, View<float const> out, View<float const> q,
                               View<float const> k, View<float const> v, View<float const> probs, View<float> dq,
                               View<float> dk, View<float> dv, AttentionShape const& shape, float scale) {
    detail::check_attention_shape(shape, "attention_backward");
    Index const n = Index(shape.batch) * shape.seq, seq = shape.seq;
    Index const q_cols = Index(shape.heads) * shape.head_dim, kv_cols = Index(shape.kv_heads) * shape.head_dim;
    detail::check_attention_view(dout, n, q_cols, "attention_backward: dout (batch*seq, heads*head_dim)");
    if (out.data) detail::check_attention_view(out, n, q_cols, "attention_backward: out (batch*seq, heads*head_dim)");
    detail::check_attention_view(q, n, q_cols, "attention_backward: q (batch*seq, heads*head_dim)");
    detail::check_attention_view(k, n, kv_cols, "attention_backward: k (batch*seq, kv_heads*head_dim)");
    detail::check_attention_view(v, n, kv_cols, "attention_backward: v (batch*seq, kv_heads*head_dim)");
    bool const flash = detail::use_flash(ctx, shape, probs.cols);
    if (flash)
        detail::check_flash_state(probs, shape, "attention_backward: probs");
    else
        detail::check_attention_view(probs, Index(shape.batch) * shape.heads * seq, seq,
                                     "attention_backward: probs (batch*heads*seq, seq)");
    if (dq.data) require_shape(dq, n, q_cols, "attention_backward: dq (batch*seq, heads*head_dim)");
    if (dk.data) require_shape(dk, n, kv_cols, "attention_backward: dk (batch*seq, kv_heads*head_dim)");
    if (dv.data) require_shape(dv, n, kv_cols, "attention_backward: dv (batch*seq, kv_heads*head_dim)");
    if (!dq.data && !dk.data && !dv.data) return;
    if (flash) {
        flash_attention_backward(ctx, dout, out.data, q, k, v, probs, dq, dk, dv, shape, scale);
        return;
    }
    ctx.make_current();

    std::size_t const packed = attention_packed_floats(shape);
    std::size_t const square = std::size_t(probs.rows) * std::size_t(seq);
    using S = detail::AttentionScratch;
    S scratch{static_cast<char*>(ctx.scratch(detail::attention_scratch_slot, attention_gemm_backward_bytes(shape)))};
    float* dop = scratch.take(packed);  // (batch*heads, seq, hd)
    float* kp = scratch.take(packed);
    float* vp = scratch.take(packed);
    float* qp = scratch.take(packed);
    float* grad = scratch.take(packed);  // dV, dQ, then dK of the packed heads, one at a time
    float* ds = scratch.take(square);    // (batch*heads*seq, seq)
    Index const hd = shape.head_dim;

    auto const doh = detail::pack(ctx, dout.data, shape, shape.heads, dop);
    auto const vh = detail::pack(ctx, v.data, shape, shape.kv_heads, vp);
    if (dv.data) {
        detail::head_gemm(ctx, shape, Trans::Yes, Trans::No, {probs.data}, seq, seq, doh, seq, hd, grad, seq, hd, 1.0f);
        detail::unpack(ctx, grad, shape, shape.kv_heads, true, dv.data);
    }
    if (!dq.data && !dk.data) return;
    detail::head_gemm(ctx, shape, Trans::No, Trans::Yes, doh, seq, hd, vh, seq, hd, ds, seq, seq, 1.0f);
    detail::causal_softmax_backward_kernel<float>
        <<<unsigned(probs.rows), detail::softmax_threads, 0, ctx.stream()>>>(probs.data, ds, shape.seq, scale);
    POLYALPACA_CUDA_CHECK(cudaGetLastError());
    if (dq.data) {
        auto const kh = detail::pack(ctx, k.data, shape, shape.kv_heads, kp);
        detail::head_gemm(ctx, shape, Trans::No, Trans::No, {ds}, seq, seq, kh, seq, hd, grad, seq, hd, 1.0f);
        detail::unpack(ctx, grad, shape, shape.heads, true, dq.data);
    }
    if (dk.data) {
        auto const qh = detail::pack(ctx, q.data, shape, shape.heads, qp);
        detail::head_gemm(ctx, shape, Trans::Yes, Trans::No, {ds}, seq, seq, qh, seq, hd, grad, seq, hd, 1.0f);
        detail::unpack(ctx, grad, shape, shape.kv_heads, true, dk.data);
    }
}

/// attention_backward without the forward's output (the flash kernels then find D with a pass over the keys).
inline void attention_backward(Context& ctx, View<float const> dout, View<float const> q, View<float const> k,
                               View<float const> v, View<float const> probs, View<float> dq, View<float> dk,
                               View<float> dv, AttentionShape const& shape, float scale) {
    attention_backward(ctx, dout, View<float const>{}, q, k, v, probs, dq, dk, dv, shape, scale);
}

}  // namespace polyalpaca::cuda
