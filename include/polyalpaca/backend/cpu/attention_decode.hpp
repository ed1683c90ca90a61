/// @file backend/cpu/attention_decode.hpp
/// @brief Incremental (cached) causal attention: new query rows of several sequences against each sequence's
///        cached keys and values; writing new rows into a cache and reordering cache slots (beam search).
#pragma once

#include <algorithm>
#include <span>
#include <vector>

#include <Eigen/Core>

#include "polyalpaca/backend/cpu/attention.hpp"
#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/backend/kv_cache_checks.hpp"
#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu {

/// Copies the new rows (R, cols) of every sequence (rows of sequence i follow those of sequence i - 1) into
/// cache rows cache_row + past .. cache_row + past + rows - 1.
template <class T>
void kv_cache_write(Context&, View<T const> rows, View<T> cache, std::span<CachedSequence const> seqs) {
    Index const total = polyalpaca::detail::cached_rows(seqs, cache.rows, "kv_cache_write");
    require_shape(rows, total, cache.cols, "kv_cache_write: new rows (sum of rows, cache columns)");
    Index r = 0;
    for (auto const& s : seqs) {
        std::copy(rows.row(r), rows.row(r + s.rows), cache.row(s.cache_row + s.past));
        r += s.rows;
    }
}

/// Beam reordering: destination slot i (cache rows dst_rows[i] ..) receives the first lengths[i] rows of source
/// slot i (cache rows src_rows[i] ..), all read before any is written. Slots may be sources of several
/// destinations.
template <class T>
void kv_cache_gather(Context&, View<T> cache, std::span<Index const> src_rows, std::span<Index const> dst_rows,
                     std::span<int const> lengths) {
    Index const total = polyalpaca::detail::gathered_rows(src_rows, dst_rows, lengths, cache.rows);
    std::vector<T> staged(std::size_t(total * cache.cols));  // (total, cols)
    T* out = staged.data();
    for (std::size_t i = 0; i < lengths.size(); ++i)
        out = std::copy(cache.row(src_rows[i]), cache.row(src_rows[i] + lengths[i]), out);
    T const* in = staged.data();
    for (std::size_t i = 0; i < lengths.size(); ++i) {
        std::copy(in, in + Index(lengths[i]) * cache.cols, cache.row(dst_rows[i]));
        in += Index(lengths[i]) * cache.cols;
    }
}

/// Causal attention of new query rows against cached keys and values.
/// q and out (R, heads*hd): the rows of sequence i follow those of sequence i - 1; k_cache and v_cache
/// (cache rows, kv_heads*hd) already hold every position of every sequence, the new ones included.
/// New row r of a sequence sits at position past + r and sees positions 0..past + r:
/// score(j) = scale * q . k_j + slope_h * j, softmax over j, out = sum_j p_j v_j.
/// Query head h reads kv head h / (heads / kv_heads).
template <class T>
void attention_decode([[maybe_unused]] Context& ctx, View<T const> q, View<T const> k_cache, View<T const> v_cache,
                      View<T> out, std::span<CachedSequence const> seqs, int heads, int kv_heads, int head_dim,
                      T const* alibi_slopes, T scale) {
    Index const total =
        polyalpaca::detail::checked_decode_rows(q, k_cache, v_cache, out, seqs, heads, kv_heads, head_dim);
    std::vector<Index> first_row(seqs.size());  // first new row of each sequence in q and out
    Index work = 0;
    for (std::size_t i = 0, r = 0; i < seqs.size(); r += Index(seqs[i].rows), ++i) {
        first_row[i] = Index(r);
        work += Index(seqs[i].rows) * (seqs[i].past + seqs[i].rows) * heads * head_dim;
    }
    int const group = heads / kv_heads;
    int const tasks = int(seqs.size()) * heads;
    [[maybe_unused]] bool const parallel = work >= detail::attention_parallel_work;
#pragma omp parallel num_threads(ctx.threads) if (parallel)
    {
        Matrix<T> scores;  // (rows, keys) scratch
#pragma omp for schedule(dynamic)
        for (int task = 0; task < tasks; ++task) {
            auto const& s = seqs[std::size_t(task / heads)];
            int const h = task % heads;
            Index const keys = s.past + s.rows;
            Index const r0 = first_row[std::size_t(task / heads)];
            detail::ConstHeadMap<T const> const qh(q.row(r0) + Index(h) * head_dim, s.rows, head_dim,
                                                   Eigen::OuterStride<>(q.cols));  // (rows, hd)
            detail::ConstHeadMap<T const> const kh(k_cache.row(s.cache_row) + Index(h / group) * head_dim, keys,
                                                   head_dim, Eigen::OuterStride<>(k_cache.cols));  // (keys, hd)
            detail::ConstHeadMap<T const> const vh(v_cache.row(s.cache_row) + Index(h / group) * head_dim, keys,
                                                   head_dim, Eigen::OuterStride<>(v_cache.cols));  // (keys, hd)
            scores.resize(s.rows, keys);
            detail::gemm_target(scores.data(), s.rows, keys, keys).noalias() = scale * qh * kh.transpose();
            for (Index i = 0; i < s.rows; ++i) {
                Index const visible_keys = s.past + i + 1;
                auto visible = scores.row(i).head(visible_keys).array();
                if (alibi_slopes)
                    visible += alibi_slopes[h] * Vector<T>::LinSpaced(visible_keys, T(0), T(visible_keys - 1))
                                                     .transpose()
                                                     .array();
                visible = (visible - visible.maxCoeff()).exp();
                visible /= visible.sum();
                scores.row(i).tail(keys - visible_keys).setZero();
            }
            detail::gemm_target(out.row(r0) + Index(h) * head_dim, s.rows, head_dim, out.cols).noalias() =
                scores * vh;
        }
    }
}

}  // namespace polyalpaca::cpu
