/// @file layers/kv_cache.hpp
/// @brief KvCache: the keys and values of every attention layer for a set of sequence slots (incremental decoding).
#pragma once

#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "polyalpaca/backend/op_types.hpp"
#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca {

/// One sequence of an incremental forward: `tokens` new positions appended to cache slot `slot`.
struct CacheStep {
    int slot;
    int tokens;
};

/// One layer's view of a cache: keys and values (cache rows, kv_heads * head_dim).
template <class T>
struct LayerCache {
    View<T> keys;
    View<T> values;
};

/// Per-slot caches: slot s owns cache rows [row(s), row(s) + capacity(s)) in every layer and holds
/// length(s) positions (0..length(s) - 1). Each sequence (or beam) has its own slot and its own positions
/// from 0, so no padding enters any sequence: a batch of prompts of different lengths decodes exactly as
/// each prompt alone. Storage is one buffer per layer for keys and one for values.
template <class Backend, class T>
class KvCache {
public:
    /// capacities[s]: the most positions slot s will hold (its prompt plus the tokens to generate).
    KvCache(int layers, Index kv_width, std::span<int const> capacities)
        : kv_width_(kv_width), lengths_(capacities.size(), 0), capacities_(capacities.begin(), capacities.end()) {
        require(layers > 0 && kv_width > 0, "KvCache: layers (", layers, ") and kv width (", kv_width,
                ") must be positive");
        require(!capacities.empty(), "KvCache: no slots");
        rows_.reserve(capacities.size());
        Index total = 0;
        for (std::size_t s = 0; s < capacities.size(); ++s) {
            require(capacities[s] > 0, "KvCache: slot ", s, " has capacity ", capacities[s], "; it must be positive");
            rows_.push_back(total);
            total += capacities[s];
        }
        total_rows_ = total;
        for (int l = 0; l < layers; ++l) {
            keys_.emplace_back(std::size_t(total * kv_width));
            values_.emplace_back(std::size_t(total * kv_width));
        }
    }

    int layers() const { return int(keys_.size()); }
    int slots() const { return int(lengths_.size()); }
    int length(int slot) const { return lengths_[index(slot)]; }
    int capacity(int slot) const { return capacities_[index(slot)]; }
    Index row(int slot) const { return rows_[index(slot)]; }
    Index kv_width() const { return kv_width_; }
    /// Memory of the keys and values of every layer and slot.
    std::size_t bytes() const { return std::size_t(layers()) * 2 * std::size_t(total_rows_ * kv_width_) * sizeof(T); }

    LayerCache<T> layer(int l) {
        require(l >= 0 && l < layers(), "KvCache: layer ", l, " out of range [0, ", layers(), ")");
        return {View<T>(keys_[std::size_t(l)].data(), total_rows_, kv_width_),
                View<T>(values_[std::size_t(l)].data(), total_rows_, kv_width_)};
    }

    /// The cached-attention descriptor of `rows` new positions for `slot`; checks they fit its capacity.
    CachedSequence step(int slot, int rows) const {
        require(rows > 0, "KvCache: slot ", slot, " gets ", rows, " new positions; at least one is needed");
        require(length(slot) + rows <= capacity(slot), "KvCache: slot ", slot, " holds ", length(slot),
                " positions and gets ", rows, " more, beyond its capacity of ", capacity(slot));
        return {row(slot), length(slot), rows};
    }
    /// Marks the positions of a finished step as cached.
    void advance(int slot, int rows) {
        require(length(slot) + rows <= capacity(slot), "KvCache: slot ", slot, " would exceed its capacity");
        lengths_[index(slot)] += rows;
    }
    /// Empties slot (its rows are overwritten by later steps).
    void reset(int slot) { lengths_[index(slot)] = 0; }

    /// Beam reordering: slot dst[i] takes the content and length of slot src[i] (all read before any write).
    /// `gather` is the backend's kv_cache_gather op.
    template <class Context>
    void reorder(Context& ctx, std::span<int const> src, std::span<int const> dst) {
        require(src.size() == dst.size(), "KvCache::reorder: ", src.size(), " sources for ", dst.size(),
                " destinations");
        std::vector<Index> src_rows, dst_rows;
        std::vector<int> lengths;
        for (std::size_t i = 0; i < src.size(); ++i) {
            require(length(src[i]) <= capacity(dst[i]), "KvCache::reorder: slot ", src[i], " holds ", length(src[i]),
                    " positions, more than the capacity ", capacity(dst[i]), " of slot ", dst[i]);
            if (src[i] == dst[i]) continue;
            src_rows.push_back(row(src[i]));
            dst_rows.push_back(row(dst[i]));
            lengths.push_back(length(src[i]));
        }
        for (int l = 0; l < layers(); ++l) {
            auto cache = layer(l);
            kv_cache_gather(ctx, cache.keys, std::span<Index const>(src_rows), std::span<Index const>(dst_rows),
                            std::span<int const>(lengths));
            kv_cache_gather(ctx, cache.values, std::span<Index const>(src_rows), std::span<Index const>(dst_rows),
                            std::span<int const>(lengths));
        }
        std::vector<int> new_lengths = lengths_;
        for (std::size_t i = 0; i < src.size(); ++i) new_lengths[index(dst[i])] = length(src[i]);
        lengths_ = std::move(new_lengths);
    }

private:
    std::size_t index(int slot) const {
        require(slot >= 0 && slot < slots(), "KvCache: slot ", slot, " out of range [0, ", slots(), ")");
        return std::size_t(slot);
    }

    Index kv_width_;
    Index total_rows_ = 0;
    std::vector<int> lengths_, capacities_;
    std::vector<Index> rows_;
    std::vector<typename Backend::template Buffer<T>> keys_, values_;
};

}  // namespace polyalpaca
