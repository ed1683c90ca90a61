/// @file tests/unit/activations.cpp
/// @brief GELU (tanh, erf), SiLU, SwiGLU, add, accumulate: values against formulas, fp32 agreement, bad input.
#include <cmath>
#include <limits>
#include <vector>

#include "polyalpaca/backend/cpu/activation.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {

template <class T>
using Forward = void (*)(cpu::Context&, View<T const>, View<T>);
template <class T>
using Backward = void (*)(cpu::Context&, View<T const>, View<T const>, View<T>);

/// One unary activation: the op in both precisions and its formula, evaluated here in double.
struct UnaryOp {
    char const* name;
    Forward<double> forward;
    Backward<double> backward;
    Forward<float> forward_f;
    Backward<float> backward_f;
    double (*formula)(double);
};

double gelu_tanh_formula(double x) { return 0.5 * x * (1 + std::tanh(0.79788456 * x * (1 + 0.044715 * x * x))); }
double gelu_erf_formula(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
double silu_formula(double x) { return x / (1 + std::exp(-x)); }

std::vector<UnaryOp> const unary_ops = {
    {"gelu_tanh", cpu::gelu_tanh_forward<double>, cpu::gelu_tanh_backward<double>, cpu::gelu_tanh_forward<float>,
     cpu::gelu_tanh_backward<float>, gelu_tanh_formula},
    {"gelu_erf", cpu::gelu_erf_forward<double>, cpu::gelu_erf_backward<double>, cpu::gelu_erf_forward<float>,
     cpu::gelu_erf_backward<float>, gelu_erf_formula},
    {"silu", cpu::silu_forward<double>, cpu::silu_backward<double>, cpu::silu_forward<float>, cpu::silu_backward<float>,
     silu_formula},
};

double max_abs(Matrix<double> const& a) { return a.cwiseAbs().maxCoeff(); }

double scaled(Matrix<float> const& f, Matrix<double> const& d) {
    Matrix<double> const fd = f.cast<double>();
    return max_scaled_error(span_of(fd), span_of(d));
}

}  // namespace

TEST_CASE("activations at known points", "[unit][activation]") {
    cpu::Context ctx;
    Matrix<double> x(1, 3);
    x << 1.0, -1.0, -2.0;
    Matrix<double> y(1, 3);
    cpu::gelu_erf_forward(ctx, view<double>(x), view<double>(y));
    CHECK(y(0, 0) == Approx(0.8413447460685429).epsilon(1e-14));    // Phi(1)
    CHECK(y(0, 1) == Approx(-0.15865525393145707).epsilon(1e-14));  // -Phi(-1)
    cpu::silu_forward(ctx, view<double>(x), view<double>(y));
    CHECK(y(0, 0) == Approx(0.7310585786300049).epsilon(1e-14));   // sigmoid(1)
    CHECK(y(0, 2) == Approx(-0.2384058440442351).epsilon(1e-14));  // -2 sigmoid(-2)
    cpu::gelu_tanh_forward(ctx, view<double>(x), view<double>(y));
    CHECK(y(0, 0) == Approx(0.8411919903841787).epsilon(1e-14));
    CHECK(y(0, 2) == Approx(-0.0454023060802099).epsilon(1e-12));
}

TEST_CASE("unary activations match their formula, small and threaded sizes", "[unit][activation]") {
    cpu::Context ctx;
    Index const cols = GENERATE(Index(7), Index(1024));
    Index const rows = cols == 7 ? 3 : 96;  // 96 x 1024 takes the OpenMP path
    auto x = random_matrix<double>(rows, cols, 1, 3.0);
    for (UnaryOp const& op : unary_ops) {
        INFO(op.name << " with " << rows * cols << " elements");
        Matrix<double> y = Matrix<double>::Constant(rows, cols, 5.0);
        op.forward(ctx, view<double>(x), view<double>(y));
        Matrix<double> const expected = x.unaryExpr(op.formula);
        CHECK(max_abs(y - expected) <= 1e-14);
    }
}

TEST_CASE("unary activations: fp32 agrees with fp64 (tolerance 2e-6 scaled)", "[unit][activation]") {
    cpu::Context ctx;
    Matrix<double> const x = random_matrix<double>(8, 64, 2, 3.0).cast<float>().cast<double>();
    Matrix<double> const dy = random_matrix<double>(8, 64, 3).cast<float>().cast<double>();
    Matrix<float> const x_f = x.cast<float>();
    Matrix<float> const dy_f = dy.cast<float>();
    for (UnaryOp const& op : unary_ops) {
        INFO(op.name);
        Matrix<double> y(8, 64);
        Matrix<double> dx = Matrix<double>::Zero(8, 64);
        op.forward(ctx, view<double>(x), view<double>(y));
        op.backward(ctx, view<double>(x), view<double>(dy), view<double>(dx));
        Matrix<float> y_f(8, 64);
        Matrix<float> dx_f = Matrix<float>::Zero(8, 64);
        op.forward_f(ctx, view<float>(x_f), view<float>(y_f));
        op.backward_f(ctx, view<float>(x_f), view<float>(dy_f), view<float>(dx_f));
        CHECK(scaled(y_f, y) <= 2e-6);
        CHECK(scaled(dx_f, dx) <= 2e-6);
    }
}

TEST_CASE("unary activations stay finite far out in both tails", "[unit][activation]") {
    cpu::Context ctx;
    Matrix<float> x(1, 6);
    x << -1000.f, -90.f, -20.f, 20.f, 90.f, 1000.f;
    Matrix<float> const dy = Matrix<float>::Ones(1, 6);
    for (UnaryOp const& op : unary_ops) {
        INFO(op.name);
        Matrix<float> y(1, 6);
        Matrix<float> dx = Matrix<float>::Zero(1, 6);
        op.forward_f(ctx, view<float>(x), view<float>(y));
        op.backward_f(ctx, view<float>(x), view<float>(dy), view<float>(dx));
        REQUIRE(y.allFinite());
        REQUIRE(dx.allFinite());
        CHECK(std::abs(y(0, 0)) <= 1e-6f);  // -> 0 for large negative x
        CHECK(y(0, 5) == Approx(1000.f));   // -> x for large positive x
        CHECK(std::abs(dx(0, 0)) <= 1e-6f);
        CHECK(dx(0, 5) == Approx(1.f));
    }
}

TEST_CASE("unary activation backward adds on every call and skips a null dx", "[unit][activation]") {
    cpu::Context ctx;
    auto x = random_matrix<double>(4, 5, 4, 2.0);
    auto dy = random_matrix<double>(4, 5, 5);
    for (UnaryOp const& op : unary_ops) {
        INFO(op.name);
        Matrix<double> dx = Matrix<double>::Zero(4, 5);
        op.backward(ctx, view<double>(x), view<double>(dy), view<double>(dx));
        Matrix<double> const once = dx;
        REQUIRE(max_abs(once) > 0);
        op.backward(ctx, view<double>(x), view<double>(dy), view<double>(dx));
        CHECK(max_abs(dx - 2 * once) <= 1e-14);
        REQUIRE_NOTHROW(op.backward(ctx, view<double>(x), view<double>(dy), View<double>{}));
    }
}

TEST_CASE("swiglu matches silu(gate) * up, and its backward adds and skips null outputs", "[unit][activation]") {
    cpu::Context ctx;
    Index const rows = GENERATE(Index(3), Index(80));
    Index const cols = rows == 3 ? 6 : 1024;  // 80 x 1024 takes the OpenMP path
    auto gate = random_matrix<double>(rows, cols, 6, 3.0);
    auto up = random_matrix<double>(rows, cols, 7);
    auto dout = random_matrix<double>(rows, cols, 8);
    Matrix<double> out(rows, cols);
    cpu::swiglu_forward(ctx, view<double>(gate), view<double>(up), view<double>(out));
    Matrix<double> const expected = gate.unaryExpr(&silu_formula).cwiseProduct(up);
    CHECK(max_abs(out - expected) <= 1e-14);

    Matrix<double> dgate = Matrix<double>::Zero(rows, cols), dup = Matrix<double>::Zero(rows, cols);
    auto backward = [&](View<double> dg, View<double> du) {
        cpu::swiglu_backward(ctx, view<double>(gate), view<double>(up), view<double>(dout), dg, du);
    };
    backward(view<double>(dgate), view<double>(dup));
    Matrix<double> const dgate1 = dgate, dup1 = dup;
    CHECK(max_abs(dup1 - dout.cwiseProduct(gate.unaryExpr(&silu_formula))) <= 1e-14);
    backward(view<double>(dgate), view<double>(dup));
    CHECK(max_abs(dgate - 2 * dgate1) <= 1e-14);
    CHECK(max_abs(dup - 2 * dup1) <= 1e-14);

    Matrix<double> dgate_only = Matrix<double>::Zero(rows, cols), dup_only = Matrix<double>::Zero(rows, cols);
    backward(view<double>(dgate_only), View<double>{});
    backward(View<double>{}, view<double>(dup_only));
    CHECK(max_abs(dgate_only - dgate1) <= 1e-14);
    CHECK(max_abs(dup_only - dup1) <= 1e-14);
}

TEST_CASE("swiglu fp32 agrees with fp64 (tolerance 2e-6 scaled)", "[unit][activation]") {
    cpu::Context ctx;
    Matrix<double> const gate = random_matrix<double>(8, 64, 9, 3.0).cast<float>().cast<double>();
    Matrix<double> const up = random_matrix<double>(8, 64, 10).cast<float>().cast<double>();
    Matrix<double> const dout = random_matrix<double>(8, 64, 11).cast<float>().cast<double>();
    Matrix<double> out(8, 64), dgate = Matrix<double>::Zero(8, 64), dup = Matrix<double>::Zero(8, 64);
    cpu::swiglu_forward(ctx, view<double>(gate), view<double>(up), view<double>(out));
    cpu::swiglu_backward(ctx, view<double>(gate), view<double>(up), view<double>(dout), view<double>(dgate),
                         view<double>(dup));
    Matrix<float> const gate_f = gate.cast<float>(), up_f = up.cast<float>(), dout_f = dout.cast<float>();
    Matrix<float> out_f(8, 64), dgate_f = Matrix<float>::Zero(8, 64), dup_f = Matrix<float>::Zero(8, 64);
    cpu::swiglu_forward(ctx, view<float>(gate_f), view<float>(up_f), view<float>(out_f));
    cpu::swiglu_backward(ctx, view<float>(gate_f), view<float>(up_f), view<float>(dout_f), view<float>(dgate_f),
                         view<float>(dup_f));
    CHECK(scaled(out_f, out) <= 2e-6);
    CHECK(scaled(dgate_f, dgate) <= 2e-6);
    CHECK(scaled(dup_f, dup) <= 2e-6);
}

TEST_CASE("add writes a + b (also in place), accumulate adds src into dst", "[unit][activation]") {
    cpu::Context ctx;
    Index const rows = GENERATE(Index(2), Index(70));
    Index const cols = rows == 2 ? 5 : 1024;  // 70 x 1024 takes the OpenMP path
    auto a = random_matrix<double>(rows, cols, 12);
    auto b = random_matrix<double>(rows, cols, 13);
    Matrix<double> out = Matrix<double>::Constant(rows, cols, 3.0);
    cpu::add(ctx, view<double>(a), view<double>(b), view<double>(out));
    CHECK(max_abs(out - (a + b)) == 0.0);

    Matrix<double> in_place = a;  // residual stream updated in place: h = h + branch
    cpu::add(ctx, view<double>(in_place), view<double>(b), view<double>(in_place));
    CHECK(max_abs(in_place - (a + b)) == 0.0);

    Matrix<double> dst = a;
    cpu::accumulate(ctx, view<double>(b), view<double>(dst));
    cpu::accumulate(ctx, view<double>(b), view<double>(dst));
    CHECK(max_abs(dst - (a + b + b)) <= 1e-15);

    Matrix<float> out_f(rows, cols);
    Matrix<float> const a_f = a.cast<float>(), b_f = b.cast<float>();
    cpu::add(ctx, view<float>(a_f), view<float>(b_f), view<float>(out_f));
    Matrix<double> const exact_sum = a_f.cast<double>() + b_f.cast<double>();
    CHECK(scaled(out_f, exact_sum) <= 1e-7);  // fp32 agreement: one rounding of the exact sum
}

TEST_CASE("activations reject wrong shapes and empty input with a message", "[unit][activation]") {
    cpu::Context ctx;
    auto x = random_matrix<double>(3, 4, 14);
    Matrix<double> y(3, 4);
    Matrix<double> y_wrong(4, 3);
    Matrix<double> empty(0, 4);
    Matrix<double> empty_out(0, 4);
    for (UnaryOp const& op : unary_ops) {
        INFO(op.name);
        std::string const name = op.name;
        REQUIRE_THROWS_AS(op.forward(ctx, view<double>(x), view<double>(y_wrong)), Error);
        REQUIRE_THROWS_WITH(op.forward(ctx, view<double>(x), view<double>(y_wrong)),
                            Catch::Contains(name + "_forward: y"));
        REQUIRE_THROWS_AS(op.forward(ctx, view<double>(empty), view<double>(empty_out)), Error);
        REQUIRE_THROWS_WITH(op.forward(ctx, view<double>(empty), view<double>(empty_out)),
                            Catch::Contains(name + "_forward: x is empty"));
        Matrix<double> dx = Matrix<double>::Zero(3, 4);
        REQUIRE_THROWS_AS(op.backward(ctx, view<double>(x), view<double>(y_wrong), view<double>(dx)), Error);
        REQUIRE_THROWS_WITH(op.backward(ctx, view<double>(x), view<double>(y_wrong), view<double>(dx)),
                            Catch::Contains(name + "_backward: dy"));
        REQUIRE_THROWS_WITH(op.backward(ctx, view<double>(x), view<double>(y), view<double>(y_wrong)),
                            Catch::Contains(name + "_backward: dx"));
    }

    auto up_wrong = random_matrix<double>(3, 5, 15);
    REQUIRE_THROWS_AS(cpu::swiglu_forward(ctx, view<double>(x), view<double>(up_wrong), view<double>(y)), Error);
    REQUIRE_THROWS_WITH(cpu::swiglu_forward(ctx, view<double>(x), view<double>(up_wrong), view<double>(y)),
                        Catch::Contains("swiglu_forward: up"));
    Matrix<double> dgate_wrong = Matrix<double>::Zero(2, 4);
    REQUIRE_THROWS_AS(cpu::swiglu_backward(ctx, view<double>(x), view<double>(x), view<double>(y),
                                           view<double>(dgate_wrong), View<double>{}),
                      Error);
    REQUIRE_THROWS_WITH(cpu::swiglu_backward(ctx, view<double>(x), view<double>(x), view<double>(y),
                                             view<double>(dgate_wrong), View<double>{}),
                        Catch::Contains("swiglu_backward: dgate"));
    REQUIRE_THROWS_WITH(cpu::swiglu_backward(ctx, view<double>(x), view<double>(x), view<double>(y_wrong),
                                             View<double>{}, view<double>(y)),
                        Catch::Contains("swiglu_backward: dout"));

    REQUIRE_THROWS_AS(cpu::add(ctx, view<double>(x), view<double>(up_wrong), view<double>(y)), Error);
    REQUIRE_THROWS_WITH(cpu::add(ctx, view<double>(x), view<double>(up_wrong), view<double>(y)),
                        Catch::Contains("add: b"));
    REQUIRE_THROWS_WITH(cpu::add(ctx, view<double>(x), view<double>(x), view<double>(y_wrong)),
                        Catch::Contains("add: out"));
    REQUIRE_THROWS_AS(cpu::accumulate(ctx, view<double>(x), view<double>(y_wrong)), Error);
    REQUIRE_THROWS_WITH(cpu::accumulate(ctx, view<double>(x), view<double>(y_wrong)),
                        Catch::Contains("accumulate: dst"));
    REQUIRE_THROWS_WITH(cpu::accumulate(ctx, view<double>(empty), view<double>(empty_out)),
                        Catch::Contains("accumulate: src is empty"));
}
