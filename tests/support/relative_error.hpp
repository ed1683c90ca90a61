/// @file tests/support/relative_error.hpp
/// @brief The relative error docs/tolerances.md states its CUDA and simulation bounds in: max|a - b| / max|b|.
///        Host-only, so both the CUDA tests and the host simulations of CUDA kernels use it.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace polyalpaca::test {

/// max|a - b| / max|b| (0 when both are empty; max|b| is floored at 1e-30); infinite for a size mismatch or a
/// non-finite value in a.
inline double relative_error(std::vector<float> const& a, std::vector<float> const& b) {
    if (a.size() != b.size()) return INFINITY;
    double diff = 0, scale = 1e-30;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
        scale = std::max(scale, std::abs(double(b[i])));
    }
    return diff / scale;
}

}  // namespace polyalpaca::test
