/// @file tokenizer/added_vocabulary.hpp
/// @brief Added tokens (special or not) found in the text before the model runs, with HF's matching rules.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "polyalpaca/tokenizer/normalizers.hpp"
#include "polyalpaca/tokenizer/pieces.hpp"
#include "polyalpaca/tokenizer/regex.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"
#include "polyalpaca/tokenizer/vocab.hpp"

namespace polyalpaca::tokenizer {

struct AddedToken {
    std::string content;
    std::int32_t id = -1;
    bool special = false;
    bool lstrip = false;       ///< also take the whitespace on its left
    bool rstrip = false;       ///< also take the whitespace on its right
    bool single_word = false;  ///< only when not inside a word
    bool normalized = false;   ///< matched in the normalized text instead of the raw text
};

/// HF's AddedVocabulary::extract_and_normalize: split the raw text on non-normalized added tokens, normalize the
/// rest piece by piece, then split that on the normalized added tokens.
class AddedVocabulary {
public:
    AddedVocabulary() = default;

    AddedVocabulary(std::vector<AddedToken> tokens, Normalizer const* normalizer) : tokens_(std::move(tokens)) {
        for (std::size_t i = 0; i < tokens_.size(); ++i) {
            auto const& t = tokens_[i];
            by_id_[t.id] = i;
            by_content_.try_emplace(t.content, t.id);
            texts_.push_back(t.normalized && normalizer ? normalizer->normalized(t.content) : t.content);
            if (texts_.back().empty()) continue;  // nothing to match (a normalizer may empty a token)
            (t.normalized ? normalized_ : raw_).patterns.push_back({texts_.back(), i});
        }
        for (auto* set : {&raw_, &normalized_}) set->index();
    }

    std::vector<AddedToken> const& tokens() const { return tokens_; }
    AddedToken const* find(std::int32_t id) const {
        auto it = by_id_.find(id);
        return it == by_id_.end() ? nullptr : &tokens_[it->second];
    }
    /// The token's text as HF's id_to_token gives it: normalized tokens in their normalized form.
    std::string const* text(std::int32_t id) const {
        auto it = by_id_.find(id);
        return it == by_id_.end() ? nullptr : &texts_[it->second];
    }
    std::optional<std::int32_t> find(std::string_view content) const {
        auto it = by_content_.find(content);
        if (it == by_content_.end()) return std::nullopt;
        return it->second;
    }

    /// The text as pieces: added tokens carry their id, the rest is normalized.
    Pieces split(std::string_view text, Normalizer const* normalizer) const {
        Pieces pieces;
        split_on(raw_, Piece{std::string(text), -1, true}, pieces);
        Pieces out;
        out.reserve(pieces.size());
        for (auto& piece : pieces) {
            if (piece.token >= 0) {
                out.push_back(std::move(piece));
                continue;
            }
            if (normalizer) normalizer->normalize(piece);
            split_on(normalized_, std::move(piece), out);
        }
        return out;
    }

private:
    struct Pattern {
        std::string text;
        std::size_t token;  ///< index into tokens_
    };
    /// Patterns grouped by first byte, longest first: leftmost-longest matching like aho-corasick's LeftmostLongest.
    struct PatternSet {
        std::vector<Pattern> patterns;
        std::vector<std::vector<std::size_t>> by_first_byte;
        void index() {
            by_first_byte.assign(256, {});
            for (std::size_t i = 0; i < patterns.size(); ++i)
                by_first_byte[static_cast<unsigned char>(patterns[i].text.front())].push_back(i);
            for (auto& list : by_first_byte)
                std::stable_sort(list.begin(), list.end(), [&](std::size_t a, std::size_t b) {
                    return patterns[a].text.size() > patterns[b].text.size();
                });
        }
        /// (begin, end, token index) of the leftmost-longest match at or after `from`.
        std::optional<std::tuple<std::size_t, std::size_t, std::size_t>> next(std::string_view s,
                                                                              std::size_t from) const {
            for (std::size_t i = from; i < s.size(); ++i) {
                for (auto p : by_first_byte[static_cast<unsigned char>(s[i])]) {
                    auto const& text = patterns[p].text;
                    if (s.compare(i, text.size(), text) == 0) return std::tuple{i, i + text.size(), patterns[p].token};
                }
            }
            return std::nullopt;
        }
    };

    /// HF's \w$ and ^\w checks (Rust regex crate) around single_word tokens.
    static bool ends_with_word(std::string_view s) {
        if (s.empty()) return false;
        std::size_t start = s.size() - 1;
        while (start > 0 && utf8::detail::is_continuation(static_cast<unsigned char>(s[start]))) --start;
        return is_word_char(s, start);
    }
    static bool starts_with_word(std::string_view s) { return !s.empty() && is_word_char(s, 0); }
    /// Start of the whitespace run that ends `s` (s.size() when there is none).
    static std::size_t trailing_space_start(std::string_view s) {
        std::size_t last_space = s.size();
        std::size_t end = s.size();
        while (end > 0) {
            std::size_t start = end - 1;
            while (start > 0 && utf8::detail::is_continuation(static_cast<unsigned char>(s[start]))) --start;
            std::size_t n = 0;
            if (!is_whitespace(utf8::decode(s, start, n))) break;
            last_space = start;
            end = start;
        }
        return last_space;
    }
    /// Bytes of the whitespace run that starts `s`.
    static std::size_t leading_space_length(std::string_view s) {
        std::size_t i = 0;
        while (i < s.size()) {
            std::size_t n = 0;
            if (!is_whitespace(utf8::decode(s, i, n))) break;
            i += n;
        }
        return i;
    }

    /// HF's find_matches + split_with_indices on one piece.
    void split_on(PatternSet const& set, Piece piece, Pieces& out) const {
        if (set.patterns.empty() || piece.text.empty()) {
            if (!piece.text.empty()) out.push_back(std::move(piece));
            return;
        }
        std::string_view const s = piece.text;
        std::size_t start_offset = 0, search = 0;
        auto emit = [&](std::size_t begin, std::size_t end, std::int32_t token) {
            if (begin >= end) return;
            out.push_back({std::string(s.substr(begin, end - begin)), token, piece.at_origin && begin == 0});
        };
        while (auto match = set.next(s, search)) {
            auto [start, stop, index] = *match;
            search = stop;
            auto const& token = tokens_[index];
            if (token.single_word) {
                bool const start_space = start == 0 || !ends_with_word(s.substr(0, start));
                bool const stop_space = stop == s.size() || !starts_with_word(s.substr(stop));
                if (!start_space || !stop_space) continue;
            }
            if (token.lstrip) start = std::max(trailing_space_start(s.substr(0, start)), start_offset);
            if (token.rstrip) stop += leading_space_length(s.substr(stop));
            if (start_offset < start) emit(start_offset, start, -1);
            emit(start, stop, token.id);
            start_offset = stop;
        }
        if (start_offset < s.size()) emit(start_offset, s.size(), -1);
    }

    std::vector<AddedToken> tokens_;
    std::vector<std::string> texts_;  ///< per token: what id_to_token returns
    std::unordered_map<std::int32_t, std::size_t> by_id_;
    std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>> by_content_;
    PatternSet raw_, normalized_;
};

}  // namespace polyalpaca::tokenizer
