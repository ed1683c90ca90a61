/// @file tokenizer/pre_tokenizers.hpp
/// @brief HF tokenizers' pre-tokenizers: Split, ByteLevel, Metaspace, Digits, Punctuation, whitespace, Sequence.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/tokenizer/byte_level.hpp"
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

}  // namespace polyalpaca::tokenizer
