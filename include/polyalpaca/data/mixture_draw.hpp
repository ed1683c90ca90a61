/// @file data/mixture_draw.hpp
/// @brief Seeded draws the mixing strategies share: stream seeds, shuffles, apportionment, draws from a pool.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string_view>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/rng.hpp"

namespace polyalpaca {

/// Streams of randomness a study draws from; each gets its own seed so one never shifts another.
enum class DrawStream : std::uint64_t {
    ValidationSplit = 1,  ///< which records are held out
    Selection = 2,        ///< which records a strategy keeps (downsampling, temperature, weights)
    EpochOrder = 3,       ///< the shuffled order of an epoch
    LengthGroups = 4,     ///< the permutation group_by_length starts from
};

namespace detail {
inline std::uint64_t mix64(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
}  // namespace detail

/// FNV-1a of a string: a stable 64-bit name for a language code or record id (same on every platform).
inline std::uint64_t stable_hash(std::string_view text) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : text) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h;
}

/// The seed of one stream: a function of (seed, stream, a, b) only, so epoch e's draws never depend on how far
/// earlier epochs were consumed. `a` and `b` are e.g. the epoch and a language hash.
inline std::uint64_t derive_seed(std::uint64_t seed, DrawStream stream, std::uint64_t a = 0, std::uint64_t b = 0) {
    std::uint64_t h = detail::mix64(seed + 0x9e3779b97f4a7c15ull);
    h = detail::mix64(h ^ (std::uint64_t(stream) * 0xd6e8feb86659fd93ull));
    h = detail::mix64(h ^ (a + 0x632be59bd9b4e019ull));
    return detail::mix64(h ^ (b + 0x8cb92ba72f3d8dd7ull));
}

/// Fisher-Yates with our Rng: for i = n-1 .. 1 swap v[i] with v[below(i + 1)]. Not torch.randperm's order.
template <class T>
void shuffle_in_place(std::vector<T>& v, Rng& rng) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[std::size_t(rng.below(i))]);
}

/// A uniformly random permutation of 0..n-1.
inline std::vector<std::size_t> random_permutation(std::size_t n, Rng& rng) {
    std::vector<std::size_t> p(n);
    std::iota(p.begin(), p.end(), std::size_t(0));
    shuffle_in_place(p, rng);
    return p;
}

/// Splits `total` into integer counts proportional to `shares` (largest remainder / Hamilton): each count is
/// floor(share * total / sum) and the leftover units go to the largest fractional parts, ties to the lower index.
/// The counts sum to `total` exactly and each is within one of its exact share.
inline std::vector<std::size_t> apportion(std::vector<double> const& shares, std::size_t total) {
    require(!shares.empty(), "apportion: no shares given");
    double sum = 0.0;
    for (std::size_t i = 0; i < shares.size(); ++i) {
        require(std::isfinite(shares[i]) && shares[i] >= 0.0, "apportion: share ", i, " is ", shares[i],
                "; shares must be finite and non-negative");
        sum += shares[i];
    }
    require(sum > 0.0, "apportion: every share is zero");
    std::vector<std::size_t> counts(shares.size());
    std::vector<double> remainder(shares.size());
    std::size_t given = 0;
    for (std::size_t i = 0; i < shares.size(); ++i) {
        double const exact = shares[i] / sum * double(total);
        counts[i] = std::min(total, std::size_t(std::floor(exact)));
        remainder[i] = exact - double(counts[i]);
        given += counts[i];
    }
    require(given <= total, "apportion: rounding gave ", given, " units for a total of ", total);
    std::vector<std::size_t> by_remainder(shares.size());
    std::iota(by_remainder.begin(), by_remainder.end(), std::size_t(0));
    std::stable_sort(by_remainder.begin(), by_remainder.end(),
                     [&](std::size_t a, std::size_t b) { return remainder[a] > remainder[b]; });
    for (std::size_t k = 0; given < total; k = (k + 1) % shares.size()) {
        if (shares[by_remainder[k]] == 0.0) continue;
        ++counts[by_remainder[k]];
        ++given;
    }
    return counts;
}

/// `count` positions drawn from a pool of `size` records.
/// Without replacement: whole shuffled passes over the pool, then the first `count % size` of one more shuffled
/// pass, so every record is used floor(count / size) or one more times (a plain random subset when count <= size).
/// With replacement: `count` independent uniform draws.
inline std::vector<std::size_t> draw_from_pool(std::size_t size, std::size_t count, bool with_replacement, Rng& rng) {
    require(size > 0 || count == 0, "cannot draw ", count, " records from an empty pool");
    std::vector<std::size_t> out;
    out.reserve(count);
    if (with_replacement) {
        for (std::size_t i = 0; i < count; ++i) out.push_back(std::size_t(rng.below(size)));
        return out;
    }
    while (out.size() < count) {
        std::vector<std::size_t> pass = random_permutation(size, rng);
        std::size_t const take = std::min(size, count - out.size());
        out.insert(out.end(), pass.begin(), pass.begin() + std::ptrdiff_t(take));
    }
    return out;
}

}  // namespace polyalpaca
