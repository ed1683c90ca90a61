/// @file tests/gradcheck/rms_norm.cpp
/// @brief fp64 gradient check of rms_norm_backward (dx, dgamma) against central differences of sum(w * y).
#include "polyalpaca/backend/cpu/norm.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {
constexpr double tolerance = 1e-8;  // max scaled error
}

TEST_CASE("rms_norm: gradients of x and gamma match central differences", "[gradcheck][rms_norm]") {
    cpu::Context ctx;
    Index const n = 4;
    Index const dim = 6;
    double const eps = 1e-6;
    auto x = random_matrix<double>(n, dim, 41, 1.5);
    Matrix<double> gamma = random_matrix<double>(1, dim, 42);
    gamma.array() += 1.0;
    auto weights = random_matrix<double>(n, dim, 43);

    auto loss = [&] {
        Matrix<double> y(n, dim);
        cpu::rms_norm_forward(ctx, view<double>(x), gamma.data(), eps, view<double>(y), nullptr);
        return weighted_sum<double>(y, weights);
    };
    Matrix<double> y(n, dim);
    Matrix<double> rstd(n, 1);
    cpu::rms_norm_forward(ctx, view<double>(x), gamma.data(), eps, view<double>(y), rstd.data());

    Matrix<double> dx = Matrix<double>::Zero(n, dim);
    Matrix<double> dgamma = Matrix<double>::Zero(1, dim);
    cpu::rms_norm_backward(ctx, view<double>(weights), view<double>(x), gamma.data(), rstd.data(), view<double>(dx),
                           dgamma.data());

    check_gradient("dx", span_of(dx), loss, span_of(x), tolerance);
    check_gradient("dgamma", span_of(dgamma), loss, span_of(gamma), tolerance);
}
