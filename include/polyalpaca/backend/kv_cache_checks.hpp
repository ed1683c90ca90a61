/// @file backend/kv_cache_checks.hpp
/// @brief Argument checks every backend's incremental-decoding ops share (kv_cache_write, kv_cache_gather,
///        attention_decode), so that the CPU and the GPU refuse the same calls with the same messages.
#pragma once

#include <cstddef>
#include <span>

#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::detail {

/// Rows of new positions over all sequences; checks each sequence's cache rows lie inside the cache.
inline Index cached_rows(std::span<CachedSequence const> seqs, Index cache_rows, char const* what) {
    Index total = 0;
    for (std::size_t i = 0; i < seqs.size(); ++i) {
        auto const& s = seqs[i];
        require(s.rows > 0 && s.past >= 0 && s.cache_row >= 0, what, ": sequence ", i,
                " needs rows > 0, past >= 0 and cache_row >= 0; got rows = ", s.rows, ", past = ", s.past,
                ", cache_row = ", s.cache_row);
        require(s.cache_row + s.past + s.rows <= cache_rows, what, ": sequence ", i, " reaches cache row ",
                s.cache_row + s.past + s.rows, " but the cache has ", cache_rows, " rows");
        total += s.rows;
    }
    return total;
}

/// Rows moved by a kv_cache_gather over all slots; checks the three spans match and every slot fits the cache.
inline Index gathered_rows(std::span<Index const> src_rows, std::span<Index const> dst_rows,
                           std::span<int const> lengths, Index cache_rows) {
    require(src_rows.size() == dst_rows.size() && src_rows.size() == lengths.size(),
            "kv_cache_gather: src_rows, dst_rows and lengths must have one entry per slot, got ", src_rows.size(),
            ", ", dst_rows.size(), ", ", lengths.size());
    Index total = 0;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
        require(lengths[i] >= 0 && src_rows[i] >= 0 && dst_rows[i] >= 0 && src_rows[i] + lengths[i] <= cache_rows &&
                    dst_rows[i] + lengths[i] <= cache_rows,
                "kv_cache_gather: slot ", i, " (rows ", src_rows[i], " -> ", dst_rows[i], ", length ", lengths[i],
                ") does not fit the cache of ", cache_rows, " rows");
        total += lengths[i];
    }
    return total;
}

/// Checks an attention_decode call (head counts, each sequence against the cache, the four views' shapes and
/// data); returns the number of new rows.
template <class T>
Index checked_decode_rows(View<T const> q, View<T const> k_cache, View<T const> v_cache, View<T> out,
                          std::span<CachedSequence const> seqs, int heads, int kv_heads, int head_dim) {
    require(heads > 0 && kv_heads > 0 && head_dim > 0 && heads % kv_heads == 0,
            "attention_decode: heads (", heads, ") must be a positive multiple of kv_heads (", kv_heads,
            ") and head_dim (", head_dim, ") positive");
    Index const total = cached_rows(seqs, k_cache.rows, "attention_decode");
    Index const q_cols = Index(heads) * head_dim;
    Index const kv_cols = Index(kv_heads) * head_dim;
    auto check_view = [](auto const& v, Index rows, Index cols, char const* what) {
        require_shape(v, rows, cols, what);
        require(v.data != nullptr, what, ": data is null");
    };
    check_view(q, total, q_cols, "attention_decode: q (new rows, heads*head_dim)");
    check_view(out, total, q_cols, "attention_decode: out (new rows, heads*head_dim)");
    check_view(k_cache, k_cache.rows, kv_cols, "attention_decode: k_cache (rows, kv_heads*head_dim)");
    check_view(v_cache, k_cache.rows, kv_cols, "attention_decode: v_cache (rows, kv_heads*head_dim)");
    return total;
}

}  // namespace polyalpaca::detail
