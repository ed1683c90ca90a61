/// @file tokenizer/hf_unicode.hpp
/// @brief Unicode as HF tokenizers 0.23 sees it: each Rust crate it uses carries tables of an older Unicode version
/// than ICU's, so ICU's data is cut at that version (by each character's age), with the few characters whose
/// properties changed since. Checked over every code point against tokenizers 0.23.3
/// (tools/check_tokenizer_unicode.py).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "polyalpaca/tokenizer/unicode.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::tokenizer::hf_unicode {

/// Whether `c` was assigned by Unicode version `version` (major * 100 + minor).
inline bool assigned_by(char32_t c, int version) {
    auto const a = unicode::age(c);
    return a > 0 && a <= version;
}

/// General category in Unicode 8.0, the tables of the unicode_categories crate (BertNormalizer's control and
/// nonspacing-mark tests, BertPreTokenizer's punctuation); characters assigned later are U_UNASSIGNED.
inline UCharCategory category_8_0(char32_t c) {
    switch (c) {
        case 0x166D:
        case 0x111C9:
            return U_OTHER_PUNCTUATION;
        case 0x1734:
            return U_NON_SPACING_MARK;
        case 0x1885:
        case 0x1886:
            return U_OTHER_LETTER;
        case 0x1CF2:
        case 0x1CF3:
        case 0xA9BD:
            return U_COMBINING_SPACING_MARK;
        default:
            return assigned_by(c, 800) ? unicode::category(c) : U_UNASSIGNED;
    }
}

/// General category in Unicode 9.0, the combining-mark table of unicode-normalization-alignments (StripAccents).
inline UCharCategory category_9_0(char32_t c) {
    switch (c) {
        case 0x111C9:
            return U_OTHER_PUNCTUATION;
        case 0x1CF2:
        case 0x1CF3:
            return U_COMBINING_SPACING_MARK;
        default:
            return assigned_by(c, 900) ? unicode::category(c) : U_UNASSIGNED;
    }
}

/// unicode-normalization-alignments' normalization forms: Unicode 9.0 data (decompositions and combining classes),
/// later characters left alone.
inline std::string normalize(std::string_view text, unicode::Form form) {
    static auto const* const unicode_9_0 = unicode::code_point_set("[:Age=9.0:]");
    static UNormalizer2 const* const forms[] = {
        unicode::restricted(unicode::normalizer(unicode::Form::nfc), unicode_9_0),
        unicode::restricted(unicode::normalizer(unicode::Form::nfd), unicode_9_0),
        unicode::restricted(unicode::normalizer(unicode::Form::nfkc), unicode_9_0),
        unicode::restricted(unicode::normalizer(unicode::Form::nfkd), unicode_9_0)};
    return unicode::normalize(text, forms[static_cast<int>(form)]);
}

/// Rust's char::to_lowercase as the tokenizers 0.23.3 wheel has it (Unicode 17.0): ICU's mapping (Unicode 15.0)
/// plus the case pairs added since.
inline void append_lowercase(std::string& out, char32_t c) {
    struct Range {
        char32_t first, last;
        std::int32_t delta;
    };
    static constexpr Range newer[] = {{0x1C89, 0x1C89, 1},      {0xA7CB, 0xA7CB, 0x264 - 0xA7CB},
                                      {0xA7CC, 0xA7CC, 1},      {0xA7CE, 0xA7CE, 1},
                                      {0xA7D2, 0xA7D2, 1},      {0xA7D4, 0xA7D4, 1},
                                      {0xA7DA, 0xA7DA, 1},      {0xA7DC, 0xA7DC, 0x19B - 0xA7DC},
                                      {0x10D50, 0x10D65, 0x20}, {0x16EA0, 0x16EB8, 0x1B}};
    for (auto const& r : newer) {
        if (c >= r.first && c <= r.last) {
            utf8::append(out, static_cast<char32_t>(static_cast<std::int32_t>(c) + r.delta));
            return;
        }
    }
    unicode::append_lowercase(out, c);
}

/// UnicodeScripts' "Any": characters its table has no script for (unassigned in Unicode 9.0, private use, unknown).
inline constexpr int any_script = -1;

/// The script of UnicodeScripts' table (Unicode 9.0): a UScriptCode, or any_script.
inline int script_9_0(char32_t c) {
    switch (c) {
        case 0x0589:
        case 0x061C:
            return USCRIPT_COMMON;
        case 0x0953:
        case 0x0954:
            return USCRIPT_DEVANAGARI;
        default:
            break;
    }
    if (!assigned_by(c, 900)) return any_script;
    auto const s = unicode::script(c);
    return s == USCRIPT_UNKNOWN ? any_script : s;
}

}  // namespace polyalpaca::tokenizer::hf_unicode
