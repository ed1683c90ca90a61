// Every public model entry point that takes sizes or ids answers bad input with a clear Error.
#include <polyalpaca/polyalpaca.hpp>

#include <catch2/catch.hpp>

#include <cstring>
#include <limits>

namespace pa = polyalpaca;
using Catch::Contains;

namespace {
using Model = pa::Llama<pa::llama::SizeTiny>;  // vocab 96, 2048 positions

pa::TokenBatch batch_of(std::size_t rows, std::size_t seq, std::int32_t fill = 1) {
    xt::xtensor<std::int32_t, 2> ids = xt::xtensor<std::int32_t, 2>::from_shape({rows, seq});
    ids.fill(fill);
    return pa::make_lm_batch(ids);
}
}  // namespace

TEST_CASE("a token id outside the vocabulary is reported with its position", "[model][bad_input]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx);
    auto b = batch_of(2, 4);
    b.ids(1, 2) = 96;
    REQUIRE_THROWS_WITH(net.forward_backward(ctx, b), Contains("96") && Contains("position 6"));
    b.ids(1, 2) = -3;
    REQUIRE_THROWS_AS(net.evaluate(ctx, b), pa::Error);
}

TEST_CASE("a label outside the vocabulary is reported with sequence and position", "[model][bad_input]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx);
    auto b = batch_of(2, 4);
    b.labels(0, 3) = 500;
    REQUIRE_THROWS_WITH(net.forward_backward(ctx, b), Contains("label 500 at sequence 0, position 3"));
    b.labels(0, 3) = -7;  // negative and not the ignore index
    REQUIRE_THROWS_WITH(net.evaluate(ctx, b), Contains("label -7"));
}

TEST_CASE("a sequence longer than the model's maximum is refused", "[model][bad_input]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx);
    REQUIRE_THROWS_WITH(net.forward_backward(ctx, batch_of(1, 2049)),
                        Contains("sequence length 2049 exceeds the model's maximum of 2048"));
}

TEST_CASE("an empty batch and mismatched labels are refused", "[model][bad_input]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx);
    REQUIRE_THROWS_WITH(net.forward_backward(ctx, batch_of(0, 4)), Contains("empty batch"));
    REQUIRE_THROWS_WITH(net.evaluate(ctx, batch_of(2, 0)), Contains("empty batch"));
    auto b = batch_of(2, 4);
    b.labels = xt::xtensor<std::int32_t, 2>::from_shape({2, 3});
    REQUIRE_THROWS_WITH(net.forward_backward(ctx, b), Contains("labels have shape (2, 3) but ids have shape (2, 4)"));
    pa::Matrix<float> logits(5, 96);
    REQUIRE_THROWS_WITH(net.logits(ctx, batch_of(2, 4), pa::view(logits)), Contains("logits output"));
}

TEST_CASE("a failed call leaves the model usable", "[model][bad_input]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, double> net(ctx, {.seed = 4});
    auto good = batch_of(2, 5, 7);
    double const before = net.evaluate(ctx, good).mean();
    auto bad = batch_of(2, 5);
    bad.ids(0, 0) = 1000;
    REQUIRE_THROWS_AS(net.forward_backward(ctx, bad), pa::Error);
    CHECK(net.evaluate(ctx, good).mean() == before);
}

TEST_CASE("a non-finite loss stops the step and names it, weights untouched", "[train][bad_input]") {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx);
    pa::AdamW<pa::CpuEigen, float> adamw(net.parameters().trainable_count());
    auto* w = net.parameters().find("model.norm.weight");
    REQUIRE(w != nullptr);
    w->value[0] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> const before(net.parameters().trainable_values(),
                                    net.parameters().trainable_values() + net.parameters().trainable_count());
    std::vector<pa::TokenBatch> micro{batch_of(1, 6)};
    REQUIRE_THROWS_WITH(pa::train_step(ctx, net, adamw, std::span<pa::TokenBatch const>(micro), 1e-3, 1.0, 41),
                        Contains("step 41") && Contains("not finite"));
    CHECK(adamw.step_count() == 0);
    CHECK(std::memcmp(before.data(), net.parameters().trainable_values(), before.size() * sizeof(float)) == 0);
}
