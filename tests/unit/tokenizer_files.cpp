/// @file tests/unit/tokenizer_files.cpp
/// @brief Loading tokenizer files built here (tokenizer.json, tokenizer_config.json, tokenizer.model, tokenizer.bin),
/// and bad input: truncated, garbage and unsupported files, invalid UTF-8, bad ids are Errors naming the file and the
/// place, never a crash.

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/tokenizer.hpp"

using polyalpaca::Error;
using polyalpaca::Tokenizer;
using namespace polyalpaca::tokenizer;
using nlohmann::json;

namespace {

/// A small byte-level BPE tokenizer.json written for these tests: the 256 byte characters, two merges, <s>.
json tiny() {
    json vocab = json::object();
    for (int b = 0; b < 256; ++b) vocab[byte_level::table().utf8[b]] = b;
    vocab["ab"] = 256;
    vocab["Ġab"] = 257;
    vocab["<s>"] = 258;
    return {
        {"version", "1.0"},
        {"added_tokens",
         {{{"id", 258},
           {"content", "<s>"},
           {"single_word", false},
           {"lstrip", false},
           {"rstrip", false},
           {"normalized", false},
           {"special", true}}}},
        {"normalizer", nullptr},
        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
        {"post_processor",
         {{"type", "TemplateProcessing"},
          {"single",
           {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
          {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {258}}, {"tokens", {"<s>"}}}}}}}},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model",
         {{"type", "BPE"},
          {"dropout", nullptr},
          {"unk_token", nullptr},
          {"vocab", vocab},
          {"merges", {"a b", "Ġ ab"}}}},
    };
}

/// The message of the Error `load` throws; fails the test when it throws nothing.
template <class Load>
std::string error_of(Load const& load) {
    try {
        load();
    } catch (Error const& e) {
        return e.what();
    }
    FAIL("no polyalpaca::Error");
    return {};
}

std::string json_error(std::string const& text) {
    return error_of([&] { Tokenizer::from_hf_json_text(text, "tiny.json"); });
}
std::string json_error_of(json const& j) { return json_error(j.dump()); }

// Protobuf wire format, to build sentencepiece models in memory.
std::string varint(std::uint64_t v) {
    std::string out;
    do {
        out += static_cast<char>((v & 0x7F) | (v > 0x7F ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return out;
}
std::string field(int number, std::uint64_t value) { return varint(std::uint64_t(number) << 3) + varint(value); }
std::string field(int number, std::string const& bytes) {
    return varint((std::uint64_t(number) << 3) | 2) + varint(bytes.size()) + bytes;
}
std::string float_field(int number, float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, 4);
    std::string out = varint((std::uint64_t(number) << 3) | 5);
    for (int i = 0; i < 4; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xFF);
    return out;
}

/// A BPE model: <unk>, <s>, </s>, 256 byte pieces, then a few merges' results with falling scores.
std::string tiny_model(int model_type = 2, std::string const& charsmap = "", std::string const& extra_byte = "") {
    std::string pieces;
    auto piece = [&](std::string const& text, float score, int type) {
        pieces += field(1, field(1, text) + float_field(2, score) + field(3, std::uint64_t(type)));
    };
    piece("<unk>", 0, 2);
    piece("<s>", 0, 3);
    piece("</s>", 0, 3);
    static constexpr char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) piece(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">", 0, 6);
    if (!extra_byte.empty()) piece(extra_byte, 0, 6);
    float score = 0;
    for (std::string text : {"\xE2\x96\x81", "a", "b", "c", "ab",
                             "\xE2\x96\x81"
                             "a",
                             "\xE2\x96\x81"
                             "ab",
                             "bc"})
        piece(text, score -= 1, 1);
    auto const trainer =
        field(3, std::uint64_t(model_type)) + field(35, std::uint64_t(1)) + field(43, ~std::uint64_t(0));
    auto normalizer = field(1, std::string("identity")) + field(4, std::uint64_t(0));
    if (!charsmap.empty()) normalizer += field(2, charsmap);
    return pieces + field(2, trainer) + field(3, normalizer);
}

std::filesystem::path write_temp(std::string const& name, std::string const& bytes) {
    auto const path = std::filesystem::temp_directory_path() / ("polyalpaca_tokenizer_" + name);
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
}

}  // namespace

TEST_CASE("a small tokenizer.json loads and round-trips", "[tokenizer][unit]") {
    auto const tok = Tokenizer::from_hf_json_text(tiny().dump());
    CHECK(tok.vocab_size() == 259);
    CHECK(tok.bos_id() == 258);
    CHECK(tok.encode("ab ab", false) == std::vector<std::int32_t>{256, 257});
    for (std::string text : {"ab ab", "", "x y z é 🦙 <s>ab", "  \n\t"}) {
        auto const ids = tok.encode(text, false);
        CHECK(tok.decode(ids) == text);
        auto const with = tok.encode(text, true);
        REQUIRE(!with.empty());
        CHECK(with.front() == 258);
    }
}

TEST_CASE("broken tokenizer.json files are Errors naming the file and the JSON path", "[tokenizer][unit]") {
    CHECK_THAT(json_error("{"), Catch::Contains("tiny.json") && Catch::Contains("not valid JSON at byte offset"));
    CHECK_THAT(json_error("[1, 2]"), Catch::Contains("$: expected a tokenizer.json object"));
    // Found by fuzz/tokenizer_json_fuzzer: a number beyond double's range is nlohmann's out_of_range, not a
    // parse_error, and escaped the reader.
    CHECK_THAT(json_error(R"({"model": {"dropout": 556E556}})"),
               Catch::Contains("tiny.json: not valid JSON") && Catch::Contains("number overflow"));
    auto edit = [](auto const& change) {
        auto j = tiny();
        change(j);
        return json_error_of(j);
    };
    CHECK_THAT(edit([](json& j) { j.erase("model"); }), Catch::Contains("$: missing member \"model\""));
    CHECK_THAT(edit([](json& j) { j["model"]["type"] = "WordPiece"; }),
               Catch::Contains("$.model") && Catch::Contains("'WordPiece' is not supported"));
    CHECK_THAT(edit([](json& j) { j["model"]["vocab"]["ab"] = "1"; }),
               Catch::Contains("$.model.vocab[\"ab\"]") && Catch::Contains("expected an integer"));
    CHECK_THAT(edit([](json& j) { j["model"]["vocab"]["ab"] = 700; }),
               Catch::Contains("not below the vocabulary size"));
    CHECK_THAT(edit([](json& j) { j["model"]["merges"][0] = "a c"; }),
               Catch::Contains("$.model.merges[0]") && Catch::Contains("'ac' is not in the vocabulary"));
    CHECK_THAT(edit([](json& j) { j["model"]["merges"][1] = "Ġ  ab"; }),
               Catch::Contains("$.model.merges[1]") && Catch::Contains("one space"));
    CHECK_THAT(edit([](json& j) { j["model"]["dropout"] = 0.1; }), Catch::Contains("$.model.dropout"));
    CHECK_THAT(
        edit([](json& j) {
            j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFKC"}}, {{"type", "NFKC_CF"}}}}};
        }),
        Catch::Contains("$.normalizer.normalizers[1]") && Catch::Contains("'NFKC_CF' is not supported") &&
            Catch::Contains("NFKC, NFKD, Lowercase") && Catch::Contains("Precompiled"));
    CHECK_THAT(edit([](json& j) {
                   j["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "AAA*"}};
               }),
               Catch::Contains("$.normalizer.precompiled_charsmap") && Catch::Contains("base64"));
    CHECK_THAT(edit([](json& j) {
                   j["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "QAAAAA=="}};
               }),
               Catch::Contains("$.normalizer.precompiled_charsmap") && Catch::Contains("trie of 64 bytes"));
    CHECK_THAT(edit([](json& j) {
                   j["normalizer"] = {{"type", "BertNormalizer"}, {"lowercase", true}};
               }),
               Catch::Contains("$.normalizer") && Catch::Contains("missing member \"clean_text\""));
    CHECK_THAT(edit([](json& j) {
                   j["pre_tokenizer"] = {{"type", "Sequence"},
                                         {"pretokenizers", {{{"type", "UnicodeScripts"}}, {{"type", "Unigram"}}}}};
               }),
               Catch::Contains("$.pre_tokenizer.pretokenizers[1]") && Catch::Contains("'Unigram' is not supported") &&
                   Catch::Contains("BertPreTokenizer, CharDelimiterSplit, FixedLength, UnicodeScripts"));
    CHECK_THAT(edit([](json& j) {
                   j["pre_tokenizer"] = {{"type", "FixedLength"}, {"length", 0}};
               }),
               Catch::Contains("$.pre_tokenizer.length") && Catch::Contains("at least 1"));
    CHECK_THAT(edit([](json& j) {
                   j["pre_tokenizer"] = {{"type", "CharDelimiterSplit"}, {"delimiter", "ab"}};
               }),
               Catch::Contains("$.pre_tokenizer.delimiter") && Catch::Contains("exactly one character"));
    CHECK_THAT(edit([](json& j) {
                   j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}};
               }),
               Catch::Contains("$.pre_tokenizer.pattern.Regex") && Catch::Contains("does not compile"));
    CHECK_THAT(edit([](json& j) {
                   j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", "a"}}}, {"behavior", "Sideways"}};
               }),
               Catch::Contains("$.pre_tokenizer.behavior") && Catch::Contains("'Sideways'"));
    CHECK_THAT(edit([](json& j) { j["post_processor"]["special_tokens"]["<s>"]["ids"][0] = -5; }),
               Catch::Contains("$.post_processor.special_tokens.<s>.ids[0]"));
    CHECK_THAT(edit([](json& j) {
                   j["decoder"] = {{"type", "CTC"}};
               }),
               Catch::Contains("$.decoder") && Catch::Contains("'CTC'"));
    CHECK_THAT(edit([](json& j) { j["added_tokens"][0]["content"] = 3; }),
               Catch::Contains("$.added_tokens[0].content") && Catch::Contains("expected a string"));
    CHECK_THAT(error_of([] { Tokenizer::from_hf_json("/nonexistent/tokenizer.json"); }),
               Catch::Contains("/nonexistent/tokenizer.json: cannot open"));
}

TEST_CASE("tokenizer_config.json beside tokenizer.json names BOS, EOS and PAD", "[tokenizer][unit]") {
    auto const dir = std::filesystem::temp_directory_path() / "polyalpaca_tokenizer_config";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "tokenizer.json") << tiny().dump();
    std::filesystem::remove(dir / "tokenizer_config.json");
    auto const plain = Tokenizer::from_hf_json(dir / "tokenizer.json");
    CHECK(plain.bos_id() == 258);  // the special added token <s>
    CHECK_FALSE(plain.eos_id().has_value());
    CHECK_FALSE(plain.pad_id().has_value());
    std::ofstream(dir / "tokenizer_config.json")
        << R"({"bos_token": "<s>", "eos_token": {"content": "ab", "special": true}, "pad_token": "Ġab"})";
    auto const configured = Tokenizer::from_hf_json(dir / "tokenizer.json");
    CHECK(configured.bos_id() == 258);
    CHECK(configured.eos_id() == 256);
    CHECK(configured.pad_id() == 257);
    std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": "</s>"})";
    CHECK_THAT(error_of([&] { Tokenizer::from_hf_json(dir / "tokenizer.json"); }),
               Catch::Contains("tokenizer_config.json: $.eos_token") && Catch::Contains("'</s>' is not in"));
    std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": 5})";
    CHECK_THAT(error_of([&] { Tokenizer::from_hf_json(dir / "tokenizer.json"); }),
               Catch::Contains("$.eos_token: expected a token string"));
}

TEST_CASE("every truncation of a tokenizer.json loads or is an Error", "[tokenizer][unit]") {
    auto const text = tiny().dump();
    for (std::size_t n = 0; n < text.size(); n += 3) {
        try {
            Tokenizer::from_hf_json_text(text.substr(0, n), "cut.json");
            FAIL("a truncated tokenizer.json loaded at " << n);
        } catch (Error const& e) {
            CHECK_THAT(e.what(), Catch::StartsWith("cut.json: "));
        }
    }
}

TEST_CASE("invalid UTF-8 text and unknown ids are Errors", "[tokenizer][unit]") {
    auto const tok = Tokenizer::from_hf_json_text(tiny().dump());
    CHECK_THAT(error_of([&] { tok.encode("ab\xC3(", true); }), Catch::Contains("invalid UTF-8 at byte offset 2"));
    std::vector<std::int32_t> const ids{0, 259};
    CHECK_THAT(error_of([&] { tok.decode(ids); }), Catch::Contains("token id 259"));
    CHECK_THAT(error_of([&] { tok.id_to_token(-1); }), Catch::Contains("token id -1"));
}

TEST_CASE("a sentencepiece model built in memory encodes, falls back to bytes and round-trips", "[tokenizer][unit]") {
    auto const path = write_temp("tiny.model", tiny_model());
    auto const tok = Tokenizer::from_sentencepiece(path);
    CHECK(tok.vocab_size() == 3 + 256 + 8);
    CHECK(tok.bos_id() == 1);
    CHECK(tok.eos_id() == 2);
    for (std::string text : {"ab abc", "ab  ba", "é🦙", " a", ""}) {
        auto const ids = tok.encode(text, false);
        CHECK(tok.decode(ids) == text);
    }
    auto const ids = tok.encode("é", false);  // not a piece: its two bytes
    CHECK(ids == std::vector<std::int32_t>{tok.token_to_id("\xE2\x96\x81").value(), 3 + 0xC3, 3 + 0xA9});
}

TEST_CASE("broken or unsupported sentencepiece models are Errors naming the file", "[tokenizer][unit]") {
    auto const good = tiny_model();
    auto const unigram = write_temp("unigram.model", tiny_model(1));
    CHECK_THAT(error_of([&] { Tokenizer::from_sentencepiece(unigram); }),
               Catch::Contains("unigram.model") && Catch::Contains("UNIGRAM") && Catch::Contains("only BPE"));
    auto const nfkc = write_temp("nfkc.model", tiny_model(2, "\x01\x02\x03"));
    CHECK_THAT(error_of([&] { Tokenizer::from_sentencepiece(nfkc); }), Catch::Contains("precompiled"));
    auto const bad_byte = write_temp("byte.model", tiny_model(2, "", "<0x4>"));
    CHECK_THAT(error_of([&] { Tokenizer::from_sentencepiece(bad_byte); }),
               Catch::Contains("byte.model: piece 259 has type BYTE but is '<0x4>'"));
    auto const empty = write_temp("empty.model", "");
    CHECK_THAT(error_of([&] { Tokenizer::from_sentencepiece(empty); }), Catch::Contains("only BPE"));
    auto const wire = write_temp("wire.model", field(1, std::uint64_t(3)) + good);
    CHECK_THAT(error_of([&] { Tokenizer::from_sentencepiece(wire); }),
               Catch::Contains("byte offset 0") && Catch::Contains("'pieces' has wire type 0"));
    // Every truncation loads (a cut between fields is a valid, smaller message) or is an Error naming the file.
    std::size_t errors = 0;
    for (std::size_t n = 0; n < good.size(); n += 7) {
        try {
            polyalpaca::tokenizer::parse_sentencepiece_model(good.substr(0, n), "cut.model");
        } catch (Error const& e) {
            CHECK_THAT(e.what(), Catch::StartsWith("cut.model: "));
            ++errors;
        }
    }
    CHECK(errors > 0);
    std::mt19937 rng(7);
    for (int trial = 0; trial < 200; ++trial) {
        std::string garbage(1 + rng() % 300, '\0');
        for (auto& c : garbage) c = static_cast<char>(rng());
        try {
            polyalpaca::tokenizer::parse_sentencepiece_model(garbage, "garbage.model");
        } catch (Error const& e) {
            CHECK_THAT(e.what(), Catch::StartsWith("garbage.model: "));
        }
    }
}

TEST_CASE("broken llama2.c tokenizer.bin files are Errors with the offset", "[tokenizer][unit]") {
    std::string bin;
    auto i32 = [&](std::uint32_t v) {
        for (int k = 0; k < 4; ++k) bin += static_cast<char>((v >> (8 * k)) & 0xFF);
    };
    i32(6);
    for (std::string piece : {"<unk>", "\n<s>\n", "\n</s>\n", " a", "b"}) {
        i32(0);
        i32(static_cast<std::uint32_t>(piece.size()));
        bin += piece;
    }
    auto const spec = parse_llama2c_tokenizer(bin, "ok.bin");
    CHECK(spec.pieces == std::vector<std::string>{"<unk>", "<s>", "</s>",
                                                  "\xE2\x96\x81"
                                                  "a",
                                                  "b"});
    CHECK_THAT(error_of([&] { parse_llama2c_tokenizer(bin.substr(0, bin.size() - 1), "cut.bin"); }),
               Catch::Contains("cut.bin: byte offset") && Catch::Contains("runs past the end"));
    CHECK_THAT(error_of([&] { parse_llama2c_tokenizer(bin.substr(0, 6), "cut.bin"); }), Catch::Contains("truncated"));
    CHECK_THAT(error_of([&] { parse_llama2c_tokenizer(std::string("\xFF\xFF\xFF\xFF", 4), "neg.bin"); }),
               Catch::Contains("max_token_length"));
}

TEST_CASE("unsupported llama.cpp vocabularies are Errors", "[tokenizer][unit]") {
    LlamaCppVocabulary v;
    v.model = "bert";
    v.tokens = {"a", "b"};
    CHECK_THAT(error_of([&] { Tokenizer::from_llama_cpp(v, "v.gguf"); }), Catch::Contains("'bert' is not supported"));
    v.model = "gpt2";
    v.pre = "qwen2";
    CHECK_THAT(error_of([&] { Tokenizer::from_llama_cpp(v, "v.gguf"); }), Catch::Contains("'qwen2' is not supported"));
    v.model = "llama";
    CHECK_THAT(error_of([&] { Tokenizer::from_llama_cpp(v, "v.gguf"); }), Catch::Contains("0 scores for 2 tokens"));
}

TEST_CASE("encoding from several threads gives the sequential results", "[tokenizer][unit]") {
    auto const path = write_temp("threads.model", tiny_model());
    auto const tok = Tokenizer::from_sentencepiece(path);
    std::vector<std::string> texts;
    std::mt19937 rng(3);
    for (int i = 0; i < 400; ++i) {
        std::string t;
        for (int k = 0; k < 40; ++k) t += std::vector<std::string>{"a", "b", " ", "c", "\xC3\xA9", "ab"}[rng() % 6];
        texts.push_back(t);
    }
    std::vector<std::vector<std::int32_t>> expected;
    for (auto const& t : texts) expected.push_back(tok.encode(t));
    std::vector<int> mismatches(4, 0);
    std::vector<std::thread> threads;
    for (int w = 0; w < 4; ++w)
        threads.emplace_back([&, w] {
            for (std::size_t i = 0; i < texts.size(); ++i) {
                auto const k = (i + std::size_t(w) * 97) % texts.size();  // each thread starts elsewhere
                if (tok.encode(texts[k]) != expected[k]) ++mismatches[std::size_t(w)];
            }
        });
    for (auto& t : threads) t.join();
    CHECK(mismatches == std::vector<int>(4, 0));
}
