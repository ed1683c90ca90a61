// One optimizer step: gradient accumulation as HF does it, clipping, AdamW on the trainable arena only.
#include <polyalpaca/polyalpaca.hpp>

#include <algorithm>
#include <cmath>

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

template <class Net>
std::vector<double> gradients(Net& net) {
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

TEST_CASE("train_step clips to the global norm, moves only trainable weights and leaves the gradients zero",
          "[train][clip]") {
    pa::cpu::Context ctx;
    using Lora = pa::GptNeoX<pa::gpt_neox::SizeTiny, pa::LoRA<2, 4, pa::site::Qkv>>;
    pa::CausalLm<Lora, pa::CpuEigen, double> net(ctx, {.seed = 2}), unfused(ctx, {.seed = 2});
    auto& s = net.parameters();
    pa::AdamW<pa::CpuEigen, double> adamw(s.trainable_count(), {.weight_decay = 0.0}),
        unfused_adamw(s.trainable_count(), {.weight_decay = 0.0});
    auto* frozen = s.find("gpt_neox.layers.0.attention.query_key_value.weight");
    auto* lora_b = s.find("gpt_neox.layers.0.attention.query_key_value.lora_B.weight");
    REQUIRE(frozen != nullptr);
    REQUIRE(lora_b != nullptr);
    std::vector<double> const frozen_before(frozen->value, frozen->value + frozen->size());

    std::vector<pa::TokenBatch> micro{rows({{1, 2, 3, 4, 5}}), rows({{6, 7, 8, 9, 10}})};
    for (long step = 0; step < 2; ++step) {
        auto const r = pa::train_step(ctx, net, adamw, std::span<pa::TokenBatch const>(micro), 1e-2, 1e-3, step);
        CHECK(r.scored == 8);
        CHECK(r.tokens == 10);
        CHECK(r.grad_norm > 1e-3);  // clipping was needed...

        // ...and applied as torch does: clip_grad_norm_ (scaling the gradients), then AdamW, one after the other.
        auto& u = unfused.parameters();
        u.zero_grads(ctx);
        for (auto const& mb : micro) unfused.forward_backward(ctx, mb, 0.5);
        double const norm = std::sqrt(pa::cpu::squared_norm(ctx, u.gradients(), u.trainable_count()));
        CHECK(norm == r.grad_norm);
        CHECK(pa::clip_grad_norm(ctx, u.gradients(), u.trainable_count(), 1e-3) == norm);
        double const clipped = std::sqrt(pa::cpu::squared_norm(ctx, u.gradients(), u.trainable_count()));
        CHECK(clipped == Approx(1e-3 * norm / (norm + 1e-6)).epsilon(1e-9));
        unfused_adamw.step(ctx, u.trainable_values(), u.gradients(), 1e-2);
        CHECK(std::equal(s.trainable_values(), s.trainable_values() + s.trainable_count(), u.trainable_values()));

        // The update consumed the gradients: the next step starts from zero without a pass of its own.
        auto const left = gradients(net);
        CHECK(std::all_of(left.begin(), left.end(), [](double g) { return g == 0.0; }));
    }
    CHECK(adamw.step_count() == 2);
    CHECK(std::equal(frozen_before.begin(), frozen_before.end(), frozen->value));
    CHECK(pa::Matrix<double>(lora_b->values().map()).cwiseAbs().maxCoeff() > 0);  // B left zero
}

TEST_CASE("gradients written outside train_step are zeroed before its accumulation", "[train][accumulation]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, double> net(ctx, {.seed = 4}), clean(ctx, {.seed = 4});
    pa::AdamW<pa::CpuEigen, double> adamw(net.parameters().trainable_count()),
        clean_adamw(clean.parameters().trainable_count());
    std::vector<pa::TokenBatch> micro{rows({{1, 2, 3, 4, 5}})};
    pa::train_step(ctx, net, adamw, std::span<pa::TokenBatch const>(micro), 1e-3, 1.0, 0);
    pa::train_step(ctx, clean, clean_adamw, std::span<pa::TokenBatch const>(micro), 1e-3, 1.0, 0);
    net.forward_backward(ctx, rows({{7, 7, 7, 7}}));  // a stray gradient, e.g. a user's probe
    auto const a = pa::train_step(ctx, net, adamw, std::span<pa::TokenBatch const>(micro), 1e-3, 1.0, 1);
    auto const b = pa::train_step(ctx, clean, clean_adamw, std::span<pa::TokenBatch const>(micro), 1e-3, 1.0, 1);
    CHECK(a.grad_norm == b.grad_norm);
    auto& s = net.parameters();
    CHECK(std::equal(s.trainable_values(), s.trainable_values() + s.trainable_count(),
                     clean.parameters().trainable_values()));
}
