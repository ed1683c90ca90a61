// Data parallel on the CPU (label distributed): run by `mpiexec -np 2` (tests/distributed/CMakeLists.txt), and
// correct with any number of ranks. Every rank also computes the one-rank reference in-process.
//
// Tolerance: the models are double. Two ranks sum the same micro-batch gradients as one rank, in another order
// (per rank, then over the ranks), which moves each gradient element by a few ulps of the terms summed, ~1e-16
// relative. AdamW's update m / (sqrt(v) + eps) moves by at most lr * dg / eps <= 1e-3 * 1e-17 / 1e-8 ~ 1e-12 a step
// even where the gradient cancels to nothing, so after 3 steps the weights agree within 1e-10 and the losses within
// 1e-12 relative.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <polyalpaca/distributed/mpi.hpp>
#include <polyalpaca/polyalpaca.hpp>
#include <polyalpaca/train/checkpoint.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <vector>

#include <unistd.h>

namespace pa = polyalpaca;
namespace fs = std::filesystem;

namespace {

pa::distributed::Mpi* world = nullptr;

/// Micro-batch i of a fixed stream: 2 rows of 6 tokens, with the last row's tail padded (label -100).
pa::TokenBatch micro_batch(int i, int vocab) {
    pa::Rng rng(1000 + std::uint64_t(i));
    xt::xtensor<std::int32_t, 2> ids = xt::xtensor<std::int32_t, 2>::from_shape({2, 6});
    for (std::size_t r = 0; r < 2; ++r)
        for (std::size_t t = 0; t < 6; ++t) ids(r, t) = std::int32_t(rng.next_u64() % std::uint64_t(vocab));
    auto batch = pa::make_lm_batch(ids);
    batch.labels(1, 5) = -100;
    batch.labels(1, 4) = -100;
    return batch;
}

struct Run {
    std::vector<double> losses, norms, weights;
    std::vector<std::int64_t> scored;
};

using pa::distributed::OptimizerSharding;

/// A network and its AdamW on one rank: all the moments (Replicated) or the rank's ZeRO-1 shard of them.
template <class Model>
struct Replica {
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, double> net{ctx, {.seed = 5}};
    OptimizerSharding sharding;
    pa::distributed::Shard shard;
    pa::AdamW<pa::CpuEigen, double> adamw;

    template <class Communicator>
    Replica(Communicator& communicator, OptimizerSharding sharding_)
        : sharding(sharding_),
          shard(sharding == OptimizerSharding::Zero1
                    ? pa::distributed::shard_of(net.parameters().trainable_count(), communicator.size(),
                                                communicator.rank())
                    : pa::distributed::Shard{0, net.parameters().trainable_count()}),
          adamw(shard.count, {.lr = 1e-3, .weight_decay = 0.01}) {}

    /// Global steps [from, to) of `per_step` micro-batches each; this rank trains on micro-batches k with
    /// k % ranks == rank of each step's (step * per_step + j).
    template <class Communicator>
    void train(Communicator& communicator, int from, int to, int per_step, Run& run) {
        for (int step = from; step < to; ++step) {
            std::vector<pa::TokenBatch> mine;
            for (int j = 0; j < per_step; ++j)
                if (j % communicator.size() == communicator.rank())
                    mine.push_back(micro_batch(step * per_step + j, Model::config::vocab));
            auto const r = pa::train_step(ctx, net, adamw, std::span<pa::TokenBatch const>(mine), 1e-3, 0.5, step,
                                          communicator, sharding);
            run.losses.push_back(r.loss);
            run.norms.push_back(r.grad_norm);
            run.scored.push_back(r.scored);
        }
        auto& s = net.parameters();
        run.weights.assign(s.trainable_values(), s.trainable_values() + s.trainable_count());
    }
};

template <class Model, class Communicator>
Run train(Communicator& communicator, int steps, int per_step,
          OptimizerSharding sharding = OptimizerSharding::Replicated) {
    Replica<Model> replica(communicator, sharding);
    Run run;
    replica.train(communicator, 0, steps, per_step, run);
    return run;
}

/// The largest difference of the two runs' weights, after checking their losses, norms and token counts agree.
double compare(Run const& a, Run const& b, char const* what) {
    INFO(what);
    REQUIRE(a.weights.size() == b.weights.size());
    REQUIRE(a.losses.size() == b.losses.size());
    for (std::size_t step = 0; step < a.losses.size(); ++step) {
        CHECK(a.scored[step] == b.scored[step]);
        CHECK(std::abs(a.losses[step] - b.losses[step]) <= 1e-12 * std::abs(b.losses[step]));
        CHECK(std::abs(a.norms[step] - b.norms[step]) <= 1e-12 * std::abs(b.norms[step]));
    }
    double worst = 0;
    for (std::size_t i = 0; i < a.weights.size(); ++i) worst = std::max(worst, std::abs(a.weights[i] - b.weights[i]));
    CHECK(worst <= 1e-10);
    return worst;
}

/// `per_step` micro-batches a global step: 4 split evenly over 2 ranks, 3 unevenly, 1 leaves rank 1 none.
template <class Model>
void check_equals_one_rank(char const* what, int per_step) {
    INFO(what << ", " << per_step << " micro-batches a step, rank " << world->rank() << " of " << world->size());
    auto const together = train<Model>(*world, 3, per_step);
    pa::distributed::SingleProcess one;
    auto const alone = train<Model>(one, 3, per_step);
    REQUIRE(together.weights.size() == alone.weights.size());
    double worst_loss = 0;
    for (std::size_t step = 0; step < alone.losses.size(); ++step) {
        CHECK(together.scored[step] == alone.scored[step]);
        CHECK(std::abs(together.losses[step] - alone.losses[step]) <= 1e-12 * std::abs(alone.losses[step]));
        CHECK(std::abs(together.norms[step] - alone.norms[step]) <= 1e-12 * std::abs(alone.norms[step]));
        worst_loss = std::max(worst_loss, std::abs(together.losses[step] - alone.losses[step]) / alone.losses[step]);
    }
    double worst = 0;
    for (std::size_t i = 0; i < alone.weights.size(); ++i)
        worst = std::max(worst, std::abs(together.weights[i] - alone.weights[i]));
    CHECK(worst <= 1e-10);
    if (world->rank() == 0)
        std::printf("%s, %d micro-batches a step, over %d ranks against one: losses within %.1e relative, weights "
                    "within %.1e\n", what, per_step, world->size(), worst_loss, worst);
    // And the weights moved: the comparison is not of two untrained networks.
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, double> fresh(ctx, {.seed = 5});
    double moved = 0;
    for (std::size_t i = 0; i < alone.weights.size(); ++i)
        moved = std::max(moved, std::abs(fresh.parameters().trainable_values()[i] - alone.weights[i]));
    CHECK(moved > 1e-4);
}

}  // namespace

TEST_CASE("the communicator sums over all ranks", "[distributed]") {
    pa::cpu::Context ctx;
    int const r = world->rank(), n = world->size();
    std::vector<float> f{float(r + 1), 0.5f, float(-r)};
    std::vector<double> d{double(r) * 0.25, 1.0};
    world->all_reduce_sum(ctx, f.data(), pa::Index(f.size()));
    world->all_reduce_sum(ctx, d.data(), pa::Index(d.size()));
    std::array<double, 2> figures{1.0, double(r)};
    world->all_reduce_sum(std::span<double>(figures));
    CHECK(f[0] == float(n * (n + 1) / 2));
    CHECK(f[1] == 0.5f * float(n));
    CHECK(f[2] == -float(n * (n - 1) / 2));
    CHECK(d[0] == 0.25 * double(n * (n - 1) / 2));
    CHECK(d[1] == double(n));
    CHECK(figures[0] == double(n));
    CHECK(figures[1] == double(n * (n - 1) / 2));
}

TEST_CASE("ZeRO-1's collectives share out and gather shards of any size", "[distributed]") {
    pa::cpu::Context ctx;
    int const r = world->rank(), n = world->size();
    for (pa::Index values : {pa::Index(n), pa::Index(7), pa::Index(1000)}) {
        INFO(values << " values over " << n << " ranks");
        auto const mine = pa::distributed::shard_of(values, n, r);
        CHECK(mine.count >= 1);
        std::vector<double> d(static_cast<std::size_t>(values));
        for (pa::Index i = 0; i < values; ++i) d[std::size_t(i)] = double(i) + double(r) * 1000.0;
        world->reduce_scatter_sum(ctx, d.data(), values);
        for (pa::Index i = mine.begin; i < mine.end(); ++i)  // sum over ranks q of i + 1000 q
            CHECK(d[std::size_t(i)] == double(n) * double(i) + 1000.0 * double(n * (n - 1) / 2));
        std::vector<float> f(static_cast<std::size_t>(values), -1.0f);
        for (pa::Index i = mine.begin; i < mine.end(); ++i) f[std::size_t(i)] = float(i) * 0.5f;
        world->all_gather(ctx, f.data(), values);
        for (pa::Index i = 0; i < values; ++i) CHECK(f[std::size_t(i)] == float(i) * 0.5f);
    }
    // The shards tile the values in rank order.
    pa::Index next = 0;
    for (int q = 0; q < 3; ++q) {
        auto const s = pa::distributed::shard_of(8, 3, q);
        CHECK(s.begin == next);
        CHECK(s.count == (q < 2 ? 3 : 2));
        next = s.end();
    }
}

TEST_CASE("data-parallel steps equal one rank's steps over the same global batch", "[distributed]") {
    for (int per_step : {4, 3, 1}) {
        check_equals_one_rank<pa::GptNeoX<pa::gpt_neox::SizeTiny, pa::LoRA<2, 4, pa::site::Qkv>>>("GPT-NeoX LoRA",
                                                                                                per_step);
        check_equals_one_rank<pa::Bloom<pa::bloom::SizeTiny>>("BLOOM full-parameter", per_step);
    }
}

/// ZeRO-1 over the ranks of the world against plain data parallel on one rank, over the same global batches. The
/// same tolerance as plain data parallel: the gradients are summed in another order, and the squared norm is summed
/// shard by shard (~1e-16 relative), so the updates move by at most lr * dg / eps a step.
template <class Model>
void check_zero1_equals_one_rank(char const* what, int per_step) {
    INFO(what << ", " << per_step << " micro-batches a step, rank " << world->rank() << " of " << world->size());
    auto const sharded = train<Model>(*world, 3, per_step, OptimizerSharding::Zero1);
    pa::distributed::SingleProcess one;
    auto const alone = train<Model>(one, 3, per_step);
    double const worst = compare(sharded, alone, what);
    if (world->rank() == 0)
        std::printf("%s, %d micro-batches a step, ZeRO-1 over %d ranks against one rank: weights within %.1e\n", what,
                    per_step, world->size(), worst);
}

TEST_CASE("ZeRO-1 steps equal plain data-parallel steps", "[distributed]") {
    for (int per_step : {4, 3, 1}) {
        check_zero1_equals_one_rank<pa::GptNeoX<pa::gpt_neox::SizeTiny, pa::LoRA<2, 4, pa::site::Qkv>>>(
            "GPT-NeoX LoRA", per_step);
        check_zero1_equals_one_rank<pa::Bloom<pa::bloom::SizeTiny>>("BLOOM full-parameter", per_step);
    }
}

namespace {
/// A directory every rank names alike (from rank 0's process id), emptied.
fs::path shared_dir(char const* name) {
    std::array<double, 1> pid{world->rank() == 0 ? double(::getpid()) : 0.0};
    world->all_reduce_sum(std::span<double>(pid));
    auto const dir = fs::temp_directory_path() / ("polyalpaca_dp_" + std::string(name) + "_" +
                                                  std::to_string(std::int64_t(pid[0])));
    pa::distributed::barrier(*world);
    if (world->rank() == 0) fs::remove_all(dir);
    pa::distributed::barrier(*world);
    return dir;
}
}  // namespace

// Checkpoints store float, the test's networks are double: every resumed run is compared with the run resumed from
// a one-rank checkpoint at one rank, which rounds the same values the same way (then the tolerance above holds).
TEST_CASE("a checkpoint resumes at another number of ranks, sharded or not", "[distributed]") {
    using Model = pa::Bloom<pa::bloom::SizeTiny>;
    constexpr int per_step = 3, saved_at = 2, steps = 4;
    pa::distributed::SingleProcess one;
    pa::RunState state{.step = saved_at, .epoch = 0, .position = saved_at * per_step};

    // The reference: one rank, saved and resumed at one rank.
    auto const dir_one = shared_dir("one");
    Run reference;
    {
        Replica<Model> first(one, OptimizerSharding::Replicated);
        first.train(one, 0, saved_at, per_step, reference);
        if (world->rank() == 0) pa::save_checkpoint(first.ctx, dir_one, first.net.parameters(), first.adamw, state);
        pa::distributed::barrier(*world);
        Replica<Model> resumed(one, OptimizerSharding::Replicated);
        pa::load_checkpoint(resumed.ctx, dir_one / "checkpoint-2", resumed.net.parameters(), resumed.adamw);
        resumed.train(one, saved_at, steps, per_step, reference);
    }

    // The first steps under ZeRO-1 over the ranks, saved: the checkpoint's directory.
    auto zero1_checkpoint = [&](char const* name, Run& run) {
        Replica<Model> first(*world, OptimizerSharding::Zero1);
        first.train(*world, 0, saved_at, per_step, run);
        auto const dir = shared_dir(name);
        auto& store = first.net.parameters();
        auto const saved = pa::save_sharded_checkpoint(first.ctx, dir, store, first.adamw, state, *world);
        pa::distributed::barrier(*world);
        return saved;
    };

    SECTION("ZeRO-1 over the ranks, resumed on one rank without sharding") {
        Run run;
        auto const saved = zero1_checkpoint("zero1", run);
        CHECK(fs::exists(saved / ("optimizer-shard-00000-of-0000" + std::to_string(world->size()) + ".safetensors")));
        CHECK(!fs::exists(saved / "optimizer.safetensors"));
        CHECK(pa::io::read_json_file(saved / "state.json").at("optimizer_shards") == world->size());
        Replica<Model> resumed(one, OptimizerSharding::Replicated);
        auto const back = pa::load_checkpoint(resumed.ctx, saved, resumed.net.parameters(), resumed.adamw);
        CHECK(back.step == saved_at);
        resumed.train(one, saved_at, steps, per_step, run);
        double const worst = compare(run, reference, "ZeRO-1 checkpoint resumed on one rank");
        if (world->rank() == 0)
            std::printf("ZeRO-1 over %d ranks, checkpoint, resumed on one rank: weights within %.1e of one rank's\n",
                        world->size(), worst);
    }
    SECTION("one rank's checkpoint, resumed under ZeRO-1 over the ranks") {
        Replica<Model> resumed(*world, OptimizerSharding::Zero1);
        pa::load_checkpoint(resumed.ctx, dir_one / "checkpoint-2", resumed.net.parameters(), resumed.adamw,
                            resumed.shard);
        Run run;
        run.losses = {reference.losses.begin(), reference.losses.begin() + saved_at};
        run.norms = {reference.norms.begin(), reference.norms.begin() + saved_at};
        run.scored = {reference.scored.begin(), reference.scored.begin() + saved_at};
        resumed.train(*world, saved_at, steps, per_step, run);
        double const worst = compare(run, reference, "one rank's checkpoint resumed under ZeRO-1");
        if (world->rank() == 0)
            std::printf("one rank's checkpoint resumed under ZeRO-1 over %d ranks: weights within %.1e\n",
                        world->size(), worst);
    }
    SECTION("ZeRO-1 over the ranks, resumed under ZeRO-1 over one rank (re-sharded)") {
        Run run;
        auto const saved = zero1_checkpoint("reshard", run);
        Replica<Model> resumed(one, OptimizerSharding::Zero1);
        pa::load_checkpoint(resumed.ctx, saved, resumed.net.parameters(), resumed.adamw, resumed.shard);
        resumed.train(one, saved_at, steps, per_step, run);
        compare(run, reference, "ZeRO-1 checkpoint re-sharded to one rank");
    }
}

TEST_CASE("a sharded checkpoint with a shard missing names the file", "[distributed]") {
    using Model = pa::Bloom<pa::bloom::SizeTiny>;
    auto const dir = shared_dir("missing");
    Replica<Model> first(*world, OptimizerSharding::Zero1);
    pa::RunState state{.step = 1};
    auto const saved = pa::save_sharded_checkpoint(first.ctx, dir, first.net.parameters(), first.adamw, state, *world);
    pa::distributed::barrier(*world);
    auto const shard_file = "optimizer-shard-00000-of-0000" + std::to_string(world->size()) + ".safetensors";
    if (world->rank() == 0) fs::remove(saved / shard_file);
    pa::distributed::barrier(*world);
    pa::distributed::SingleProcess one;
    Replica<Model> resumed(one, OptimizerSharding::Replicated);
    CHECK_THROWS_WITH(pa::load_checkpoint(resumed.ctx, saved, resumed.net.parameters(), resumed.adamw),
                      Catch::Contains(shard_file));
    // A shard count that is not one names state.json.
    pa::distributed::barrier(*world);
    if (world->rank() == 0) {
        auto j = pa::io::read_json_file(saved / "state.json");
        j["optimizer_shards"] = "two";
        pa::io::write_file_atomically(saved / "state.json", j.dump());
    }
    pa::distributed::barrier(*world);
    CHECK_THROWS_WITH(pa::load_checkpoint(resumed.ctx, saved, resumed.net.parameters(), resumed.adamw),
                      Catch::Contains("state.json': optimizer_shards must be a whole number of shard files"));
}

TEST_CASE("a step without a micro-batch on any rank is refused on every rank", "[distributed]") {
    using Model = pa::GptNeoX<pa::gpt_neox::SizeTiny>;
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, double> net(ctx, {.seed = 5});
    pa::AdamW<pa::CpuEigen, double> adamw(net.parameters().trainable_count(), {});
    std::vector<pa::TokenBatch> none;
    CHECK_THROWS_WITH(pa::train_step(ctx, net, adamw, std::span<pa::TokenBatch const>(none), 1e-3, 1.0, 7, *world),
                      Catch::Contains("a training step needs at least one micro-batch"));
}

// The failure cases, hidden: tests/scripts/distributed_failures.sh runs each under the launcher and checks that
// every rank ends, non-zero, within 60 s. Rank 1 fails in its third step while rank 0 goes on training.
TEST_CASE("a rank killed mid-run", "[.rank_killed]") {
    using Model = pa::GptNeoX<pa::gpt_neox::SizeTiny>;
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, double> net(ctx, {.seed = 5});
    pa::AdamW<pa::CpuEigen, double> adamw(net.parameters().trainable_count(), {});
    for (int step = 0; step < 1000; ++step) {
        if (step == 2 && world->rank() == 1) std::raise(SIGKILL);
        std::vector<pa::TokenBatch> mine{micro_batch(step, Model::config::vocab)};
        pa::train_step(ctx, net, adamw, std::span<pa::TokenBatch const>(mine), 1e-3, 1.0, step, *world);
    }
}

TEST_CASE("a rank that meets an error alone", "[.rank_error]") {
    using Model = pa::GptNeoX<pa::gpt_neox::SizeTiny>;
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, double> net(ctx, {.seed = 5});
    pa::AdamW<pa::CpuEigen, double> adamw(net.parameters().trainable_count(), {});
    pa::distributed::abort_all_on_error(*world, [&] {
        for (int step = 0; step < 1000; ++step) {
            pa::require(!(step == 2 && world->rank() == 1), "shard.jsonl:3: a record without \"output\"");
            std::vector<pa::TokenBatch> mine{micro_batch(step, Model::config::vocab)};
            pa::train_step(ctx, net, adamw, std::span<pa::TokenBatch const>(mine), 1e-3, 1.0, step, *world);
        }
    });
}

int main(int argc, char** argv) {
    pa::distributed::Mpi mpi;
    world = &mpi;
    int const failed = Catch::Session().run(argc, argv);
    // The test fails when it failed on any rank.
    std::array<double, 1> failures{double(failed != 0)};
    mpi.all_reduce_sum(std::span<double>(failures));
    return failures[0] > 0 ? 1 : 0;
}
