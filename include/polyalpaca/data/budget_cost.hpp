/// @file data/budget_cost.hpp
/// @brief FlopCost: the training FLOPs of one sequence as a function of its length.
#pragma once

#include <cstdint>

namespace polyalpaca {

/// Training FLOPs of one sequence of n tokens: n * per_token + n^2 * per_token_pair. per_token covers the weight
/// matmuls and adapters (6 N_mm for full training, 4 N_mm + 6 adapter weights for LoRA); per_token_pair is the
/// attention cost per (query, key) position pair (12 L d, full-square count). train/flops.hpp makes one from a model.
struct FlopCost {
    double per_token = 0.0;
    double per_token_pair = 0.0;

    double sequence(std::int64_t n) const { return double(n) * per_token + double(n) * double(n) * per_token_pair; }
    /// FLOPs per token at a fixed sequence length T (the MFU convention): per_token + T * per_token_pair.
    double per_token_at(std::int64_t seq_len) const { return per_token + double(seq_len) * per_token_pair; }
};

}  // namespace polyalpaca
