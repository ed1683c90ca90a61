/// @file backend/cuda/lm_head.cuh
/// @brief One chunk of the LM head's training pass on CUDA, which layers/lm_head.hpp calls in place of its
/// generic chunk when the backend has one: logits = hc W^T, the cross-entropy of each row against its target,
/// dhc += dlogits W and, when W trains, dW += dlogits^T hc.
///
/// In GemmMath::Bf16 the loss kernel writes dlogits straight as bf16 (rounded to nearest even from the same fp32
/// value), the operand both gradient GEMMs read. The generic chunk writes fp32 dlogits, which each GEMM then
/// converts to exactly those bf16 values, so the results are the same; this chunk writes half the bytes, runs no
/// conversion pass over (rows, vocab) values and holds half the memory for dlogits. The logits stay fp32 for the
/// loss. Other maths run the generic fp32 steps.
#pragma once

#include <cstdint>
#include <span>

#include <cuda_bf16.h>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/gemm.cuh"
#include "polyalpaca/backend/cuda/loss.cuh"
#include "polyalpaca/backend/cuda/matmul.cuh"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

/// hc (rows, D) the chunk's hidden states, w (V, D) the head's weight, targets one per row (ignore_index
/// allowed), logits (rows, V) scratch the caller owns, dhc (rows, D) ADDED into, dw (V, D) ADDED into or empty
/// (a frozen head). dlogits = grad_scale * (softmax - onehot). Returns the loss sum and count (waits for the
/// stream, as cross_entropy does).
inline LossSum lm_head_chunk_forward_backward(Context& ctx, View<float const> hc, View<float const> w,
                                              std::span<std::int32_t const> targets, int ignore_index,
                                              float grad_scale, View<float> logits, View<float> dhc, View<float> dw) {
    Index const rows = hc.rows, vocab = w.rows;
    require_shape(logits, rows, vocab, "lm_head_chunk_forward_backward: logits");
    require_shape(dhc, rows, hc.cols, "lm_head_chunk_forward_backward: dhc");
    linear_forward(ctx, hc, w, nullptr, logits);
    ScratchFrame temps(ctx.temporaries);
    if (ctx.gemm_math() != GemmMath::Bf16) {
        auto dlogits = temps.take<float>(rows, vocab);
        auto const loss = cross_entropy(ctx, View<float const>(logits), targets, ignore_index, dlogits, grad_scale);
        linear_backward(ctx, hc, w, View<float const>(dlogits), dhc, dw, nullptr);
        return loss;
    }
    auto dlogits = temps.take<__nv_bfloat16>(rows, vocab);
    auto const loss =
        detail::cross_entropy_into(ctx, View<float const>(logits), targets, ignore_index, dlogits.data, grad_scale);
    // The GEMMs as linear_backward runs them, with dlogits already bf16 (detail::bf16_operand passes it through).
    // The views below carry only shapes into the checks.
    View<float const> const dlogits_shape(reinterpret_cast<float const*>(dlogits.data), rows, vocab);
    detail::Operand const dlogits_operand{dlogits.data, rows, vocab, vocab, 0, CUDA_R_16BF};
    auto dx_call = detail::gemm_call(Trans::No, Trans::No, dlogits_shape, w, dhc, "lm_head_chunk: dhc");
    dx_call.a = dlogits_operand;
    dx_call.beta = 1.0f;
    detail::gemm_or_fail(ctx, dx_call, true, "lm_head_chunk: dhc");  // w from its bf16 working copy
    if (dw.data) {
        require_shape(dw, vocab, hc.cols, "lm_head_chunk_forward_backward: dw");
        auto dw_call = detail::gemm_call(Trans::Yes, Trans::No, dlogits_shape, hc, dw, "lm_head_chunk: dw");
        dw_call.a = dlogits_operand;
        dw_call.beta = 1.0f;
        detail::gemm_or_fail(ctx, dw_call, false, "lm_head_chunk: dw");
    }
    return loss;
}

}  // namespace polyalpaca::cuda
