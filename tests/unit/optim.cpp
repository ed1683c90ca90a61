/// @file tests/unit/optim.cpp
/// @brief AdamW, clipping and schedules against textbook formulas written here, plus bad input and state handling.

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include <Eigen/Core>
#include <catch2/catch.hpp>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/backend/cpu/optim_ops.hpp"
#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/optim/adamw.hpp"
#include "polyalpaca/optim/clip.hpp"
#include "polyalpaca/optim/schedule.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;

namespace {

/// Storage aligned as CpuEigen's buffers are: Eigen's fast vectorised sqrt and the scalar one it uses for a
/// misaligned head may differ in the last bit, so two updates agree bit for bit only over equally aligned arrays.
template <class T>
using Aligned = std::vector<T, Eigen::aligned_allocator<T>>;

/// The two members of the CpuEigen policy AdamW uses (cpu_eigen.hpp pulls in every CPU op header).
struct HostBackend {
    using Context = cpu::Context;
    template <class T>
    using Buffer = Aligned<T>;
};

std::vector<double> normals(Index n, std::uint64_t seed, double scale) {
    Rng rng(seed);
    std::vector<double> out(static_cast<std::size_t>(n));
    for (auto& x : out) x = scale * rng.normal();
    return out;
}

template <class T>
std::vector<T> cast(std::vector<double> const& x) {
    return std::vector<T>(x.begin(), x.end());
}

/// Largest |a - b| / max(1, |b|): relative for large values, absolute near zero.
double scaled_error(std::vector<double> const& a, std::vector<double> const& b) {
    return testing::max_scaled_error(std::span<double const>(a), std::span<double const>(b));
}

/// AdamW as Loshchilov & Hutter write it, one element at a time: decoupled decay, then the Adam step on
/// bias-corrected moments m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t).
struct ReferenceAdamW {
    double lr, beta1, beta2, eps, weight_decay;
    std::vector<double> m, v;
    long t = 0;

    void step(std::vector<double>& p, std::vector<double> const& g) {
        ++t;
        for (std::size_t i = 0; i < p.size(); ++i) {
            p[i] -= lr * weight_decay * p[i];
            m[i] = beta1 * m[i] + (1 - beta1) * g[i];
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
            double const m_hat = m[i] / (1 - std::pow(beta1, t));
            double const v_hat = v[i] / (1 - std::pow(beta2, t));
            p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
        }
    }
};

}  // namespace

TEST_CASE("adamw_update matches the textbook AdamW on a large array (parallel path)", "[optim]") {
    cpu::Context ctx;
    Index const n = 100003;  // above the parallel threshold, not a multiple of anything
    AdamWConfig const config{2e-3, 0.9, 0.95, 1e-8, 0.1};
    auto params = normals(n, 1, 1.0);
    auto expected = params;
    ReferenceAdamW reference{config.lr, config.beta1, config.beta2, config.eps, config.weight_decay,
                             std::vector<double>(n), std::vector<double>(n)};
    AdamW<HostBackend, double> opt(n, config);
    for (int s = 0; s < 4; ++s) {
        auto const grads = normals(n, 100 + s, 0.3);
        opt.step(ctx, params.data(), grads.data(), config.lr);
        reference.step(expected, grads);
    }
    double const error = scaled_error(params, expected);
    INFO("max scaled error " << error);
    CHECK(error <= 1e-12);
    CHECK(scaled_error(std::vector<double>(opt.exp_avg(), opt.exp_avg() + n), reference.m) <= 1e-12);
    CHECK(scaled_error(std::vector<double>(opt.exp_avg_sq(), opt.exp_avg_sq() + n), reference.v) <= 1e-12);
}

TEST_CASE("AdamW in float agrees with double on the same inputs", "[optim]") {
    cpu::Context ctx;
    Index const n = 4099;
    AdamWConfig const config{1e-3, 0.9, 0.999, 1e-8, 0.01};
    auto const start = normals(n, 3, 1.0);
    auto params_d = start;
    auto params_f = cast<float>(start);
    AdamW<HostBackend, double> opt_d(n, config);
    AdamW<HostBackend, float> opt_f(n, config);
    for (int s = 0; s < 5; ++s) {
        auto const grads = normals(n, 200 + s, 0.5);
        auto const grads_f = cast<float>(grads);
        opt_d.step(ctx, params_d.data(), grads.data(), config.lr);
        opt_f.step(ctx, params_f.data(), grads_f.data(), config.lr);
    }
    double const error = scaled_error(std::vector<double>(params_f.begin(), params_f.end()), params_d);
    INFO("max scaled error float vs double " << error);
    CHECK(error <= 1e-5);
}

TEST_CASE("step_consuming is scale, step and zeroing one after the other, bit for bit, and leaves zeros", "[optim]") {
    cpu::Context ctx;
    Index const n = 100003;  // the parallel path, and a last chunk shorter than the others
    AdamWConfig const config{1e-3, 0.9, 0.999, 1e-8, 0.01};
    auto const start = cast<float>(normals(n, 5, 1.0));
    Aligned<float> fused_params(start.begin(), start.end()), plain_params = fused_params;
    AdamW<HostBackend, float> fused(n, config), plain(n, config);
    std::uint64_t seed = 300;
    for (double const grad_scale : {0.37, 1.0, 1e-3}) {  // clipped, not clipped, clipped hard
        auto const drawn = cast<float>(normals(n, ++seed, 0.5));
        Aligned<float> grads(drawn.begin(), drawn.end()), scaled = grads;
        scale(ctx, scaled.data(), n, float(grad_scale));
        plain.step(ctx, plain_params.data(), scaled.data(), config.lr);
        fused.step_consuming(ctx, fused_params.data(), grads.data(), config.lr, grad_scale);
        CHECK(fused_params == plain_params);
        CHECK(fused.moments() == plain.moments());
        CHECK(std::all_of(grads.begin(), grads.end(), [](float g) { return g == 0.f; }));
    }
    CHECK(fused.step_count() == 3);
    Aligned<float> grads(std::size_t(n), 1.f);
    CHECK_THROWS_WITH(fused.step_consuming(ctx, fused_params.data(), grads.data(), config.lr, 0.0),
                      Catch::Contains("gradient scale must be in (0, 1], got 0"));
    CHECK_THROWS_WITH(fused.step_consuming(ctx, fused_params.data(), grads.data(), config.lr, 1.5),
                      Catch::Contains("got 1.5"));
}

TEST_CASE("AdamW with zero gradients only decays the weights", "[optim]") {
    cpu::Context ctx;
    AdamWConfig const config{1e-2, 0.9, 0.999, 1e-8, 0.1};
    std::vector<double> params{1.5, -2.0, 0.25, 0.0, 3.0};
    auto expected = params;
    std::vector<double> const zeros(params.size(), 0.0);
    AdamW<HostBackend, double> opt(Index(params.size()), config);
    for (int s = 0; s < 6; ++s) {
        opt.step(ctx, params.data(), zeros.data(), config.lr);
        for (auto& p : expected) p *= 1 - config.lr * config.weight_decay;
    }
    for (std::size_t i = 0; i < params.size(); ++i) CHECK(params[i] == Approx(expected[i]).epsilon(1e-15));
    for (Index i = 0; i < 2 * opt.size(); ++i) CHECK(opt.moments()[i] == 0.0);
    CHECK(params[0] == Approx(1.5 * std::pow(1 - 1e-3, 6)).epsilon(1e-14));
}

TEST_CASE("AdamW state: step count, moment layout, and resuming from saved state", "[optim]") {
    cpu::Context ctx;
    Index const n = 11;
    AdamWConfig const config{3e-3, 0.9, 0.95, 1e-8, 0.05};
    auto params = normals(n, 5, 1.0);
    AdamW<HostBackend, double> opt(n, config);
    CHECK(opt.size() == n);
    CHECK(opt.step_count() == 0);
    CHECK(opt.moments().size() == std::size_t(2 * n));
    CHECK(opt.exp_avg() == opt.moments().data());
    CHECK(opt.exp_avg_sq() == opt.moments().data() + n);
    CHECK(opt.config().beta2 == 0.95);

    for (int s = 0; s < 3; ++s) {
        auto const grads = normals(n, 300 + s, 1.0);
        opt.step(ctx, params.data(), grads.data(), config.lr);
    }
    CHECK(opt.step_count() == 3);
    // The first moment after one step is (1 - b1) g; after three it mixes all three gradients, so it is nonzero.
    CHECK(opt.exp_avg()[0] != 0.0);

    // A fresh optimizer given the saved state continues exactly like the original.
    AdamW<HostBackend, double> resumed(n, config);
    resumed.moments() = opt.moments();
    resumed.set_step_count(opt.step_count());
    auto params_resumed = params;
    for (int s = 3; s < 5; ++s) {
        auto const grads = normals(n, 300 + s, 1.0);
        opt.step(ctx, params.data(), grads.data(), config.lr);
        resumed.step(ctx, params_resumed.data(), grads.data(), config.lr);
    }
    CHECK(params_resumed == params);

    // Losing the step count changes the bias correction, so the continuation differs.
    AdamW<HostBackend, double> wrong(n, config);
    wrong.moments() = resumed.moments();
    auto params_wrong = params_resumed;
    auto const grads = normals(n, 999, 1.0);
    resumed.step(ctx, params_resumed.data(), grads.data(), config.lr);
    wrong.step(ctx, params_wrong.data(), grads.data(), config.lr);
    CHECK(params_wrong != params_resumed);
}

TEST_CASE("AdamW rejects bad configuration and bad arguments", "[optim]") {
    cpu::Context ctx;
    CHECK_THROWS_AS((AdamW<HostBackend, double>(0)), Error);
    CHECK_THROWS_AS((AdamW<HostBackend, double>(-3)), Error);
    CHECK_THROWS_AS((AdamW<HostBackend, double>(4, AdamWConfig{-1e-3, 0.9, 0.999, 1e-8, 0.01})), Error);
    CHECK_THROWS_AS((AdamW<HostBackend, double>(4, AdamWConfig{1e-3, 1.0, 0.999, 1e-8, 0.01})), Error);
    CHECK_THROWS_AS((AdamW<HostBackend, double>(4, AdamWConfig{1e-3, 0.9, -0.1, 1e-8, 0.01})), Error);
    CHECK_THROWS_AS((AdamW<HostBackend, double>(4, AdamWConfig{1e-3, 0.9, 0.999, -1e-8, 0.01})), Error);
    CHECK_THROWS_AS((AdamW<HostBackend, double>(4, AdamWConfig{1e-3, 0.9, 0.999, 1e-8, -0.01})), Error);
    CHECK_THROWS_AS((AdamW<HostBackend, double>(4, AdamWConfig{std::nan(""), 0.9, 0.999, 1e-8, 0.01})), Error);

    AdamW<HostBackend, double> opt(4);
    std::vector<double> params(4, 1.0), grads(4, 0.5), short_grads(3, 0.5), long_params(5, 1.0);
    CHECK_THROWS_WITH(opt.step(ctx, std::span<double>(params), std::span<double const>(short_grads), 1e-3),
                      Catch::Contains("grads has 3"));
    CHECK_THROWS_WITH(opt.step(ctx, std::span<double>(long_params), std::span<double const>(grads), 1e-3),
                      Catch::Contains("params has 5"));
    CHECK_THROWS_AS(opt.step(ctx, nullptr, grads.data(), 1e-3), Error);
    CHECK_THROWS_AS(opt.step(ctx, params.data(), grads.data(), -1.0), Error);
    CHECK_THROWS_AS(opt.step(ctx, params.data(), grads.data(), std::numeric_limits<double>::infinity()), Error);
    CHECK_THROWS_AS(opt.set_step_count(-1), Error);
    CHECK(opt.step_count() == 0);  // failed calls do not count as steps
    CHECK(params == std::vector<double>(4, 1.0));
    opt.step(ctx, std::span<double>(params), std::span<double const>(grads), 1e-3);
    CHECK(opt.step_count() == 1);
    CHECK(params[0] < 1.0);
}

TEST_CASE("squared_norm and scale", "[optim]") {
    Index const n = 200001;  // several norm chunks, parallel path
    auto const x = normals(n, 7, 2.0);
    double naive = 0;
    for (double v : x) naive += v * v;
    cpu::Context one{1}, two{2};
    double const a = cpu::squared_norm(one, x.data(), n);
    double const b = cpu::squared_norm(two, x.data(), n);
    CHECK(a == Approx(naive).epsilon(1e-12));
    CHECK(a == b);  // same value whatever the thread count
    auto const xf = cast<float>(x);
    CHECK(cpu::squared_norm(one, xf.data(), n) == Approx(naive).epsilon(1e-6));
    CHECK(cpu::squared_norm(one, x.data(), 0) == 0.0);
    CHECK_THROWS_AS(cpu::squared_norm(one, x.data(), -1), Error);

    auto y = x;
    cpu::scale(two, y.data(), n, 0.25);
    for (Index i = 0; i < n; i += 997) CHECK(y[i] == x[i] * 0.25);
    CHECK(y[n - 1] == x[n - 1] * 0.25);
}

TEST_CASE("clip_grad_norm: below max_norm is a no-op, above scales to max_norm", "[optim]") {
    cpu::Context ctx;
    std::vector<double> small{0.1, -0.2, 0.3};
    auto const before = small;
    double const small_norm = std::sqrt(0.01 + 0.04 + 0.09);
    CHECK(clip_grad_norm(ctx, small.data(), 3, 1.0) == Approx(small_norm).epsilon(1e-15));
    CHECK(small == before);

    std::vector<double> big{3.0, 4.0};
    CHECK(clip_grad_norm(ctx, big.data(), 2, 1.0) == Approx(5.0).epsilon(1e-15));
    double const coef = 1.0 / (5.0 + 1e-6);
    CHECK(big[0] == Approx(3.0 * coef).epsilon(1e-15));
    CHECK(big[1] == Approx(4.0 * coef).epsilon(1e-15));

    std::vector<float> big_f{3.0f, 4.0f};
    CHECK(clip_grad_norm(ctx, big_f.data(), 2, 2.0) == Approx(5.0).epsilon(1e-7));
    CHECK(big_f[1] == Approx(4.0 * 2.0 / (5.0 + 1e-6)).epsilon(1e-6));
}

TEST_CASE("clip_grad_norm: non-finite norms are returned and grads left alone; bad arguments throw", "[optim]") {
    cpu::Context ctx;
    std::vector<double> with_inf{1.0, std::numeric_limits<double>::infinity(), 2.0};
    auto const inf_before = with_inf;
    CHECK(std::isinf(clip_grad_norm(ctx, with_inf.data(), 3, 1.0)));
    CHECK(with_inf == inf_before);

    std::vector<double> with_nan{1.0, std::nan(""), 2.0};
    CHECK(std::isnan(clip_grad_norm(ctx, with_nan.data(), 3, 1.0)));
    CHECK(with_nan[0] == 1.0);
    CHECK(with_nan[2] == 2.0);

    std::vector<double> g{1.0, 2.0};
    CHECK(clip_grad_norm(ctx, g.data(), 0, 1.0) == 0.0);
    CHECK_THROWS_AS(clip_grad_norm(ctx, g.data(), 2, 0.0), Error);
    CHECK_THROWS_AS(clip_grad_norm(ctx, g.data(), 2, -1.0), Error);
    CHECK_THROWS_AS(clip_grad_norm(ctx, g.data(), -2, 1.0), Error);
}

TEST_CASE("schedules follow their formulas", "[optim]") {
    double const lr = 1e-3;
    Schedule const constant{ScheduleKind::Constant, lr, 0, 50};
    CHECK(constant.lr_at(0) == lr);
    CHECK(constant.lr_at(49) == lr);

    Schedule const warm_constant{ScheduleKind::Constant, lr, 10, 50};
    CHECK(warm_constant.lr_at(0) == 0.0);
    CHECK(warm_constant.lr_at(5) == Approx(lr * 0.5).epsilon(1e-15));
    CHECK(warm_constant.lr_at(10) == lr);

    Schedule const linear{ScheduleKind::Linear, lr, 10, 110};
    CHECK(linear.lr_at(4) == Approx(lr * 0.4).epsilon(1e-15));
    CHECK(linear.lr_at(10) == lr);
    CHECK(linear.lr_at(60) == Approx(lr * 0.5).epsilon(1e-15));
    CHECK(linear.lr_at(110) == 0.0);
    CHECK(linear.lr_at(500) == 0.0);

    Schedule const cosine{ScheduleKind::Cosine, lr, 10, 110};
    CHECK(cosine.lr_at(10) == lr);
    CHECK(cosine.lr_at(60) == Approx(lr * 0.5).epsilon(1e-14));
    CHECK(cosine.lr_at(35) == Approx(lr * 0.5 * (1 + std::cos(std::acos(-1.0) * 0.25))).epsilon(1e-14));
    CHECK(cosine.lr_at(110) == Approx(0.0).margin(1e-20));

    Schedule const no_warmup_linear{ScheduleKind::Linear, lr, 0, 4};
    CHECK(no_warmup_linear.lr_at(0) == lr);
    CHECK(no_warmup_linear.lr_at(3) == Approx(lr * 0.25).epsilon(1e-15));

    CHECK(Schedule::warmup_from_ratio(0.0, 100) == 0);
    CHECK(Schedule::warmup_from_ratio(0.02, 120) == 3);  // ceil(2.4)
}

TEST_CASE("schedules reject bad configuration with a sentence", "[optim]") {
    CHECK_THROWS_WITH((Schedule{ScheduleKind::Linear, 1e-3, 0, 0}.lr_at(0)), Catch::Contains("training steps"));
    CHECK_THROWS_WITH((Schedule{ScheduleKind::Cosine, 1e-3, 20, 10}.lr_at(0)), Catch::Contains("longer than"));
    CHECK_THROWS_WITH((Schedule{ScheduleKind::Constant, -1e-3, 0, 10}.lr_at(0)), Catch::Contains("Learning rate"));
    CHECK_THROWS_AS((Schedule{ScheduleKind::Constant, std::nan(""), 0, 10}.lr_at(0)), Error);
    CHECK_THROWS_AS((Schedule{ScheduleKind::Linear, 1e-3, -1, 10}.lr_at(0)), Error);
    CHECK_THROWS_AS((Schedule{ScheduleKind::Linear, 1e-3, 0, 10}.lr_at(-1)), Error);
    CHECK_THROWS_AS(Schedule::warmup_from_ratio(-0.1, 100), Error);
    CHECK_THROWS_AS(Schedule::warmup_from_ratio(1.0, 100), Error);
    CHECK_THROWS_AS(Schedule::warmup_from_ratio(0.1, 0), Error);
    CHECK_NOTHROW((Schedule{ScheduleKind::Linear, 0.0, 10, 10}.lr_at(0)));
}
