/// @file tests/unit/data_templates.cpp
/// @brief Prompt templates: the exact text of the built-ins (and the committed files), template-file errors,
/// placeholders as Python's str.format fills them, and cutting the response out of generated text.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "polyalpaca/data/prompt_template.hpp"

using namespace polyalpaca;
using Catch::Matchers::Contains;

namespace {

std::string error_of(auto&& run) {
    try {
        run();
    } catch (Error const& e) {
        return e.what();
    }
    return "no error";
}

std::string read_text(std::filesystem::path const& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::filesystem::path const templates_dir = std::filesystem::path(POLYALPACA_SOURCE_DIR) / "templates";

Record record(std::string instruction, std::string input, std::string output = "out") {
    return Record{"en", "0", std::move(instruction), std::move(input), std::move(output), "test"};
}

std::string const preamble_input =
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n";
std::string const preamble_no_input =
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n";

}  // namespace

TEST_CASE("built-in alpaca: alpaca-lora's templates/alpaca.json, a newline after the response marker") {
    auto const t = PromptTemplate::alpaca();
    CHECK(t.generate_prompt(record("Name a colour.", "")) ==
          preamble_no_input + "### Instruction:\nName a colour.\n\n### Response:\n");
    CHECK(t.generate_prompt(record("Translate.", "Bonjour {input}")) ==
          preamble_input + "### Instruction:\nTranslate.\n\n### Input:\nBonjour {input}\n\n### Response:\n");
    CHECK(t.full_prompt(record("Name a colour.", "", "Blue.")) ==
          preamble_no_input + "### Instruction:\nName a colour.\n\n### Response:\nBlue.");
    CHECK(t.response_split() == "### Response:");
    CHECK(t.description() == "Template used by Alpaca-LoRA.");
}

TEST_CASE("built-in alpaca_legacy: stanford_alpaca's prompts, no newline after the response marker") {
    auto const t = PromptTemplate::alpaca_legacy();
    CHECK(t.generate_prompt(record("Name a colour.", "")) ==
          preamble_no_input + "### Instruction:\nName a colour.\n\n### Response:");
    CHECK(t.generate_prompt(record("Translate.", "Bonjour")) ==
          preamble_input + "### Instruction:\nTranslate.\n\n### Input:\nBonjour\n\n### Response:");
    CHECK(t.full_prompt(record("Name a colour.", "", "Blue.")) ==
          preamble_no_input + "### Instruction:\nName a colour.\n\n### Response:Blue.");
    CHECK(t.description() == "Legacy template, used by Original Alpaca repository.");
}

TEST_CASE("the committed templates/*.json are the built-ins byte for byte") {
    CHECK(read_text(templates_dir / "alpaca.json") == data_detail::alpaca_template_json);
    CHECK(read_text(templates_dir / "alpaca_legacy.json") == data_detail::alpaca_legacy_template_json);
    for (char const* name : {"alpaca", "alpaca_legacy"}) {
        auto const from_file = PromptTemplate::from_file(templates_dir / (std::string(name) + ".json"));
        auto const built_in = PromptTemplate::builtin(name);
        CHECK(from_file.prompt_input() == built_in.prompt_input());
        CHECK(from_file.prompt_no_input() == built_in.prompt_no_input());
        CHECK(from_file.response_split() == built_in.response_split());
        CHECK(PromptTemplate::from_name_or_file(name).prompt_no_input() == built_in.prompt_no_input());
    }
    CHECK_THAT(error_of([] { PromptTemplate::builtin("vicuna"); }),
               Contains("no built-in prompt template \"vicuna\" (built in: alpaca, alpaca_legacy)"));
}

TEST_CASE("placeholders follow Python's str.format: {{ and }} are braces, record text is not formatted") {
    auto const t = PromptTemplate::from_json_text(R"({"description": "d",
        "prompt_input": "{{x}} {instruction}|{input}|{instruction} ## R:",
        "prompt_no_input": "}}{instruction}{{ ## R:", "response_split": "## R:"})",
                                                  "braces.json");
    CHECK(t.generate_prompt("a{b}", "{instruction}") == "{x} a{b}|{instruction}|a{b} ## R:");
    CHECK(t.generate_prompt("i", "") == "}i{ ## R:");
}

TEST_CASE("template file errors name the file and the key") {
    auto const with = [](std::string const& key, std::string const& value) {
        nlohmann::json json = {{"description", "d"},
                               {"prompt_input", "I:{instruction} In:{input} R:"},
                               {"prompt_no_input", "I:{instruction} R:"},
                               {"response_split", "R:"}};
        if (value == "<remove>") json.erase(key);
        else json[key] = value;
        return json.dump();
    };
    auto const error = [](std::string const& text) {
        return error_of([&] { PromptTemplate::from_json_text(text, "my_template.json"); });
    };
    CHECK(error(with("description", "changed")) == "no error");
    for (char const* key : {"description", "prompt_input", "prompt_no_input", "response_split"})
        CHECK_THAT(error(with(key, "<remove>")), Contains("my_template.json: prompt template has no \"" + std::string(key)));
    CHECK_THAT(error(R"({"description": "d", "prompt_input": 3})"),
               Contains("my_template.json: prompt template key \"prompt_input\" is a JSON number"));
    CHECK_THAT(error(with("prompt_input", "I:{instruction} R:")),
               Contains("my_template.json: prompt template \"prompt_input\" has no {input} placeholder"));
    CHECK_THAT(error(with("prompt_no_input", "R:")),
               Contains("my_template.json: prompt template \"prompt_no_input\" has no {instruction} placeholder"));
    CHECK_THAT(error(with("prompt_no_input", "{instruction} {input} R:")),
               Contains("\"prompt_no_input\": unknown placeholder {input} at character 14"));
    CHECK_THAT(error(with("prompt_input", "{instruction} {output} {input} R:")),
               Contains("\"prompt_input\": unknown placeholder {output}"));
    CHECK_THAT(error(with("prompt_input", "{instruction!r} {input} R:")), Contains("unknown placeholder {instruction!r}"));
    CHECK_THAT(error(with("prompt_input", "{instruction} } {input} R:")), Contains("single '}' at character 14"));
    CHECK_THAT(error(with("prompt_input", "{instruction} {input R:")), Contains("'{' at character 14 is not closed"));
    CHECK_THAT(error(with("response_split", "### Answer:")),
               Contains("response_split \"### Answer:\" does not occur in \"prompt_input\""));
    CHECK_THAT(error(with("response_split", "")), Contains("\"response_split\" is empty"));
    CHECK_THAT(error("{\"description\": "), Contains("my_template.json: prompt template is not valid JSON"));
    CHECK_THAT(error("[1]"), Contains("a prompt template is a JSON object, found a JSON array"));
    CHECK_THAT(error_of([] { PromptTemplate::from_file("/nonexistent/t.json"); }),
               Contains("/nonexistent/t.json: cannot open"));
}

TEST_CASE("response_of: text after the marker, cut at the next section, stripped as Python strips") {
    auto const t = PromptTemplate::alpaca();
    auto const prompt = t.generate_prompt(record("Say hi.", ""));
    CHECK(t.response_of(prompt + "  Hi there!\n\nBye. \n### Instruction:\nmore") == "Hi there!\n\nBye.");
    CHECK(t.response_of(prompt + "Hi ### Response: again") == "Hi");
    CHECK(t.response_of(prompt + "\xE3\x80\x80\xC2\xA0 Hallo\xE2\x80\xA8\t\x1F") == "Hallo");  // U+3000 U+00A0 U+2028
    CHECK(t.response_of(prompt + "\xE2\x80\x8B") == "\xE2\x80\x8B");  // U+200B is not whitespace to Python
    CHECK(t.response_of(prompt + "\n### End") == "");
    CHECK(t.response_of(prompt) == "");
    CHECK(t.response_of("no marker here") == std::nullopt);
    CHECK(PromptTemplate::alpaca_legacy().response_of("### Response:Oui.</s>") == "Oui.</s>");
    CHECK(t.response_after_prompt(" Yes.\n### Response: x") == "Yes.");
    CHECK(t.response_after_prompt(" a\n###b\n### c") == "a\n###b");
}
