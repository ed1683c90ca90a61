/// @file data/mixture_select.hpp
/// @brief The options of the mixing strategies and the record selections behind them (before per-epoch shuffling).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "polyalpaca/data/mixture_draw.hpp"
#include "polyalpaca/data/mixture_pools.hpp"

namespace polyalpaca {

/// Shared: the same record ids in every language (parallel data: the same tasks, each seen in every language).
/// Disjoint: the id space is partitioned, every id used by at most one language (all content covered once).
enum class SampleIds { Shared, Disjoint };

/// M records in total split over N languages: floor(M/N) each, and the first M mod N languages (in the order given)
/// one more. M defaults to the smallest language's size (for parallel data every language has M records).
struct DownsampleOptions {
    SampleIds ids = SampleIds::Shared;
    std::optional<std::size_t> total;
};

/// p_l proportional to n_l^(1/T), T >= 1: T = 1 follows the sizes, T = infinity is uniform. The epoch holds `total`
/// records (default: all records of all languages), split by largest remainder so the counts are exactly the rounded
/// expectations, not multinomial noise. Within a language: without replacement, shuffled passes over the pool (a
/// random subset when the count fits; whole passes plus a subset when it does not, so use counts differ by at most
/// one); with replacement, independent uniform draws.
struct TemperatureOptions {
    double temperature = 1.0;
    std::optional<std::size_t> total;
    bool with_replacement = false;
    bool redraw_each_epoch = false;  ///< false: one draw from the seed, reused every epoch (a fixed mixed dataset)
};

/// What a weighted mixture does when a language's share asks for more records than it has.
enum class Overdraw {
    Error,   ///< refuse, naming the language
    Repeat,  ///< upsample: whole shuffled passes over the language plus a random part of one more
};

/// weights[l] is the fraction of the epoch's records that come from language l (normalised to sum to 1; 0 leaves a
/// language out). `total` defaults to the largest epoch no language has to repeat records for.
struct WeightedOptions {
    std::vector<std::pair<std::string, double>> weights;
    std::optional<std::size_t> total;
    Overdraw overdraw = Overdraw::Error;
    bool redraw_each_epoch = false;
};

/// p_l = n_l^(1/T) / sum_k n_k^(1/T). Throws unless T >= 1 (infinity allowed: uniform).
inline std::vector<double> temperature_probabilities(std::vector<std::size_t> const& sizes, double temperature) {
    require(temperature >= 1.0,
            "the sampling temperature must be >= 1 (1: proportional to size, infinity: uniform), got ", temperature);
    require(!sizes.empty(), "temperature sampling needs at least one language");
    double const inv = 1.0 / temperature;
    double const largest = double(*std::max_element(sizes.begin(), sizes.end()));
    std::vector<double> p;
    double sum = 0.0;
    for (std::size_t n : sizes) {
        require(n > 0, "temperature sampling: a language has no records");
        p.push_back(std::pow(double(n) / largest, inv));  // scaled by the largest size: no overflow for any T
        sum += p.back();
    }
    for (auto& x : p) x /= sum;
    return p;
}

namespace mixture_select {

/// Every record of every pool once, pool by pool.
inline std::vector<PlanEntry> everything(std::vector<LanguagePool> const& pools) {
    std::vector<PlanEntry> out;
    for (std::size_t p = 0; p < pools.size(); ++p)
        for (std::size_t i = 0; i < pools[p].size(); ++i) out.push_back(PlanEntry{std::uint32_t(p), i});
    return out;
}

/// Ids ranked by a seeded hash (ties by id): a seeded random order independent of the order records come in.
inline std::vector<std::string> ranked_ids(std::vector<std::string> ids, std::uint64_t seed) {
    std::vector<std::pair<std::uint64_t, std::string>> keyed;
    keyed.reserve(ids.size());
    for (auto& id : ids) keyed.emplace_back(derive_seed(seed, DrawStream::Selection, stable_hash(id)), std::move(id));
    std::sort(keyed.begin(), keyed.end());
    std::vector<std::string> out;
    out.reserve(keyed.size());
    for (auto& k : keyed) out.push_back(std::move(k.second));
    return out;
}

/// The downsampled selection. Shared: language l takes the first quota_l ids of the seeded ranking of the ids all
/// languages have (so the extra record of the first M mod N languages is the same id too). Disjoint: the seeded
/// ranking of all ids is walked once; each id goes to the language that has it and the most quota left (ties: the
/// earlier language), until every quota is met. Throws when the ids cannot fill the quotas.
inline std::vector<PlanEntry> downsample(std::vector<LanguagePool> const& pools, DownsampleOptions const& options,
                                         std::uint64_t seed) {
    std::size_t const n = pools.size();
    std::size_t smallest = pools.front().size();
    for (auto const& p : pools) smallest = std::min(smallest, p.size());
    std::size_t const total = options.total.value_or(smallest);
    require(total >= n, "downsampling ", total, " records over ", n, " languages leaves some language with none");
    std::vector<std::size_t> quota(n, total / n);
    for (std::size_t l = 0; l < total % n; ++l) ++quota[l];

    std::vector<std::unordered_map<std::string, std::size_t>> where(n);
    std::unordered_map<std::string, std::size_t> languages_with;
    for (std::size_t l = 0; l < n; ++l)
        for (std::size_t i = 0; i < pools[l].size(); ++i) {
            where[l].emplace(pools[l].examples[i].id, i);
            ++languages_with[pools[l].examples[i].id];
        }

    std::vector<PlanEntry> out;
    out.reserve(total);
    if (options.ids == SampleIds::Shared) {
        std::vector<std::string> common;
        for (auto const& e : pools.front().examples)
            if (languages_with[e.id] == n) common.push_back(e.id);
        require(common.size() >= quota.front(), "shared-id downsampling needs ", quota.front(),
                " ids present in every language; only ", common.size(), " are");
        auto const ranked = ranked_ids(std::move(common), seed);
        for (std::size_t l = 0; l < n; ++l)
            for (std::size_t k = 0; k < quota[l]; ++k)
                out.push_back(PlanEntry{std::uint32_t(l), where[l].at(ranked[k])});
        return out;
    }

    std::vector<std::string> universe;
    for (auto const& [id, count] : languages_with) universe.push_back(id);
    std::vector<std::size_t> left = quota;
    std::size_t remaining = total;
    for (auto const& id : ranked_ids(std::move(universe), seed)) {
        if (remaining == 0) break;
        std::size_t best = n;
        for (std::size_t l = 0; l < n; ++l)
            if (left[l] > 0 && where[l].count(id) && (best == n || left[l] > left[best])) best = l;
        if (best == n) continue;
        out.push_back(PlanEntry{std::uint32_t(best), where[best].at(id)});
        --left[best];
        --remaining;
    }
    for (std::size_t l = 0; l < n; ++l)
        require(left[l] == 0, "disjoint-id downsampling: language '", pools[l].lang, "' needs ", quota[l],
                " records with ids no other language took, but only ", quota[l] - left[l],
                " were available; lower the total or use shared ids");
    return out;
}

}  // namespace mixture_select
}  // namespace polyalpaca
