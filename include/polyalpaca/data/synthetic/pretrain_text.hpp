/// @file data/synthetic/pretrain_text.hpp
/// @brief Plain pretraining text in one language, built from the suite's word lists and sentence templates:
/// statements (lists of colours, sums, number words, counts, orderings) and tasks asked and answered as plain text
/// ("Question: ... Answer: ..."), never in the instruction template the tuning uses, never a test prompt.
#pragma once

#include <algorithm>
#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/data/synthetic/language_pack.hpp"
#include "polyalpaca/data/synthetic/tasks.hpp"
#include "polyalpaca/data/synthetic/text.hpp"

namespace polyalpaca::synthetic {

/// A task asked and answered as plain text ("Question: What is the sum of these two numbers? 3, 4 Answer: 7"), never
/// one whose (instruction, input) is in `held_out` (the test split's prompts).
inline std::string question_answer(Rng& rng, LanguagePack const& pack, TaskKind task,
                                   std::set<std::string> const& held_out) {
    for (int draw = 0; draw < 1000; ++draw) {
        auto const item = make_task(rng, pack, task);
        if (held_out.count(prompt_key(item.record)) != 0) continue;
        auto const& r = item.record;
        return fill_template(pack.sentence(SentenceKind::QuestionAnswer),
                             {{"question", r.instruction}, {"input", r.input}, {"answer", r.output}});
    }
    fail("synthetic suite: every ", task_name(task), " prompt drawn in ", pack.code, " is held out for testing");
}

/// One random sentence of the given kind in the language of `pack` (First and Last: the list's category sentence,
/// then theirs; QuestionAnswer: a random task, never one of `held_out`).
inline std::string make_sentence(Rng& rng, LanguagePack const& pack, SentenceKind kind,
                                 std::set<std::string> const& held_out = {}) {
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
            // Two sentences on one list: the list of its category ("Animals: cat, dog, cow."), then its first (last)
            // word. The second quotes the list the first gave, after other words, as text quotes what it said
            // before; a model learns here to copy from its context, which the tasks' answers do from their input.
            auto const category = SentenceKind(rng.below(3));  // Colours, Animals or Fruits
            WordList const& list = category == SentenceKind::Colours ? pack.colours
                                   : category == SentenceKind::Animals ? pack.animals
                                                                       : pack.fruits;
            std::vector<std::string> words;
            for (auto i : distinct_indices(rng, in_range(rng, 3, 6), category_size)) words.emplace_back(list[i]);
            auto const& word = kind == SentenceKind::First ? words.front() : words.back();
            auto const joined = join(words, sep);
            return fill_template(pack.sentence(category), {{"list", joined}}) + (pack.script == "Han" ? "" : " ") +
                   fill_template(pattern, {{"list", joined}, {"word", word}});
        }
        case SentenceKind::QuestionAnswer:
            return question_answer(rng, pack, all_tasks[rng.below(task_count)], held_out);
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

/// `count` lines of text in the language of `pack`: every third a task asked and answered (the tasks in turn, never
/// a prompt of `held_out`), the others statements, their kinds in turn, each filled at random.
inline std::vector<std::string> pretraining_sentences(Rng& rng, LanguagePack const& pack, std::size_t count,
                                                      std::set<std::string> const& held_out = {}) {
    std::vector<std::string> sentences;
    sentences.reserve(count);
    std::size_t statements = 0, questions = 0;
    std::size_t const statement_kinds = sentence_kind_count - 1;  // every kind but QuestionAnswer
    for (std::size_t i = 0; i < count; ++i)
        sentences.push_back(i % 3 == 2 ? question_answer(rng, pack, all_tasks[questions++ % task_count], held_out)
                                       : make_sentence(rng, pack, SentenceKind(statements++ % statement_kinds)));
    return sentences;
}

}  // namespace polyalpaca::synthetic
