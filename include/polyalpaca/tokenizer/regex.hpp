/// @file tokenizer/regex.hpp
/// @brief Oniguruma regular expressions (the engine HF tokenizers uses), with the onig crate's find_iter semantics.
#pragma once

#ifndef ONIG_ESCAPE_UCHAR_COLLISION
#define ONIG_ESCAPE_UCHAR_COLLISION  // else oniguruma.h defines UChar, ICU's UTF-16 code unit type
#endif
#include <oniguruma.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::tokenizer {

/// A compiled Oniguruma pattern over UTF-8 text: default syntax, no options (what the onig crate's Regex::new does).
/// Immutable after construction; searches from several threads at once are safe.
class Regex {
public:
    /// Throws Error naming `pattern` and Oniguruma's reason when it does not compile.
    explicit Regex(std::string_view pattern) : pattern_(pattern) {
        utf8::require_valid(pattern, "regex pattern");
        initialize();
        OnigRegex raw = nullptr;
        OnigErrorInfo info{};
        auto const* begin = reinterpret_cast<OnigUChar const*>(pattern_.data());
        int code = 0;
        {
            static std::mutex compile_mutex;  // as the onig crate does: onig_new is not re-entrant
            std::lock_guard lock(compile_mutex);
            code = onig_new(&raw, begin, begin + pattern_.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                            ONIG_SYNTAX_DEFAULT, &info);
        }
        if (code != ONIG_NORMAL) {
            OnigUChar message[ONIG_MAX_ERROR_MESSAGE_LEN + 1] = {};
            onig_error_code_to_str(message, code, &info);
            fail("regex pattern '", pattern_, "' does not compile: ", reinterpret_cast<char const*>(message));
        }
        regex_ = std::shared_ptr<regex_t>(raw, [](OnigRegex r) { onig_free(r); });
    }

    std::string const& pattern() const { return pattern_; }

    /// Non-overlapping matches (begin, end) in byte offsets, left to right. An empty match right where the previous
    /// match ended is skipped by advancing one character, as the onig crate's FindMatches does.
    std::vector<std::pair<std::size_t, std::size_t>> find_all(std::string_view text) const {
        std::vector<std::pair<std::size_t, std::size_t>> matches;
        auto region = std::unique_ptr<OnigRegion, void (*)(OnigRegion*)>(onig_region_new(),
                                                                         [](OnigRegion* r) { onig_region_free(r, 1); });
        auto const* begin = reinterpret_cast<OnigUChar const*>(text.data());
        auto const* end = begin + text.size();
        std::size_t last_end = 0;
        bool has_last_match = false;
        std::size_t last_match_end = 0;
        while (last_end <= text.size()) {
            onig_region_clear(region.get());
            int const found =
                onig_search(regex_.get(), begin, end, begin + last_end, end, region.get(), ONIG_OPTION_NONE);
            if (found == ONIG_MISMATCH) break;
            if (found < 0) fail("regex '", pattern_, "': Oniguruma search failed with code ", found);
            auto const b = static_cast<std::size_t>(region->beg[0]);
            auto const e = static_cast<std::size_t>(region->end[0]);
            if (b == e && has_last_match && last_match_end == e) {
                last_end += last_end < text.size() ? utf8::char_length(static_cast<unsigned char>(text[last_end])) : 1;
                continue;
            }
            last_end = e;
            has_last_match = true;
            last_match_end = e;
            matches.emplace_back(b, e);
        }
        return matches;
    }

    /// Whether the pattern matches at byte `at` (anchored there).
    bool matches_at(std::string_view text, std::size_t at) const {
        auto const* begin = reinterpret_cast<OnigUChar const*>(text.data());
        int const n = onig_match(regex_.get(), begin, begin + text.size(), begin + at, nullptr, ONIG_OPTION_NONE);
        if (n < ONIG_MISMATCH) fail("regex '", pattern_, "': Oniguruma match failed with code ", n);
        return n >= 0;
    }

private:
    static void initialize() {
        static bool const done = [] {
            OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
            return onig_initialize(encodings, 1) == ONIG_NORMAL;
        }();
        if (!done) fail("Oniguruma failed to initialize its UTF-8 encoding");
    }

    std::string pattern_;
    std::shared_ptr<regex_t> regex_;
};

/// `literal` as an Oniguruma pattern that matches exactly it (HF escapes String patterns the same way).
inline std::string escape_regex(std::string_view literal) {
    std::string out;
    for (char c : literal) {
        auto const u = static_cast<unsigned char>(c);
        bool const punct = (u >= 0x21 && u <= 0x2F) || (u >= 0x3A && u <= 0x40) || (u >= 0x5B && u <= 0x60) ||
                           (u >= 0x7B && u <= 0x7E);
        if (punct) out += '\\';
        out += c;
    }
    return out;
}

/// Rust's char::is_whitespace: the Unicode White_Space property.
inline bool is_whitespace(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/// Whether the character at byte `at` is a word character as the Rust regex crate's Unicode \w has it
/// (Alphabetic, marks, decimal digits, connector punctuation, join controls), through Oniguruma's tables.
inline bool is_word_char(std::string_view text, std::size_t at) {
    static Regex const word("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]");
    return word.matches_at(text, at);
}

}  // namespace polyalpaca::tokenizer
