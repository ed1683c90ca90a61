/// @file backend/cuda/op_memory.hpp
/// @brief The device memory the CUDA backend holds besides the layers' buffers, as plain C++: the scratch slot
///        each op takes and how many bytes it asks for, the cuBLASLt workspace, the bf16 working copies, the LM
///        head's chunk and the frozen weights kept in bf16 only. The CUDA ops call these functions for their requests, and the memory plan's dry run
///        (backend/sizing.hpp) calls the same ones, so the two cannot drift apart.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/parameter.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

/// Scratch slots of a Context (Context::scratch): each grows to the largest request it has seen and stays.
inline constexpr int scratch_slots = 10;

/// Which slot each op's scratch lives in. Ops on one stream run in order, so ops sharing a slot never overlap.
namespace scratch_slot {
inline constexpr int norm_grads = 0;    ///< a norm backward's column partial sums (norm.cuh)
inline constexpr int squared_norm = 0;  ///< squared_norm's per-block partials (optim_ops.cuh)
inline constexpr int token_ids = 1;     ///< embedding ids, or the backward's grouped positions (embedding.cuh)
inline constexpr int row_indices = 2;   ///< gather_rows / scatter_add_rows indices (rows.cuh)
inline constexpr int rope_tables = 3;   ///< RoPE cos/sin tables (rope.cuh)
inline constexpr int attention = 4;     ///< packed heads and dS, flash slopes and delta, kv_cache_gather's staging
inline constexpr int loss = 5;          ///< cross-entropy targets and row losses (loss.cuh)
inline constexpr int gelu = 6;          ///< the fused GELU ops' temporaries (linear_gelu.cuh)
inline constexpr int bias_grad = 7;     ///< linear_backward's BGRADB output (gemm.cuh)
inline constexpr int bf16_first = 8;    ///< a GEMM's first operand converted to bf16 (bf16.cuh)
inline constexpr int bf16_second = 9;   ///< a GEMM's second operand converted to bf16
}  // namespace scratch_slot

/// 32 MiB: what cuBLASLt needs for its best Hopper kernels (llm.c uses the same); Context::default_workspace_bytes.
inline constexpr std::size_t default_workspace_bytes = std::size_t(32) << 20;

/// The LM head scores at most this many logits at once (512 MiB of fp32, and half as much again for their bf16
/// gradient, lm_head.cuh): 534 rows of BLOOM's 250,880-entry vocabulary, enough rows for full-rate GEMMs.
/// Cuda::lm_head_chunk_logits.
inline constexpr std::int64_t lm_head_chunk_logits = std::int64_t(1) << 27;

/// Bytes of n values converted to bf16 into a scratch slot (an activation operand of a Bf16 GEMM).
inline std::size_t bf16_bytes(Index values) { return std::size_t(values) * 2; }
/// Bytes of the bf16 working copy of a weight of `count` values (Context::bf16_copy).
inline std::size_t bf16_weight_copy_bytes(std::size_t count) { return std::max<std::size_t>(count, 1) * 2; }

/// Bytes Context::upload_scratch takes for a host span of `bytes` (at least 1).
inline std::size_t upload_bytes(std::size_t bytes) { return std::max<std::size_t>(bytes, 1); }

/// What embedding_backward uploads: [distinct ids (u) | offsets (u + 1) | positions (n), grouped by id, ascending
/// within a group]; the positions are grouped on the host by a stable sort.
inline std::vector<std::int32_t> embedding_backward_groups(std::span<std::int32_t const> ids) {
    std::vector<std::int32_t> order(ids.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = std::int32_t(i);
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) { return ids[a] < ids[b]; });
    std::vector<std::int32_t> distinct, offsets;
    for (std::size_t k = 0; k < order.size(); ++k) {
        if (k == 0 || ids[order[k]] != ids[order[k - 1]]) {
            distinct.push_back(ids[order[k]]);
            offsets.push_back(std::int32_t(k));
        }
    }
    offsets.push_back(std::int32_t(order.size()));
    std::vector<std::int32_t> groups;
    groups.reserve(distinct.size() + offsets.size() + order.size());
    groups.insert(groups.end(), distinct.begin(), distinct.end());
    groups.insert(groups.end(), offsets.begin(), offsets.end());
    groups.insert(groups.end(), order.begin(), order.end());
    return groups;
}

/// A norm backward's dgamma/dbeta column sums split the rows into at most this many chunks.
inline constexpr Index norm_max_chunks = 256;
inline Index norm_grad_chunks(Index rows) { return std::min(rows, norm_max_chunks); }
/// Two double partial sums per (chunk, column).
inline std::size_t norm_grads_bytes(Index rows, Index dim) {
    return std::size_t(2 * norm_grad_chunks(rows) * dim) * sizeof(double);
}

/// squared_norm's first pass: one partial per block of this many values, at most squared_norm_max_blocks blocks.
inline constexpr Index squared_norm_block_values = 256;
inline constexpr Index squared_norm_max_blocks = 1024;
inline Index squared_norm_blocks(Index n) {
    return std::clamp<Index>((n + squared_norm_block_values - 1) / squared_norm_block_values, 1,
                             squared_norm_max_blocks);
}
/// The partials and the total, in double.
inline std::size_t squared_norm_bytes(Index n) { return std::size_t(squared_norm_blocks(n) + 1) * sizeof(double); }

/// RoPE's cos and sin tables, (seq, rotary_dim / 2) floats each.
inline std::size_t rope_table_bytes(int seq, int rotary_dim) {
    return std::size_t(2 * Index(seq) * (rotary_dim / 2)) * sizeof(float);
}

/// Cross-entropy: the targets (int32, padded to 256 bytes), then one double loss per row.
inline std::size_t loss_targets_bytes(Index rows) {
    return (std::size_t(rows) * sizeof(std::int32_t) + 255) / 256 * 256;
}
inline std::size_t loss_bytes(Index rows) { return loss_targets_bytes(rows) + std::size_t(rows) * 8; }

/// The GEMM attention path carves its slot into float arrays, each starting on a 256-byte boundary.
inline std::size_t attention_floats_bytes(std::size_t floats) { return (floats * sizeof(float) + 255) / 256 * 256; }
/// Heads packed as (batch*heads, seq, head_dim) floats (GQA expanded).
inline std::size_t attention_packed_floats(AttentionShape const& s) {
    return std::size_t(s.batch) * s.heads * s.seq * s.head_dim;
}
/// GEMM path forward: q, k, v and the context packed, and the ALiBi slopes.
inline std::size_t attention_gemm_forward_bytes(AttentionShape const& s) {
    return 4 * attention_floats_bytes(attention_packed_floats(s)) + attention_floats_bytes(std::size_t(s.heads));
}
/// GEMM path backward: dO, k, v, q and one gradient packed, and dS (batch*heads*seq, seq).
inline std::size_t attention_gemm_backward_bytes(AttentionShape const& s) {
    std::size_t const square = std::size_t(s.batch) * s.heads * s.seq * std::size_t(s.seq);
    return 5 * attention_floats_bytes(attention_packed_floats(s)) + attention_floats_bytes(square);
}
/// The flash forward's ALiBi slopes and the flash backward's delta = rowsum(dO O), one float per state row.
inline std::size_t flash_slopes_bytes(int heads) { return std::size_t(heads) * sizeof(float); }
inline std::size_t flash_delta_bytes(Index state_rows) { return std::size_t(state_rows) * sizeof(float); }

/// kv_cache_gather stages the moved rows (rows, cols) of floats before writing any of them back.
inline std::size_t kv_gather_bytes(Index rows, Index cols) {
    return std::size_t(rows) * std::size_t(cols) * sizeof(float);
}

/// linear_backward's bias gradient from the BGRADB epilogue, one float per output feature.
inline std::size_t bias_grad_bytes(Index out_features) { return std::size_t(out_features) * sizeof(float); }
/// linear_gelu_backward's dpre, (rows, out) floats.
inline std::size_t gelu_grad_bytes(Index values) { return std::size_t(values) * sizeof(float); }

/// FrozenInBf16 (frozen_bf16.cuh): the weights it keeps in bf16 only, the frozen matrices but `keep_fp32` (the one
/// another op reads in fp32), each starting on a 256-byte boundary of its bf16 buffer.
inline bool kept_in_bf16_only(Parameter<float> const& p, std::string_view keep_fp32) {
    return !p.trainable() && p.rows > 1 && p.cols > 1 && p.name != keep_fp32;
}
inline std::size_t frozen_bf16_padded(std::size_t values) { return (values + 127) / 128 * 128; }

/// The bf16 values (each weight padded) that FrozenInBf16 keeps for `store` (a ParameterStore).
template <class Store>
std::size_t frozen_bf16_values(Store const& store, std::string_view keep_fp32) {
    std::size_t total = 0;
    for (auto const* p : store.parameters())
        if (kept_in_bf16_only(*p, keep_fp32)) total += frozen_bf16_padded(std::size_t(p->size()));
    return total;
}

/// FrozenInBf16's move, shared with its dry-run twin (backend/sizing/frozen_bf16.hpp): the store's frozen arena is
/// repacked without the weights kept in bf16 only, and place(p, at) is called for each while its fp32 values are
/// still there, `at` its first value in the bf16 buffer; place points p.value at the weight's key.
template <class Context, class Store, class Place>
void move_frozen_to_bf16(Context& ctx, Store& store, std::string_view keep_fp32, Place&& place) {
    std::size_t at = 0;
    store.repack_frozen(ctx, [&](Parameter<float> const& p) { return !kept_in_bf16_only(p, keep_fp32); },
                        [&](Parameter<float>& p) {
                            place(p, at);
                            at += frozen_bf16_padded(std::size_t(p.size()));
                        });
}

}  // namespace polyalpaca::cuda
