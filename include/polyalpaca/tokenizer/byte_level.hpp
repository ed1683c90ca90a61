/// @file tokenizer/byte_level.hpp
/// @brief GPT-2's reversible byte <-> printable character table (HF's bytes_char / char_bytes).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::tokenizer::byte_level {

/// The table: printable Latin-1 bytes map to themselves, the other 68 to U+0100.. in byte order.
struct Table {
    std::array<char32_t, 256> code_point{};
    std::array<std::string, 256> utf8{};

    Table() {
        auto printable = [](int b) {
            return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        };
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            code_point[b] = printable(b) ? char32_t(b) : next++;
            utf8[b] = utf8::encode(code_point[b]);
        }
    }
};

inline Table const& table() {
    static Table const t;
    return t;
}

/// Each byte of `text` as its printable character.
inline std::string encode(std::string_view text) {
    auto const& t = table();
    std::string out;
    out.reserve(text.size() * 2);
    for (char c : text) out += t.utf8[static_cast<unsigned char>(c)];
    return out;
}

/// The byte a table character stands for, or nothing when `cp` is not one of the 256.
inline std::optional<unsigned char> byte_of(char32_t cp) {
    if (cp < 256) {
        bool const printable = (cp >= '!' && cp <= '~') || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF);
        if (printable) return static_cast<unsigned char>(cp);
        return std::nullopt;
    }
    if (cp >= 256 + 68) return std::nullopt;
    auto const& t = table();
    for (int b = 0; b < 256; ++b)
        if (t.code_point[b] == cp) return static_cast<unsigned char>(b);
    return std::nullopt;
}

/// HF's ByteLevel decoder on one token: the bytes its characters stand for, or the token's own bytes when any
/// character is not in the table.
inline void append_decoded(std::string_view token, std::string& bytes) {
    std::string decoded;
    for (std::size_t i = 0; i < token.size();) {
        std::size_t n = 0;
        auto const byte = byte_of(utf8::decode(token, i, n));
        if (!byte) {
            bytes.append(token);
            return;
        }
        decoded += static_cast<char>(*byte);
        i += n;
    }
    bytes += decoded;
}

}  // namespace polyalpaca::tokenizer::byte_level
