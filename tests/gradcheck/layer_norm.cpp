/// @file tests/gradcheck/layer_norm.cpp
/// @brief fp64 gradient check of layer_norm_backward (dx, dgamma, dbeta) against central differences of sum(w * y).
#include "polyalpaca/backend/cpu/norm.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {
constexpr double tolerance = 1e-8;  // max scaled error
}

TEST_CASE("layer_norm: gradients of x, gamma and beta match central differences", "[gradcheck][layer_norm]") {
    cpu::Context ctx;
    Index const n = 4;
    Index const dim = 7;
    double const eps = 1e-5;
    Matrix<double> x = random_matrix<double>(n, dim, 31, 2.0);
    x.array() += 0.7;  // rows with a nonzero mean
    Matrix<double> gamma = random_matrix<double>(1, dim, 32);
    gamma.array() += 1.0;
    auto beta = random_matrix<double>(1, dim, 33);
    auto weights = random_matrix<double>(n, dim, 34);

    auto loss = [&] {
        Matrix<double> y(n, dim);
        cpu::layer_norm_forward(ctx, view<double>(x), gamma.data(), beta.data(), eps, view<double>(y), nullptr,
                                nullptr);
        return weighted_sum<double>(y, weights);
    };
    Matrix<double> y(n, dim);
    Matrix<double> mean(n, 1);
    Matrix<double> rstd(n, 1);
    cpu::layer_norm_forward(ctx, view<double>(x), gamma.data(), beta.data(), eps, view<double>(y), mean.data(),
                            rstd.data());

    Matrix<double> dx = Matrix<double>::Zero(n, dim);
    Matrix<double> dgamma = Matrix<double>::Zero(1, dim);
    Matrix<double> dbeta = Matrix<double>::Zero(1, dim);
    cpu::layer_norm_backward(ctx, view<double>(weights), view<double>(x), gamma.data(), mean.data(), rstd.data(),
                             view<double>(dx), dgamma.data(), dbeta.data());

    check_gradient("dx", span_of(dx), loss, span_of(x), tolerance);
    check_gradient("dgamma", span_of(dgamma), loss, span_of(gamma), tolerance);
    check_gradient("dbeta", span_of(dbeta), loss, span_of(beta), tolerance);
}
