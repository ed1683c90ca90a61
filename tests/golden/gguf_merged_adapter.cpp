/// @file tests/golden/gguf_merged_adapter.cpp
/// @brief A PEFT adapter merged into its base on the way to a GGUF file (io/peft_merge.hpp through
///        export_hf_to_gguf, polyalpaca_export --merge): the golden LLaMA, BLOOM and GPT-NeoX with their LoRA, DoRA
///        and IA3 adapters, loaded back from the file, give the logits PEFT gave the adapted model; an adapter of
///        another base is refused before anything is written.

#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include <unistd.h>

#include "model_parity.hpp"

#include "polyalpaca/io/gguf_export.hpp"
#include "polyalpaca/io/peft_merge.hpp"

namespace pa = polyalpaca;
namespace io = polyalpaca::io;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

fs::path scratch(std::string const& name) {
    static fs::path const dir = [] {
        auto d = fs::temp_directory_path() / ("polyalpaca_gguf_merged_" + std::to_string(::getpid()));
        fs::create_directories(d);
        return d;
    }();
    return dir / name;
}

}  // namespace

TEMPLATE_TEST_CASE("a PEFT adapter merged on the way to GGUF gives PEFT's logits", "[io][gguf][golden]",
                   pa::Llama<pa::llama::SizeTiny>, pa::Bloom<pa::bloom::SizeTiny>,
                   pa::GptNeoX<pa::gpt_neox::SizeTiny>) {
    using Model = TestType;
    auto const spec = pa::spec_of<Model>();
    std::string const golden = spec.family;  // "llama", "bloom", "gpt_neox"
    pa::testing::GoldenReference const base_ref(golden), adapters_ref(golden, "adapters.safetensors");
    auto const batch = pa::testing::golden_batch(base_ref, "labels.masked");
    for (std::string const kind : {"lora", "dora", "ia3"}) {
        INFO(golden << " with its " << kind);
        auto merge = io::PeftMerge::open(pa::testing::golden_model_dir(golden + "-" + kind));
        auto const path = scratch(golden + "-" + kind + ".gguf");
        io::export_hf_to_gguf(pa::testing::golden_model_dir(golden), path, io::GgmlType::F32, kind, {}, &merge);
        pa::cpu::Context ctx;
        pa::CausalLm<Model, pa::CpuEigen, float> loaded(ctx, {.seed = 9});
        io::load_gguf(ctx, io::GgufFile(path), loaded);
        auto const& ref = kind == "lora" ? base_ref : adapters_ref;
        double const e = pa::testing::logits_error<decltype(loaded), float>(ctx, loaded, batch, ref, kind + ".logits");
        pa::testing::report(golden, "float", "merged " + kind + " GGUF logits", e);
        CHECK(e <= pa::testing::parity_tolerance);
    }
}

TEST_CASE("merging an adapter of another base is refused before anything is written", "[io][gguf][golden]") {
    auto const out = scratch("refused.gguf");
    auto merge = io::PeftMerge::open(pa::testing::golden_model_dir("bloom-dora"));
    CHECK_THROWS_WITH(
        io::export_hf_to_gguf(pa::testing::golden_model_dir("gpt_neox"), out, io::GgmlType::F32, "x", {}, &merge),
        Contains("bloom-dora/adapter_config.json: the adapter adapts "
                 "'transformer.h.0.self_attention.query_key_value.weight', which the base"));
    CHECK(!fs::exists(out));
    CHECK_THROWS_WITH(io::PeftMerge::open(pa::testing::golden_model_dir("bloom")), Contains("adapter_config.json"));
}

TEST_CASE("an adapter_config.json that is not an object, or whose peft_type is not a string, is refused",
          "[io][gguf]") {
    // Found by peft_merge_fuzzer: both escaped as nlohmann::json's type_error instead of an Error naming the file.
    auto const dir = scratch("bad_adapter");
    fs::create_directories(dir);
    auto refused = [&](std::string const& config, std::string const& expected) {
        std::ofstream(dir / "adapter_config.json") << config;
        CHECK_THROWS_WITH(io::PeftMerge::open(dir), Contains("adapter_config.json: " + expected));
    };
    refused("7", "a number, not a JSON object");
    refused(R"({"peft_type": 3})", "peft_type is not a string");
    refused(R"({"peft_type": "PROMPT_TUNING"})", "peft_type 'PROMPT_TUNING' cannot be merged");
    fs::remove_all(dir);
}
