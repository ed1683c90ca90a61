/// @file data/alpaca.hpp
/// @brief Streaming readers of Alpaca records: a JSON array of objects, or JSON Lines (one object per line).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/data/alpaca_record.hpp"
#include "polyalpaca/data/bad_records.hpp"
#include "polyalpaca/data/byte_reader.hpp"
#include "polyalpaca/data/json_array_scanner.hpp"
#include "polyalpaca/data/record.hpp"

namespace polyalpaca {

/// How to read a file of records.
struct ReadOptions {
    std::string lang;  ///< language of the records; "" takes the file's stem ("data/fr.json" -> "fr")
    BadRecordPolicy policy = BadRecordPolicy::Fail;
};

/// The two layouts: `[{...}, {...}]` and one `{...}` per line.
enum class RecordFormat { JsonArray, JsonLines };

namespace data_detail {

inline std::string lang_for(std::string const& origin, ReadOptions const& options) {
    return options.lang.empty() ? std::filesystem::path(origin).stem().string() : options.lang;
}

/// Parses one record's text; keeps it, or hands it to the policy.
inline void take_record(std::string_view text, std::size_t index, std::uint64_t offset, std::string source,
                        std::string const& detail_suffix, std::string const& lang, ReadOptions const& options,
                        DataReport& report, std::vector<Record>& out) {
    auto parsed = parse_alpaca_record(text, index, offset, lang);
    if (auto* rejected = std::get_if<RecordRejection>(&parsed)) {
        reject_record(options.policy, report, std::move(source), rejected->reason, rejected->detail + detail_suffix);
        return;
    }
    auto& record = std::get<Record>(parsed);
    record.source = std::move(source);
    out.push_back(std::move(record));
    report.count_kept();
}

inline std::vector<Record> read_json_array(ByteReader& reader, ReadOptions const& options, DataReport& report) {
    auto const& origin = reader.origin();
    auto const lang = lang_for(origin, options);
    report.begin_file(origin);
    JsonArrayScanner scanner(reader);
    std::vector<Record> records;
    std::string text;
    while (scanner.next(text)) {
        auto const index = scanner.index();
        take_record(text, index, scanner.element_offset(), detail::concat(origin, ":[", index, "]"),
                    detail::concat(" (element starting on line ", scanner.element_line(), ")"), lang, options, report,
                    records);
    }
    return records;
}

inline std::vector<Record> read_json_lines(ByteReader& reader, ReadOptions const& options, DataReport& report) {
    auto const& origin = reader.origin();
    auto const lang = lang_for(origin, options);
    report.begin_file(origin);
    skip_byte_order_mark(reader);
    std::vector<Record> records;
    std::string line;
    std::size_t index = 0;
    for (;;) {
        auto const offset = reader.offset();
        auto const line_number = reader.line();
        if (!reader.read_line(line)) break;
        if (line.find_first_not_of(" \t\r") == std::string::npos) {
            report.count_blank_line();
            continue;
        }
        take_record(line, index++, offset, detail::concat(origin, ":", line_number), "", lang, options, report,
                    records);
    }
    return records;
}

/// '[' starts a JSON array, '{' a JSON Lines file (after an optional byte order mark and whitespace).
inline RecordFormat sniff_format(ByteReader& reader) {
    skip_byte_order_mark(reader);
    while (is_json_space(reader.peek())) reader.get();
    int const c = reader.peek();
    if (c == '[') return RecordFormat::JsonArray;
    if (c == '{') return RecordFormat::JsonLines;
    if (c < 0) fail(reader.origin(), ": empty file: expected a JSON array of records or JSON Lines");
    fail(reader.origin(), ": neither a JSON array of records nor JSON Lines: expected '[' or '{' at byte offset ",
         reader.offset(), " (line ", reader.line(), "), found ", describe_byte(c));
}

inline std::vector<Record> read_records(ByteReader& reader, RecordFormat format, ReadOptions const& options,
                                        DataReport& report) {
    return format == RecordFormat::JsonArray ? read_json_array(reader, options, report)
                                             : read_json_lines(reader, options, report);
}

}  // namespace data_detail

/// Records of an Alpaca JSON file (a top-level array of objects), read in chunks: memory holds the records, not the
/// file's text or a parse tree of it. Bad records follow `options.policy` (sources "file:[index]"); a file that
/// is not a well-formed array (unterminated, missing ',', bytes after ']') is always an Error naming the byte offset.
inline std::vector<Record> read_alpaca_json(std::filesystem::path const& path, ReadOptions const& options,
                                            DataReport& report) {
    data_detail::ByteReader reader(path);
    return data_detail::read_json_array(reader, options, report);
}

/// Records of a JSON Lines file: one object per line; blank lines are counted, not records; the last line may lack
/// its newline. Bad records follow `options.policy` (sources "file:line", 1-based).
inline std::vector<Record> read_alpaca_jsonl(std::filesystem::path const& path, ReadOptions const& options,
                                             DataReport& report) {
    data_detail::ByteReader reader(path);
    return data_detail::read_json_lines(reader, options, report);
}

/// Which layout `path` has, from its first byte that is not whitespace.
inline RecordFormat detect_record_format(std::filesystem::path const& path) {
    data_detail::ByteReader reader(path, 4096);
    return data_detail::sniff_format(reader);
}

/// A JSON array or a JSON Lines file, whichever `path` holds (whatever its extension says).
inline std::vector<Record> read_alpaca(std::filesystem::path const& path, ReadOptions const& options,
                                       DataReport& report) {
    auto const format = detect_record_format(path);
    data_detail::ByteReader reader(path);
    return data_detail::read_records(reader, format, options, report);
}

/// The same readers over text in memory; `origin` names it in sources and messages.
inline std::vector<Record> parse_alpaca(std::string_view text, std::string const& origin, RecordFormat format,
                                        ReadOptions const& options, DataReport& report) {
    data_detail::ByteReader reader(text, origin);
    return data_detail::read_records(reader, format, options, report);
}

}  // namespace polyalpaca
