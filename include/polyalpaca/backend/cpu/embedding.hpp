/// @file backend/cpu/embedding.hpp
/// @brief Token embedding lookup (a row gather) and its backward (a row scatter-add).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

namespace detail {

/// Throws unless every id lies in [0, vocab); the message names the first bad id and its position.
inline void check_token_ids(std::span<std::int32_t const> ids, Index vocab, char const* op) {
    for (std::size_t i = 0; i < ids.size(); ++i)
        require(ids[i] >= 0 && ids[i] < vocab, op, ": token id ", ids[i], " at position ", i,
                " is outside the vocabulary [0, ", vocab, ")");
}

}  // namespace detail

/// out[i] = table[ids[i]]. T is deduced from `out`; the table converts from a mutable view.
template <class T>
void embedding_forward(Context& ctx, std::span<std::int32_t const> ids, std::type_identity_t<View<T const>> table,
                       View<T> out) {
    require(!ids.empty(), "embedding_forward: ids is empty");
    require(!table.empty(), "embedding_forward: table is empty");
    Index const n = Index(ids.size());
    Index const dim = table.cols;
    require_shape(out, n, dim, "embedding_forward: out");
    require(out.data != nullptr, "embedding_forward: out has no data");
    detail::check_token_ids(ids, table.rows, "embedding_forward");

    constexpr Index parallel_min = Index(1) << 16;
#pragma omp parallel for if (n * dim >= parallel_min) num_threads(std::max(1, ctx.threads))
    for (Index i = 0; i < n; ++i) std::copy_n(table.row(ids[std::size_t(i)]), dim, out.row(i));
}

/// dtable[ids[i]] += dout[i] (repeated ids add up). Skipped when dtable.data is nullptr (frozen table).
template <class T>
void embedding_backward(Context&, std::span<std::int32_t const> ids, std::type_identity_t<View<T const>> dout,
                        View<T> dtable) {
    require(!ids.empty(), "embedding_backward: ids is empty");
    require(!dout.empty(), "embedding_backward: dout is empty");
    require_shape(dout, Index(ids.size()), dout.cols, "embedding_backward: dout");
    if (dtable.data == nullptr) return;
    require_shape(dtable, dtable.rows, dout.cols, "embedding_backward: dtable");
    detail::check_token_ids(ids, dtable.rows, "embedding_backward");

    // Serial: repeated ids would race on the same dtable row.
    Index const dim = dout.cols;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        T const* src = dout.row(Index(i));
        T* dst = dtable.row(ids[i]);
        for (Index j = 0; j < dim; ++j) dst[j] += src[j];
    }
}

}  // namespace polyalpaca::cpu
