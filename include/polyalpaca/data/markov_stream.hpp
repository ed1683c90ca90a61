/// @file data/markov_stream.hpp
/// @brief A deterministic synthetic token stream with learnable structure, for smoke training and benchmarks.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "polyalpaca/core/batch.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/rng.hpp"

namespace polyalpaca {

/// Each token has `branching` possible successors, fixed by the seed and equally likely. A model that
/// learns the table reaches the entropy floor log(branching) nats per token; a model that knows nothing
/// scores log(vocab). The gap is what a training run must close.
class MarkovStream {
public:
    MarkovStream(int vocab, int branching, std::uint64_t seed) : vocab_(vocab), branching_(branching), rng_(seed) {
        require(vocab >= 2, "a Markov stream needs a vocabulary of at least 2 tokens, got ", vocab);
        require(branching >= 1 && branching <= vocab, "branching must be in [1, vocab], got ", branching);
        successors_.resize(std::size_t(vocab) * branching);
        for (auto& s : successors_) s = std::int32_t(rng_.below(std::uint64_t(vocab)));
        current_ = std::int32_t(rng_.below(std::uint64_t(vocab)));
    }

    /// The next (batch, seq) window of the stream; labels equal the ids (every next token is scored).
    TokenBatch next_batch(int batch, int seq) {
        require(batch > 0 && seq > 1, "a training batch needs batch >= 1 and seq >= 2, got (", batch, ", ", seq, ")");
        xt::xtensor<std::int32_t, 2> ids = xt::xtensor<std::int32_t, 2>::from_shape({std::size_t(batch), std::size_t(seq)});
        for (auto& id : ids) {
            id = current_;
            current_ = successors_[std::size_t(current_) * branching_ + rng_.below(std::uint64_t(branching_))];
        }
        return make_lm_batch(std::move(ids));
    }

    /// Loss of a model that has learned the stream exactly (nats per token).
    double entropy_floor() const { return std::log(double(branching_)); }
    /// Loss of uniform predictions (nats per token).
    double uniform_loss() const { return std::log(double(vocab_)); }

private:
    int vocab_, branching_;
    Rng rng_;
    std::vector<std::int32_t> successors_;
    std::int32_t current_ = 0;
};

}  // namespace polyalpaca
