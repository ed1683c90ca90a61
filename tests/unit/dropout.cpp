/// @file tests/unit/dropout.cpp
/// @brief dropout_forward/backward: mask statistics, reproducibility, fp32 agreement, accumulation, bad input.
#include <cmath>
#include <limits>

#include "polyalpaca/backend/cpu/dropout.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {

struct Dropped {
    Matrix<double> y, mask;
};

Dropped run_dropout(Matrix<double> const& x, double p, std::uint64_t seed) {
    cpu::Context ctx;
    Rng rng(seed);
    Dropped d{Matrix<double>(x.rows(), x.cols()), Matrix<double>(x.rows(), x.cols())};
    cpu::dropout_forward(ctx, view<double>(x), view<double>(d.y), view<double>(d.mask), p, rng);
    return d;
}

}  // namespace

TEST_CASE("dropout mask holds 0 or 1/(1-p), has mean ~1 and a fraction ~p of zeros", "[unit][dropout]") {
    double const p = GENERATE(0.1, 0.5, 0.9);
    Index const rows = 400;
    Index const cols = 500;
    auto x = random_matrix<double>(rows, cols, 1);
    Dropped const d = run_dropout(x, p, 2);
    double const keep = 1 / (1 - p);
    INFO("p = " << p);
    REQUIRE(((d.mask.array() == 0.0) || (d.mask.array() == keep)).all());
    // Five standard deviations of each statistic over n independent draws.
    double const n = double(rows * cols);
    double const zero_fraction = (d.mask.array() == 0.0).cast<double>().mean();
    CHECK(std::abs(zero_fraction - p) <= 5 * std::sqrt(p * (1 - p) / n));
    CHECK(std::abs(d.mask.mean() - 1.0) <= 5 * std::sqrt(p / (1 - p) / n));
    Matrix<double> const expected_y = x.cwiseProduct(d.mask);
    CHECK(d.y == expected_y);
}

TEST_CASE("dropout: the same seed gives the same mask, another seed another one", "[unit][dropout]") {
    auto x = random_matrix<double>(30, 40, 3);
    Dropped const a = run_dropout(x, 0.3, 7);
    Dropped const b = run_dropout(x, 0.3, 7);
    Dropped const c = run_dropout(x, 0.3, 8);
    CHECK(a.mask == b.mask);
    CHECK(a.y == b.y);
    CHECK(a.mask != c.mask);
}

TEST_CASE("dropout with p = 0 copies x, fills the mask with 1 and leaves the rng alone", "[unit][dropout]") {
    cpu::Context ctx;
    auto x = random_matrix<double>(5, 6, 4);
    Matrix<double> y(5, 6);
    Matrix<double> mask = Matrix<double>::Zero(5, 6);
    Rng rng(9);
    Rng::State const before = rng.state();
    cpu::dropout_forward(ctx, view<double>(x), view<double>(y), view<double>(mask), 0.0, rng);
    CHECK(y == x);
    CHECK((mask.array() == 1.0).all());
    CHECK(rng.state() == before);
}

TEST_CASE("dropout fp32 agrees with fp64: same mask, values within 1e-7 scaled", "[unit][dropout]") {
    cpu::Context ctx;
    Matrix<double> const x = random_matrix<double>(20, 30, 5).cast<float>().cast<double>();
    Matrix<double> const dy = random_matrix<double>(20, 30, 6).cast<float>().cast<double>();
    double const p = 0.25;  // exact in float, so both precisions compare the draws with the same threshold
    Dropped const d = run_dropout(x, p, 10);
    Matrix<double> dx = Matrix<double>::Zero(20, 30);
    cpu::dropout_backward(ctx, view<double>(dy), view<double>(d.mask), view<double>(dx));

    Matrix<float> const x_f = x.cast<float>();
    Matrix<float> const dy_f = dy.cast<float>();
    Matrix<float> y_f(20, 30), mask_f(20, 30);
    Matrix<float> dx_f = Matrix<float>::Zero(20, 30);
    Rng rng(10);
    cpu::dropout_forward(ctx, view<float>(x_f), view<float>(y_f), view<float>(mask_f), float(p), rng);
    cpu::dropout_backward(ctx, view<float>(dy_f), view<float>(mask_f), view<float>(dx_f));

    Matrix<double> const mask_fd = mask_f.cast<double>(), y_fd = y_f.cast<double>(), dx_fd = dx_f.cast<double>();
    CHECK(((mask_fd.array() == 0.0) == (d.mask.array() == 0.0)).all());
    CHECK(max_scaled_error(span_of(y_fd), span_of(d.y)) <= 1e-7);
    CHECK(max_scaled_error(span_of(dx_fd), span_of(dx)) <= 1e-7);
}

TEST_CASE("dropout_backward adds dy * mask on every call and skips a null dx", "[unit][dropout]") {
    cpu::Context ctx;
    auto x = random_matrix<double>(6, 7, 11);
    auto dy = random_matrix<double>(6, 7, 12);
    Dropped const d = run_dropout(x, 0.4, 13);
    Matrix<double> const once = dy.cwiseProduct(d.mask);
    Matrix<double> dx = Matrix<double>::Zero(6, 7);
    cpu::dropout_backward(ctx, view<double>(dy), view<double>(d.mask), view<double>(dx));
    CHECK(dx == once);
    cpu::dropout_backward(ctx, view<double>(dy), view<double>(d.mask), view<double>(dx));
    CHECK((dx - 2 * once).cwiseAbs().maxCoeff() <= 1e-14);  // not bit-exact: the add may fuse with the product
    REQUIRE_NOTHROW(cpu::dropout_backward(ctx, view<double>(dy), view<double>(d.mask), View<double>{}));
}

TEST_CASE("dropout rejects p outside [0, 1), wrong shapes and empty input", "[unit][dropout]") {
    cpu::Context ctx;
    auto x = random_matrix<double>(3, 4, 14);
    Matrix<double> y(3, 4), mask(3, 4);
    Rng rng(15);
    auto forward = [&](double p, Matrix<double> const& xx, Matrix<double>& yy, Matrix<double>& mm) {
        cpu::dropout_forward(ctx, view<double>(xx), view<double>(yy), view<double>(mm), p, rng);
    };
    REQUIRE_THROWS_AS(forward(1.0, x, y, mask), Error);
    REQUIRE_THROWS_WITH(forward(1.0, x, y, mask), Catch::Contains("p must be in [0, 1), got 1"));
    REQUIRE_THROWS_WITH(forward(-0.1, x, y, mask), Catch::Contains("p must be in [0, 1)"));
    REQUIRE_THROWS_AS(forward(std::numeric_limits<double>::quiet_NaN(), x, y, mask), Error);
    Matrix<double> y_wrong(3, 5);
    REQUIRE_THROWS_AS(forward(0.5, x, y_wrong, mask), Error);
    REQUIRE_THROWS_WITH(forward(0.5, x, y_wrong, mask), Catch::Contains("dropout_forward: y"));
    Matrix<double> mask_wrong(4, 4);
    REQUIRE_THROWS_WITH(forward(0.5, x, y, mask_wrong), Catch::Contains("dropout_forward: mask"));
    Matrix<double> empty(0, 4), empty_y(0, 4), empty_mask(0, 4);
    REQUIRE_THROWS_AS(forward(0.5, empty, empty_y, empty_mask), Error);
    REQUIRE_THROWS_WITH(forward(0.5, empty, empty_y, empty_mask), Catch::Contains("x is empty"));

    Matrix<double> dx = Matrix<double>::Zero(3, 4);
    REQUIRE_THROWS_AS(cpu::dropout_backward(ctx, view<double>(x), view<double>(mask_wrong), view<double>(dx)), Error);
    REQUIRE_THROWS_WITH(cpu::dropout_backward(ctx, view<double>(x), view<double>(mask_wrong), view<double>(dx)),
                        Catch::Contains("dropout_backward: mask"));
    REQUIRE_THROWS_WITH(cpu::dropout_backward(ctx, view<double>(x), view<double>(mask), view<double>(y_wrong)),
                        Catch::Contains("dropout_backward: dx"));
}
