/// @file data/synthetic/tasks.hpp
/// @brief The task generators: one random instance of a task family in one language, as an Alpaca record whose
/// output is the task's checkable answer.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/data/record.hpp"
#include "polyalpaca/data/synthetic/language_pack.hpp"
#include "polyalpaca/data/synthetic/text.hpp"

namespace polyalpaca::synthetic {

/// One generated task: the record (lang, instruction, input, output = the answer) and what produced it.
struct SuiteItem {
    Record record;
    TaskKind task = TaskKind::Add;
    std::size_t phrasing = 0;  ///< which of the language's phrasings of the task's instruction
};

/// The key two records share when they pose the same task: instruction and input.
inline std::string prompt_key(Record const& r) { return r.instruction + '\x1f' + r.input; }

/// Largest operand of Add and Subtract; the operands are 0..max_operand.
inline constexpr std::uint64_t max_operand = 20;
/// Numbers to sort are 0..max_sort_number.
inline constexpr std::uint64_t max_sort_number = 99;

namespace synthetic_detail {

inline std::uint64_t in_range(Rng& rng, std::uint64_t lo, std::uint64_t hi) { return lo + rng.below(hi - lo + 1); }

/// `n` distinct indices below `size`, in random order (a partial Fisher-Yates shuffle).
inline std::vector<std::size_t> distinct_indices(Rng& rng, std::size_t n, std::size_t size) {
    std::vector<std::size_t> pool(size);
    for (std::size_t i = 0; i < size; ++i) pool[i] = i;
    for (std::size_t i = 0; i < n; ++i) std::swap(pool[i], pool[i + rng.below(size - i)]);
    pool.resize(n);
    return pool;
}

/// `n` distinct words of the language's vocabulary, in random order.
inline std::vector<std::string> distinct_words(Rng& rng, LanguagePack const& pack, std::size_t n) {
    std::vector<std::string> words;
    for (auto i : distinct_indices(rng, n, vocabulary_size)) words.emplace_back(pack.vocabulary_word(i));
    return words;
}

}  // namespace synthetic_detail

/// One random instance of `task` in the language of `pack`. The record's id and source are left for the caller.
inline SuiteItem make_task(Rng& rng, LanguagePack const& pack, TaskKind task) {
    using namespace synthetic_detail;
    SuiteItem item;
    item.task = task;
    item.phrasing = rng.below(pack.phrasing_count(task));
    auto& r = item.record;
    r.lang = std::string(pack.code);
    r.instruction = std::string(pack.instructions[std::size_t(task)][item.phrasing]);
    auto const sep = pack.list_separator;
    switch (task) {
        case TaskKind::Add: {
            auto const a = in_range(rng, 0, max_operand), b = in_range(rng, 0, max_operand);
            r.input = join(std::array{std::to_string(a), std::to_string(b)}, sep);
            r.output = std::to_string(a + b);
            break;
        }
        case TaskKind::Subtract: {
            auto const a = in_range(rng, 0, max_operand), b = in_range(rng, 0, a);
            r.input = join(std::array{std::to_string(a), std::to_string(b)}, sep);
            r.output = std::to_string(a - b);
            break;
        }
        case TaskKind::Count: {
            auto const words = distinct_words(rng, pack, in_range(rng, 2, 9));
            r.input = join(words, sep);
            r.output = std::to_string(words.size());
            break;
        }
        case TaskKind::SortNumbers: {
            auto numbers = distinct_indices(rng, in_range(rng, 2, 5), max_sort_number + 1);
            std::vector<std::string> shown;
            for (auto n : numbers) shown.push_back(std::to_string(n));
            r.input = join(shown, sep);
            std::sort(numbers.begin(), numbers.end());
            shown.clear();
            for (auto n : numbers) shown.push_back(std::to_string(n));
            r.output = join(shown, sep);
            break;
        }
        case TaskKind::Copy: {
            r.input = join(distinct_words(rng, pack, in_range(rng, 2, 5)), sep);
            r.output = r.input;
            break;
        }
        case TaskKind::FirstWord:
        case TaskKind::LastWord:
        case TaskKind::SentenceFirst:
        case TaskKind::SentenceLast: {
            auto const words = distinct_words(rng, pack, in_range(rng, 3, 6));
            r.input = join(words, sep);
            bool const first = task == TaskKind::FirstWord || task == TaskKind::SentenceFirst;
            r.output = first ? words.front() : words.back();
            if (answer_is_sentence(task))
                r.output = fill_template(pack.sentence(first ? SentenceKind::First : SentenceKind::Last),
                                         {{"list", r.input}, {"word", r.output}});
            break;
        }
        case TaskKind::LongerWord:
        case TaskKind::SentenceLonger: {
            std::vector<std::string> pair;
            do pair = distinct_words(rng, pack, 2);
            while (character_count(pair[0]) == character_count(pair[1]));
            r.input = join(pair, sep);
            bool const first_longer = character_count(pair[0]) > character_count(pair[1]);
            auto const& longer = first_longer ? pair[0] : pair[1];
            auto const& shorter = first_longer ? pair[1] : pair[0];
            r.output = task == TaskKind::LongerWord
                           ? longer
                           : fill_template(pack.sentence(SentenceKind::Longer), {{"a", longer}, {"b", shorter}});
            break;
        }
        case TaskKind::NumberWord:
        case TaskKind::SentenceNumber: {
            auto const n = in_range(rng, 1, 10);
            r.input = std::to_string(n);
            r.output = std::string(pack.number_words[n - 1]);
            if (task == TaskKind::SentenceNumber)
                r.output = fill_template(pack.sentence(SentenceKind::NumberWord),
                                         {{"n", r.input}, {"word", r.output}});
            break;
        }
    }
    return item;
}

/// How many distinct (instruction, input) pairs a task has in a language, where that number is small enough to
/// matter when drawing distinct records; the largest size_t for tasks with many more.
inline std::size_t distinct_prompt_count(LanguagePack const& pack, TaskKind task) {
    std::size_t const phrasings = pack.phrasing_count(task);
    std::size_t const operands = max_operand + 1;
    switch (task) {
        case TaskKind::Add: return phrasings * operands * operands;
        case TaskKind::Subtract: return phrasings * operands * (operands + 1) / 2;
        case TaskKind::NumberWord:
        case TaskKind::SentenceNumber: return phrasings * 10;
        default: return std::numeric_limits<std::size_t>::max();
    }
}

}  // namespace polyalpaca::synthetic
