/// @file tokenizer/precompiled_charsmap.hpp
/// @brief SentencePiece's precompiled_charsmap (a Darts double-array trie over UTF-8 keys and the strings they
/// become) and HF's Precompiled normalizer that applies it grapheme by grapheme.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/normalizers.hpp"
#include "polyalpaca/tokenizer/unicode.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::tokenizer {

/// Standard base64 with padding (how tokenizer.json stores the charsmap); Error on anything else.
inline std::string decode_base64(std::string_view text) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    if (text.size() % 4 != 0) fail("base64: the length ", text.size(), " is not a multiple of 4");
    std::size_t padding = 0;
    while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    std::uint32_t bits = 0;
    int count = 0;
    for (std::size_t i = 0; i + padding < text.size(); ++i) {
        auto const v = value(text[i]);
        if (v < 0) fail("base64: unexpected character at offset ", i);
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        if (++count == 4) {
            out += static_cast<char>(bits >> 16);
            out += static_cast<char>(bits >> 8);
            out += static_cast<char>(bits);
            bits = 0;
            count = 0;
        }
    }
    if (count == 3) {
        out += static_cast<char>(bits >> 10);
        out += static_cast<char>(bits >> 2);
    } else if (count == 2) {
        out += static_cast<char>(bits >> 4);
    }
    return out;
}

/// The charsmap: [trie size in bytes (u32 LE)] [trie units (u32 LE)] [normalized strings, each ended by '\0'].
class PrecompiledCharsmap {
public:
    explicit PrecompiledCharsmap(std::string_view blob) {
        if (blob.size() < 4) fail("precompiled_charsmap: ", blob.size(), " bytes are too few for its header");
        auto const trie_bytes = read_u32(blob, 0);
        if (trie_bytes / 4 > (blob.size() - 4) / 4)
            fail("precompiled_charsmap: its trie of ", trie_bytes, " bytes is longer than the ", blob.size(),
                 " bytes of the charsmap");
        units_.resize(trie_bytes / 4);
        for (std::size_t i = 0; i < units_.size(); ++i) units_[i] = read_u32(blob, 4 + 4 * i);
        normalized_ = blob.substr(4 + 4 * units_.size());
        utf8::require_valid(normalized_, "precompiled_charsmap's normalized strings");
    }

    /// What `key` becomes, from the shortest entry that is a prefix of it (Darts' first common-prefix result, as
    /// spm_precompiled uses it); nothing when no entry is.
    std::optional<std::string_view> transform(std::string_view key) const {
        auto const value = first_prefix_value(key);
        if (!value) return std::nullopt;
        if (*value > normalized_.size()) corrupt();
        auto const end = normalized_.find('\0', *value);
        auto const out = std::string_view(normalized_).substr(*value, end - *value);  // npos: to the end
        if (!out.empty() && utf8::first_invalid(out) != std::string_view::npos) corrupt();
        return out;
    }

private:
    static std::uint32_t read_u32(std::string_view s, std::size_t at) {
        auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + k])); };
        return byte(0) | (byte(1) << 8) | (byte(2) << 16) | (byte(3) << 24);
    }
    [[noreturn]] static void corrupt() { fail("precompiled_charsmap: the trie points outside itself"); }

    std::uint32_t unit(std::size_t at) const {
        if (at >= units_.size()) corrupt();
        return units_[at];
    }
    static bool has_leaf(std::uint32_t u) { return (u >> 8) & 1; }
    static std::size_t value(std::uint32_t u) { return u & 0x7FFFFFFFu; }
    static std::uint32_t label(std::uint32_t u) { return u & 0x800000FFu; }
    static std::size_t offset(std::uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

    std::optional<std::size_t> first_prefix_value(std::string_view key) const {
        std::size_t node = offset(unit(0));
        for (char ch : key) {
            auto const c = static_cast<unsigned char>(ch);
            if (c == 0) break;
            node ^= c;
            auto const u = unit(node);
            if (label(u) != c) return std::nullopt;
            node ^= offset(u);
            if (has_leaf(u)) return value(unit(node));
        }
        return std::nullopt;
    }

    std::vector<std::uint32_t> units_;
    std::string normalized_;
};

/// HF's Precompiled normalizer: a grapheme cluster shorter than 6 bytes is looked up whole, otherwise (or when it
/// has no entry) each of its characters is. Alignments stay put as HF keeps them, so a piece at the start of the
/// original stays there even when its first grapheme becomes nothing.
class PrecompiledNormalizer final : public Normalizer {
public:
    explicit PrecompiledNormalizer(PrecompiledCharsmap charsmap) : charsmap_(std::move(charsmap)) {}

    void normalize(Piece& piece) const override {
        std::string_view const text = piece.text;
        std::string out;
        out.reserve(text.size());
        std::size_t begin = 0;
        for (auto const end : unicode::grapheme_ends(text)) {
            auto const grapheme = text.substr(begin, end - begin);
            begin = end;
            if (grapheme.size() < 6) {
                if (auto whole = charsmap_.transform(grapheme)) {
                    out += *whole;
                    continue;
                }
            }
            for (std::size_t i = 0; i < grapheme.size();) {
                auto const c = grapheme.substr(i, utf8::char_length(static_cast<unsigned char>(grapheme[i])));
                i += c.size();
                auto const mapped = charsmap_.transform(c);
                out += mapped ? *mapped : c;
            }
        }
        piece.text = std::move(out);
    }

private:
    PrecompiledCharsmap charsmap_;
};

}  // namespace polyalpaca::tokenizer
