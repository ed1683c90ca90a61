/// @file data/alpaca_record.hpp
/// @brief One Alpaca record from the JSON text of one array element or one JSON Lines line, or why it is rejected.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "polyalpaca/core/excerpt.hpp"
#include "polyalpaca/data/json_array_scanner.hpp"
#include "polyalpaca/data/record.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::data_detail {

/// Records are flat objects; anything nested deeper than this is rejected before it reaches the JSON parser.
inline constexpr std::size_t max_record_nesting = 64;

/// Deepest bracket nesting of `text` outside strings.
inline std::size_t json_nesting_depth(std::string_view text) {
    std::size_t depth = 0, deepest = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            deepest = std::max(deepest, ++depth);
        } else if ((c == '}' || c == ']') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

using polyalpaca::excerpt;  // messages quote excerpts (core/excerpt.hpp)

/// Where byte `bad` of an object's text lies: in a key, in the value of a named key, or outside strings.
inline std::string place_in_object(std::string_view text, std::size_t bad) {
    auto const string_end = [text](std::size_t open) {  // the quote that closes the string opened at `open`
        for (std::size_t i = open + 1; i < text.size(); ++i) {
            if (text[i] == '\\') ++i;
            else if (text[i] == '"') return i;
        }
        return text.size();
    };
    auto const is_key = [text](std::size_t close) {
        auto const after = text.find_first_not_of(" \t\r\n", close + 1);
        return after != std::string_view::npos && text[after] == ':';
    };
    std::size_t depth = 0;
    std::string_view key;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char const c = text[i];
        if (c == '"') {
            auto const close = string_end(i);
            bool const key_here = depth == 1 && close < text.size() && is_key(close);
            if (bad > i && bad <= close) {
                if (key_here) return "in a key";
                return key.empty() ? std::string("in a string") : "in the value of \"" + excerpt(key) + "\"";
            }
            if (key_here) key = text.substr(i + 1, close - i - 1);
            i = close;
            continue;
        }
        if (i == bad) return "outside any string";
        if (c == '{' || c == '[') ++depth;
        else if ((c == '}' || c == ']') && depth > 0) --depth;
    }
    return "in the record";
}

/// Why a record's text was rejected.
struct RecordRejection {
    BadRecordReason reason;
    std::string detail;
};

/// The record in `text` (element `index` of its file, starting at byte `file_offset`), or why it is rejected.
/// Checks, in order: nesting, JSON syntax and UTF-8, an object, instruction, output, input, id, output not empty.
/// `source` of the record is left for the reader to fill in.
inline std::variant<Record, RecordRejection> parse_alpaca_record(std::string_view text, std::size_t index,
                                                                 std::uint64_t file_offset, std::string const& lang) {
    using json = nlohmann::ordered_json;  // keys in file order, for messages
    namespace utf8 = tokenizer::utf8;
    auto reject = [](BadRecordReason reason, auto const&... parts) {
        return RecordRejection{reason, polyalpaca::detail::concat(parts...)};
    };
    if (auto const depth = json_nesting_depth(text); depth > max_record_nesting)
        return reject(BadRecordReason::MalformedJson, "nested ", depth, " deep (a record is a flat object)");
    json value;
    try {
        value = json::parse(text.data(), text.data() + text.size());
    } catch (json::exception const& e) {
        // The parser checks UTF-8 too; find the bad byte to say where it is.
        if (auto const bad = utf8::first_invalid(text); bad != std::string_view::npos) {
            return reject(BadRecordReason::InvalidUtf8, describe_byte(static_cast<unsigned char>(text[bad])),
                          " at byte offset ", file_offset + bad, " ", place_in_object(text, bad));
        }
        return reject(BadRecordReason::MalformedJson, json_error_text(e.what()),
                      " (in the record's text, which starts at byte offset ", file_offset, ")");
    }
    if (!value.is_object()) return reject(BadRecordReason::NotAnObject, "it is a JSON ", value.type_name());

    auto keys = [&value] {
        if (value.empty()) return std::string("the record is an empty object");
        std::string out = "the record has keys: ";
        std::size_t n = 0;
        for (auto const& item : value.items()) {
            if (n++ == 12) return out + ", ...";
            out += (n > 1 ? ", " : "") + excerpt(item.key());
        }
        return out;
    };
    Record record;
    auto const instruction = value.find("instruction");
    if (instruction == value.end()) return reject(BadRecordReason::MissingInstruction, keys());
    if (!instruction->is_string())
        return reject(BadRecordReason::InstructionNotString, "\"instruction\" is a JSON ", instruction->type_name());
    auto const output = value.find("output");
    if (output == value.end()) return reject(BadRecordReason::MissingOutput, keys());
    if (!output->is_string())
        return reject(BadRecordReason::OutputNotString, "\"output\" is a JSON ", output->type_name());
    if (auto const input = value.find("input"); input != value.end()) {
        if (!input->is_string()) return reject(BadRecordReason::InputNotString, "\"input\" is a JSON ", input->type_name());
        record.input = std::move(input->get_ref<std::string&>());
    }
    if (auto const id = value.find("id"); id == value.end()) {
        record.id = std::to_string(index);
    } else if (id->is_string()) {
        record.id = std::move(id->get_ref<std::string&>());
    } else if (id->is_number_integer()) {
        record.id = id->dump();
    } else {
        return reject(BadRecordReason::BadId, "\"id\" is a JSON ", id->type_name(), ": ", excerpt(id->dump()));
    }
    if (output->get_ref<std::string const&>().empty())
        return reject(BadRecordReason::EmptyOutput, "\"output\" is \"\"");
    record.instruction = std::move(instruction->get_ref<std::string&>());
    record.output = std::move(output->get_ref<std::string&>());
    record.lang = lang;
    return record;
}

}  // namespace polyalpaca::data_detail
