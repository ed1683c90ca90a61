/// @file backend/cuda/embedding.cuh
/// @brief Token embedding lookup (a row gather) and its deterministic backward on the GPU; same names, arguments
/// and checks as backend/cpu/embedding.hpp. Token ids arrive as a host span and are copied to scratch memory.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "polyalpaca/backend/cuda/context.cuh"
#include "polyalpaca/backend/cuda/launch.cuh"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cuda {

namespace detail {

/// Scratch slot holding uploaded token ids (forward) or the grouped positions (backward).
inline constexpr int embedding_scratch_slot = scratch_slot::token_ids;

/// Throws unless every id lies in [0, vocab); the message names the first bad id and its position.
inline void check_token_ids(std::span<std::int32_t const> ids, Index vocab, char const* op) {
    for (std::size_t i = 0; i < ids.size(); ++i)
        require(ids[i] >= 0 && ids[i] < vocab, op, ": token id ", ids[i], " at position ", i,
                " is outside the vocabulary [0, ", vocab, ")");
}

/// out (n, dim) row i = table row ids[i]; one thread per element.
template <class T>
__global__ void embedding_forward_kernel(std::int32_t const* ids, T const* table, T* out, Index n, Index dim) {
    for (Index e = Index(blockIdx.x) * blockDim.x + threadIdx.x; e < n * dim; e += Index(gridDim.x) * blockDim.x) {
        Index const i = e / dim;
        out[e] = table[Index(ids[i]) * dim + (e - i * dim)];
    }
}

/// groups = [distinct ids (u) | offsets (u + 1) | positions (n), grouped by id, ascending within a group].
/// Block b owns distinct id b: each thread adds its columns' rows in position order, as the CPU's serial loop,
/// so the result is bitwise the CPU's and the same in every run.
template <class T>
__global__ void embedding_backward_kernel(std::int32_t const* groups, Index distinct, T const* dout, T* dtable,
                                          Index dim) {
    std::int32_t const* offsets = groups + distinct;
    std::int32_t const* positions = offsets + distinct + 1;
    for (Index g = blockIdx.x; g < distinct; g += gridDim.x) {
        T* dst = dtable + Index(groups[g]) * dim;
        for (Index j = threadIdx.x; j < dim; j += blockDim.x) {
            T sum = dst[j];
            for (std::int32_t k = offsets[g]; k < offsets[g + 1]; ++k) sum += dout[Index(positions[k]) * dim + j];
            dst[j] = sum;
        }
    }
}

}  // namespace detail

/// out[i] = table[ids[i]]; ids (N) on the host, table (Vocab, D) and out (N, D) on the device.
inline void embedding_forward(Context& ctx, std::span<std::int32_t const> ids, View<float const> table,
                              View<float> out) {
    require(!ids.empty(), "embedding_forward: ids is empty");
    require(!table.empty(), "embedding_forward: table is empty");
    Index const n = Index(ids.size());
    Index const dim = table.cols;
    require_shape(out, n, dim, "embedding_forward: out");
    require(out.data != nullptr, "embedding_forward: out has no data");
    detail::check_token_ids(ids, table.rows, "embedding_forward");
    ctx.make_current();
    auto const* device_ids = ctx.upload_scratch(detail::embedding_scratch_slot, ids);
    detail::embedding_forward_kernel<float><<<detail::grid_for(n * dim), detail::block_threads, 0, ctx.stream()>>>(
        device_ids, table.data, out.data, n, dim);
    detail::check_launch("embedding_forward_kernel");
}

/// dtable[ids[i]] += dout[i] (repeated ids add up, in position order). Skipped when dtable.data is nullptr.
inline void embedding_backward(Context& ctx, std::span<std::int32_t const> ids, View<float const> dout,
                               View<float> dtable) {
    require(!ids.empty(), "embedding_backward: ids is empty");
    require(!dout.empty(), "embedding_backward: dout is empty");
    require_shape(dout, Index(ids.size()), dout.cols, "embedding_backward: dout");
    if (dtable.data == nullptr) return;
    require_shape(dtable, dtable.rows, dout.cols, "embedding_backward: dtable");
    detail::check_token_ids(ids, dtable.rows, "embedding_backward");

    // Positions grouped by id on the host (a stable sort keeps each group's positions ascending): u distinct ids,
    // u + 1 offsets, then the positions (op_memory.hpp, which the memory plan sizes the upload by).
    std::vector<std::int32_t> const groups = embedding_backward_groups(ids);
    Index const u = (Index(groups.size()) - Index(ids.size()) - 1) / 2;

    ctx.make_current();
    auto const* device_groups =
        ctx.upload_scratch(detail::embedding_scratch_slot, std::span<std::int32_t const>(groups));
    detail::embedding_backward_kernel<float>
        <<<unsigned(std::min(u, detail::max_blocks)), detail::block_threads, 0, ctx.stream()>>>(
            device_groups, u, dout.data, dtable.data, dout.cols);
    detail::check_launch("embedding_backward_kernel");
}

}  // namespace polyalpaca::cuda
