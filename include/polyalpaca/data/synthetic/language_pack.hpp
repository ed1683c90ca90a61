/// @file data/synthetic/language_pack.hpp
/// @brief What the synthetic suite knows of one language: its word lists, the phrasings of each task's
/// instruction, and the sentence templates of its pretraining text.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace polyalpaca::synthetic {

/// The task families. Every task's answer is computed from its input alone.
enum class TaskKind {
    Add,          ///< sum of two numbers 0..20; answer in digits
    Subtract,     ///< first minus second, never negative; answer in digits
    Count,        ///< how many items a list holds (2..9); answer in digits
    SortNumbers,  ///< 2..5 distinct numbers 0..99 sorted ascending; answer the list
    Copy,         ///< repeat the input exactly
    FirstWord,    ///< the first item of a list of words; answer a word
    LastWord,     ///< the last item of a list of words; answer a word
    LongerWord,   ///< the longer (more characters) of two words; answer a word
    NumberWord,   ///< a number 1..10 written as a word; answer a word
    // Sentence answers: the language's pretraining sentence of the kind, filled from the input, so the answer is a
    // full sentence in the prompt's language (language fidelity can be measured on it) and still checkable.
    SentenceFirst,   ///< "The first word in the list "{list}" is {word}."
    SentenceLast,    ///< "The last word in the list "{list}" is {word}."
    SentenceLonger,  ///< "The word {a} is longer than the word {b}."
    SentenceNumber,  ///< "The number {n} is written as {word}."
};

inline constexpr std::size_t task_count = 13;

inline constexpr std::array<TaskKind, task_count> all_tasks = {
    TaskKind::Add,           TaskKind::Subtract,     TaskKind::Count,          TaskKind::SortNumbers,
    TaskKind::Copy,          TaskKind::FirstWord,    TaskKind::LastWord,       TaskKind::LongerWord,
    TaskKind::NumberWord,    TaskKind::SentenceFirst, TaskKind::SentenceLast, TaskKind::SentenceLonger,
    TaskKind::SentenceNumber,
};

/// The task's name as written in files ("add", "sort_numbers", ...).
inline std::string_view task_name(TaskKind task) {
    switch (task) {
        case TaskKind::Add: return "add";
        case TaskKind::Subtract: return "subtract";
        case TaskKind::Count: return "count";
        case TaskKind::SortNumbers: return "sort_numbers";
        case TaskKind::Copy: return "copy";
        case TaskKind::FirstWord: return "first_word";
        case TaskKind::LastWord: return "last_word";
        case TaskKind::LongerWord: return "longer_word";
        case TaskKind::NumberWord: return "number_word";
        case TaskKind::SentenceFirst: return "sentence_first";
        case TaskKind::SentenceLast: return "sentence_last";
        case TaskKind::SentenceLonger: return "sentence_longer";
        case TaskKind::SentenceNumber: return "sentence_number";
    }
    return "unknown";
}

/// Whether the task's answer is a word of the prompt's language (rather than digits or a copy of the input).
inline bool answer_is_word(TaskKind task) {
    return task == TaskKind::FirstWord || task == TaskKind::LastWord || task == TaskKind::LongerWord ||
           task == TaskKind::NumberWord;
}

/// Whether the task's answer is a full sentence in the prompt's language: the answers whose language can be
/// identified (digits, a list or one word cannot be told apart by language).
inline bool answer_is_sentence(TaskKind task) {
    return task == TaskKind::SentenceFirst || task == TaskKind::SentenceLast || task == TaskKind::SentenceLonger ||
           task == TaskKind::SentenceNumber;
}

/// The kinds of pretraining sentence; each has one template per language.
enum class SentenceKind {
    Colours,     ///< "Colours: {list}."
    Animals,     ///< "Animals: {list}."
    Fruits,      ///< "Fruits: {list}."
    Sum,         ///< "{a} plus {b} equals {c}."
    Difference,  ///< "{a} minus {b} equals {c}."
    NumberWord,  ///< "The number {n} is written as {word}."
    Count,       ///< "The list "{list}" has {n} items."
    Ascending,   ///< "In ascending order: {list}."
    Counting,    ///< "Counting: {list}." (number words from one up)
    First,       ///< "The first word in the list "{list}" is {word}."
    Last,        ///< "The last word in the list "{list}" is {word}."
    Longer,      ///< "The word {a} is longer than the word {b}."
    QuestionAnswer,  ///< "Question: {question} {input} Answer: {answer}" (a task asked and answered as plain text)
};

inline constexpr std::size_t sentence_kind_count = 13;

/// Words per category list.
inline constexpr std::size_t category_size = 8;

using WordList = std::array<std::string_view, category_size>;
/// Two or three phrasings of one task's instruction.
using Phrasings = std::array<std::string_view, 3>;

/// One language of the suite. Word lists hold the same meanings in the same order in every language (red, blue,
/// green, yellow, black, white, grey, pink; cat, dog, horse, cow, bird, mouse, elephant, giraffe; apple, pear, plum,
/// banana, lemon, cherry, grape, strawberry), so the suites of two languages are parallel. Unused phrasing slots
/// are "".
struct LanguagePack {
    std::string_view code;            ///< ISO 639-1: "en", "zh", ...
    std::string_view name;            ///< English name: "English"
    std::string_view script;          ///< "Latin", "Cyrillic", "Han"
    std::string_view list_separator;  ///< between list items: ", " or "、"
    WordList colours;
    WordList animals;
    WordList fruits;
    std::array<std::string_view, 10> number_words;  ///< 1..10
    std::array<Phrasings, task_count> instructions;  ///< indexed by TaskKind
    std::array<std::string_view, sentence_kind_count> sentences;  ///< indexed by SentenceKind

    /// The phrasings of a task that are not empty.
    std::size_t phrasing_count(TaskKind task) const {
        std::size_t n = 0;
        for (auto p : instructions[std::size_t(task)]) n += p.empty() ? 0 : 1;
        return n;
    }
    std::string_view sentence(SentenceKind kind) const { return sentences[std::size_t(kind)]; }
    /// The i-th word of colours, animals and fruits taken together (i < 3 * category_size).
    std::string_view vocabulary_word(std::size_t i) const {
        if (i < category_size) return colours[i];
        if (i < 2 * category_size) return animals[i - category_size];
        return fruits[i - 2 * category_size];
    }
};

inline constexpr std::size_t vocabulary_size = 3 * category_size;

}  // namespace polyalpaca::synthetic
