/// @file tests/support/gradcheck.hpp
/// @brief Central finite differences in fp64 and the comparison every gradient check uses.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <span>
#include <vector>

#include <catch2/catch.hpp>

#include "polyalpaca/core/rng.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::testing {

/// d loss / d x for every entry of x, by central differences of step h; x is restored afterwards.
inline std::vector<double> numeric_gradient(std::function<double()> const& loss, std::span<double> x,
                                            double h = 1e-6) {
    std::vector<double> grad(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        double const saved = x[i];
        x[i] = saved + h;
        double const plus = loss();
        x[i] = saved - h;
        double const minus = loss();
        x[i] = saved;
        grad[i] = (plus - minus) / (2 * h);
    }
    return grad;
}

/// Largest |a - n| / max(1, |n|) over all entries: relative where values are large, absolute near zero.
inline double max_scaled_error(std::span<double const> analytic, std::span<double const> numeric) {
    REQUIRE(analytic.size() == numeric.size());
    double worst = 0;
    for (std::size_t i = 0; i < analytic.size(); ++i)
        worst = std::max(worst, std::abs(analytic[i] - numeric[i]) / std::max(1.0, std::abs(numeric[i])));
    return worst;
}

/// Checks an analytic gradient against central differences; `what` names it in the failure message.
inline void check_gradient(char const* what, std::span<double const> analytic, std::function<double()> const& loss,
                           std::span<double> x, double tolerance = 1e-6) {
    auto const numeric = numeric_gradient(loss, x);
    double const error = max_scaled_error(analytic, numeric);
    INFO(what << ": max scaled error " << error << " (tolerance " << tolerance << ")");
    CHECK(error <= tolerance);
}

/// Fills a matrix with normal(0, scale) values from a seeded generator.
template <class T>
Matrix<T> random_matrix(Index rows, Index cols, std::uint64_t seed, double scale = 1.0) {
    Rng rng(seed);
    Matrix<T> m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = T(scale * rng.normal());
    return m;
}

/// Sum of elementwise products: the scalar loss sum(w * y) whose gradient w.r.t. y is w.
template <class T>
double weighted_sum(Matrix<T> const& y, Matrix<T> const& w) {
    return (y.template cast<double>().array() * w.template cast<double>().array()).sum();
}

inline std::span<double> span_of(Matrix<double>& m) { return {m.data(), std::size_t(m.size())}; }
inline std::span<double const> span_of(Matrix<double> const& m) { return {m.data(), std::size_t(m.size())}; }

}  // namespace polyalpaca::testing
