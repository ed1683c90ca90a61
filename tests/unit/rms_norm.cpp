/// @file tests/unit/rms_norm.cpp
/// @brief rms_norm_forward/backward: values against a naive loop, fp32 agreement, accumulation, bad input.
#include <cmath>

#include "polyalpaca/backend/cpu/norm.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {

/// y = gamma * x / sqrt(mean(x^2) + eps) per row, in double; rstd into `rstd`.
Matrix<double> reference_rms_norm(Matrix<double> const& x, Matrix<double> const& gamma, double eps,
                                  Matrix<double>& rstd) {
    Matrix<double> y(x.rows(), x.cols());
    rstd.resize(x.rows(), 1);
    for (Index r = 0; r < x.rows(); ++r) {
        double squares = 0;
        for (Index j = 0; j < x.cols(); ++j) squares += x(r, j) * x(r, j);
        rstd(r, 0) = 1.0 / std::sqrt(squares / double(x.cols()) + eps);
        for (Index j = 0; j < x.cols(); ++j) y(r, j) = gamma(0, j) * x(r, j) * rstd(r, 0);
    }
    return y;
}

double max_abs(Matrix<double> const& a) { return a.cwiseAbs().maxCoeff(); }

double scaled(Matrix<float> const& f, Matrix<double> const& d) {
    Matrix<double> const fd = f.cast<double>();
    return max_scaled_error(span_of(fd), span_of(d));
}

Matrix<double> make_gamma(Index dim, std::uint64_t seed) {
    Matrix<double> gamma = random_matrix<double>(1, dim, seed, 0.3);
    gamma.array() += 1.0;
    return gamma;
}

}  // namespace

TEST_CASE("rms_norm_forward of [1, 2, 3, 4] divides by sqrt(7.5)", "[unit][rms_norm]") {
    cpu::Context ctx;
    Matrix<double> x(1, 4);
    x << 1, 2, 3, 4;
    Matrix<double> gamma(1, 4);
    gamma << 1, 1, 2, 0.5;
    Matrix<double> y(1, 4);
    double rstd = 0;
    cpu::rms_norm_forward(ctx, view<double>(x), gamma.data(), 0.0, view<double>(y), &rstd);
    // mean(x^2) = 30 / 4 = 7.5; 1 / sqrt(7.5) = 0.36514837167011072
    CHECK(rstd == Approx(0.36514837167011072).epsilon(1e-15));
    CHECK(y(0, 0) == Approx(0.36514837167011072).epsilon(1e-14));
    CHECK(y(0, 1) == Approx(0.73029674334022144).epsilon(1e-14));
    CHECK(y(0, 2) == Approx(2.1908902300206643).epsilon(1e-14));
    CHECK(y(0, 3) == Approx(0.73029674334022144).epsilon(1e-14));
}

TEST_CASE("rms_norm_forward matches a naive loop, small and threaded sizes", "[unit][rms_norm]") {
    cpu::Context ctx;
    Index const n = GENERATE(Index(5), Index(64));
    Index const dim = n == 5 ? 9 : 1024;  // 64 x 1024 takes the OpenMP path
    double const eps = 1e-6;
    auto x = random_matrix<double>(n, dim, 200 + std::uint64_t(n), 2.0);
    auto gamma = make_gamma(dim, 300);
    Matrix<double> ref_rstd;
    Matrix<double> const ref_y = reference_rms_norm(x, gamma, eps, ref_rstd);
    Matrix<double> y(n, dim);
    Matrix<double> rstd(n, 1);
    cpu::rms_norm_forward(ctx, view<double>(x), gamma.data(), eps, view<double>(y), rstd.data());
    CHECK(max_abs(y - ref_y) <= 1e-12);
    CHECK(max_abs(rstd - ref_rstd) <= 1e-12);
}

TEST_CASE("rms_norm fp32 agrees with fp64 (tolerance 2e-6 scaled)", "[unit][rms_norm]") {
    cpu::Context ctx;
    Index const n = 6;
    Index const dim = 256;
    float const eps = 1e-6f;
    // Inputs rounded to float first, so both precisions see the same values; a large common offset too.
    double const offset = GENERATE(0.0, 1e4);
    Matrix<double> x = random_matrix<double>(n, dim, 7, 2.0);
    x.array() += offset;
    x = x.cast<float>().cast<double>();
    Matrix<double> const gamma = make_gamma(dim, 8).cast<float>().cast<double>();
    Matrix<double> const dy = random_matrix<double>(n, dim, 9).cast<float>().cast<double>();

    Matrix<double> y(n, dim), rstd(n, 1);
    Matrix<double> dx = Matrix<double>::Zero(n, dim), dgamma = Matrix<double>::Zero(1, dim);
    cpu::rms_norm_forward(ctx, view<double>(x), gamma.data(), double(eps), view<double>(y), rstd.data());
    cpu::rms_norm_backward(ctx, view<double>(dy), view<double>(x), gamma.data(), rstd.data(), view<double>(dx),
                           dgamma.data());

    Matrix<float> x_f = x.cast<float>(), gamma_f = gamma.cast<float>(), dy_f = dy.cast<float>();
    Matrix<float> y_f(n, dim), rstd_f(n, 1);
    Matrix<float> dx_f = Matrix<float>::Zero(n, dim), dgamma_f = Matrix<float>::Zero(1, dim);
    cpu::rms_norm_forward(ctx, view<float>(x_f), gamma_f.data(), eps, view<float>(y_f), rstd_f.data());
    cpu::rms_norm_backward(ctx, view<float>(dy_f), view<float>(x_f), gamma_f.data(), rstd_f.data(), view<float>(dx_f),
                           dgamma_f.data());

    INFO("offset " << offset);
    CHECK(scaled(y_f, y) <= 2e-6);
    CHECK(scaled(dx_f, dx) <= 2e-6);
    CHECK(scaled(dgamma_f, dgamma) <= 2e-6);
    // rstd is tiny at offset 1e4, so compare it relatively.
    CHECK(((rstd_f.cast<double>() - rstd).array() / rstd.array()).abs().maxCoeff() <= 2e-6);
}

TEST_CASE("rms_norm_backward adds on every call and skips null outputs", "[unit][rms_norm]") {
    cpu::Context ctx;
    Index const n = 4;
    Index const dim = 8;
    auto x = random_matrix<double>(n, dim, 20);
    auto gamma = make_gamma(dim, 21);
    auto dy = random_matrix<double>(n, dim, 22);
    Matrix<double> y(n, dim), rstd(n, 1);
    cpu::rms_norm_forward(ctx, view<double>(x), gamma.data(), 1e-6, view<double>(y), rstd.data());
    auto backward = [&](View<double> dx, double* dgamma) {
        cpu::rms_norm_backward(ctx, view<double>(dy), view<double>(x), gamma.data(), rstd.data(), dx, dgamma);
    };
    Matrix<double> dx = Matrix<double>::Zero(n, dim), dgamma = Matrix<double>::Zero(1, dim);
    backward(view<double>(dx), dgamma.data());
    Matrix<double> const dx1 = dx, dgamma1 = dgamma;
    REQUIRE(max_abs(dx1) > 0);
    REQUIRE(max_abs(dgamma1) > 0);
    backward(view<double>(dx), dgamma.data());
    CHECK(max_abs(dx - 2 * dx1) <= 1e-14);
    CHECK(max_abs(dgamma - 2 * dgamma1) <= 1e-14);

    Matrix<double> dx_only = Matrix<double>::Zero(n, dim), dgamma_only = Matrix<double>::Zero(1, dim);
    backward(view<double>(dx_only), nullptr);
    backward(View<double>{}, dgamma_only.data());
    CHECK(max_abs(dx_only - dx1) <= 1e-14);
    CHECK(max_abs(dgamma_only - dgamma1) <= 1e-14);
}

TEST_CASE("rms_norm rejects wrong shapes, null parameters and empty input", "[unit][rms_norm]") {
    cpu::Context ctx;
    auto x = random_matrix<double>(3, 4, 30);
    auto gamma = make_gamma(4, 31);
    Matrix<double> rstd(3, 1);
    auto forward = [&](Matrix<double> const& xx, double const* g, Matrix<double>& y) {
        cpu::rms_norm_forward(ctx, view<double>(xx), g, 1e-6, view<double>(y), rstd.data());
    };
    Matrix<double> y(3, 4);
    Matrix<double> y_wrong(4, 4);
    REQUIRE_THROWS_AS(forward(x, gamma.data(), y_wrong), Error);
    REQUIRE_THROWS_WITH(forward(x, gamma.data(), y_wrong), Catch::Contains("rms_norm_forward: y"));
    REQUIRE_THROWS_AS(forward(x, nullptr, y), Error);
    REQUIRE_THROWS_WITH(forward(x, nullptr, y), Catch::Contains("gamma is null"));
    Matrix<double> x_empty(3, 0), y_empty(3, 0);
    REQUIRE_THROWS_AS(forward(x_empty, gamma.data(), y_empty), Error);
    REQUIRE_THROWS_WITH(forward(x_empty, gamma.data(), y_empty), Catch::Contains("x is empty"));

    forward(x, gamma.data(), y);
    auto dy = random_matrix<double>(3, 4, 32);
    auto backward = [&](Matrix<double> const& ddy, double const* rstd_ptr, Matrix<double>& ddx) {
        cpu::rms_norm_backward(ctx, view<double>(ddy), view<double>(x), gamma.data(), rstd_ptr, view<double>(ddx),
                               nullptr);
    };
    Matrix<double> dx = Matrix<double>::Zero(3, 4);
    auto dy_wrong = random_matrix<double>(3, 5, 33);
    REQUIRE_THROWS_AS(backward(dy_wrong, rstd.data(), dx), Error);
    REQUIRE_THROWS_WITH(backward(dy_wrong, rstd.data(), dx), Catch::Contains("rms_norm_backward: dy"));
    Matrix<double> dx_wrong = Matrix<double>::Zero(2, 4);
    REQUIRE_THROWS_AS(backward(dy, rstd.data(), dx_wrong), Error);
    REQUIRE_THROWS_WITH(backward(dy, rstd.data(), dx_wrong), Catch::Contains("rms_norm_backward: dx"));
    REQUIRE_THROWS_AS(backward(dy, nullptr, dx), Error);
    REQUIRE_THROWS_WITH(backward(dy, nullptr, dx), Catch::Contains("rstd is null"));
    CHECK(dx.isZero(0.0));
}
