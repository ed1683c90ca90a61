/// @file data/special_layout.hpp
/// @brief Which special tokens a tokenizer puts before and after a text's own tokens, and its EOS id.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca {

/// encode(text, true) == prefix + encode(text, false) + suffix (BOS first for LLaMA; nothing for BLOOM and
/// GPT-NeoX). HF truncation cuts the text's own tokens and keeps these.
struct SpecialLayout {
    std::vector<std::int32_t> prefix, suffix;

    /// The prefix and suffix sizes of `ids` (an encode(text, true) result); Error naming `source` when they differ
    /// from the layout.
    std::pair<std::size_t, std::size_t> split(std::vector<std::int32_t> const& ids, std::string const& source) const {
        bool const fits = ids.size() >= prefix.size() + suffix.size() &&
                          std::equal(prefix.begin(), prefix.end(), ids.begin()) &&
                          std::equal(suffix.rbegin(), suffix.rend(), ids.rbegin());
        require(fits, source, ": the tokenizer's special tokens around this text differ from those around other text "
                "(", prefix.size(), " before, ", suffix.size(), " after)");
        return {prefix.size(), suffix.size()};
    }
};

/// The layout of `tokenizer`, found by encoding a probe text with and without special tokens.
template <class Tokenizer>
SpecialLayout special_layout_of(Tokenizer const& tokenizer) {
    auto const plain = tokenizer.encode("a", false);
    auto const with = tokenizer.encode("a", true);
    require(!plain.empty(), "the tokenizer encodes \"a\" to no tokens");
    auto const at = std::search(with.begin(), with.end(), plain.begin(), plain.end());
    require(at != with.end(), "the tokenizer's encode(text, true) is not encode(text, false) with special tokens "
            "around it");
    return {std::vector<std::int32_t>(with.begin(), at), std::vector<std::int32_t>(at + std::ptrdiff_t(plain.size()), with.end())};
}

namespace data_detail {

/// The tokenizer's EOS id, whether eos_id() returns an integer or an optional one (Error when it has none).
template <class Tokenizer>
std::int32_t eos_id_of(Tokenizer const& tokenizer) {
    auto const eos = tokenizer.eos_id();
    if constexpr (std::is_integral_v<std::remove_cv_t<decltype(eos)>>) {
        return std::int32_t(eos);
    } else {
        require(eos.has_value(), "the tokenizer has no EOS token, which the training examples end with");
        return std::int32_t(*eos);
    }
}

}  // namespace data_detail

}  // namespace polyalpaca
