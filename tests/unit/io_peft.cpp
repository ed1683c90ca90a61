// PEFT adapters: save / load round trips, adapters PEFT wrote, adapter_config.json checks, and merging a LoRA model
// into plain weights (logits equal to the unmerged model's) and saving it as an HF checkpoint.
#include <polyalpaca/io/hf_weights.hpp>
#include <polyalpaca/io/peft.hpp>
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "support/fixtures.hpp"

namespace pa = polyalpaca;
namespace io = polyalpaca::io;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

using BloomLora = pa::Bloom<pa::bloom::SizeTiny, pa::LoRA<4, 8, pa::site::Qkv>>;
using NeoxLora = pa::GptNeoX<pa::gpt_neox::SizeTiny, pa::LoRA<4, 8, pa::site::Qkv, pa::site::MlpDown>>;
using LlamaLora = pa::Llama<pa::llama::SizeTiny, pa::LoRA<4, 8, pa::site::Query, pa::site::Value>>;
using LlamaTiedLora = pa::Llama<pa::llama::SizeTinyTied, pa::LoRA<2, 16, pa::site::Key, pa::site::MlpGate>>;
using BloomDora = pa::Bloom<pa::bloom::SizeTiny, pa::DoRA<4, 8, pa::site::Qkv, pa::site::MlpUp>>;
using LlamaDora = pa::Llama<pa::llama::SizeTiny, pa::DoRA<4, 8, pa::site::Query, pa::site::Value>>;
using NeoxIa3 = pa::GptNeoX<pa::gpt_neox::SizeTiny, pa::IA3<pa::site::Qkv, pa::site::MlpDown>>;
using LlamaTiedIa3 = pa::Llama<pa::llama::SizeTinyTied, pa::IA3<pa::site::Key, pa::site::Value, pa::site::MlpDown>>;

template <class Model>
using BaseOf =
    std::conditional_t<Model::family == std::string_view("bloom"), pa::Bloom<typename Model::config>,
                       std::conditional_t<Model::family == std::string_view("gpt_neox"),
                                          pa::GptNeoX<typename Model::config>, pa::Llama<typename Model::config>>>;

fs::path scratch_dir(std::string const& name) {
    auto dir = fs::temp_directory_path() / ("polyalpaca_io_peft_" + name);
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

/// Gives every lora_B a nonzero value and moves every other adapter tensor but lora_A (DoRA's magnitudes, IA3's
/// scales) by a few percent: a fresh adapter changes nothing.
template <class Net>
void train_adapter_a_little(Net& net, std::uint64_t seed) {
    pa::Rng rng(seed);
    for (auto* p : net.parameters().parameters()) {
        if (p->name.ends_with(".lora_B.weight"))
            for (pa::Index i = 0; i < p->size(); ++i) p->value[i] = float(0.05 * rng.normal());
        else if (p->of_adapter() && !p->name.ends_with(".lora_A.weight"))
            for (pa::Index i = 0; i < p->size(); ++i) p->value[i] *= float(1.0 + 0.05 * rng.normal());
    }
}

double max_abs_difference(std::vector<float> const& a, std::vector<float> const& b) {
    REQUIRE(a.size() == b.size());
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
    return worst;
}

std::string golden_name(std::string const& family, bool tied) { return tied ? "llama_tied" : family; }

}  // namespace

TEMPLATE_TEST_CASE("save_peft_adapter then load_peft_adapter gives identical logits", "[io][peft]", BloomLora, NeoxLora,
                   LlamaLora, LlamaTiedLora) {
    pa::cpu::Context ctx;
    pa::CausalLm<TestType, pa::CpuEigen, float> trained(ctx, {.seed = 3});
    train_adapter_a_little(trained, 11);
    auto const dir = scratch_dir("roundtrip");
    io::save_peft_adapter(ctx, trained, dir / "adapter", "polyalpaca/tiny", 0.05);

    pa::CausalLm<TestType, pa::CpuEigen, float> fresh(ctx, {.seed = 3});  // same base weights, B = 0
    CHECK(logits_of(ctx, fresh) != logits_of(ctx, trained));
    io::load_peft_adapter(ctx, fresh, dir / "adapter");
    CHECK(logits_of(ctx, fresh) == logits_of(ctx, trained));

    auto const config = io::read_json_file(dir / "adapter" / "adapter_config.json");
    CHECK(config["peft_type"] == "LORA");
    CHECK(config["task_type"] == "CAUSAL_LM");
    CHECK(config["r"] == TestType::adapter::rank);
    CHECK(config["lora_alpha"] == TestType::adapter::alpha);
    CHECK(config["lora_dropout"] == 0.05);
    CHECK(config["base_model_name_or_path"] == "polyalpaca/tiny");
    // The same fields as the adapter_config.json PEFT itself wrote (tests/golden/data/models/*-lora), but the version.
    auto peft_written = io::read_json_file(pa::testing::golden_dir() / "models" / "llama-lora" / "adapter_config.json");
    peft_written.erase("peft_version");
    for (auto const& [key, value] : peft_written.items()) {
        INFO(key);
        REQUIRE(config.contains(key));
        if (key != "base_model_name_or_path") CHECK(config[key].type() == value.type());
    }
    CHECK(config.size() == peft_written.size());

    auto const file = io::SafetensorsFile::open(dir / "adapter" / "adapter_model.safetensors");
    CHECK(file.metadata().at("format") == "pt");
    for (auto const& t : file.tensors()) {
        INFO(t.name);
        CHECK(t.name.starts_with("base_model.model."));
        CHECK((t.name.ends_with(".lora_A.weight") || t.name.ends_with(".lora_B.weight")));
    }
}

TEMPLATE_TEST_CASE("adapters PEFT wrote load, and the merged model equals the LoRA model", "[io][peft][merge]",
                   BloomLora, LlamaLora) {
    pa::cpu::Context ctx;
    auto const name = golden_name(TestType::family, false);
    auto const golden = pa::testing::golden_dir() / "models";
    pa::CausalLm<TestType, pa::CpuEigen, float> lora(ctx, {.seed = 5});
    CHECK(io::load_hf_checkpoint(ctx, lora, golden / name).empty());
    io::load_peft_adapter(ctx, lora, golden / (name + "-lora"));

    pa::CausalLm<BaseOf<TestType>, pa::CpuEigen, float> merged(ctx, {.seed = 6});
    io::merge_adapter(ctx, lora, merged);
    double const error = max_abs_difference(logits_of(ctx, lora), logits_of(ctx, merged));
    INFO("max |logits(LoRA) - logits(merged)| = " << error);
    CHECK(error <= 1e-5);
    CHECK(error > 0);  // the adapter PEFT wrote is not zero: merging changed the weights
}

TEMPLATE_TEST_CASE("merging then saving as an HF checkpoint keeps the LoRA model's logits", "[io][peft][merge]",
                   BloomLora, NeoxLora, LlamaLora, LlamaTiedLora) {
    pa::cpu::Context ctx;
    pa::CausalLm<TestType, pa::CpuEigen, float> lora(ctx, {.seed = 7});
    train_adapter_a_little(lora, 13);
    pa::CausalLm<BaseOf<TestType>, pa::CpuEigen, float> merged(ctx, {.seed = 8});
    io::merge_adapter(ctx, lora, merged);
    auto const want = logits_of(ctx, lora);
    CHECK(max_abs_difference(want, logits_of(ctx, merged)) <= 1e-5);

    auto const dir = scratch_dir("merged");
    io::save_hf_checkpoint(ctx, merged, dir);
    pa::CausalLm<BaseOf<TestType>, pa::CpuEigen, float> reloaded(ctx, {.seed = 9});
    CHECK(io::load_hf_checkpoint(ctx, reloaded, dir).empty());
    CHECK(logits_of(ctx, reloaded) == logits_of(ctx, merged));

    // save_merged_hf_checkpoint (a trainer's --merge) writes the same checkpoint from the LoRA network alone, and
    // leaves that network as it was.
    auto const direct = scratch_dir("merged_direct");
    io::save_merged_hf_checkpoint(ctx, lora, direct);
    CHECK(logits_of(ctx, lora) == want);
    pa::CausalLm<BaseOf<TestType>, pa::CpuEigen, float> direct_reloaded(ctx, {.seed = 10});
    CHECK(io::load_hf_checkpoint(ctx, direct_reloaded, direct).empty());
    CHECK(logits_of(ctx, direct_reloaded) == logits_of(ctx, merged));  // the same product on the same values
    CHECK(io::read_hf_config(direct) == io::read_hf_config(dir));
}

TEMPLATE_TEST_CASE("DoRA and IA3 adapters: save then load gives identical logits; the merged model gives the same",
                   "[io][peft][merge]", BloomDora, LlamaDora, NeoxIa3, LlamaTiedIa3) {
    pa::cpu::Context ctx;
    pa::CausalLm<TestType, pa::CpuEigen, float> trained(ctx, {.seed = 3});
    pa::CausalLm<TestType, pa::CpuEigen, float> fresh(ctx, {.seed = 3});
    pa::CausalLm<BaseOf<TestType>, pa::CpuEigen, float> base(ctx, {.seed = 3});
    CHECK(max_abs_difference(logits_of(ctx, fresh), logits_of(ctx, base)) <= 1e-5);  // a fresh adapter changes nothing
    train_adapter_a_little(trained, 11);
    auto const dir = scratch_dir("roundtrip_" + std::string(TestType::adapter::method));
    io::save_peft_adapter(ctx, trained, dir / "adapter", "polyalpaca/tiny", 0.05);
    CHECK(logits_of(ctx, fresh) != logits_of(ctx, trained));
    io::load_peft_adapter(ctx, fresh, dir / "adapter");
    CHECK(logits_of(ctx, fresh) == logits_of(ctx, trained));

    auto const config = io::read_json_file(dir / "adapter" / "adapter_config.json");
    bool const dora = TestType::adapter::method == std::string_view("dora");
    CHECK(config["peft_type"] == (dora ? "LORA" : "IA3"));
    CHECK(config.value("use_dora", false) == dora);
    auto const file = io::SafetensorsFile::open(dir / "adapter" / "adapter_model.safetensors");
    for (auto const& t : file.tensors()) {  // PEFT's shapes: the magnitude [out], an IA3 scale [out, 1] or [1, in]
        INFO(t.name);
        if (t.name.ends_with(".lora_magnitude_vector")) CHECK(t.shape.size() == 1);
        if (t.name.ends_with(".ia3_l")) CHECK((t.shape.size() == 2 && (t.shape[0] == 1 || t.shape[1] == 1)));
    }

    pa::CausalLm<BaseOf<TestType>, pa::CpuEigen, float> merged(ctx, {.seed = 5});
    io::merge_adapter(ctx, trained, merged);
    auto const want = logits_of(ctx, trained);
    double scale = 0;
    for (float v : want) scale = std::max(scale, double(std::abs(v)));
    CHECK(max_abs_difference(logits_of(ctx, merged), want) <= 1e-5 * scale);
}

TEST_CASE("DoRA and IA3 adapters that do not fit the compiled adapter are refused with every reason", "[io][peft]") {
    pa::cpu::Context ctx;
    auto const golden = pa::testing::golden_dir() / "models";
    pa::CausalLm<pa::Llama<pa::llama::SizeTiny, pa::LoRA<4, 8, pa::site::Query, pa::site::Value>>, pa::CpuEigen, float>
        lora(ctx);
    CHECK_THROWS_WITH(io::load_peft_adapter(ctx, lora, golden / "llama-dora"),
                      Contains("does not match the model's LoRA:") && Contains("use_dora: expected false, found true"));
    pa::CausalLm<pa::Llama<pa::llama::SizeTiny, pa::DoRA<4, 8, pa::site::Query, pa::site::Value>>, pa::CpuEigen, float>
        dora(ctx);
    CHECK_THROWS_WITH(io::load_peft_adapter(ctx, dora, golden / "llama-lora"),
                      Contains("does not match the model's DoRA:") && Contains("use_dora: expected true, found false"));
    CHECK_THROWS_WITH(io::load_peft_adapter(ctx, dora, golden / "llama-ia3"),
                      Contains("peft_type: expected \"LORA\", found \"IA3\""));

    pa::CausalLm<pa::Llama<pa::llama::SizeTiny, pa::IA3<pa::site::Key, pa::site::Value>>, pa::CpuEigen, float>
        attention_only(ctx);  // PEFT's adapter also scales down_proj, a feed-forward module
    CHECK_THROWS_WITH(io::load_peft_adapter(ctx, attention_only, golden / "llama-ia3"),
                      Contains("does not match the model's IA3:") &&
                          Contains("feedforward_modules: expected [], found [\"down_proj\"]"));
    pa::CausalLm<pa::Llama<pa::llama::SizeTiny, pa::IA3<pa::site::Key, pa::site::Value, pa::site::MlpDown>>,
                 pa::CpuEigen, float>
        ia3(ctx);
    CHECK_THROWS_WITH(io::load_peft_adapter(ctx, ia3, golden / "llama-lora"),
                      Contains("peft_type: expected \"IA3\", found \"LORA\""));
}

TEST_CASE("adapters that do not fit the compiled LoRA are refused with every reason", "[io][peft]") {
    pa::cpu::Context ctx;
    auto const golden = pa::testing::golden_dir() / "models" / "llama-lora";  // PEFT: r 4, alpha 8, q_proj, v_proj
    pa::CausalLm<pa::Llama<pa::llama::SizeTiny, pa::LoRA<2, 16, pa::site::Query, pa::site::Value>>, pa::CpuEigen, float>
        other(ctx);
    CHECK_THROWS_WITH(io::load_peft_adapter(ctx, other, golden),
                      Contains("adapter_config.json' does not match the model's LoRA:") &&
                          Contains("r: expected 2, found 4") && Contains("lora_alpha: expected 16, found 8"));

    pa::CausalLm<pa::Llama<pa::llama::SizeTiny, pa::LoRA<4, 8, pa::site::Query, pa::site::Key>>, pa::CpuEigen, float>
        sites(ctx);
    CHECK_THROWS_WITH(io::load_peft_adapter(ctx, sites, golden),
                      Contains("lacks 4 tensors the model's LoRA needs: "
                               "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"));

    pa::CausalLm<pa::Llama<pa::llama::SizeTiny, pa::LoRA<4, 8, pa::site::Query>>, pa::CpuEigen, float> fewer(ctx);
    CHECK_THROWS_WITH(io::load_peft_adapter(ctx, fewer, golden),
                      Contains("holds 4 tensors the model has no place for: "
                               "base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight"));

    auto const dir = scratch_dir("bad");
    pa::CausalLm<LlamaLora, pa::CpuEigen, float> net(ctx);
    io::save_peft_adapter(ctx, net, dir);
    auto config = io::read_json_file(dir / "adapter_config.json");
    config["use_rslora"] = true;
    config["peft_type"] = "IA3";
    io::write_file_atomically(dir / "adapter_config.json", config.dump());
    CHECK_THROWS_WITH(io::load_peft_adapter(ctx, net, dir), Contains("peft_type: expected \"LORA\", found \"IA3\"") &&
                                                                Contains("use_rslora: expected false, found true"));

    using Adapter = LlamaLora::adapter;
    pa::PeftSettings settings;
    settings.target_modules = {"q_proj"};
    CHECK_THROWS_WITH(io::save_peft_adapter<Adapter>(ctx, net.parameters(), dir, settings),
                      Contains("target_modules lacks 'v_proj', which the model adapts"));
    settings.target_modules = {"q_proj", "v_proj", "o_proj"};
    CHECK_THROWS_WITH(io::save_peft_adapter<Adapter>(ctx, net.parameters(), dir, settings),
                      Contains("target_modules names 'o_proj', but model.layers.0.self_attn.o_proj has no adapter"));
}

// Run by hand: POLYALPACA_EXPORT_DIR=/tmp/pa_export build/tests/unit_tests_0 "[.export]" (unit_io_peft when built
// with -DPOLYALPACA_TEST_UNITY=0), then tools/verify_outputs.py.
TEMPLATE_TEST_CASE("export an adapter, a merged checkpoint and their logits for tools/verify_outputs.py", "[.export]",
                   BloomLora, NeoxLora, LlamaLora, LlamaTiedLora, BloomDora, LlamaDora, NeoxIa3, LlamaTiedIa3) {
    char const* root = std::getenv("POLYALPACA_EXPORT_DIR");
    REQUIRE(root != nullptr);
    bool const llama_tied = std::is_same_v<typename TestType::config, pa::llama::SizeTinyTied>;
    std::string const tag = std::string(TestType::family) + (llama_tied ? "_tied" : "") + "_" +
                            std::string(TestType::adapter::method);
    auto const dir = fs::path(root) / tag;
    fs::remove_all(dir);
    pa::cpu::Context ctx;
    pa::CausalLm<TestType, pa::CpuEigen, float> lora(ctx, {.seed = 21});
    train_adapter_a_little(lora, 22);
    pa::CausalLm<BaseOf<TestType>, pa::CpuEigen, float> base(ctx, {.seed = 21});
    io::save_hf_checkpoint(ctx, base, dir / "base");
    io::save_peft_adapter(ctx, lora, dir / "adapter", "base");
    pa::CausalLm<BaseOf<TestType>, pa::CpuEigen, float> merged(ctx, {.seed = 23});
    io::merge_adapter(ctx, lora, merged);
    io::save_hf_checkpoint(ctx, merged, dir / "merged");

    auto const batch = tiny_batch();
    auto const logits = logits_of(ctx, lora);
    std::vector<float> ids(batch.ids.begin(), batch.ids.end());
    io::write_safetensors(dir / "logits.safetensors",
                          {{"input_ids", io::DType::F32, {batch.batch(), batch.seq()}, ids},
                           {"logits", io::DType::F32, {batch.batch(), batch.seq(), TestType::config::vocab}, logits}},
                          {{"format", "pt"}});
}
