/// @file tokenizer/unicode.hpp
/// @brief Unicode data through ICU: normalization forms, general categories, scripts, lowercase mappings and
/// grapheme clusters, on UTF-8 text.
#pragma once

#include <unicode/ubrk.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uscript.h>
#include <unicode/uset.h>
#include <unicode/ustring.h>
#include <unicode/utext.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::tokenizer::unicode {

namespace detail {
inline void check(UErrorCode status, std::string_view what) {
    if (U_FAILURE(status)) fail("ICU ", what, " failed: ", u_errorName(status));
}

inline bool is_ascii(std::string_view text) {
    for (char c : text)
        if (static_cast<unsigned char>(c) >= 0x80) return false;
    return true;
}

inline std::u16string to_utf16(std::string_view text) {
    if (text.size() > 0x3FFFFFFF) fail("a text of ", text.size(), " bytes is too long for ICU");
    UErrorCode status = U_ZERO_ERROR;
    int32_t length = 0;
    u_strFromUTF8(nullptr, 0, &length, text.data(), static_cast<int32_t>(text.size()), &status);
    if (status != U_BUFFER_OVERFLOW_ERROR) check(status, "UTF-8 to UTF-16");
    std::u16string out(static_cast<std::size_t>(length), u'\0');
    status = U_ZERO_ERROR;
    u_strFromUTF8(out.data(), length, nullptr, text.data(), static_cast<int32_t>(text.size()), &status);
    check(status, "UTF-8 to UTF-16");
    return out;
}

inline std::string to_utf8(std::u16string_view text) {
    UErrorCode status = U_ZERO_ERROR;
    int32_t length = 0;
    u_strToUTF8(nullptr, 0, &length, text.data(), static_cast<int32_t>(text.size()), &status);
    if (status != U_BUFFER_OVERFLOW_ERROR) check(status, "UTF-16 to UTF-8");
    std::string out(static_cast<std::size_t>(length), '\0');
    status = U_ZERO_ERROR;
    u_strToUTF8(out.data(), length, nullptr, text.data(), static_cast<int32_t>(text.size()), &status);
    check(status, "UTF-16 to UTF-8");
    return out;
}
}  // namespace detail

enum class Form { nfc, nfd, nfkc, nfkd };

/// ICU's normalizer for `form` (all of Unicode, as ICU has it).
inline UNormalizer2 const* normalizer(Form form) {
    UErrorCode status = U_ZERO_ERROR;
    UNormalizer2 const* out = nullptr;
    switch (form) {
        case Form::nfc:
            out = unorm2_getNFCInstance(&status);
            break;
        case Form::nfd:
            out = unorm2_getNFDInstance(&status);
            break;
        case Form::nfkc:
            out = unorm2_getNFKCInstance(&status);
            break;
        case Form::nfkd:
            out = unorm2_getNFKDInstance(&status);
            break;
    }
    detail::check(status, "normalizer data");
    return out;
}

/// A frozen set of code points from a UnicodeSet pattern such as "[:Age=9.0:]"; it lives as long as the program.
inline USet const* code_point_set(std::string_view pattern) {
    auto const source = detail::to_utf16(pattern);
    UErrorCode status = U_ZERO_ERROR;
    USet* set = uset_openPattern(source.data(), static_cast<int32_t>(source.size()), &status);
    detail::check(status, "code point set");
    uset_freeze(set);
    return set;
}

/// `normalizer` restricted to the code points of `set`: the others are left as they are and nothing combines across
/// them (what a normalizer whose tables predate them does). Lives as long as the program.
inline UNormalizer2 const* restricted(UNormalizer2 const* normalizer, USet const* set) {
    UErrorCode status = U_ZERO_ERROR;
    auto const* out = unorm2_openFiltered(normalizer, set, &status);
    detail::check(status, "filtered normalizer");
    return out;
}

/// `text` normalized by `normalizer` (ASCII text is in every form already).
inline std::string normalize(std::string_view text, UNormalizer2 const* normalizer) {
    if (detail::is_ascii(text)) return std::string(text);
    UErrorCode status = U_ZERO_ERROR;
    auto const source = detail::to_utf16(text);
    auto const n = static_cast<int32_t>(source.size());
    std::u16string out(source.size() * 3 + 8, u'\0');
    int32_t length =
        unorm2_normalize(normalizer, source.data(), n, out.data(), static_cast<int32_t>(out.size()), &status);
    if (status == U_BUFFER_OVERFLOW_ERROR) {
        out.resize(static_cast<std::size_t>(length));
        status = U_ZERO_ERROR;
        length = unorm2_normalize(normalizer, source.data(), n, out.data(), length, &status);
    }
    detail::check(status, "normalization");
    out.resize(static_cast<std::size_t>(length));
    return detail::to_utf8(out);
}

/// Rust's char::to_lowercase: the full, context-free lowercase mapping of one character (U+0130 becomes "i̇",
/// 'Σ' always 'σ').
inline void append_lowercase(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        return;
    }
    char16_t source[2];
    int32_t n = 0;
    U16_APPEND_UNSAFE(source, n, c);
    char16_t lower[8];  // room for any full lowercase mapping
    UErrorCode status = U_ZERO_ERROR;
    auto const length = u_strToLower(lower, 8, source, n, "", &status);  // root locale: no language rules
    detail::check(status, "lowercase");
    out += detail::to_utf8(std::u16string_view(lower, static_cast<std::size_t>(length)));
}

inline UCharCategory category(char32_t c) { return static_cast<UCharCategory>(u_charType(static_cast<UChar32>(c))); }

/// General category M (Mn, Mc, Me).
inline bool is_mark(UCharCategory k) {
    return k == U_NON_SPACING_MARK || k == U_COMBINING_SPACING_MARK || k == U_ENCLOSING_MARK;
}

/// General category P (the seven punctuation categories).
inline bool is_punctuation(UCharCategory k) { return (U_MASK(k) & U_GC_P_MASK) != 0; }

/// General category C less Cn (Cc, Cf, Cs, Co).
inline bool is_other(UCharCategory k) {
    return k == U_CONTROL_CHAR || k == U_FORMAT_CHAR || k == U_SURROGATE || k == U_PRIVATE_USE_CHAR;
}

inline UScriptCode script(char32_t c) {
    UErrorCode status = U_ZERO_ERROR;
    auto const s = uscript_getScript(static_cast<UChar32>(c), &status);
    detail::check(status, "script lookup");
    return s;
}

/// The Unicode version in which `c` was assigned, as major * 100 + minor (0: unassigned).
inline int age(char32_t c) {
    UVersionInfo version;
    u_charAge(static_cast<UChar32>(c), version);
    return version[0] * 100 + version[1];
}

/// Byte offsets where the extended grapheme clusters of valid UTF-8 `text` end, in order.
inline std::vector<std::size_t> grapheme_ends(std::string_view text) {
    std::vector<std::size_t> ends;
    if (text.empty()) return ends;
    if (detail::is_ascii(text)) {
        // Only "\r\n" holds two ASCII characters together.
        for (std::size_t i = 0; i < text.size(); ++i)
            if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) ends.push_back(i + 1);
        return ends;
    }
    UErrorCode status = U_ZERO_ERROR;
    thread_local std::unique_ptr<UBreakIterator, void (*)(UBreakIterator*)> const breaks(
        [] {
            UErrorCode s = U_ZERO_ERROR;
            auto* b = ubrk_open(UBRK_CHARACTER, "", nullptr, 0, &s);
            detail::check(s, "grapheme break iterator");
            return b;
        }(),
        ubrk_close);
    std::unique_ptr<UText, UText* (*)(UText*)> utext(
        utext_openUTF8(nullptr, text.data(), static_cast<int64_t>(text.size()), &status), utext_close);
    detail::check(status, "UTF-8 text");
    ubrk_setUText(breaks.get(), utext.get(), &status);
    detail::check(status, "grapheme breaking");
    for (auto at = ubrk_next(breaks.get()); at != UBRK_DONE; at = ubrk_next(breaks.get()))
        ends.push_back(static_cast<std::size_t>(at));  // UTF-8 UText indices are byte offsets
    return ends;
}

}  // namespace polyalpaca::tokenizer::unicode
