/// @file backend/cpu/lm_head.hpp
/// @brief The LM head's chunk on the CPU (the op layers/lm_head.hpp runs in place of its generic chunk): logits,
///        cross-entropy and gradients in blocks of the vocabulary, so that no GEMM has BLOOM's 250,880 entries as
///        a side. oneDNN ran the head's dX product, whose inner dimension is the vocabulary, at 522 GFLOP/s on bf16
///        operands; as 16 products of 16,384 entries summed, at 765 (docs/performance.md, "One pool of threads").
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/backend/cpu/linear.hpp"
#include "polyalpaca/backend/cpu/loss.hpp"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

/// Vocabulary entries per block of the LM head's products.
inline constexpr Index lm_head_vocab_block = Index(1) << 14;

/// Calls f(begin, width) for the blocks [begin, begin + width) of a vocabulary of `vocab` entries.
template <class F>
void for_each_vocab_block(Index vocab, F const& f) {
    for (Index begin = 0; begin < vocab; begin += lm_head_vocab_block)
        f(begin, std::min(lm_head_vocab_block, vocab - begin));
}

/// True when the LM head's products for `rows` hidden states run on bf16 operands, as linear_forward would run the
/// whole head's: then the head's bf16 working copy is made whole, and its blocks are read from it.
inline bool lm_head_on_bf16(Context const& ctx, Index rows, Index dim, Index vocab) {
    return rows > detail::linear_few_rows && detail::bf16_product(ctx, rows, dim, vocab);
}

/// hc (rows, D) the chunk's hidden states, w (V, D) the head's weight, targets one per row (ignore_index
/// allowed), logits (rows, V) scratch the caller owns (held as column blocks, detail::VocabBlocks), dhc (rows, D)
/// ADDED into, dw (V, D) ADDED into or empty (a frozen head). dlogits = grad_scale * (softmax - onehot) overwrites
/// the logits. Returns the loss sum and count. In GemmMath::Bf16, hc is rounded once for every block, and each
/// block of dlogits as its products read it.
template <class T>
LossSum lm_head_chunk_forward_backward(Context& ctx, std::type_identity_t<View<T const>> hc,
                                       std::type_identity_t<View<T const>> w, std::span<std::int32_t const> targets,
                                       int ignore_index, T grad_scale, View<T> logits, View<T> dhc, View<T> dw) {
    Index const rows = hc.rows, vocab = w.rows, dim = hc.cols;
    require_shape(w, vocab, dim, "lm_head_chunk_forward_backward: w");
    require_shape(logits, rows, vocab, "lm_head_chunk_forward_backward: logits");
    require_shape(dhc, rows, dim, "lm_head_chunk_forward_backward: dhc");
    if (dw.data != nullptr) require_shape(dw, vocab, dim, "lm_head_chunk_forward_backward: dw");
    auto logits_block = [&](Index begin, Index width) { return View<T>(logits.data + rows * begin, rows, width); };
    auto weight_block = [&](Index begin, Index width) { return View<T const>(w.data + begin * dim, width, dim); };
    auto dw_block = [&](Index begin, Index width) {
        return dw.data != nullptr ? View<T>(dw.data + begin * dim, width, dim) : View<T>{};
    };
    auto cross_entropy_of_blocks = [&] {
        return cross_entropy_in_vocab_blocks(ctx, View<T const>(logits), targets, ignore_index, logits, grad_scale,
                                             lm_head_vocab_block);
    };
    if constexpr (std::is_same_v<T, float>) {
        if (lm_head_on_bf16(ctx, rows, dim, vocab)) {
            ScratchFrame frame(ctx.temporaries);
            auto const hc16 = detail::bf16_activation(ctx, frame, hc);
            auto& gemms = ctx.bf16_gemms();
            auto const* w16 = gemms.weight(ctx.threads, w.data, std::size_t(w.size()));
            for_each_vocab_block(vocab, [&](Index begin, Index width) {
                Bf16Operand const w_t{w16 + begin * dim, dim, width, true};  // the block's rows, transposed
                gemms.multiply(hc16, w_t, logits_block(begin, width).data, false);
            });
            auto const loss = cross_entropy_of_blocks();
            for_each_vocab_block(vocab, [&](Index begin, Index width) {
                ScratchFrame block_frame(ctx.temporaries);
                View<float const> const dlogits(logits_block(begin, width));
                auto const dy16 = detail::bf16_activation(ctx, block_frame, dlogits);
                Bf16Operand const w_block{w16 + begin * dim, width, dim};
                Bf16Operand const dy16_t{dy16.data, width, rows, true};
                gemms.multiply(dy16, w_block, dhc.data, true);
                if (dw.data != nullptr) gemms.multiply(dy16_t, hc16, dw_block(begin, width).data, true);
            });
            return loss;
        }
    }
    for_each_vocab_block(vocab, [&](Index begin, Index width) {
        linear_forward(ctx, hc, weight_block(begin, width), static_cast<T const*>(nullptr), logits_block(begin, width));
    });
    auto const loss = cross_entropy_of_blocks();
    for_each_vocab_block(vocab, [&](Index begin, Index width) {
        linear_backward(ctx, hc, weight_block(begin, width), View<T const>(logits_block(begin, width)), dhc,
                        dw_block(begin, width), static_cast<T*>(nullptr));
    });
    return loss;
}

}  // namespace polyalpaca::cpu
