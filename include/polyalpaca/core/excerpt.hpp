/// @file core/excerpt.hpp
/// @brief Short excerpts of untrusted input for error messages: a message quotes a few dozen bytes of what it
///        read, never a whole line, key or name (which may be megabytes long or hold control characters).
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

namespace polyalpaca {

/// At most `max_bytes` of UTF-8 `s`, cut at a character boundary, with "..." when cut.
inline std::string excerpt(std::string_view s, std::size_t max_bytes = 40) {
    if (s.size() <= max_bytes) return std::string(s);
    std::size_t cut = max_bytes;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    return std::string(s.substr(0, cut)) + "...";
}

/// excerpt() with control bytes shown as \n, \t, \r or \xNN: a name read from a binary file, fit for one line.
inline std::string printable_excerpt(std::string_view s, std::size_t max_bytes = 60) {
    std::string out;
    for (char const c : excerpt(s, max_bytes)) {
        auto const u = static_cast<unsigned char>(c);
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '\r') out += "\\r";
        else if (u < 0x20 || u == 0x7f) {
            char code[5];
            std::snprintf(code, sizeof code, "\\x%02x", u);
            out += code;
        } else {
            out += c;
        }
    }
    return out;
}

/// nlohmann-json's what() for a message: without its "[json.exception.parse_error.101] " tag, and with the input
/// it quotes after "last read: '" (the whole token read so far: a 50 MB unterminated string) cut to an excerpt.
inline std::string json_error_text(std::string_view what) {
    if (what.starts_with("[json.exception.")) {
        if (auto const tag_end = what.find("] "); tag_end != std::string_view::npos) what.remove_prefix(tag_end + 2);
    }
    constexpr std::string_view quoted = "last read: '";
    auto const start = what.find(quoted);
    if (start == std::string_view::npos) return excerpt(what, 400);
    auto const body = start + quoted.size();
    auto end = what.rfind("'; expected ");  // the parser may add what it expected after the quote
    if (end == std::string_view::npos || end < body) end = what.rfind('\'');
    if (end == std::string_view::npos || end < body) end = what.size();
    return std::string(what.substr(0, body)) + printable_excerpt(what.substr(body, end - body)) +
           std::string(what.substr(end));
}

}  // namespace polyalpaca
