/// @file layers/alibi.hpp
/// @brief ALiBi head slopes, computed as HF transformers' BLOOM `build_alibi_tensor` does.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <vector>

#include "polyalpaca/core/error.hpp"

namespace polyalpaca {

/// One slope per head (attention adds slope * key_position to each score).
/// With p the largest power of two <= heads: the first p slopes are (2^(-8/p))^k for k = 1..p; the other
/// heads - p take the odd powers k = 1, 3, 5, ... of 2^(-8/(2p)), as in BLOOM's `build_alibi_tensor`.
inline std::vector<double> alibi_slopes(int heads) {
    require(heads > 0, "alibi_slopes: heads must be positive, got ", heads);
    int const closest_power_of_2 = int(std::bit_floor(unsigned(heads)));
    // 2^(-(2^-(log2(p) - 3))) = 2^(-8/p)
    double const base = std::exp2(-8.0 / closest_power_of_2);
    std::vector<double> slopes;
    slopes.reserve(std::size_t(heads));
    for (int k = 1; k <= closest_power_of_2; ++k) slopes.push_back(std::pow(base, k));
    if (closest_power_of_2 != heads) {
        double const extra_base = std::exp2(-8.0 / (2 * closest_power_of_2));
        int const remaining = std::min(closest_power_of_2, heads - closest_power_of_2);
        for (int k = 1; k < 1 + 2 * remaining; k += 2) slopes.push_back(std::pow(extra_base, k));
    }
    return slopes;
}

}  // namespace polyalpaca
