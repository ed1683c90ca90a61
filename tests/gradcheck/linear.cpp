/// @file tests/gradcheck/linear.cpp
/// @brief fp64 gradient check of linear_backward (dx, dw, dbias) against central differences of sum(w * y).
#include "polyalpaca/backend/cpu/linear.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {
constexpr double tolerance = 1e-8;  // max scaled error
}

TEST_CASE("linear: gradients of x, weight and bias match central differences", "[gradcheck][linear]") {
    cpu::Context ctx;
    Index const n = 5;
    Index const in_features = 6;
    Index const out_features = 4;
    auto x = random_matrix<double>(n, in_features, 21);
    auto w = random_matrix<double>(out_features, in_features, 22);
    auto bias = random_matrix<double>(1, out_features, 23);
    auto weights = random_matrix<double>(n, out_features, 24);

    auto loss = [&] {
        Matrix<double> y(n, out_features);
        cpu::linear_forward(ctx, view<double>(x), view<double>(w), bias.data(), view<double>(y));
        return weighted_sum<double>(y, weights);
    };
    Matrix<double> dx = Matrix<double>::Zero(n, in_features);
    Matrix<double> dw = Matrix<double>::Zero(out_features, in_features);
    Matrix<double> dbias = Matrix<double>::Zero(1, out_features);
    cpu::linear_backward(ctx, view<double>(x), view<double>(w), view<double>(weights), view<double>(dx),
                         view<double>(dw), dbias.data());

    check_gradient("dx", span_of(dx), loss, span_of(x), tolerance);
    check_gradient("dw", span_of(dw), loss, span_of(w), tolerance);
    check_gradient("dbias", span_of(dbias), loss, span_of(bias), tolerance);
}

TEST_CASE("linear: gradients without bias and with accumulate match central differences", "[gradcheck][linear]") {
    cpu::Context ctx;
    Index const n = 3;
    Index const in_features = 4;
    Index const out_features = 5;
    auto x = random_matrix<double>(n, in_features, 25);
    auto w = random_matrix<double>(out_features, in_features, 26);
    auto base = random_matrix<double>(n, out_features, 27);
    auto weights = random_matrix<double>(n, out_features, 28);

    auto loss = [&] {
        Matrix<double> y = base;  // y = base + x W^T
        cpu::linear_forward(ctx, view<double>(x), view<double>(w), nullptr, view<double>(y), true);
        return weighted_sum<double>(y, weights);
    };
    Matrix<double> dx = Matrix<double>::Zero(n, in_features);
    Matrix<double> dw = Matrix<double>::Zero(out_features, in_features);
    cpu::linear_backward(ctx, view<double>(x), view<double>(w), view<double>(weights), view<double>(dx),
                         view<double>(dw), nullptr);

    check_gradient("dx", span_of(dx), loss, span_of(x), tolerance);
    check_gradient("dw", span_of(dw), loss, span_of(w), tolerance);
}
