// One optimizer step: gradient accumulation as HF does it, clipping, AdamW on the trainable arena only.
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

namespace pa = polyalpaca;

namespace {
using Model = pa::GptNeoX<pa::gpt_neox::SizeTiny>;

pa::TokenBatch rows(std::vector<std::vector<std::int32_t>> const& seqs) {
    xt::xtensor<std::int32_t, 2> ids = xt::xtensor<std::int32_t, 2>::from_shape({seqs.size(), seqs[0].size()});
    for (std::size_t i = 0; i < seqs.size(); ++i)
        for (std::size_t t = 0; t < seqs[i].size(); ++t) ids(i, t) = seqs[i][t];
    return pa::make_lm_batch(ids);
}

std::vector<double> gradients(pa::CausalLm<Model, pa::CpuEigen, double>& net) {
    auto& s = net.parameters();
    return {s.gradients(), s.gradients() + s.trainable_count()};
}
}  // namespace

TEST_CASE("accumulating two micro-batches gives the gradient of the whole batch", "[train][accumulation]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, double> net(ctx, {.seed = 8});
    std::vector<std::int32_t> const a{3, 14, 15, 92, 65, 35}, b{89, 79, 32, 38, 46, 26};

    net.parameters().zero_grads(ctx);
    net.forward_backward(ctx, rows({a, b}));
    auto const whole = gradients(net);

    net.parameters().zero_grads(ctx);
    net.forward_backward(ctx, rows({a}), 0.5);
    net.forward_backward(ctx, rows({b}), 0.5);
    auto const accumulated = gradients(net);

    double worst = 0;
    for (std::size_t i = 0; i < whole.size(); ++i) worst = std::max(worst, std::abs(whole[i] - accumulated[i]));
    CHECK(worst < 1e-12);
}

TEST_CASE("train_step clips to the global norm and moves only trainable weights", "[train][clip]") {
    pa::cpu::Context ctx;
    using Lora = pa::GptNeoX<pa::gpt_neox::SizeTiny, pa::LoRA<2, 4, pa::site::Qkv>>;
    pa::CausalLm<Lora, pa::CpuEigen, double> net(ctx, {.seed = 2});
    auto& s = net.parameters();
    pa::AdamW<pa::CpuEigen, double> adamw(s.trainable_count(), {.weight_decay = 0.0});
    auto* frozen = s.find("gpt_neox.layers.0.attention.query_key_value.weight");
    auto* lora_b = s.find("gpt_neox.layers.0.attention.query_key_value.lora_B.weight");
    REQUIRE(frozen != nullptr);
    REQUIRE(lora_b != nullptr);
    std::vector<double> const frozen_before(frozen->value, frozen->value + frozen->size());

    std::vector<pa::TokenBatch> micro{rows({{1, 2, 3, 4, 5}}), rows({{6, 7, 8, 9, 10}})};
    auto const r = pa::train_step(ctx, net, adamw, std::span<pa::TokenBatch const>(micro), 1e-2, 1e-3, 0);
    CHECK(r.scored == 8);
    CHECK(r.tokens == 10);
    CHECK(r.grad_norm > 1e-3);  // clipping was needed...
    double const clipped = std::sqrt(pa::cpu::squared_norm(ctx, s.gradients(), s.trainable_count()));
    CHECK(clipped == Approx(1e-3 * r.grad_norm / (r.grad_norm + 1e-6)).epsilon(1e-9));  // ...and applied as torch does
    CHECK(adamw.step_count() == 1);
    CHECK(std::equal(frozen_before.begin(), frozen_before.end(), frozen->value));
    CHECK(pa::Matrix<double>(lora_b->values().map()).cwiseAbs().maxCoeff() > 0);  // B left zero
}
