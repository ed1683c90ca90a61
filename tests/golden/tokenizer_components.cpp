/// @file tests/golden/tokenizer_components.cpp
/// @brief Single normalizers, pre-tokenizers and decoders against HF tokenizers running them alone
/// (normalize_str, pre_tokenize_str, decode), as tools/make_tokenizer_golden.py recorded in cases.json; the
/// Unicode ones (unicode_cases.json) also in pairs, cut as a whole encode cuts the text.

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/fixtures.hpp"

#include "polyalpaca/tokenizer/added_vocabulary.hpp"
#include "polyalpaca/tokenizer/hf_json_components.hpp"

using nlohmann::json;
using namespace polyalpaca::tokenizer;

namespace {

json const& components() {
    static json const data = [] {
        auto const path = polyalpaca::testing::golden_dir() / "tokenizers" / "cases.json";
        std::ifstream in(path);
        if (!in) throw std::runtime_error("cannot open " + path.string());
        return json::parse(in)["components"];
    }();
    return data;
}

std::string const origin = "cases.json";

json const& unicode_cases() {
    static json const data = [] {
        auto const path = polyalpaca::testing::golden_dir() / "tokenizers" / "unicode_cases.json";
        std::ifstream in(path);
        if (!in) throw std::runtime_error("cannot open " + path.string());
        return json::parse(in);
    }();
    return data;
}

std::vector<std::string> texts_of(Pieces const& pieces) {
    std::vector<std::string> out;
    for (auto const& p : pieces) out.push_back(p.text);
    return out;
}

}  // namespace

TEST_CASE("pre-tokenizers split as HF's pre_tokenize_str", "[tokenizer][golden]") {
    auto const& c = components();
    auto const texts = c["texts"].get<std::vector<std::string>>();
    REQUIRE(c["pre_tokenizers"].size() >= 20);
    for (auto const& entry : c["pre_tokenizers"]) {
        auto const pre = hf_json::pre_tokenizer(JsonAt(entry["json"], "$", origin));
        for (std::size_t i = 0; i < texts.size(); ++i) {
            INFO(entry["json"].dump() << "\ntext " << i << ": " << texts[i]);
            Pieces pieces{{texts[i], -1, true}};
            if (texts[i].empty()) pieces.clear();  // HF drops empty splits before any pre-tokenizer runs
            pre->pre_tokenize(pieces);
            std::vector<std::string> got;
            for (auto const& p : pieces) got.push_back(p.text);
            CHECK(got == entry["pieces"][i].get<std::vector<std::string>>());
        }
    }
}

TEST_CASE("normalizers rewrite as HF's normalize_str", "[tokenizer][golden]") {
    auto const& c = components();
    auto const texts = c["texts"].get<std::vector<std::string>>();
    for (auto const& entry : c["normalizers"]) {
        auto const normalizer = hf_json::normalizer(JsonAt(entry["json"], "$", origin));
        for (std::size_t i = 0; i < texts.size(); ++i) {
            INFO(entry["json"].dump() << "\ntext " << i << ": " << texts[i]);
            CHECK(normalizer->normalized(texts[i]) == entry["normalized"][i].get<std::string>());
        }
    }
}

TEST_CASE("decoders join tokens as HF's decode", "[tokenizer][golden]") {
    auto const& c = components();
    auto const lists = c["token_lists"].get<std::vector<std::vector<std::string>>>();
    for (auto const& entry : c["decoders"]) {
        auto const decoder = hf_json::decoder(JsonAt(entry["json"], "$", origin));
        for (std::size_t i = 0; i < lists.size(); ++i) {
            INFO(entry["json"].dump() << "\ntokens " << i);
            CHECK(decoder->decode(lists[i]) == entry["decoded"][i].get<std::string>());
        }
    }
}

TEST_CASE("Unicode normalizers rewrite as HF's normalize_str", "[tokenizer][golden]") {
    auto const& c = unicode_cases();
    auto const texts = c["texts"].get<std::vector<std::string>>();
    std::set<std::string> types;
    for (auto const& entry : c["normalizers"]) {
        types.insert(entry["json"]["type"].get<std::string>());
        auto const normalizer = hf_json::normalizer(JsonAt(entry["json"], "$", "unicode_cases.json"));
        for (std::size_t i = 0; i < texts.size(); ++i) {
            INFO(entry["json"].dump().substr(0, 200) << "\ntext " << i << ": " << json(texts[i]).dump());
            CHECK(normalizer->normalized(texts[i]) == entry["normalized"][i].get<std::string>());
        }
    }
    CHECK(types == std::set<std::string>{"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents", "Nmt", "ByteLevel",
                                         "BertNormalizer", "Precompiled", "Sequence"});
}

TEST_CASE("Unicode pre-tokenizers split as HF's pre_tokenize_str", "[tokenizer][golden]") {
    auto const& c = unicode_cases();
    auto const texts = c["texts"].get<std::vector<std::string>>();
    std::set<std::string> types;
    for (auto const& entry : c["pre_tokenizers"]) {
        types.insert(entry["json"]["type"].get<std::string>());
        auto const pre = hf_json::pre_tokenizer(JsonAt(entry["json"], "$", "unicode_cases.json"));
        for (std::size_t i = 0; i < texts.size(); ++i) {
            INFO(entry["json"].dump() << "\ntext " << i << ": " << json(texts[i]).dump());
            Pieces pieces{{texts[i], -1, true}};
            if (texts[i].empty()) pieces.clear();
            pre->pre_tokenize(pieces);
            CHECK(texts_of(pieces) == entry["pieces"][i].get<std::vector<std::string>>());
        }
    }
    CHECK(types ==
          std::set<std::string>{"BertPreTokenizer", "CharDelimiterSplit", "UnicodeScripts", "FixedLength", "Sequence"});
}

TEST_CASE("a normalizer and a pre-tokenizer cut the text as HF's encode does", "[tokenizer][golden]") {
    // Metaspace's prepend_scheme "first" shows whether a piece still starts the original text after normalizing.
    auto const& c = unicode_cases();
    auto const texts = c["pipeline_texts"].get<std::vector<std::string>>();
    REQUIRE(c["pipelines"].size() >= 10);
    for (auto const& entry : c["pipelines"]) {
        auto const normalizer = hf_json::normalizer(JsonAt(entry["normalizer"], "$.normalizer", "unicode_cases.json"));
        auto const pre =
            hf_json::pre_tokenizer(JsonAt(entry["pre_tokenizer"], "$.pre_tokenizer", "unicode_cases.json"));
        for (std::size_t i = 0; i < texts.size(); ++i) {
            INFO(entry["normalizer"].dump().substr(0, 200)
                 << "\n"
                 << entry["pre_tokenizer"].dump() << "\ntext " << i << ": " << json(texts[i]).dump());
            auto pieces = AddedVocabulary().split(texts[i], normalizer.get());
            pre->pre_tokenize(pieces);
            CHECK(texts_of(pieces) == entry["pieces"][i].get<std::vector<std::string>>());
        }
    }
}
