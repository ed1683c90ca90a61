/// @file tests/unit/model_source.cpp
/// @brief The C++ Size struct of an HF config.json (io/model_source.hpp, what polyalpaca_add_trainer(HF_CONFIG)
///        generates and polyalpaca-inspect --cpp prints): the members of each family, exact values, and a clear
///        refusal of what no model type here expresses.
#include <polyalpaca/io/hf_config.hpp>
#include <polyalpaca/io/model_source.hpp>
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

namespace pa = polyalpaca;
namespace io = polyalpaca::io;
using Catch::Contains;

TEST_CASE("the Size struct of a preset's config.json names the preset's values", "[io][model_source]") {
    auto const llama = io::model_source(io::hf_config_json<pa::Llama<pa::llama::OpenLlama3b>>(), "OpenLlama3bSize");
    CHECK(llama.size_struct ==
          "struct OpenLlama3bSize : polyalpaca::llama::Defaults {\n"
          "    static constexpr int vocab = 32000, hidden = 3200, layers = 26, heads = 32, kv_heads = 32, ffn = 8640;\n"
          "    static constexpr double norm_eps = 1e-06, rope_base = 10000.0;\n"
          "    static constexpr bool tied_head = false;\n};\n");
    CHECK(llama.family_template == "polyalpaca::Llama");
    CHECK(llama.lora_sites == "polyalpaca::site::Query, polyalpaca::site::Value");  // PEFT's q_proj, v_proj
    CHECK(llama.head_dim == 100);

    auto const bloom = io::model_source(io::hf_config_json<pa::Bloom<pa::bloom::Size560m>>(), "S");
    CHECK(bloom.size_struct == "struct S : polyalpaca::bloom::Defaults {\n"
                               "    static constexpr int vocab = 250880, hidden = 1024, layers = 24, heads = 16;\n"
                               "    static constexpr double norm_eps = 1e-05;\n};\n");
    CHECK(bloom.lora_sites == "polyalpaca::site::Qkv");

    auto const neox = io::model_source(io::hf_config_json<pa::GptNeoX<pa::gpt_neox::SizeTiny>>(), "S");
    CHECK(neox.size_struct == "struct S : polyalpaca::gpt_neox::Defaults {\n"
                              "    static constexpr int vocab = 96, hidden = 32, layers = 2, heads = 4;\n"
                              "    static constexpr double norm_eps = 1e-05, rotary_pct = 0.5, rope_base = 10000.0;\n};\n");
    CHECK_THAT(neox.header(), Contains("#pragma once\n#include <polyalpaca/models/gpt_neox.hpp>\n"));

    // A GPT-NeoX with its own MLP width and a sequential residual (use_parallel_residual: false).
    auto const sequential = io::model_source(io::hf_config_json<pa::GptNeoX<pa::gpt_neox::SizeTinySequential>>(), "S");
    CHECK(sequential.size_struct ==
          "struct S : polyalpaca::gpt_neox::Defaults {\n"
          "    static constexpr int vocab = 96, hidden = 32, layers = 2, heads = 4;\n"
          "    static constexpr double norm_eps = 1e-05, rotary_pct = 0.5, rope_base = 10000.0;\n"
          "    static constexpr int ffn = 96;\n"
          "    static constexpr bool parallel_residual = false;\n};\n");
}

TEST_CASE("a shape that is no preset keeps every value that differs", "[io][model_source]") {
    auto config = io::hf_config_json<pa::Llama<pa::llama::SizeTinyTied>>();
    config["rope_theta"] = 500000.0;
    config["rope_parameters"]["rope_theta"] = 500000.0;
    config["rms_norm_eps"] = 1e-5;
    auto const m = io::model_source(config, "Mine");
    CHECK_THAT(m.size_struct, Contains("kv_heads = 2, ffn = 64;\n"));
    CHECK_THAT(m.size_struct, Contains("norm_eps = 1e-05, rope_base = 5e+05;\n"));
    CHECK_THAT(m.size_struct, Contains("tied_head = true;\n"));
}

TEST_CASE("a config no model type expresses is refused with every reason and the file's name", "[io][model_source]") {
    auto neox = io::hf_config_json<pa::GptNeoX<pa::gpt_neox::SizeTiny>>();
    neox["tie_word_embeddings"] = true;
    neox["rope_parameters"]["rope_type"] = "dynamic";
    CHECK_THROWS_WITH(io::model_source(neox, "S", "models/x/config.json"),
                      Contains("'models/x/config.json' describes a model no gpt_neox type here expresses:") &&
                          Contains("rope_parameters.rope_type") &&
                          Contains("tie_word_embeddings: GPT-NeoX here has an untied head"));

    auto bloom = io::hf_config_json<pa::Bloom<pa::bloom::SizeTiny>>();
    bloom["tie_word_embeddings"] = false;
    CHECK_THROWS_WITH(io::model_source(bloom, "S"), Contains("tie_word_embeddings: BLOOM ties its head"));

    auto llama = io::hf_config_json<pa::Llama<pa::llama::SizeTiny>>();
    llama["rope_parameters"]["rope_type"] = "linear";
    llama["rope_parameters"]["factor"] = 2.0;
    CHECK_THROWS_WITH(io::model_source(llama, "S"), Contains("rope_parameters.rope_type"));

    llama = io::hf_config_json<pa::Llama<pa::llama::SizeTiny>>();
    llama["num_attention_heads"] = 5;
    CHECK_THROWS_WITH(io::model_source(llama, "S"), Contains("5 attention heads do not divide hidden size 32"));

    CHECK_THROWS_WITH(io::model_source({{"model_type", "mistral"}}, "S", "m.json"), Contains("\"mistral\" is not one of"));
}

TEST_CASE("a config.json nested deeper than any HF file is refused while it is read", "[io][model_source]") {
    // Copying, comparing or printing such a value would recurse once per level: it must never get that far.
    std::string text = R"({"model_type": "llama", "vocab_size": )";
    for (int i = 0; i < 100'000; ++i) text += '[';
    for (int i = 0; i < 100'000; ++i) text += ']';
    text += "}";
    CHECK_THROWS_WITH(io::parse_json_text(text, "deep/config.json"),
                      Contains("'deep/config.json' nests deeper than 64 levels"));
    auto const shallow = io::parse_json_text(R"({"model_type": "llama", "vocab_size": [[1, 2]]})", "shallow.json");
    CHECK_THROWS_WITH(io::model_source(shallow, "S", "shallow.json"),
                      Contains("\"vocab_size\" is array of 1 elements, not a count"));
}

TEST_CASE("the Size struct's name must be a C++ identifier", "[io][model_source]") {
    auto const config = io::hf_config_json<pa::Llama<pa::llama::SizeTiny>>();
    CHECK_NOTHROW(io::model_source(config, "my_size_2"));
    for (std::string bad : {"", "2size", "my size", "a-b"})
        CHECK_THROWS_WITH(io::model_source(config, bad), Contains("must be a C++ identifier"));
}
