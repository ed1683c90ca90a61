// Data parallel on GPUs (distributed/nccl.cuh): NCCL's all-reduce by size, a parity check of data-parallel steps
// against one GPU, and the step time with and without the exchange. Run under the launcher, one rank per GPU
// (`mpirun -np 8 polyalpaca_bench_cuda_data_parallel`), or alone as one rank (NCCL's one-rank path).
//
//   polyalpaca_bench_cuda_data_parallel [--max-bytes 268435456] [--iterations 20] [--steps 10] [--batch 4] [--seq 512]
//
// 1. All-reduce (sum, float, in place, on the context's stream): the slowest rank's mean time per size, algorithm
//    bandwidth (bytes / time) and bus bandwidth (algbw * 2 (ranks - 1) / ranks), as nccl-tests define them.
// 2. Parity: 3 steps of a full-parameter BLOOM-560m (random weights; the global batch is one micro-batch a rank)
//    over the ranks, replicated and ZeRO-1, against the same 3 steps of all the micro-batches on this rank's GPU
//    alone. Over one rank every sum is of one term: the runs must agree bit for bit. Over several the gradients are
//    summed in another order (float, ~1e-7 relative), so the losses must agree within 1e-4 relative.
// 3. Step time of the same network at micro-batch x seq tokens a rank: without any exchange (SingleProcess), with the
//    gradient all-reduce, and under ZeRO-1 (reduce, the shard's AdamW update, broadcast), CUDA-event ms per step.
// Prints a table of each and RESULT lines; exits 1 when the parity check fails.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "polyalpaca/backend/cuda.cuh"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/distributed/nccl.cuh"
#include "polyalpaca/models/bloom.hpp"
#include "polyalpaca/models/causal_lm.hpp"
#include "polyalpaca/optim/adamw.hpp"
#include "polyalpaca/train/step.hpp"

#include "bench_common.cuh"

namespace pa = polyalpaca;
namespace cu = polyalpaca::cuda;
namespace po = boost::program_options;
using pa::distributed::OptimizerSharding;

namespace {

using Model = pa::Bloom<pa::bloom::Size560m>;
using Net = pa::CausalLm<Model, pa::Cuda, float>;

pa::TokenBatch random_batch(int batch, int seq, std::uint64_t seed) {
    pa::Rng rng(seed);
    auto ids = xt::xtensor<std::int32_t, 2>::from_shape({std::size_t(batch), std::size_t(seq)});
    for (auto& id : ids) id = std::int32_t(rng.below(std::uint64_t(Model::config::vocab)));
    return pa::make_lm_batch(std::move(ids));
}

/// The slowest rank's CUDA-event milliseconds of `calls` calls of f, on the context's stream.
template <class F>
double slowest_ms(pa::distributed::Nccl& world, cu::Context& ctx, int calls, F&& f) {
    std::vector<double> all(std::size_t(world.size()), 0.0);  // each rank's time in its own slot, summed: gathered
    all[std::size_t(world.rank())] = pa::bench::time_ms(ctx, 0, calls, f);
    world.all_reduce_sum(std::span<double>(all));
    return *std::max_element(all.begin(), all.end());
}

void bandwidth_table(pa::distributed::Nccl& world, cu::Context& ctx, std::size_t max_bytes, int iterations) {
    double const ranks = world.size();
    if (world.rank() == 0)
        std::printf("NCCL all-reduce (sum, float, in place) over %d rank(s), mean of %d\n%12s %12s %12s %12s %12s\n",
                    world.size(), iterations, "bytes", "count", "time (us)", "algbw (GB/s)", "busbw (GB/s)");
    for (std::size_t bytes = 8; bytes <= max_bytes; bytes *= 4) {
        auto const n = pa::Index(bytes / sizeof(float));
        pa::Cuda::Buffer<float> data{std::size_t(n)};
        world.all_reduce_sum(ctx, data.data(), n);  // warm-up
        double const us = slowest_ms(world, ctx, iterations, [&] { world.all_reduce_sum(ctx, data.data(), n); }) * 1e3;
        double const algbw = double(bytes) / us / 1e3;
        if (world.rank() == 0) {
            std::printf("%12zu %12lld %12.1f %12.3f %12.3f\n", bytes, (long long)n, us, algbw,
                        algbw * 2.0 * (ranks - 1.0) / ranks);
            std::printf("RESULT allreduce bytes=%zu ranks=%d us=%.2f algbw=%.3f busbw=%.3f\n", bytes, world.size(), us,
                        algbw, algbw * 2.0 * (ranks - 1.0) / ranks);
        }
    }
}

struct Replica {
    std::unique_ptr<Net> net;
    pa::distributed::Shard shard;
    std::unique_ptr<pa::AdamW<pa::Cuda, float>> adamw;
};

template <class Communicator>
Replica make_replica(cu::Context& ctx, Communicator const& communicator, OptimizerSharding sharding) {
    Replica r;
    r.net = std::make_unique<Net>(ctx, pa::NetworkOptions{.seed = 1});
    auto const n = r.net->parameters().trainable_count();
    r.shard = sharding == OptimizerSharding::Zero1
                  ? pa::distributed::shard_of(n, communicator.size(), communicator.rank())
                  : pa::distributed::Shard{0, n};
    r.adamw = std::make_unique<pa::AdamW<pa::Cuda, float>>(r.shard.count, pa::AdamWConfig{.lr = 1e-4});
    return r;
}

/// 3 steps over the world against this GPU alone; returns whether they agree (bitwise over one rank).
bool parity(pa::distributed::Nccl& world, cu::Context& ctx, int batch, int seq) {
    constexpr int steps = 3;
    pa::distributed::SingleProcess alone;
    auto micro = [&](int step, int rank) { return random_batch(batch, seq, 1000 + std::uint64_t(step * 64 + rank)); };
    std::vector<double> reference;
    {
        auto r = make_replica(ctx, alone, OptimizerSharding::Replicated);
        for (int step = 0; step < steps; ++step) {
            std::vector<pa::TokenBatch> all;
            for (int q = 0; q < world.size(); ++q) all.push_back(micro(step, q));
            reference.push_back(pa::train_step(ctx, *r.net, *r.adamw, std::span<pa::TokenBatch const>(all), 1e-4, 1.0,
                                               step, alone).loss);
        }
    }
    bool ok = true;
    for (auto sharding : {OptimizerSharding::Replicated, OptimizerSharding::Zero1}) {
        auto r = make_replica(ctx, world, sharding);
        double worst = 0;
        for (int step = 0; step < steps; ++step) {
            std::vector<pa::TokenBatch> mine{micro(step, world.rank())};
            double const loss = pa::train_step(ctx, *r.net, *r.adamw, std::span<pa::TokenBatch const>(mine), 1e-4,
                                               1.0, step, world, sharding).loss;
            worst = std::max(worst, std::abs(loss - reference[std::size_t(step)]) / reference[std::size_t(step)]);
        }
        bool const agrees = world.size() == 1 ? worst == 0.0 : worst <= 1e-4;
        ok = ok && agrees;
        char const* name = sharding == OptimizerSharding::Zero1 ? "zero1" : "replicated";
        if (world.rank() == 0) {
            std::printf("parity, %s over %d rank(s) against one GPU: 3 losses within %.2e relative (%s): %s\n", name,
                        world.size(), worst, world.size() == 1 ? "bit for bit wanted" : "1e-4 wanted",
                        agrees ? "ok" : "FAILED");
            std::printf("RESULT parity sharding=%s ranks=%d worst_relative=%.3e ok=%d\n", name, world.size(), worst,
                        int(agrees));
        }
    }
    return ok;
}

void step_times(pa::distributed::Nccl& world, cu::Context& ctx, int batch, int seq, int steps) {
    std::vector<pa::TokenBatch> mine{random_batch(batch, seq, 7 + std::uint64_t(world.rank()))};
    std::span<pa::TokenBatch const> const batches(mine);
    pa::distributed::SingleProcess alone;
    auto r = make_replica(ctx, world, OptimizerSharding::Replicated);
    auto z = make_replica(ctx, world, OptimizerSharding::Zero1);
    long step = 0;
    for (int i = 0; i < 2; ++i) {  // warm-up: every buffer grown, NCCL's channels set up
        pa::train_step(ctx, *r.net, *r.adamw, batches, 1e-4, 1.0, ++step, alone);
        pa::train_step(ctx, *r.net, *r.adamw, batches, 1e-4, 1.0, ++step, world);
        pa::train_step(ctx, *z.net, *z.adamw, batches, 1e-4, 1.0, ++step, world, OptimizerSharding::Zero1);
    }
    double const without = slowest_ms(world, ctx, steps, [&] {
        pa::train_step(ctx, *r.net, *r.adamw, batches, 1e-4, 1.0, ++step, alone);
    });
    double const replicated = slowest_ms(world, ctx, steps, [&] {
        pa::train_step(ctx, *r.net, *r.adamw, batches, 1e-4, 1.0, ++step, world);
    });
    double const zero1 = slowest_ms(world, ctx, steps, [&] {
        pa::train_step(ctx, *z.net, *z.adamw, batches, 1e-4, 1.0, ++step, world, OptimizerSharding::Zero1);
    });
    if (world.rank() != 0) return;
    double const gradient_mb = double(r.net->parameters().trainable_count()) * 4 / 1e6;
    std::printf("\nBLOOM-560m full-parameter step, %d x %d tokens a rank, %.1f MB of gradients, over %d rank(s), "
                "mean of %d:\n| exchange | ms/step | overhead |\n|---|---:|---:|\n| none (one GPU's step) | %.1f | |\n"
                "| all-reduce | %.1f | %.1f%% |\n| ZeRO-1 | %.1f | %.1f%% |\n",
                batch, seq, gradient_mb, world.size(), steps, without, replicated,
                100.0 * (replicated - without) / without, zero1, 100.0 * (zero1 - without) / without);
    std::printf("RESULT step ranks=%d none_ms=%.2f allreduce_ms=%.2f zero1_ms=%.2f\n", world.size(), without,
                replicated, zero1);
}

}  // namespace

int main(int argc, char** argv) try {
    std::size_t max_bytes = std::size_t(1) << 28;
    int iterations = 20, steps = 10, batch = 4, seq = 512;
    po::options_description desc("mpirun -np N polyalpaca_bench_cuda_data_parallel [options]");
    desc.add_options()("help,h", "this help")(
        "max-bytes", po::value(&max_bytes)->default_value(max_bytes), "largest all-reduce (bytes; sizes 8, 32, ...)")(
        "iterations", po::value(&iterations)->default_value(iterations), "all-reduces timed per size")(
        "steps", po::value(&steps)->default_value(steps), "training steps timed each way (0: none)")(
        "batch", po::value(&batch)->default_value(batch), "sequences a micro-batch")(
        "seq", po::value(&seq)->default_value(seq), "tokens a sequence");
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return 0;
    }
    pa::require(iterations > 0 && max_bytes >= 8 && batch > 0 && seq > 1, "bad --iterations, --max-bytes, --batch or "
                "--seq");
    pa::distributed::Nccl world;
    cu::Context ctx(world.device());
    bandwidth_table(world, ctx, max_bytes, iterations);
    bool const ok = parity(world, ctx, 1, 128);
    if (steps > 0) step_times(world, ctx, batch, seq, steps);
    return ok ? 0 : 1;
} catch (std::exception const& e) {
    std::fprintf(stderr, "polyalpaca_bench_cuda_data_parallel: %s\n", e.what());
    return 2;
}
