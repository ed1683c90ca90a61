/// @file tests/unit/mixture_corpus.hpp
/// @brief Synthetic parallel corpora for the mixture, budget and batching tests.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "polyalpaca/data/mixture.hpp"

namespace polyalpaca::testing {

/// Language l's record i has id "r<i>" and base_tokens[l] + (7 * i) % 23 tokens: parallel records whose languages
/// tokenise to different lengths (the bases stand for e.g. en, de, ru, zh).
inline std::vector<LanguagePool> parallel_corpus(std::vector<std::string> const& langs, std::size_t records,
                                                 std::vector<std::int64_t> const& base_tokens) {
    std::vector<LanguagePool> pools;
    for (std::size_t l = 0; l < langs.size(); ++l) {
        LanguagePool pool{langs[l], {}};
        for (std::size_t i = 0; i < records; ++i)
            pool.examples.push_back(
                ExampleRef{langs[l], "r" + std::to_string(i), base_tokens[l] + std::int64_t((7 * i) % 23), i});
        pools.push_back(std::move(pool));
    }
    return pools;
}

inline std::vector<LanguagePool> four_languages(std::size_t records) {
    return parallel_corpus({"en", "de", "ru", "zh"}, records, {40, 52, 61, 33});
}

/// How often each (pool, example) occurs in an order.
inline std::map<std::pair<std::uint32_t, std::size_t>, int> occurrences(std::vector<PlanEntry> const& order) {
    std::map<std::pair<std::uint32_t, std::size_t>, int> seen;
    for (auto const& e : order) ++seen[{e.pool, e.example}];
    return seen;
}

/// The ids an order uses from pool `pool`.
inline std::set<std::string> ids_of(std::vector<LanguagePool> const& pools, std::vector<PlanEntry> const& order,
                                    std::uint32_t pool) {
    std::set<std::string> ids;
    for (auto const& e : order)
        if (e.pool == pool) ids.insert(pools[e.pool].examples[e.example].id);
    return ids;
}

}  // namespace polyalpaca::testing
