/// @file data/mixture_pools.hpp
/// @brief What the mixing code sees of a corpus: per language, a list of example references (id, tokens, index).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca {

/// One training example as mixing, budgeting and batching see it. The token ids and labels stay with the caller;
/// `index` says where (the position in the caller's own list of examples of that language).
struct ExampleRef {
    std::string lang;         ///< language code, e.g. "de"
    std::string id;           ///< record id; with parallel data equal ids mean the same content in every language
    std::int64_t tokens = 0;  ///< tokens the example trains on (after the prompt template, EOS and truncation)
    std::size_t index = 0;    ///< position in the caller's list for `lang`
};

/// All examples of one language, in the caller's order.
struct LanguagePool {
    std::string lang;
    std::vector<ExampleRef> examples;

    std::size_t size() const { return examples.size(); }
};

/// One entry of an epoch plan: the example at position `example` of pool `pool` (indices into a pool list).
struct PlanEntry {
    std::uint32_t pool = 0;
    std::size_t example = 0;

    friend bool operator==(PlanEntry const&, PlanEntry const&) = default;
};

/// A pool from the caller's tokenised examples of one language: any type with `id` and `ids` (data/examples.hpp's
/// Example has both). ExampleRef::index is the position in `examples`; tokens is ids.size().
template <class E>
requires requires(E const& e) {
    { e.id } -> std::convertible_to<std::string>;
    { e.ids.size() } -> std::convertible_to<std::size_t>;
}
LanguagePool make_pool(std::string const& lang, std::vector<E> const& examples) {
    LanguagePool pool{lang, {}};
    pool.examples.reserve(examples.size());
    for (std::size_t i = 0; i < examples.size(); ++i)
        pool.examples.push_back(ExampleRef{lang, std::string(examples[i].id), std::int64_t(examples[i].ids.size()), i});
    return pool;
}

/// Throws unless every pool is non-empty, language codes are unique and non-empty, each example names its pool's
/// language, ids are non-empty and unique within a language, and token counts are positive.
inline void validate_pools(std::vector<LanguagePool> const& pools) {
    require(!pools.empty(), "no languages given: a mixture needs at least one language pool");
    std::unordered_set<std::string> codes;
    for (std::size_t p = 0; p < pools.size(); ++p) {
        LanguagePool const& pool = pools[p];
        require(!pool.lang.empty(), "language pool ", p, " has an empty language code");
        require(codes.insert(pool.lang).second, "language '", pool.lang, "' is given twice (pools ", p,
                " and another)");
        require(!pool.examples.empty(), "language '", pool.lang, "' has no examples");
        std::unordered_set<std::string> ids;
        ids.reserve(pool.examples.size());
        for (std::size_t i = 0; i < pool.examples.size(); ++i) {
            ExampleRef const& e = pool.examples[i];
            require(e.lang == pool.lang, "language '", pool.lang, "', example ", i, " (id '", e.id,
                    "') says its language is '", e.lang, "'");
            require(!e.id.empty(), "language '", pool.lang, "', example ", i, " has an empty id");
            require(ids.insert(e.id).second, "language '", pool.lang, "': id '", e.id, "' appears twice (example ", i,
                    " repeats an earlier one)");
            require(e.tokens > 0, "language '", pool.lang, "', example ", i, " (id '", e.id, "') has ", e.tokens,
                    " tokens; every example needs at least one");
        }
    }
}

/// The position of language `lang` in `pools`; throws naming the languages there are.
inline std::size_t find_pool(std::vector<LanguagePool> const& pools, std::string const& lang) {
    for (std::size_t p = 0; p < pools.size(); ++p)
        if (pools[p].lang == lang) return p;
    std::string have;
    for (auto const& pool : pools) have += (have.empty() ? "" : ", ") + pool.lang;
    fail("language '", lang, "' is not among the pools (", have, ")");
}

/// The pools of the given languages, in the order given.
inline std::vector<LanguagePool> select_languages(std::vector<LanguagePool> const& pools,
                                                  std::vector<std::string> const& langs) {
    std::vector<LanguagePool> out;
    out.reserve(langs.size());
    for (auto const& lang : langs) out.push_back(pools[find_pool(pools, lang)]);
    return out;
}

/// The example a plan entry points at.
inline ExampleRef const& example_at(std::vector<LanguagePool> const& pools, PlanEntry e) {
    require(e.pool < pools.size() && e.example < pools[e.pool].size(), "plan entry (pool ", e.pool, ", example ",
            e.example, ") is outside the pools");
    return pools[e.pool].examples[e.example];
}

}  // namespace polyalpaca
