/// @file tests/unit/gguf_adapter.cpp
/// @brief PEFT LoRA adapters as GGUF adapter files (io/gguf_adapter.hpp): the keys and tensors llama.cpp's --lora
///        loads, A as PEFT saved it, B's rows in the base tensor's GGUF order, and the errors for what llama.cpp
///        cannot load.
#include <polyalpaca/io/gguf_adapter.hpp>
#include <polyalpaca/io/safetensors_writer.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "support/fixtures.hpp"

namespace pa = polyalpaca;
namespace io = polyalpaca::io;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

fs::path models() { return pa::testing::golden_dir() / "models"; }

fs::path scratch_dir() {
    static fs::path const dir = [] {
        auto d = fs::temp_directory_path() / ("polyalpaca_gguf_adapter_" + std::to_string(::getpid()));
        fs::create_directories(d);
        return d;
    }();
    return dir;
}

std::vector<float> read_all(io::SafetensorsCheckpoint const& c, std::string const& name) {
    std::vector<float> v(std::size_t(c.find(name)->element_count()));
    c.read(name, std::span<float>(v));
    return v;
}

std::vector<float> read_all(io::GgufFile const& f, std::string const& name) {
    std::vector<float> v(std::size_t(f.tensor(name).elements));
    f.read_tensor(name, std::span<float>(v));
    return v;
}

/// A copy of the golden adapter `name` with adapter_config.json changed by `edit`.
template <class Edit>
fs::path edited_adapter(std::string const& name, std::string const& copy, Edit const& edit) {
    auto const dir = scratch_dir() / copy;
    fs::create_directories(dir);
    fs::copy_file(models() / name / "adapter_model.safetensors", dir / "adapter_model.safetensors",
                  fs::copy_options::overwrite_existing);
    auto config = io::read_json_file(models() / name / "adapter_config.json");
    edit(config);
    std::ofstream(dir / "adapter_config.json") << config.dump();
    return dir;
}

}  // namespace

TEST_CASE("a BLOOM LoRA as a GGUF adapter: keys, A as is, B regrouped as the base's fused qkv",
          "[io][gguf][adapter]") {
    auto const out = scratch_dir() / "bloom_lora.gguf";
    auto const result = io::export_peft_lora_to_gguf(models() / "bloom", models() / "bloom-lora", out, "bloom-lora");
    CHECK(result.architecture == "bloom");
    CHECK(result.modules == 2);  // query_key_value of both layers
    CHECK(result.rank == 4);
    CHECK(result.alpha == 8.0);
    io::GgufFile g(out);
    CHECK(g.get_string("general.architecture") == "bloom");
    CHECK(g.get_string("general.type") == "adapter");
    CHECK(g.get_string("adapter.type") == "lora");
    CHECK(g.get_number("adapter.lora.alpha") == 8.0);
    CHECK(g.tensors().size() == 4);
    auto const peft = io::SafetensorsCheckpoint::open(models() / "bloom-lora" / "adapter_model.safetensors");
    std::string const module = "base_model.model.transformer.h.1.self_attention.query_key_value";
    auto const& a = g.tensor("blk.1.attn_qkv.weight.lora_a");
    auto const& b = g.tensor("blk.1.attn_qkv.weight.lora_b");
    CHECK(a.type == io::GgmlType::F32);
    CHECK(a.dims == std::vector<std::int64_t>{32, 4});  // ggml order of A (4, 32)
    CHECK(b.dims == std::vector<std::int64_t>{4, 96});  // of B (96, 4)
    CHECK(read_all(g, a.name) == read_all(peft, module + ".lora_A.weight"));
    auto const peft_b = read_all(peft, module + ".lora_B.weight"), gguf_b = read_all(g, b.name);
    int const heads = 4, head_dim = 8, rank = 4;  // bloom::SizeTiny
    for (int kind = 0; kind < 3; ++kind)
        for (int h = 0; h < heads; ++h)
            for (int i = 0; i < head_dim; ++i)
                for (int r = 0; r < rank; ++r)
                    REQUIRE(gguf_b[std::size_t(((kind * heads + h) * head_dim + i) * rank + r)] ==
                            peft_b[std::size_t(((h * 3 + kind) * head_dim + i) * rank + r)]);
}

TEST_CASE("a GGUF adapter is refused for what llama.cpp cannot load, naming the file", "[io][gguf][adapter]") {
    auto const out = scratch_dir() / "refused.gguf";
    CHECK_THROWS_WITH(io::export_peft_lora_to_gguf(models() / "gpt_neox", models() / "bloom-lora", out, "x"),
                      Contains("bloom-lora/adapter_model.safetensors: tensor 'base_model.model.transformer.h.0.") &&
                          Contains("adapts 'transformer.h.0.self_attention.query_key_value.weight', which a GGUF "
                                   "gptneox model does not have"));
    CHECK_THROWS_WITH(io::export_peft_lora_to_gguf(models() / "bloom", models() / "bloom-dora", out, "x"),
                      Contains("use_dora is true; llama.cpp has no DoRA"));
    CHECK_THROWS_WITH(io::export_peft_lora_to_gguf(models() / "bloom", models() / "bloom-ia3", out, "x"),
                      Contains("peft_type is 'IA3'"));
    auto const rslora = edited_adapter("bloom-lora", "rslora", [](auto& c) { c["use_rslora"] = true; });
    CHECK_THROWS_WITH(io::export_peft_lora_to_gguf(models() / "bloom", rslora, out, "x"),
                      Contains("rslora/adapter_config.json: use_rslora is true"));
    auto const pattern = edited_adapter("bloom-lora", "pattern", [](auto& c) { c["rank_pattern"] = {{"h.0", 2}}; });
    CHECK_THROWS_WITH(io::export_peft_lora_to_gguf(models() / "bloom", pattern, out, "x"),
                      Contains("rank_pattern is set"));
    // An adapter of a wider BLOOM: its A does not fit this base's query_key_value.
    auto const wider = scratch_dir() / "wider";
    fs::create_directories(wider);
    fs::copy_file(models() / "bloom-lora" / "adapter_config.json", wider / "adapter_config.json",
                  fs::copy_options::overwrite_existing);
    std::vector<float> const a(4 * 64, 0.5f), b(96 * 4, 0.25f);
    io::write_safetensors(
        wider / "adapter_model.safetensors",
        {{"base_model.model.transformer.h.0.self_attention.query_key_value.lora_A.weight", io::DType::F32, {4, 64}, a},
         {"base_model.model.transformer.h.0.self_attention.query_key_value.lora_B.weight", io::DType::F32, {96, 4},
          b}});
    CHECK_THROWS_WITH(io::export_peft_lora_to_gguf(models() / "bloom", wider, out, "x"),
                      Contains("[4, 64]") && Contains("do not fit the base's "
                                                      "'transformer.h.0.self_attention.query_key_value.weight' [96, 32]"));
    CHECK_FALSE(fs::exists(out));
}
