// Where a step's time goes (core/step_profile.hpp): exclusive attribution of nested regions and phases on a
// scripted clock, and a real CPU training step profiled region by region without changing what it computes.
#include <polyalpaca/polyalpaca.hpp>

#include <chrono>

#include <catch2/catch.hpp>

namespace pa = polyalpaca;

namespace {

/// Stamp i happens at times[i] ms.
struct ScriptedClock {
    std::vector<double> times;
    std::size_t stamps = 0;
    void stamp() { ++stamps; }
    std::vector<double> intervals_ms() {
        std::vector<double> out;
        for (std::size_t i = 1; i < stamps; ++i) out.push_back(times.at(i) - times.at(i - 1));
        stamps = 0;
        return out;
    }
};

pa::TokenBatch random_batch(int batch, int seq, int vocab, std::uint64_t seed) {
    xt::xtensor<std::int32_t, 2> ids = xt::xtensor<std::int32_t, 2>::from_shape({std::size_t(batch), std::size_t(seq)});
    pa::Rng rng(seed);
    for (auto& id : ids) id = std::int32_t(rng.next_u64() % std::uint64_t(vocab));
    return pa::make_lm_batch(ids);
}

template <class Model>
pa::ProfileTable profiled_step(pa::cpu::Context& ctx, pa::CausalLm<Model, pa::CpuEigen, float>& net,
                               double& wall_ms) {
    pa::AdamW<pa::CpuEigen, float> adamw(net.parameters().trainable_count(), {});
    std::vector<pa::TokenBatch> micro{random_batch(2, 16, Model::config::vocab, 1)};
    auto const start = std::chrono::steady_clock::now();
    auto [result, table] = pa::profiled(
        ctx, [&] { return pa::train_step(ctx, net, adamw, std::span<pa::TokenBatch const>(micro), 1e-3, 1.0, 0); });
    wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    REQUIRE(ctx.profile == nullptr);
    REQUIRE(result.scored == 30);
    return table;
}

}  // namespace

TEST_CASE("a region's time excludes the regions open inside it", "[profile]") {
    using pa::Phase, pa::Region;
    // Interval i lasts 2^i ms, so every sum below names the intervals it is made of.
    pa::StepProfile<ScriptedClock> profile(ScriptedClock{{0, 1, 3, 7, 15, 31, 63, 127, 255, 511}});
    profile.enter(Region::Residual);  // 1
    profile.enter(Region::Linear);    // 2
    profile.enter(Region::Adapter);   // 4
    profile.leave();                  // 8: back in Linear
    profile.leave();                  // 16: back in Residual
    profile.leave();                  // 32: outside
    profile.set_phase(Phase::Backward);  // 64
    profile.enter(Region::LmHead);       // 128
    profile.leave();                     // 256, until finish
    auto const table = profile.finish();
    CHECK(table.at(Phase::Forward, Region::Residual) == 17);
    CHECK(table.at(Phase::Forward, Region::Linear) == 10);
    CHECK(table.at(Phase::Forward, Region::Adapter) == 4);
    CHECK(table.at(Phase::Forward, Region::Outside) == 32);
    CHECK(table.at(Phase::Backward, Region::Outside) == 320);
    CHECK(table.at(Phase::Backward, Region::LmHead) == 128);
    CHECK(table.total_ms() == 511);
    CHECK(table.boundaries == 10);

    auto const text = pa::format_profile(table);
    CHECK_THAT(text, Catch::Contains("lm head + loss") && Catch::Contains("25.0%"));  // 128 of 511 ms
    CHECK_THAT(text, !Catch::Contains("attention"));                                   // rows that took no time
}

TEST_CASE("a profile refuses to finish with a region open, or to leave one never entered", "[profile]") {
    pa::StepProfile<pa::HostClock> profile;
    CHECK_THROWS_WITH(profile.leave(), Catch::Contains("no region is open"));
    profile.enter(pa::Region::Norm);
    CHECK_THROWS_WITH(profile.finish(), Catch::Contains("1 region(s) still open (innermost: norms)"));
    profile.leave();
    CHECK(profile.finish().boundaries == 3);
}

TEST_CASE("profiled() detaches the profile from the context when the work throws", "[profile]") {
    pa::cpu::Context ctx;
    CHECK_THROWS_WITH(pa::profiled(ctx, [&] { return pa::fail("no step"), 0; }), "no step");
    CHECK(ctx.profile == nullptr);
}

TEST_CASE("a profiled CPU step accounts for its time region by region", "[profile]") {
    using pa::Phase, pa::Region;
    pa::cpu::Context ctx;
    SECTION("BLOOM with LoRA on query_key_value and dense_4h_to_h") {
        using Model = pa::Bloom<pa::bloom::SizeTiny, pa::LoRA<4, 8, pa::site::Qkv, pa::site::MlpDown>>;
        pa::CausalLm<Model, pa::CpuEigen, float> net(ctx, {.seed = 3, .adapter_dropout = 0.1});
        double wall_ms = 0;
        auto const table = profiled_step(ctx, net, wall_ms);
        for (auto phase : {Phase::Forward, Phase::Backward})
            for (auto region : {Region::Norm, Region::Linear, Region::Adapter, Region::Attention, Region::Activation,
                                Region::Residual}) {
                INFO(pa::phase_name(phase) << " " << pa::region_name(region));
                CHECK(table.at(phase, region) > 0);
            }
        CHECK(table.at(Phase::Forward, Region::Embedding) > 0);
        CHECK(table.at(Phase::Backward, Region::LmHead) > 0);
        CHECK(table.at(Phase::Forward, Region::LmHead) == 0);  // the head runs once, fused, after the forward
        CHECK(table.at(Phase::Update, Region::Optimizer) > 0);
        CHECK(table.phase_ms(Phase::Update) == table.at(Phase::Update, Region::Optimizer) +
                                                   table.at(Phase::Update, Region::Outside));
        CHECK(table.region_ms(Region::Optimizer) == table.at(Phase::Update, Region::Optimizer));
        // Every stamp lies inside the timed call: the table covers the step and nothing else.
        CHECK(table.total_ms() <= wall_ms);
        CHECK(table.total_ms() >= 0.9 * wall_ms);
    }
    SECTION("LLaMA, full-parameter: no LoRA time, an embedding gradient") {
        using Model = pa::Llama<pa::llama::SizeTiny>;
        pa::CausalLm<Model, pa::CpuEigen, float> net(ctx, {.seed = 4});
        double wall_ms = 0;
        auto const table = profiled_step(ctx, net, wall_ms);
        CHECK(table.region_ms(Region::Adapter) == 0);
        CHECK(table.at(Phase::Backward, Region::Embedding) > 0);
        CHECK(table.at(Phase::Backward, Region::Attention) > 0);
        CHECK(table.at(Phase::Forward, Region::Activation) > 0);
        CHECK(table.total_ms() <= wall_ms);
    }
}

TEST_CASE("profiling a step changes nothing it computes", "[profile]") {
    using Model = pa::Bloom<pa::bloom::SizeTiny, pa::LoRA<4, 8, pa::site::Qkv, pa::site::MlpDown>>;
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> plain(ctx, {.seed = 5, .adapter_dropout = 0.1});
    pa::CausalLm<Model, pa::CpuEigen, float> watched(ctx, {.seed = 5, .adapter_dropout = 0.1});
    std::vector<pa::TokenBatch> micro{random_batch(2, 12, Model::config::vocab, 7),
                                      random_batch(2, 12, Model::config::vocab, 8)};
    pa::AdamW<pa::CpuEigen, float> adamw_plain(plain.parameters().trainable_count(), {});
    pa::AdamW<pa::CpuEigen, float> adamw_watched(watched.parameters().trainable_count(), {});
    auto const a = pa::train_step(ctx, plain, adamw_plain, std::span<pa::TokenBatch const>(micro), 1e-2, 1.0, 0);
    auto const [b, table] = pa::profiled(ctx, [&] {
        return pa::train_step(ctx, watched, adamw_watched, std::span<pa::TokenBatch const>(micro), 1e-2, 1.0, 0);
    });
    CHECK(table.total_ms() > 0);
    CHECK(a.loss == b.loss);
    CHECK(a.grad_norm == b.grad_norm);
    auto& p = plain.parameters();
    auto& q = watched.parameters();
    REQUIRE(p.trainable_count() == q.trainable_count());
    CHECK(std::equal(p.trainable_values(), p.trainable_values() + p.trainable_count(), q.trainable_values()));
}
