/// @file tests/unit/cross_entropy.cpp
/// @brief cross_entropy: values against a naive loop and log V, ignore index, written gradient, fp32, the float exps of
///        GemmMath::Bf16, bad input.
#include <cmath>
#include <cstdint>
#include <vector>

#include "polyalpaca/backend/cpu/loss.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {

constexpr int ignore_index = -100;

struct Reference {
    double sum = 0;
    Index count = 0;
    Matrix<double> dlogits;
};

/// Plain softmax without the max shift (fine for the moderate logits used here), one row at a time.
Reference reference_cross_entropy(Matrix<double> const& logits, std::vector<std::int32_t> const& targets,
                                  double grad_scale) {
    Reference ref{0, 0, Matrix<double>::Zero(logits.rows(), logits.cols())};
    for (Index r = 0; r < logits.rows(); ++r) {
        int const t = targets[std::size_t(r)];
        if (t == ignore_index) continue;
        double z = 0;
        for (Index j = 0; j < logits.cols(); ++j) z += std::exp(logits(r, j));
        ref.sum += -std::log(std::exp(logits(r, t)) / z);
        ref.count += 1;
        for (Index j = 0; j < logits.cols(); ++j)
            ref.dlogits(r, j) = grad_scale * (std::exp(logits(r, j)) / z - (j == t ? 1.0 : 0.0));
    }
    return ref;
}

std::vector<std::int32_t> random_targets(Index n, Index vocab, std::uint64_t seed, double ignored_fraction) {
    Rng rng(seed);
    std::vector<std::int32_t> targets(static_cast<std::size_t>(n));
    for (auto& t : targets)
        t = rng.uniform() < ignored_fraction ? ignore_index : std::int32_t(rng.below(std::uint64_t(vocab)));
    return targets;
}

double max_abs(Matrix<double> const& a) { return a.cwiseAbs().maxCoeff(); }

}  // namespace

TEST_CASE("cross_entropy of uniform logits is log V per counted row", "[unit][loss]") {
    cpu::Context ctx;
    Index const vocab = 10;
    Matrix<double> const logits = Matrix<double>::Constant(4, vocab, 3.7);
    std::vector<std::int32_t> const targets = {0, 9, ignore_index, 4};
    Matrix<double> dlogits(4, vocab);
    LossSum const loss =
        cpu::cross_entropy(ctx, view<double>(logits), targets, ignore_index, view<double>(dlogits), 1.0);
    CHECK(loss.count == 3);
    CHECK(loss.sum == Approx(3 * std::log(10.0)).epsilon(1e-14));
    CHECK(dlogits(0, 1) == Approx(0.1).epsilon(1e-14));
    CHECK(dlogits(0, 0) == Approx(-0.9).epsilon(1e-14));
    CHECK(dlogits.row(2).isZero(0.0));
}

TEST_CASE("cross_entropy matches a naive loop, small and threaded sizes", "[unit][loss]") {
    cpu::Context ctx;
    Index const n = GENERATE(Index(7), Index(64));
    Index const vocab = n == 7 ? 11 : 1024;  // 64 x 1024 takes the OpenMP path
    auto logits = random_matrix<double>(n, vocab, 1, 2.0);
    auto const targets = random_targets(n, vocab, 2, 0.3);
    double const grad_scale = 0.37;
    Reference const ref = reference_cross_entropy(logits, targets, grad_scale);
    REQUIRE(ref.count > 0);
    REQUIRE(ref.count < n);

    Matrix<double> dlogits = Matrix<double>::Constant(n, vocab, 123.0);  // garbage: must be overwritten
    LossSum const loss =
        cpu::cross_entropy(ctx, view<double>(logits), targets, ignore_index, view<double>(dlogits), grad_scale);
    CHECK(loss.count == ref.count);
    CHECK(loss.sum == Approx(ref.sum).epsilon(1e-13));
    CHECK(max_abs(dlogits - ref.dlogits) <= 1e-14);

    SECTION("writes, not adds: a second call gives the same dlogits") {
        cpu::cross_entropy(ctx, view<double>(logits), targets, ignore_index, view<double>(dlogits), grad_scale);
        CHECK(max_abs(dlogits - ref.dlogits) <= 1e-14);
    }
    SECTION("an empty dlogits computes the loss only") {
        LossSum const loss_only =
            cpu::cross_entropy(ctx, view<double>(logits), targets, ignore_index, View<double>{}, grad_scale);
        CHECK(loss_only.sum == loss.sum);
        CHECK(loss_only.count == loss.count);
    }
    SECTION("dlogits may be the logits buffer itself") {
        Matrix<double> in_place = logits;
        LossSum const loss_in_place =
            cpu::cross_entropy(ctx, view<double>(in_place), targets, ignore_index, view<double>(in_place), grad_scale);
        CHECK(loss_in_place.sum == loss.sum);
        CHECK(max_abs(in_place - ref.dlogits) <= 1e-14);
    }
}

TEST_CASE("cross_entropy is stable for huge logits", "[unit][loss]") {
    cpu::Context ctx;
    Matrix<float> logits(2, 3);
    logits << 1000.f, 0.f, -1000.f, 1000.f, 999.f, 1000.f;
    std::vector<std::int32_t> const targets = {1, 1};
    Matrix<float> dlogits(2, 3);
    LossSum const loss = cpu::cross_entropy(ctx, view<float>(logits), targets, ignore_index, view<float>(dlogits), 1.f);
    // Row 0: -log softmax = 1000 (+ e^-1000, lost); row 1: log(2 + e^-1) + 1 = 1.8619948040582512.
    CHECK(std::isfinite(loss.sum));
    CHECK(loss.sum == Approx(1000.0 + std::log(2 + std::exp(-1.0)) + 1.0).epsilon(1e-12));
    REQUIRE(dlogits.allFinite());
    CHECK(dlogits(0, 0) == Approx(1.f));
    CHECK(dlogits(0, 1) == Approx(-1.f));
}

TEST_CASE("cross_entropy with every target ignored counts nothing and zeroes dlogits", "[unit][loss]") {
    cpu::Context ctx;
    auto logits = random_matrix<double>(3, 5, 3);
    std::vector<std::int32_t> const targets(3, ignore_index);
    Matrix<double> dlogits = Matrix<double>::Constant(3, 5, 1.0);
    LossSum const loss =
        cpu::cross_entropy(ctx, view<double>(logits), targets, ignore_index, view<double>(dlogits), 1.0);
    CHECK(loss.count == 0);
    CHECK(loss.sum == 0.0);
    CHECK(dlogits.isZero(0.0));
}

TEST_CASE("cross_entropy fp32 agrees with fp64 (loss 1e-12 relative, dlogits 1e-8 scaled)", "[unit][loss]") {
    cpu::Context ctx;
    Index const n = 12;
    Index const vocab = 300;
    Matrix<double> const logits = random_matrix<double>(n, vocab, 4, 3.0).cast<float>().cast<double>();
    auto const targets = random_targets(n, vocab, 5, 0.2);
    double const grad_scale = 0.125;  // exact in float
    Matrix<double> dlogits(n, vocab);
    LossSum const loss =
        cpu::cross_entropy(ctx, view<double>(logits), targets, ignore_index, view<double>(dlogits), grad_scale);
    Matrix<float> const logits_f = logits.cast<float>();
    Matrix<float> dlogits_f(n, vocab);
    LossSum const loss_f = cpu::cross_entropy(ctx, view<float>(logits_f), targets, ignore_index, view<float>(dlogits_f),
                                              float(grad_scale));
    CHECK(loss_f.count == loss.count);
    // Both precisions accumulate in double from the same (float-representable) logits; only dlogits is rounded.
    CHECK(loss_f.sum == Approx(loss.sum).epsilon(1e-12));
    Matrix<double> const dlogits_fd = dlogits_f.cast<double>();
    CHECK(max_scaled_error(span_of(dlogits_fd), span_of(dlogits)) <= 1e-8);
}

TEST_CASE("cross_entropy in GemmMath::Bf16 takes exps in float, within float's rounding of fp64", "[unit][loss]") {
    if (!cpu::bf16_gemms_runnable()) return;  // the context cannot be set to Bf16 here
    cpu::Context fp64, bf16;
    bf16.set_gemm_math(cpu::GemmMath::Bf16);
    Index const n = 12;
    Index const vocab = 50000;  // each row's sum over many float exps
    Matrix<double> const logits = random_matrix<double>(n, vocab, 6, 3.0).cast<float>().cast<double>();
    auto const targets = random_targets(n, vocab, 7, 0.2);
    double const grad_scale = 0.125;
    Matrix<double> dlogits(n, vocab);
    LossSum const loss =
        cpu::cross_entropy(fp64, view<double>(logits), targets, ignore_index, view<double>(dlogits), grad_scale);
    Matrix<float> const logits_f = logits.cast<float>();
    Matrix<float> dlogits_f(n, vocab);
    LossSum const loss_f = cpu::cross_entropy(bf16, view<float>(logits_f), targets, ignore_index,
                                              view<float>(dlogits_f), float(grad_scale));
    CHECK(loss_f.count == loss.count);
    // exp in float is within a few ulps (2^-24 relative each); the sums stay in double.
    double const loss_error = std::abs(loss_f.sum - loss.sum) / loss.sum;
    INFO("loss relative error " << loss_error);
    CHECK(loss_error <= 1e-6);
    CHECK(loss_error > 0.0);  // the float path did run
    Matrix<double> const dlogits_fd = dlogits_f.cast<double>();
    CHECK(max_scaled_error(span_of(dlogits_fd), span_of(dlogits)) <= 1e-6);
}

TEST_CASE("cross_entropy rejects bad targets, wrong shapes and empty input", "[unit][loss]") {
    cpu::Context ctx;
    auto logits = random_matrix<double>(4, 6, 6);
    Matrix<double> dlogits(4, 6);
    auto run = [&](std::vector<std::int32_t> const& targets, Matrix<double> const& l, View<double> d) {
        return cpu::cross_entropy(ctx, view<double>(l), targets, ignore_index, d, 1.0);
    };
    std::vector<std::int32_t> const too_large = {0, 1, 6, 2};
    REQUIRE_THROWS_AS(run(too_large, logits, view<double>(dlogits)), Error);
    REQUIRE_THROWS_WITH(run(too_large, logits, view<double>(dlogits)), Catch::Contains("target 6 at row 2"));
    std::vector<std::int32_t> const negative = {-1, 1, 2, 3};  // negative but not the ignore index
    REQUIRE_THROWS_AS(run(negative, logits, View<double>{}), Error);
    REQUIRE_THROWS_WITH(run(negative, logits, View<double>{}), Catch::Contains("target -1 at row 0"));
    std::vector<std::int32_t> const too_few = {0, 1, 2};
    REQUIRE_THROWS_AS(run(too_few, logits, view<double>(dlogits)), Error);
    REQUIRE_THROWS_WITH(run(too_few, logits, view<double>(dlogits)), Catch::Contains("targets has 3 entries"));
    std::vector<std::int32_t> const ok = {0, 1, 2, 3};
    Matrix<double> dlogits_wrong(4, 5);
    REQUIRE_THROWS_AS(run(ok, logits, view<double>(dlogits_wrong)), Error);
    REQUIRE_THROWS_WITH(run(ok, logits, view<double>(dlogits_wrong)), Catch::Contains("cross_entropy: dlogits"));
    Matrix<double> empty(0, 6);
    std::vector<std::int32_t> const none;
    REQUIRE_THROWS_AS(run(none, empty, View<double>{}), Error);
    REQUIRE_THROWS_WITH(run(none, empty, View<double>{}), Catch::Contains("logits is empty"));
}
