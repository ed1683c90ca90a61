// The all-reduce of data-parallel training (distributed/mpi.hpp), measured as nccl-tests measures it: for each size,
// the mean time of an in-place sum of float values over all ranks, the algorithm bandwidth (bytes / time) and the
// bus bandwidth (algorithm bandwidth * 2 (ranks - 1) / ranks, what each link carries in a ring). Then the cost of it
// in a training step: a GPT-NeoX step on each rank with and without the gradient sum, alternated.
//   mpiexec -np 2 build/bench/polyalpaca_bench_allreduce [--max-bytes N] [--iterations N] [--step-repeat N]
#include <polyalpaca/distributed/mpi.hpp>
#include <polyalpaca/polyalpaca.hpp>

#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <vector>

namespace pa = polyalpaca;
namespace po = boost::program_options;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

/// The slowest rank's time of f (every rank starts together), the way a collective's time is seen.
template <class F>
double timed(pa::distributed::Mpi& world, F&& f) {
    std::vector<double> start{0.0};
    world.all_reduce_sum(std::span<double>(start));  // a barrier
    double const t0 = now();
    f();
    std::vector<double> times(std::size_t(world.size()), 0.0);
    times[std::size_t(world.rank())] = now() - t0;
    world.all_reduce_sum(std::span<double>(times));
    return *std::max_element(times.begin(), times.end());
}

void bandwidth_table(pa::distributed::Mpi& world, std::size_t max_bytes, int iterations) {
    pa::cpu::Context ctx;
    double const ranks = world.size();
    if (world.rank() == 0)
        std::printf("all-reduce (sum, float, in place) over %d ranks, mean of %d\n%12s %12s %12s %12s %12s\n",
                    world.size(), iterations, "bytes", "count", "time (us)", "algbw (GB/s)", "busbw (GB/s)");
    for (std::size_t bytes = 8; bytes <= max_bytes; bytes *= 4) {
        std::vector<float> data(bytes / sizeof(float), 1.0f);
        auto const n = pa::Index(data.size());
        world.all_reduce_sum(ctx, data.data(), n);  // warm-up
        double const seconds = timed(world, [&] {
            for (int i = 0; i < iterations; ++i) world.all_reduce_sum(ctx, data.data(), n);
        }) / iterations;
        double const algbw = double(bytes) / seconds / 1e9;
        if (world.rank() == 0)
            std::printf("%12zu %12zu %12.1f %12.3f %12.3f\n", bytes, data.size(), seconds * 1e6, algbw,
                        algbw * 2.0 * (ranks - 1.0) / ranks);
    }
}

/// A full-parameter GPT-NeoX 70m step of one micro-batch (1 x 64 tokens) on each rank, with the gradient sum over
/// the ranks, under ZeRO-1 (reduce-scatter, a shard's update, all-gather) and without any exchange (the same local
/// work), alternated; the best of `repeat` each.
void step_overhead(pa::distributed::Mpi& world, int repeat) {
    using Model = pa::GptNeoX<pa::gpt_neox::Size70m>;
    pa::cpu::Context ctx;
    pa::CausalLm<Model, pa::CpuEigen, float> net(ctx, {.seed = 1});
    pa::AdamW<pa::CpuEigen, float> adamw(net.parameters().trainable_count(), {});
    auto const shard = pa::distributed::shard_of(net.parameters().trainable_count(), world.size(), world.rank());
    pa::AdamW<pa::CpuEigen, float> adamw_shard(shard.count, {});
    pa::Rng rng(7 + std::uint64_t(world.rank()));
    xt::xtensor<std::int32_t, 2> ids = xt::xtensor<std::int32_t, 2>::from_shape({1, 64});
    for (auto& id : ids) id = std::int32_t(rng.next_u64() % Model::config::vocab);
    std::vector<pa::TokenBatch> micro{pa::make_lm_batch(ids)};
    std::span<pa::TokenBatch const> const batches(micro);
    pa::distributed::SingleProcess alone;
    auto const zero1 = pa::distributed::OptimizerSharding::Zero1;
    double with = 1e30, sharded = 1e30, without = 1e30;
    for (int r = 0; r < repeat; ++r) {
        with = std::min(with, timed(world, [&] { pa::train_step(ctx, net, adamw, batches, 1e-5, 1.0, r, world); }));
        sharded = std::min(sharded, timed(world, [&] {
            pa::train_step(ctx, net, adamw_shard, batches, 1e-5, 1.0, r, world, zero1);
        }));
        without = std::min(without, timed(world, [&] { pa::train_step(ctx, net, adamw, batches, 1e-5, 1.0, r, alone); }));
    }
    if (world.rank() == 0)
        std::printf("\nGPT-NeoX 70m full-parameter step (1 x 64 tokens a rank, %.1f MB of gradients) over %d ranks, "
                    "best of %d:\n  without exchange %.3f s\n  with the gradient sum %.3f s: overhead %.3f s (%.1f%%)\n"
                    "  ZeRO-1 %.3f s: overhead %.3f s (%.1f%%)\n",
                    double(net.parameters().trainable_count()) * 4 / 1e6, world.size(), repeat, without, with,
                    with - without, 100.0 * (with - without) / without, sharded, sharded - without,
                    100.0 * (sharded - without) / without);
}

}  // namespace

int main(int argc, char** argv) try {
    pa::distributed::Mpi world;
    std::size_t max_bytes = std::size_t(1) << 26;
    int iterations = 20, step_repeat = 3;
    po::options_description desc("mpiexec -np N polyalpaca_bench_allreduce [options]");
    desc.add_options()("help,h", "this help")(
        "max-bytes", po::value(&max_bytes)->default_value(max_bytes), "largest all-reduce (bytes; sizes 8, 32, ...)")(
        "iterations", po::value(&iterations)->default_value(iterations), "all-reduces timed per size")(
        "step-repeat", po::value(&step_repeat)->default_value(step_repeat), "training steps timed each way (0: none)");
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
    if (vm.count("help")) {
        if (world.rank() == 0) std::cout << desc << "\n";
        return 0;
    }
    pa::require(iterations > 0 && max_bytes >= 8, "--iterations must be positive and --max-bytes at least 8");
    bandwidth_table(world, max_bytes, iterations);
    if (step_repeat > 0) step_overhead(world, step_repeat);
    return 0;
} catch (std::exception const& e) {
    std::fprintf(stderr, "polyalpaca_bench_allreduce: %s\n", e.what());
    return 2;
}
