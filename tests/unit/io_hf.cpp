// HF checkpoints: config.json checks and presets, save / load round trips through CausalLm for every family, BLOOM's
// unprefixed names, tied heads, and the errors and warnings of checkpoints that do not fit the model.
#include <polyalpaca/io/hf_weights.hpp>
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "support/fixtures.hpp"

namespace pa = polyalpaca;
namespace io = polyalpaca::io;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

using BloomTiny = pa::Bloom<pa::bloom::SizeTiny>;
using NeoxTiny = pa::GptNeoX<pa::gpt_neox::SizeTiny>;
using LlamaTiny = pa::Llama<pa::llama::SizeTiny>;
using LlamaTinyTied = pa::Llama<pa::llama::SizeTinyTied>;
struct MetaLayout : pa::llama::SizeTiny {
    static constexpr pa::RopeStyle rope_style = pa::RopeStyle::AdjacentPairs;
};

fs::path scratch_dir(std::string const& name) {
    auto dir = fs::temp_directory_path() / ("polyalpaca_io_hf_" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

pa::TokenBatch tiny_batch() {
    xt::xtensor<std::int32_t, 2> ids = {{5, 17, 3, 88, 42, 0, 61}, {95, 1, 2, 30, 30, 7, 12}};
    return pa::make_lm_batch(ids);
}

template <class Net>
std::vector<float> logits_of(pa::cpu::Context& ctx, Net& net) {
    auto const batch = tiny_batch();
    std::vector<float> out(std::size_t(batch.tokens()) * Net::vocab);
    net.logits(ctx, batch, pa::View<float>(out.data(), batch.tokens(), Net::vocab));
    return out;
}

/// A checkpoint's tensors as float32, to edit and write back.
struct Tensor {
    std::string name;
    std::vector<std::int64_t> shape;
    std::vector<float> values;
};

std::vector<Tensor> read_all(fs::path const& dir) {
    auto const ckpt = io::SafetensorsCheckpoint::open(dir);
    std::vector<Tensor> out;
    for (auto const& t : ckpt.tensors()) {
        out.push_back({t.name, t.shape, std::vector<float>(std::size_t(t.element_count()))});
        ckpt.read(t.name, std::span<float>(out.back().values));
    }
    return out;
}

void write_all(fs::path const& dir, std::vector<Tensor> const& tensors) {
    std::vector<io::TensorToWrite> out;
    for (auto const& t : tensors) out.push_back({t.name, io::DType::F32, t.shape, t.values});
    fs::create_directories(dir);
    io::write_safetensors(dir / "model.safetensors", out, {{"format", "pt"}});
}

std::string load_error(pa::cpu::Context& ctx, pa::ParameterStore<pa::CpuEigen, float>& store, fs::path const& dir) {
    try {
        io::load_hf_weights(ctx, store, dir);
    } catch (pa::Error const& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEMPLATE_TEST_CASE("config.json written by transformers matches the tiny presets", "[io][hf_config]", BloomTiny,
                   NeoxTiny, LlamaTiny, LlamaTinyTied) {
    std::string const name = TestType::family == std::string("gpt_neox") ? "gpt_neox"
                             : std::is_same_v<TestType, LlamaTinyTied>   ? "llama_tied"
                                                                         : TestType::family;
    auto const dir = pa::testing::golden_dir() / "models" / name;
    CHECK_NOTHROW(io::check_config<TestType>(dir));
    CHECK_NOTHROW(io::check_config<TestType>(io::hf_config_json<TestType>(), "ours"));
    auto const config = io::read_hf_config(dir);
    auto const spec = io::spec_from_config(config);
    CHECK(spec.parameter_count == TestType::parameter_count);
    CHECK_THAT(io::matching_preset(config), Contains("tiny"));
}

TEST_CASE("every preset is recognised from its config, with its parameter count", "[io][hf_config]") {
    for (auto const& preset : io::presets()) {
        INFO(preset.name);
        CHECK(io::parameter_count(preset.spec) == preset.spec.parameter_count);
    }
    CHECK(io::matching_preset(io::hf_config_json<pa::Bloom<pa::bloom::Size560m>>()) == "bloom-560m");
    CHECK(io::matching_preset(io::hf_config_json<pa::GptNeoX<pa::gpt_neox::Size1b4>>()) == "pythia-1.4b");
    CHECK(io::matching_preset(io::hf_config_json<pa::Llama<pa::llama::Size7b>>()) == "llama-7b = open-llama-7b");
    auto config = io::hf_config_json<pa::Bloom<pa::bloom::Size560m>>();
    config["n_layer"] = 12;
    CHECK(io::matching_preset(config).empty());
    auto const nearest = io::nearest_preset(config);
    CHECK(nearest.name == "bloom-560m");
    CHECK(nearest.differences == std::vector<std::string>{"n_layer: expected 24, found 12"});
    CHECK(io::spec_from_config(config).parameter_count < pa::Bloom<pa::bloom::Size560m>::parameter_count);
}

TEST_CASE("GPT-NeoX's use_parallel_residual and intermediate_size are read, written and checked", "[io][hf_config]") {
    auto const dir = pa::testing::golden_dir() / "models" / "gpt_neox_sequential";  // written by transformers
    using Sequential = pa::GptNeoX<pa::gpt_neox::SizeTinySequential>;
    CHECK_NOTHROW(io::check_config<Sequential>(dir));
    auto const config = io::read_hf_config(dir);
    auto const spec = io::spec_from_config(config);
    CHECK_FALSE(spec.parallel_residual);
    CHECK(spec.ffn == 96);
    CHECK(spec.parameter_count == Sequential::parameter_count);
    CHECK(io::matching_preset(config) == "gpt-neox-tiny-sequential");
    auto const ours = io::hf_config_json<Sequential>();
    CHECK(ours["use_parallel_residual"] == false);
    CHECK(ours["intermediate_size"] == 96);
    CHECK_THROWS_WITH(io::check_config<pa::GptNeoX<pa::gpt_neox::SizeTiny>>(config, "c.json"),
                      Contains("use_parallel_residual: expected true, found false") &&
                          Contains("intermediate_size: expected 128, found 96"));
}

TEST_CASE("a config that differs lists every mismatching field in one Error", "[io][hf_config]") {
    auto config = io::read_hf_config(pa::testing::golden_dir() / "models" / "llama");
    config["num_hidden_layers"] = 3;
    config["rms_norm_eps"] = 1e-5;
    config["hidden_act"] = "gelu";
    config.erase("num_key_value_heads");
    config["rope_parameters"]["rope_type"] = "linear";
    try {
        io::check_config<LlamaTiny>(config, "some/dir/config.json");
        FAIL("no error");
    } catch (pa::Error const& e) {
        std::string const m = e.what();
        CHECK_THAT(m, Contains("'some/dir/config.json' does not match the model type (5 fields)"));
        CHECK_THAT(m, Contains("num_hidden_layers: expected 2, found 3"));
        CHECK_THAT(m, Contains("num_key_value_heads: expected 2, found 4 (absent: transformers' default)"));
        CHECK_THAT(m, Contains("rms_norm_eps: expected 1e-06, found 1e-05"));
        CHECK_THAT(m, Contains("hidden_act: expected \"silu\", found \"gelu\""));
        CHECK_THAT(m, Contains("rope_parameters.rope_type: expected \"default\", found \"linear\""));
    }
    auto neox = io::hf_config_json<NeoxTiny>();
    neox["use_parallel_residual"] = false;
    neox.erase("rope_parameters");
    neox["rotary_pct"] = 0.25;
    CHECK_THROWS_WITH(io::check_config<NeoxTiny>(neox, "neox.json"),
                      Contains("use_parallel_residual: expected true, found false") &&
                          Contains("rotary_pct: expected 0.5, found 0.25"));
    CHECK_THROWS_WITH(io::check_config<BloomTiny>(neox, "neox.json"),
                      Contains("model_type: expected \"bloom\", found \"gpt_neox\""));
    CHECK_THROWS_WITH(io::check_config<pa::Llama<MetaLayout>>(io::hf_config_json<LlamaTiny>(), "c.json"),
                      Contains("rope layout: expected \"adjacent pairs (Meta)\", found \"rotate-half\""));
    auto const dir = scratch_dir("config");
    io::write_file_atomically(dir / "config.json", "{\"model_type\": ");
    CHECK_THROWS_WITH(io::check_config<LlamaTiny>(dir), Contains("config.json' is not valid JSON"));
    CHECK_THROWS_WITH(io::check_config<LlamaTiny>(dir / "absent.json"), Contains("cannot open"));
}

TEMPLATE_TEST_CASE("save_hf_checkpoint then load gives identical logits", "[io][hf_weights]", BloomTiny, NeoxTiny,
                   LlamaTiny, LlamaTinyTied) {
    pa::cpu::Context ctx;
    pa::CausalLm<TestType, pa::CpuEigen, float> saved(ctx, {.seed = 1});
    auto const dir = scratch_dir("roundtrip");
    io::save_hf_checkpoint(ctx, saved, dir);
    CHECK(fs::exists(dir / "config.json"));
    pa::CausalLm<TestType, pa::CpuEigen, float> loaded(ctx, {.seed = 2});
    CHECK(logits_of(ctx, loaded) != logits_of(ctx, saved));
    CHECK(io::load_hf_checkpoint(ctx, loaded, dir).empty());
    CHECK(logits_of(ctx, loaded) == logits_of(ctx, saved));

    // bf16: every weight comes back as its bf16 rounding.
    io::save_hf_checkpoint(ctx, saved, dir, io::DType::BF16);
    CHECK(io::read_hf_config(dir)["torch_dtype"] == "bfloat16");
    CHECK(io::load_hf_checkpoint(ctx, loaded, dir).empty());
    for (auto* p : loaded.parameters().parameters()) {
        auto const* q = saved.parameters().find(p->name);
        for (pa::Index i = 0; i < p->size(); ++i)
            REQUIRE(p->value[i] == io::bf16_to_float(io::float_to_bf16(q->value[i])));
    }
    // The HF checkpoints of tests/golden/data/models load without a warning.
    if constexpr (std::is_same_v<TestType, LlamaTinyTied>)
        CHECK(io::load_hf_checkpoint(ctx, loaded, pa::testing::golden_dir() / "models" / "llama_tied").empty());
    else if constexpr (std::is_same_v<TestType, NeoxTiny>)
        CHECK(io::load_hf_checkpoint(ctx, loaded, pa::testing::golden_dir() / "models" / "gpt_neox").empty());
    else
        CHECK(io::load_hf_checkpoint(ctx, loaded, pa::testing::golden_dir() / "models" / TestType::family).empty());
}

TEST_CASE("BLOOM loads names without \"transformer.\", an equal lm_head, and warns of unused tensors",
          "[io][hf_weights]") {
    pa::cpu::Context ctx;
    pa::CausalLm<BloomTiny, pa::CpuEigen, float> saved(ctx, {.seed = 1});
    auto const dir = scratch_dir("bloom");
    io::save_hf_checkpoint(ctx, saved, dir / "ours");
    auto const ours = read_all(dir / "ours");
    auto bare = ours;
    for (auto& t : bare) t.name = t.name.substr(std::string("transformer.").size());
    bare.push_back({"unused.weight", {2}, {1.0f, 2.0f}});
    write_all(dir / "bare", bare);

    pa::CausalLm<BloomTiny, pa::CpuEigen, float> loaded(ctx, {.seed = 2});
    CHECK(io::load_hf_weights(ctx, loaded.parameters(), dir / "bare") ==
          "checkpoint '" + (dir / "bare").string() + "': 1 tensors the model does not use: unused.weight");
    CHECK(logits_of(ctx, loaded) == logits_of(ctx, saved));

    auto const* embedding = saved.parameters().find("transformer.word_embeddings.weight");
    std::vector<float> head(embedding->value, embedding->value + embedding->size());
    auto with_head = ours;
    with_head.push_back({"lm_head.weight", {96, 32}, head});
    write_all(dir / "head", with_head);
    CHECK(io::load_hf_weights(ctx, loaded.parameters(), dir / "head").empty());

    with_head.back().values[5] += 1.0f;
    write_all(dir / "untied", with_head);
    CHECK_THAT(load_error(ctx, loaded.parameters(), dir / "untied"),
               Contains("lm_head.weight differs from the word embeddings, but the model ties its head"));
}

TEST_CASE("checkpoints that do not fit the model are refused with the tensors named", "[io][hf_weights]") {
    pa::cpu::Context ctx;
    pa::CausalLm<LlamaTiny, pa::CpuEigen, float> net(ctx, {.seed = 1});
    auto const dir = scratch_dir("bad");
    io::save_hf_checkpoint(ctx, net, dir / "ours");
    auto const ours = read_all(dir / "ours");
    auto& store = net.parameters();

    auto missing = ours;
    std::erase_if(missing, [](Tensor const& t) {
        return t.name == "model.layers.1.self_attn.k_proj.weight" || t.name == "lm_head.weight";
    });
    write_all(dir / "missing", missing);
    CHECK_THAT(load_error(ctx, store, dir / "missing"),
               Contains("checkpoint '" + (dir / "missing").string() +
                        "': lacks 2 of the model's 21 tensors: "
                        "model.layers.1.self_attn.k_proj.weight, lm_head.weight"));

    auto wrong_shape = ours;
    for (auto& t : wrong_shape)
        if (t.name == "model.layers.0.self_attn.k_proj.weight") t.shape = {32, 16};
    write_all(dir / "shape", wrong_shape);
    CHECK_THAT(load_error(ctx, store, dir / "shape"),
               Contains("tensor \"model.layers.0.self_attn.k_proj.weight\" has shape [32, 16], but "
                        "model.layers.0.self_attn.k_proj.weight needs [16, 32]"));

    auto rows = ours;  // vectors stored as (1, n) are accepted, and so are the buffers older checkpoints carry
    for (auto& t : rows)
        if (t.shape.size() == 1) t.shape = {1, t.shape[0]};
    rows.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", {4}, {1, 2, 3, 4}});
    write_all(dir / "rows", rows);
    CHECK(load_error(ctx, store, dir / "rows").empty());

    std::vector<float> ids(32);
    fs::create_directories(dir / "int");
    io::write_safetensors(dir / "int" / "model.safetensors", {{"model.norm.weight", io::DType::F16, {32}, ids}});
    {  // patch the dtype to I16 (same size): a float parameter cannot take integers
        auto bytes = io::read_text_file(dir / "int" / "model.safetensors");
        bytes.replace(bytes.find("\"F16\""), 5, "\"I16\"");
        io::write_file_atomically(dir / "int" / "model.safetensors", bytes);
    }
    CHECK_THAT(load_error(ctx, store, dir / "int"), Contains("has dtype I16, not a float type"));
    CHECK_THAT(load_error(ctx, store, dir / "nothing_here"), Contains("holds neither model.safetensors"));

    // A LoRA model loads a base checkpoint, adapter weights untouched; adapter keys in a base checkpoint are unused.
    pa::CausalLm<pa::Llama<pa::llama::SizeTiny, pa::LoRA<2, 4, pa::site::Query>>, pa::CpuEigen, float> lora(ctx);
    auto const* a = lora.parameters().find("model.layers.0.self_attn.q_proj.lora_A.weight");
    std::vector<float> const a_before(a->value, a->value + a->size());
    CHECK(io::load_hf_weights(ctx, lora.parameters(), dir / "ours").empty());
    CHECK(std::vector<float>(a->value, a->value + a->size()) == a_before);
    CHECK_THROWS_WITH(io::save_hf_checkpoint(ctx, lora.parameters(), dir / "lora", io::hf_config_json<LlamaTiny>()),
                      Contains("model.layers.0.self_attn.q_proj.lora_A.weight is an adapter weight: merge the adapter"));
    auto with_lora = ours;
    with_lora.push_back({"model.layers.0.self_attn.q_proj.lora_A.weight", {2, 32}, std::vector<float>(64)});
    write_all(dir / "with_lora", with_lora);
    CHECK_THAT(io::load_hf_weights(ctx, store, dir / "with_lora"),
               Contains("1 tensors the model does not use: model.layers.0.self_attn.q_proj.lora_A.weight"));
}
