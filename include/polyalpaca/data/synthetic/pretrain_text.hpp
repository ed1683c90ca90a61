/// @file data/synthetic/pretrain_text.hpp
/// @brief Plain pretraining sentences in one language, built from the suite's word lists and sentence templates:
/// statements (lists of colours, sums, number words, counts, orderings), never instruction/response pairs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/data/synthetic/language_pack.hpp"
#include "polyalpaca/data/synthetic/tasks.hpp"
#include "polyalpaca/data/synthetic/text.hpp"

namespace polyalpaca::synthetic {

/// One random sentence of the given kind in the language of `pack`.
inline std::string make_sentence(Rng& rng, LanguagePack const& pack, SentenceKind kind) {
    using synthetic_detail::distinct_indices;
    using synthetic_detail::distinct_words;
    using synthetic_detail::in_range;
    auto const pattern = pack.sentence(kind);
    auto const sep = pack.list_separator;
    auto from_category = [&](WordList const& list) {
        std::vector<std::string> words;
        for (auto i : distinct_indices(rng, in_range(rng, 2, 5), category_size)) words.emplace_back(list[i]);
        return fill_template(pattern, {{"list", join(words, sep)}});
    };
    switch (kind) {
        case SentenceKind::Colours: return from_category(pack.colours);
        case SentenceKind::Animals: return from_category(pack.animals);
        case SentenceKind::Fruits: return from_category(pack.fruits);
        case SentenceKind::Sum: {
            auto const a = in_range(rng, 0, max_operand), b = in_range(rng, 0, max_operand);
            return fill_template(pattern, {{"a", std::to_string(a)}, {"b", std::to_string(b)}, {"c", std::to_string(a + b)}});
        }
        case SentenceKind::Difference: {
            auto const a = in_range(rng, 0, max_operand), b = in_range(rng, 0, a);
            return fill_template(pattern, {{"a", std::to_string(a)}, {"b", std::to_string(b)}, {"c", std::to_string(a - b)}});
        }
        case SentenceKind::NumberWord: {
            auto const n = in_range(rng, 1, 10);
            return fill_template(pattern, {{"n", std::to_string(n)}, {"word", std::string(pack.number_words[n - 1])}});
        }
        case SentenceKind::Count: {
            auto const words = distinct_words(rng, pack, in_range(rng, 2, 9));
            return fill_template(pattern, {{"list", join(words, sep)}, {"n", std::to_string(words.size())}});
        }
        case SentenceKind::Ascending: {
            auto numbers = distinct_indices(rng, in_range(rng, 2, 5), max_sort_number + 1);
            std::sort(numbers.begin(), numbers.end());
            std::vector<std::string> shown;
            for (auto n : numbers) shown.push_back(std::to_string(n));
            return fill_template(pattern, {{"list", join(shown, sep)}});
        }
        case SentenceKind::Counting: {
            auto const n = in_range(rng, 3, 10);
            std::vector<std::string> words(pack.number_words.begin(), pack.number_words.begin() + long(n));
            return fill_template(pattern, {{"list", join(words, sep)}});
        }
        case SentenceKind::First:
        case SentenceKind::Last: {
            auto const words = distinct_words(rng, pack, in_range(rng, 3, 6));
            auto const& word = kind == SentenceKind::First ? words.front() : words.back();
            return fill_template(pattern, {{"list", join(words, sep)}, {"word", word}});
        }
        case SentenceKind::Longer: {
            std::vector<std::string> pair;
            do pair = distinct_words(rng, pack, 2);
            while (character_count(pair[0]) == character_count(pair[1]));
            if (character_count(pair[0]) < character_count(pair[1])) std::swap(pair[0], pair[1]);
            return fill_template(pattern, {{"a", pair[0]}, {"b", pair[1]}});
        }
    }
    return {};
}

/// `count` sentences in the language of `pack`: the kinds in turn, each filled at random.
inline std::vector<std::string> pretraining_sentences(Rng& rng, LanguagePack const& pack, std::size_t count) {
    std::vector<std::string> sentences;
    sentences.reserve(count);
    for (std::size_t i = 0; i < count; ++i)
        sentences.push_back(make_sentence(rng, pack, SentenceKind(i % sentence_kind_count)));
    return sentences;
}

}  // namespace polyalpaca::synthetic
