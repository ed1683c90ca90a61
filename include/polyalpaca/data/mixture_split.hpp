/// @file data/mixture_split.hpp
/// @brief The held-out validation set per language, taken before any mixing strategy sees the data.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "polyalpaca/data/mixture_draw.hpp"
#include "polyalpaca/data/mixture_pools.hpp"

namespace polyalpaca {

/// The paper holds out 1000 records per language with seed 42 (alpaca-lora's train_test_split). Our draw is our
/// own (seeded hashes of the ids below), not HF datasets' numpy permutation: same sizes and seed, other records.
struct ValidationOptions {
    std::size_t size = 1000;  ///< records held out per language (0: no validation set)
    std::uint64_t seed = 42;
    bool shared_ids = true;  ///< the same ids in every language (parallel data: like-for-like validation losses)
};

struct SplitPools {
    std::vector<LanguagePool> train;       ///< what strategies see; caller order kept, held-out records removed
    std::vector<LanguagePool> validation;  ///< the held-out records, caller order kept
};

namespace detail {
/// Ids ranked by a seeded hash (ties broken by the id), the first `size` taken: a seeded random choice that does not
/// depend on the order the records come in.
inline std::unordered_set<std::string> pick_ids(std::vector<std::string> ids, std::size_t size, std::uint64_t seed) {
    std::vector<std::pair<std::uint64_t, std::string>> ranked;
    ranked.reserve(ids.size());
    for (auto& id : ids)
        ranked.emplace_back(derive_seed(seed, DrawStream::ValidationSplit, stable_hash(id)), std::move(id));
    std::size_t const n = std::min(size, ranked.size());
    std::partial_sort(ranked.begin(), ranked.begin() + std::ptrdiff_t(n), ranked.end());
    std::unordered_set<std::string> out;
    for (std::size_t i = 0; i < n; ++i) out.insert(ranked[i].second);
    return out;
}
}  // namespace detail

/// Splits every language into train and validation. Do it once over all languages of a study and build each run's
/// mixture from `train`, so every run (monolingual or not) is validated on the same records.
/// shared_ids: the held-out ids are drawn from the ids present in every language; throws when fewer than `size` are.
/// Otherwise each language draws on its own (seed mixed with the language code). Throws when a language would keep
/// no training record.
inline SplitPools split_validation(std::vector<LanguagePool> const& pools, ValidationOptions const& options) {
    validate_pools(pools);
    std::vector<std::unordered_set<std::string>> held(pools.size());
    if (options.size > 0 && options.shared_ids) {
        std::unordered_map<std::string, std::size_t> seen_in;
        for (auto const& pool : pools)
            for (auto const& e : pool.examples) ++seen_in[e.id];
        std::vector<std::string> common;
        for (auto const& e : pools.front().examples)
            if (seen_in[e.id] == pools.size()) common.push_back(e.id);
        require(common.size() >= options.size, "a shared validation set of ", options.size,
                " ids needs that many ids present in every language; only ", common.size(), " of '", pools.front().lang,
                "''s ", pools.front().size(), " ids are in all ", pools.size(), " languages");
        auto ids = detail::pick_ids(std::move(common), options.size, options.seed);
        for (auto& h : held) h = ids;
    } else if (options.size > 0) {
        for (std::size_t p = 0; p < pools.size(); ++p) {
            std::vector<std::string> ids;
            for (auto const& e : pools[p].examples) ids.push_back(e.id);
            require(ids.size() >= options.size, "language '", pools[p].lang, "' has ", ids.size(),
                    " records, fewer than the ", options.size, " to hold out for validation");
            held[p] = detail::pick_ids(std::move(ids), options.size, options.seed ^ stable_hash(pools[p].lang));
        }
    }
    SplitPools out;
    for (std::size_t p = 0; p < pools.size(); ++p) {
        LanguagePool train{pools[p].lang, {}}, valid{pools[p].lang, {}};
        for (auto const& e : pools[p].examples) (held[p].count(e.id) ? valid : train).examples.push_back(e);
        require(!train.examples.empty(), "language '", pools[p].lang, "' has ", pools[p].size(),
                " records and all of them are held out for validation; none is left to train on");
        out.train.push_back(std::move(train));
        if (options.size > 0) out.validation.push_back(std::move(valid));
    }
    return out;
}

}  // namespace polyalpaca
