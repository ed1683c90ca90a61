/// @file tokenizer/pre_tokenizers.hpp
/// @brief HF tokenizers' pre-tokenizers: Split, ByteLevel, Metaspace, Digits, Punctuation, whitespace, BERT's,
/// CharDelimiterSplit, FixedLength, UnicodeScripts, Sequence.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/byte_level.hpp"
#include "polyalpaca/tokenizer/hf_unicode.hpp"
#include "polyalpaca/tokenizer/pieces.hpp"
#include "polyalpaca/tokenizer/regex.hpp"

namespace polyalpaca::tokenizer {

/// Cuts (and may rewrite) the pieces that no added token decided.
class PreTokenizer {
public:
    virtual ~PreTokenizer() = default;
    virtual void pre_tokenize(Pieces& pieces) const = 0;
};

class SequencePreTokenizer final : public PreTokenizer {
public:
    explicit SequencePreTokenizer(std::vector<std::shared_ptr<PreTokenizer const>> steps) : steps_(std::move(steps)) {}
    void pre_tokenize(Pieces& pieces) const override {
        for (auto const& step : steps_) step->pre_tokenize(pieces);
    }

private:
    std::vector<std::shared_ptr<PreTokenizer const>> steps_;
};

/// Split on a regex (String patterns arrive escaped), with a behaviour; `invert` swaps matched and unmatched.
class SplitPreTokenizer final : public PreTokenizer {
public:
    SplitPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert)
        : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
    void pre_tokenize(Pieces& pieces) const override {
        split_untokenized(pieces, [&](Piece const& piece, Pieces& out) {
            auto segments = segments_from_matches(piece.text.size(), pattern_.find_all(piece.text));
            if (invert_)
                for (auto& s : segments) s.is_match = !s.is_match;
            append_split(piece, apply_behavior(std::move(segments), behavior_), out);
        });
    }

private:
    Regex pattern_;
    SplitBehavior behavior_;
    bool invert_;
};

/// GPT-2's byte-level step: optional prefix space, optional GPT-2 regex split, then every byte as its printable
/// character.
class ByteLevelPreTokenizer final : public PreTokenizer {
public:
    static constexpr std::string_view gpt2_pattern =
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
        : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}

    void pre_tokenize(Pieces& pieces) const override {
        static Regex const gpt2{gpt2_pattern};
        split_untokenized(pieces, [&](Piece& p, Pieces& out) {
            if (add_prefix_space_ && (p.text.empty() || p.text.front() != ' ')) p.text.insert(0, " ");
            if (!use_regex_) {
                if (!p.text.empty()) out.push_back(std::move(p));
                return;
            }
            auto segments = segments_from_matches(p.text.size(), gpt2.find_all(p.text));
            append_split(p, apply_behavior(std::move(segments), SplitBehavior::isolated), out);
        });
        for (auto& piece : pieces)
            if (piece.token < 0) piece.text = byte_level::encode(piece.text);
    }

private:
    bool add_prefix_space_, use_regex_;
};

/// SentencePiece-style spaces: ' ' becomes `replacement`, which is prepended per `prepend_scheme`; optionally split
/// before each replacement character.
class MetaspacePreTokenizer final : public PreTokenizer {
public:
    enum class Prepend { always, first, never };

    MetaspacePreTokenizer(std::string replacement, Prepend prepend, bool split)
        : replacement_(std::move(replacement)),
          prepend_(prepend),
          split_(split),
          replacement_pattern_(escape_regex(replacement_)) {}

    void pre_tokenize(Pieces& pieces) const override {
        split_untokenized(pieces, [&](Piece const& piece, Pieces& out) {
            Piece p{replace_spaces(piece.text), -1, piece.at_origin};
            bool const starts = p.text.compare(0, replacement_.size(), replacement_) == 0;
            if (!starts && (prepend_ == Prepend::always || (prepend_ == Prepend::first && p.at_origin)))
                p.text.insert(0, replacement_);
            if (!split_) {
                if (!p.text.empty()) out.push_back(std::move(p));
                return;
            }
            auto segments = segments_from_matches(p.text.size(), replacement_pattern_.find_all(p.text));
            append_split(p, apply_behavior(std::move(segments), SplitBehavior::merged_with_next), out);
        });
    }

    std::string replace_spaces(std::string_view text) const {
        std::string out;
        out.reserve(text.size() + 8);
        for (char c : text) {
            if (c == ' ') {
                out += replacement_;
            } else {
                out += c;
            }
        }
        return out;
    }

private:
    std::string replacement_;
    Prepend prepend_;
    bool split_;
    Regex replacement_pattern_;
};

/// Splits on single characters a predicate selects, with a behaviour (HF's `Fn(char) -> bool` patterns).
template <class Predicate>
class CharSplitPreTokenizer final : public PreTokenizer {
public:
    CharSplitPreTokenizer(Predicate predicate, SplitBehavior behavior)
        : predicate_(std::move(predicate)), behavior_(behavior) {}
    void pre_tokenize(Pieces& pieces) const override {
        split_untokenized(pieces, [&](Piece const& piece, Pieces& out) {
            append_split(piece, apply_behavior(segments_by_char(piece.text, predicate_), behavior_), out);
        });
    }

private:
    Predicate predicate_;
    SplitBehavior behavior_;
};

/// A one-character Oniguruma class as a predicate (Unicode categories for Digits and Punctuation).
struct CharClassPredicate {
    std::shared_ptr<Regex const> one_char;
    bool operator()(std::string_view text, std::size_t at) const { return one_char->matches_at(text, at); }
};

/// Rust's char::is_whitespace as a predicate.
struct WhitespacePredicate {
    bool operator()(std::string_view text, std::size_t at) const {
        std::size_t n = 0;
        return is_whitespace(utf8::decode(text, at, n));
    }
};

/// One given character as a predicate (CharDelimiterSplit).
struct SameCharPredicate {
    char32_t c;
    bool operator()(std::string_view text, std::size_t at) const {
        std::size_t n = 0;
        return utf8::decode(text, at, n) == c;
    }
};

/// BERT's punctuation: ASCII punctuation, or general category P as Unicode 8.0 has it (HF's unicode_categories).
struct BertPunctuationPredicate {
    bool operator()(std::string_view text, std::size_t at) const {
        std::size_t n = 0;
        auto const c = utf8::decode(text, at, n);
        if (c < 0x80)
            return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                   (c >= 0x7B && c <= 0x7E);
        return unicode::is_punctuation(hf_unicode::category_8_0(c));
    }
};

/// Digits: numbers (char::is_numeric = \p{N}) split off, each digit alone or runs together.
inline std::shared_ptr<PreTokenizer const> make_digits(bool individual_digits) {
    CharClassPredicate numeric{std::make_shared<Regex const>("\\p{N}")};
    return std::make_shared<CharSplitPreTokenizer<CharClassPredicate> const>(
        numeric, individual_digits ? SplitBehavior::isolated : SplitBehavior::contiguous);
}

/// Punctuation: ASCII punctuation or Unicode P* categories.
inline std::shared_ptr<PreTokenizer const> make_punctuation(SplitBehavior behavior) {
    CharClassPredicate punct{std::make_shared<Regex const>("[\\p{P}!-/:-@\\[-`{-~]")};
    return std::make_shared<CharSplitPreTokenizer<CharClassPredicate> const>(punct, behavior);
}

/// WhitespaceSplit: split on whitespace, dropping it.
inline std::shared_ptr<PreTokenizer const> make_whitespace_split() {
    return std::make_shared<CharSplitPreTokenizer<WhitespacePredicate> const>(WhitespacePredicate{},
                                                                              SplitBehavior::removed);
}

/// Whitespace: words (\w+) and runs of other non-space characters; whitespace is dropped. HF compiles this one
/// with Rust's regex crate, whose \w and \s are spelled out here in Oniguruma's property names.
inline std::shared_ptr<PreTokenizer const> make_whitespace() {
    return std::make_shared<SplitPreTokenizer const>(
        Regex("[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]+|"
              "[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}\\p{White_Space}]+"),
        SplitBehavior::removed, true);
}

/// BertPreTokenizer: split on whitespace (dropped), then every punctuation character on its own.
inline std::shared_ptr<PreTokenizer const> make_bert() {
    return std::make_shared<SequencePreTokenizer const>(std::vector<std::shared_ptr<PreTokenizer const>>{
        make_whitespace_split(), std::make_shared<CharSplitPreTokenizer<BertPunctuationPredicate> const>(
                                     BertPunctuationPredicate{}, SplitBehavior::isolated)});
}

/// CharDelimiterSplit: split on one character, dropping it.
inline std::shared_ptr<PreTokenizer const> make_char_delimiter_split(char32_t delimiter) {
    return std::make_shared<CharSplitPreTokenizer<SameCharPredicate> const>(SameCharPredicate{delimiter},
                                                                            SplitBehavior::removed);
}

/// FixedLength: pieces of `length` characters, the last one perhaps shorter.
class FixedLengthPreTokenizer final : public PreTokenizer {
public:
    explicit FixedLengthPreTokenizer(std::size_t length) : length_(length) {
        require(length > 0, "FixedLength: the length must be at least 1");
    }
    void pre_tokenize(Pieces& pieces) const override {
        split_untokenized(pieces, [&](Piece const& piece, Pieces& out) {
            std::vector<std::pair<std::size_t, std::size_t>> ranges;
            std::size_t begin = 0, chars = 0;
            for (std::size_t i = 0; i < piece.text.size();) {
                i += utf8::char_length(static_cast<unsigned char>(piece.text[i]));
                if (++chars == length_) {
                    ranges.emplace_back(begin, i);
                    begin = i;
                    chars = 0;
                }
            }
            ranges.emplace_back(begin, piece.text.size());
            append_split(piece, ranges, out);
        });
    }

private:
    std::size_t length_;
};

/// UnicodeScripts: a new piece wherever the script changes, as sentencepiece's unigram trainer sees scripts: kana
/// and U+30FC count as Han, ' ' and characters of no script (HF's "Any") join either side, and Any characters before
/// the first scripted one are dropped (HF's quirk).
class UnicodeScriptsPreTokenizer final : public PreTokenizer {
public:
    static constexpr int any = hf_unicode::any_script;

    static int script(char32_t c) {
        if (c == 0x30FC) return USCRIPT_HAN;
        if (c == ' ') return any;
        auto const s = hf_unicode::script_9_0(c);
        return s == USCRIPT_HIRAGANA || s == USCRIPT_KATAKANA ? USCRIPT_HAN : s;
    }

    void pre_tokenize(Pieces& pieces) const override {
        split_untokenized(pieces, [&](Piece const& piece, Pieces& out) {
            std::vector<std::size_t> starts;
            std::optional<int> last;
            std::size_t n = 0;
            for (std::size_t i = 0; i < piece.text.size(); i += n) {
                auto const s = script(utf8::decode(piece.text, i, n));
                if (s != any && last != any && last != s) starts.push_back(i);
                if (s != any) last = s;
            }
            starts.push_back(piece.text.size());
            std::vector<std::pair<std::size_t, std::size_t>> ranges;
            for (std::size_t k = 0; k + 1 < starts.size(); ++k) ranges.emplace_back(starts[k], starts[k + 1]);
            append_split(piece, ranges, out);
        });
    }
};

}  // namespace polyalpaca::tokenizer
