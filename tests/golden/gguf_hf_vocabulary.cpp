/// @file tests/golden/gguf_hf_vocabulary.cpp
/// @brief A byte-level BPE tokenizer.json written as a llama.cpp "gpt2" vocabulary (io/gguf_hf_vocabulary.hpp) and
///        read back from the GGUF file encodes as HF tokenizers did (tests/golden/data/tokenizers/cases.json), with
///        the special ids, add flags and chat template gguf-py's SpecialVocab would write; a chat template made from
///        the Alpaca prompt template. tools/check_llama_cpp.py runs the same files in llama.cpp itself.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/fixtures.hpp"

#include "polyalpaca/data/chat_template.hpp"
#include "polyalpaca/io/gguf.hpp"
#include "polyalpaca/io/gguf_hf_vocabulary.hpp"
#include "polyalpaca/io/gguf_tokenizer.hpp"
#include "polyalpaca/io/gguf_vocabulary.hpp"
#include "polyalpaca/io/gguf_writer.hpp"

namespace fs = std::filesystem;
namespace io = polyalpaca::io;
using Catch::Matchers::Contains;
using nlohmann::json;
using polyalpaca::Tokenizer;

namespace {

fs::path data_dir() { return polyalpaca::testing::golden_dir() / "tokenizers"; }

json read_json(fs::path const& path) {
    std::ifstream in(path);
    REQUIRE(in);
    return json::parse(in);
}

struct Scratch {
    fs::path dir = fs::temp_directory_path() / ("polyalpaca_gguf_vocab_" + std::to_string(::getpid()));
    Scratch() { fs::create_directories(dir); }
    ~Scratch() {
        std::error_code ignored;
        fs::remove_all(dir, ignored);
    }
    void write(std::string const& name, std::string const& text) const { std::ofstream(dir / name) << text; }
};

/// bloom_style's added tokens whose matching depends on lstrip, rstrip or single_word, which a GGUF file cannot
/// carry (llama.cpp matches an added token wherever it occurs): texts holding them may encode otherwise.
bool holds_token_with_attributes(std::string const& text) {
    for (char const* token : {"Kiwi", "[MASK]", "<sep>"})
        if (text.find(token) != std::string::npos) return true;
    return false;
}

/// The vocabulary through a GGUF file and back, as the project's reader (and llama.cpp) builds a tokenizer from it.
Tokenizer through_gguf(polyalpaca::tokenizer::LlamaCppVocabulary const& v, std::int64_t rows, fs::path const& path) {
    io::GgufWriter w;
    w.set("general.architecture", std::string("bloom"));
    io::set_tokenizer_metadata(w, v, rows, path.string());
    w.write(path);
    return io::gguf_tokenizer(io::GgufFile(path), path.string());
}

}  // namespace

TEST_CASE("a BLOOM-style tokenizer.json as a llama.cpp vocabulary encodes as HF tokenizers", "[io][gguf][golden]") {
    Scratch const s;
    auto const cases = read_json(data_dir() / "cases.json");
    auto const& hf = cases["tokenizer_json"]["bloom_style"];
    std::int64_t const rows = 2048;  // the embedding is larger than the 1811 tokens, as BLOOM's is
    auto const v = io::llama_cpp_vocabulary_of_tokenizer_json(data_dir() / "bloom_style.tokenizer.json", "", rows);
    CHECK(v.model == "gpt2");
    CHECK(v.pre == "bloom");
    REQUIRE(v.tokens.size() == std::size_t(rows));
    CHECK(v.tokens[1810] == "Kiwi");
    CHECK(v.token_types[1810] == 4);  // user-defined: an added token that is not special
    CHECK(v.token_types[1806] == 3);  // [MASK]: control
    CHECK(v.tokens[1811] == "[PAD1811]");
    CHECK(v.token_types[1811] == 5);
    CHECK(v.token_types[300] == 1);
    CHECK(v.merges.size() == read_json(data_dir() / "bloom_style.tokenizer.json")["model"]["merges"].size());
    // No tokenizer_config.json, no config.json: the tokenizer's own <s>, </s>, <unk>, <pad>; the ByteLevel
    // post-processor adds nothing.
    CHECK((v.bos_id == 1 && v.eos_id == 2 && v.unk_id == 0 && v.pad_id == 3));
    CHECK((!v.add_bos && !v.add_eos));

    auto const tok = through_gguf(v, rows, s.dir / "bloom.gguf");
    auto const texts = cases["texts"];
    for (std::size_t i = 0; i < texts.size(); ++i) {
        INFO("text " << i << ": " << texts[i].get<std::string>().substr(0, 80));
        CHECK(tok.encode(texts[i].get<std::string>(), false) == hf["texts"][i]["ids_plain"].get<std::vector<int>>());
        auto const ids = hf["texts"][i]["ids"].get<std::vector<std::int32_t>>();
        CHECK(tok.decode(ids, false) == hf["texts"][i]["decoded"].get<std::string>());
    }
    auto const random = cases["random_texts"];
    std::size_t checked = 0;
    for (std::size_t i = 0; i < random.size(); ++i) {
        if (holds_token_with_attributes(random[i].get<std::string>())) continue;
        INFO("random text " << i << ": " << random[i].dump());
        CHECK(tok.encode(random[i].get<std::string>(), true) == hf["random_texts"][i]["ids"].get<std::vector<int>>());
        ++checked;
    }
    CHECK(checked > 250);
}

TEST_CASE("a GPT-2-style tokenizer.json is \"gpt-2\" and encodes as its tokenizer.json", "[io][gguf][golden]") {
    Scratch const s;
    auto file = read_json(data_dir() / "bloom_style.tokenizer.json");
    file["pre_tokenizer"] =
        json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
    std::vector<std::string> merges;  // "left right", the format of older files (bloom_style's are pairs)
    for (auto const& m : file["model"]["merges"])
        merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    file["model"]["merges"] = merges;
    s.write("tokenizer.json", file.dump());
    s.write("tokenizer_config.json", json{{"bos_token", "<s>"},
                                          {"eos_token", json{{"content", "</s>"}}},
                                          {"add_bos_token", true},
                                          {"chat_template", "{{ messages[0]['content'] }}"}}
                                         .dump());
    s.write("config.json", json{{"pad_token_id", 3}, {"eos_token_id", 1}}.dump());
    auto const v = io::llama_cpp_vocabulary_of_tokenizer_json(s.dir / "tokenizer.json", s.dir / "config.json", 1811);
    CHECK(v.pre == "gpt-2");
    CHECK(v.merges == merges);
    CHECK(v.bos_id == 1);
    CHECK(v.eos_id == 2);  // tokenizer_config.json's, before config.json's
    CHECK(v.pad_id == 3);  // config.json's
    CHECK(!v.add_bos);     // the ByteLevel post-processor's, before tokenizer_config.json's add_bos_token
    CHECK(v.chat_template == "{{ messages[0]['content'] }}");

    auto const from_json = Tokenizer::from_hf_json(s.dir / "tokenizer.json");
    auto const tok = through_gguf(v, 1811, s.dir / "gpt2.gguf");
    auto const cases = read_json(data_dir() / "cases.json");
    for (auto const& group : {cases["texts"], cases["random_texts"]})
        for (auto const& text : group) {
            if (holds_token_with_attributes(text.get<std::string>())) continue;
            INFO(text.dump());
            CHECK(tok.encode(text.get<std::string>(), false) == from_json.encode(text.get<std::string>(), false));
        }
    CHECK(io::GgufFile(s.dir / "gpt2.gguf").get_string("tokenizer.chat_template") == v.chat_template);
}

TEST_CASE("a byte-fallback tokenizer.json as llama.cpp's SentencePiece vocabulary encodes as HF tokenizers",
          "[io][gguf][golden]") {
    Scratch const s;
    auto const cases = read_json(data_dir() / "cases.json");
    for (std::string const name : {"llama_style", "llama_legacy"}) {
        INFO(name);
        auto const& hf = cases["tokenizer_json"][name];
        auto const path = data_dir() / (name + ".tokenizer.json");
        auto const v = io::llama_cpp_vocabulary_of_tokenizer_json(path, "", 2048);
        CHECK(v.model == "llama");
        CHECK(v.add_space_prefix);
        CHECK(v.add_bos);
        CHECK(v.add_eos == (name == "llama_style"));  // <s> $A </s> against <s> $A
        CHECK(v.token_types[0] == 2);                 // <unk>
        CHECK(v.token_types[3 + 0x41] == 6);          // <0x41>
        CHECK(v.tokens[3 + 0x41] == "<0x41>");
        REQUIRE(v.scores.size() == v.tokens.size());
        auto const tok = through_gguf(v, 2048, s.dir / (name + ".gguf"));
        // SentencePiece (and llama.cpp) puts "▁" before the text and after each special token, where HF's Metaspace
        // with prepend_scheme "first" puts one only at the start of a text that does not start with a space; and an
        // added token HF matches after normalizing is matched as it is: texts with those are left out.
        auto const added = read_json(path)["added_tokens"];
        auto comparable = [&](std::string const& text) {
            if (text.starts_with(' ')) return false;
            for (auto const& a : added)
                if (text.find(a["content"].get<std::string>()) != std::string::npos) return false;
            return true;
        };
        std::size_t checked = 0;
        for (auto const& group :
             {std::pair{cases["texts"], hf["texts"]}, std::pair{cases["random_texts"], hf["random_texts"]}})
            for (std::size_t i = 0; i < group.first.size(); ++i) {
                auto const text = group.first[i].get<std::string>();
                if (!comparable(text)) continue;
                INFO(json(text).dump());
                CHECK(tok.encode(text, true) == group.second[i]["ids"].get<std::vector<std::int32_t>>());
                ++checked;
            }
        CHECK(checked > 250);
    }
}

TEST_CASE("a tokenizer.json llama.cpp would split otherwise is refused, naming the place", "[io][gguf][golden]") {
    Scratch const s;
    auto const base = read_json(data_dir() / "bloom_style.tokenizer.json");
    auto refused = [&](json const& patch, std::string const& expected) {
        auto file = base;
        file.merge_patch(patch);
        s.write("tokenizer.json", file.dump());
        CHECK_THROWS_WITH(io::llama_cpp_vocabulary_of_tokenizer_json(s.dir / "tokenizer.json", "", 2048),
                          Contains("tokenizer.json") && Contains(expected));
    };
    refused({{"pre_tokenizer", {{"type", "Whitespace"}}}}, "$.pre_tokenizer: this pre-tokenizer has no llama.cpp");
    refused({{"normalizer", {{"type", "Lowercase"}}}}, "$.normalizer: normalizer 'Lowercase'");
    refused({{"model", {{"byte_fallback", true}}}}, "$.pre_tokenizer: a byte-fallback tokenizer.json becomes");
    refused({{"decoder", {{"type", "Fuse"}}}}, "$.decoder");
    CHECK_THROWS_WITH(io::llama_cpp_vocabulary_of_tokenizer_json(data_dir() / "bloom_style.tokenizer.json", "", 1000),
                      Contains("is not below the model's 1000 embedding rows"));
}

TEST_CASE("a bad tokenizer_config.json or chat_template.json is refused, naming the file", "[io][gguf][golden]") {
    // Found by gguf_vocabulary_fuzzer: the error of a bad special token in tokenizer_config.json named its file
    // through a string that no longer existed (AddressSanitizer: heap-use-after-free).
    Scratch const s;
    s.write("tokenizer.json", read_json(data_dir() / "bloom_style.tokenizer.json").dump());
    auto refused = [&](char const* name, std::string const& text, std::string const& expected) {
        s.write(name, text);
        CHECK_THROWS_WITH(io::llama_cpp_vocabulary_of_tokenizer_json(s.dir / "tokenizer.json", s.dir / "config.json",
                                                                     2048),
                          Contains((s.dir / name).string()) && Contains(expected));
        fs::remove(s.dir / name);
    };
    refused("tokenizer_config.json", R"({"bos_token": 5})", "$.bos_token");
    refused("tokenizer_config.json", R"({"eos_token": {"content": 7}})", "$.eos_token");
    s.write("tokenizer_config.json", "{}");  // chat_template.json is read beside it only, as SpecialVocab reads it
    refused("chat_template.json", R"({"chat_template": 3})", "$.chat_template");
}

TEST_CASE("the Alpaca prompt template as a chat template", "[data][gguf]") {
    auto const t = polyalpaca::PromptTemplate::alpaca();
    auto const jinja = polyalpaca::chat_template_of(t);
    // The prompt's text sits in Jinja string literals, escaped; the instruction is the user message.
    CHECK_THAT(jinja, Contains("{{ \"Below is an instruction that describes a task. Write a response that "
                               "appropriately completes the request.\\n\\n### Instruction:\\n\" + message['content'] + "
                               "\"\\n\\n### Response:\\n\" }}"));
    CHECK_THAT(jinja, Contains("message['content'] + eos_token"));
    CHECK_THAT(jinja, Contains("raise_exception"));
    auto const quoted = polyalpaca::PromptTemplate::from_json_text(
        R"({"description": "d", "prompt_input": "{instruction} {input} ### R:", )"
        R"("prompt_no_input": "Say \"{instruction}\" \\ now\n### R:", "response_split": "### R:"})",
        "quoted");
    CHECK_THAT(polyalpaca::chat_template_of(quoted),
               Contains("{{ \"Say \\\"\" + message['content'] + \"\\\" \\\\ now\\n### R:\" }}"));
}
