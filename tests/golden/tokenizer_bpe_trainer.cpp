/// @file tests/golden/tokenizer_bpe_trainer.cpp
/// @brief The study's suite BPE (tokenizer/bpe_trainer.hpp, study/study_tokenizer.hpp) against HF tokenizers'
///        BpeTrainer: the same merges in the same order from the same suite's text, and the tokenizer.json written
///        from them cuts prompts and answers into HF's tokens.
///
/// tests/golden/data/tokenizers/suite_bpe.json is written by tools/make_bpe_golden.py (tokenizers 0.23.3) from a suite
/// made by polyalpaca_make_suite; it records the suite's config, and the test builds the same suite here.

#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/fixtures.hpp"

#include "polyalpaca/data/synthetic/suite.hpp"
#include "polyalpaca/study/study_tokenizer.hpp"

namespace pa = polyalpaca;
namespace ps = polyalpaca::study;

TEST_CASE("the suite BPE learns HF BpeTrainer's merges and cuts text as HF's tokenizer does", "[golden][tokenizer]") {
    auto const path = pa::testing::golden_dir() / "tokenizers" / "suite_bpe.json";
    std::ifstream in(path);
    REQUIRE(in);
    auto const golden = nlohmann::json::parse(in);
    REQUIRE(golden.at("split_pattern").get<std::string>() == ps::suite_bpe_split_pattern);

    auto const& c = golden.at("suite_config");
    pa::synthetic::SyntheticSuiteConfig config;
    config.languages = c.at("languages").get<std::vector<std::string>>();
    config.zero_shot = c.at("zero_shot").get<std::vector<std::string>>();
    config.train_per_language = c.at("train_per_language");
    config.test_per_language = c.at("test_per_language");
    config.pretrain_sentences_per_language = c.at("pretrain_sentences_per_language");
    config.seed = c.at("seed");
    auto const suite = pa::synthetic::build_synthetic_suite(config);
    ps::StudyData data;
    for (auto const& lang : suite.languages) {
        std::string const code(lang.pack->code);
        for (auto const& item : lang.train) data.train[code].push_back(item.record);
        data.pretrain[code] = lang.pretrain;
    }
    auto const compact = pa::PromptTemplate::from_json_text(ps::compact_template_json(), "compact");
    auto const corpus = ps::suite_tokenizer_corpus(data, compact);

    std::size_t const vocab = golden.at("vocab_size");
    auto const merges = pa::tokenizer::train_byte_level_bpe(corpus, ps::suite_bpe_pre_tokenizer(),
                                                            {.new_tokens = vocab - ps::byte_vocab_size});
    auto const& expected = golden.at("merges");
    REQUIRE(merges.size() == expected.size());
    for (std::size_t i = 0; i < merges.size(); ++i) {
        INFO("merge " << i);
        REQUIRE(merges[i].first + " " + merges[i].second == expected[i].get<std::string>());
    }

    auto const tokenizer = pa::Tokenizer::from_hf_json_text(ps::byte_level_bpe_json(merges), "suite BPE");
    CHECK(tokenizer.vocab_size() == std::int32_t(vocab));
    for (auto const& test : golden.at("cases")) {
        auto const text = test.at("text").get<std::string>();
        INFO(text);
        std::vector<std::string> tokens;
        for (auto id : tokenizer.encode(text, false)) tokens.push_back(tokenizer.id_to_token(id));
        CHECK(tokens == test.at("tokens").get<std::vector<std::string>>());
        CHECK(tokenizer.decode(tokenizer.encode(text, false)) == text);
    }
}
