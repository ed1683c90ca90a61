/// @file tests/unit/data_readers.cpp
/// @brief Alpaca JSON and JSON Lines readers: records, ids, sources, every bad-record reason under both policies,
/// whole-file errors, and reading through a tiny buffer.

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "polyalpaca/data/alpaca.hpp"

using namespace polyalpaca;
using Catch::Matchers::Contains;

namespace {

ReadOptions skip_bad() {
    ReadOptions options;
    options.policy = BadRecordPolicy::Skip;
    return options;
}

/// A file in the temporary directory, removed when it goes out of scope.
struct TempFile {
    std::filesystem::path path;
    TempFile(std::string const& name, std::string const& text) {
        static std::atomic<int> counter{0};
        auto const dir = std::filesystem::temp_directory_path() /
                         ("polyalpaca_data_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::create_directories(dir);
        path = dir / name;
        std::ofstream(path, std::ios::binary) << text;
    }
    ~TempFile() { std::filesystem::remove_all(path.parent_path()); }
    std::string str() const { return path.string(); }
};

std::string error_of(auto&& run) {
    try {
        run();
    } catch (Error const& e) {
        return e.what();
    }
    return "no error";
}

std::string const good_a = R"({"instruction": "Add.", "input": "1 2", "output": "3"})";
std::string const good_b = R"({"instruction": "Greet.", "output": "Hello"})";

/// One bad record per reason, as JSON text, with a piece of the detail its rejection must carry.
struct BadCase {
    BadRecordReason reason;
    std::string text;
    std::string detail;
};
std::vector<BadCase> const bad_cases = {
    {BadRecordReason::MalformedJson, R"({"instruction": "a", "output": tru})", "invalid literal"},
    {BadRecordReason::MalformedJson, R"({"instruction": "a\ud800", "output": "b"})", "surrogate"},
    {BadRecordReason::NotAnObject, R"(["instruction", "output"])", "JSON array"},
    {BadRecordReason::NotAnObject, "42", "JSON number"},
    {BadRecordReason::MissingInstruction, R"({"prompt": "a", "output": "b"})", "the record has keys: prompt, output"},
    {BadRecordReason::InstructionNotString, R"({"instruction": 5, "output": "b"})", "\"instruction\" is a JSON number"},
    {BadRecordReason::MissingOutput, R"({"instruction": "a", "instances": []})", "keys: instruction, instances"},
    {BadRecordReason::OutputNotString, R"({"instruction": "a", "output": null})", "\"output\" is a JSON null"},
    {BadRecordReason::InputNotString, R"({"instruction": "a", "input": ["x"], "output": "b"})", "JSON array"},
    {BadRecordReason::BadId, R"({"id": 1.5, "instruction": "a", "output": "b"})", "JSON number: 1.5"},
    {BadRecordReason::InvalidUtf8, "{\"instruction\": \"a\", \"output\": \"b\xff\"}", "in the value of \"output\""},
    {BadRecordReason::InvalidUtf8, "{\"instr\xc3\x28\": \"a\", \"output\": \"b\"}", "in a key"},
    {BadRecordReason::EmptyOutput, R"({"instruction": "a", "output": ""})", "\"output\" is \"\""},
};

}  // namespace

TEST_CASE("a JSON array of records: fields, missing input, string and integer ids, sources, language") {
    TempFile file("de.json", "[\n" + good_a + ",\n" + good_b + R"(,
  {"id": 42, "instruction": "i", "input": "", "output": "o"},
  {"id": "rec-7", "instruction": "Übersetze.", "input": "x", "output": "y"},
  {"id": -3, "instruction": "i", "output": "o"}
])");
    DataReport report;
    auto const records = read_alpaca_json(file.path, {}, report);
    REQUIRE(records.size() == 5);
    CHECK(records[0].instruction == "Add.");
    CHECK(records[0].input == "1 2");
    CHECK(records[0].output == "3");
    CHECK(records[0].id == "0");
    CHECK(records[1].input.empty());
    CHECK(records[1].id == "1");
    CHECK(records[2].id == "42");
    CHECK(records[3].id == "rec-7");
    CHECK(records[3].instruction == "Übersetze.");
    CHECK(records[4].id == "-3");
    for (std::size_t i = 0; i < records.size(); ++i) {
        CHECK(records[i].lang == "de");
        CHECK(records[i].source == file.str() + ":[" + std::to_string(i) + "]");
    }
    CHECK(report.clean());
    REQUIRE(report.files().size() == 1);
    CHECK(report.files()[0].kept == 5);

    DataReport other;
    CHECK(read_alpaca_json(file.path, ReadOptions{"xx"}, other)[0].lang == "xx");
}

TEST_CASE("JSON Lines: blank lines, CRLF, a last line without newline, ids by record index, sources by line") {
    TempFile file("fr.jsonl", "\n" + good_a + "\r\n  \n\n" + good_b + "\n" +
                                  R"({"id": 9, "instruction": "i", "output": "o"})");
    DataReport report;
    auto const records = read_alpaca_jsonl(file.path, {}, report);
    REQUIRE(records.size() == 3);
    CHECK(records[0].source == file.str() + ":2");
    CHECK(records[1].source == file.str() + ":5");
    CHECK(records[2].source == file.str() + ":6");
    CHECK(records[0].id == "0");
    CHECK(records[1].id == "1");
    CHECK(records[2].id == "9");
    CHECK(records[0].input == "1 2");
    CHECK(records[1].input.empty());
    CHECK(records[2].lang == "fr");
    CHECK(report.files()[0].blank_lines == 3);
    CHECK(report.files()[0].kept == 3);
    CHECK(report.skipped_count() == 0);
}

TEST_CASE("read_alpaca tells a JSON array from JSON Lines by content, not extension") {
    TempFile lines("zh.json", good_a + "\n" + good_b + "\n");
    TempFile array("en.jsonl", "\xEF\xBB\xBF  [" + good_a + "]");
    CHECK(detect_record_format(lines.path) == RecordFormat::JsonLines);
    CHECK(detect_record_format(array.path) == RecordFormat::JsonArray);
    DataReport report;
    CHECK(read_alpaca(lines.path, {}, report).size() == 2);
    CHECK(read_alpaca(array.path, {}, report).size() == 1);
    TempFile neither("x.json", "  \"just a string\"");
    CHECK_THAT(error_of([&] { read_alpaca(neither.path, {}, report); }),
               Contains("neither a JSON array") && Contains("byte offset 2"));
    TempFile empty("e.json", " \n");
    CHECK_THAT(error_of([&] { read_alpaca(empty.path, {}, report); }), Contains("empty file"));
    CHECK_THAT(error_of([&] { read_alpaca("/nonexistent/dir/x.json", {}, report); }),
               Contains("/nonexistent/dir/x.json: cannot open"));
    CHECK_THAT(error_of([&] { read_alpaca_jsonl(empty.path.parent_path(), {}, report); }),
               Contains(empty.path.parent_path().string() + ": read error at byte offset 0"));
}

TEST_CASE("every bad-record reason in a JSON array: Fail names file, [index] and reason; Skip lists it") {
    for (auto const& bad : bad_cases) {
        INFO(bad.text);
        TempFile file("en.json", "[" + good_a + ",\n  " + bad.text + ",\n" + good_b + "]");
        DataReport fail_report;
        auto const message = error_of([&] { read_alpaca_json(file.path, {}, fail_report); });
        CHECK_THAT(message, Contains(file.str() + ":[1]: " + std::string(reason_name(bad.reason))) &&
                                Contains(bad.detail) && Contains("line 2"));

        DataReport report;
        auto const records = read_alpaca_json(file.path, skip_bad(), report);
        REQUIRE(records.size() == 2);
        CHECK(records[1].output == "Hello");
        CHECK(records[1].id == "2");  // ids stay the element index, so parallel files stay aligned
        REQUIRE(report.skipped().size() == 1);
        CHECK(report.skipped()[0].source == file.str() + ":[1]");
        CHECK(report.skipped()[0].reason == bad.reason);
        CHECK_THAT(report.skipped()[0].detail, Contains(bad.detail));
        CHECK(report.skipped_count(bad.reason) == 1);
        CHECK(report.files()[0].kept == 2);
        CHECK(report.files()[0].skipped == 1);
    }
}

TEST_CASE("every bad-record reason in JSON Lines: Fail names file:line and reason; Skip lists it") {
    for (auto const& bad : bad_cases) {
        INFO(bad.text);
        TempFile file("en.jsonl", good_a + "\n\n" + bad.text + "\n" + good_b);
        DataReport fail_report;
        CHECK_THAT(error_of([&] { read_alpaca_jsonl(file.path, {}, fail_report); }),
                   Contains(file.str() + ":3: " + std::string(reason_name(bad.reason))) && Contains(bad.detail));

        DataReport report;
        auto const records = read_alpaca_jsonl(file.path, skip_bad(), report);
        REQUIRE(records.size() == 2);
        CHECK(records[1].id == "2");
        REQUIRE(report.skipped().size() == 1);
        CHECK(report.skipped()[0].source == file.str() + ":3");
        CHECK(report.skipped()[0].reason == bad.reason);
        CHECK(report.skipped_count(bad.reason) == 1);
    }
}

TEST_CASE("invalid UTF-8 is located by file byte offset and field") {
    std::string const bad = "{\"instruction\": \"a\", \"input\": \"\xe2\x82\", \"output\": \"b\"}";
    auto const at = bad.find('\xe2');
    std::string const text = "[" + good_a + ", " + bad + "]";
    DataReport report;
    auto const message = error_of([&] { parse_alpaca(text, "mem.json", RecordFormat::JsonArray, {}, report); });
    auto const offset = 1 + good_a.size() + 2 + at;
    CHECK_THAT(message, Contains("mem.json:[1]: invalid UTF-8: byte 0xE2 at byte offset " + std::to_string(offset) +
                                 " in the value of \"input\""));
}

TEST_CASE("records nested absurdly deep are rejected before parsing") {
    std::string deep = R"({"instruction": "a", "output": "b", "x": )" + std::string(100000, '[') +
                       std::string(100000, ']') + "}";
    DataReport report;
    auto const records =
        parse_alpaca(deep + "\n" + good_b, "deep.jsonl", RecordFormat::JsonLines, skip_bad(), report);
    CHECK(records.size() == 1);
    REQUIRE(report.skipped_count(BadRecordReason::MalformedJson) == 1);
    CHECK_THAT(report.skipped()[0].detail, Contains("nested 100001 deep"));
}

TEST_CASE("a JSON file that is not a well-formed array is an Error naming the byte offset, even under Skip") {
    ReadOptions const skip = skip_bad();
    struct Broken {
        std::string text, expected;
    };
    std::vector<Broken> const cases = {
        {"[" + good_a, "unterminated JSON array: the file ends at byte offset " + std::to_string(1 + good_a.size()) +
                           " without the closing ']' (elements read: 1)"},
        {"[" + good_a + ",\n " + good_b.substr(0, 20),
         "the file ends at byte offset " + std::to_string(1 + good_a.size() + 3 + 20) +
             " inside element [1], which starts at byte offset " + std::to_string(1 + good_a.size() + 3) + " (line 2)"},
        {"[" + good_a + " " + good_b + "]",
         "expected ',' or ']' after element [0] at byte offset " + std::to_string(2 + good_a.size()) + ", found '{'"},
        {"[" + good_a + ",]", "is followed by ']' at byte offset " + std::to_string(2 + good_a.size())},
        {"[" + good_a + "] x", "unexpected 'x' at byte offset " + std::to_string(3 + good_a.size())},
        {"[{\"instruction\": [\"a\"}]", "mismatched '}' at byte offset 21 inside element [0]"},
        {good_a + "\n" + good_b, "not a JSON array: expected '[' at byte offset 0 (line 1), found '{' (a JSON Lines"},
        {"", "empty file"},
    };
    for (auto const& broken : cases) {
        INFO(broken.text);
        TempFile file("broken.json", broken.text);
        DataReport report;
        CHECK_THAT(error_of([&] { read_alpaca_json(file.path, skip, report); }),
                   Contains(file.str() + ": ") && Contains(broken.expected));
    }
}

TEST_CASE("reading through a buffer of a few bytes gives the records read from memory") {
    std::string text = "[\n";
    for (int i = 0; i < 40; ++i) {
        text += (i ? ",\n" : "") + std::string(R"({"instruction": "i)") + std::to_string(i) +
                R"( \"q\" [x]", "input": "{\\}", "output": "Жё)" + std::string(std::size_t(i), 'z') + "\"}";
    }
    text += "\n]\n";
    TempFile file("ru.json", text);
    DataReport memory_report;
    auto const expected = parse_alpaca(text, file.str(), RecordFormat::JsonArray, {}, memory_report);
    REQUIRE(expected.size() == 40);
    CHECK(expected[3].instruction == "i3 \"q\" [x]");
    CHECK(expected[3].input == "{\\}");
    for (std::size_t buffer : {1, 2, 3, 7, 64}) {
        data_detail::ByteReader reader(file.path, buffer);
        DataReport report;
        auto const records = data_detail::read_json_array(reader, {}, report);
        REQUIRE(records.size() == expected.size());
        for (std::size_t i = 0; i < records.size(); ++i) {
            CHECK(records[i].instruction == expected[i].instruction);
            CHECK(records[i].output == expected[i].output);
            CHECK(records[i].source == expected[i].source);
        }
    }
}

TEST_CASE("the report counts per reason and per file and writes one line per skipped record") {
    TempFile a("a.jsonl", good_a + "\n" + R"({"instruction": "x", "output": ""})" + "\n" + R"({"output": "y"})" + "\n");
    TempFile b("b.json", "[" + good_a + ", {\"instruction\": \"x\", \"output\": \"\"}]");
    DataReport report;
    ReadOptions const skip = skip_bad();
    read_alpaca(a.path, skip, report);
    read_alpaca(b.path, skip, report);
    CHECK(report.kept_count() == 2);
    CHECK(report.skipped_count() == 3);
    CHECK(report.skipped_count(BadRecordReason::EmptyOutput) == 2);
    CHECK(report.skipped_count(BadRecordReason::MissingInstruction) == 1);
    CHECK(report.files()[0].skipped == 2);
    CHECK(report.files()[1].skipped == 1);
    auto const summary = report.summary();
    CHECK_THAT(summary, Contains(a.str() + ": 1 records kept, 2 skipped"));
    CHECK_THAT(summary, Contains("skipped records: 3 (missing instruction: 1, empty output: 2)"));
    std::ostringstream log;
    report.write(log);
    CHECK_THAT(log.str(), Contains("skipped " + a.str() + ":2: empty output: \"output\" is \"\""));
    CHECK_THAT(log.str(), Contains("skipped " + a.str() + ":3: missing instruction: the record has keys: output"));
    CHECK_THAT(log.str(), Contains("skipped " + b.str() + ":[1]: empty output"));
}
