/// @file backend/cpu/exp_blocks.hpp
/// @brief exp in double over blocks of values with Eigen's vectorised kernel: what the elementwise ops built on
/// exp (tanh GELU, SiLU, SwiGLU, the erf GELU's backward) and the cross-entropy use instead of one scalar libm call
/// per value.
///
/// Eigen's double exp is within 3.1e-16 (relative) of glibc's on [-40, 10]; rounded to float the two agreed on all
/// 4M values tried. Its speed, and that of the tanh GELU built on it: docs/performance.md, "Where a step's time
/// goes".
#pragma once

#include <algorithm>

#include <Eigen/Core>

#include "polyalpaca/backend/cpu/context.hpp"
#include "polyalpaca/core/tensor.hpp"

namespace polyalpaca::cpu::detail {

inline constexpr Index exp_block = 256;               // values per block (2 KiB of doubles on the stack)
inline constexpr Index exp_blocks_parallel_min = Index(1) << 16;  // values below which one thread is faster

/// values[i] = exp(values[i]) for i in [0, n).
inline void exp_in_place(double* values, Index n) {
    Eigen::Map<Eigen::ArrayXd> v(values, n);
    v = v.exp();
}

/// Calls f(begin, count) for consecutive blocks of at most exp_block values covering [0, n), over OpenMP threads
/// when n is large enough. A block is the same whatever the thread count, so results do not depend on it.
template <class F>
void for_each_exp_block(Context& ctx, Index n, F const& f) {
    Index const blocks = (n + exp_block - 1) / exp_block;
#pragma omp parallel for if (n >= exp_blocks_parallel_min) num_threads(std::max(1, ctx.threads))
    for (Index b = 0; b < blocks; ++b) f(b * exp_block, std::min(exp_block, n - b * exp_block));
}

}  // namespace polyalpaca::cpu::detail
