/// @file backend/cuda/rows.cuh
/// @brief Gathering chosen rows of a device matrix into a compact one, and adding them back; same names,
/// arguments and checks as backend/cpu/rows.hpp. Row indices arrive as a host span and go to scratch memory.
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

/// Scratch slot holding uploaded row indices.
inline constexpr int rows_scratch_slot = scratch_slot::row_indices;

/// dst (n, cols) row i = src row rows[i] (Add false), or dst row rows[i] += src row i (Add true).
template <class T, bool Add>
__global__ void rows_kernel(T const* src, std::int32_t const* rows, T* dst, Index n, Index cols) {
    for (Index e = Index(blockIdx.x) * blockDim.x + threadIdx.x; e < n * cols; e += Index(gridDim.x) * blockDim.x) {
        Index const i = e / cols;
        Index const c = e - i * cols;
        if constexpr (Add)
            dst[Index(rows[i]) * cols + c] += src[e];
        else
            dst[e] = src[Index(rows[i]) * cols + c];
    }
}

}  // namespace detail

/// dst row i = src row rows[i].
inline void gather_rows(Context& ctx, View<float const> src, std::span<std::int32_t const> rows, View<float> dst) {
    require_shape(dst, Index(rows.size()), src.cols, "gather_rows: dst");
    for (auto const r : rows) require(r >= 0 && r < src.rows, "gather_rows: row ", r, " outside [0, ", src.rows, ")");
    if (dst.empty()) return;
    ctx.make_current();
    auto const* device_rows = ctx.upload_scratch(detail::rows_scratch_slot, rows);
    detail::rows_kernel<float, false><<<detail::grid_for(dst.size()), detail::block_threads, 0, ctx.stream()>>>(
        src.data, device_rows, dst.data, dst.rows, dst.cols);
    detail::check_launch("gather_rows");
}

/// dst row rows[i] += src row i. Rows must be distinct (checked: on the GPU repeated rows would race).
inline void scatter_add_rows(Context& ctx, View<float const> src, std::span<std::int32_t const> rows, View<float> dst) {
    require_shape(src, Index(rows.size()), dst.cols, "scatter_add_rows: src");
    std::vector<bool> seen(std::size_t(std::max<Index>(dst.rows, 0)), false);
    for (auto const r : rows) {
        require(r >= 0 && r < dst.rows, "scatter_add_rows: row ", r, " outside [0, ", dst.rows, ")");
        require(!seen[std::size_t(r)], "scatter_add_rows: row ", r, " appears more than once");
        seen[std::size_t(r)] = true;
    }
    if (src.empty()) return;
    ctx.make_current();
    auto const* device_rows = ctx.upload_scratch(detail::rows_scratch_slot, rows);
    detail::rows_kernel<float, true><<<detail::grid_for(src.size()), detail::block_threads, 0, ctx.stream()>>>(
        src.data, device_rows, dst.data, src.rows, src.cols);
    detail::check_launch("scatter_add_rows");
}

}  // namespace polyalpaca::cuda
