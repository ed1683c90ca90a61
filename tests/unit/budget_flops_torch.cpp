// FLOPs per token against torch's FlopCounterMode over a real HF forward + backward (tools/make_study_golden.py).
// Full-parameter training matches exactly. Under LoRA autograd also skips input gradients nobody needs: those of the
// first layer's projections whose input (the frozen embedding) carries no gradient, and for GPT-NeoX's parallel
// block the first layer's whole MLP. Our 4 N_mm convention counts them; the difference is checked term by term.
#include <polyalpaca/models/bloom.hpp>
#include <polyalpaca/models/gpt_neox.hpp>
#include <polyalpaca/models/llama.hpp>
#include <polyalpaca/train/flops.hpp>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include "support/fixtures.hpp"

namespace pa = polyalpaca;

namespace {
using QkvLora = pa::LoRA<8, 16, pa::site::Qkv>;
using AllLora = pa::LoRA<8, 16, pa::site::Qkv, pa::site::AttnOut, pa::site::MlpUp, pa::site::MlpDown>;
using LlamaQkv = pa::LoRA<8, 16, pa::site::Query, pa::site::Key, pa::site::Value>;

// What autograd skips per token in layer 0 under LoRA (d = 32, r = 8): 2 x (base weights + adapter A weights) of the
// projections that read the frozen embedding.
constexpr double d = 32, r = 8;
constexpr double bloom_skip = 2 * (d * 3 * d) + 2 * r * d;
constexpr double neox_skip = bloom_skip + 2 * (2 * d * 4 * d);  // parallel block: the MLP reads the embedding too
constexpr double llama_skip = 2 * (d * d + 2 * d * 16) + 3 * 2 * r * d;  // q 32x32, k and v 32x16 (2 kv heads)

struct Ours {
    pa::FlopCost cost;
    double skipped_per_token;
    pa::Index adapter_weights;
};
template <class Model>
Ours ours(double skip = 0) {
    return {pa::flop_cost<Model>(), skip, Model::adapter_parameter_count};
}

nlohmann::json golden_cases() {
    std::ifstream in(pa::testing::golden_dir() / "study" / "flops.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in)["cases"];
}
}  // namespace

TEST_CASE("FLOPs per token match torch's FlopCounterMode on HF models", "[budget][flops][golden]") {
    std::map<std::string, Ours> const models{
        {"bloom_full", ours<pa::Bloom<pa::bloom::SizeTiny>>()},
        {"bloom_lora_qkv", ours<pa::Bloom<pa::bloom::SizeTiny, QkvLora>>(bloom_skip)},
        {"bloom_lora_all", ours<pa::Bloom<pa::bloom::SizeTiny, AllLora>>(bloom_skip)},
        {"gpt_neox_full", ours<pa::GptNeoX<pa::gpt_neox::SizeTiny>>()},
        {"gpt_neox_lora_qkv", ours<pa::GptNeoX<pa::gpt_neox::SizeTiny, QkvLora>>(neox_skip)},
        {"llama_full", ours<pa::Llama<pa::llama::SizeTiny>>()},
        {"llama_lora_qkv", ours<pa::Llama<pa::llama::SizeTiny, LlamaQkv>>(llama_skip)},
        {"llama_tied_full", ours<pa::Llama<pa::llama::SizeTinyTied>>()},
    };
    std::size_t checked = 0;
    for (auto const& c : golden_cases()) {
        std::string const name = c["name"];
        INFO(name);
        REQUIRE(models.count(name) == 1);
        Ours const& m = models.at(name);
        int const batch = c["batch"], seq = c["seq"];
        double const torch_flops = c["flops"].get<double>();
        double const counted = batch * m.cost.sequence(seq);
        CHECK(counted - m.skipped_per_token * batch * seq == torch_flops);
        if (m.adapter_weights > 0) CHECK(c["trainable_parameters"].get<pa::Index>() == m.adapter_weights);  // PEFT's
        ++checked;
    }
    CHECK(checked == models.size());
}
