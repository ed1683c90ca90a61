/// @file tests/unit/linear.cpp
/// @brief linear_forward/backward: naive-loop values, fp32 agreement, accumulation, skipped outputs, bad input.
#include "polyalpaca/backend/cpu/linear.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {

struct Reference {
    Matrix<double> y, dx, dw, dbias;
};

/// y = x W^T + b and its gradients for upstream dy, as triple loops.
Reference reference_linear(Matrix<double> const& x, Matrix<double> const& w, Matrix<double> const& bias,
                           Matrix<double> const& dy) {
    Index const n = x.rows();
    Index const in_features = x.cols();
    Index const out_features = w.rows();
    Reference ref{Matrix<double>::Zero(n, out_features), Matrix<double>::Zero(n, in_features),
                  Matrix<double>::Zero(out_features, in_features), Matrix<double>::Zero(1, out_features)};
    for (Index i = 0; i < n; ++i)
        for (Index o = 0; o < out_features; ++o) {
            double acc = bias(0, o);
            for (Index k = 0; k < in_features; ++k) acc += x(i, k) * w(o, k);
            ref.y(i, o) = acc;
        }
    for (Index i = 0; i < n; ++i)
        for (Index k = 0; k < in_features; ++k)
            for (Index o = 0; o < out_features; ++o) ref.dx(i, k) += dy(i, o) * w(o, k);
    for (Index o = 0; o < out_features; ++o)
        for (Index k = 0; k < in_features; ++k)
            for (Index i = 0; i < n; ++i) ref.dw(o, k) += dy(i, o) * x(i, k);
    for (Index o = 0; o < out_features; ++o)
        for (Index i = 0; i < n; ++i) ref.dbias(0, o) += dy(i, o);
    return ref;
}

double max_abs(Matrix<double> const& a) { return a.cwiseAbs().maxCoeff(); }

}  // namespace

TEST_CASE("linear_forward computes x W^T + b, with and without bias", "[unit][linear]") {
    cpu::Context ctx;
    auto x = random_matrix<double>(5, 7, 1);
    auto w = random_matrix<double>(3, 7, 2);
    auto bias = random_matrix<double>(1, 3, 3);
    auto dy = random_matrix<double>(5, 3, 4);
    Reference const ref = reference_linear(x, w, bias, dy);

    Matrix<double> y = Matrix<double>::Constant(5, 3, 99.0);  // overwritten, not added to
    cpu::linear_forward(ctx, view<double>(x), view<double>(w), bias.data(), view<double>(y));
    CHECK(max_abs(y - ref.y) <= 1e-13);

    Matrix<double> y_no_bias = Matrix<double>::Constant(5, 3, 99.0);
    cpu::linear_forward(ctx, view<double>(x), view<double>(w), nullptr, view<double>(y_no_bias));
    CHECK(max_abs(y_no_bias - (ref.y.rowwise() - bias.row(0))) <= 1e-13);
}

TEST_CASE("linear_forward with accumulate adds x W^T + b to y", "[unit][linear]") {
    cpu::Context ctx;
    auto x = random_matrix<double>(4, 6, 5);
    auto w = random_matrix<double>(2, 6, 6);
    auto bias = random_matrix<double>(1, 2, 7);
    auto base = random_matrix<double>(4, 2, 8);
    Reference const ref = reference_linear(x, w, bias, Matrix<double>::Zero(4, 2));
    Matrix<double> y = base;
    cpu::linear_forward(ctx, view<double>(x), view<double>(w), bias.data(), view<double>(y), true);
    CHECK(max_abs(y - (base + ref.y)) <= 1e-13);
}

TEST_CASE("linear_backward matches naive loops and adds on every call", "[unit][linear]") {
    cpu::Context ctx;
    auto x = random_matrix<double>(6, 5, 9);
    auto w = random_matrix<double>(4, 5, 10);
    auto bias = random_matrix<double>(1, 4, 11);
    auto dy = random_matrix<double>(6, 4, 12);
    Reference const ref = reference_linear(x, w, bias, dy);

    Matrix<double> dx = Matrix<double>::Zero(6, 5);
    Matrix<double> dw = Matrix<double>::Zero(4, 5);
    Matrix<double> dbias = Matrix<double>::Zero(1, 4);
    auto backward = [&] {
        cpu::linear_backward(ctx, view<double>(x), view<double>(w), view<double>(dy), view<double>(dx),
                             view<double>(dw), dbias.data());
    };
    backward();
    CHECK(max_abs(dx - ref.dx) <= 1e-13);
    CHECK(max_abs(dw - ref.dw) <= 1e-13);
    CHECK(max_abs(dbias - ref.dbias) <= 1e-13);
    backward();
    CHECK(max_abs(dx - 2 * ref.dx) <= 1e-13);
    CHECK(max_abs(dw - 2 * ref.dw) <= 1e-13);
    CHECK(max_abs(dbias - 2 * ref.dbias) <= 1e-13);
}

TEST_CASE("linear_backward skips each gradient output that is null", "[unit][linear]") {
    cpu::Context ctx;
    auto x = random_matrix<double>(3, 4, 13);
    auto w = random_matrix<double>(2, 4, 14);
    auto dy = random_matrix<double>(3, 2, 15);
    Reference const ref = reference_linear(x, w, Matrix<double>::Zero(1, 2), dy);
    Matrix<double> dx = Matrix<double>::Zero(3, 4);
    Matrix<double> dw = Matrix<double>::Zero(2, 4);
    Matrix<double> dbias = Matrix<double>::Zero(1, 2);

    SECTION("frozen weight: only dx") {
        cpu::linear_backward(ctx, view<double>(x), view<double>(w), view<double>(dy), view<double>(dx), View<double>{},
                             nullptr);
        CHECK(max_abs(dx - ref.dx) <= 1e-13);
    }
    SECTION("first layer: no dx") {
        cpu::linear_backward(ctx, view<double>(x), view<double>(w), view<double>(dy), View<double>{}, view<double>(dw),
                             dbias.data());
        CHECK(max_abs(dw - ref.dw) <= 1e-13);
        CHECK(max_abs(dbias - ref.dbias) <= 1e-13);
    }
    SECTION("bias only") {
        cpu::linear_backward<double>(ctx, view<double>(x), view<double>(w), view<double>(dy), {}, {}, dbias.data());
        CHECK(max_abs(dbias - ref.dbias) <= 1e-13);
    }
}

TEST_CASE("linear fp32 agrees with fp64 (tolerance 5e-6 scaled, In = 96)", "[unit][linear]") {
    cpu::Context ctx;
    Index const n = 16;
    Index const in_features = 96;
    Index const out_features = 24;
    auto x = random_matrix<double>(n, in_features, 16);
    auto w = random_matrix<double>(out_features, in_features, 17, 0.2);
    auto bias = random_matrix<double>(1, out_features, 18);
    auto dy = random_matrix<double>(n, out_features, 19);
    Matrix<double> y(n, out_features);
    Matrix<double> dx = Matrix<double>::Zero(n, in_features);
    Matrix<double> dw = Matrix<double>::Zero(out_features, in_features);
    Matrix<double> dbias = Matrix<double>::Zero(1, out_features);
    cpu::linear_forward(ctx, view<double>(x), view<double>(w), bias.data(), view<double>(y));
    cpu::linear_backward(ctx, view<double>(x), view<double>(w), view<double>(dy), view<double>(dx), view<double>(dw),
                         dbias.data());

    Matrix<float> x_f = x.cast<float>();
    Matrix<float> w_f = w.cast<float>();
    Matrix<float> bias_f = bias.cast<float>();
    Matrix<float> dy_f = dy.cast<float>();
    Matrix<float> y_f(n, out_features);
    Matrix<float> dx_f = Matrix<float>::Zero(n, in_features);
    Matrix<float> dw_f = Matrix<float>::Zero(out_features, in_features);
    Matrix<float> dbias_f = Matrix<float>::Zero(1, out_features);
    cpu::linear_forward(ctx, view<float>(x_f), view<float>(w_f), bias_f.data(), view<float>(y_f));
    cpu::linear_backward(ctx, view<float>(x_f), view<float>(w_f), view<float>(dy_f), view<float>(dx_f),
                         view<float>(dw_f), dbias_f.data());

    auto scaled = [](Matrix<float> const& f, Matrix<double> const& d) {
        Matrix<double> const fd = f.cast<double>();
        return max_scaled_error(span_of(fd), span_of(d));
    };
    CHECK(scaled(y_f, y) <= 5e-6);
    CHECK(scaled(dx_f, dx) <= 5e-6);
    CHECK(scaled(dw_f, dw) <= 5e-6);
    CHECK(scaled(dbias_f, dbias) <= 5e-6);
}

TEST_CASE("linear rejects wrong shapes and empty input with a message naming the argument", "[unit][linear]") {
    cpu::Context ctx;
    auto x = random_matrix<double>(3, 4, 20);
    auto w = random_matrix<double>(2, 4, 21);
    auto dy = random_matrix<double>(3, 2, 22);
    Matrix<double> y(3, 2);

    auto forward = [&](Matrix<double> const& xx, Matrix<double> const& ww, Matrix<double>& yy) {
        cpu::linear_forward(ctx, view<double>(xx), view<double>(ww), nullptr, view<double>(yy));
    };
    auto w_wrong_in = random_matrix<double>(2, 5, 23);
    REQUIRE_THROWS_AS(forward(x, w_wrong_in, y), Error);
    REQUIRE_THROWS_WITH(forward(x, w_wrong_in, y), Catch::Contains("linear_forward: w"));
    Matrix<double> y_wrong(3, 3);
    REQUIRE_THROWS_AS(forward(x, w, y_wrong), Error);
    REQUIRE_THROWS_WITH(forward(x, w, y_wrong), Catch::Contains("linear_forward: y"));
    Matrix<double> x_empty(0, 4);
    Matrix<double> y_empty(0, 2);
    REQUIRE_THROWS_AS(forward(x_empty, w, y_empty), Error);
    REQUIRE_THROWS_WITH(forward(x_empty, w, y_empty), Catch::Contains("x is empty"));

    auto backward = [&](Matrix<double> const& ddy, Matrix<double>& dx, Matrix<double>& dw) {
        cpu::linear_backward(ctx, view<double>(x), view<double>(w), view<double>(ddy), view<double>(dx),
                             view<double>(dw), nullptr);
    };
    Matrix<double> dx = Matrix<double>::Zero(3, 4);
    Matrix<double> dw = Matrix<double>::Zero(2, 4);
    auto dy_wrong = random_matrix<double>(3, 3, 24);
    REQUIRE_THROWS_AS(backward(dy_wrong, dx, dw), Error);
    REQUIRE_THROWS_WITH(backward(dy_wrong, dx, dw), Catch::Contains("linear_backward: dy"));
    Matrix<double> dx_wrong = Matrix<double>::Zero(4, 3);
    REQUIRE_THROWS_AS(backward(dy, dx_wrong, dw), Error);
    REQUIRE_THROWS_WITH(backward(dy, dx_wrong, dw), Catch::Contains("linear_backward: dx"));
    Matrix<double> dw_wrong = Matrix<double>::Zero(4, 2);
    REQUIRE_THROWS_AS(backward(dy, dx, dw_wrong), Error);
    REQUIRE_THROWS_WITH(backward(dy, dx, dw_wrong), Catch::Contains("linear_backward: dw"));
}
