/// @file tokenizer/normalizers.hpp
/// @brief HF tokenizers' normalizers that BLOOM- and LLaMA-style tokenizer.json files use.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/tokenizer/pieces.hpp"
#include "polyalpaca/tokenizer/regex.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::tokenizer {

/// Rewrites the text of a piece (HF's Normalizer::normalize on one NormalizedString).
class Normalizer {
public:
    virtual ~Normalizer() = default;
    virtual void normalize(Piece& piece) const = 0;

    std::string normalized(std::string_view text) const {
        Piece piece{std::string(text), -1, false};
        normalize(piece);
        return std::move(piece.text);
    }
};

class SequenceNormalizer final : public Normalizer {
public:
    explicit SequenceNormalizer(std::vector<std::shared_ptr<Normalizer const>> steps) : steps_(std::move(steps)) {}
    void normalize(Piece& piece) const override {
        for (auto const& step : steps_) step->normalize(piece);
    }

private:
    std::vector<std::shared_ptr<Normalizer const>> steps_;
};

/// Puts `prefix` in front of a non-empty text.
class PrependNormalizer final : public Normalizer {
public:
    explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
    void normalize(Piece& piece) const override {
        if (!piece.text.empty()) piece.text.insert(0, prefix_);
    }

private:
    std::string prefix_;
};

/// Replaces every match of a literal or a regex with `content`.
class ReplaceNormalizer final : public Normalizer {
public:
    ReplaceNormalizer(Regex pattern, std::string content)
        : pattern_(std::move(pattern)), content_(std::move(content)) {}
    void normalize(Piece& piece) const override {
        auto const matches = pattern_.find_all(piece.text);
        if (matches.empty()) return;
        std::string out;
        out.reserve(piece.text.size());
        std::size_t previous = 0;
        for (auto const& [begin, end] : matches) {
            out.append(piece.text, previous, begin - previous);
            out += content_;
            previous = end;
        }
        out.append(piece.text, previous, std::string::npos);
        if (piece.at_origin && !matches.empty() && matches.front().first == 0 && content_.empty() &&
            matches.front().second > 0)
            piece.at_origin = false;  // the first original character is gone
        piece.text = std::move(out);
    }

private:
    Regex pattern_;
    std::string content_;
};

/// Removes leading and/or trailing whitespace (char::is_whitespace).
class StripNormalizer final : public Normalizer {
public:
    StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
    void normalize(Piece& piece) const override {
        auto const& s = piece.text;
        std::size_t begin = 0, end = s.size();
        if (left_) {
            while (begin < end) {
                std::size_t n = 0;
                if (!is_whitespace(utf8::decode(s, begin, n))) break;
                begin += n;
            }
        }
        if (right_) {
            while (end > begin) {
                std::size_t start = end - 1;
                while (start > begin && utf8::detail::is_continuation(static_cast<unsigned char>(s[start]))) --start;
                std::size_t n = 0;
                if (!is_whitespace(utf8::decode(s, start, n))) break;
                end = start;
            }
        }
        if (begin > 0) piece.at_origin = false;
        piece.text = s.substr(begin, end - begin);
    }

private:
    bool left_, right_;
};

}  // namespace polyalpaca::tokenizer
