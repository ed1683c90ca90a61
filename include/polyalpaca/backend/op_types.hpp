/// @file backend/op_types.hpp
/// @brief Argument types every backend's ops share (RoPE layout, attention sizes, loss sums).
#pragma once

#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca {

/// Which dims of a head form a rotated pair.
enum class RopeStyle {
    RotateHalf,     // HF transformers `rotate_half` (GPT-NeoX, HF LLaMA): dim i pairs with i + rotary_dim/2
    AdjacentPairs,  // Meta llama, llama2.c: dim 2i pairs with 2i + 1
};

/// Dims [0, rotary_dim) of every head rotate; dims [rotary_dim, head_dim) pass through (GPT-NeoX rotary_pct).
/// Pair i turns by position * base^(-2i / rotary_dim).
struct RopeSpec {
    int heads;
    int head_dim;
    int rotary_dim;
    double base;
    RopeStyle style;
};

/// Sizes of one attention call. Query head h reads kv head h / (heads / kv_heads).
struct AttentionShape {
    int batch;
    int seq;
    int heads;
    int kv_heads;
    int head_dim;
};

/// One sequence of a cached (incremental) attention call. Its keys and values live in cache rows
/// [cache_row, cache_row + past + rows): positions 0..past-1 from earlier calls, past..past+rows-1 new.
struct CachedSequence {
    Index cache_row;  ///< the cache row of position 0
    int past;         ///< positions cached before this call
    int rows;         ///< new positions in this call
};

/// Sum of -log p(target) over counted rows, and how many rows were counted (target != ignore_index).
/// The mean loss is sum / count; backends return it unnormalised so callers can reduce across micro-batches.
struct LossSum {
    double sum = 0;
    Index count = 0;
};

}  // namespace polyalpaca
