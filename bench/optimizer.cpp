// Time the optimizer's passes over a trainable arena (zeroing the gradients, their squared norm, the clipping scale,
// AdamW, and AdamW consuming the gradients: scaled and zeroed as it reads them, what a training step runs) and
// compare each with the memory bandwidth a plain copy reaches in the same run: the passes only stream memory, so the
// copy's GB/s is their ceiling. Values are random; only speed is measured.
#include <polyalpaca/backend/cpu/optim_ops.hpp>
#include <polyalpaca/backend/cpu_eigen.hpp>

#include "cpu_bench.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <random>
#include <vector>

namespace pa = polyalpaca;
namespace po = boost::program_options;

namespace {

struct Pass {
    char const* name;
    double bytes_per_value;  // read + written
    std::function<void()> run;
    double best = 1e30;
};

}  // namespace

int main(int argc, char** argv) try {
    long long values = 100'000'000;
    int repeat = 5, threads = 0;
    po::options_description desc("polyalpaca_bench_optimizer: the optimizer's passes against copy bandwidth.\nOptions");
    desc.add_options()("help,h", "show this help")("values", po::value(&values)->default_value(values),
                                                   "trainable values in the arena (BLOOM-560m: 559M)")(
        "repeat", po::value(&repeat)->default_value(repeat), "timed repetitions, the passes alternating (best kept)")(
        "threads", po::value(&threads)->default_value(threads), "threads (0: Eigen's default)");
    if (!pa::bench::parse_command_line(argc, argv, desc)) return 0;
    pa::require(values > 0 && repeat > 0 && threads >= 0, "--values and --repeat must be positive, --threads >= 0");
    pa::bench::use_threads(threads);
    pa::cpu::Context ctx;
    auto const n = pa::Index(values);
    using Buffer = pa::CpuEigen::Buffer<float>;
    Buffer params(static_cast<std::size_t>(n)), grads(static_cast<std::size_t>(n)),
        moments(static_cast<std::size_t>(2 * n)), copy(static_cast<std::size_t>(n));
    std::mt19937 rng(0);
    std::normal_distribution<float> normal(0.f, 1.f);
    for (pa::Index i = 0; i < n; ++i) params.data()[i] = normal(rng), grads.data()[i] = 1e-3f * normal(rng);
    std::fill_n(moments.data(), 2 * n, 0.f);
    long step = 0;
    double sink = 0;
    std::vector<Pass> passes{
        {"copy (memcpy, the ceiling)", 8, [&] { std::memcpy(copy.data(), grads.data(), std::size_t(n) * 4); }},
        {"zero gradients", 4, [&] { pa::CpuEigen::fill_zero(ctx, copy.data(), std::size_t(n)); }},
        {"squared norm", 4, [&] { sink += pa::cpu::squared_norm(ctx, grads.data(), n); }},
        {"clip (scale)", 8, [&] { pa::cpu::scale(ctx, copy.data(), n, 0.5f); }},
        {"AdamW", 28,
         [&] {
             pa::cpu::adamw_update(ctx, params.data(), grads.data(), moments.data(), moments.data() + n, n,
                                   {1e-4, 0.9, 0.999, 1e-8, 0.0, ++step});
         }},
        // What train_step runs: the clip scale applied and the gradients zeroed as AdamW reads them. The copy's
        // gradients are consumed (left zero), so they are refilled from a pass that is not timed.
        {"AdamW consuming (clip + zero fused)", 32,
         [&] {
             pa::cpu::adamw_update_consuming(ctx, params.data(), copy.data(), moments.data(), moments.data() + n, n,
                                             {1e-4, 0.9, 0.999, 1e-8, 0.0, ++step}, 0.5f);
         }},
    };
    auto refill = [&] { std::memcpy(copy.data(), grads.data(), std::size_t(n) * 4); };
    for (auto& p : passes) refill(), p.run();  // warm-up: pages touched
    for (int r = 0; r < repeat; ++r)
        for (auto& p : passes) {
            refill();  // every pass starts from the same gradients, none of them in cache
            p.best = std::min(p.best, pa::bench::seconds(p.run));
        }
    std::printf("%lld values (%.0f MiB per fp32 array), %d threads, best of %d alternating runs\n\n", values,
                double(n) * 4 / (1 << 20), ctx.threads, repeat);
    std::printf("| pass | bytes per value | ms | ns per value | GB/s | of copy |\n|---|---:|---:|---:|---:|---:|\n");
    double const copy_rate = 8.0 * double(n) / passes.front().best;
    for (auto const& p : passes) {
        double const rate = p.bytes_per_value * double(n) / p.best;
        std::printf("| %s | %.0f | %.1f | %.2f | %.1f | %.2f |\n", p.name, p.bytes_per_value, p.best * 1e3,
                    p.best * 1e9 / double(n), rate * 1e-9, rate / copy_rate);
    }
    auto best = [&](std::size_t i) { return passes[i].best * 1e3; };
    double const separate = best(1) + best(2) + best(3) + best(4), fused = best(2) + best(5);
    std::printf("\na step's optimizer work: zero + norm + clip + AdamW as separate passes %.1f ms; norm + the "
                "consuming AdamW (what train_step runs) %.1f ms: %.2fx\n",
                separate, fused, separate / fused);
    return sink == -1 ? 1 : 0;
} catch (std::exception const& e) {
    std::fprintf(stderr, "polyalpaca_bench_optimizer: %s\n", e.what());
    return 2;
}
