/// @file core/batch.hpp
/// @brief A micro-batch of token ids and labels, shape (batch, seq), as the models consume it.
#pragma once

#include <cstdint>
#include <optional>

#include <xtensor/xtensor.hpp>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca {

/// Labels equal to this are not scored (HF's -100).
inline constexpr std::int32_t ignore_index = -100;

/// Row b is one sequence; labels[b][t] is the token position t should be scored against, as in HF:
/// the model shifts, so position t predicts labels[b][t + 1]. Padding goes on the right with label -100.
struct TokenBatch {
    xt::xtensor<std::int32_t, 2> ids;     // (B, T)
    xt::xtensor<std::int32_t, 2> labels;  // (B, T)
    /// When set, the network's adapter dropout on this micro-batch draws from a generator keyed by it and the
    /// network's seed (CausalLm::key_dropout), so its masks depend on which records it holds, not on the rank that
    /// trains it or on what was trained before. Trainer sets it (epoch and first record); unset, the network's
    /// running generator draws.
    std::optional<std::uint64_t> dropout_key;

    int batch() const { return int(ids.shape()[0]); }
    int seq() const { return int(ids.shape()[1]); }
    std::int64_t tokens() const { return std::int64_t(ids.size()); }
};

/// Labels equal to the ids: loss on every next token (causal LM pretraining, train_on_inputs).
inline TokenBatch make_lm_batch(xt::xtensor<std::int32_t, 2> ids) {
    TokenBatch b{ids, ids};
    return b;
}

/// Throws unless the batch is non-empty, ids and labels agree in shape, and seq fits `max_positions`.
inline void validate_batch(TokenBatch const& b, int max_positions) {
    require(b.ids.dimension() == 2 && b.ids.size() > 0, "empty batch: a batch needs at least one sequence of at least one token");
    require(b.labels.shape() == b.ids.shape(), "labels have shape (", b.labels.shape()[0], ", ", b.labels.shape()[1],
            ") but ids have shape (", b.ids.shape()[0], ", ", b.ids.shape()[1], ")");
    require(b.seq() <= max_positions, "sequence length ", b.seq(), " exceeds the model's maximum of ", max_positions,
            " positions");
}

}  // namespace polyalpaca
