/// @file tokenizer/unicode_normalizers.hpp
/// @brief HF tokenizers' normalizers that rewrite characters by their Unicode properties: NFC, NFD, NFKC, NFKD,
/// Lowercase, StripAccents, Nmt, ByteLevel and BertNormalizer.
#pragma once

#include <string>
#include <utility>

#include "polyalpaca/tokenizer/byte_level.hpp"
#include "polyalpaca/tokenizer/hf_unicode.hpp"
#include "polyalpaca/tokenizer/normalizers.hpp"
#include "polyalpaca/tokenizer/pieces.hpp"
#include "polyalpaca/tokenizer/regex.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::tokenizer {

/// Replaces each character of the piece by what `rewrite(c, out)` appends to `out` (perhaps nothing). As with
/// HF's NormalizedString::filter, dropping the first characters moves the piece off the start of the original.
template <class Rewrite>
void rewrite_chars(Piece& piece, Rewrite const& rewrite) {
    std::string out;
    out.reserve(piece.text.size());
    bool dropped_first = false;
    std::size_t n = 0;
    for (std::size_t i = 0; i < piece.text.size(); i += n) {
        auto const c = utf8::decode(piece.text, i, n);
        auto const before = out.size();
        rewrite(c, out);
        if (before == 0 && out.empty()) dropped_first = true;
    }
    if (dropped_first) piece.at_origin = false;
    piece.text = std::move(out);
}

/// NFC, NFD, NFKC or NFKD.
class UnicodeNormalizer final : public Normalizer {
public:
    explicit UnicodeNormalizer(unicode::Form form) : form_(form) {}
    void normalize(Piece& piece) const override { piece.text = hf_unicode::normalize(piece.text, form_); }

private:
    unicode::Form form_;
};

/// Each character's full lowercase mapping, without context (Rust's char::to_lowercase: final sigma stays σ).
class LowercaseNormalizer final : public Normalizer {
public:
    void normalize(Piece& piece) const override {
        rewrite_chars(piece, [](char32_t c, std::string& out) { hf_unicode::append_lowercase(out, c); });
    }
};

/// Drops combining marks (general category M); it does not decompose first, so precomposed letters keep their
/// accents (HF pairs it with NFD).
class StripAccentsNormalizer final : public Normalizer {
public:
    void normalize(Piece& piece) const override {
        rewrite_chars(piece, [](char32_t c, std::string& out) {
            if (!unicode::is_mark(hf_unicode::category_9_0(c))) utf8::append(out, c);
        });
    }
};

/// SentencePiece's NMT cleanup: drops most C0 controls, DEL and two C1 controls; turns other invisible separators
/// (and U+2581, U+FEFF, U+FFFD) into spaces.
class NmtNormalizer final : public Normalizer {
public:
    void normalize(Piece& piece) const override {
        rewrite_chars(piece, [](char32_t c, std::string& out) {
            bool const dropped = (c >= 0x01 && c <= 0x08) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
                                 c == 0x8F || c == 0x9F;
            if (dropped) return;
            bool const space = c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D || c == 0x1680 ||
                               (c >= 0x200B && c <= 0x200F) || c == 0x2028 || c == 0x2029 || c == 0x2581 ||
                               c == 0xFEFF || c == 0xFFFD;
            utf8::append(out, space ? U' ' : c);
        });
    }
};

/// Each byte as GPT-2's printable character for it (the ByteLevel pre-tokenizer's mapping, without its splitting).
class ByteLevelNormalizer final : public Normalizer {
public:
    void normalize(Piece& piece) const override { piece.text = byte_level::encode(piece.text); }
};

/// BERT's cleanup: drop controls and map whitespace to ' ' (clean_text), put spaces around CJK ideographs
/// (handle_chinese_chars), NFD then drop nonspacing marks (strip_accents, which defaults to lowercase), lowercase.
class BertNormalizer final : public Normalizer {
public:
    struct Options {
        bool clean_text = true;
        bool handle_chinese_chars = true;
        bool strip_accents = true;
        bool lowercase = true;
    };

    explicit BertNormalizer(Options options) : options_(options) {}

    void normalize(Piece& piece) const override {
        if (options_.clean_text) {
            rewrite_chars(piece, [](char32_t c, std::string& out) {
                bool const tab_or_newline = c == '\t' || c == '\n' || c == '\r';
                bool const control = !tab_or_newline && unicode::is_other(hf_unicode::category_8_0(c));
                if (c == 0 || c == 0xFFFD || control) return;
                utf8::append(out, tab_or_newline || is_whitespace(c) ? U' ' : c);
            });
        }
        if (options_.handle_chinese_chars) {
            rewrite_chars(piece, [](char32_t c, std::string& out) {
                if (!is_chinese_char(c)) return utf8::append(out, c);
                out += ' ';
                utf8::append(out, c);
                out += ' ';
            });
        }
        if (options_.strip_accents) {
            piece.text = hf_unicode::normalize(piece.text, unicode::Form::nfd);
            rewrite_chars(piece, [](char32_t c, std::string& out) {
                if (hf_unicode::category_8_0(c) != U_NON_SPACING_MARK) utf8::append(out, c);
            });
        }
        if (options_.lowercase)
            rewrite_chars(piece, [](char32_t c, std::string& out) { hf_unicode::append_lowercase(out, c); });
    }

    /// The CJK Unified Ideographs blocks BERT names (not Hiragana, Katakana or Hangul).
    static bool is_chinese_char(char32_t c) {
        return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
               (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
               (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
    }

private:
    Options options_;
};

}  // namespace polyalpaca::tokenizer
