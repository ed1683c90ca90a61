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

/// Per row r with target t = targets[r] != ignore_index: loss_r = logsumexp(logits[r]) - logits[r][t], computed
/// in double after subtracting the row max (one vectorised exp per logit, exp_blocks.hpp). Returns the sum of
/// loss_r and the number of such rows.
/// When dlogits.data is not null it is WRITTEN (not added): grad_scale * (softmax(logits[r]) - onehot(t)) on
/// counted rows and 0 on ignored rows; it may alias logits (in-place gradient). A target outside [0, V) that is not
/// ignore_index throws. T is deduced from logits.
template <class T>
LossSum cross_entropy(Context& ctx, View<T const> logits, std::span<std::int32_t const> targets, int ignore_index,
                      std::type_identity_t<View<T>> dlogits, std::type_identity_t<T> grad_scale) {
    require(!logits.empty(), "cross_entropy: logits is empty");
    Index const n = logits.rows;
    Index const vocab = logits.cols;
    require(Index(targets.size()) == n, "cross_entropy: targets has ", targets.size(), " entries, logits has ", n,
            " rows");
    for (Index r = 0; r < n; ++r) {
        std::int32_t const t = targets[std::size_t(r)];
        require(t == ignore_index || (t >= 0 && t < vocab), "cross_entropy: target ", t, " at row ", r,
                " is outside [0, ", vocab, ") and is not the ignore index ", ignore_index);
    }
    bool const with_grad = dlogits.data != nullptr;
    if (with_grad) require_shape(dlogits, n, vocab, "cross_entropy: dlogits");

    double sum = 0;
    Index count = 0;
    constexpr Index parallel_min = Index(1) << 15;
#pragma omp parallel reduction(+ : sum, count) if (n * vocab >= parallel_min) num_threads(std::max(1, ctx.threads))
    {
        Eigen::ArrayXd shifted(vocab);  // exp(logit - row max), per thread; aligned, so its sum's order is fixed
#pragma omp for
        for (Index r = 0; r < n; ++r) {
            std::int32_t const t = targets[std::size_t(r)];
            T const* row = logits.row(r);
            if (t == ignore_index) {
                if (with_grad) std::fill_n(dlogits.row(r), vocab, T(0));
                continue;
            }
            double const row_max = double(*std::max_element(row, row + vocab));
            for (Index j = 0; j < vocab; ++j) shifted[j] = double(row[j]) - row_max;
            detail::exp_in_place(shifted.data(), vocab);
            double const sum_exp = shifted.sum();
            double const log_sum_exp = row_max + std::log(sum_exp);
            double const target_logit = double(row[t]);  // read before dlogits (which may alias logits) is written
            sum += log_sum_exp - target_logit;
            count += 1;
            if (!with_grad) continue;
            T* grad = dlogits.row(r);
            double const scale = double(grad_scale);
            double const softmax_scale = scale / sum_exp;
            for (Index j = 0; j < vocab; ++j) grad[j] = T(shifted[j] * softmax_scale);
            grad[t] = T(scale * (std::exp(target_logit - log_sum_exp) - 1.0));
        }
    }
    return {sum, count};
}

/// The same for mutable logits (deduction does not convert View<T> to View<T const>).
template <class T>
    requires(!std::is_const_v<T>)
LossSum cross_entropy(Context& ctx, View<T> logits, std::span<std::int32_t const> targets, int ignore_index,
                      std::type_identity_t<View<T>> dlogits, std::type_identity_t<T> grad_scale) {
    return cross_entropy<T>(ctx, View<T const>(logits), targets, ignore_index, dlogits, grad_scale);
}

}  // namespace polyalpaca::cpu
