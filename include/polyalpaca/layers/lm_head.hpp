/// @file layers/lm_head.hpp
/// @brief The LM head and its next-token cross-entropy, run in row chunks on label-bearing tokens only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/activation_buffer.hpp"
#include "polyalpaca/core/batch.hpp"
#include "polyalpaca/core/parameter.hpp"
#include "polyalpaca/core/scratch_stack.hpp"
#include "polyalpaca/core/step_profile.hpp"

namespace polyalpaca {

/// logits = h W^T with W (Vocab, Dim): the tied embedding table or an untied lm_head / embed_out weight.
/// Training never holds the full (N, Vocab) logits: only positions with a label are scored (prompt tokens
/// masked with -100 cost nothing), `chunk_rows` at a time.
template <class Backend, class T, int Vocab, int Dim>
class LmHeadLoss {
public:
    /// At most this many logits (rows x Vocab) are held at once: the backend's `lm_head_chunk_logits` when it
    /// names one, else 2^24 (64 MiB of fp32). A GPU wants larger chunks: a GEMM of a few dozen rows against
    /// BLOOM's 250,880-row head runs far below the rate of one with a few hundred (measured: bench/README.md).
    static constexpr Index max_chunk_logits = [] {
        if constexpr (requires { Backend::lm_head_chunk_logits; }) return Index(Backend::lm_head_chunk_logits);
        else return Index(1) << 24;
    }();

    /// Validates labels and returns, for each row r = b*seq + t of h, the label of position t + 1
    /// (HF's shift); the last position of each sequence is not scored.
    static std::vector<std::int32_t> shifted_targets(std::span<std::int32_t const> labels, int batch, int seq) {
        std::vector<std::int32_t> targets(labels.size(), ignore_index);
        for (int b = 0; b < batch; ++b)
            for (int t = 0; t < seq; ++t) {
                std::int32_t const label = labels[std::size_t(b) * seq + t];
                require(label == ignore_index || (label >= 0 && label < Vocab), "label ", label, " at sequence ", b,
                        ", position ", t, " is outside the vocabulary [0, ", Vocab, ") and is not the ignore index ",
                        ignore_index);
                if (t > 0) targets[std::size_t(b) * seq + t - 1] = label;
            }
        return targets;
    }

    /// Mean cross-entropy over scored positions times `loss_scale`; adds its gradient into dh (N, D) and
    /// into the weight's gradient when it trains. Returns the unscaled sum and the count.
    LossSum forward_backward(typename Backend::Context& ctx, View<T const> h, std::span<std::int32_t const> labels,
                                  int batch, int seq, Parameter<T>& weight, View<T> dh, double loss_scale) {
        ProfileRegion region(ctx, Region::LmHead);
        auto const targets = shifted_targets(labels, batch, seq);
        scored_rows_.clear();
        scored_targets_.clear();
        for (std::size_t r = 0; r < targets.size(); ++r)
            if (targets[r] != ignore_index) {
                scored_rows_.push_back(std::int32_t(r));
                scored_targets_.push_back(targets[r]);
            }
        LossSum total;
        if (scored_rows_.empty()) return total;
        T const grad_scale = T(loss_scale / double(scored_rows_.size()));
        Index const chunk = std::clamp<Index>(max_chunk_logits / Vocab, 1, Index(scored_rows_.size()));
        for (Index begin = 0; begin < Index(scored_rows_.size()); begin += chunk) {
            Index const rows = std::min(chunk, Index(scored_rows_.size()) - begin);
            std::span<std::int32_t const> chunk_rows(scored_rows_.data() + begin, std::size_t(rows));
            std::span<std::int32_t const> chunk_targets(scored_targets_.data() + begin, std::size_t(rows));
            auto hc = hidden_.ensure(rows, Dim);
            gather_rows(ctx, h, chunk_rows, hc);
            ScratchFrame temps(ctx.temporaries);
            auto logits = temps.template take<T>(rows, Vocab);
            auto dhc = temps.template take<T>(rows, Dim);
            Backend::fill_zero(ctx, dhc.data, std::size_t(dhc.size()));
            LossSum part;
            // A backend may run the chunk itself (cuda/lm_head.cuh keeps dlogits in bf16); else the ops below.
            if constexpr (requires {
                              lm_head_chunk_forward_backward(ctx, View<T const>(hc), weight.values(), chunk_targets,
                                                             ignore_index, grad_scale, logits, dhc, weight.grads());
                          }) {
                part = lm_head_chunk_forward_backward(ctx, View<T const>(hc), weight.values(), chunk_targets,
                                                      ignore_index, grad_scale, logits, dhc, weight.grads());
            } else {
                linear_forward(ctx, View<T const>(hc), weight.values(), static_cast<T const*>(nullptr), logits);
                auto dlogits = logits;  // the gradient overwrites the logits, which nothing reads afterwards
                part = cross_entropy(ctx, View<T const>(logits), chunk_targets, ignore_index, dlogits, grad_scale);
                linear_backward(ctx, View<T const>(hc), weight.values(), View<T const>(dlogits), dhc, weight.grads(),
                                static_cast<T*>(nullptr));
            }
            total.sum += part.sum;
            total.count += part.count;
            scatter_add_rows(ctx, View<T const>(dhc), chunk_rows, dh);
        }
        return total;
    }

    /// Loss only (evaluation): same scoring, no gradients.
    LossSum loss(typename Backend::Context& ctx, View<T const> h, std::span<std::int32_t const> labels, int batch,
                      int seq, Parameter<T> const& weight) {
        ProfileRegion region(ctx, Region::LmHead);
        auto const targets = shifted_targets(labels, batch, seq);
        LossSum total;
        Index const n = h.rows;
        Index const chunk = std::clamp<Index>(max_chunk_logits / Vocab, 1, n);
        for (Index begin = 0; begin < n; begin += chunk) {
            Index const rows = std::min(chunk, n - begin);
            ScratchFrame temps(ctx.temporaries);
            auto logits = temps.template take<T>(rows, Vocab);
            linear_forward(ctx, View<T const>(h.row(begin), rows, Dim), weight.values(), static_cast<T const*>(nullptr),
                           logits);
            auto part = cross_entropy(ctx, View<T const>(logits),
                                      std::span<std::int32_t const>(targets.data() + begin, std::size_t(rows)),
                                      ignore_index, View<T>{}, T(1));
            total.sum += part.sum;
            total.count += part.count;
        }
        return total;
    }

    /// Full logits (N, Vocab) for inference and tests.
    void logits(typename Backend::Context& ctx, View<T const> h, Parameter<T> const& weight, View<T> out) {
        ProfileRegion region(ctx, Region::LmHead);
        linear_forward(ctx, h, weight.values(), static_cast<T const*>(nullptr), out);
    }

private:
    std::vector<std::int32_t> scored_rows_, scored_targets_;
    ActivationBuffer<Backend, T> hidden_;
};

}  // namespace polyalpaca
