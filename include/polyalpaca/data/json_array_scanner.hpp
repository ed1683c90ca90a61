/// @file data/json_array_scanner.hpp
/// @brief Splits a top-level JSON array into the texts of its elements, one at a time, without parsing them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/data/byte_reader.hpp"

namespace polyalpaca::data_detail {

inline bool is_json_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/// "'x'" for printable ASCII, "byte 0xNN" otherwise, "the end of the file" for -1.
inline std::string describe_byte(int c) {
    if (c < 0) return "the end of the file";
    if (c >= 0x20 && c < 0x7F) return std::string("'") + char(c) + "'";
    static constexpr char hex[] = "0123456789ABCDEF";
    return std::string("byte 0x") + hex[c >> 4] + hex[c & 15];
}

/// Skips a UTF-8 byte order mark at the very start of the input.
inline void skip_byte_order_mark(ByteReader& reader) {
    if (reader.offset() != 0 || reader.peek() != 0xEF) return;
    reader.get();
    if (reader.get() != 0xBB || reader.get() != 0xBF)
        fail(reader.origin(), ": byte offset 0: the file starts with byte 0xEF but not with a UTF-8 byte order mark");
}

/// Walks the array's structure only: strings (with escapes) and matching brackets. An element's content is not
/// checked here, so a record with bad JSON inside balanced brackets is reported alone; what breaks the array itself
/// (no '[', a missing ',' between elements, mismatched brackets, the file ending early, bytes after ']') is an
/// Error naming the byte offset.
class JsonArrayScanner {
public:
    /// Reads up to and including the opening '['.
    explicit JsonArrayScanner(ByteReader& reader) : reader_(reader) {
        skip_byte_order_mark(reader_);
        skip_space();
        int const c = reader_.peek();
        if (c < 0) fail(reader_.origin(), ": empty file: expected a JSON array of records");
        if (c != '[') {
            fail(reader_.origin(), ": not a JSON array: expected '[' at byte offset ", reader_.offset(), " (line ",
                 reader_.line(), "), found ", describe_byte(c),
                 c == '{' ? " (a JSON Lines file, one record per line? read it as JSON Lines)" : "");
        }
        reader_.get();
    }

    /// The next element's text into `text`; false once the closing ']' is read (only whitespace may follow it).
    bool next(std::string& text) {
        if (done_) return false;
        skip_space();
        if (count_ > 0) {
            auto const at = reader_.offset();
            int const c = reader_.get();
            if (c == ']') return finish();
            if (c < 0) unterminated();
            if (c != ',') {
                fail(reader_.origin(), ": broken JSON array: expected ',' or ']' after element [", count_ - 1,
                     "] at byte offset ", at, ", found ", describe_byte(c));
            }
            skip_space();
            if (reader_.peek() == ']') {
                fail(reader_.origin(), ": broken JSON array: a ',' after element [", count_ - 1,
                     "] is followed by ']' at byte offset ", reader_.offset(), " (a trailing comma)");
            }
        } else if (reader_.peek() == ']') {
            reader_.get();
            return finish();
        }
        if (reader_.peek() < 0) unterminated();
        element_offset_ = reader_.offset();
        element_line_ = reader_.line();
        in_element_ = true;
        read_value(text);
        in_element_ = false;
        ++count_;
        return true;
    }

    /// Index of the element last returned by next().
    std::size_t index() const { return count_ - 1; }
    /// Byte offset and line where that element starts.
    std::uint64_t element_offset() const { return element_offset_; }
    std::uint64_t element_line() const { return element_line_; }

private:
    void skip_space() {
        while (is_json_space(reader_.peek())) reader_.get();
    }

    bool finish() {
        done_ = true;
        skip_space();
        if (int const c = reader_.peek(); c >= 0) {
            fail(reader_.origin(), ": unexpected ", describe_byte(c), " at byte offset ", reader_.offset(),
                 " after the array's closing ']'");
        }
        return false;
    }

    [[noreturn]] void unterminated() const {
        if (in_element_) {
            fail(reader_.origin(), ": unterminated JSON array: the file ends at byte offset ", reader_.offset(),
                 " inside element [", count_, "], which starts at byte offset ", element_offset_, " (line ",
                 element_line_, ")");
        }
        fail(reader_.origin(), ": unterminated JSON array: the file ends at byte offset ", reader_.offset(),
             " without the closing ']' (elements read: ", count_, ")");
    }

    void read_value(std::string& text) {
        text.clear();
        int c = reader_.peek();
        if (c != '{' && c != '[' && c != '"') {  // a bare scalar: its own parse reports what is wrong with it
            while ((c = reader_.peek()) >= 0 && c != ',' && c != ']' && !is_json_space(c)) text += char(reader_.get());
            if (c < 0) unterminated();
            return;
        }
        closers_.clear();
        bool in_string = false, escaped = false;
        for (;;) {
            auto const chunk = reader_.available();
            if (chunk.empty()) unterminated();
            auto const end = scan(chunk, in_string, escaped);
            text.append(chunk.substr(0, std::min(end, chunk.size())));
            reader_.consume(std::min(end, chunk.size()));
            if (end <= chunk.size()) return;
        }
    }

    /// Walks `chunk` from the state (in_string, escaped, closers_); returns one past the byte that closes the
    /// element, or chunk.size() + 1 when the element goes on past the chunk.
    std::size_t scan(std::string_view chunk, bool& in_string, bool& escaped) {
        for (std::size_t i = 0; i < chunk.size(); ++i) {
            char const c = chunk[i];
            if (in_string) {
                if (escaped) {
                    escaped = false;
                } else if (c == '\\') {
                    escaped = true;
                } else if (c == '"') {
                    in_string = false;
                    if (closers_.empty()) return i + 1;
                }
            } else if (c == '"') {
                in_string = true;
            } else if (c == '{') {
                closers_ += '}';
            } else if (c == '[') {
                closers_ += ']';
            } else if (c == '}' || c == ']') {
                if (closers_.empty() || closers_.back() != c) {
                    fail(reader_.origin(), ": broken JSON array: mismatched '", c, "' at byte offset ",
                         reader_.offset() + i, " inside element [", count_, "], which starts at byte offset ",
                         element_offset_, " (line ", element_line_, ")");
                }
                closers_.pop_back();
                if (closers_.empty()) return i + 1;
            }
        }
        return chunk.size() + 1;
    }

    ByteReader& reader_;
    std::string closers_;
    std::size_t count_ = 0;
    bool done_ = false;
    bool in_element_ = false;
    std::uint64_t element_offset_ = 0;
    std::uint64_t element_line_ = 0;
};

}  // namespace polyalpaca::data_detail
