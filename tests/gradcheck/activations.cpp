/// @file tests/gradcheck/activations.cpp
/// @brief fp64 gradient checks of GELU (tanh, erf), SiLU, SwiGLU, add and accumulate against central differences.
#include "polyalpaca/backend/cpu/activation.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using namespace polyalpaca::testing;

namespace {

constexpr double tolerance = 1e-8;  // max scaled error
constexpr Index rows = 5;
constexpr Index cols = 8;

using Forward = void (*)(cpu::Context&, View<double const>, View<double>);
using Backward = void (*)(cpu::Context&, View<double const>, View<double const>, View<double>);

/// Checks a unary elementwise op on inputs spread over [-6, 6], where tanh and erf saturate and bend.
void check_unary(char const* what, Forward forward, Backward backward, std::uint64_t seed) {
    cpu::Context ctx;
    auto x = random_matrix<double>(rows, cols, seed, 2.5);
    x(0, 0) = 0.0;
    x(0, 1) = -6.0;
    x(0, 2) = 6.0;
    auto weights = random_matrix<double>(rows, cols, seed + 1);
    auto loss = [&] {
        Matrix<double> y(rows, cols);
        forward(ctx, view<double>(x), view<double>(y));
        return weighted_sum<double>(y, weights);
    };
    Matrix<double> dx = Matrix<double>::Zero(rows, cols);
    backward(ctx, view<double>(x), view<double>(weights), view<double>(dx));
    check_gradient(what, span_of(dx), loss, span_of(x), tolerance);
}

}  // namespace

TEST_CASE("gelu_tanh: gradient matches central differences", "[gradcheck][activation]") {
    check_unary("gelu_tanh dx", cpu::gelu_tanh_forward<double>, cpu::gelu_tanh_backward<double>, 51);
}

TEST_CASE("gelu_erf: gradient matches central differences", "[gradcheck][activation]") {
    check_unary("gelu_erf dx", cpu::gelu_erf_forward<double>, cpu::gelu_erf_backward<double>, 53);
}

TEST_CASE("silu: gradient matches central differences", "[gradcheck][activation]") {
    check_unary("silu dx", cpu::silu_forward<double>, cpu::silu_backward<double>, 55);
}

TEST_CASE("swiglu: gradients of gate and up match central differences", "[gradcheck][activation]") {
    cpu::Context ctx;
    auto gate = random_matrix<double>(rows, cols, 57, 2.5);
    auto up = random_matrix<double>(rows, cols, 58, 1.5);
    auto weights = random_matrix<double>(rows, cols, 59);
    auto loss = [&] {
        Matrix<double> out(rows, cols);
        cpu::swiglu_forward(ctx, view<double>(gate), view<double>(up), view<double>(out));
        return weighted_sum<double>(out, weights);
    };
    Matrix<double> dgate = Matrix<double>::Zero(rows, cols);
    Matrix<double> dup = Matrix<double>::Zero(rows, cols);
    cpu::swiglu_backward(ctx, view<double>(gate), view<double>(up), view<double>(weights), view<double>(dgate),
                         view<double>(dup));
    check_gradient("swiglu dgate", span_of(dgate), loss, span_of(gate), tolerance);
    check_gradient("swiglu dup", span_of(dup), loss, span_of(up), tolerance);
}

TEST_CASE("add: gradient of each input is the upstream gradient, passed on by accumulate", "[gradcheck][activation]") {
    cpu::Context ctx;
    auto a = random_matrix<double>(rows, cols, 61);
    auto b = random_matrix<double>(rows, cols, 62);
    auto weights = random_matrix<double>(rows, cols, 63);
    auto loss = [&] {
        Matrix<double> out(rows, cols);
        cpu::add(ctx, view<double>(a), view<double>(b), view<double>(out));
        return weighted_sum<double>(out, weights);
    };
    // The backward of out = a + b hands dout to both inputs with accumulate.
    Matrix<double> da = Matrix<double>::Zero(rows, cols);
    Matrix<double> db = Matrix<double>::Zero(rows, cols);
    cpu::accumulate(ctx, view<double>(weights), view<double>(da));
    cpu::accumulate(ctx, view<double>(weights), view<double>(db));
    check_gradient("add da", span_of(da), loss, span_of(a), tolerance);
    check_gradient("add db", span_of(db), loss, span_of(b), tolerance);
}
