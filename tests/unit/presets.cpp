// Parameter counts computed from the model types equal the counts published for each checkpoint
// (the HF model cards / num_parameters() of bigscience/bloom-*, EleutherAI/pythia-*, LLaMA and OpenLLaMA).
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

namespace pa = polyalpaca;

TEST_CASE("BLOOM presets have the published parameter counts", "[presets][bloom]") {
    STATIC_REQUIRE(pa::Bloom<pa::bloom::Size560m>::parameter_count == 559'214'592);
    STATIC_REQUIRE(pa::Bloom<pa::bloom::Size1b1>::parameter_count == 1'065'314'304);
    STATIC_REQUIRE(pa::Bloom<pa::bloom::Size1b7>::parameter_count == 1'722'408'960);
    STATIC_REQUIRE(pa::Bloom<pa::bloom::Size3b>::parameter_count == 3'002'557'440);
    STATIC_REQUIRE(pa::Bloom<pa::bloom::Size7b1>::parameter_count == 7'069'016'064);
}

TEST_CASE("Pythia presets have the published parameter counts", "[presets][gpt_neox]") {
    STATIC_REQUIRE(pa::GptNeoX<pa::gpt_neox::Size70m>::parameter_count == 70'426'624);
    STATIC_REQUIRE(pa::GptNeoX<pa::gpt_neox::Size160m>::parameter_count == 162'322'944);
    STATIC_REQUIRE(pa::GptNeoX<pa::gpt_neox::Size410m>::parameter_count == 405'334'016);
    STATIC_REQUIRE(pa::GptNeoX<pa::gpt_neox::Size1b>::parameter_count == 1'011'781'632);
    STATIC_REQUIRE(pa::GptNeoX<pa::gpt_neox::Size1b4>::parameter_count == 1'414'647'808);
    STATIC_REQUIRE(pa::GptNeoX<pa::gpt_neox::Size2b8>::parameter_count == 2'775'208'960);
    STATIC_REQUIRE(pa::GptNeoX<pa::gpt_neox::Size6b9>::parameter_count == 6'857'302'016);
    STATIC_REQUIRE(pa::GptNeoX<pa::gpt_neox::Size12b>::parameter_count == 11'846'072'320);
}

TEST_CASE("LLaMA and OpenLLaMA presets have the published parameter counts", "[presets][llama]") {
    STATIC_REQUIRE(pa::Llama<pa::llama::Size7b>::parameter_count == 6'738'415'616);
    STATIC_REQUIRE(pa::Llama<pa::llama::Size13b>::parameter_count == 13'015'864'320);
    STATIC_REQUIRE(pa::Llama<pa::llama::OpenLlama3b>::parameter_count == 3'426'473'600);
    STATIC_REQUIRE(pa::Llama<pa::llama::OpenLlama7b>::parameter_count == 6'738'415'616);
    STATIC_REQUIRE(pa::Llama<pa::llama::OpenLlama13b>::parameter_count == 13'015'864'320);
}

TEST_CASE("LoRA adds rank * (in + out) per adapted projection", "[presets][lora]") {
    // The paper's BLOOM setting: r = 8 on the fused query_key_value of 24 layers: 8 * (1024 + 3072) * 24.
    using PaperBloom = pa::Bloom<pa::bloom::Size560m, pa::LoRA<8, 16, pa::site::Qkv>>;
    STATIC_REQUIRE(PaperBloom::adapter_parameter_count == 786'432);
    STATIC_REQUIRE(PaperBloom::parameter_count == 559'214'592);
    // LLaMA-7B with r = 8 on q, v (the alpaca-lora default): 2 * 8 * (4096 + 4096) * 32 = 4,194,304.
    using AlpacaLora = pa::Llama<pa::llama::Size7b, pa::LoRA<8, 16, pa::site::Query, pa::site::Value>>;
    STATIC_REQUIRE(AlpacaLora::adapter_parameter_count == 4'194'304);
    STATIC_REQUIRE(pa::Bloom<pa::bloom::Size560m>::adapter_parameter_count == 0);
}

TEMPLATE_TEST_CASE("tiny presets allocate exactly the counted parameters", "[presets][tiny]",
                   pa::Bloom<pa::bloom::SizeTiny>, pa::GptNeoX<pa::gpt_neox::SizeTiny>,
                   pa::Llama<pa::llama::SizeTiny>, pa::Llama<pa::llama::SizeTinyTied>) {
    pa::cpu::Context ctx;
    pa::CausalLm<TestType, pa::CpuEigen, float> net(ctx);
    CHECK(net.parameters().total_count() == TestType::parameter_count);
    CHECK(net.parameters().trainable_count() == TestType::parameter_count);
    CHECK(net.parameters().frozen_count() == 0);
}

TEST_CASE("parameters carry their HF names", "[presets][names]") {
    pa::cpu::Context ctx;
    pa::CausalLm<pa::Bloom<pa::bloom::SizeTiny, pa::LoRA<2, 4, pa::site::Qkv>>, pa::CpuEigen, float> bloom(ctx);
    CHECK(bloom.parameters().find("transformer.word_embeddings.weight") != nullptr);
    CHECK(bloom.parameters().find("transformer.word_embeddings_layernorm.bias") != nullptr);
    CHECK(bloom.parameters().find("transformer.h.1.self_attention.query_key_value.lora_A.weight") != nullptr);
    CHECK(bloom.parameters().find("transformer.h.1.mlp.dense_4h_to_h.bias") != nullptr);
    CHECK(bloom.parameters().find("transformer.ln_f.weight") != nullptr);
    CHECK(bloom.parameters().find("lm_head.weight") == nullptr);  // tied to the word embeddings

    pa::CausalLm<pa::GptNeoX<pa::gpt_neox::SizeTiny>, pa::CpuEigen, float> neox(ctx);
    CHECK(neox.parameters().find("gpt_neox.embed_in.weight") != nullptr);
    CHECK(neox.parameters().find("gpt_neox.layers.0.attention.query_key_value.weight") != nullptr);
    CHECK(neox.parameters().find("embed_out.weight") != nullptr);

    pa::CausalLm<pa::Llama<pa::llama::SizeTiny>, pa::CpuEigen, float> llama(ctx);
    auto* k = llama.parameters().find("model.layers.0.self_attn.k_proj.weight");
    REQUIRE(k != nullptr);
    CHECK(k->rows == 16);  // 2 kv heads * head_dim 8
    CHECK(k->cols == 32);
    CHECK(llama.parameters().find("lm_head.weight") != nullptr);
    CHECK(llama.parameters().find("model.layers.1.mlp.gate_proj.weight") != nullptr);
}

TEST_CASE("LoRA A starts as PEFT initialises it and B at zero", "[presets][lora][init]") {
    pa::cpu::Context ctx;
    using Model = pa::Llama<pa::llama::SizeTiny, pa::LoRA<4, 8, pa::site::Query>>;
    pa::CausalLm<Model, pa::CpuEigen, double> net(ctx, {.seed = 5});
    auto* a = net.parameters().find("model.layers.0.self_attn.q_proj.lora_A.weight");
    auto* b = net.parameters().find("model.layers.0.self_attn.q_proj.lora_B.weight");
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    auto const av = a->values().flat();
    double const bound = 1.0 / std::sqrt(32.0);  // kaiming_uniform_(a = sqrt(5)) on fan_in 32
    CHECK(av.maxCoeff() <= bound);
    CHECK(av.minCoeff() >= -bound);
    CHECK(av.cwiseAbs().maxCoeff() > 0.5 * bound);
    CHECK(b->values().flat().cwiseAbs().maxCoeff() == 0.0);
}

TEST_CASE("a fresh LoRA adapter leaves the base model's outputs unchanged", "[presets][lora]") {
    pa::cpu::Context ctx;
    pa::CausalLm<pa::Bloom<pa::bloom::SizeTiny>, pa::CpuEigen, double> base(ctx, {.seed = 9});
    pa::CausalLm<pa::Bloom<pa::bloom::SizeTiny, pa::LoRA<4, 8, pa::site::Qkv, pa::site::MlpDown>>, pa::CpuEigen, double>
        adapted(ctx, {.seed = 9});
    auto batch = pa::make_lm_batch(xt::xtensor<std::int32_t, 2>{{1, 5, 9, 3, 7}, {2, 2, 8, 60, 95}});
    pa::Matrix<double> a(10, 96), b(10, 96);
    base.logits(ctx, batch, pa::view(a));
    adapted.logits(ctx, batch, pa::view(b));
    CHECK((a - b).cwiseAbs().maxCoeff() == 0.0);
}
