/// @file backend/cpu/rows.hpp
/// @brief Gathering chosen rows of a matrix into a compact one, and adding them back.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

/// dst row i = src row rows[i].
template <class T>
void gather_rows(Context&, View<T const> src, std::span<std::int32_t const> rows, View<T> dst) {
    require_shape(dst, Index(rows.size()), src.cols, "gather_rows: dst");
    for (auto const r : rows) require(r >= 0 && r < src.rows, "gather_rows: row ", r, " outside [0, ", src.rows, ")");
#pragma omp parallel for if (Index(rows.size()) * src.cols >= (Index(1) << 16))
    for (Index i = 0; i < Index(rows.size()); ++i) {
        std::copy(src.row(rows[i]), src.row(rows[i]) + src.cols, dst.row(i));
    }
}

/// dst row rows[i] += src row i. Rows must be distinct.
template <class T>
void scatter_add_rows(Context&, View<T const> src, std::span<std::int32_t const> rows, View<T> dst) {
    require_shape(src, Index(rows.size()), dst.cols, "scatter_add_rows: src");
    for (Index i = 0; i < Index(rows.size()); ++i) {
        require(rows[i] >= 0 && rows[i] < dst.rows, "scatter_add_rows: row ", rows[i], " outside [0, ", dst.rows, ")");
        T const* s = src.row(i);
        T* d = dst.row(rows[i]);
        for (Index c = 0; c < dst.cols; ++c) d[c] += s[c];
    }
}

}  // namespace polyalpaca::cpu
