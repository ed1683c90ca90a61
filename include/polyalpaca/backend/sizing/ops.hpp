/// @file backend/sizing/ops.hpp
/// @brief The dry-run backend's ops (backend/sizing.hpp): every op the layers, the optimizer and decoding call, with
///        the Cuda backend's names and arguments (docs/backend_ops.md). None computes or reads memory. Each records
///        what the target's op holds itself: for Cuda, the scratch slot requests (sized by cuda/op_memory.hpp, as
///        the CUDA ops size them), the bf16 conversions of GEMM operands in GemmMath::Bf16 (an activation into
///        slot 8 or 9, a weight's working copy) and the LM head chunk's gradient; for the CPU, its staging buffers
///        and, in its GemmMath::Bf16, the rounded activations and the weights' working copies.
///        Losses come back as zero sums with the true counts, norms as zero.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

#include "polyalpaca/backend/cpu/attention_bf16.hpp"
#include "polyalpaca/backend/cpu/linear.hpp"
#include "polyalpaca/backend/cpu/lm_head.hpp"
#include "polyalpaca/backend/cpu/optim_ops.hpp"
#include "polyalpaca/backend/cuda/kernel_choice.hpp"
#include "polyalpaca/backend/cuda/op_memory.hpp"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/backend/sizing/context.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::sizing {

namespace slot = cuda::scratch_slot;

namespace detail {
/// A Bf16 GEMM's operand converted into scratch `slot` (an activation: every call converts it again).
template <class Target>
void bf16_operand(Context<Target>& ctx, int slot, Index values) {
    if (ctx.bf16_gemms()) ctx.scratch(slot, cuda::bf16_bytes(values));
}
/// A Bf16 GEMM's weight operand: read from the weight's working copy.
template <class Target>
void bf16_weight(Context<Target>& ctx, View<float const> w) {
    if (ctx.bf16_gemms()) ctx.bf16_copy(w.data, std::size_t(w.size()));
}
/// True when the CPU backend multiplies an (m, k) x (k, n) product on bf16 operands (cpu::detail::bf16_product).
template <class Target>
bool cpu_bf16_product(Context<Target> const& ctx, Index m, Index k, Index n) {
    return ctx.bf16_gemms() && cpu::detail::bf16_shape(m, k, n);
}
/// Host indices an op copies into scratch `slot` first (Context::upload_scratch).
template <class Target>
void upload(Context<Target>& ctx, int slot, std::size_t bytes) {
    if constexpr (Target::cuda) ctx.scratch(slot, cuda::upload_bytes(bytes));
}
/// True when attention runs on the flash kernels: chosen for head_dim by kernel_choice.hpp's rule, and a state
/// of at least 2 columns (cuda/attention.cuh's use_flash).
template <class Target>
bool flash(Context<Target> const& ctx, AttentionShape const& s, Index state_cols) {
    if constexpr (Target::cuda)
        return cuda::flash_attention_chosen(ctx.attention_kernel(), ctx.gemm_math(), s.head_dim) &&
               state_cols >= cuda::flash::state_cols;
    else
        return false;
}
}  // namespace detail

// Embedding: the ids, or the backward's grouped positions, uploaded to slot 1.
template <class Target>
void embedding_forward(Context<Target>& ctx, std::span<std::int32_t const> ids, View<float const>, View<float>) {
    detail::upload(ctx, slot::token_ids, ids.size_bytes());
}
template <class Target>
void embedding_backward(Context<Target>& ctx, std::span<std::int32_t const> ids, View<float const>,
                        View<float> dtable) {
    if constexpr (Target::cuda)
        if (dtable.data) detail::upload(ctx, slot::token_ids, cuda::embedding_backward_groups(ids).size() * 4);
}

// Linear: in Bf16, the activation operand into slot 8 (and 9), the weight from its working copy; the bias
// gradient of a trained weight from the BGRADB epilogue into slot 7.
template <class Target>
void linear_forward(Context<Target>& ctx, View<float const> x, View<float const> w, float const*, View<float>,
                    bool = false) {
    if constexpr (Target::cuda) {
        detail::bf16_operand(ctx, slot::bf16_first, x.size());
        detail::bf16_weight(ctx, w);
    } else if (x.rows > cpu::detail::linear_few_rows && detail::cpu_bf16_product(ctx, x.rows, x.cols, w.rows)) {
        ScratchFrame frame(ctx.temporaries);
        frame.template take<std::uint16_t>(x.rows, x.cols);  // x rounded
        detail::bf16_weight(ctx, w);
    }
}
template <class Target>
void linear_backward(Context<Target>& ctx, View<float const> x, View<float const> w, View<float const> dy,
                     View<float> dx, View<float> dw, float* dbias) {
    if constexpr (!Target::cuda) {
        if (!detail::cpu_bf16_product(ctx, x.rows, x.cols, w.rows)) return;
        ScratchFrame frame(ctx.temporaries);
        frame.template take<std::uint16_t>(dy.rows, dy.cols);  // dy rounded, for dx and dW
        if (dx.data) detail::bf16_weight(ctx, w);
        if (dw.data) frame.template take<std::uint16_t>(x.rows, x.cols);  // x rounded
    } else {
        if (dx.data) {
            detail::bf16_operand(ctx, slot::bf16_first, dy.size());
            detail::bf16_weight(ctx, w);
        }
        if (dw.data) {
            if (dbias) ctx.scratch(slot::bias_grad, cuda::bias_grad_bytes(w.rows));
            detail::bf16_operand(ctx, slot::bf16_first, dy.size());
            detail::bf16_operand(ctx, slot::bf16_second, x.size());
        }
    }
}

// GELU linear (Cuda only, cuda/linear_gelu.cuh): the GELU epilogues, slot 6 for dpre or the bias gradient.
inline void linear_gelu_forward(Context<CudaTarget>& ctx, View<float const> x, View<float const> w, float const* bias,
                                View<float> pre, View<float>) {
    linear_forward(ctx, x, w, bias, pre);
}
inline void linear_gelu_backward(Context<CudaTarget>& ctx, View<float const> x, View<float const> w,
                                 View<float const>, View<float const> dy, View<float> dx, View<float> dw,
                                 float* dbias) {
    ctx.scratch(slot::gelu, cuda::gelu_grad_bytes(dy.size()));
    linear_backward(ctx, x, w, dy, dx, dw, dbias);
}
inline void linear_backward_dgelu(Context<CudaTarget>& ctx, View<float const> dz, View<float const> w,
                                  View<float const> pre, View<float>, float* dbias) {
    if (dbias) ctx.scratch(slot::gelu, cuda::bias_grad_bytes(pre.cols));
    detail::bf16_operand(ctx, slot::bf16_first, dz.size());
    detail::bf16_weight(ctx, w);
}

// Norms: the backward's dgamma/dbeta column partial sums in slot 0.
template <class Target>
void layer_norm_forward(Context<Target>&, View<float const>, float const*, float const*, float, View<float>, float*,
                        float*) {}
template <class Target>
void add_layer_norm_forward(Context<Target>&, View<float const>, View<float const>, float const*, float const*, float,
                            View<float>, View<float>, float*, float*) {}
template <class Target>
void layer_norm_backward(Context<Target>& ctx, View<float const>, View<float const> x, float const*, float const*,
                         float const*, View<float>, float* dgamma, float* dbeta) {
    if constexpr (Target::cuda)
        if (dgamma || dbeta) ctx.scratch(slot::norm_grads, cuda::norm_grads_bytes(x.rows, x.cols));
}
template <class Target>
void rms_norm_forward(Context<Target>&, View<float const>, float const*, float, View<float>, float*) {}
template <class Target>
void add_rms_norm_forward(Context<Target>&, View<float const>, View<float const>, float const*, float, View<float>,
                          View<float>, float*) {}
template <class Target>
void rms_norm_backward(Context<Target>& ctx, View<float const>, View<float const> x, float const*, float const*,
                       View<float>, float* dgamma) {
    if constexpr (Target::cuda)
        if (dgamma) ctx.scratch(slot::norm_grads, cuda::norm_grads_bytes(x.rows, x.cols));
}

// Elementwise ops, per-column scales, dropout and the fused QKV layout: no memory of their own.
template <class Target>
void gelu_tanh_forward(Context<Target>&, View<float const>, View<float>) {}
template <class Target>
void gelu_tanh_backward(Context<Target>&, View<float const>, View<float const>, View<float>) {}
template <class Target>
void gelu_erf_forward(Context<Target>&, View<float const>, View<float>) {}
template <class Target>
void gelu_erf_backward(Context<Target>&, View<float const>, View<float const>, View<float>) {}
template <class Target>
void silu_forward(Context<Target>&, View<float const>, View<float>) {}
template <class Target>
void silu_backward(Context<Target>&, View<float const>, View<float const>, View<float>) {}
template <class Target>
void swiglu_forward(Context<Target>&, View<float const>, View<float const>, View<float>) {}
template <class Target>
void swiglu_backward(Context<Target>&, View<float const>, View<float const>, View<float const>, View<float>,
                     View<float>) {}
template <class Target>
void add(Context<Target>&, View<float const>, View<float const>, View<float>) {}
template <class Target>
void accumulate(Context<Target>&, View<float const>, View<float>) {}
template <class Target>
void scale_columns(Context<Target>&, View<float const>, float const*, float const*, View<float>) {}
template <class Target>
void column_dots(Context<Target>&, View<float const>, View<float const>, float*) {}
template <class Target>
void row_norms(Context<Target>&, View<float const>, float*) {}
template <class Target>
void divide(Context<Target>&, float const*, float const*, float*, Index) {}
template <class Target>
void dropout_forward(Context<Target>&, View<float const>, View<float>, View<float>, float, Rng&) {}
template <class Target>
void dropout_backward(Context<Target>&, View<float const>, View<float const>, View<float>) {}
template <class Target>
void split_fused_qkv(Context<Target>&, View<float const>, View<float>, View<float>, View<float>, int, int) {}
template <class Target>
void merge_fused_qkv(Context<Target>&, View<float const>, View<float const>, View<float const>, View<float>, int,
                     int) {}

// RoPE: the (seq, rotary_dim / 2) cos and sin tables in slot 3.
template <class Target>
void rope_forward(Context<Target>& ctx, View<float>, int seq, int, RopeSpec const& spec) {
    if constexpr (Target::cuda) ctx.scratch(slot::rope_tables, cuda::rope_table_bytes(seq, spec.rotary_dim));
}
template <class Target>
void rope_backward(Context<Target>& ctx, View<float> dx, int seq, int position_offset, RopeSpec const& spec) {
    rope_forward(ctx, dx, seq, position_offset, spec);
}

/// Columns attention keeps per (batch, head, query) row: seq (the probabilities), or 2 on the flash kernels.
template <class Target>
Index attention_state_cols(Context<Target> const& ctx, AttentionShape const& shape) {
    return detail::flash(ctx, shape, cuda::flash::state_cols) ? Index(cuda::flash::state_cols) : Index(shape.seq);
}

// Attention (cuda/attention.cuh, cuda/flash_attention.cuh): slot 4 holds the GEMM path's packed heads and dS, or
// the flash kernels' slopes and delta; in Bf16 the GEMM path converts the fp32 probabilities (and dS) into slot 8.
// The CPU's Bf16 attention takes its bf16 operands and one sequence's dP as temporaries (cpu/attention_bf16.hpp).
namespace detail {
template <class Target>
void cpu_bf16_attention(Context<Target>& ctx, AttentionShape const& shape, bool backward) {
    if (!ctx.bf16_gemms() || !cpu::detail::bf16_attention_shape(shape)) return;
    ScratchFrame frame(ctx.temporaries);
    cpu::detail::take_bf16_attention_buffers(frame, shape, backward);
}
}  // namespace detail
template <class Target>
void attention_forward(Context<Target>& ctx, View<float const>, View<float const>, View<float const>, View<float>,
                       View<float> probs, AttentionShape const& shape, float const* alibi_slopes, float) {
    if constexpr (Target::cuda) {
        if (detail::flash(ctx, shape, probs.cols)) {
            if (alibi_slopes) ctx.scratch(slot::attention, cuda::flash_slopes_bytes(shape.heads));
            return;
        }
        ctx.scratch(slot::attention, cuda::attention_gemm_forward_bytes(shape));
        detail::bf16_operand(ctx, slot::bf16_first, probs.size());
    } else {
        detail::cpu_bf16_attention(ctx, shape, false);
    }
}
template <class Target>
void attention_backward(Context<Target>& ctx, View<float const>, View<float const>, View<float const>,
                        View<float const>, View<float const>, View<float const> probs, View<float> dq, View<float> dk,
                        View<float> dv, AttentionShape const& shape, float) {
    if (!dq.data && !dk.data && !dv.data) return;
    if constexpr (Target::cuda) {
        if (detail::flash(ctx, shape, probs.cols)) {
            if (dq.data || dk.data) ctx.scratch(slot::attention, cuda::flash_delta_bytes(probs.rows));
            return;
        }
        ctx.scratch(slot::attention, cuda::attention_gemm_backward_bytes(shape));
        detail::bf16_operand(ctx, slot::bf16_first, probs.size());
    } else {
        detail::cpu_bf16_attention(ctx, shape, true);
    }
}
template <class Target>
void attention_backward(Context<Target>& ctx, View<float const> dout, View<float const> q, View<float const> k,
                        View<float const> v, View<float const> probs, View<float> dq, View<float> dk, View<float> dv,
                        AttentionShape const& shape, float scale) {
    attention_backward(ctx, dout, View<float const>{}, q, k, v, probs, dq, dk, dv, shape, scale);
}

/// The loss sum is 0 (nothing is computed); the count is the true number of scored rows. Cuda: targets and row
/// losses in slot 5.
template <class Target>
LossSum cross_entropy(Context<Target>& ctx, View<float const> logits, std::span<std::int32_t const> targets,
                      int ignore_index, View<float>, float) {
    LossSum total;
    for (auto t : targets) total.count += t != ignore_index;
    if constexpr (Target::cuda) ctx.scratch(slot::loss, cuda::loss_bytes(logits.rows));
    return total;
}

/// Cuda's LM head chunk (cuda/lm_head.cuh), which layers/lm_head.hpp runs in place of its generic chunk: the
/// gradient of the logits is a temporary beside them, bf16 in GemmMath::Bf16, fp32 otherwise.
inline LossSum lm_head_chunk_forward_backward(Context<CudaTarget>& ctx, View<float const> hc, View<float const> w,
                                              std::span<std::int32_t const> targets, int ignore_index,
                                              float grad_scale, View<float> logits, View<float> dhc, View<float> dw) {
    linear_forward(ctx, hc, w, nullptr, logits);
    ScratchFrame temps(ctx.temporaries);
    if (!ctx.bf16_gemms()) {
        auto dlogits = temps.take<float>(hc.rows, w.rows);
        auto const loss = cross_entropy(ctx, View<float const>(logits), targets, ignore_index, dlogits, grad_scale);
        linear_backward(ctx, hc, w, View<float const>(dlogits), dhc, dw, nullptr);
        return loss;
    }
    temps.take<std::uint16_t>(hc.rows, w.rows);  // (rows, vocab) bf16
    auto const loss = cross_entropy(ctx, View<float const>(logits), targets, ignore_index, View<float>{}, grad_scale);
    detail::bf16_weight(ctx, w);  // dhc += dlogits W
    if (dw.data) detail::bf16_operand(ctx, slot::bf16_second, hc.size());  // dW += dlogits^T hc
    return loss;
}

/// The CPU's LM head chunk (cpu/lm_head.hpp): in GemmMath::Bf16, the whole head's working copy, the hidden states
/// rounded for every block, and one vocabulary block of dlogits rounded at a time; fp32 holds nothing of its own.
inline LossSum lm_head_chunk_forward_backward(Context<CpuEigenTarget>& ctx, View<float const> hc, View<float const> w,
                                              std::span<std::int32_t const> targets, int ignore_index,
                                              float grad_scale, View<float> logits, View<float>, View<float>) {
    auto loss = [&] {
        return cross_entropy(ctx, View<float const>(logits), targets, ignore_index, View<float>{}, grad_scale);
    };
    if (!(hc.rows > cpu::detail::linear_few_rows && detail::cpu_bf16_product(ctx, hc.rows, hc.cols, w.rows)))
        return loss();
    ScratchFrame frame(ctx.temporaries);
    frame.take<std::uint16_t>(hc.rows, hc.cols);  // hc rounded
    detail::bf16_weight(ctx, w);
    ScratchFrame block_frame(ctx.temporaries);
    block_frame.take<std::uint16_t>(hc.rows, std::min(cpu::lm_head_vocab_block, w.rows));  // a block of dlogits
    return loss();
}

// Row gathers: the row indices in slot 2.
template <class Target>
void gather_rows(Context<Target>& ctx, View<float const>, std::span<std::int32_t const> rows, View<float> dst) {
    if (!dst.empty()) detail::upload(ctx, slot::row_indices, rows.size_bytes());
}
template <class Target>
void scatter_add_rows(Context<Target>& ctx, View<float const> src, std::span<std::int32_t const> rows, View<float>) {
    if (!src.empty()) detail::upload(ctx, slot::row_indices, rows.size_bytes());
}

// Optimizer ops: squared_norm's partials in slot 0; it returns 0, so clipping never scales.
template <class Target>
void adamw_update(Context<Target>&, float*, float const*, float*, float*, Index, cpu::AdamWStep const&) {}
template <class Target>
void adamw_update_consuming(Context<Target>&, float*, float*, float*, float*, Index, cpu::AdamWStep const&, float) {}
template <class Target>
double squared_norm(Context<Target>& ctx, float const*, Index n) {
    if constexpr (Target::cuda)
        if (n > 0) ctx.scratch(slot::squared_norm, cuda::squared_norm_bytes(n));
    return 0.0;
}
template <class Target>
void scale(Context<Target>&, float*, Index, float) {}

// Incremental decoding: kv_cache_gather stages the moved rows (slot 4 on Cuda, a host vector on the CPU).
template <class Target>
void kv_cache_write(Context<Target>&, View<float const>, View<float>, std::span<CachedSequence const>) {}
template <class Target>
void kv_cache_gather(Context<Target>& ctx, View<float> cache, std::span<Index const>, std::span<Index const>,
                     std::span<int const> lengths) {
    Index rows = 0;
    for (int l : lengths) rows += l;
    if (rows == 0) return;
    if constexpr (Target::cuda) ctx.scratch(slot::attention, cuda::kv_gather_bytes(rows, cache.cols));
    else ctx.transient(cuda::kv_gather_bytes(rows, cache.cols));
}
template <class Target>
void attention_decode(Context<Target>&, View<float const>, View<float const>, View<float const>, View<float>,
                      std::span<CachedSequence const>, int, int, int, float const*, float) {}

}  // namespace polyalpaca::sizing
