/// @file tests/unit/eval_responses.cpp
/// @brief Responses: the text cut out of a generation (after the response marker, up to the next section marker,
///        stripped), and responses JSONL written atomically and read back, with file:line errors on bad lines.

#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <catch2/catch.hpp>

#include "polyalpaca/eval/responses.hpp"

using namespace polyalpaca;
using Catch::Matchers::Contains;

TEST_CASE("section markers of the alpaca templates", "[eval][responses]") {
    auto const markers = eval::section_markers(PromptTemplate::alpaca());
    CHECK(markers == std::vector<std::string>{"### Instruction:", "### Input:", "### Response:"});
}

TEST_CASE("the response after the prompt: cut at the next section marker, stripped", "[eval][responses]") {
    auto const t = PromptTemplate::alpaca();
    CHECK(eval::extract_response(t, "  Paris is the capital.\n") == "Paris is the capital.");
    CHECK(eval::extract_response(t, "Paris.\n\n### Instruction:\nName a river.\n\n### Response:\nSeine") == "Paris.");
    CHECK(eval::extract_response(t, "Paris. ### Input: more") == "Paris.");
    CHECK(eval::extract_response(t, "one\n### Explanation\ntwo") == "one");
    CHECK(eval::extract_response(t, "Réponse: ### Response: again") == "Réponse:");
    CHECK(eval::extract_response(t, "\n\n### Instruction:\nx").empty());
    CHECK(eval::extract_response(t, "## heading kept\nline two") == "## heading kept\nline two");
}

TEST_CASE("the response in a whole output: after the first marker, or empty without one", "[eval][responses]") {
    for (auto const& t : {PromptTemplate::alpaca(), PromptTemplate::alpaca_legacy()}) {
        auto const prompt = t.generate_prompt("Name a colour.", "");
        CHECK(eval::extract_response_from_output(t, prompt + "Blue.\n### Instruction:\nagain") == "Blue.");
        CHECK(eval::extract_response_from_output(t, prompt + " Blue ") == "Blue");
        CHECK(eval::extract_response_from_output(t, "no marker here").empty());
    }
}

TEST_CASE("responses JSONL: authors' layout, round trip, bad lines named", "[eval][responses]") {
    auto const dir =
        std::filesystem::temp_directory_path() / ("polyalpaca_eval_responses_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto const path = dir / "responses.jsonl";
    std::vector<eval::Response> rs(2);
    rs[0] = {.run = "multi",
             .model = "bloom-560m",
             .method = "lora",
             .strategy = "multilingual",
             .language = "fr",
             .id = "3",
             .instruction = "Écris « bonjour ».",
             .input = "",
             .response = "Bonjour !\n\"cité\"",
             .decoding = {{"name", "greedy"}, {"max_new_tokens", 16}}};
    rs[1] = rs[0];
    rs[1].language = "zh";
    rs[1].id = "4";
    rs[1].input = "上下文";
    rs[1].response = "你好";
    eval::write_responses(path, rs);
    std::ifstream in(path);
    std::string first;
    std::getline(in, first);
    CHECK(first.starts_with(R"({"id":"3","language":"fr","instruction":)"));
    CHECK_THAT(first, Contains(R"("decoding":{"max_new_tokens":16,"name":"greedy"})"));
    auto const back = eval::read_responses(path);
    REQUIRE(back.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK(back[i].run == rs[i].run);
        CHECK(back[i].model == rs[i].model);
        CHECK(back[i].method == rs[i].method);
        CHECK(back[i].strategy == rs[i].strategy);
        CHECK(back[i].language == rs[i].language);
        CHECK(back[i].id == rs[i].id);
        CHECK(back[i].instruction == rs[i].instruction);
        CHECK(back[i].input == rs[i].input);
        CHECK(back[i].response == rs[i].response);
        CHECK(back[i].decoding == rs[i].decoding);
    }
    std::ofstream(path) << R"({"id":"1","language":"en","instruction":"a","input":"","response":"b"})"
                        << "\n\n"
                        << R"({"id":"2","language":"en","instruction":"a","input":""})"
                        << "\n";
    CHECK_THROWS_WITH(eval::read_responses(path), Contains("responses.jsonl:3") && Contains("no \"response\""));
    std::ofstream(path) << "{oops\n";
    CHECK_THROWS_WITH(eval::read_responses(path), Contains("responses.jsonl:1: malformed JSON"));
    // Found running fuzz/eval_jsonl_fuzzer on a hand-made input: nlohmann copies by recursion, so a "decoding"
    // nested deep overflowed the stack (32,000 levels under ASan, a million without); lines nested deeper than 64
    // are refused before they are parsed.
    std::size_t const deep = 1'000'000;
    std::ofstream(path) << R"({"id":"1","language":"en","instruction":"a","input":"","response":"b","decoding":{"a":)"
                        << std::string(deep, '[') << std::string(deep, ']') << "}}\n";
    CHECK_THROWS_WITH(eval::read_responses(path),
                      Contains("responses.jsonl:1: a response nested 1000002 deep; at most 64 levels are read"));
    std::filesystem::remove_all(dir);
}
