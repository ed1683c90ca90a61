// Time the optimizer's passes over a trainable arena (zeroing the gradients, their squared norm, the clipping scale,
// AdamW) and compare each with the memory bandwidth a plain copy reaches in the same run: the passes only stream
// memory, so the copy's GB/s is their ceiling. Values are random; only speed is measured.
#include <polyalpaca/backend/cpu/optim_ops.hpp>
#include <polyalpaca/backend/cpu_eigen.hpp>

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

double seconds(std::function<void()> const& f) {
    auto const t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

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
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
        std::cout << desc << "\n";
        return 0;
    }
    po::notify(vm);
    pa::require(values > 0 && repeat > 0 && threads >= 0, "--values and --repeat must be positive, --threads >= 0");
    if (threads > 0) Eigen::setNbThreads(threads);
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
    };
    for (auto& p : passes) p.run();  // warm-up: pages touched
    for (int r = 0; r < repeat; ++r)
        for (auto& p : passes) p.best = std::min(p.best, seconds(p.run));
    std::printf("%lld values (%.0f MiB per fp32 array), %d threads, best of %d alternating runs\n\n", values,
                double(n) * 4 / (1 << 20), ctx.threads, repeat);
    std::printf("| pass | bytes per value | ms | ns per value | GB/s | of copy |\n|---|---:|---:|---:|---:|---:|\n");
    double const copy_rate = 8.0 * double(n) / passes.front().best;
    for (auto const& p : passes) {
        double const rate = p.bytes_per_value * double(n) / p.best;
        std::printf("| %s | %.0f | %.1f | %.2f | %.1f | %.2f |\n", p.name, p.bytes_per_value, p.best * 1e3,
                    p.best * 1e9 / double(n), rate * 1e-9, rate / copy_rate);
    }
    return sink == -1 ? 1 : 0;
} catch (std::exception const& e) {
    std::fprintf(stderr, "polyalpaca_bench_optimizer: %s\n", e.what());
    return 2;
}
