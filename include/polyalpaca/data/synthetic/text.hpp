/// @file data/synthetic/text.hpp
/// @brief Small text helpers of the synthetic suite: filling {name} placeholders, joining and splitting lists,
/// counting characters.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca::synthetic {

/// `pattern` with each {name} replaced by its value; a placeholder without a value is an Error.
inline std::string fill_template(std::string_view pattern,
                                 std::vector<std::pair<std::string_view, std::string>> const& values) {
    std::string out;
    std::size_t i = 0;
    while (i < pattern.size()) {
        auto const open = pattern.find('{', i);
        if (open == std::string_view::npos) break;
        auto const close = pattern.find('}', open);
        require(close != std::string_view::npos, "sentence template \"", pattern, "\": '{' is not closed");
        out.append(pattern.substr(i, open - i));
        auto const name = pattern.substr(open + 1, close - open - 1);
        bool found = false;
        for (auto const& [key, value] : values) {
            if (key != name) continue;
            out += value;
            found = true;
            break;
        }
        require(found, "sentence template \"", pattern, "\": no value for {", name, "}");
        i = close + 1;
    }
    out.append(pattern.substr(i));
    return out;
}

/// The items joined with `separator`.
template <class Items>
std::string join(Items const& items, std::string_view separator) {
    std::string out;
    for (auto const& item : items) {
        if (!out.empty()) out += separator;
        out += item;
    }
    return out;
}

/// `text` cut at each `separator` (the inverse of join; "" gives no items).
inline std::vector<std::string> split_list(std::string_view text, std::string_view separator) {
    std::vector<std::string> items;
    if (text.empty()) return items;
    for (;;) {
        auto const at = text.find(separator);
        items.emplace_back(text.substr(0, at));
        if (at == std::string_view::npos) break;
        text.remove_prefix(at + separator.size());
    }
    return items;
}

/// Number of Unicode characters (code points) in valid UTF-8 text: the bytes that do not continue a character.
inline std::size_t character_count(std::string_view text) {
    std::size_t n = 0;
    for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    return n;
}

}  // namespace polyalpaca::synthetic
