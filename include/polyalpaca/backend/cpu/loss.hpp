/// @file backend/cpu/loss.hpp
/// @brief Token-level cross-entropy over logits with an ignore index; returns the loss sum and writes dlogits.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/backend/cpu/exp_blocks.hpp"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

namespace detail {
/// Logits (rows, vocab) stored as column blocks: block b, the columns [b * block, b * block + width_b), is a
/// (rows, width_b) row-major matrix at data + rows * b * block. A block as wide as the vocabulary is the plain
/// row-major layout.
template <class T>
struct VocabBlocks {
    T* data;
    Index rows, vocab, block;

    /// Calls f(column, pointer, width) for each piece of row r, left to right.
    template <class F>
    void for_each_piece(Index r, F const& f) const {
        for (Index begin = 0; begin < vocab; begin += block) {
            Index const width = std::min(block, vocab - begin);
            f(begin, data + rows * begin + r * width, width);
        }
    }
    T& at(Index r, Index column) const {
        Index const begin = column / block * block;
        return data[rows * begin + r * std::min(block, vocab - begin) + column - begin];
    }
};

/// cross_entropy_in_vocab_blocks's rows (checked there), with exp(logit - row max) taken in E: double, or float in
/// GemmMath::Bf16 (as autocast's fp32 log_softmax takes it; 1.5x faster over BLOOM's vocabulary). The sums are double.
template <class E, class T>
LossSum cross_entropy_rows(Context& ctx, VocabBlocks<T const> in, std::span<std::int32_t const> targets,
                           int ignore_index, VocabBlocks<T> grads, T grad_scale) {
    Index const n = in.rows, vocab = in.vocab;
    bool const with_grad = grads.data != nullptr;
    double sum = 0;
    Index count = 0;
    constexpr Index parallel_min = Index(1) << 15;
#pragma omp parallel reduction(+ : sum, count) if (n * vocab >= parallel_min) num_threads(std::max(1, ctx.threads))
    {
        Eigen::Array<E, Eigen::Dynamic, 1> shifted(vocab);  // exp(logit - row max), per thread; aligned: one sum order
#pragma omp for
        for (Index r = 0; r < n; ++r) {
            std::int32_t const t = targets[std::size_t(r)];
            if (t == ignore_index) {
                if (with_grad) grads.for_each_piece(r, [](Index, T* piece, Index w) { std::fill_n(piece, w, T(0)); });
                continue;
            }
            T row_max = in.at(r, 0);
            in.for_each_piece(r, [&](Index, T const* piece, Index w) {  // Eigen's max is vectorised, std's is not
                row_max = std::max(row_max, Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1> const>(piece, w)
                                                .template maxCoeff<Eigen::PropagateNaN>());
            });
            in.for_each_piece(r, [&](Index begin, T const* piece, Index w) {
                for (Index j = 0; j < w; ++j) shifted[begin + j] = E(piece[j]) - E(row_max);
            });
            double sum_exp;
            if constexpr (std::is_same_v<E, double>) {
                exp_in_place(shifted.data(), vocab);
                sum_exp = shifted.sum();
            } else {
                shifted = shifted.exp();
                sum_exp = shifted.template cast<double>().sum();
            }
            double const log_sum_exp = double(row_max) + std::log(sum_exp);
            double const target_logit = double(in.at(r, t));  // read before dlogits (which may alias logits)
            sum += log_sum_exp - target_logit;
            count += 1;
            if (!with_grad) continue;
            double const scale = double(grad_scale);
            E const softmax_scale = E(scale / sum_exp);
            grads.for_each_piece(r, [&](Index begin, T* piece, Index w) {
                for (Index j = 0; j < w; ++j) piece[j] = T(shifted[begin + j] * softmax_scale);
            });
            grads.at(r, t) = T(scale * (std::exp(target_logit - log_sum_exp) - 1.0));
        }
    }
    return {sum, count};
}
}  // namespace detail

/// cross_entropy over logits stored as column blocks of `block` columns (detail::VocabBlocks; what the LM head's
/// vocabulary-blocked GEMMs write, backend/cpu/lm_head.hpp), dlogits written in the same layout. Each row is
/// gathered into one array first, so the exps and their sum are those of the row-major form, cross_entropy (below):
/// the same bits for any block width.
template <class T>
LossSum cross_entropy_in_vocab_blocks(Context& ctx, View<T const> logits, std::span<std::int32_t const> targets,
                                      int ignore_index, std::type_identity_t<View<T>> dlogits,
                                      std::type_identity_t<T> grad_scale, Index block) {
    require(!logits.empty(), "cross_entropy: logits is empty");
    require(block > 0, "cross_entropy: vocabulary block of ", block, " columns");
    Index const n = logits.rows;
    Index const vocab = logits.cols;
    require(Index(targets.size()) == n, "cross_entropy: targets has ", targets.size(), " entries, logits has ", n,
            " rows");
    for (Index r = 0; r < n; ++r) {
        std::int32_t const t = targets[std::size_t(r)];
        require(t == ignore_index || (t >= 0 && t < vocab), "cross_entropy: target ", t, " at row ", r,
                " is outside [0, ", vocab, ") and is not the ignore index ", ignore_index);
    }
    if (dlogits.data != nullptr) require_shape(dlogits, n, vocab, "cross_entropy: dlogits");
    detail::VocabBlocks<T const> const in{logits.data, n, vocab, block};
    detail::VocabBlocks<T> const grads{dlogits.data, n, vocab, block};

    return ctx.gemm_math() == GemmMath::Bf16
               ? detail::cross_entropy_rows<float>(ctx, in, targets, ignore_index, grads, grad_scale)
               : detail::cross_entropy_rows<double>(ctx, in, targets, ignore_index, grads, grad_scale);
}

/// Per row r with target t = targets[r] != ignore_index: loss_r = logsumexp(logits[r]) - logits[r][t], computed
/// after subtracting the row max with one vectorised exp per logit in double (exp_blocks.hpp), or in float when ctx
/// is in GemmMath::Bf16, and sums in double. Returns the sum of loss_r and the number of such rows.
/// When dlogits.data is not null it is WRITTEN (not added): grad_scale * (softmax(logits[r]) - onehot(t)) on
/// counted rows and 0 on ignored rows; it may alias logits (in-place gradient). A target outside [0, V) that is not
/// ignore_index throws. T is deduced from logits.
template <class T>
LossSum cross_entropy(Context& ctx, View<T const> logits, std::span<std::int32_t const> targets, int ignore_index,
                      std::type_identity_t<View<T>> dlogits, std::type_identity_t<T> grad_scale) {
    return cross_entropy_in_vocab_blocks<T>(ctx, logits, targets, ignore_index, dlogits, grad_scale,
                                            std::max<Index>(logits.cols, 1));
}

/// The same for mutable logits (deduction does not convert View<T> to View<T const>).
template <class T>
    requires(!std::is_const_v<T>)
LossSum cross_entropy(Context& ctx, View<T> logits, std::span<std::int32_t const> targets, int ignore_index,
                      std::type_identity_t<View<T>> dlogits, std::type_identity_t<T> grad_scale) {
    return cross_entropy<T>(ctx, View<T const>(logits), targets, ignore_index, dlogits, grad_scale);
}

}  // namespace polyalpaca::cpu
