/// @file data/python_text.hpp
/// @brief Python's str.isspace() and str.strip() on UTF-8 text, as the reference scripts apply them.
#pragma once

#include <cstddef>
#include <string_view>

#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::data_detail {

/// Python's str.isspace() for one code point (Unicode White_Space plus the ASCII separators 0x1C..0x1F).
constexpr bool is_python_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/// `text` without leading and trailing Python whitespace. Bytes that are not valid UTF-8 count as non-space.
inline std::string_view python_strip(std::string_view text) {
    namespace utf8 = tokenizer::utf8;
    std::size_t begin = 0;
    while (begin < text.size()) {
        auto const n = utf8::sequence_length(text, begin);
        std::size_t length = 0;
        if (n == 0 || !is_python_space(utf8::decode(text, begin, length))) break;
        begin += n;
    }
    std::size_t end = text.size();
    while (end > begin) {
        std::size_t start = end - 1;
        while (start > begin && end - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        auto const n = utf8::sequence_length(text, start);
        std::size_t length = 0;
        if (n != end - start || !is_python_space(utf8::decode(text, start, length))) break;
        end = start;
    }
    return text.substr(begin, end - begin);
}

}  // namespace polyalpaca::data_detail
