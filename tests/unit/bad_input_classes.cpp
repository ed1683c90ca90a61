/// @file tests/unit/bad_input_classes.cpp
/// @brief Classes of bad input, each fixed where all readers meet rather than per reader: messages quote a short
///        excerpt of what they read, a directory named as a file is refused as such, temp files of a killed writer
///        are removed by the next start, a prompt too long for the model is skipped under the skip policy, and an
///        example whose prompt fills the cutoff is known to add nothing to the loss.
#include <polyalpaca/core/excerpt.hpp>
#include <polyalpaca/data/examples.hpp>
#include <polyalpaca/data/jsonl.hpp>
#include <polyalpaca/eval/evaluate_program.hpp>
#include <polyalpaca/eval/test_set.hpp>
#include <polyalpaca/io/atomic_file.hpp>
#include <polyalpaca/io/input_file.hpp>
#include <polyalpaca/tokenizer/tokenizer.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace pa = polyalpaca;
namespace pe = polyalpaca::eval;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

/// A fresh, empty directory under the system's temp directory.
fs::path fresh_dir(std::string const& name) {
    auto const dir = fs::temp_directory_path() / ("polyalpaca_bad_input_" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

void write(fs::path const& path, std::string const& text) {
    std::ofstream(path, std::ios::binary) << text;
}

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (std::exception const& e) {
        return e.what();
    }
    return {};
}

fs::path tokenizer_file() {
    return fs::path(POLYALPACA_SOURCE_DIR) / "tests" / "golden" / "data" / "tokenizers" / "bloom_style.tokenizer.json";
}

}  // namespace

TEST_CASE("excerpts are short, cut at a character boundary and printable", "[unit][bad_input]") {
    CHECK(pa::excerpt("short") == "short");
    CHECK(pa::excerpt(std::string(100, 'a'), 10) == std::string(10, 'a') + "...");
    CHECK(pa::excerpt("aaaaaaaaa\xc3\xa9", 10) == "aaaaaaaaa...");  // é is not split
    CHECK(pa::printable_excerpt("a\nb\tc\x01") == "a\\nb\\tc\\x01");
    auto const what = "[json.exception.parse_error.101] parse error at line 1, column 9: syntax error while parsing "
                      "value - invalid string: missing closing quote; last read: '\"" + std::string(1 << 20, 'a') + "'";
    auto const text = pa::json_error_text(what);
    CHECK(text.size() < 300);
    CHECK(text.starts_with("parse error at line 1, column 9"));
    CHECK_THAT(text, Contains("last read: '\"aaaa") && Contains("...'"));
    CHECK(pa::json_error_text("[json.exception.parse_error.101] x; last read: 'ab'; expected '[', or '{'") ==
          "x; last read: 'ab'; expected '[', or '{'");
}

TEST_CASE("an unterminated megabyte line is quoted as an excerpt by every JSON reader", "[unit][bad_input]") {
    auto const dir = fresh_dir("long_line");
    std::string const line = "{\"instruction\": \"" + std::string(4 << 20, 'a');
    write(dir / "data.jsonl", line + "\n");
    write(dir / "test_en.jsonl", line + "\n");
    write(dir / "tokenizer.json", line);
    auto const jsonl =
        error_of([&] { pa::for_each_jsonl_object(dir / "data.jsonl", "file", "line", [](auto&&...) {}); });
    pa::DataReport report;
    auto const test_set =
        error_of([&] { pe::read_test_set(dir / "test_en.jsonl", pa::BadRecordPolicy::Fail, report); });
    auto const tokenizer = error_of([&] { pa::Tokenizer::from_hf_json(dir / "tokenizer.json"); });
    for (auto const& message : {jsonl, test_set, tokenizer}) {
        INFO(message.substr(0, 200));
        CHECK_THAT(message, Contains("last read: '"));
        CHECK(message.size() < 400);
    }
    fs::remove_all(dir);
}

TEST_CASE("a directory named where a file belongs is refused as a directory", "[unit][bad_input]") {
    auto const dir = fresh_dir("directory");
    fs::create_directories(dir / "tokenizer.json");
    fs::create_directories(dir / "test_en.jsonl");
    CHECK_THAT(error_of([&] { pa::Tokenizer::from_hf_json(dir / "tokenizer.json"); }),
               Contains("tokenizer.json: cannot open the file: it is a directory"));
    pa::DataReport report;
    CHECK_THAT(error_of([&] { pe::read_test_set(dir / "test_en.jsonl", pa::BadRecordPolicy::Skip, report); }),
               Contains("test_en.jsonl: cannot open the test set: it is a directory"));
    CHECK_THAT(error_of([&] { pa::io::open_input_file(dir / "absent", "the file"); }),
               Contains("absent: cannot open the file: No such file or directory"));
    fs::remove_all(dir);
}

TEST_CASE("temp files a killed writer left are removed, and nothing else", "[unit][bad_input]") {
    auto const dir = fresh_dir("stale");
    fs::create_directories(dir / "run");
    for (auto const* name : {".study_state.json.tmp.Ab12Cd", "run/.run_summary.json.tmp.x1y2z3", "study_state.json",
                             "notes.tmp.abcdef", ".x.tmp.abc", ".y.tmp.abcdefg"})
        write(dir / name, "x");
    CHECK(pa::io::remove_stale_temp_files(dir, false) == 1);
    CHECK_FALSE(fs::exists(dir / ".study_state.json.tmp.Ab12Cd"));
    CHECK(fs::exists(dir / "run/.run_summary.json.tmp.x1y2z3"));
    CHECK(pa::io::remove_stale_temp_files(dir, true) == 1);
    for (auto const* kept : {"study_state.json", "notes.tmp.abcdef", ".x.tmp.abc", ".y.tmp.abcdefg"})
        CHECK(fs::exists(dir / kept));
    {  // what an AtomicFile writes until its commit is what is removed
        pa::io::AtomicFile pending(dir / "report.md");
        CHECK(pa::io::remove_stale_temp_files(dir, false) == 1);
    }
    fs::remove_all(dir);
}

TEST_CASE("a prompt too long for the model is skipped and counted under skip, an error under fail",
          "[unit][bad_input]") {
    auto const tokenizer = pa::Tokenizer::from_hf_json(tokenizer_file());
    auto const prompt_template = pa::PromptTemplate::from_name_or_file("alpaca");
    pe::TestSet set{.lang = "en", .file = "test_en.jsonl", .prompts = {}, .lost = 0};
    set.prompts.push_back({"en", "1", "short", "", "test_en.jsonl:1"});
    set.prompts.push_back({"en", "2", std::string(4000, 'x') + " long", "", "test_en.jsonl:2"});
    set.prompts.push_back({"en", "3", "short again", "", "test_en.jsonl:3"});
    pa::GenerationConfig config;
    config.max_new_tokens = 8;
    std::size_t decoded = 0;
    auto decode = [&](std::span<std::vector<std::int32_t> const> prompts, pa::GenerationConfig const&) {
        decoded += prompts.size();
        return std::vector<pa::Generated>(prompts.size());
    };
    pe::RunInfo run;
    run.name = "r";
    pe::evaluate_detail::PromptProgress progress(3, true);
    std::map<std::string, std::size_t> too_long;
    auto const responses = pe::evaluate_detail::generate_responses(decode, 256, tokenizer, prompt_template, {set},
                                                                   config, {}, run, 2, "r", progress,
                                                                   pa::BadRecordPolicy::Skip, too_long);
    REQUIRE(responses.size() == 2);
    CHECK(responses[0].id == "1");
    CHECK(responses[1].id == "3");
    CHECK(decoded == 2);
    CHECK(too_long.at("en") == 1);
    CHECK_THAT(error_of([&] {
                   pe::evaluate_detail::generate_responses(decode, 256, tokenizer, prompt_template, {set}, config, {},
                                                           run, 2, "r", progress, pa::BadRecordPolicy::Fail, too_long);
               }),
               Contains("test_en.jsonl:2: the prompt has ") && Contains("exceeds the model's 256 positions"));
}

TEST_CASE("an example whose prompt fills the cutoff has no scored label and is listed", "[unit][bad_input]") {
    auto const tokenizer = pa::Tokenizer::from_hf_json(tokenizer_file());
    auto const prompt_template = pa::PromptTemplate::from_name_or_file("alpaca");
    std::vector<pa::Record> records(2);
    records[0].instruction = "Say yes.", records[0].output = "Yes.", records[0].source = "en.json:[0]";
    records[1].instruction = std::string(2000, 'w'), records[1].output = "No.", records[1].source = "en.json:[1]";
    pa::DataReport report;
    pa::ExampleOptions const options{.cutoff = 200, .train_on_inputs = false};
    auto const examples = pa::make_examples(std::span<pa::Record const>(records), prompt_template, tokenizer, options,
                                            pa::BadRecordPolicy::Fail, report);
    REQUIRE(examples.size() == 2);
    CHECK(pa::has_scored_label(examples[0]));
    CHECK_FALSE(pa::has_scored_label(examples[1]));
    CHECK(report.unscored_count() == 1);
    std::ostringstream text;
    report.write(text);
    CHECK_THAT(text.str(), Contains("examples with no scored token (the prompt fills the cutoff): 1") &&
                               Contains("no scored token en.json:[1]"));
}
