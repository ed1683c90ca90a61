/// @file tokenizer/utf8.hpp
/// @brief Strict UTF-8 validation and decoding, and the two lossy decodings HF tokenizers and sentencepiece use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca::tokenizer::utf8 {

inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD";  // U+FFFD

namespace detail {
/// Allowed range of the second byte after `lead` (Unicode Table 3-7), and the sequence length; length 0: bad lead.
struct LeadInfo {
    std::size_t length;
    unsigned char low, high;
};
inline LeadInfo lead_info(unsigned char lead) {
    if (lead < 0x80) return {1, 0, 0};
    if (lead < 0xC2) return {0, 0, 0};
    if (lead < 0xE0) return {2, 0x80, 0xBF};
    if (lead == 0xE0) return {3, 0xA0, 0xBF};
    if (lead == 0xED) return {3, 0x80, 0x9F};
    if (lead < 0xF0) return {3, 0x80, 0xBF};
    if (lead == 0xF0) return {4, 0x90, 0xBF};
    if (lead < 0xF4) return {4, 0x80, 0xBF};
    if (lead == 0xF4) return {4, 0x80, 0x8F};
    return {0, 0, 0};
}
inline bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

/// How many bytes of the sequence at `i` are well formed (the maximal subpart), and whether it is complete.
inline std::size_t well_formed_prefix(std::string_view s, std::size_t i, bool& complete) {
    auto const lead = static_cast<unsigned char>(s[i]);
    auto const info = lead_info(lead);
    complete = info.length == 1;
    if (info.length <= 1) return 1;
    if (i + 1 >= s.size()) return 1;
    auto const second = static_cast<unsigned char>(s[i + 1]);
    if (second < info.low || second > info.high) return 1;
    std::size_t n = 2;
    while (n < info.length && i + n < s.size() && is_continuation(static_cast<unsigned char>(s[i + n]))) ++n;
    complete = n == info.length;
    return n;
}
}  // namespace detail

/// Length (1-4) of the well-formed UTF-8 character at byte `i`, or 0 when it is not well formed (overlong forms,
/// surrogates, code points above U+10FFFF, stray continuation bytes and truncated sequences are all rejected).
inline std::size_t sequence_length(std::string_view s, std::size_t i) {
    bool complete = false;
    auto const n = detail::well_formed_prefix(s, i, complete);
    return complete ? n : 0;
}

/// Byte offset of the first byte that does not start a well-formed character, or npos when `s` is valid UTF-8.
inline std::size_t first_invalid(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        if (static_cast<unsigned char>(s[i]) < 0x80) {
            ++i;
            continue;
        }
        auto const n = sequence_length(s, i);
        if (n == 0) return i;
        i += n;
    }
    return std::string_view::npos;
}

/// Throws Error("<what>: invalid UTF-8 at byte offset N (byte 0xXX)") unless `s` is valid UTF-8.
inline void require_valid(std::string_view s, std::string_view what) {
    auto const bad = first_invalid(s);
    if (bad == std::string_view::npos) return;
    static constexpr char hex[] = "0123456789ABCDEF";
    auto const byte = static_cast<unsigned char>(s[bad]);
    fail(what, ": invalid UTF-8 at byte offset ", bad, " (byte 0x", hex[byte >> 4], hex[byte & 15], ")");
}

/// Length of the character starting with `lead` in text already known to be valid.
inline std::size_t char_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead < 0xE0) return 2;
    if (lead < 0xF0) return 3;
    return 4;
}

/// The code point at byte `i` of valid UTF-8 text; `length` receives its byte length.
inline char32_t decode(std::string_view s, std::size_t i, std::size_t& length) {
    auto const lead = static_cast<unsigned char>(s[i]);
    length = char_length(lead);
    if (length == 1) return lead;
    char32_t cp = lead & (0x7F >> length);
    for (std::size_t k = 1; k < length; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    return cp;
}

/// Appends the UTF-8 encoding of `cp` (a Unicode scalar value).
inline void append(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

inline std::string encode(char32_t cp) {
    std::string out;
    append(out, cp);
    return out;
}

/// Number of characters in valid UTF-8 text.
inline std::size_t count_chars(std::string_view s) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size(); i += char_length(static_cast<unsigned char>(s[i]))) ++n;
    return n;
}

/// Rust's String::from_utf8_lossy (HF tokenizers' ByteLevel decoder): each maximal ill-formed subpart becomes one
/// U+FFFD.
inline std::string lossy(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size());
    std::size_t i = 0;
    while (i < bytes.size()) {
        bool complete = false;
        auto const n = detail::well_formed_prefix(bytes, i, complete);
        if (complete) {
            out.append(bytes.substr(i, n));
        } else {
            out.append(replacement_character);
        }
        i += n;
    }
    return out;
}

/// Whether every byte of `bytes` forms valid UTF-8 (HF's ByteFallback decoder: all or, per byte, U+FFFD).
inline bool is_valid(std::string_view bytes) { return first_invalid(bytes) == std::string_view::npos; }

}  // namespace polyalpaca::tokenizer::utf8
