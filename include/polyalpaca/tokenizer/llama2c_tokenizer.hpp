/// @file tokenizer/llama2c_tokenizer.hpp
/// @brief llama2.c's tokenizer.bin (max_token_length, then per token: f32 score, i32 length, bytes) as the
/// SentencePiece BPE model it was exported from.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/file_bytes.hpp"
#include "polyalpaca/tokenizer/sentencepiece_bpe.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::tokenizer {

/// Pieces with ' ' back to U+2581 and "\n<s>\n" / "\n</s>\n" back to <s> / </s>; types inferred (<unk> unknown,
/// <s> </s> control, <0xXX> byte); sentencepiece's LLaMA normalizer settings (dummy prefix, no whitespace removal).
inline SentencePieceSpec parse_llama2c_tokenizer(std::string_view data, std::string const& origin) {
    SentencePieceSpec spec;
    spec.origin = origin;
    spec.remove_extra_whitespaces = false;
    auto read_i32 = [&](std::size_t at, char const* what) {
        if (data.size() - at < 4) fail(origin, ": byte offset ", at, ": truncated ", what);
        std::uint32_t bits = 0;
        for (int i = 3; i >= 0; --i) bits = (bits << 8) | static_cast<unsigned char>(data[at + std::size_t(i)]);
        return bits;
    };
    if (data.size() < 4) fail(origin, ": byte offset 0: truncated max_token_length");
    auto const max_length = static_cast<std::int32_t>(read_i32(0, "max_token_length"));
    if (max_length <= 0 || max_length > 1 << 16)
        fail(origin, ": byte offset 0: max_token_length ", max_length, " is implausible");
    std::size_t at = 4;
    int byte_pieces = 0;
    while (at < data.size()) {
        auto const record = at;
        auto const bits = read_i32(at, "score");
        float score;
        std::memcpy(&score, &bits, 4);
        auto const length = static_cast<std::int32_t>(read_i32(at + 4, "token length"));
        at += 8;
        if (length < 0 || length > max_length)
            fail(origin, ": byte offset ", record + 4, ": token ", spec.pieces.size(), " has length ", length,
                 " (max_token_length is ", max_length, ")");
        if (data.size() - at < std::size_t(length))
            fail(origin, ": byte offset ", at, ": token ", spec.pieces.size(), " runs past the end of the file");
        auto const raw = data.substr(at, std::size_t(length));
        at += std::size_t(length);
        if (!utf8::is_valid(raw))
            fail(origin, ": byte offset ", record, ": token ", spec.pieces.size(), " is not valid UTF-8");
        std::string piece;
        if (raw == "\n<s>\n" || raw == "\n</s>\n") {
            piece = raw.substr(1, raw.size() - 2);
        } else {
            for (char c : raw) {
                if (c == ' ') {
                    piece += space_symbol;
                } else {
                    piece += c;
                }
            }
        }
        auto type = PieceType::normal;
        if (piece == "<unk>") type = PieceType::unknown;
        if (piece == "<s>" || piece == "</s>") type = PieceType::control;
        if (piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece.back() == '>') {
            type = PieceType::byte;
            ++byte_pieces;
        }
        spec.pieces.push_back(std::move(piece));
        spec.scores.push_back(score);
        spec.types.push_back(type);
    }
    if (spec.pieces.empty()) fail(origin, ": no tokens after max_token_length");
    spec.byte_fallback = byte_pieces == 256;
    return spec;
}

inline SentencePieceSpec read_llama2c_tokenizer(std::filesystem::path const& path) {
    return parse_llama2c_tokenizer(read_file_bytes(path), path.string());
}

}  // namespace polyalpaca::tokenizer
