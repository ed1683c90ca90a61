/// @file tests/gradcheck/rope.cpp
/// @brief rope_backward against central differences of rope_forward in fp64 (scaled error <= 1e-6).
#include <catch2/catch.hpp>

#include "polyalpaca/backend/cpu/rope.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {

/// A view of a test matrix (core's view() cannot deduce T through the Matrix alias).
template <class S>
View<S> as_view(Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>& m) {
    return {m.data(), m.rows(), m.cols()};
}
template <class S>
View<S const> as_view(Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> const& m) {
    return {m.data(), m.rows(), m.cols()};
}

}  // namespace

TEST_CASE("rope gradient matches finite differences", "[rope][gradcheck]") {
    cpu::Context ctx;
    int const seq = 5;
    int const batch = 2;
    for (RopeStyle style : {RopeStyle::RotateHalf, RopeStyle::AdjacentPairs}) {
        for (int rotary_dim : {4, 8}) {
            RopeSpec const spec{2, 8, rotary_dim, 10000.0, style};
            int const offset = 3;
            Matrix<double> x = random_matrix<double>(batch * seq, 16, 21);
            Matrix<double> const w = random_matrix<double>(batch * seq, 16, 22);
            auto loss = [&] {
                Matrix<double> y = x;
                cpu::rope_forward(ctx, as_view(y), seq, offset, spec);
                return weighted_sum<double>(y, w);
            };
            Matrix<double> dx = w;  // d loss / d y
            cpu::rope_backward(ctx, as_view(dx), seq, offset, spec);
            INFO("style " << int(style) << ", rotary_dim " << rotary_dim);
            check_gradient("dx", span_of(dx), loss, span_of(x), 1e-6);
        }
    }
}
