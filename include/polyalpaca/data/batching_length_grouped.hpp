/// @file data/batching_length_grouped.hpp
/// @brief HF's get_length_grouped_indices (LengthGroupedSampler, group_by_length) with our own permutation.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/data/mixture_draw.hpp"

namespace polyalpaca {

/// HF's default: min(n / (batch_size * 4), 50), at least 1 (transformers trainer_pt_utils.py).
inline std::size_t default_mega_batch_mult(std::size_t n, std::size_t batch_size) {
    std::size_t const mult = std::min<std::size_t>(n / (batch_size * 4), 50);
    return mult == 0 ? 1 : mult;
}

/// get_length_grouped_indices after its random permutation, step for step: cut `permutation` into megabatches of
/// mega_batch_mult * batch_size, stable-sort each by length descending (Python's sorted(reverse=True) keeps equal
/// lengths in order), then swap the first element of megabatch 0 with the first element of the megabatch holding the
/// longest first element (the first such megabatch, as torch.argmax), so the longest example comes first.
inline std::vector<std::size_t> length_grouped_from_permutation(std::vector<std::int64_t> const& lengths,
                                                                std::vector<std::size_t> permutation,
                                                                std::size_t batch_size,
                                                                std::optional<std::size_t> mega_batch_mult = {}) {
    require(batch_size > 0, "group_by_length: the batch size must be positive");
    require(permutation.size() == lengths.size(), "group_by_length: a permutation of ", permutation.size(),
            " indices for ", lengths.size(), " lengths");
    for (std::size_t i : permutation)
        require(i < lengths.size(), "group_by_length: index ", i, " is outside the ", lengths.size(), " lengths");
    if (lengths.empty()) return permutation;
    std::size_t const mult = mega_batch_mult.value_or(default_mega_batch_mult(lengths.size(), batch_size));
    require(mult > 0, "group_by_length: mega_batch_mult must be positive");
    std::size_t const mega = mult * batch_size;
    std::vector<std::size_t> firsts;  // start of each megabatch in `permutation`
    for (std::size_t begin = 0; begin < permutation.size(); begin += mega) {
        auto const first = permutation.begin() + std::ptrdiff_t(begin);
        auto const last = permutation.begin() + std::ptrdiff_t(std::min(permutation.size(), begin + mega));
        std::stable_sort(first, last, [&](std::size_t a, std::size_t b) { return lengths[a] > lengths[b]; });
        firsts.push_back(begin);
    }
    std::size_t max_mega = 0;
    for (std::size_t k = 1; k < firsts.size(); ++k)
        if (lengths[permutation[firsts[k]]] > lengths[permutation[firsts[max_mega]]]) max_mega = k;
    std::swap(permutation[0], permutation[firsts[max_mega]]);
    return permutation;
}

/// group_by_length's order of n = lengths.size() examples. The permutation it starts from is ours (random_permutation
/// with `rng`), not torch.randperm's, so the grouping rules match HF exactly but the particular order does not.
inline std::vector<std::size_t> length_grouped_indices(std::vector<std::int64_t> const& lengths, std::size_t batch_size,
                                                       Rng& rng, std::optional<std::size_t> mega_batch_mult = {}) {
    return length_grouped_from_permutation(lengths, random_permutation(lengths.size(), rng), batch_size,
                                           mega_batch_mult);
}

}  // namespace polyalpaca
