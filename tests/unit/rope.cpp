/// @file tests/unit/rope.cpp
/// @brief RoPE forward against naive per-convention formulas, style equivalence, inverse, fp32 agreement, bad input.
#include <cmath>
#include <complex>

#include <catch2/catch.hpp>

#include "polyalpaca/backend/cpu/rope.hpp"
#include "support/gradcheck.hpp"

using namespace polyalpaca;
using polyalpaca::testing::random_matrix;

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

/// Naive RoPE in double: each rotary pair is a complex number multiplied by e^{i * pos * theta_k},
/// with theta_k = 1 / base^(2k / rotary_dim). RotateHalf pairs (x_k, x_{k + rd/2}); AdjacentPairs (x_{2k}, x_{2k+1}).
Matrix<double> naive_rope(Matrix<double> const& x, int seq, int offset, RopeSpec const& spec) {
    Matrix<double> y = x;
    int const half = spec.rotary_dim / 2;
    for (Index r = 0; r < x.rows(); ++r) {
        double const pos = double(r % seq + offset);
        for (int h = 0; h < spec.heads; ++h) {
            Index const c = Index(h) * spec.head_dim;
            for (int kk = 0; kk < half; ++kk) {
                double const theta = 1.0 / std::pow(spec.base, double(2 * kk) / spec.rotary_dim);
                Index const re = spec.style == RopeStyle::RotateHalf ? c + kk : c + 2 * kk;
                Index const im = spec.style == RopeStyle::RotateHalf ? c + kk + half : c + 2 * kk + 1;
                std::complex<double> const z = std::complex<double>(x(r, re), x(r, im)) * std::polar(1.0, pos * theta);
                y(r, re) = z.real();
                y(r, im) = z.imag();
            }
        }
    }
    return y;
}

/// Moves every head from the adjacent-pairs layout to the rotate-half one: dim 2k -> k, dim 2k+1 -> k + rd/2.
Matrix<double> adjacent_to_rotate_half(Matrix<double> const& x, RopeSpec const& spec) {
    Matrix<double> y = x;
    int const half = spec.rotary_dim / 2;
    for (int h = 0; h < spec.heads; ++h) {
        Index const c = Index(h) * spec.head_dim;
        for (int kk = 0; kk < half; ++kk) {
            y.col(c + kk) = x.col(c + 2 * kk);
            y.col(c + kk + half) = x.col(c + 2 * kk + 1);
        }
    }
    return y;
}

double max_abs_diff(Matrix<double> const& a, Matrix<double> const& b) { return (a - b).cwiseAbs().maxCoeff(); }

RopeSpec const kStyles[] = {
    {3, 10, 6, 10000.0, RopeStyle::RotateHalf},
    {3, 10, 6, 10000.0, RopeStyle::AdjacentPairs},
    {2, 8, 8, 500.0, RopeStyle::RotateHalf},
    {2, 8, 8, 500.0, RopeStyle::AdjacentPairs},
};

}  // namespace

TEST_CASE("rope_forward matches the naive complex-number formula", "[rope]") {
    cpu::Context ctx;
    for (auto const& spec : kStyles) {
        for (int offset : {0, 7}) {
            int const seq = 9;
            Matrix<double> x = random_matrix<double>(2 * seq, spec.heads * spec.head_dim, 11);
            Matrix<double> const expected = naive_rope(x, seq, offset, spec);
            cpu::rope_forward(ctx, as_view(x), seq, offset, spec);
            INFO("style " << int(spec.style) << ", rotary_dim " << spec.rotary_dim << ", offset " << offset);
            CHECK(max_abs_diff(x, expected) < 1e-12);
        }
    }
}

TEST_CASE("rope leaves dims beyond rotary_dim and position 0 unchanged", "[rope]") {
    cpu::Context ctx;
    for (auto const& spec : kStyles) {
        int const seq = 4;
        Matrix<double> const x = random_matrix<double>(2 * seq, spec.heads * spec.head_dim, 12);
        Matrix<double> y = x;
        cpu::rope_forward(ctx, as_view(y), seq, 3, spec);
        for (int h = 0; h < spec.heads; ++h) {
            Index const pass = spec.head_dim - spec.rotary_dim;
            Index const first = Index(h) * spec.head_dim + spec.rotary_dim;
            CHECK(y.middleCols(first, pass) == x.middleCols(first, pass));
        }
        CHECK(max_abs_diff(y, x) > 0.1);  // the rotary dims did move

        Matrix<double> z = x;
        cpu::rope_forward(ctx, as_view(z), seq, 0, spec);
        CHECK(z.row(0) == x.row(0));  // position 0: angle 0
        CHECK(z.row(seq) == x.row(seq));
    }
}

TEST_CASE("RotateHalf and AdjacentPairs agree under the interleaving permutation", "[rope]") {
    cpu::Context ctx;
    RopeSpec adjacent{2, 12, 8, 10000.0, RopeStyle::AdjacentPairs};
    RopeSpec rotate_half = adjacent;
    rotate_half.style = RopeStyle::RotateHalf;
    int const seq = 6;
    Matrix<double> const x = random_matrix<double>(2 * seq, 24, 13);

    Matrix<double> by_pairs = x;
    cpu::rope_forward(ctx, as_view(by_pairs), seq, 5, adjacent);
    Matrix<double> by_halves = adjacent_to_rotate_half(x, adjacent);
    cpu::rope_forward(ctx, as_view(by_halves), seq, 5, rotate_half);

    CHECK(max_abs_diff(adjacent_to_rotate_half(by_pairs, adjacent), by_halves) < 1e-12);
    CHECK(max_abs_diff(by_pairs, x) > 0.1);
    // Without the permutation the two conventions differ.
    Matrix<double> unpermuted = x;
    cpu::rope_forward(ctx, as_view(unpermuted), seq, 5, rotate_half);
    CHECK(max_abs_diff(unpermuted, by_pairs) > 0.1);
}

TEST_CASE("rope_backward inverts rope_forward and the rotation keeps norms", "[rope]") {
    cpu::Context ctx;
    for (auto const& spec : kStyles) {
        int const seq = 8;
        Matrix<double> const x = random_matrix<double>(3 * seq, spec.heads * spec.head_dim, 14);
        Matrix<double> y = x;
        cpu::rope_forward(ctx, as_view(y), seq, 100, spec);
        for (Index r = 0; r < x.rows(); ++r) CHECK(std::abs(y.row(r).norm() - x.row(r).norm()) < 1e-12);
        cpu::rope_backward(ctx, as_view(y), seq, 100, spec);
        CHECK(max_abs_diff(y, x) < 1e-12);

        Matrix<double> z = x;
        cpu::rope_backward(ctx, as_view(z), seq, 100, spec);
        CHECK(max_abs_diff(z, x) > 0.1);
        cpu::rope_forward(ctx, as_view(z), seq, 100, spec);
        CHECK(max_abs_diff(z, x) < 1e-12);
    }
}

TEST_CASE("rope position_offset continues the positions of a longer sequence", "[rope]") {
    cpu::Context ctx;
    RopeSpec const spec{2, 8, 4, 10000.0, RopeStyle::RotateHalf};
    Matrix<double> const full = random_matrix<double>(10, 16, 15);
    Matrix<double> whole = full;
    cpu::rope_forward(ctx, as_view(whole), 10, 0, spec);
    Matrix<double> tail = full.bottomRows(4);
    cpu::rope_forward(ctx, as_view(tail), 4, 6, spec);
    CHECK(max_abs_diff(tail, whole.bottomRows(4)) < 1e-12);
}

TEST_CASE("rope in fp32 agrees with fp64 to 2e-6", "[rope]") {
    cpu::Context ctx;
    for (auto const& spec : kStyles) {
        int const seq = 64;
        Matrix<double> x = random_matrix<double>(2 * seq, spec.heads * spec.head_dim, 16);
        Matrix<float> xf = x.cast<float>();
        cpu::rope_forward(ctx, as_view(x), seq, 1000, spec);
        cpu::rope_forward(ctx, as_view(xf), seq, 1000, spec);
        double const error = max_abs_diff(xf.cast<double>(), x);
        INFO("max abs fp32 error " << error);
        CHECK(error < 2e-6);
    }
}

TEST_CASE("rope rejects bad input with a clear message", "[rope][errors]") {
    cpu::Context ctx;
    Matrix<double> x = random_matrix<double>(8, 16, 17);
    RopeSpec const good{2, 8, 4, 10000.0, RopeStyle::RotateHalf};
    REQUIRE_NOTHROW(cpu::rope_forward(ctx, as_view(x), 4, 0, good));

    RopeSpec odd = good;
    odd.rotary_dim = 5;
    REQUIRE_THROWS_WITH(cpu::rope_forward(ctx, as_view(x), 4, 0, odd), Catch::Contains("rotary_dim must be even"));
    RopeSpec too_wide = good;
    too_wide.rotary_dim = 10;
    REQUIRE_THROWS_WITH(cpu::rope_backward(ctx, as_view(x), 4, 0, too_wide),
                        Catch::Contains("rotary_dim must be in (0, head_dim = 8]"));
    RopeSpec zero = good;
    zero.rotary_dim = 0;
    REQUIRE_THROWS_WITH(cpu::rope_forward(ctx, as_view(x), 4, 0, zero), Catch::Contains("rotary_dim must be in"));
    RopeSpec wrong_heads = good;
    wrong_heads.heads = 3;
    REQUIRE_THROWS_WITH(cpu::rope_forward(ctx, as_view(x), 4, 0, wrong_heads),
                        Catch::Contains("x has 16 columns but heads * head_dim = 24"));
    REQUIRE_THROWS_WITH(cpu::rope_forward(ctx, as_view(x), 3, 0, good),
                        Catch::Contains("x has 8 rows, which is not a multiple of seq = 3"));
    REQUIRE_THROWS_WITH(cpu::rope_forward(ctx, as_view(x), 0, 0, good), Catch::Contains("seq must be positive"));
    REQUIRE_THROWS_WITH(cpu::rope_forward(ctx, as_view(x), 4, -1, good), Catch::Contains("position_offset"));
    Matrix<double> empty(0, 16);
    REQUIRE_THROWS_WITH(cpu::rope_forward(ctx, as_view(empty), 4, 0, good), Catch::Contains("empty batch"));
}
