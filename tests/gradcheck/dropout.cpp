/// @file tests/gradcheck/dropout.cpp
/// @brief fp64 gradient check of dropout_backward: with the mask fixed by the seed, dropout is a linear map of x.
#include "polyalpaca/backend/cpu/dropout.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {
constexpr double tolerance = 1e-8;  // max scaled error; the map is linear, so differences are exact up to rounding
}

TEST_CASE("dropout: gradient with a fixed mask matches central differences", "[gradcheck][dropout]") {
    cpu::Context ctx;
    Index const rows = 6;
    Index const cols = 9;
    double const p = 0.3;
    std::uint64_t const seed = 71;
    auto x = random_matrix<double>(rows, cols, 72);
    auto weights = random_matrix<double>(rows, cols, 73);

    auto loss = [&] {
        Rng rng(seed);  // the same seed redraws the same mask on every evaluation
        Matrix<double> y(rows, cols);
        Matrix<double> mask(rows, cols);
        cpu::dropout_forward(ctx, view<double>(x), view<double>(y), view<double>(mask), p, rng);
        return weighted_sum<double>(y, weights);
    };
    Rng rng(seed);
    Matrix<double> y(rows, cols);
    Matrix<double> mask(rows, cols);
    cpu::dropout_forward(ctx, view<double>(x), view<double>(y), view<double>(mask), p, rng);
    REQUIRE((mask.array() == 0.0).any());  // some entries dropped, so the check covers both cases
    REQUIRE((mask.array() != 0.0).any());

    Matrix<double> dx = Matrix<double>::Zero(rows, cols);
    cpu::dropout_backward(ctx, view<double>(weights), view<double>(mask), view<double>(dx));
    check_gradient("dropout dx", span_of(dx), loss, span_of(x), tolerance);
}
