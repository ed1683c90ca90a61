/// @file tests/golden/tokenizer_hf.cpp
/// @brief tokenizer.json tokenizers against the ids and decodings HF tokenizers produced.
///
/// tests/golden/data/tokenizers/ is written by tools/make_tokenizer_golden.py (tokenizers 0.23.3,
/// transformers 5.24.0, sentencepiece 0.2.3): four tokenizers trained there (BLOOM's byte-level layout, a
/// Metaspace/byte-fallback LLaMA layout, the older Prepend/Replace LLaMA layout, BPE with <unk> and "##"), and
/// cases.json with the texts and HF's results; and an NFKC SentencePiece-style BPE with unicode_cases.json.

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/fixtures.hpp"

#include "polyalpaca/tokenizer/tokenizer.hpp"

using nlohmann::json;
using polyalpaca::Tokenizer;

namespace {

std::filesystem::path data_dir() { return polyalpaca::testing::golden_dir() / "tokenizers"; }

json const& cases() {
    static json const data = [] {
        std::ifstream in(data_dir() / "cases.json");
        if (!in) throw std::runtime_error("cannot open " + (data_dir() / "cases.json").string());
        return json::parse(in);
    }();
    return data;
}

/// Encodes and decodes every text of `texts` and compares with HF's `expected` entries.
void check_texts(Tokenizer const& tok, json const& texts, json const& expected, std::string const& name) {
    REQUIRE(texts.size() == expected.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
        auto const text = texts[i].get<std::string>();
        auto const& want = expected[i];
        INFO(name << " text " << i << ": " << text.substr(0, 80));
        auto const ids = tok.encode(text, true);
        CHECK(ids == want["ids"].get<std::vector<std::int32_t>>());
        CHECK(tok.encode(text, false) == want["ids_plain"].get<std::vector<std::int32_t>>());
        auto const hf_ids = want["ids"].get<std::vector<std::int32_t>>();
        CHECK(tok.decode(hf_ids, false) == want["decoded"].get<std::string>());
        CHECK(tok.decode(hf_ids, true) == want["decoded_skip_special"].get<std::string>());
    }
}

/// Random mixes of scripts and added-token strings: ids with special tokens, and the decoding without them.
void check_random_texts(Tokenizer const& tok, json const& texts, json const& expected, std::string const& name) {
    REQUIRE(texts.size() == expected.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
        auto const text = texts[i].get<std::string>();
        INFO(name << " random text " << i << ": " << json(text).dump());
        auto const ids = expected[i]["ids"].get<std::vector<std::int32_t>>();
        CHECK(tok.encode(text, true) == ids);
        CHECK(tok.decode(ids, true) == expected[i]["decoded_skip_special"].get<std::string>());
    }
}

}  // namespace

TEST_CASE("tokenizer.json files encode and decode exactly as HF tokenizers", "[tokenizer][golden]") {
    auto const& all = cases();
    REQUIRE(all["tokenizer_json"].size() == 4);
    for (auto const& [name, entry] : all["tokenizer_json"].items()) {
        DYNAMIC_SECTION(name) {
            auto const tok = Tokenizer::from_hf_json(data_dir() / entry["file"].get<std::string>());
            CHECK(tok.vocab_size() == entry["vocab_size"].get<std::int32_t>());
            check_texts(tok, all["texts"], entry["texts"], name);
            check_texts(tok, all["special_texts"], entry["special_texts"], name + " (special tokens)");
            check_random_texts(tok, all["random_texts"], entry["random_texts"], name);
        }
    }
}

TEST_CASE("BLOOM-style variants: other post-processors and ignore_merges", "[tokenizer][golden]") {
    auto const& all = cases();
    std::ifstream in(data_dir() / "bloom_style.tokenizer.json");
    auto const base = json::parse(in);
    auto const texts = all["texts"].get<std::vector<std::string>>();
    REQUIRE(all["bloom_variants"].size() == 5);
    for (auto const& variant : all["bloom_variants"]) {
        auto patched = base;
        patched.merge_patch(variant["patch"]);
        auto const tok = Tokenizer::from_hf_json_text(patched.dump(), "bloom_style.tokenizer.json (patched)");
        for (std::size_t i = 0; i < texts.size(); ++i) {
            INFO(variant["patch"].dump().substr(0, 200) << "\ntext " << i << ": " << texts[i].substr(0, 80));
            CHECK(tok.encode(texts[i], true) == variant["ids"][i].get<std::vector<std::int32_t>>());
            CHECK(tok.encode(texts[i], false) == variant["ids_plain"][i].get<std::vector<std::int32_t>>());
        }
    }
}

TEST_CASE("BLOOM-style tokenizer.json keeps BLOOM's layout and special ids", "[tokenizer][golden]") {
    auto const path = data_dir() / "bloom_style.tokenizer.json";
    std::ifstream in(path);
    auto const file = json::parse(in);
    CHECK(file["normalizer"].is_null());
    CHECK(file["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] == " ?[^(\\s|[.,!?…。，、।۔،])]+");
    CHECK(file["post_processor"]["type"] == "ByteLevel");
    auto const tok = Tokenizer::from_hf_json(path);
    for (auto const& t : file["added_tokens"]) {
        auto const id = t["id"].get<std::int32_t>();
        CHECK(tok.token_to_id(t["content"].get<std::string>()) == id);
        CHECK(tok.id_to_token(id) == t["content"].get<std::string>());
        CHECK(tok.is_special(id) == t["special"].get<bool>());
    }
    CHECK(tok.bos_id() == tok.token_to_id("<s>"));
    CHECK(tok.eos_id() == tok.token_to_id("</s>"));
    CHECK(tok.pad_id() == tok.token_to_id("<pad>"));
    CHECK(tok.bos_id().has_value());
}

TEST_CASE("LLaMA-style tokenizer.json adds <s> ... </s> and the legacy layout adds only <s>", "[tokenizer][golden]") {
    auto const style = Tokenizer::from_hf_json(data_dir() / "llama_style.tokenizer.json");
    auto const legacy = Tokenizer::from_hf_json(data_dir() / "llama_legacy.tokenizer.json");
    auto const a = style.encode("Hello", true);
    auto const b = legacy.encode("Hello", true);
    REQUIRE(a.size() >= 2);
    CHECK(a.front() == style.bos_id());
    CHECK(a.back() == style.eos_id());
    CHECK(b.front() == legacy.bos_id());
    CHECK(b.back() != legacy.eos_id());
    CHECK(style.unk_id() == style.token_to_id("<unk>"));
}

TEST_CASE("an NFKC tokenizer (HF's SentencePieceBPETokenizer) encodes and decodes as HF", "[tokenizer][golden]") {
    std::ifstream in(data_dir() / "unicode_cases.json");
    REQUIRE(in);
    auto const all = json::parse(in);
    auto const& entry = all["sentencepiece_bpe"];
    auto const tok = Tokenizer::from_hf_json(data_dir() / entry["file"].get<std::string>());
    auto const texts = all["texts"].get<std::vector<std::string>>();
    REQUIRE(texts.size() == entry["ids"].size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
        INFO("text " << i << ": " << json(texts[i]).dump());
        auto const ids = entry["ids"][i].get<std::vector<std::int32_t>>();
        CHECK(tok.encode(texts[i], true) == ids);
        CHECK(tok.decode(ids, true) == entry["decoded_skip_special"][i].get<std::string>());  // <unk> is special
    }
}
