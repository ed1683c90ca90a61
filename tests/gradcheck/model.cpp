// Whole-model gradient checks in fp64: every family's tiny preset, full-parameter and LoRA, against central
// differences of the mean next-token loss (with prompt positions masked by -100).
#include <polyalpaca/polyalpaca.hpp>

#include "support/gradcheck.hpp"

namespace pa = polyalpaca;
using pa::testing::numeric_gradient;

namespace {

pa::TokenBatch masked_batch(int vocab, int batch, int seq, std::uint64_t seed) {
    pa::Rng rng(seed);
    pa::TokenBatch b;
    b.ids = xt::xtensor<std::int32_t, 2>::from_shape({std::size_t(batch), std::size_t(seq)});
    for (auto& id : b.ids) id = std::int32_t(rng.below(std::uint64_t(vocab)));
    b.labels = b.ids;
    for (int i = 0; i < batch; ++i)
        for (int t = 0; t < 1 + i; ++t) b.labels(i, t) = pa::ignore_index;  // a "prompt" per row
    return b;
}

// Moves every weight away from its initial value so no gradient is trivially zero (LoRA B starts at 0).
template <class Net>
void randomise(Net& net, std::uint64_t seed) {
    pa::Rng rng(seed);
    for (auto* p : net.parameters().parameters())
        for (pa::Index i = 0; i < p->size(); ++i) p->value[i] += 0.2 * rng.normal();
}

template <class Model>
void check_model_gradient(std::uint64_t seed) {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, double> net(ctx, {.seed = seed});
    randomise(net, seed + 1);
    auto const batch = masked_batch(Model::config::vocab, 2, 7, seed + 2);

    net.parameters().zero_grads(ctx);
    auto const loss = net.forward_backward(ctx, batch);
    REQUIRE(loss.count == 6 + 5);  // positions 1..6 scored; row 1 also masks position 1
    auto const loss_fn = [&] { return net.evaluate(ctx, batch).mean(); };
    REQUIRE(loss_fn() == Approx(loss.mean()).epsilon(1e-12));

    // Up to 12 entries of every trainable tensor, spread over the tensor.
    for (auto* p : net.parameters().parameters()) {
        if (!p->trainable()) {
            CHECK(p->grad == nullptr);
            continue;
        }
        pa::Index const step = std::max<pa::Index>(1, p->size() / 12);
        std::vector<double> analytic;
        std::vector<double*> entries;
        for (pa::Index i = 0; i < p->size(); i += step) {
            analytic.push_back(p->grad[i]);
            entries.push_back(p->value + i);
        }
        double worst = 0;
        for (std::size_t e = 0; e < entries.size(); ++e) {
            std::span<double> one(entries[e], 1);
            double const numeric = numeric_gradient(loss_fn, one)[0];
            worst = std::max(worst, std::abs(analytic[e] - numeric) / std::max(1.0, std::abs(numeric)));
        }
        INFO(Model::family << " " << p->name << ": max scaled error " << worst);
        CHECK(worst <= 1e-8);
    }
}

}  // namespace

using BloomLora = pa::LoRA<4, 8, pa::site::Qkv, pa::site::AttnOut, pa::site::MlpUp, pa::site::MlpDown>;
using NeoxLora = pa::LoRA<2, 16, pa::site::Qkv>;
using LlamaLora = pa::LoRA<3, 6, pa::site::Query, pa::site::Key, pa::site::Value, pa::site::AttnOut, pa::site::MlpGate,
                           pa::site::MlpUp, pa::site::MlpDown>;

TEMPLATE_TEST_CASE("whole-model gradient matches finite differences", "[gradcheck][model]",
                   pa::Bloom<pa::bloom::SizeTiny>, (pa::Bloom<pa::bloom::SizeTiny, BloomLora>),
                   pa::GptNeoX<pa::gpt_neox::SizeTiny>, (pa::GptNeoX<pa::gpt_neox::SizeTiny, NeoxLora>),
                   pa::Llama<pa::llama::SizeTiny>, (pa::Llama<pa::llama::SizeTiny, LlamaLora>),
                   pa::Llama<pa::llama::SizeTinyTied>) {
    check_model_gradient<TestType>(17);
}

TEMPLATE_TEST_CASE("LoRA trains only adapter weights", "[model][lora]", (pa::Bloom<pa::bloom::SizeTiny, BloomLora>),
                   (pa::GptNeoX<pa::gpt_neox::SizeTiny, NeoxLora>), (pa::Llama<pa::llama::SizeTiny, LlamaLora>)) {
    pa::cpu::Context ctx;
    pa::CausalLm<TestType, pa::CpuEigen, double> net(ctx, {.seed = 3});
    CHECK(net.parameters().trainable_count() == TestType::adapter_parameter_count);
    CHECK(net.parameters().frozen_count() == TestType::parameter_count);
    for (auto* p : net.parameters().parameters()) {
        bool const is_adapter = p->name.find(".lora_") != std::string::npos;
        INFO(p->name);
        CHECK(p->trainable() == is_adapter);
    }
}
