// FLOPs per token from the model types, against the hand-computed figures of PERFORMANCE.md (sections 3.3 and 4.3).
#include <polyalpaca/models/bloom.hpp>
#include <polyalpaca/models/gpt_neox.hpp>
#include <polyalpaca/models/llama.hpp>
#include <polyalpaca/train/flops.hpp>

#include <catch2/catch.hpp>

namespace pa = polyalpaca;

namespace {
using Bloom560m = pa::Bloom<pa::bloom::Size560m>;
using LoraAllSites = pa::LoRA<8, 16, pa::site::Qkv, pa::site::AttnOut, pa::site::MlpUp, pa::site::MlpDown>;
using PaperLora = pa::LoRA<8, 16, pa::site::Qkv>;
// PERFORMANCE.md 3.3's tiny model: d = 256, L = 10, FFN 1024, vocab 8192 tied, BLOOM-style.
struct Tiny10m : pa::bloom::Defaults {
    static constexpr int vocab = 8192, hidden = 256, layers = 10, heads = 4;
};
}  // namespace

TEST_CASE("bloom-560m: N_mm counts the blocks and the tied head once", "[budget][flops]") {
    constexpr auto w = pa::matmul_weights<Bloom560m>();
    // Per layer: QKV 1024 x 3072, dense 1024 x 1024, h_to_4h and 4h_to_h 1024 x 4096 = 12 * 1024^2.
    STATIC_REQUIRE(w.blocks == 24LL * 12 * 1024 * 1024);
    STATIC_REQUIRE(w.head == 250880LL * 1024);
    STATIC_REQUIRE(w.n_mm() == 558'891'008);
    // The rest of the published 559,214,592 are norms and biases: 2 * 2d (embedding LN, ln_f) + L * 13d.
    STATIC_REQUIRE(Bloom560m::parameter_count - w.n_mm() == 4 * 1024 + 24 * 13 * 1024);
    // Forward: 24 x 25.2 MFLOP in blocks and 514 MFLOP in the head, 1118 in all; the head is 46%.
    CHECK(2.0 * double(w.blocks) / 24 == Approx(25.2e6).margin(0.05e6));  // 25.17 to three figures
    CHECK(2.0 * double(w.head) == Approx(514e6).epsilon(0.001));
    CHECK(double(w.head) / double(w.n_mm()) == Approx(0.46).margin(0.005));
}

TEST_CASE("bloom-560m at T = 512: 3.50 GFLOP/token full, 2.41 LoRA, 1.89 with the head on half the tokens",
          "[budget][flops]") {
    auto const full = pa::flops_per_token<Bloom560m>();
    CHECK(full.attention == 12.0 * 24 * 512 * 1024);  // 3 x 50.3 MFLOP forward
    CHECK(full.total() == 3'504'340'992.0);
    CHECK(full.total() / 1e9 == Approx(3.50).margin(0.005));

    // PERFORMANCE.md's 2.41 puts r = 8 on QKV, dense, h_to_4h and 4h_to_h (adapters 19 MFLOP = 6 x 3,145,728).
    auto const lora = pa::flops_per_token<pa::Bloom<pa::bloom::Size560m, LoraAllSites>>();
    CHECK(lora.weights.adapter == 3'145'728);
    CHECK(lora.adapters == 18'874'368.0);
    CHECK(lora.total() == 2'405'433'344.0);
    CHECK(lora.total() / 1e9 == Approx(2.41).margin(0.005));
    pa::FlopsOptions half;
    half.head_token_fraction = 0.5;
    CHECK(pa::flops_per_token<pa::Bloom<pa::bloom::Size560m, LoraAllSites>>(half).total() / 1e9 ==
          Approx(1.89).margin(0.005));

    // The paper's LoRA adapts query_key_value only: 786,432 adapter weights, 2.39 GFLOP/token.
    auto const paper = pa::flops_per_token<pa::Bloom<pa::bloom::Size560m, PaperLora>>();
    CHECK(paper.total() == 2'235'564'032.0 + 150'994'944.0 + 6.0 * 786'432);
    CHECK(paper.total() / 1e9 == Approx(2.39).margin(0.005));

    // llm.c's attention term (6 L T d, half the square) gives 3.43 instead of 3.50.
    pa::FlopsOptions llmc;
    llmc.attention = pa::AttentionCount::LlmC;
    CHECK(pa::flops_per_token<Bloom560m>(llmc).total() == 3'353'346'048.0 + 75'497'472.0);
}

TEST_CASE("PERFORMANCE.md's tiny model: 75.5 MFLOP/token full, 55.6 LoRA without adapters", "[budget][flops]") {
    auto const full = pa::flops_per_token<pa::Bloom<Tiny10m>>();
    CHECK(full.weights.n_mm() == 9'961'472);
    CHECK(full.attention / 3 == 5'242'880.0);  // 5.2 MFLOP of attention forward
    CHECK(full.total() == 75'497'472.0);
    // 55.6 is 4 N_mm + attention; adapters on all four sites add 6 x 327,680 = 2.0 MFLOP (57.5 in all).
    auto const lora = pa::flops_per_token<pa::Bloom<Tiny10m, LoraAllSites>>();
    CHECK(lora.total() - lora.adapters == 55'574'528.0);
    CHECK(lora.adapters == 6.0 * 327'680);
}

TEST_CASE("LLaMA-7B at T = 1024: 28.0 GFLOP/token LoRA, 41.2 full (PERFORMANCE.md 4.3)", "[budget][flops]") {
    using L7 = pa::Llama<pa::llama::Size7b>;
    constexpr auto w = pa::matmul_weights<L7>();
    // Untied: the input embedding is a lookup (0), the lm_head counts: 32 x (4 d^2 + 3 d ffn) + vocab d.
    STATIC_REQUIRE(w.n_mm() == 32LL * (4LL * 4096 * 4096 + 3LL * 4096 * 11008) + 32000LL * 4096);
    STATIC_REQUIRE(L7::parameter_count - w.n_mm() == 32000LL * 4096 + 4096 + 32LL * 2 * 4096);
    pa::FlopsOptions t1024;
    t1024.seq_len = 1024;
    using L7Lora = pa::Llama<pa::llama::Size7b, pa::LoRA<8, 16, pa::site::Query, pa::site::Value>>;
    auto const lora = pa::flops_per_token<L7Lora>(t1024);
    CHECK(lora.total() - lora.adapters == 28'038'922'240.0);
    CHECK(lora.total() / 1e9 == Approx(28.0).margin(0.1));
    // 40% of the H100's 989.4 TFLOP/s at 9.6K tok/s.
    CHECK(pa::flops_per_token<L7>(t1024).total() == Approx(0.4 * 989.4e12 / 9600).epsilon(0.002));
}

TEST_CASE("N_mm plus norms and biases is the published parameter count", "[budget][flops]") {
    constexpr auto neox = pa::matmul_weights<pa::GptNeoX<pa::gpt_neox::Size410m>>();
    // Untied embed_in (a lookup) + final norm + per layer 2 norms and biases (3d + d + 4d + d).
    STATIC_REQUIRE(pa::GptNeoX<pa::gpt_neox::Size410m>::parameter_count - neox.n_mm() ==
                   50304LL * 1024 + 2 * 1024 + 24LL * 13 * 1024);
    using Gqa = pa::Llama<pa::llama::SizeTiny>;  // 2 kv heads: k and v are 32 x 16
    STATIC_REQUIRE(pa::matmul_weights<Gqa>().blocks == 2LL * (32 * 32 * 2 + 32 * 16 * 2 + 3 * 32 * 64));
    using Tied = pa::Llama<pa::llama::SizeTinyTied>;
    STATIC_REQUIRE(Tied::parameter_count - pa::matmul_weights<Tied>().n_mm() == 32 + 2 * 2 * 32);
}

TEST_CASE("FlopCost: a sequence of n tokens costs n x FLOPs/token at T = n", "[budget][flops]") {
    auto const cost = pa::flop_cost<Bloom560m>();
    CHECK(cost.per_token == 6.0 * 558'891'008);
    CHECK(cost.per_token_pair == 12.0 * 24 * 1024);
    CHECK(cost.per_token_at(512) == pa::flops_per_token<Bloom560m>().total());
    CHECK(cost.sequence(512) == 512 * cost.per_token_at(512));
    CHECK(cost.sequence(100) == Approx(100 * pa::flops_per_token<Bloom560m>(pa::FlopsOptions{100}).total()));
    CHECK_THROWS_WITH(pa::flops_per_token<Bloom560m>(pa::FlopsOptions{0}), Catch::Contains("sequence length"));
    CHECK_THROWS(pa::flops_per_token<Bloom560m>(pa::FlopsOptions{512, pa::AttentionCount::FullSquare, 1.5}));
}
