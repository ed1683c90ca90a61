/// @file tests/unit/eval_test_sets.cpp
/// @brief Test sets (test_<lang>.jsonl): prompts and ids, the language from the file name, a directory of sets, and
///        bad lines under both policies: the Error names file:line, Skip counts what each language lost.

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "polyalpaca/eval/test_set.hpp"

using namespace polyalpaca;
using Catch::Matchers::Contains;

namespace {

/// A fresh directory in the temporary directory, removed at the end.
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(std::string const& name) {
        path = std::filesystem::temp_directory_path() / ("polyalpaca_eval_" + name + "_" + std::to_string(::getpid()));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::filesystem::path write(std::string const& name, std::string const& text) const {
        std::ofstream(path / name, std::ios::binary) << text;
        return path / name;
    }
};

std::string fail_message(std::filesystem::path const& file) {
    DataReport report;
    try {
        eval::read_test_set(file, BadRecordPolicy::Fail, report);
    } catch (Error const& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("a test set: prompts, ids, inputs, language from the file name", "[eval][test_set]") {
    TempDir dir("sets_good");
    auto const file = dir.write("test_fr.jsonl",
                                "{\"id\": \"a1\", \"prompt\": \"Écris un poème.\"}\n"
                                "\n"
                                "{\"id\": 7, \"prompt\": \"Traduis.\", \"input\": \"hello\"}\r\n");
    DataReport report;
    auto const set = eval::read_test_set(file, BadRecordPolicy::Fail, report);
    CHECK(set.lang == "fr");
    REQUIRE(set.prompts.size() == 2);
    CHECK(set.prompts[0].id == "a1");
    CHECK(set.prompts[0].prompt == "Écris un poème.");
    CHECK(set.prompts[0].input.empty());
    CHECK(set.prompts[1].id == "7");
    CHECK(set.prompts[1].input == "hello");
    CHECK(set.prompts[1].source == file.string() + ":3");
    CHECK(set.lost == 0);
    CHECK(report.files().at(0).blank_lines == 1);
    CHECK(eval::test_set_language("dir/test_zh-Hant.jsonl") == "zh-Hant");
    CHECK_THROWS_WITH(eval::test_set_language("dir/fr.jsonl"), Contains("test_<language>.jsonl"));
    CHECK(eval::test_set_language("dir/test_pt-BR.jsonl") == "pt-BR");
    CHECK(eval::test_set_language("dir/test_fil.jsonl") == "fil");
    for (char const* bad : {"test_klingon.jsonl", "test_EN.jsonl", "test_e.jsonl", "test_zh-.jsonl",
                            "test_zh-Hantish.jsonl", "test_en fr.jsonl"})
        CHECK_THROWS_WITH(eval::test_set_language(std::string("dir/") + bad), Contains("is not a language code"));
}

TEST_CASE("a test set name on something that is not a file is refused", "[eval][test_set]") {
    TempDir dir("sets_not_file");
    std::ofstream(dir.path / "test_en.jsonl") << "{\"id\": \"1\", \"prompt\": \"Hi.\"}\n";
    std::filesystem::create_directories(dir.path / "test_fr.jsonl");
    DataReport report;
    CHECK_THROWS_WITH(eval::read_test_sets(dir.path, BadRecordPolicy::Fail, report),
                      Contains("test_fr.jsonl: named as a test set but not a file"));
}

TEST_CASE("bad lines stop the run with file:line, or are skipped and counted per language", "[eval][test_set]") {
    TempDir dir("sets_bad");
    std::string const good = "{\"id\": \"1\", \"prompt\": \"Write a haiku.\"}\n";
    struct Case {
        std::string line, reason;
    };
    Case const cases[] = {
        {"{\"id\": \"2\", \"prompt\": \"cut off", "malformed JSON"},
        {"[1, 2]", "not a JSON object"},
        {"{\"id\": \"2\", \"text\": \"x\"}", "no \"prompt\""},
        {"{\"id\": \"2\", \"prompt\": \"\"}", "\"prompt\" is \"\""},
        {"{\"id\": \"2\", \"prompt\": 5}", "\"prompt\" is a JSON number"},
        {"{\"prompt\": \"x\"}", "no \"id\""},
        {"{\"id\": [1], \"prompt\": \"x\"}", "\"id\" is a JSON array"},
        {"{\"id\": \"1\", \"prompt\": \"again\"}", "used by an earlier line"},
        {"{\"id\": \"2\", \"prompt\": \"x\", \"input\": 3}", "\"input\" is a JSON number"},
        {"{\"id\": \"2\", \"prompt\": \"\xC3\x28\"}", "not UTF-8"},
    };
    for (auto const& c : cases) {
        auto const file = dir.write("test_de.jsonl", good + c.line + "\n" + good.substr(0, 8) + "3" + good.substr(9));
        INFO(c.line);
        auto const message = fail_message(file);
        CHECK_THAT(message, Contains(file.string() + ":2") && Contains(c.reason));
        DataReport report;
        auto const set = eval::read_test_set(file, BadRecordPolicy::Skip, report);
        CHECK(set.prompts.size() == 2);
        CHECK(set.lost == 1);
        REQUIRE(report.skipped_count() == 1);
        CHECK(report.skipped()[0].source == file.string() + ":2");
    }
}

TEST_CASE("a directory of test sets: every language, sorted, with lost counts", "[eval][test_set]") {
    TempDir dir("sets_dir");
    dir.write("test_en.jsonl", "{\"id\": \"1\", \"prompt\": \"a\"}\n{\"id\": \"2\"}\n{\"id\": \"3\"}\n");
    dir.write("test_bg.jsonl", "{\"id\": \"1\", \"prompt\": \"б\"}\n");
    dir.write("notes.txt", "not a test set");
    DataReport report;
    auto const sets = eval::read_test_sets(dir.path, BadRecordPolicy::Skip, report);
    REQUIRE(sets.size() == 2);
    CHECK(sets[0].lang == "bg");
    CHECK(sets[1].lang == "en");
    auto const lost = eval::lost_per_language(sets);
    CHECK(lost.at("bg") == 0);
    CHECK(lost.at("en") == 2);
    CHECK_THROWS_WITH(eval::read_test_sets(dir.path, BadRecordPolicy::Fail, report), Contains("test_en.jsonl:2"));
    TempDir empty("sets_empty");
    CHECK_THROWS_WITH(eval::read_test_sets(empty.path, BadRecordPolicy::Fail, report), Contains("no test_<language>"));
    CHECK_THROWS_WITH(eval::read_test_sets(empty.path / "missing", BadRecordPolicy::Fail, report), Contains("no such"));
}
