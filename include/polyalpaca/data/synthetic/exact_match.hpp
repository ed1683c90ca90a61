/// @file data/synthetic/exact_match.hpp
/// @brief Exact-match scoring of responses against the suite's answers: the normalisation both sides get, the
/// comparison (list items one by one, integers as numbers), and accuracy per language and per task.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::synthetic {

namespace synthetic_detail {

/// Lower case of the Latin (Basic, Latin-1, Extended-A), Greek and Cyrillic capitals, with final sigma as sigma and
/// Cyrillic yo as ye (Russian is often written without the diaeresis); every other character as it is.
inline char32_t fold_case(char32_t c) {
    if (c >= U'A' && c <= U'Z') return c + 32;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c >= 0x100 && c <= 0x137 && c != 0x130) return c | 1;
    if (c >= 0x139 && c <= 0x148) return c % 2 == 1 ? c + 1 : c;
    if (c >= 0x14A && c <= 0x177) return c | 1;
    if (c == 0x178) return 0xFF;
    if (c >= 0x179 && c <= 0x17E) return c % 2 == 1 ? c + 1 : c;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB)) return c + 32;
    if (c == 0x3C2) return 0x3C3;
    if (c == 0x401 || c == 0x451) return 0x435;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if ((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF)) return c | 1;
    return c;
}

inline bool is_space(char32_t c) {
    return c == U' ' || (c >= 0x09 && c <= 0x0D) || c == 0xA0 || (c >= 0x2000 && c <= 0x200A) || c == 0x202F ||
           c == 0x3000;
}

/// The canonical text of an integer ("+007" -> "7", "-0" -> "0"), or "" when `s` is not one.
inline std::string canonical_integer(std::string_view s) {
    bool negative = false;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) negative = s[0] == '-', s.remove_prefix(1);
    if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) return "";
    auto const first = s.find_first_not_of('0');
    if (first == std::string_view::npos) return "0";
    return (negative ? "-" : "") + std::string(s.substr(first));
}

/// The list items of normalised text: cut at ',' (also '、' and '，', already mapped to ','), each trimmed.
inline std::vector<std::string> items_of(std::string const& text) {
    std::vector<std::string> items;
    std::size_t begin = 0;
    for (;;) {
        auto const end = text.find(',', begin);
        auto item = text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
        auto const first = item.find_first_not_of(' ');
        item = first == std::string::npos ? "" : item.substr(first, item.find_last_not_of(' ') - first + 1);
        items.push_back(std::move(item));
        if (end == std::string::npos) break;
        begin = end + 1;
    }
    return items;
}

}  // namespace synthetic_detail

/// The text exact match compares: invalid UTF-8 bytes as U+FFFD; every Unicode space as ' ', runs of them as one,
/// none at either end; one trailing '.', '。' or '．' dropped; case folded (Latin, Greek, Cyrillic; ё as е);
/// full-width digits as ASCII digits; the list marks '、' and '，' as ','.
inline std::string normalize_answer(std::string_view text) {
    namespace utf8 = tokenizer::utf8;
    std::u32string chars;
    for (std::size_t i = 0; i < text.size();) {
        std::size_t length = utf8::sequence_length(text, i);
        char32_t c = 0xFFFD;
        if (length == 0) length = 1;
        else c = utf8::decode(text, i, length);
        i += length;
        if (synthetic_detail::is_space(c)) c = U' ';
        else if (c >= 0xFF10 && c <= 0xFF19) c = U'0' + (c - 0xFF10);
        else if (c == 0x3001 || c == 0xFF0C) c = U',';
        else c = synthetic_detail::fold_case(c);
        if (c == U' ' && (chars.empty() || chars.back() == U' ')) continue;
        chars += c;
    }
    if (!chars.empty() && chars.back() == U' ') chars.pop_back();
    if (!chars.empty() && (chars.back() == U'.' || chars.back() == 0x3002 || chars.back() == 0xFF0E)) {
        chars.pop_back();
        if (!chars.empty() && chars.back() == U' ') chars.pop_back();
    }
    std::string out;
    for (char32_t c : chars) utf8::append(out, c);
    return out;
}

/// Whether `response` gives `answer`: both normalised, cut into list items at commas, the same number of items,
/// each pair equal as integers when both are integers and as text otherwise.
inline bool exact_match(std::string_view response, std::string_view answer) {
    auto const got = synthetic_detail::items_of(normalize_answer(response));
    auto const want = synthetic_detail::items_of(normalize_answer(answer));
    if (got.size() != want.size()) return false;
    for (std::size_t i = 0; i < got.size(); ++i) {
        auto const a = synthetic_detail::canonical_integer(got[i]), b = synthetic_detail::canonical_integer(want[i]);
        if (!a.empty() && !b.empty() ? a != b : got[i] != want[i]) return false;
    }
    return true;
}

/// Correct answers out of all, for one group (a language, or a language's task).
struct ExactMatchCount {
    std::string group;
    std::size_t correct = 0;
    std::size_t total = 0;
    double accuracy() const { return total == 0 ? 0.0 : double(correct) / double(total); }
};

/// Exact-match tallies per language and per (language, task), in the order groups were first seen.
class ExactMatchTally {
public:
    /// Scores one response and counts it; returns whether it matched.
    bool add(std::string_view lang, std::string_view task, std::string_view response, std::string_view answer) {
        bool const ok = exact_match(response, answer);
        count(lang, task, ok);
        return ok;
    }
    /// Counts an outcome decided elsewhere (a prompt with no response counts as wrong).
    void count(std::string_view lang, std::string_view task, bool correct) {
        bump(languages_, std::string(lang), correct);
        bump(tasks_, std::string(lang) + "/" + std::string(task), correct);
    }
    std::vector<ExactMatchCount> const& per_language() const { return languages_; }
    /// Groups named "lang/task".
    std::vector<ExactMatchCount> const& per_task() const { return tasks_; }
    /// The count of one language (zero counts when it has none).
    ExactMatchCount of_language(std::string_view lang) const {
        for (auto const& c : languages_)
            if (c.group == lang) return c;
        return {std::string(lang), 0, 0};
    }

private:
    static void bump(std::vector<ExactMatchCount>& counts, std::string group, bool correct) {
        auto it = std::find_if(counts.begin(), counts.end(), [&](auto const& c) { return c.group == group; });
        if (it == counts.end()) it = counts.insert(counts.end(), ExactMatchCount{std::move(group), 0, 0});
        it->correct += correct ? 1 : 0;
        ++it->total;
    }
    std::vector<ExactMatchCount> languages_, tasks_;
};

}  // namespace polyalpaca::synthetic
